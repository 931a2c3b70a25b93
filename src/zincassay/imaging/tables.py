"""Zinc-imaging results as table rows (``results/imaging/...``); columns are in the README's output contract."""

from __future__ import annotations

import numpy as np
import pandas as pd

from zincassay.imaging.pipeline import ImagingResult
from zincassay.samplesheet import Sample

__all__ = ["cell_table", "frame_table", "summary_row", "trace_table"]


def cell_table(r: ImagingResult, sample: Sample) -> pd.DataFrame:
    """One row per segmented object (``results/imaging/cells.tsv``)."""
    c, s = r.calibration, r.segmentation
    df = pd.DataFrame({
        "sample_id": sample.sample_id,
        "cell_id": np.arange(1, s.n + 1),
        "centroid_x": s.centroid_x, "centroid_y": s.centroid_y, "area_px": s.area_px,
        "fmin": c.fmin, "fmax": c.fmax, "dynamic_range": c.dynamic_range,
        "baseline_zn_nM": c.baseline_zn_nM, "peak_zn_nM": c.peak_zn_nM, "delta_zn_nM": c.delta_zn_nM,
        "time_to_peak_s": c.time_to_peak_s, "auc_zn_nM_s": c.auc_zn_nM_s,
        "responder": c.responder, "qc_pass": c.qc_pass, "qc_reason": c.qc_reason, "qc_flags": c.qc_flags,
        "saturated_px_fmax": r.traces.saturated[r.phases.pyrithione].max(axis=0),
    })
    for k, v in {**sample.labels, **sample.extra}.items():
        if k != "sample_id":
            df[k] = v
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


def summary_row(r: ImagingResult, sample: Sample) -> pd.DataFrame:
    """One row per sample (``results/imaging/summary.tsv``)."""
    c = r.calibration
    ok = c.qc_pass
    row: dict = {**sample.labels, "status": "ok", "failure": ""}
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
    row.update(sample.extra)
    return pd.DataFrame([row])
