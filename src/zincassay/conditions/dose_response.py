"""Dose-response of every readout: a 4-parameter log-logistic per donor, source and readout.

    y(x) = d + (a - d) / (1 + (x / c)**b)        (b > 0)

``a`` is the response of untreated cells (dose 0, which enters exactly: no logarithm of zero),
``d`` the response at saturating dose, ``c`` the EC50 (called IC50 when the response falls), ``b``
the steepness. The EC50/IC50 is the *relative* one, ``c``: the dose of half the curve's own maximal
effect, where y = (a + d) / 2. The absolute IC50 (where y = a / 2) differs from it whenever d > 0
and does not exist for a suppression below 50 %, so it is not reported; the simulator's truth
(:mod:`zincassay.simulate.dose_response`) is ``c`` too; the Hill slope is reported signed, b * sign(d - a) (negative for inhibition, as
GraphPad's). This is drc's LL.4 (Ritz et al., PLoS ONE 10 (2015) e0146021) fitted with the shared
curve machinery (:mod:`zincassay.curves.fit`: global grid over c and b with the asymptotes solved
exactly, then refined; weights by ``weighting``).

A flat line (no dose effect) is tested against the curve by the extra-sum-of-squares F test (3 and
n - 4 degrees of freedom, weighted as the curve); with p >= 0.05 the readout has ``no_dose_effect``
and no EC50 (AICc, used for standard curves, penalises 4 parameters too hard at the 7-16 points of
one donor's series). EC50 interval: profile likelihood
(:func:`zincassay.curves.fit.profile_interval_lnc`; 0 or inf where the doses cannot bound it);
Hill slope interval: delta method on ln b with a t quantile on n - 4 degrees of freedom.

The EC50 is reported (``ec50``) only where the data determine it: an estimate outside the tested
positive doses is flagged ``ec50_beyond_doses``, a profile interval reaching beyond the tested
positive doses (open, or closed only by the model's extrapolation: the doses cannot bound the EC50
at ``ci_level``, as for a partial or shallow effect against the noise) is flagged
``ec50_not_bounded``; either leaves ``ec50`` empty, with the fitted value kept in ``ec50_estimate``
(drawn in the figure, never the result), as out-of-range cytokines keep theirs.

The sources are the values of the source column on rows with a positive dose (:func:`dose_sources`).
Untreated rows (dose 0) whose source is none of them (blank, or e.g. ``replete`` when the source
column is the condition) belong to every source's curve of their donor; a dose-0 row of a dosed
source (its vehicle control) belongs to that source's curve only (:func:`source_rows`). A readout
whose values are all >= 0 keeps its fitted asymptotes >= 0.
Donors share a Hill slope where the F test allows it (:func:`with_shared_slope`): a late or partial
curve's EC50 is then pinned by its own points once the slope is known from every donor's.
Sources are compared paired over donors (:func:`dose_response_table`): the ratio of EC50s (paired
t on log EC50) and the difference of the response at the highest dose as % of untreated.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats

from zincassay.conditions.shared_slope import fit_shared_slope
from zincassay.conditions.stats import holm
from zincassay.curves.fit import CurveFit, FitError, fit_logistic, profile_interval_lnc, variance_function
from zincassay.curves.model import Logistic

__all__ = ["CI_LEVEL", "COMPARISON_COLUMNS", "FIT_COLUMNS", "NO_EFFECT_P", "SLOPES_DIFFER_P", "DoseResponseFit",
           "dose_response_table", "dose_sources", "fit_dose_response", "source_rows", "with_shared_slope"]

#: Coverage of the workflow's dose-response intervals (as of ``conditions.tsv``'s).
CI_LEVEL = 0.95

#: A curve whose F test against a flat line gives p >= this has no dose effect (and no EC50).
NO_EFFECT_P = 0.05

#: Donors' curves keep their own slopes when the F test of one shared slope gives p below this.
SLOPES_DIFFER_P = 0.05

FIT_COLUMNS = ("readout", "source", "donor", "dose_column", "n_points", "n_doses", "max_dose", "model", "direction",
               "ec50", "ec50_estimate", "ec50_ci_low", "ec50_ci_high", "hill_slope", "hill_ci_low", "hill_ci_high",
               "response_untreated", "response_saturating", "response_at_max_dose_pct", "p_dose_effect",
               "n_censored", "flags")
COMPARISON_COLUMNS = ("readout", "source", "reference_source", "dose_column", "n_donors", "n_fitted", "gmean_ec50",
                      "ec50_ci_low", "ec50_ci_high", "mean_response_at_max_dose_pct", "n_paired", "ec50_ratio",
                      "ec50_ratio_ci_low", "ec50_ratio_ci_high", "p_ec50", "max_dose_pct_difference",
                      "max_dose_pct_diff_ci_low", "max_dose_pct_diff_ci_high", "p_max_dose", "p_holm_ec50",
                      "p_holm_max_dose", "test")


@dataclass(frozen=True)
class DoseResponseFit:
    """One curve (donor x source x readout). ``fit`` is None when no 4PL could be fitted; ``flat``
    when the flat line is preferred."""

    fit: CurveFit | None
    flat: bool
    n_points: int
    n_doses: int
    max_dose: float
    ec50: float
    ec50_estimate: float
    ec50_ci: tuple[float, float]
    hill_slope: float
    hill_ci: tuple[float, float]
    response_untreated: float
    response_saturating: float
    response_at_max_dose_pct: float
    p_dose_effect: float
    flags: tuple[str, ...]
    shared: bool = False


def _dose_effect_p(x: np.ndarray, y: np.ndarray, fit: CurveFit) -> float:
    """F test of the 4PL against a flat line (the 4PL with a = d), both weighted as the 4PL's final fit."""
    mu = fit.curve.response(x)
    w = 1.0 / variance_function(mu, fit.variance_power, fit.offset, fit.floor)
    rss_4pl = float(np.sum(w * (y - mu) ** 2))
    flat = float(np.sum(w * y) / np.sum(w))
    rss_flat = float(np.sum(w * (y - flat) ** 2))
    df = len(y) - 4
    if df <= 0:
        return np.nan
    if rss_4pl <= 0:
        return 0.0
    f = ((rss_flat - rss_4pl) / 3.0) / (rss_4pl / df)
    return float(stats.f.sf(max(f, 0.0), 3, df))


