"""Rows of a standard curve for ``standards.tsv`` (one per curve) and ``standard_levels.tsv``
(one per standard level), shared by every assay with standard curves."""

from __future__ import annotations

import numpy as np
import pandas as pd

from zincassay.curves.quantify import StandardCurve
from zincassay.curves.run import AnalyteResult

__all__ = ["CONCENTRATION_COLUMNS", "CURVE_COLUMNS", "LEVEL_COLUMNS", "concentration_rows", "curve_row", "level_rows",
           "standard_level_rows", "standards_row"]

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
