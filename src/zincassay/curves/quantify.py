"""One analyte's standard curve: model choice, a failed level, LLOQ/ULOQ, back-calculation.

- **Model choice**: every candidate (4PL, 5PL) is fitted (:func:`zincassay.curves.fit.fit_logistic`)
  and the lowest AICc (or AIC) wins.
- **A failed standard level** (a pipetting error, a spoiled dilution): each level in turn is left
  out and the curve refitted without it; the candidate is the level whose removal leaves the
  other levels fitting best. It is excluded, with a note, when its externally studentised deletion
  residual z = (ybar - mu) / sqrt(sigma^2 v(mu)/m + J cov J') (sigma^2 and the curve from the
  other levels) exceeds the Bonferroni t threshold t(1 - alpha / (2 L); df) for L levels tested,
  family-wise alpha = ``FAILED_LEVEL_ALPHA`` and df the deletion fit's residual degrees of freedom
  (sigma is estimated from ~10 degrees of freedom and the largest of L residuals is the one
  tested: a fixed 4 SD on the normal scale excluded a good level in 2 of 208 bead-array curves of
  the quick sweep, this test in 1),
  *and* its recovery against that curve is outside ``recovery_pct``. At most one level is
  excluded, and only when 5 or more non-zero levels remain.
- **LLOQ/ULOQ**, two rules, both must hold:

  1. the standards (bioanalytical method validation of ligand-binding assays: FDA 2018; ICH M10
     2022): every replicate of every non-zero level is back-calculated; a level passes when the
     mean recovery is within ``recovery_pct`` and the CV of its back-calculated replicates is at
     most ``max_cv_pct``. The range runs from the lowest to the highest passing level of the widest
     such pair with at least 75 % of the levels between them passing (an excluded level is left out);
  2. the precision profile (Ekins; Sadler & Smith 1990): the CV of a concentration back-calculated
     from *one* reading, predicted from the fitted variance function and the curve's parameter
     covariance (delta method), is at most ``max_sample_cv_pct`` (longest such interval within the
     standards' span). Two replicate wells at a level pass rule 1 by chance far more often than the
     level's real precision allows; the profile uses every well. sigma^2 enters at its estimate,
     from the ~10 residual degrees of freedom of one run's
     standards. In a bead array every analyte of a well shares the well's pipetting error, so the
     run's noise is a floor for each analyte's: :func:`with_run_noise` raises a curve's sigma^2
     (and its parameter covariance) to the run's median residual variance over analytes on the
     constant-CV scale (:func:`run_noise_cv2`; the median, so one misfit analyte does not raise
     the rest) where its own estimate is lower. Without it, one curve's sigma came out at 1.3 %
     CV where the run's median was 2.4 % (truth 3.5 %), its LLOQ fell where the real CV is ~27 %,
     and a sample at LLOQ/1.7 read above it (1 of ~900 clearly out-of-range samples of the quick
     sweep). sigma^2 at its upper one-sided 95 % limit, sigma^2 df / chi2(0.05; df)
     (``precision_profile(..., confidence=0.95)``), also flags every one but leaves most 6 %-CV
     bead-array and ELISA runs without any range at 10 % CV; not the default.

  LLOQ = the larger and ULOQ = the smaller of the two rules' limits, so the LLOQ may fall between
  standard levels.
- **Back-calculation** of a sample: the concentration whose curve response equals the sample's mean
  reading, times its dilution. Outside [LLOQ, ULOQ], or beyond an asymptote, the sample is flagged
  ``<LLOQ`` / ``>ULOQ`` with the bound (times its dilution) and no concentration; the curve's
  value, where one exists, is kept in ``concentration_extrapolated`` and never used as the result.
- **Interval** (delta method on ln x; Seber & Wild, Nonlinear Regression, 1989, sec. 5.12):
  Var(ln x) = (d ln x/dy)^2 sigma^2 v(y)/m + g' cov g, with g = d ln x/d theta, and a t quantile
  on the curve's residual degrees of freedom. Its coverage is measured in validation/cytokine_sweep.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats

from zincassay.curves.fit import CurveFit, FitError, fit_logistic, variance_function
from zincassay.curves.model import jacobian, log_concentration

__all__ = ["FAILED_LEVEL_ALPHA", "LevelSummary", "StandardCurve", "back_calculate", "fit_standard_curve",
           "precision_profile", "residual_cv2", "run_noise_cv2", "with_run_noise"]

#: Family-wise false-exclusion rate of the deletion-residual test (Bonferroni over the levels tested).
#: A spoiled dilution (a 2-fold error or worse) lies 6 to tens of SD off; 0.001 missed such a level on
#: ELISA plates (7 levels, ~8 residual degrees of freedom: threshold 6.8).
FAILED_LEVEL_ALPHA = 0.01
MIN_LEVELS_AFTER_EXCLUSION = 5
#: Share of the standard levels between LLOQ and ULOQ that must pass (ICH M10: 75 % of calibrators).
MIN_PASSING_SHARE = 0.75
PROFILE_POINTS = 400
#: Curves a run needs for its median noise (:func:`run_noise_cv2`).
MIN_CURVES_FOR_RUN_NOISE = 3


@dataclass(frozen=True)
class LevelSummary:
    """One standard level (nominal concentration 0 = the blank / zero standard)."""

    level: str
    nominal: float
    n: int
    signal_mean: float
    signal_cv_pct: float
    backcalc_mean: float
    recovery_pct: float
    backcalc_cv_pct: float
    used: bool
    passes: bool
    note: str = ""


@dataclass(frozen=True)
class StandardCurve:
    """A fitted standard curve and its quantifiable range.

    ``fit`` is None when no curve could be fitted (``failed`` says why). ``lloq``/``uloq`` are NaN
    when no run of passing levels exists. ``x``, ``y``, ``level``, ``used`` are the standard wells
    (for tables and figures).
    """

    fit: CurveFit | None
    criterion: str
    alternatives: dict[str, float]
    levels: tuple[LevelSummary, ...]
    lloq: float
    uloq: float
    excluded_levels: tuple[str, ...]
    notes: tuple[str, ...]
    failed: str
    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    level: np.ndarray = field(repr=False)
    used: np.ndarray = field(repr=False)
    lloq_standards: float = np.nan
    uloq_standards: float = np.nan
    lloq_profile: float = np.nan
    uloq_profile: float = np.nan

    @property
    def has_range(self) -> bool:
        return self.fit is not None and bool(np.isfinite(self.lloq) and np.isfinite(self.uloq))


def _choose(x: np.ndarray, y: np.ndarray, models: tuple[str, ...], weighting: str, criterion: str,
            offset: float) -> tuple[CurveFit, dict[str, float]]:
    fits: dict[str, CurveFit] = {}
    errors = []
    for m in models:
        try:
            fits[m] = fit_logistic(x, y, model=m, weighting=weighting, offset=offset)
        except FitError as exc:
            errors.append(f"{m.upper()}: {exc}")
    if not fits:
        raise FitError("; ".join(errors))
    score = {m: (f.aicc if criterion == "aicc" else f.aic) for m, f in fits.items()}
    best = min(score, key=lambda m: (score[m], m))
    return fits[best], score


def _cv(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    if len(v) < 2 or np.mean(v) == 0:
        return np.nan
    return float(100.0 * np.std(v, ddof=1) / abs(np.mean(v)))


def _deletion_check(x: np.ndarray, y: np.ndarray, level: np.ndarray, full: CurveFit, weighting: str,
                    offset: float, recovery_pct: tuple[float, float]) -> tuple[str, float, float] | None:
    """The level that the others show to be an outlier: (level, z, recovery %), or None.

    Each level is left out in turn; the candidate is the level whose removal leaves the others
    fitting best (smallest residual variance on a common constant-CV scale, so that the subsets
    compare and a variance function distorted by the spoiled level does not decide). A level with a good fit elsewhere but kept with a spoiled one leaves a
    distorted curve, so this finds the spoiled level where a largest-deletion-residual rule can
    pick a good end level instead.
    """
    names = [lv for lv in dict.fromkeys(level[x > 0])]
    if len(names) - 1 < MIN_LEVELS_AFTER_EXCLUSION:
        return None
    best: tuple[float, str, CurveFit] | None = None
    for name in names:
        out = level == name
        try:
            f = fit_logistic(x[~out], y[~out], model=full.model, weighting=weighting, offset=offset, n_starts=2,
                             max_reweights=3)
        except FitError:
            continue
        mu = f.curve.response(x[~out])
        v = variance_function(mu, 1.0, offset, full.floor)
        s2 = float(np.sum((y[~out] - mu) ** 2 / v) / max(f.df, 1))
        if best is None or s2 < best[0]:
            best = (s2, str(name), f)
    if best is None:
        return None
    _, name, f = best
    out = level == name
    xl = float(x[out][0])
    ybar = float(np.mean(y[out]))
    mu = float(f.curve.response(np.array([xl]))[0])
    jrow = jacobian(np.array([xl]), f.theta)[0]
    var = float(f.variance(np.array([mu]))[0]) / out.sum() + float(jrow @ f.cov @ jrow)
    z = (ybar - mu) / np.sqrt(max(var, 1e-300))
    rec = float(f.curve.concentration(np.array([ybar]))[0]) / xl * 100.0
    threshold = float(stats.t.ppf(1.0 - FAILED_LEVEL_ALPHA / (2 * len(names)), max(f.df, 1)))
    if abs(z) <= threshold or (np.isfinite(rec) and recovery_pct[0] <= rec <= recovery_pct[1]):
        return None
    return name, float(z), rec


def fit_standard_curve(
    concentration: np.ndarray,
    signal: np.ndarray,
    level: np.ndarray,
    *,
    models: tuple[str, ...],
    weighting: str,
    criterion: str,
    recovery_pct: tuple[float, float],
    max_cv_pct: float,
    max_sample_cv_pct: float,
    exclude_failed_level: bool,
    offset: float = 0.0,
) -> StandardCurve:
    """Fit one analyte's standards and find its quantifiable range.

    Parameters
    ----------
    concentration : ndarray (n,)
        Nominal concentration of each standard well (0 for blanks / the zero standard), in the
        analyte's units.
    signal : ndarray (n,)
        Reading of each well (bead median reporter MFI, or blank-corrected OD).
    level : ndarray (n,) of str
        Level name of each well (replicates share it).
    models, weighting, criterion, recovery_pct, max_cv_pct, max_sample_cv_pct, exclude_failed_level
        See :class:`zincassay.curves.settings.CurveSettings`.
    offset : float
        A blank already subtracted from ``signal`` (enters the variance function only).

    Returns
    -------
    StandardCurve
        Never raises for bad data: a curve that cannot be fitted has ``fit=None`` and ``failed`` set.
    """
    x = np.asarray(concentration, dtype=np.float64)
    y = np.asarray(signal, dtype=np.float64)
    lv = np.asarray(level, dtype=object).astype(str)
    finite = np.isfinite(x) & np.isfinite(y)
    used = finite.copy()
    notes: list[str] = []
    if (~finite).any():
        notes.append(f"{int((~finite).sum())} standard well(s) without a reading left out")
    excluded: list[str] = []
    empty = dict(x=x, y=y, level=lv)
    try:
        fit, scores = _choose(x[used], y[used], models, weighting, criterion, offset)
        if exclude_failed_level:
            bad = _deletion_check(x[used], y[used], lv[used], fit, weighting, offset, recovery_pct)
            if bad is not None:
                name, z, rec = bad
                used &= lv != name
                excluded.append(name)
                rec_txt = f"{rec:.0f} %" if np.isfinite(rec) else "not back-calculable"
                notes.append(f"standard level {name} excluded: its mean reading is {abs(z):.1f} SD "
                             f"{'above' if z > 0 else 'below'} the curve through the other levels "
                             f"(recovery {rec_txt})")
                fit, scores = _choose(x[used], y[used], models, weighting, criterion, offset)
    except FitError as exc:
        return StandardCurve(None, criterion, {}, (), np.nan, np.nan, tuple(excluded),
                             (*notes, f"no curve: {exc}"), str(exc), used=used, **empty)
    curve = fit.curve
    summaries: list[LevelSummary] = []
    order = sorted(dict.fromkeys(lv[finite]), key=lambda n: float(x[finite & (lv == n)][0]))
    for name in order:
        m = finite & (lv == name)
        nominal = float(x[m][0])
        ys = y[m]
        is_used = bool(used[m].all())
        if nominal > 0:
            back = curve.concentration(ys)
            rec = 100.0 * float(np.mean(back)) / nominal if np.all(np.isfinite(back)) else np.nan
            bcv = _cv(back) if np.all(np.isfinite(back)) else np.nan
            ok = bool(is_used and np.isfinite(rec) and recovery_pct[0] <= rec <= recovery_pct[1]
                      and (len(ys) < 2 or (np.isfinite(bcv) and bcv <= max_cv_pct)))
            bmean = float(np.mean(back)) if np.all(np.isfinite(back)) else np.nan
        else:
            rec, bcv, ok, bmean = np.nan, np.nan, False, np.nan
        note = "excluded (failed level)" if name in excluded else ("" if nominal > 0 else "zero standard")
        summaries.append(LevelSummary(name, nominal, int(m.sum()), float(np.mean(ys)), _cv(ys), bmean, rec, bcv,
                                      is_used, ok, note))
    lloq_std, uloq_std = _standards_range(summaries)
    lo_prof, hi_prof = _profile_range(fit, x[used & (x > 0)], max_sample_cv_pct)
    lloq, uloq, range_notes = _limits(lloq_std, uloq_std, lo_prof, hi_prof, max_sample_cv_pct)
    return StandardCurve(fit, criterion, scores, tuple(summaries), lloq, uloq, tuple(excluded),
                         (*notes, *range_notes), "", used=used, lloq_standards=float(lloq_std),
                         uloq_standards=float(uloq_std), lloq_profile=float(lo_prof), uloq_profile=float(hi_prof),
                         **empty)


def _limits(lloq_std: float, uloq_std: float, lo_prof: float, hi_prof: float,
            max_sample_cv_pct: float) -> tuple[float, float, list[str]]:
    """LLOQ/ULOQ where both rules hold, and the note when there is no range."""
    # both rules must hold: a rule without a range (NaN) leaves none (Python's max would drop it)
    lloq, uloq = float(np.max([lloq_std, lo_prof])), float(np.min([uloq_std, hi_prof]))
    notes = []
    if not np.isfinite(lloq_std):
        notes.append("fewer than two standard levels pass recovery and precision; no quantifiable range")
    elif not np.isfinite(lo_prof):
        notes.append(f"the precision profile nowhere reaches {max_sample_cv_pct:g} % CV; no quantifiable range")
    if not (lloq < uloq):
        lloq = uloq = np.nan
    return lloq, uloq, notes


def residual_cv2(curve: StandardCurve) -> float:
    """Residual variance of the curve's standards on the constant-CV scale, sum(r^2) / df with
    r = (y - mu) / max(|mu + offset|, floor) (a squared CV); NaN without a fit or residual dof."""
    fit = curve.fit
    if fit is None or fit.df < 1:
        return np.nan
    x, y = curve.x[curve.used], curve.y[curve.used]
    mu = fit.curve.response(x)
    r = (y - mu) / np.sqrt(variance_function(mu, 1.0, fit.offset, fit.floor))
    return float(np.sum(r**2) / fit.df)


def run_noise_cv2(curves: list[StandardCurve]) -> float:
    """The run's noise on the constant-CV scale: the median of :func:`residual_cv2` over the curves
    (NaN with fewer than ``MIN_CURVES_FOR_RUN_NOISE``). The median, so that one analyte's misfit
    does not raise every curve's noise."""
    v = np.array([residual_cv2(c) for c in curves])
    v = v[np.isfinite(v)]
    return float(np.median(v)) if len(v) >= MIN_CURVES_FOR_RUN_NOISE else np.nan