def fit_dose_response(dose: np.ndarray, response: np.ndarray, *, weighting: str, ci_level: float,
                      nonnegative: bool) -> DoseResponseFit:
    """Fit one dose-response curve.

    Parameters
    ----------
    dose : ndarray (n,)
        Doses (>= 0; 0 = untreated), any unit (the EC50 comes out in it).
    response : ndarray (n,)
        Readout per sample (NaN rows are left out).
    weighting : {"1/y2", "none", "power"}
    ci_level : float
    nonnegative : bool
        Keep the fitted asymptotes >= 0 (a readout that cannot be negative).

    Returns
    -------
    DoseResponseFit
        Flags: ``too_few_doses`` (fewer than 3 positive doses or 6 points: nothing fitted),
        ``no_dose_effect``, ``ec50_beyond_doses`` (estimate outside the positive doses),
        ``ec50_not_bounded`` (profile interval not within the positive doses). With either of the last two ``ec50`` is NaN and
        the fitted value is in ``ec50_estimate`` only.
    """
    x = np.asarray(dose, dtype=np.float64)
    y = np.asarray(response, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y) & (x >= 0)
    x, y = x[ok], y[ok]
    pos = np.unique(x[x > 0])
    nan2 = (np.nan, np.nan)
    base = dict(n_points=len(y), n_doses=len(np.unique(x)), max_dose=float(x.max()) if len(x) else np.nan)
    if len(pos) < 3 or len(y) < 6:
        return DoseResponseFit(None, False, ec50=np.nan, ec50_estimate=np.nan, ec50_ci=nan2, hill_slope=np.nan, hill_ci=nan2,
                               response_untreated=np.nan, response_saturating=np.nan, response_at_max_dose_pct=np.nan,
                               p_dose_effect=np.nan, flags=("too_few_doses",), **base)
    try:
        fit = fit_logistic(x, y, model="4pl", weighting=weighting, nonnegative=nonnegative)
    except FitError:
        return DoseResponseFit(None, True, ec50=np.nan, ec50_estimate=np.nan, ec50_ci=nan2, hill_slope=np.nan, hill_ci=nan2,
                               response_untreated=float(np.mean(y)), response_saturating=float(np.mean(y)),
                               response_at_max_dose_pct=100.0, p_dose_effect=np.nan, flags=("no_dose_effect",), **base)
    c = fit.curve
    at0 = c.a
    at_max = float(c.response(np.array([x.max()]))[0])
    pct = 100.0 * at_max / at0 if at0 else np.nan
    p_effect = _dose_effect_p(x, y, fit)
    if not p_effect < NO_EFFECT_P:
        return DoseResponseFit(fit, True, ec50=np.nan, ec50_estimate=np.nan, ec50_ci=nan2, hill_slope=np.nan, hill_ci=nan2,
                               response_untreated=float(np.mean(y)), response_saturating=float(np.mean(y)),
                               response_at_max_dose_pct=100.0, p_dose_effect=p_effect, flags=("no_dose_effect",),
                               **base)
    t = stats.t.ppf(0.5 + ci_level / 2, max(fit.df, 1))
    se_b = np.sqrt(max(fit.cov[3, 3], 0.0))
    sign = 1.0 if c.d > c.a else -1.0
    with np.errstate(over="ignore"):
        hill_ci = tuple(sorted((sign * c.b * np.exp(-t * se_b), sign * c.b * np.exp(t * se_b))))
    lo, hi = profile_interval_lnc(x, y, fit, ci_level)
    flags = _ec50_flags(c.c, lo, hi, pos)
    return DoseResponseFit(fit, False, ec50=np.nan if flags else c.c, ec50_estimate=c.c,
                           ec50_ci=(float(np.exp(lo)), float(np.exp(hi))),
                           hill_slope=sign * c.b, hill_ci=(float(hill_ci[0]), float(hill_ci[1])),
                           response_untreated=at0, response_saturating=c.d, response_at_max_dose_pct=pct,
                           p_dose_effect=p_effect, flags=flags, **base)


