"""Zinc-by-flow results as table rows (``results/zincflow/...``).

- :func:`zinc_table`: ``zinc.tsv``, one row per sample x subset.
- :func:`gates_table`: every gate and marker split of every tube of the sample.
- :func:`kinetics_table`: per subset of a kinetic tube, baseline / peak / time to peak / delta.
- :func:`kinetic_bins_table`: per subset and time bin of a kinetic tube.
- :func:`readouts_table`: from the collected ``zinc.tsv``, one row per sample with ``zn_nM_<subset>``
  (the readouts compared across conditions).

Rows start with the sample's labels (``sample_id, condition, donor, batch``) and its ``culture``
and end with the sheet's extra columns. Matched control ids are read from ``sample.controls``
(``fmin``, ``fmax``, ``unstained``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from zincassay.samplesheet import Sample
from zincassay.zincflow.instruments import NO_CYT, instrument_groups, instrument_problems
from zincassay.zincflow.pipeline import ZincflowResult

__all__ = ["ZINC_COLUMNS", "gates_table", "kinetic_bins_table", "kinetics_table", "readouts_table", "zinc_table"]

#: Columns of ``zinc.tsv`` before the sheet's extra columns.
ZINC_COLUMNS = (
    "sample_id", "condition", "donor", "batch", "status", "failure", "culture", "subset", "kinetic", "F_median",
    "Fmin_median", "Fmax_median", "af_median", "af_subtracted", "dynamic_range", "f", "zn_nM", "zn_ci_low", "zn_ci_high", "kd_nM",
    "probe", "channel", "events_sample", "events_fmin", "events_fmax", "events_unstained", "fmax_saturated_fraction",
    "qc_pass", "qc_flags", "instrument", "instrument_fmin", "instrument_fmax", "instrument_serial", "compensation",
    "bootstrap_replicates", "fmin", "fmax", "unstained",
)


def _head(sample: Sample, culture: str) -> dict:
    return {**sample.labels, "status": "ok", "failure": "", "culture": culture}


def zinc_table(r: ZincflowResult, sample: Sample, *, culture: str) -> pd.DataFrame:
    """One row per configured subset, in config order: medians, f, [Zn2+] with its 95 % CI, event
    counts, QC, instruments, matched controls, then the sheet's extra columns."""
    rows = []
    for sr in r.subsets:
        c = sr.calibration
        row = _head(sample, culture)
        row.update(
            subset=sr.subset.name, kinetic=r.addition is not None, F_median=c.F, Fmin_median=c.Fmin,
            Fmax_median=c.Fmax, af_median=c.af, af_subtracted=bool(np.isfinite(c.af)), dynamic_range=c.dynamic_range,
            f=c.f, zn_nM=c.zn_nM, zn_ci_low=c.zn_ci_low, zn_ci_high=c.zn_ci_high, kd_nM=r.kd_nM, probe=r.probe,
            channel=r.channel, events_sample=c.events_sample, events_fmin=c.events_fmin, events_fmax=c.events_fmax,
            events_unstained=c.events_unstained, fmax_saturated_fraction=c.fmax_saturated_fraction,
            qc_pass=c.qc_pass, qc_flags=";".join(c.flags), instrument=r.sample.instrument,
            instrument_fmin=r.fmin.instrument, instrument_fmax=r.fmax.instrument,
            instrument_serial=r.sample.instrument_serial, compensation=r.sample.compensation,
            bootstrap_replicates=r.bootstrap_replicates, fmin=sample.controls.get("fmin", ""),
            fmax=sample.controls.get("fmax", ""), unstained=sample.controls.get("unstained", ""),
        )
        row.update(sample.extra)
        rows.append(row)
    return pd.DataFrame(rows, columns=[*ZINC_COLUMNS, *sample.extra])


def gates_table(r: ZincflowResult, sample_id: str) -> pd.DataFrame:
    """Per tube: events in and kept by each gate, then each marker's threshold (linear) and its
    source (``valley``, ``manual``, ``no valley``) with the events above it."""
    rows = []
    for role, tube in r.tubes.items():
        base = {"sample_id": sample_id, "tube": role, "file": str(tube.path)}
        for i, g in enumerate(tube.gating.gates):
            rows.append({**base, "step": i + 1, "gate": g.name, "events_in": g.events_in, "events_kept": g.events_kept,
                         "fraction_kept": g.events_kept / g.events_in if g.events_in else np.nan,
                         "channel": "", "threshold": np.nan, "note": g.note})
        gated = int(tube.gating.mask.sum())
        for j, m in enumerate(tube.markers.values()):
            split = m.threshold is not None
            pos = int((tube.marker_values[m.marker][tube.gating.mask] > m.threshold).sum()) if split else np.nan
            rows.append({**base, "step": len(tube.gating.gates) + j + 1, "gate": f"{m.marker}+", "events_in": gated,
                         "events_kept": pos, "fraction_kept": pos / gated if gated and split else np.nan,
                         "channel": m.channel, "threshold": m.threshold if split else np.nan, "note": m.source})
    return pd.DataFrame(rows)