def with_run_noise(curve: StandardCurve, run_cv2: float, *, max_sample_cv_pct: float) -> StandardCurve:
    """The curve with sigma^2 (and the parameter covariance, proportional to it) raised so that its
    residual variance on the constant-CV scale is at least the run's ``run_cv2``
    (:func:`run_noise_cv2`), and its precision-profile limits recomputed; unchanged when its own
    estimate is at least that.

    Every analyte of a bead-array well shares the well's pipetting and incubation error, so the
    run's well-to-well noise is a floor for each analyte's noise; one analyte's ~10 residual degrees
    of freedom can put its own sigma well below it (module docstring).
    """
    own = residual_cv2(curve)
    if not (np.isfinite(own) and np.isfinite(run_cv2) and own > 0 and run_cv2 > own):
        return curve
    fit = curve.fit
    assert fit is not None
    k = run_cv2 / own
    fit = replace(fit, sigma2=fit.sigma2 * k, cov=fit.cov * k)
    lo_prof, hi_prof = _profile_range(fit, curve.x[curve.used & (curve.x > 0)], max_sample_cv_pct)
    lloq, uloq, range_notes = _limits(curve.lloq_standards, curve.uloq_standards, lo_prof, hi_prof, max_sample_cv_pct)
    notes = [n for n in curve.notes if "no quantifiable range" not in n]
    notes.append(f"noise raised to the run's median over analytes ({100 * np.sqrt(run_cv2):.2g} % CV; "
                 f"this curve's standards gave {100 * np.sqrt(own):.2g} %)")
    return replace(curve, fit=fit, lloq=lloq, uloq=uloq, lloq_profile=float(lo_prof), uloq_profile=float(hi_prof),
                   notes=(*notes, *range_notes))