def _ec50_flags(c: float, ln_lo: float, ln_hi: float, pos: np.ndarray) -> tuple[str, ...]:
    """``ec50_beyond_doses`` / ``ec50_not_bounded`` for an EC50 ``c`` with interval (ln_lo, ln_hi)
    of ln c against the positive doses ``pos``."""
    return (("ec50_beyond_doses",) if (c > pos.max() or c < pos.min()) else ()) + \
        (("ec50_not_bounded",) if not (np.log(pos.min()) <= ln_lo and ln_hi <= np.log(pos.max())) else ())


def with_shared_slope(data: list[tuple[np.ndarray, np.ndarray]], fits: list[DoseResponseFit], *, ci_level: float,
                      nonnegative: bool) -> list[DoseResponseFit]:
    """Donors' curves of one readout and source, refitted with one Hill slope where the data allow it.

    The donors with a dose effect in the majority direction are fitted together with a common
    Hill slope, each keeping its own asymptotes and EC50
    (:func:`zincassay.conditions.shared_slope.fit_shared_slope`); when the F test does not reject
    the shared slope (p >= :data:`SLOPES_DIFFER_P`), their EC50 with its profile interval, Hill
    slope and asymptotes come from it (model ``4pl_shared``, flag ``slope_shared``) and the EC50 is
    reported under the same rules as a donor's own (``ec50_beyond_doses``, ``ec50_not_bounded``).
    Other donors, and every donor when the slopes differ, keep their own fits.

    Parameters
    ----------
    data : list of (dose, response) arrays, one per donor (as given to :func:`fit_dose_response`).
    fits : list of DoseResponseFit, the donors' own fits in the same order.
    ci_level : float
    nonnegative : bool
    """
    members = [j for j, f in enumerate(fits) if f.fit is not None and not f.flat]
    increasing = sum(fits[j].hill_slope > 0 for j in members) * 2 > len(members)
    members = [j for j in members if (fits[j].hill_slope > 0) == increasing]
    if len(members) < 2:
        return fits
    xs, ys, ws, rss_separate = [], [], [], 0.0
    for j in members:
        x, y = (np.asarray(v, dtype=np.float64) for v in data[j])
        ok = np.isfinite(x) & np.isfinite(y) & (x >= 0)
        x, y = x[ok], y[ok]
        f = fits[j].fit
        mu = f.curve.response(x)
        w = 1.0 / variance_function(mu, f.variance_power, f.offset, f.floor)
        rss_separate += float(np.sum(w * (y - mu) ** 2))
        xs.append(x)
        ys.append(y)
        ws.append(w)
    sh = fit_shared_slope(xs, ys, ws, rss_separate=rss_separate, nonnegative=nonnegative, ci_level=ci_level)
    if sh is None or not sh.p_shared >= SLOPES_DIFFER_P:
        return fits
    out = list(fits)
    for k, j in enumerate(members):
        a, d, c, x = float(sh.a[k]), float(sh.d[k]), float(sh.c[k]), xs[k]
        sign = 1.0 if d > a else -1.0
        pos = np.unique(x[x > 0])
        lo, hi = (float(v) for v in sh.c_ci[k])
        flags = _ec50_flags(c, np.log(lo), np.log(hi), pos)
        at_max = float(Logistic("4pl", a=a, d=d, c=c, b=sh.b).response(np.array([x.max()]))[0])
        out[j] = replace(fits[j], ec50=np.nan if flags else c, ec50_estimate=c, ec50_ci=(lo, hi),
                         hill_slope=sign * sh.b, hill_ci=tuple(sorted((sign * sh.b_ci[0], sign * sh.b_ci[1]))),
                         response_untreated=a, response_saturating=d,
                         response_at_max_dose_pct=100.0 * at_max / a if a else np.nan,
                         flags=(*flags, "slope_shared"), shared=True)
    return out


