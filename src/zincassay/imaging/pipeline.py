"""One imaging sample end to end: read, register, segment, trace, calibrate, tabulate."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from skimage.segmentation import expand_labels

from zincassay.config import kd_nM as config_kd_nM
from zincassay.imaging.calibrate import Calibration, calibrate_cells, population_trace, response_trace
from zincassay.imaging.events import Events, Phases, detect_events
from zincassay.imaging.register import Registration, register_stack
from zincassay.imaging.saturation import frame_statistics, saturation_level
from zincassay.imaging.segment import Segmentation, reference_image, segment_cells
from zincassay.imaging.traces import Traces, extract_traces, interior
from zincassay.io.stacks import ImagingError, Stack, read_stack

__all__ = ["ImagingResult", "analyse_stack", "cell_table", "frame_table", "measurement_labels", "summary_row",
           "trace_table"]


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
    def registered(self) -> np.ndarray:
        """Frames that could be registered (T,) bool."""
        return self.registration.registered


def _number(meta: dict, key: str) -> float | None:
    v = meta.get(key)
    if v is None or (isinstance(v, str) and v.strip() in ("", "nan", "NA")):
        return None
    v = float(v)
    return None if math.isnan(v) else v


def _area_limits_px(cfg: dict, pixel_size_um: float | None) -> tuple[float, float]:
    if pixel_size_um:
        lo, hi = cfg.get("cell_area_um2", [7, 2500])
        return lo / pixel_size_um**2, hi / pixel_size_um**2
    return tuple(cfg.get("cell_area_px", [12, 40000]))


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


def measurement_labels(seg: Segmentation, erode_px: int = 0) -> np.ndarray:
    """The pixels each cell is measured over (Y, X) int: its extent, eroded by ``erode_px``, plus
    a margin of a quarter radius (not into other cells), so that a cell that rounds up or shrinks
    after pyrithione (its dye conserved) keeps all its light in the measurement."""
    return expand_labels(interior(seg.labels, erode_px), distance=max(1.0, 0.25 * seg.radius_px))


def analyse_stack(path: str, cfg: dict, meta: dict) -> ImagingResult:
    """Analyse one stack.

    Parameters
    ----------
    path : str
        The stack (see :func:`zincassay.io.stacks.read_stack`).
    cfg : dict
        The resolved ``imaging`` config section.
    meta : dict
        Sample-sheet fields; ``frame_interval_s``, ``stimulus_s``, ``pyrithione_s``, ``tpen_s``
        may be blank (taken from the metadata / detected).
    """
    stack = read_stack(path, cfg.get("channel"))
    data = stack.data
    interval = _number(meta, "frame_interval_s") or stack.frame_interval_s
    if not interval:
        raise ImagingError(f"{path}: the frame interval is neither in the sample sheet nor in the file's metadata; "
                           "fill in frame_interval_s (seconds) in the sample sheet")
    T = stack.n_frames
    time_s = np.arange(T) * interval
    known = {k: _number(meta, k) for k in ("stimulus_s", "pyrithione_s", "tpen_s")}
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
    saturation, saturation_src = saturation_level(stats, data.dtype, bit_depth_setting=cfg.get("bit_depth"),
                                                  bit_depth_metadata=stack.bit_depth)
    if cfg.get("registration", True):
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
    pixel_size_um = stack.pixel_size_um or cfg.get("pixel_size_um")
    seg = segment_cells(reference, _area_limits_px(cfg, pixel_size_um))
    if seg.n == 0:
        raise ImagingError(f"{path}: no cells found on the Fmax reference image; check the channel and that the "
                           "stack contains the pyrithione + ZnCl2 step")
    measured = measurement_labels(seg, int(cfg.get("erode_px", 0)))
    leaving = _leaves_field(measured, shifts, registered, seg.n)
    seg.reason = [r or ("touches_border" if leaving[i] else "") for i, r in enumerate(seg.reason)]
    traces = extract_traces(data, measured, shifts, saturation, frames=registered)
    if None in known.values():
        F = traces.mean - traces.cell_background
        usable = np.array([r == "" for r in seg.reason])
        first = np.flatnonzero(registered)[: max(3, T // 10)]
        events = detect(population_trace(F, np.arange(T), usable), response_trace(F, first, usable))
        phases = Phases.from_events(events, time_s)
    kd = config_kd_nM({"imaging": {"probe": "FluoZin-3", **cfg}})
    cal = calibrate_cells(traces.mean, traces.cell_background, traces.saturated, time_s, events, phases, kd,
                          seg.reason, min_dynamic_range=cfg.get("min_dynamic_range", 2.0),
                          bleach_correction=cfg.get("bleach_correction", True),
                          plateau_max_slope_pct_per_min=cfg.get("plateau_max_slope_pct_per_min", 6.0),
                          responder_min_rise=cfg.get("responder_min_rise", 0.5),
                          area_px=np.bincount(measured.ravel(), minlength=seg.n + 1)[1:])
    return ImagingResult(stack=stack, time_s=time_s, registration=reg, reference=reference, segmentation=seg,
                         traces=traces, events=events, phases=phases, calibration=cal, kd_nM=kd,
                         saturation_value=saturation, saturation_source=saturation_src)


def cell_table(r: ImagingResult, meta: dict, extra: list[str]) -> pd.DataFrame:
    """One row per segmented object (``results/imaging/cells.tsv``)."""
    c, s = r.calibration, r.segmentation
    df = pd.DataFrame({
        "sample_id": meta["sample_id"],
        "cell_id": np.arange(1, s.n + 1),
        "centroid_x": s.centroid_x, "centroid_y": s.centroid_y, "area_px": s.area_px,
        "fmin": c.fmin, "fmax": c.fmax, "dynamic_range": c.dynamic_range,
        "baseline_zn_nM": c.baseline_zn_nM, "peak_zn_nM": c.peak_zn_nM, "delta_zn_nM": c.delta_zn_nM,
        "time_to_peak_s": c.time_to_peak_s, "auc_zn_nM_s": c.auc_zn_nM_s,
        "responder": c.responder, "qc_pass": c.qc_pass, "qc_reason": c.qc_reason, "qc_flags": c.qc_flags,
        "saturated_px_fmax": r.traces.saturated[r.phases.pyrithione].max(axis=0),
    })
    for k in ["condition", "donor", "batch", *extra]:
        df[k] = meta.get(k, "")
    return df


def trace_table(r: ImagingResult, sample_id: str) -> pd.DataFrame:
    """Long per-frame traces: ``sample_id, cell_id, frame, time_s, F_counts, f, zn_nM``.

    ``F_counts``: background-subtracted (and bleach-corrected) mean intensity; ``f``: fractional
    saturation (F - Fmin)/(Fmax - Fmin); ``zn_nM``: free zinc, empty where F >= Fmax.
    """
    T, N = r.calibration.F.shape
    return pd.DataFrame({
        "sample_id": sample_id,
        "cell_id": np.tile(np.arange(1, N + 1), T),
        "frame": np.repeat(np.arange(T), N),
        "time_s": np.repeat(r.time_s, N),
        "F_counts": r.calibration.F.ravel(),
        "f": r.calibration.f.ravel(),
        "zn_nM": r.calibration.zn_nM.ravel(),
    }).sort_values(["cell_id", "frame"], kind="stable")


def frame_table(r: ImagingResult, sample_id: str) -> pd.DataFrame:
    """Per frame: ``time_s``, registration ``shift_y_px``/``shift_x_px``, ``registration_confidence``
    (0-1), ``registered``, ``background`` (field mean, counts), phase and plateau membership."""
    t = r.time_s
    c = r.calibration
    plateau = np.full(len(t), "", dtype=object)
    plateau[c.fmax_frames] = "fmax"
    plateau[c.fmin_frames] = "fmin"
    return pd.DataFrame({"sample_id": sample_id, "frame": np.arange(len(t)), "time_s": t,
                         "shift_y_px": r.shifts[:, 0], "shift_x_px": r.shifts[:, 1],
                         "registration_confidence": r.registration.confidence, "registered": r.registered,
                         "background": r.traces.background, "phase": r.phases.label, "plateau": plateau})


def _quartiles(x: np.ndarray) -> tuple[float, float, float]:
    x = x[np.isfinite(x)]
    if not len(x):
        return (np.nan, np.nan, np.nan)
    q = np.percentile(x, [50, 25, 75])
    return float(q[0]), float(q[1]), float(q[2])


def summary_row(r: ImagingResult, meta: dict, extra: list[str]) -> pd.DataFrame:
    """One row per sample (``results/imaging/summary.tsv``)."""
    c = r.calibration
    ok = c.qc_pass
    row: dict = {"sample_id": meta["sample_id"]}
    for k in ("condition", "donor", "batch"):
        row[k] = meta.get(k, "")
    row["n_cells"] = r.segmentation.n
    row["n_pass"] = int(ok.sum())
    for name, vals in (("baseline_zn_nM", c.baseline_zn_nM), ("peak_zn_nM", c.peak_zn_nM),
                       ("delta_zn_nM", c.delta_zn_nM)):
        med, lo, hi = _quartiles(vals[ok])
        row[f"median_{name}"], row[f"q25_{name}"], row[f"q75_{name}"] = med, lo, hi
    row["fraction_responding"] = float(c.responder[ok].mean()) if ok.any() else np.nan
    row["stimulus_s"], row["pyrithione_s"], row["tpen_s"] = (r.events.stimulus_s, r.events.pyrithione_s,
                                                             r.events.tpen_s)
    row["events_detected"] = ",".join(f"{k}:{r.events.source[k]}" for k in r.events.detected)
    row["fmax_window_s"] = f"{r.time_s[c.fmax_frames[0]]:g}-{r.time_s[c.fmax_frames[-1]]:g}"
    row["fmin_window_s"] = f"{r.time_s[c.fmin_frames[0]]:g}-{r.time_s[c.fmin_frames[-1]]:g}"
    drift = np.hypot(*r.shifts[r.registered].T)
    row["mean_drift_px"] = float(drift.mean()) if len(drift) else np.nan
    row["max_drift_px"] = float(drift.max()) if len(drift) else np.nan
    row["unregistered_frames"] = int((~r.registered).sum())
    row["bleaching_pct"] = float(100 * (1 - np.exp(-c.bleach_rate_per_s * r.time_s[-1])))
    row["bleach_corrected"] = "bleaching_uncorrected" not in c.sample_flags and c.bleach_rate_per_s > 0
    row["kd_nM"] = r.kd_nM
    row["saturation_value"] = r.saturation_value
    row["saturation_source"] = r.saturation_source
    row["cell_radius_px"] = r.segmentation.radius_px
    row["frame_interval_s"] = float(r.time_s[1] - r.time_s[0])
    row["n_frames"] = len(r.time_s)
    row["sample_flags"] = ";".join(c.sample_flags)
    for k in extra:
        row[k] = meta.get(k, "")
    return pd.DataFrame([row])
