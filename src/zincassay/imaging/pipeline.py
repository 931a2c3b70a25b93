"""One imaging sample end to end: read, register, segment, trace, calibrate, tabulate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zincassay.imaging.calibrate import Calibration, calibrate_cells, population_trace
from zincassay.imaging.events import Events, detect_events
from zincassay.imaging.register import estimate_shifts
from zincassay.imaging.segment import Segmentation, reference_image, segment_cells
from zincassay.imaging.settings import ImagingSettings
from zincassay.imaging.traces import Traces, extract_traces, interior
from zincassay.io.stacks import ImagingError, Stack, read_stack
from zincassay.samplesheet import Sample

__all__ = ["ImagingResult", "analyse_stack"]


@dataclass
class ImagingResult:
    stack: Stack
    time_s: np.ndarray
    shifts: np.ndarray
    reference: np.ndarray
    segmentation: Segmentation
    traces: Traces
    events: Events
    calibration: Calibration
    kd_nM: float
    saturation_value: float
    bit_depth_source: str


def analyse_stack(path: str, settings: ImagingSettings, sample: Sample) -> ImagingResult:
    """Analyse one stack.

    Parameters
    ----------
    path : str
        The stack (see :func:`zincassay.io.stacks.read_stack`).
    settings : ImagingSettings
    sample : Sample
        Its sample-sheet row; ``frame_interval_s``, ``stimulus_s``, ``pyrithione_s``, ``tpen_s``
        may be None (taken from the metadata / detected).
    """
    stack = read_stack(path, settings.channel)
    data = stack.data
    interval = sample.frame_interval_s or stack.frame_interval_s
    if not interval:
        raise ImagingError(f"{path}: the frame interval is neither in the sample sheet nor in the file's metadata; "
                           "fill in frame_interval_s (seconds) in the sample sheet")
    T = stack.n_frames
    time_s = np.arange(T) * interval
    known = {k: getattr(sample, k) for k in ("stimulus_s", "pyrithione_s", "tpen_s")}
    for k, v in known.items():
        if v is not None and v >= time_s[-1] - interval:
            raise ImagingError(f"{path}: the stack ends at {time_s[-1]:g} s ({T} frames at {interval:g} s per "
                               f"frame), so {k} = {v:g} s leaves fewer than 2 frames after it; check "
                               "frame_interval_s and the event times, or whether the stack is truncated")
    if settings.bit_depth:
        bits, bit_src = int(settings.bit_depth), "config"
    elif stack.bit_depth:
        bits, bit_src = int(stack.bit_depth), "metadata"
    elif np.issubdtype(data.dtype, np.integer):
        bits, bit_src = (8 if data.dtype == np.uint8 else 16), "pixel type"
    else:  # float data carry no ceiling of their own; the data maximum is no camera limit
        bits, bit_src = 0, "none (float data)"
        bad = next((t for t in range(T) if not np.isfinite(data[t]).all()), None)
        if bad is not None:
            raise ImagingError(f"{path}: frame {bad} holds NaN or infinite pixel values; the stack was damaged "
                               "or exported wrongly: export it again (16-bit TIFF straight from the camera is best)")
    saturation = float(2**bits - 1) if bits else float("inf")
    shifts = estimate_shifts(data) if settings.registration else np.zeros((T, 2))
    # provisional events: the Fmax window is needed for the segmentation reference
    if None in known.values():
        rough = np.array([np.asarray(data[t], dtype=np.float32).mean() for t in range(T)])
        rough = rough - rough.min()
        try:
            events = detect_events(rough, time_s, shifts, known)
        except ValueError as exc:
            raise ImagingError(f"{path}: {exc}") from None
    else:
        events = Events(known["stimulus_s"], known["pyrithione_s"], known["tpen_s"],
                        dict.fromkeys(known, "sheet"))
    pyr = np.flatnonzero((time_s >= events.pyrithione_s) & (time_s < events.tpen_s))
    if len(pyr) < 2:
        raise ImagingError(f"{path}: fewer than 2 frames between pyrithione ({events.pyrithione_s:g} s) and TPEN "
                           f"({events.tpen_s:g} s); Fmax cannot be measured")
    if len(np.flatnonzero(time_s >= events.tpen_s)) < 3:
        raise ImagingError(f"{path}: fewer than 3 frames after TPEN ({events.tpen_s:g} s); Fmin cannot be measured")
    # reference: the brightest part of the Fmax window (skip the first frames of the rise)
    ref_frames = pyr[len(pyr) // 4: max(len(pyr) // 4 + 1, (3 * len(pyr)) // 4)]
    reference = reference_image(data, shifts, ref_frames)
    pixel_size_um = stack.pixel_size_um or settings.pixel_size_um
    seg = segment_cells(reference, settings.area_limits_px(pixel_size_um))
    if seg.n == 0:
        raise ImagingError(f"{path}: no cells found on the Fmax reference image; check the channel and that the "
                           "stack contains the pyrithione + ZnCl2 step")
    measured = interior(seg.labels, settings.erode_px)
    traces = extract_traces(data, measured, shifts, saturation)
    if None in known.values():
        F = traces.mean - traces.background[:, None]
        usable = np.array([r == "" for r in seg.reason])
        pop = population_trace(F, np.arange(T), usable)
        try:
            events = detect_events(pop, time_s, shifts, known)
        except ValueError as exc:
            raise ImagingError(f"{path}: {exc}") from None
    kd = settings.kd_in_force_nM
    cal = calibrate_cells(traces.mean, traces.background, traces.saturated, time_s, events, kd, seg.reason,
                          min_dynamic_range=settings.min_dynamic_range,
                          bleach_correction=settings.bleach_correction,
                          plateau_max_slope_pct_per_min=settings.plateau_max_slope_pct_per_min,
                          responder_min_rise=settings.responder_min_rise,
                          area_px=np.bincount(measured.ravel(), minlength=seg.n + 1)[1:])
    return ImagingResult(stack=stack, time_s=time_s, shifts=shifts, reference=reference, segmentation=seg,
                         traces=traces, events=events, calibration=cal, kd_nM=kd, saturation_value=saturation,
                         bit_depth_source=bit_src)