def _t_ci(v: np.ndarray, level: float) -> tuple[float, float, float]:
    """Mean, CI low, CI high (t) of v; NaN CI with fewer than 2 values."""
    n = len(v)
    if n == 0:
        return np.nan, np.nan, np.nan
    m = float(np.mean(v))
    if n < 2:
        return m, np.nan, np.nan
    half = stats.t.ppf(0.5 + level / 2, n - 1) * np.std(v, ddof=1) / np.sqrt(n)
    return m, m - half, m + half


def _paired_p(d: np.ndarray) -> float:
    if len(d) < 2:
        return np.nan
    if np.std(d, ddof=1) <= 1e-12 * max(abs(np.mean(d)), 1e-300):
        return 1.0 if np.mean(d) == 0 else 0.0
    return float(stats.ttest_1samp(d, 0.0).pvalue)


def dose_sources(table: pd.DataFrame, *, dose_column: str, source_column: str | None) -> list[str]:
    """The sources with a curve: the source column's values on rows with a positive dose, sorted
    ('' alone without a source column)."""
    if not source_column:
        return [""]
    dose = pd.to_numeric(table[dose_column], errors="coerce")
    named = sorted(set(table.loc[dose > 0, source_column].fillna("").astype(str)))
    return named or [""]


def source_rows(table: pd.DataFrame, source: str, *, dose_column: str, source_column: str | None,
                sources: list[str]) -> np.ndarray:
    """Boolean mask of the rows of ``source``'s curve: its own rows and the untreated rows (dose 0)
    of no dosed source."""
    if not source_column:
        return np.ones(len(table), bool)
    src = table[source_column].fillna("").astype(str)
    dose = pd.to_numeric(table[dose_column], errors="coerce")
    return ((src == source) | ((dose == 0) & ~src.isin(sources))).to_numpy()