def kinetics_table(r: ZincflowResult, sample: Sample, *, culture: str) -> pd.DataFrame:
    """Per subset of a kinetic tube: the addition (s on the Time channel) and how it was found,
    baseline, peak and delta [Zn2+] (nM), time to peak (s from the addition). Empty for a static tube."""
    a = r.addition
    if a is None:
        return pd.DataFrame()
    rows = []
    for sr in r.subsets:
        k = sr.kinetic
        row = _head(sample, culture)
        row.update(subset=sr.subset.name, addition_s=a.addition_s, addition_source=a.source,
                   gap_start_s=a.gap_start_s, gap_end_s=a.gap_end_s, gaps_found=a.gaps_found)
        if k is None:
            row.update(baseline_events=0, baseline_zn_nM=np.nan, peak_zn_nM=np.nan, delta_zn_nM=np.nan,
                       time_to_peak_s=np.nan, kinetic_flags="")
        else:
            row.update(baseline_events=k.baseline_events, baseline_zn_nM=k.baseline_zn_nM, peak_zn_nM=k.peak_zn_nM,
                       delta_zn_nM=k.delta_zn_nM, time_to_peak_s=k.time_to_peak_s, kinetic_flags=";".join(k.flags))
        row.update(qc_flags=";".join(sr.calibration.flags), kd_nM=r.kd_nM)
        row.update(sample.extra)
        rows.append(row)
    return pd.DataFrame(rows)


def kinetic_bins_table(r: ZincflowResult, sample_id: str) -> pd.DataFrame:
    """Per subset and time bin of a kinetic tube: bin edges (s), time from the addition (s, bin
    centre), events, median F (AF-subtracted when the calibration is), f, [Zn2+] (nM)."""
    if r.addition is None:
        return pd.DataFrame()
    frames = [pd.DataFrame({
        "sample_id": sample_id, "subset": sr.subset.name, "bin_start_s": k.bin_start_s, "bin_end_s": k.bin_end_s,
        "time_from_addition_s": (k.bin_start_s + k.bin_end_s) / 2 - r.addition.addition_s, "events": k.events,
        "F_median": k.F_median, "f": k.f, "zn_nM": k.zn_nM})
        for sr in r.subsets if (k := sr.kinetic) is not None]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def readouts_table(zinc: pd.DataFrame, *, pool_instruments: bool, source: str) -> tuple[pd.DataFrame, list[str]]:
    """One row per sample from the collected ``zinc.tsv``: the readouts compared across conditions.

    Columns: ``sample_id, condition, donor, batch, status, failure``, ``qc_flags`` (every subset's
    flags as ``<subset>:<flag>``), then ``zn_nM_<subset>`` per subset (config order), blank where the
    subset fails QC. Values measured on different instruments (``$CYT`` of the sample tube) are not
    pooled unless ``pool_instruments``: each readout is then split per instrument,
    ``zn_nM_<subset>@<instrument>``, so conditions are compared within an instrument only.
    The sheet's extra columns are left out (a numeric one would be taken for a readout).

    Returns
    -------
    table : DataFrame
    notes : list of str
        Why readouts were split by instrument (:func:`~zincassay.zincflow.instruments.instrument_problems`), or [].
    """
    labels = ["sample_id", "condition", "donor", "batch", "status", "failure"]
    ok = zinc[zinc["status"].astype(str) == "ok"]
    notes = instrument_problems(ok, pool_instruments=pool_instruments, source=source)
    by_instrument = {s: name for name, ids in instrument_groups(ok).items() for s in ids} if notes else {}
    subsets = list(dict.fromkeys(ok["subset"].astype(str))) if "subset" in ok else []
    rows = []
    for sid, g in zinc.groupby("sample_id", sort=True):
        first = g.iloc[0]
        row = {c: first.get(c, "") for c in labels}
        flags = [f"{sub}:{f}" for sub, fl in zip(g.get("subset", []), g.get("qc_flags", []), strict=True)
                 if isinstance(fl, str) for f in fl.split(";") if f]
        row["qc_flags"] = ";".join(flags)
        suffix = f"@{by_instrument.get(str(sid), NO_CYT)}" if by_instrument else ""
        if str(first["status"]) == "ok":
            for _, r in g.iterrows():
                passed = str(r["qc_pass"]).lower() == "true"
                row[f"zn_nM_{r['subset']}{suffix}"] = r["zn_nM"] if passed else np.nan
        rows.append(row)
    readouts = [f"zn_nM_{sub}{suffix}" for suffix in
                (sorted({f"@{i}" for i in by_instrument.values()}) if by_instrument else [""]) for sub in subsets]
    table = pd.DataFrame(rows, columns=[*labels, "qc_flags", *readouts])
    return table.astype({c: float for c in readouts}), notes
