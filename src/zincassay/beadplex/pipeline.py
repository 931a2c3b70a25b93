"""Bead-array analysis: one FCS file -> reporter medians per bead; one run's wells -> concentrations.

Two steps, so a workflow can run the first per file in parallel and the second per batch:

- :func:`measure_well` reads and compensates one FCS file, finds its bead populations and returns
  the reporter median of every bead (a missing population is a row with a flag, not an error);
- :func:`quantify_run` takes the well table of one batch (standards, blanks, samples) and the
  medians of all its wells and returns, per analyte, the standard curve and the samples'
  concentrations (:mod:`zincassay.curves`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from zincassay.beadplex.panel import Panel
from zincassay.beadplex.populations import BeadPopulations, find_bead_populations
from zincassay.beadplex.settings import BeadplexSettings
from zincassay.curves.quantify import run_noise_cv2, with_run_noise
from zincassay.curves.run import AnalyteResult, fit_analyte_curve, quantify_analyte, replicate_means
from zincassay.curves.settings import CurveSettings
from zincassay.curves.standards import parse_dilution
from zincassay.errors import ZincassayError
from zincassay.flow.gating import find_scatter_channels
from zincassay.io.fcs import FCSData, read_fcs, read_spill_csv

__all__ = ["BEAD_COLUMNS", "ROLES", "BeadplexRun", "WellMeasurement", "measure_well", "quantify_run"]

ROLES = ("standard", "blank", "sample")
BEAD_COLUMNS = ("bead_id", "group", "analyte", "n_beads", "reporter_median", "reporter_rcv_pct",
                "classification_peak_log10", "classification_sd_log10", "flag")


@dataclass
class WellMeasurement:
    """One well: its bead table (one row per panel bead, :data:`BEAD_COLUMNS`), the populations,
    the compensated channels used (for figures) and notes."""

    path: Path
    beads: pd.DataFrame
    populations: BeadPopulations
    fsc: np.ndarray
    ssc: np.ndarray
    classification: np.ndarray
    reporter: np.ndarray
    compensation: str
    notes: list[str]


def _compensated(data: FCSData, mode: str) -> FCSData:
    """``data`` compensated as configured (``auto``, ``off`` or a CSV path); a bad matrix raises
    :class:`zincassay.io.fcs.CompensationError` (a ZincassayError)."""
    if mode == "off":
        return data
    spill = read_spill_csv(mode) if mode != "auto" else None
    if spill is None and data.spill is None and not data.spill_problem:
        return data
    return data.compensated(spill)


def measure_well(path: str | Path, *, panel: Panel, settings: BeadplexSettings) -> WellMeasurement:
    """Reporter median of every bead of the panel in one FCS file.

    Parameters
    ----------
    path : FCS file of one well.
    panel : the kit (:func:`zincassay.beadplex.panel.load_panel`).
    settings : BeadplexSettings

    Returns
    -------
    WellMeasurement
        ``beads`` has a row per panel bead; a bead without a population has ``n_beads`` 0, NaN
        median and ``flag`` 'missing' (or 'ambiguous'); fewer than ``min_beads_per_population``
        events give 'low_bead_count'.

    Raises
    ------
    ZincassayError
        Unreadable file, unknown channel, bad spill matrix, no scatter channels.
    """
    data = _compensated(read_fcs(path), settings.compensate)
    events = data.events
    overrides = {"fsc_a": settings.scatter.fsc_a, "fsc_h": settings.scatter.fsc_h, "ssc": settings.scatter.ssc}
    sc = find_scatter_channels(data, overrides)
    if not (sc.fsc and sc.ssc):
        raise ZincassayError(f"{data.path}: no FSC/SSC channels among {', '.join(data.channel_names)}; "
                             "set beadplex.scatter.fsc_a / ssc")
    col = {name: events[:, data.channel_index(ch)] for name, ch in (
        ("fsc", sc.fsc), ("ssc", sc.ssc), ("cls", settings.classification_channel), ("rep", settings.reporter_channel))}
    fa = events[:, data.channel_index(sc.fsc_a)] if sc.fsc_a else None
    fh = events[:, data.channel_index(sc.fsc_h)] if sc.fsc_h else None
    pops = find_bead_populations(col["fsc"], col["ssc"], col["cls"], groups=list(panel.groups),
                                 beads=[[(b.bead_id, b.position) for b in panel.beads_in(g)] for g in panel.groups],
                                 fsc_a=fa, fsc_h=fh)
    rows = []
    for b in panel.beads:
        sel = pops.bead == pops.bead_ids.index(b.bead_id)
        rep = col["rep"][sel]
        n = int(sel.sum())
        med = float(np.median(rep)) if n else np.nan
        rcv = float(100 * 1.4826 * np.median(np.abs(rep - med)) / abs(med)) if n and med else np.nan
        if b.group in pops.ambiguous_groups:
            flag = "ambiguous"
        elif b.bead_id in pops.missing:
            flag = "missing"
        elif n < settings.min_beads_per_population:
            flag = "low_bead_count"
        else:
            flag = ""
        rows.append({"bead_id": b.bead_id, "group": b.group, "analyte": b.analyte, "n_beads": n,
                     "reporter_median": med, "reporter_rcv_pct": rcv,
                     "classification_peak_log10": pops.peak_log10.get(b.bead_id, np.nan),
                     "classification_sd_log10": pops.sd_log10.get(b.bead_id, np.nan), "flag": flag})
    notes = [f"{data.path}: {n}" for n in pops.notes]
    for b in panel.beads:
        if b.bead_id in pops.missing and b.group not in pops.ambiguous_groups:
            notes.append(f"{data.path}: bead {b.bead_id} ({b.analyte}) not found; {b.analyte} is not measured "
                         "in this well (other analytes are)")
    return WellMeasurement(Path(path), pd.DataFrame(rows, columns=list(BEAD_COLUMNS)), pops, col["fsc"], col["ssc"],
                           col["cls"], col["rep"], data.compensation, notes)


@dataclass
class BeadplexRun:
    """One batch: per analyte the curve and the samples' concentrations, plus run-level notes."""

    analytes: list[AnalyteResult]
    wells: pd.DataFrame
    notes: list[str]