def _standards_range(summaries: list[LevelSummary]) -> tuple[float, float]:
    """Widest [lowest, highest] pair of passing levels with >= 75 % of the levels between passing."""
    levels = [s for s in summaries if s.nominal > 0 and s.used]
    best: tuple[int, int] | None = None
    for i, lo in enumerate(levels):
        for j in range(i + 1, len(levels)):
            if not (lo.passes and levels[j].passes):
                continue
            inner = levels[i : j + 1]
            if sum(s.passes for s in inner) < MIN_PASSING_SHARE * len(inner):
                continue
            if best is None or (j - i) > (best[1] - best[0]):
                best = (i, j)
    if best is None:
        return np.nan, np.nan
    return levels[best[0]].nominal, levels[best[1]].nominal


def precision_profile(fit: CurveFit, x: np.ndarray, *, confidence: float | None = None) -> np.ndarray:
    """CV (%) of the concentration back-calculated from one reading at true concentration ``x``.

    Delta method with the fitted variance function and the parameter covariance (Ekins' precision
    profile; Sadler & Smith, Clin. Chem. 36 (1990) 1346): CV = 100 * sqrt(Var ln x_hat).
    With ``confidence`` (e.g. 0.95), sigma^2 (which scales both terms) is taken at its upper
    one-sided confidence limit sigma^2 df / chi2(1 - confidence; df) instead of its estimate.
    """
    y = fit.curve.response(np.asarray(x, dtype=np.float64))
    gy, gt = _log_conc_gradients(y, fit.theta)
    var = gy**2 * fit.variance(y) + np.einsum("ij,jk,ik->i", gt, fit.cov, gt)
    if confidence is not None:
        df = max(fit.df, 1)
        var = var * df / stats.chi2.ppf(1.0 - confidence, df)
    return 100.0 * np.sqrt(np.maximum(var, 0.0))


