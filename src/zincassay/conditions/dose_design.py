"""How precisely a dose series can determine an IC50/EC50: the Cramér–Rao bound, for planning.

A donor's curve is the 4PL of :mod:`zincassay.conditions.dose_response`,
y = d + (a − d)/(1 + (x/c)^b), each reading carrying a multiplicative error exp(N(0, σ)) (σ ≈ the
readout's CV: cytokine concentrations and most readouts have constant CV). The Fisher information
for θ = (a, d, ln c, b) is JᵀJ/σ², J the derivatives of ln y at the design's doses (a dose measured
r times counts r times); the square root of the ln c element of its inverse is the smallest SD any
unbiased estimator of ln c can have (Cramér–Rao; Seber & Wild, *Nonlinear Regression*, Wiley 1989,
§2.1, for the asymptotics of nonlinear least squares, which reach it). With the Hill slope known,
(b dropped from θ) the bound is what a slope shared across donors approaches
(:mod:`zincassay.conditions.shared_slope`). The validation sweep compares the fitted IC50s with
this bound (``validation/cytokine_sweep.py``) and ``zincassay plan-dose`` prints it for a planned
design.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

__all__ = ["design_table", "ic50_sd_bound", "within_probability"]


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
        Treat b as known (a slope shared with other donors).

    Returns
    -------
    float
        The smallest SD of an unbiased estimate of ln(EC50); inf when the design cannot determine it.
    """
    x = np.asarray(doses, dtype=np.float64)
    theta = np.array([untreated, saturating, np.log(ec50), hill], dtype=np.float64)

    def ln_y(t: np.ndarray) -> np.ndarray:
        return np.log(t[1] + (t[0] - t[1]) / (1.0 + (x / np.exp(t[2])) ** t[3]))

    jac = np.empty((x.size, 4))
    for i in range(4):
        h = 1e-5 * max(1.0, abs(theta[i]))
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        jac[:, i] = (ln_y(up) - ln_y(down)) / (2.0 * h)
    if known_slope:
        jac = jac[:, :3]
    info = jac.T @ jac / noise_cv**2
    try:
        var = np.linalg.inv(info)[2, 2]
    except np.linalg.LinAlgError:
        return float("inf")
    return float(np.sqrt(var)) if np.isfinite(var) and var > 0 else float("inf")


def within_probability(sd_ln: float, *, tolerance: float = 0.2) -> float:
    """Probability that an unbiased, normal estimate of ln(EC50) with SD ``sd_ln`` lands within
    ``tolerance`` (a fraction: 0.2 = 20 %) of the truth."""
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
        Replicate counts to tabulate.
    donors : int
        Donors averaged for the source-level (geometric mean) EC50.
    tolerance : float
        Fraction within which an estimate counts as right.

    Returns
    -------
    DataFrame
        One row per replicate count: ``replicates, n_readings, sd_ln_ec50, ci95_fold`` (the
        95 % interval's ×/÷ factor), ``p_within`` (one donor, own slope), ``sd_ln_ec50_shared_slope,
        p_within_shared_slope`` (slope known from the other donors), ``p_within_donor_mean`` (the
        geometric mean over ``donors`` donors with a shared slope).
    """
    if not (suppression < 1 and suppression != 0 and ec50 > 0 and hill > 0 and noise_cv > 0):
        raise ValueError("need suppression < 1 and not 0, ec50 > 0, hill > 0 and noise_cv > 0")
    base = np.unique(np.asarray(doses, dtype=np.float64))
    rows = []
    for r in replicates:
        x = np.repeat(base, r)
        kw = dict(untreated=1.0, saturating=1.0 - suppression, ec50=ec50, hill=hill, noise_cv=noise_cv)
        free = ic50_sd_bound(x, **kw)
        shared = ic50_sd_bound(x, **kw, known_slope=True)
        rows.append({"replicates": r, "n_readings": x.size, "sd_ln_ec50": free,
                     "ci95_fold": float(np.exp(1.959964 * free)), "p_within": within_probability(free, tolerance=tolerance),
                     "sd_ln_ec50_shared_slope": shared,
                     "p_within_shared_slope": within_probability(shared, tolerance=tolerance),
                     "p_within_donor_mean": within_probability(shared / np.sqrt(donors), tolerance=tolerance)})
    return pd.DataFrame(rows)