def _well_table(wells: pd.DataFrame, panel: Panel) -> pd.DataFrame:
    """Validated copy of the well table with ``relative`` (x top standard), ``dilution`` and ``sample``."""
    w = wells.copy()
    for c in ("standard_level", "dilution", "replicate_of"):
        if c not in w:
            w[c] = ""
    w = w.fillna({"standard_level": "", "dilution": "", "replicate_of": ""})
    rel, dil, sample = [], [], []
    for _, r in w.iterrows():
        sid, role = str(r["sample_id"]), str(r["role"])
        if role not in ROLES:
            raise ZincassayError(f"well {sid}: role {role!r} is not one of {', '.join(ROLES)}")
        if role == "standard":
            level = str(r["standard_level"]).strip()
            value = panel.standards.relative(level) if level else None
            if value is None:
                raise ZincassayError(f"well {sid}: standard_level {level!r} is not a level of {panel.source} "
                                     f"({', '.join(panel.standards.levels)}); set it in the sample sheet")
            rel.append(value)
        else:
            rel.append(0.0 if role == "blank" else np.nan)
        d = str(r["dilution"]).strip()
        dil.append(parse_dilution(d, f"well {sid}") if d else 1.0)
        rep = str(r["replicate_of"]).strip()
        sample.append(rep if rep else sid)
    w["relative"] = rel
    w["dilution"] = dil
    w["sample"] = sample
    known = set(w["sample_id"])
    for sid, target in zip(w["sample_id"], w["sample"], strict=True):
        if target not in known:
            raise ZincassayError(f"well {sid}: replicate_of {target!r} is not a sample_id of this batch")
    return w