def _profile_range(fit: CurveFit, x_std: np.ndarray, max_cv_pct: float) -> tuple[float, float]:
    """Longest interval within the standards' span where the precision profile is <= max_cv_pct."""
    if len(x_std) == 0:
        return np.nan, np.nan
    grid = np.geomspace(x_std.min(), x_std.max(), PROFILE_POINTS)
    ok = precision_profile(fit, grid) <= max_cv_pct
    best, start = (0, -1), None
    for i, flag in enumerate([*ok, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            if i - 1 - start > best[1] - best[0]:
                best = (start, i - 1)
            start = None
    if best[1] < best[0]:
        return np.nan, np.nan
    return float(grid[best[0]]), float(grid[best[1]])


def _log_conc_gradients(y: np.ndarray, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """d ln x / d y (n,) and d ln x / d theta (n, p), by central differences."""
    span = abs(theta[1] - theta[0])
    hy = 1e-6 * span
    gy = (log_concentration(y + hy, theta) - log_concentration(y - hy, theta)) / (2 * hy)
    gt = np.empty((len(y), len(theta)))
    for j in range(len(theta)):
        h = 1e-6 * max(1.0, abs(theta[j]))
        tp, tm = theta.copy(), theta.copy()
        tp[j] += h
        tm[j] -= h
        gt[:, j] = (log_concentration(y, tp) - log_concentration(y, tm)) / (2 * h)
    return gy, gt


def back_calculate(curve: StandardCurve, signal: np.ndarray, *, n_replicates: np.ndarray,
                   dilution: np.ndarray, ci_level: float) -> pd.DataFrame:
    """Concentrations of samples from their mean readings, with intervals and range flags.

    Parameters
    ----------
    curve : StandardCurve
    signal : ndarray (n,)
        Mean reading of each sample (over its replicate wells), on the curve's scale.
    n_replicates : ndarray (n,) of int
        Wells averaged into ``signal`` (the reading's variance is divided by it).
    dilution : ndarray (n,)
        Dilution factor of each sample; concentrations, intervals and bounds are multiplied by it.
    ci_level : float
        Interval coverage (e.g. 0.95).

    Returns
    -------
    DataFrame, one row per sample: ``concentration`` (NaN unless within [LLOQ, ULOQ]),
    ``ci_low``, ``ci_high``, ``flag`` ('' | '<LLOQ' | '>ULOQ' | 'no_curve' | 'no_reading'),
    ``bound`` (the LLOQ or ULOQ times the dilution, for flagged samples), ``reported`` (text:
    the value, '<bound' or '>bound'), ``concentration_extrapolated`` (the curve's value
    wherever it exists, times the dilution; never the result).
    """
    y = np.asarray(signal, dtype=np.float64)
    m = np.asarray(n_replicates, dtype=np.float64)
    dil = np.asarray(dilution, dtype=np.float64)
    n = len(y)
    out = pd.DataFrame({"concentration": np.full(n, np.nan), "ci_low": np.nan, "ci_high": np.nan,
                        "flag": "", "bound": np.nan, "reported": "", "concentration_extrapolated": np.nan})
    if not curve.has_range:
        out["flag"] = "no_curve"
        out["reported"] = "no curve"
        return out
    fit = curve.fit
    assert fit is not None
    theta = fit.theta
    lx = log_concentration(y, theta)
    x = np.exp(lx)
    out["concentration_extrapolated"] = x * dil
    increasing = theta[1] > theta[0]
    # a reading beyond the low asymptote reads as below any concentration, and vice versa
    low_side = (y <= theta[0]) if increasing else (y >= theta[0])
    below = np.where(np.isfinite(x), x < curve.lloq, low_side)
    above = np.where(np.isfinite(x), x > curve.uloq, ~low_side)
    no_reading = np.isnan(y)  # +-inf (a saturated reading) is a side, not a missing value
    below &= ~no_reading
    above &= ~no_reading
    inside = ~(below | above | no_reading)
    gy, gt = _log_conc_gradients(y, theta)
    var_y = fit.variance(y) / np.maximum(m, 1.0)
    var_lx = gy**2 * var_y + np.einsum("ij,jk,ik->i", gt, fit.cov, gt)
    t = stats.t.ppf(0.5 + ci_level / 2.0, max(fit.df, 1))
    se = np.sqrt(np.maximum(var_lx, 0.0))
    conc = x * dil
    out.loc[inside, "concentration"] = conc[inside]
    out.loc[inside, "ci_low"] = (np.exp(lx - t * se) * dil)[inside]
    out.loc[inside, "ci_high"] = (np.exp(lx + t * se) * dil)[inside]
    out.loc[below, "flag"] = "<LLOQ"
    out.loc[below, "bound"] = (curve.lloq * dil)[below]
    out.loc[above, "flag"] = ">ULOQ"
    out.loc[above, "bound"] = (curve.uloq * dil)[above]
    out.loc[no_reading, "flag"] = "no_reading"
    rep = np.where(inside, [f"{v:.4g}" for v in conc], "")
    rep = np.where(below, [f"<{v:.4g}" for v in curve.lloq * dil], rep)
    rep = np.where(above, [f">{v:.4g}" for v in curve.uloq * dil], rep)
    out["reported"] = np.where(no_reading, "no reading", rep)
    return out
