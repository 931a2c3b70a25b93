"""Rows shared by every assay with standard curves: ``standards.tsv`` (one per curve),
``standard_levels.tsv`` (one per standard level), ``concentrations.tsv`` (sample x analyte) and the
assay's per-sample table (one row per sample, one column per analyte)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from zincassay.curves.quantify import StandardCurve
from zincassay.curves.run import AnalyteResult
from zincassay.samplesheet import Sample

__all__ = ["CENSORED_SUFFIX", "CONCENTRATION_COLUMNS", "CURVE_COLUMNS", "LEVEL_COLUMNS", "SAMPLE_COLUMNS",
           "concentration_rows", "curve_row", "level_rows", "readout_name", "sample_table", "standard_level_rows",
           "standards_row"]

CURVE_COLUMNS = ("model", "criterion", "score_4pl", "score_5pl", "a", "b", "c", "d", "g", "variance_power",
                 "sigma", "n_points", "df", "lloq", "uloq", "lloq_standards", "uloq_standards", "lloq_profile",
                 "uloq_profile", "levels_passing", "levels_total", "excluded_levels", "curve_failed", "notes")
LEVEL_COLUMNS = ("level", "nominal", "n_wells", "signal_mean", "signal_cv_pct", "backcalc_mean", "recovery_pct",
                 "backcalc_cv_pct", "used", "passes", "note")


def curve_row(curve: StandardCurve) -> dict:
    """Parameters, model choice and quantifiable range of one curve (concentrations in the analyte's units).

    ``a`` is the reading at zero concentration, ``d`` at infinite concentration, ``c`` the inflection
    concentration, ``b`` the slope, ``g`` the asymmetry (1 for a 4PL); ``sigma`` the residual SD
    scale of the variance function sigma^2 * mu^(2*variance_power).
    """
    row: dict = dict.fromkeys(CURVE_COLUMNS, np.nan)
    row.update(criterion=curve.criterion, excluded_levels=";".join(curve.excluded_levels),
               curve_failed=curve.failed, notes=" | ".join(curve.notes), model="")
    for m in ("4pl", "5pl"):
        row[f"score_{m}"] = curve.alternatives.get(m, np.nan)
    nonzero = [s for s in curve.levels if s.nominal > 0]
    row["levels_total"] = len(nonzero)
    row["levels_passing"] = sum(s.passes for s in nonzero)
    if curve.fit is not None:
        c = curve.fit.curve
        row.update(model=curve.fit.model, a=c.a, b=c.b, c=c.c, d=c.d, g=c.g,
                   variance_power=curve.fit.variance_power, sigma=float(np.sqrt(curve.fit.sigma2)),
                   n_points=curve.fit.n, df=curve.fit.df)
    row.update(lloq=curve.lloq, uloq=curve.uloq, lloq_standards=curve.lloq_standards,
               uloq_standards=curve.uloq_standards, lloq_profile=curve.lloq_profile, uloq_profile=curve.uloq_profile)
    return row


def level_rows(curve: StandardCurve) -> list[dict]:
    """One row per standard level, lowest concentration first."""
    return [{"level": s.level, "nominal": s.nominal, "n_wells": s.n, "signal_mean": s.signal_mean,
             "signal_cv_pct": s.signal_cv_pct, "backcalc_mean": s.backcalc_mean, "recovery_pct": s.recovery_pct,
             "backcalc_cv_pct": s.backcalc_cv_pct, "used": s.used, "passes": s.passes, "note": s.note}
            for s in curve.levels]


CONCENTRATION_COLUMNS = ("assay", "batch", "sample_id", "analyte", "units", "dilution", "n_wells", "signal",
                         "signal_cv_pct", "concentration", "ci_low", "ci_high", "flag", "bound", "reported",
                         "concentration_extrapolated", "qc_flags")


def concentration_rows(result: AnalyteResult, *, assay: str, batch: str) -> pd.DataFrame:
    """Rows of ``results/cytokines/concentrations.tsv`` for one analyte of one run.

    Concentrations, intervals, bounds and ``concentration_extrapolated`` are of the undiluted
    sample in the analyte's ``units``; ``concentration`` is empty unless the sample is within
    [LLOQ, ULOQ] (``flag`` '<LLOQ' / '>ULOQ' with the ``bound`` otherwise).
    """
    s = result.samples
    out = pd.DataFrame({"assay": assay, "batch": batch, "sample_id": s["sample_id"].astype(str),
                        "analyte": result.analyte, "units": result.units})
    for c in CONCENTRATION_COLUMNS[5:]:
        out[c] = s[c].to_numpy() if c in s else np.nan
    return out[list(CONCENTRATION_COLUMNS)]


def standards_row(result: AnalyteResult, *, assay: str, batch: str) -> dict:
    """One row of ``results/cytokines/standards.tsv``: ids, units and :func:`curve_row`."""
    return {"assay": assay, "batch": batch, "analyte": result.analyte, "units": result.units, **curve_row(result.curve)}


def standard_level_rows(result: AnalyteResult, *, assay: str, batch: str) -> list[dict]:
    """Rows of ``results/cytokines/standard_levels.tsv``: ids, units and :func:`level_rows`."""
    return [{"assay": assay, "batch": batch, "analyte": result.analyte, "units": result.units, **r}
            for r in level_rows(result.curve)]


#: The per-sample table's columns before the analytes (then ``<readout>`` and ``<readout>__censored``
#: per analyte, then the sheet's extra columns).
SAMPLE_COLUMNS = ("sample_id", "condition", "donor", "batch", "status", "failure", "n_wells", "qc_flags")
#: Suffix of the per-analyte column marking a value left empty because it is out of range.
CENSORED_SUFFIX = "__censored"
#: Flags of ``concentrations.tsv`` that are a range, not a QC problem (marked in ``__censored``).
RANGE_FLAGS = ("<LLOQ", ">ULOQ")


def readout_name(analyte: str, units: str) -> str:
    """The per-sample column of an analyte: its name and units, e.g. ``IFN-γ_pg_mL``."""
    return f"{analyte}_{re.sub(r'[^0-9A-Za-zµ]+', '_', units).strip('_')}"


def sample_table(concentrations: pd.DataFrame, samples: Sequence[Sample], *, failures: Mapping[str, str],
                 flags: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """The assay's per-sample table for one run (bead-array batch or ELISA plate).

    Parameters
    ----------
    concentrations : DataFrame
        :data:`CONCENTRATION_COLUMNS` rows of the run.
    samples : sequence of Sample
        The run's samples, in the order wanted (sheet records; a bead-array sample is its first well).
    failures : mapping of sample_id to reason
        Samples that could not be measured: a failure row (``status`` failed, the reason, empty numbers).
    flags : mapping of sample_id to flags
        Sample-level QC flags added to the ones found in ``concentrations`` (e.g. a failed replicate well).

    Returns
    -------
    DataFrame
        :data:`SAMPLE_COLUMNS`, then per analyte ``<readout>`` (:func:`readout_name`; the undiluted
        concentration, empty when out of range or not measured) and, after them all,
        ``<readout>__censored`` (True when the value is empty because it is ``<LLOQ``/``>ULOQ``: the
        bound is in ``concentrations.tsv``), then the sheet's extra columns. ``qc_flags`` lists
        ``<readout>:<flag>`` for every analyte that has no curve, no reading or a QC flag, and the
        sample-level ``flags``.
    """
    c = concentrations.copy()
    c["readout"] = [readout_name(a, u) for a, u in zip(c["analyte"], c["units"], strict=True)]
    readouts = list(dict.fromkeys(c.sort_values("analyte", kind="stable")["readout"]))
    by_sample = {sid: g.set_index("readout") for sid, g in c.groupby("sample_id", sort=False)}
    rows = []
    for sample in samples:
        sid = sample.sample_id
        row: dict = {**sample.labels, "status": "ok", "failure": "", "n_wells": np.nan, "qc_flags": ""}
        g = by_sample.get(sid)
        if sid in failures or g is None:
            row.update(status="failed", failure=failures.get(sid, "no reading of this sample in its run"))
            row.update(dict.fromkeys(readouts, np.nan))
            row.update(dict.fromkeys((f"{r}{CENSORED_SUFFIX}" for r in readouts), np.nan))
        else:
            found = []
            for r in readouts:
                if r not in g.index:
                    row[r], row[f"{r}{CENSORED_SUFFIX}"] = np.nan, False
                    found.append(f"{r}:not_measured")
                    continue
                x = g.loc[r]
                row[r] = x["concentration"]
                row[f"{r}{CENSORED_SUFFIX}"] = x["flag"] in RANGE_FLAGS
                if x["flag"] and x["flag"] not in RANGE_FLAGS:
                    found.append(f"{r}:{x['flag']}")
                found += [f"{r}:{f}" for f in str(x["qc_flags"] if pd.notna(x["qc_flags"]) else "").split(";") if f]
            row["n_wells"] = int(g["n_wells"].max())
            row["qc_flags"] = ";".join([*found, *flags.get(sid, ())])
        row.update(sample.extra)
        rows.append(row)
    cols = [*SAMPLE_COLUMNS, *readouts, *(f"{r}{CENSORED_SUFFIX}" for r in readouts)]
    out = pd.DataFrame(rows)
    extra = [k for k in out.columns if k not in cols]
    out = out.reindex(columns=[*cols, *extra])
    out["n_wells"] = out["n_wells"].astype("Int64")
    return out
