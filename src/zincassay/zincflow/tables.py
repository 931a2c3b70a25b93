"""A zinc-by-flow result as table rows.

- :func:`zinc_rows`: ``results/zincflow/zinc.tsv``, one row per sample x subset.
- :func:`gate_rows`: every gate and marker split of every tube of the sample.
- :func:`kinetic_rows`: per subset of a kinetic tube, baseline / peak / time to peak / delta.
- :func:`kinetic_bin_rows`: per subset and time bin of a kinetic tube.

``meta`` holds the sample-sheet fields of the sample (``sample_id``, ``condition``, ``donor``,
``batch``, the matched ``culture``, ``fmin``, ``fmax``, ``unstained`` ids and any extra columns);
they are carried into every row (sheet columns first, extra columns last).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from zincassay.zincflow.pipeline import ZincflowResult

__all__ = ["ZINC_COLUMNS", "gate_rows", "kinetic_bin_rows", "kinetic_rows", "zinc_rows"]

_ID = ("sample_id", "condition", "donor", "batch", "culture")
#: Columns of ``zinc.tsv`` before the sheet's extra columns.
ZINC_COLUMNS = (
    *_ID, "subset", "kinetic", "F_median", "Fmin_median", "Fmax_median", "af_median", "af_subtracted",
    "dynamic_range", "f", "zn_nM", "zn_ci_low", "zn_ci_high", "kd_nM", "probe", "channel",
    "events_sample", "events_fmin", "events_fmax", "events_unstained", "fmax_saturated_fraction",
    "qc_pass", "qc_flags", "instrument", "instrument_fmin", "instrument_fmax", "instrument_serial",
    "compensation", "bootstrap_replicates", "fmin", "fmax", "unstained",
)


def _ids(meta: dict) -> dict:
    return {k: meta.get(k, "") for k in _ID}


def _extras(row: dict, meta: dict) -> dict:
    for k, v in meta.items():
        row.setdefault(k, v)
    return row


def zinc_rows(result: ZincflowResult, meta: dict) -> pd.DataFrame:
    """One row per configured subset (config order); columns :data:`ZINC_COLUMNS` then extras."""
    rows = []
    for sr in result.subsets:
        c = sr.calibration
        row = _ids(meta)
        row.update(
            subset=sr.subset.name, kinetic=result.addition is not None, F_median=c.F, Fmin_median=c.Fmin,
            Fmax_median=c.Fmax, af_median=c.af, af_subtracted=bool(np.isfinite(c.af)), dynamic_range=c.dynamic_range,
            f=c.f, zn_nM=c.zn_nM, zn_ci_low=c.zn_ci_low, zn_ci_high=c.zn_ci_high, kd_nM=result.kd_nM,
            probe=result.probe, channel=result.channel, events_sample=c.events_sample, events_fmin=c.events_fmin,
            events_fmax=c.events_fmax, events_unstained=c.events_unstained,
            fmax_saturated_fraction=c.fmax_saturated_fraction, qc_pass=c.qc_pass, qc_flags=";".join(c.flags),
            instrument=result.sample.instrument, instrument_fmin=result.fmin.instrument,
            instrument_fmax=result.fmax.instrument, instrument_serial=result.sample.instrument_serial,
            compensation=result.sample.compensation, bootstrap_replicates=result.bootstrap_replicates,
            fmin=meta.get("fmin", ""), fmax=meta.get("fmax", ""), unstained=meta.get("unstained", ""),
        )
        rows.append(_extras(row, meta))
    return pd.DataFrame(rows, columns=list(dict.fromkeys([*ZINC_COLUMNS, *(k for r in rows for k in r)])))


def gate_rows(result: ZincflowResult, meta: dict) -> pd.DataFrame:
    """Events in and kept by each gate of each tube, then each marker's threshold and its source."""
    rows = []
    for role, tube in result.tubes.items():
        base = {"sample_id": meta.get("sample_id", ""), "tube": role, "file": str(tube.path)}
        for i, g in enumerate(tube.gating.gates):
            rows.append({**base, "step": i + 1, "gate": g.name, "events_in": g.events_in, "events_kept": g.events_kept,
                         "fraction_kept": g.events_kept / g.events_in if g.events_in else np.nan,
                         "channel": "", "threshold": np.nan, "note": g.note})
        n = len(tube.gating.gates)
        for j, m in enumerate(tube.markers.values()):
            gated = int(tube.gating.mask.sum())
            pos = int((tube.marker_values[m.marker][tube.gating.mask] > m.threshold).sum()) if m.threshold is not None else 0
            rows.append({**base, "step": n + j + 1, "gate": f"{m.marker}+", "events_in": gated,
                         "events_kept": pos if m.threshold is not None else np.nan,
                         "fraction_kept": pos / gated if gated and m.threshold is not None else np.nan,
                         "channel": m.channel, "threshold": m.threshold if m.threshold is not None else np.nan,
                         "note": m.source})
    return pd.DataFrame(rows)


def kinetic_rows(result: ZincflowResult, meta: dict) -> pd.DataFrame:
    """Per subset of a kinetic tube: addition, baseline, peak, time to peak, delta (empty otherwise)."""
    a = result.addition
    rows = []
    if a is None:
        return pd.DataFrame(rows)
    for sr in result.subsets:
        k = sr.kinetic
        row = {**_ids(meta), "subset": sr.subset.name, "addition_s": a.addition_s, "addition_source": a.source,
               "gap_start_s": a.gap_start_s, "gap_end_s": a.gap_end_s, "gaps_found": a.gaps_found}
        if k is None:
            row.update(baseline_events=0, baseline_zn_nM=np.nan, peak_zn_nM=np.nan, delta_zn_nM=np.nan,
                       time_to_peak_s=np.nan, kinetic_flags="no calibration")
        else:
            row.update(baseline_events=k.baseline_events, baseline_zn_nM=k.baseline_zn_nM, peak_zn_nM=k.peak_zn_nM,
                       delta_zn_nM=k.delta_zn_nM, time_to_peak_s=k.time_to_peak_s, kinetic_flags=";".join(k.flags))
        row.update(qc_flags=";".join(sr.calibration.flags), kd_nM=result.kd_nM)
        rows.append(_extras(row, meta))
    return pd.DataFrame(rows)


def kinetic_bin_rows(result: ZincflowResult, meta: dict) -> pd.DataFrame:
    """Per subset and time bin of a kinetic tube: events, median F, f, [Zn2+] (time from the addition)."""
    frames = []
    if result.addition is None:
        return pd.DataFrame()
    for sr in result.subsets:
        k = sr.kinetic
        if k is None:
            continue
        frames.append(pd.DataFrame({
            "sample_id": meta.get("sample_id", ""), "subset": sr.subset.name, "bin_start_s": k.bin_start_s,
            "bin_end_s": k.bin_end_s, "time_from_addition_s": (k.bin_start_s + k.bin_end_s) / 2 - result.addition.addition_s,
            "events": k.events, "F_median": k.F_median, "f": k.f, "zn_nM": k.zn_nM}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