def quantify_run(wells: pd.DataFrame, beads: pd.DataFrame, *, panel: Panel, settings: CurveSettings) -> BeadplexRun:
    """Standard curves and sample concentrations of one batch.

    Parameters
    ----------
    wells : DataFrame
        One row per well (FCS file) of the batch: ``sample_id``, ``role`` (standard, blank,
        sample), ``standard_level`` (a level of the kit, for standards), ``dilution`` (factor or
        '1:n'; blank = 1) and ``replicate_of`` (the sample_id of the first well of the same sample;
        blank for that first well).
    beads : DataFrame
        :data:`BEAD_COLUMNS` of every well plus ``sample_id`` (from :func:`measure_well`).
    panel : Panel
    settings : CurveSettings

    Returns
    -------
    BeadplexRun
        Sample rows are keyed by the first well's sample_id; the concentration is of the undiluted
        sample (dilution applied).

    Raises
    ------
    ZincassayError
        Unknown role or standard level, ``replicate_of`` naming no well, replicate wells with
        different dilutions, no standard wells.
    """
    w = _well_table(wells, panel)
    notes: list[str] = []
    if not (w["role"] == "standard").any():
        raise ZincassayError("the batch has no standard wells (role 'standard'); a bead-array run needs its standards")
    merged = w.merge(beads, on="sample_id", how="left")
    per_bead = []
    for b in panel.beads:
        m = merged[merged["bead_id"] == b.bead_id].copy()
        m["signal"] = m["reporter_median"]
        std_roles = ["standard", "blank"] if settings.blanks_as_zero_standard else ["standard"]
        st = m[m["role"].isin(std_roles)]
        blank_name = panel.standards.blank or "blank"
        standards = pd.DataFrame({
            "concentration": b.top_standard * st["relative"].to_numpy(dtype=float),
            "signal": st["signal"].to_numpy(dtype=float),
            "level": [str(lv) if role == "standard" else blank_name
                      for lv, role in zip(st["standard_level"], st["role"], strict=True)]})
        sm = m[m["role"] == "sample"]
        for sid, grp in sm.groupby("sample"):
            if grp["dilution"].nunique() > 1:
                raise ZincassayError(f"sample {sid}: its replicate wells have different dilutions "
                                     f"({', '.join(map(str, sorted(grp['dilution'].unique())))}); give each its own sample_id")
        means = replicate_means(sm, "sample").rename(columns={"sample": "sample_id"})
        first = sm.drop_duplicates("sample").set_index("sample")
        means["dilution"] = first.loc[means["sample_id"], "dilution"].to_numpy(dtype=float) if len(means) else []
        flags = sm.groupby("sample")["flag"].agg(lambda f: ";".join(sorted({
            {"missing": "bead_population_missing", "ambiguous": "bead_assignment_ambiguous"}.get(x, x)
            for x in f if x})))
        means["qc_flags"] = flags.reindex(means["sample_id"]).fillna("").to_numpy() if len(means) else []
        per_bead.append((b, st, standards, means, fit_analyte_curve(standards, settings=settings)))
    # every analyte of a well shares its pipetting error: the run's noise is a floor for each curve's
    run_cv2 = run_noise_cv2([c for *_, c in per_bead])
    results = []
    for b, st, standards, means, curve in per_bead:
        curve = with_run_noise(curve, run_cv2, max_sample_cv_pct=settings.max_sample_cv_pct)
        results.append(quantify_analyte(b.analyte, panel.units, standards, means, settings=settings, curve=curve))
        missing_std = st[st["signal"].isna()]
        if len(missing_std):
            notes.append(f"{b.analyte}: {len(missing_std)} standard well(s) without bead {b.bead_id} "
                         f"({', '.join(missing_std['sample_id'])}) left out of its curve")
    return BeadplexRun(results, w, notes)
