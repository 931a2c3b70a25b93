"""One imaging sample end to end: read, register, segment, trace, calibrate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.segmentation import expand_labels

from zincassay.imaging.calibrate import Calibration, calibrate_cells, population_trace, response_trace
from zincassay.imaging.events import Events, Phases, detect_events
from zincassay.imaging.register import Registration, register_stack
from zincassay.imaging.saturation import frame_statistics, saturation_level
from zincassay.imaging.segment import Segmentation, grow_cells, reference_image, segment_cells
from zincassay.imaging.settings import ImagingSettings
from zincassay.imaging.traces import Traces, extract_traces, interior
from zincassay.io.stacks import ImagingError, Stack, read_stack
from zincassay.samplesheet import Sample

__all__ = ["ImagingResult", "analyse_stack", "measurement_labels"]


@dataclass
class ImagingResult:
    stack: Stack
    time_s: np.ndarray
    registration: Registration
    reference: np.ndarray
    segmentation: Segmentation
    traces: Traces
    events: Events
    phases: Phases
    calibration: Calibration
    kd_nM: float
    saturation_value: float
    saturation_source: str

    @property
    def shifts(self) -> np.ndarray:
        """Registration displacement (dy, dx) px per frame (T, 2)."""
        return self.registration.shifts

    @property
    def bit_depth_source(self) -> str:
        """Where the clipping level came from (the name ``summary.tsv`` used before ``saturation_source``)."""
        return self.saturation_source

    @property
    def registered(self) -> np.ndarray:
        """Frames that could be registered (T,) bool."""
        return self.registration.registered


def _leaves_field(labels: np.ndarray, shifts: np.ndarray, registered: np.ndarray, n: int) -> np.ndarray:
    """Cells (N,) bool whose measured pixels leave the frame in some registered frame."""
    if n == 0:
        return np.zeros(0, dtype=bool)
    h, w = labels.shape
    ys, xs = np.nonzero(labels)
    cell = labels[ys, xs]
    lo_y = np.full(n + 1, h, dtype=np.int64)
    hi_y = np.full(n + 1, -1, dtype=np.int64)
    lo_x, hi_x = lo_y.copy(), hi_y.copy()
    np.minimum.at(lo_y, cell, ys)
    np.maximum.at(hi_y, cell, ys)
    np.minimum.at(lo_x, cell, xs)
    np.maximum.at(hi_x, cell, xs)
    s = shifts[registered] if registered.any() else np.zeros((1, 2))
    dy_lo, dy_hi = np.floor(s[:, 0].min()) - 1, np.ceil(s[:, 0].max()) + 2
    dx_lo, dx_hi = np.floor(s[:, 1].min()) - 1, np.ceil(s[:, 1].max()) + 2
    out = (lo_y + dy_lo < 0) | (hi_y + dy_hi > h - 1) | (lo_x + dx_lo < 0) | (hi_x + dx_hi > w - 1)
    return out[1:]


def measurement_labels(seg: Segmentation, erode_px: int = 0, before: np.ndarray | None = None) -> np.ndarray:
    """The pixels each cell is measured over (Y, X) int: its extent, grown over where it also extends
    in ``before`` (the mean of the baseline frames, see :func:`~zincassay.imaging.segment.grow_cells`),
    eroded by ``erode_px``, plus a margin of a quarter radius (not into other cells), so that a cell
    that rounds up or shrinks after pyrithione (its dye conserved) keeps all its light in the
    measurement in every phase."""
    labels = seg.labels if before is None else grow_cells(before, seg.labels, seg.radius_px)
    return expand_labels(interior(labels, erode_px), distance=max(1.0, 0.25 * seg.radius_px))


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
    try:
        stats = frame_statistics(data)
    except ValueError as exc:
        raise ImagingError(f"{path}: {exc}; the stack cannot be measured: re-export it, or check the processing "
                           "that produced it (division by zero, masked regions)") from None
    saturation, saturation_src = saturation_level(stats, data.dtype, bit_depth_setting=settings.bit_depth,
                                                  bit_depth_metadata=stack.bit_depth)
    if settings.registration:
        reg = register_stack(data)
    else:
        reg = Registration(shifts=np.zeros((T, 2)), confidence=np.ones(T), registered=np.ones(T, dtype=bool),
                           source=np.full(T, "off"), cell_radius_px=float("nan"), n_cells=0, n_keyframes=0)
    shifts, registered = reg.shifts, reg.registered

    def detect(trace: np.ndarray, response: np.ndarray | None = None) -> Events:
        try:
            return detect_events(np.where(registered, trace, np.nan), time_s, shifts, known, response=response,
                                 registered=registered)
        except ValueError as exc:
            raise ImagingError(f"{path}: {exc}") from None

    # provisional events from the whole-field mean: the Fmax window is needed for the reference
    if None in known.values():
        events = detect(stats.mean - stats.mean.min())
    else:
        events = Events(known["stimulus_s"], known["pyrithione_s"], known["tpen_s"], dict.fromkeys(known, "sheet"))
    phases = Phases.from_events(events, time_s)
    if len(phases.pyrithione) < 2:
        raise ImagingError(f"{path}: fewer than 2 frames between pyrithione ({events.pyrithione_s:g} s) and TPEN "
                           f"({events.tpen_s:g} s); Fmax cannot be measured")
    if len(phases.tpen) < 3:
        raise ImagingError(f"{path}: fewer than 3 frames after TPEN ({events.tpen_s:g} s); Fmin cannot be measured")
    # reference: the brightest part of the Fmax window (skip the first frames of the rise)
    pyr = phases.pyrithione[registered[phases.pyrithione]]
    if len(pyr) < 2:
        raise ImagingError(f"{path}: fewer than 2 frames between pyrithione and TPEN could be registered; "
                           "Fmax cannot be measured (see registration_confidence in frames.tsv)")
    ref_frames = pyr[len(pyr) // 4: max(len(pyr) // 4 + 1, (3 * len(pyr)) // 4)]
    reference = reference_image(data, shifts, ref_frames)
    pixel_size_um = stack.pixel_size_um or settings.pixel_size_um
    seg = segment_cells(reference, settings.area_limits_px(pixel_size_um))
    if seg.n == 0:
        raise ImagingError(f"{path}: no cells found on the Fmax reference image; check the channel and that the "
                           "stack contains the pyrithione + ZnCl2 step")
    base_frames = phases.baseline[registered[phases.baseline]]
    base_frames = base_frames[:: max(1, -(-len(base_frames) // 60))]  # the mean of at most 60 frames
    before = reference_image(data, shifts, base_frames) if len(base_frames) else None
    measured = measurement_labels(seg, settings.erode_px, before)
    leaving = _leaves_field(measured, shifts, registered, seg.n)
    seg.reason = [r or ("touches_border" if leaving[i] else "") for i, r in enumerate(seg.reason)]
    # cell-free pixels at least half a radius (6 px or more) from any cell: a large, blurred cell's
    # halo must not count as medium
    traces = extract_traces(data, measured, shifts, saturation, frames=registered,
                            background_margin_px=max(6, round(0.5 * seg.radius_px)))
    # each cell's light relative to where it sat: the stage carries it through uneven illumination
    # the background under each cell from the surface when its pattern is real (the same in every
    # frame), else the field's level (a pattern of noise or of cell halos would bias every cell)
    local = traces.background_pattern() is not None
    signal = traces.mean - (traces.local_background if local else traces.background[:, None])
    light = traces.illumination(shifts) if local else None
    if light is not None:
        signal = signal / light
    if None in known.values():
        F = signal
        usable = np.array([r == "" for r in seg.reason])
        first = np.flatnonzero(registered)[: max(3, T // 10)]
        events = detect(population_trace(F, np.arange(T), usable), response_trace(F, first, usable))
        phases = Phases.from_events(events, time_s)
    kd = settings.kd_in_force_nM
    cal = calibrate_cells(signal, np.zeros(T), traces.saturated, time_s, events, phases, kd,
                          seg.reason, min_dynamic_range=settings.min_dynamic_range,
                          bleach_correction=settings.bleach_correction,
                          plateau_max_slope_pct_per_min=settings.plateau_max_slope_pct_per_min,
                          responder_min_rise=settings.responder_min_rise, peak_window_s=settings.peak_window_s,
                          area_px=np.bincount(measured.ravel(), minlength=seg.n + 1)[1:])
    return ImagingResult(stack=stack, time_s=time_s, registration=reg, reference=reference, segmentation=seg,
                         traces=traces, events=events, phases=phases, calibration=cal, kd_nM=kd,
                         saturation_value=saturation, saturation_source=saturation_src)
