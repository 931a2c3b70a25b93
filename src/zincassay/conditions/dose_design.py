"""How precisely a dose series can determine an IC50/EC50: the Cramér–Rao bound, for planning.

A donor's curve is the 4PL of :mod:`zincassay.conditions.dose_response`,
y = d + (a − d)/(1 + (x/c)^b), each reading carrying a multiplicative error exp(N(0, σ)) (σ ≈ the
readout's CV: cytokine concentrations and most readouts have constant CV). The Fisher information
for θ = (a, d, ln c, b) is JᵀJ/σ², J the derivatives of ln y at the design's doses (a dose measured
r times counts r times); the square root of the ln c element of its inverse is the smallest SD any
unbiased estimator of ln c can have (Cramér–Rao; Seber & Wild, *Nonlinear Regression*, Wiley 1989,
§2.1, for the asymptotics of nonlinear least squares, which reach it). Donors fitted with one Hill
slope (:mod:`zincassay.conditions.shared_slope`) have a joint information matrix over every donor's
(a, d, ln c) and the common b; its inverse gives each donor's bound and that of their mean ln c.
The validation sweep compares the fitted IC50s with these bounds (``validation/cytokine_sweep.py``)
and ``zincassay plan-dose`` prints them for a planned design.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from zincassay.curves.model import jacobian, response

__all__ = ["design_table", "ic50_sd_bound", "shared_slope_covariance", "within_probability"]


def _jacobian(x: np.ndarray, a: float, d: float, c: float, b: float) -> np.ndarray:
    """d ln y / d(a, d, ln c, ln b) at doses x, shape (n, 4): the standard curves' analytic Jacobian
    over the response (ln b instead of b leaves the bound on ln c unchanged)."""
    theta = np.array([a, d, np.log(c), np.log(b)])
    return jacobian(x, theta) / response(x, theta)[:, None]


def _sd(cov: np.ndarray) -> float:
    v = float(cov)
    return float(np.sqrt(v)) if np.isfinite(v) and v > 0 else float("inf")


def ic50_sd_bound(
    doses: np.ndarray,
    *,
    untreated: float,
    saturating: float,
    ec50: float,
    hill: float,
    noise_cv: float,
    known_slope: bool = False,
) -> float:
    """Cramér–Rao bound on the SD of ln(EC50) for one curve measured at ``doses``.

    Parameters
    ----------
    doses : ndarray (n,)
        Every reading's dose (0 = untreated; a dose read in triplicate appears three times), any unit.
    untreated, saturating : float
        The curve's response at dose 0 (a) and at saturating dose (d), > 0, in the readout's unit.
    ec50 : float
        The relative EC50/IC50 (the 4PL's c), in the doses' unit.
    hill : float
        Steepness b > 0 (the Hill slope's magnitude).
    noise_cv : float
        SD of each reading's ln (≈ its CV).
    known_slope : bool
        Treat b as known exactly (the limit of a slope shared by many donors).

    Returns
    -------
    float
        The smallest SD of an unbiased estimate of ln(EC50); inf when the design cannot determine it.
    """
    jac = _jacobian(np.asarray(doses, dtype=np.float64), untreated, saturating, ec50, hill)
    if known_slope:
        jac = jac[:, :3]
    try:
        return _sd(np.linalg.inv(jac.T @ jac / noise_cv**2)[2, 2])
    except np.linalg.LinAlgError:
        return float("inf")


def shared_slope_covariance(
    doses: Sequence[np.ndarray],
    curves: Sequence[tuple[float, float, float, float]],
    *,
    noise_cv: float,
) -> np.ndarray:
    """Cramér–Rao covariance of the donors' ln(EC50)s when they are fitted with one Hill slope.

    Parameters
    ----------
    doses : sequence of ndarray
        Each donor's readings' doses.
    curves : sequence of (untreated, saturating, ec50, hill)
        Each donor's true curve (the hill of each is used for its own derivatives).
    noise_cv : float
        SD of each reading's ln.

    Returns
    -------
    ndarray (m, m)
        Covariance bound of the m donors' ln EC50 (own a, d and c each, one b); a donor's SD bound
        is the square root of its diagonal element, that of their mean ln EC50 sqrt(sum / m²).
        Filled with inf when the design cannot determine them.
    """
    m = len(curves)
    info = np.zeros((3 * m + 1, 3 * m + 1))
    for j, (x, (a, d, c, b)) in enumerate(zip(doses, curves, strict=True)):
        jac = _jacobian(np.asarray(x, dtype=np.float64), a, d, c, b)
        idx = [3 * j, 3 * j + 1, 3 * j + 2, 3 * m]
        info[np.ix_(idx, idx)] += jac.T @ jac / noise_cv**2
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return np.full((m, m), np.inf)
    lnc = [3 * j + 2 for j in range(m)]
    return cov[np.ix_(lnc, lnc)]


def within_probability(sd_ln: float, *, tolerance: float = 0.2) -> float:
    """Chance that an estimate of ln(EC50) lands within ``tolerance`` of the truth.

    Parameters
    ----------
    sd_ln : float
        SD of an unbiased, normal estimate of ln(EC50) (e.g. :func:`ic50_sd_bound`).
    tolerance : float
        A fraction, 0 < tolerance < 1 (0.2 = within 20 %: estimate/truth in [0.8, 1.2]).

    Returns
    -------
    float
        Φ(ln(1 + tolerance)/sd_ln) − Φ(ln(1 − tolerance)/sd_ln); 1 for sd_ln = 0, 0 for inf.
    """
    if sd_ln == 0:
        return 1.0
    if not np.isfinite(sd_ln) or sd_ln < 0:
        return 0.0
    return float(norm.cdf(np.log1p(tolerance) / sd_ln) - norm.cdf(np.log1p(-tolerance) / sd_ln))


def design_table(
    doses: np.ndarray,
    *,
    ec50: float,
    suppression: float,
    hill: float,
    noise_cv: float,
    replicates: tuple[int, ...] = (1, 2, 3, 4, 6),
    donors: int = 6,
    tolerance: float = 0.2,
) -> pd.DataFrame:
    """Expected precision of the EC50 for a planned dose series, per number of replicates.

    Parameters
    ----------
    doses : ndarray (k,)
        The distinct doses, 0 for untreated (each read ``replicates`` times).
    ec50 : float
        The expected relative EC50/IC50 (doses' unit).
    suppression : float
        Expected effect as a fraction of untreated (0.85 = the response falls by 85 %; negative for
        a readout that rises: -1 = it doubles); the bound does not depend on the untreated level.
    hill : float
        Expected steepness (> 0).
    noise_cv : float
        Each reading's CV (e.g. 0.1 = 10 %).
    replicates : tuple of int
        Replicate counts to tabulate (each >= 1).
    donors : int
        Donors of the same design fitted together (one Hill slope) and averaged for the
        source-level (geometric mean) EC50; >= 1.
    tolerance : float
        Fraction within which an estimate counts as right (0 < tolerance < 1).

    Returns
    -------
    DataFrame
        One row per replicate count: ``replicates, n_readings`` (per donor), ``sd_ln_ec50`` (one
        donor, own slope), ``ci95_fold`` (its 95 % interval's ×/÷ factor), ``p_within`` (share of
        such estimates within ``tolerance``), ``sd_ln_ec50_shared_slope, p_within_shared_slope`` (one
        donor of ``donors`` sharing the slope), ``p_within_donor_mean`` (the geometric mean of the
        ``donors`` donors' EC50s against theirs). Donors are taken as alike; the bounds are for
        unbiased estimators.

    Raises
    ------
    ValueError
        For a value out of range, naming it.
    """
    problems = [msg for bad, msg in (
        (not (suppression < 1 and suppression != 0), "suppression must be below 1 and not 0 (0.85 = falls by 85 %)"),
        (not ec50 > 0, "ec50 must be > 0"), (not hill > 0, "hill must be > 0"), (not noise_cv > 0, "noise_cv must be > 0"),
        (not (replicates and min(replicates) >= 1), "replicates must be >= 1"), (not donors >= 1, "donors must be >= 1"),
        (not 0 < tolerance < 1, "tolerance must be between 0 and 1 (0.2 = 20 %)")) if bad]
    if problems:
        raise ValueError("; ".join(problems))
    base = np.unique(np.asarray(doses, dtype=np.float64))
    curve = (1.0, 1.0 - suppression, ec50, hill)
    rows = []
    for r in replicates:
        x = np.repeat(base, r)
        free = ic50_sd_bound(x, untreated=curve[0], saturating=curve[1], ec50=ec50, hill=hill, noise_cv=noise_cv)
        cov = shared_slope_covariance([x] * donors, [curve] * donors, noise_cv=noise_cv)
        shared = _sd(cov[0, 0])
        mean = _sd(cov.sum() / donors**2)
        rows.append({"replicates": r, "n_readings": x.size, "sd_ln_ec50": free,
                     "ci95_fold": float(np.exp(1.959964 * free)), "p_within": within_probability(free, tolerance=tolerance),
                     "sd_ln_ec50_shared_slope": shared,
                     "p_within_shared_slope": within_probability(shared, tolerance=tolerance),
                     "p_within_donor_mean": within_probability(mean, tolerance=tolerance)})
    return pd.DataFrame(rows)
