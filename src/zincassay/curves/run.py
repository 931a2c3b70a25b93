"""From wells to concentrations for one analyte: replicate means, the curve, back-calculation.

Shared by every assay with standard curves; the assay turns its raw files into two frames
(standard wells, sample wells) and calls :func:`quantify_analyte`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from zincassay.curves.quantify import StandardCurve, back_calculate, fit_standard_curve
from zincassay.curves.settings import CurveSettings

__all__ = ["AnalyteResult", "fit_analyte_curve", "quantify_analyte", "replicate_means"]


@dataclass(frozen=True)
class AnalyteResult:
    """One analyte of one run (plate or bead-array batch).

    ``samples`` has one row per sample: ``sample_id, signal, n_wells, signal_cv_pct, dilution``,
    the columns of :func:`zincassay.curves.quantify.back_calculate`, and ``qc_flags``.
    """

    analyte: str
    units: str
    curve: StandardCurve
    samples: pd.DataFrame


def replicate_means(wells: pd.DataFrame, key: str) -> pd.DataFrame:
    """Mean ``signal`` over the wells sharing ``key``, with their count and CV (%).

    Wells without a reading (NaN) are left out of the mean; ``+inf`` (a saturated reading) makes
    the mean ``+inf``. Returns ``key, signal, n_wells, signal_cv_pct`` sorted by ``key``.
    """
    rows = []
    for k, grp in wells.groupby(key, sort=True):
        v = grp["signal"].to_numpy(dtype=np.float64)
        v = v[~np.isnan(v)]
        finite = v[np.isfinite(v)]
        mean = float(np.mean(v)) if v.size else np.nan
        cv = float(100 * np.std(finite, ddof=1) / abs(np.mean(finite))) if finite.size >= 2 and np.mean(finite) else np.nan
        rows.append({key: k, "signal": mean, "n_wells": int(v.size), "signal_cv_pct": cv})
    return pd.DataFrame(rows, columns=[key, "signal", "n_wells", "signal_cv_pct"])


def fit_analyte_curve(standards: pd.DataFrame, *, settings: CurveSettings, offset: float = 0.0) -> StandardCurve:
    """The standard curve of one analyte from its standard wells (``concentration``, ``signal``,
    ``level``; see :func:`quantify_analyte`)."""
    return fit_standard_curve(
        standards["concentration"].to_numpy(dtype=float), standards["signal"].to_numpy(dtype=float),
        standards["level"].astype(str).to_numpy(), models=settings.models, weighting=settings.weighting,
        criterion=settings.criterion, recovery_pct=settings.recovery_pct, max_cv_pct=settings.max_cv_pct,
        max_sample_cv_pct=settings.max_sample_cv_pct, exclude_failed_level=settings.exclude_failed_level,
        offset=offset)


def quantify_analyte(analyte: str, units: str, standards: pd.DataFrame, samples: pd.DataFrame, *,
                     settings: CurveSettings, offset: float = 0.0, curve: StandardCurve | None = None) -> AnalyteResult:
    """Fit the standards and back-calculate the samples of one analyte.

    Parameters
    ----------
    standards : DataFrame
        One row per standard (or zero-standard) well: ``concentration`` (in ``units``), ``signal``, ``level``.
    samples : DataFrame
        One row per sample: ``sample_id, signal, n_wells, signal_cv_pct, dilution`` (from
        :func:`replicate_means` plus the dilution), and optionally ``qc_flags`` (';'-separated).
    settings : CurveSettings
    offset : float
        Blank already subtracted from the signals (variance function only).
    curve : StandardCurve, optional
        The curve already fitted from ``standards`` (:func:`fit_analyte_curve`, e.g. with the run's
        noise, :func:`zincassay.curves.quantify.with_run_noise`); fitted here when None.
    """
    if curve is None:
        curve = fit_analyte_curve(standards, settings=settings, offset=offset)
    s = samples.reset_index(drop=True).copy()
    bc = back_calculate(curve, s["signal"].to_numpy(dtype=float), n_replicates=s["n_wells"].to_numpy(dtype=float),
                        dilution=s["dilution"].to_numpy(dtype=float), ci_level=settings.ci_level)
    out = pd.concat([s.drop(columns=[c for c in bc.columns if c in s]), bc], axis=1)
    flags = out["qc_flags"].fillna("").astype(str).tolist() if "qc_flags" in out else [""] * len(out)
    high = (out["signal_cv_pct"] > settings.max_cv_pct).to_numpy()
    out["qc_flags"] = [";".join(f for f in (fl, "high_replicate_cv" if h else "") if f) for fl, h in zip(flags, high, strict=True)]
    return AnalyteResult(analyte, units, curve, out)