def dose_response_table(
    table: pd.DataFrame,
    *,
    readouts: list[str],
    dose_column: str,
    source_column: str | None,
    weighting: str,
    ci_level: float,
    source_reference: str | None,
    donor_column: str = "donor",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit every readout x source x donor and compare sources paired over donors.

    Parameters
    ----------
    table : DataFrame
        One row per sample: ``donor_column``, ``dose_column`` (numeric, 0 = untreated), optionally
        ``source_column``, and the readouts (NaN = not measured; a cytokine below its LLOQ should be
        NaN here: it is left out of the fit and counted in ``n_censored`` when a column
        ``<readout>__censored`` marks it).
    readouts : columns to fit.
    dose_column, source_column : as configured (``conditions.dose_column``/``source_column``).
    weighting, ci_level : see :func:`fit_dose_response`.
    source_reference : source every other one is compared with; None = the first sorted.

    Returns
    -------
    fits : DataFrame of :data:`FIT_COLUMNS`, one row per readout x source x donor, sorted.
    comparisons : DataFrame of :data:`COMPARISON_COLUMNS`, one row per readout x source (the
        reference source's row carries its own summary and no comparison); ``p_holm_*`` adjusted
        across the table.
    """
    t = table.copy()
    t[donor_column] = t[donor_column].astype(str)
    t[dose_column] = pd.to_numeric(t[dose_column], errors="coerce")
    sources = dose_sources(t, dose_column=dose_column, source_column=source_column)
    rows = []
    for readout in readouts:
        if readout not in t:
            continue
        censored_col = f"{readout}__censored"
        values = pd.to_numeric(t[readout], errors="coerce")
        nonneg = bool((values.dropna() >= 0).all())
        for source in sources:
            sub = t[source_rows(t, source, dose_column=dose_column, source_column=source_column, sources=sources)]
            donors = [(donor, grp, grp[dose_column].to_numpy(float),
                       pd.to_numeric(grp[readout], errors="coerce").to_numpy(float))
                      for donor, grp in sub.groupby(donor_column, sort=True)]
            fitted = [fit_dose_response(x, y, weighting=weighting, ci_level=ci_level, nonnegative=nonneg)
                      for _, _, x, y in donors]
            fitted = with_shared_slope([(x, y) for _, _, x, y in donors], fitted, ci_level=ci_level, nonnegative=nonneg)
            for (donor, grp, _, _), r in zip(donors, fitted, strict=True):
                n_cens = int(grp[censored_col].astype(str).str.lower().eq("true").sum()) if censored_col in grp else 0
                flags = list(r.flags) + (["censored_points"] if n_cens else [])
                direction = "" if (r.fit is None or r.flat) else ("increasing" if r.hill_slope > 0 else "decreasing")
                rows.append({
                    "readout": readout, "source": source, "donor": donor, "dose_column": dose_column,
                    "n_points": r.n_points, "n_doses": r.n_doses, "max_dose": r.max_dose,
                    "model": "" if r.fit is None and not r.flat else ("flat" if r.flat else ("4pl_shared" if r.shared else "4pl")),
                    "direction": direction, "ec50": r.ec50, "ec50_estimate": r.ec50_estimate, "ec50_ci_low": r.ec50_ci[0], "ec50_ci_high": r.ec50_ci[1],
                    "hill_slope": r.hill_slope, "hill_ci_low": r.hill_ci[0], "hill_ci_high": r.hill_ci[1],
                    "response_untreated": r.response_untreated, "response_saturating": r.response_saturating,
                    "response_at_max_dose_pct": r.response_at_max_dose_pct, "p_dose_effect": r.p_dose_effect,
                    "n_censored": n_cens, "flags": ";".join(flags)})
    fits = pd.DataFrame(rows, columns=list(FIT_COLUMNS))
    if fits.empty:
        return fits, pd.DataFrame(columns=list(COMPARISON_COLUMNS))
    fits = fits.sort_values(["readout", "source", "donor"], kind="stable").reset_index(drop=True)
    ref = source_reference if source_reference is not None else sources[0]
    comp = []
    for readout, fr in fits.groupby("readout", sort=True):
        by = {s: g.set_index("donor") for s, g in fr.groupby("source")}
        for source in sources:
            g = by.get(source)
            if g is None:
                continue
            ec = g["ec50"].dropna()
            lm, llo, lhi = _t_ci(np.log(ec.to_numpy()), ci_level)
            pm = float(g["response_at_max_dose_pct"].mean())
            row = {"readout": readout, "source": source, "reference_source": ref, "dose_column": dose_column,
                   "n_donors": len(g), "n_fitted": len(ec), "gmean_ec50": np.exp(lm), "ec50_ci_low": np.exp(llo),
                   "ec50_ci_high": np.exp(lhi), "mean_response_at_max_dose_pct": pm}
            row.update(dict.fromkeys(("n_paired", "ec50_ratio", "ec50_ratio_ci_low", "ec50_ratio_ci_high", "p_ec50",
                                      "max_dose_pct_difference", "max_dose_pct_diff_ci_low",
                                      "max_dose_pct_diff_ci_high", "p_max_dose"), np.nan))
            if source == ref:
                row["test"] = "reference"
            elif ref in by:
                r0 = by[ref]
                both = g.index.intersection(r0.index)
                pair_ec = pd.concat([g.loc[both, "ec50"], r0.loc[both, "ec50"]], axis=1).dropna()
                d_ec = np.log(pair_ec.iloc[:, 0].to_numpy()) - np.log(pair_ec.iloc[:, 1].to_numpy())
                m, lo, hi = _t_ci(d_ec, ci_level)
                pair_pm = pd.concat([g.loc[both, "response_at_max_dose_pct"],
                                     r0.loc[both, "response_at_max_dose_pct"]], axis=1).dropna()
                d_pm = pair_pm.iloc[:, 0].to_numpy() - pair_pm.iloc[:, 1].to_numpy()
                mp, lp, hp = _t_ci(d_pm, ci_level)
                row.update(n_paired=len(both), ec50_ratio=np.exp(m), ec50_ratio_ci_low=np.exp(lo),
                           ec50_ratio_ci_high=np.exp(hi), p_ec50=_paired_p(d_ec), max_dose_pct_difference=mp,
                           max_dose_pct_diff_ci_low=lp, max_dose_pct_diff_ci_high=hp, p_max_dose=_paired_p(d_pm),
                           test=f"paired t over donors (EC50: n={len(d_ec)} on log; max dose: n={len(d_pm)})")
            else:
                row["test"] = f"reference source {ref!r} absent"
            comp.append(row)
    comparisons = pd.DataFrame(comp, columns=list(COMPARISON_COLUMNS))
    p = np.concatenate([comparisons["p_ec50"].to_numpy(float), comparisons["p_max_dose"].to_numpy(float)])
    adj = holm(p)
    comparisons["p_holm_ec50"] = adj[: len(comparisons)]
    comparisons["p_holm_max_dose"] = adj[len(comparisons):]
    return fits, comparisons
