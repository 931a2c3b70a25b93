"""Dose-response curves of several donors with one Hill slope.

Donor j's curve is the 4PL

    y(x) = d_j + (a_j - d_j) / (1 + (x / c_j)**b)

with its own untreated and saturating responses ``a_j``, ``d_j`` and EC50 ``c_j``, and the
steepness ``b`` shared. When one donor's points cannot separate a curve's midpoint from its
steepness (an EC50 near the top dose, a partial suppression), the other donors' data pin the slope
and each donor's EC50 comes from where its own curve falls. Sharing the slope only is the weaker
of the classic assumptions: the parallel-curve model of bioassays also shares the relative
plateau (Finney, Statistical Method in Biological Assay, 3rd ed., 1978, ch. 4; drc's ``pmodels``,
Ritz et al., PLoS ONE 10 (2015) e0146021), and donors differ in how deeply zinc suppresses them:
in the validation sweep, with donors' depth and slope varying a little, sharing the plateau too
biased partial curves' EC50s, sharing the slope did not.

Whether the donors share a slope is tested, not assumed: the extra-sum-of-squares F test of the
shared model (3m + 1 parameters for m donors) against one 4PL per donor (4m), with each point's
weight held at its donor's own fit (1 / variance function of that fit's means), on m - 1 and
N - 4m degrees of freedom (Motulsky & Christopoulos, Fitting Models to Biological Data, 2004,
ch. 22).

Fitting is global, then refined: a grid over b with every donor's c_j on its own grid and a_j,
d_j solved exactly (linear given the rest), the best node refined by bounded least squares over
every parameter. EC50 intervals: profile likelihood per donor with the slope re-optimised
(:func:`_profile_intervals`); Hill slope interval: Wald on ln b, t quantile on N - 3m - 1 degrees
of freedom.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

__all__ = ["SharedSlopeFit", "fit_shared_slope"]

_LNB = np.log(np.geomspace(0.3, 5.0, 15))
_N_LNC = 41


@dataclass(frozen=True)
class SharedSlopeFit:
    """One Hill slope over m donors.

    Attributes
    ----------
    b : float
        Shared steepness (> 0).
    a, d, c : ndarray (m,)
        Untreated and saturating response, and EC50 (dose units), per donor.
    c_ci : ndarray (m, 2)
        Profile-likelihood interval of each donor's EC50 at the requested level (dose units).
    b_ci : tuple
        Wald interval of the slope (on ln b) at the requested level.
    p_shared : float
        p of the F test of the shared slope against one 4PL per donor (small = slopes differ).
    """

    b: float
    a: np.ndarray
    d: np.ndarray
    c: np.ndarray
    c_ci: np.ndarray
    b_ci: tuple[float, float]
    p_shared: float


def _sigmoid(x: np.ndarray, lnc: np.ndarray, b: float) -> np.ndarray:
    """1 / (1 + (x/c)^b) for every ln c (rows) and x (columns); 1 at x = 0."""
    with np.errstate(over="ignore", divide="ignore"):
        u = np.where(x > 0, np.exp(b * (np.log(np.where(x > 0, x, 1.0))[None, :] - np.asarray(lnc)[:, None])), 0.0)
    return 1.0 / (1.0 + u)


def _rss_grid(x: np.ndarray, y: np.ndarray, w: np.ndarray, lnc: np.ndarray, b: float,
              nonnegative: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted RSS at every ln c of a grid with both asymptotes solved exactly (weighted least
    squares of y on s and 1 - s; clipped at 0 when ``nonnegative``): (rss, a, d), each (len(lnc),)."""
    s = _sigmoid(x, lnc, b)
    t = 1.0 - s
    sss, stt, sst = (w * s * s).sum(1), (w * t * t).sum(1), (w * s * t).sum(1)
    sy, ty = (w * s * y).sum(1), (w * t * y).sum(1)
    det = np.maximum(sss * stt - sst ** 2, 1e-300)
    a = (sy * stt - ty * sst) / det
    d = (ty * sss - sy * sst) / det
    if nonnegative:
        neg_d, neg_a = d < 0, a < 0
        d = np.where(neg_d, 0.0, d)
        a = np.where(neg_d, sy / np.maximum(sss, 1e-300), a)
        a = np.where(neg_a, 0.0, a)
        d = np.where(neg_a, ty / np.maximum(stt, 1e-300), d)
        a, d = np.maximum(a, 0.0), np.maximum(d, 0.0)
    return (w * (y - a[:, None] * s - d[:, None] * t) ** 2).sum(axis=1), a, d


def _best_c(x: np.ndarray, y: np.ndarray, w: np.ndarray, lnc: np.ndarray, b: float,
            nonnegative: bool) -> tuple[float, int, float, float]:
    """Smallest RSS of :func:`_rss_grid`: (rss, grid index, a, d)."""
    rss, a, d = _rss_grid(x, y, w, lnc, b, nonnegative)
    k = int(np.argmin(rss))
    return float(rss[k]), k, float(a[k]), float(d[k])


def _crossing(g: np.ndarray, prof: np.ndarray, thr: float, i_in: int, i_out: int) -> float:
    """ln c where the profile crosses ``thr`` between grid points ``i_in`` (below) and ``i_out``."""
    return float(g[i_in] + (g[i_out] - g[i_in]) * (thr - prof[i_in]) / max(prof[i_out] - prof[i_in], 1e-300))


def _profile_intervals(xs: list[np.ndarray], ys: list[np.ndarray], ws: list[np.ndarray], lnc_hat: np.ndarray,
                       lnb_hat: float, df: int, level: float, nonnegative: bool) -> np.ndarray:
    """Profile-likelihood interval of each donor's ln c under the shared slope: for every ln c of
    donor j on a fine grid, the slope is re-optimised (on a grid) with donor j's asymptotes solved
    exactly and every other donor's curve at its best for that slope; the interval is the connected
    set around the estimate where RSS <= RSS_min (1 + F(1, df; level) / df), RSS_min the grid's own
    minimum, the ends interpolated between grid points (Bates & Watts,
    Nonlinear Regression Analysis, 1988, ch. 6). (m, 2) of ln c, -inf / +inf where the profile
    stays below the threshold to the grid's end (7 ln units beyond the doses)."""
    lnb = np.union1d(np.linspace(np.log(0.05), np.log(20.0), 100), lnb_hat + np.linspace(-0.3, 0.3, 31))
    grids = []
    for x, lc in zip(xs, lnc_hat, strict=True):
        pos = np.log(x[x > 0])
        grids.append(np.union1d(np.linspace(pos.min() - 7.0, pos.max() + 7.0, 281), lc + np.linspace(-0.5, 0.5, 41)))
    # rss[j][ib, ic]: donor j alone at slope lnb[ib] and ln c grid[j][ic]
    rss = [np.array([_rss_grid(x, y, w, g, float(np.exp(v)), nonnegative)[0] for v in lnb])
           for x, y, w, g in zip(xs, ys, ws, grids, strict=True)]
    best_per_b = np.array([r.min(axis=1) for r in rss])  # (m, n_b)
    total_best = best_per_b.sum(axis=0)
    rss0 = float(total_best.min())  # the grid's own minimum, so that its resolution cancels
    thr = rss0 * (1.0 + stats.f.ppf(level, 1, df) / df)
    out = np.empty((len(xs), 2))
    for j, (g, r) in enumerate(zip(grids, rss, strict=True)):
        prof = (r + (total_best - best_per_b[j])[:, None]).min(axis=0)
        k = int(np.argmin(prof))
        lo = k
        while lo > 0 and prof[lo - 1] <= thr:
            lo -= 1
        hi = k
        while hi < len(g) - 1 and prof[hi + 1] <= thr:
            hi += 1
        out[j] = (-np.inf if lo == 0 else _crossing(g, prof, thr, lo, lo - 1),
                  np.inf if hi == len(g) - 1 else _crossing(g, prof, thr, hi, hi + 1))
    return out


def fit_shared_slope(xs: list[np.ndarray], ys: list[np.ndarray], ws: list[np.ndarray], *, rss_separate: float,
                     nonnegative: bool, ci_level: float) -> SharedSlopeFit | None:
    """Fit the dose series of m >= 2 donors with one Hill slope and test it against separate 4PLs.

    Parameters
    ----------
    xs, ys : list of ndarray (n_j,)
        Each donor's doses (>= 0; 0 = untreated) and responses, finite.
    ws : list of ndarray (n_j,)
        Weights per point (1 / variance function of the donor's own fit), held fixed.
    rss_separate : float
        Sum over the donors of their own 4PL fits' weighted RSS with the same weights.
    nonnegative : bool
        Keep the asymptotes >= 0.
    ci_level : float

    Returns
    -------
    SharedSlopeFit, or None with fewer than 2 donors or no residual degrees of freedom.
    """
    m = len(xs)
    n = int(sum(len(x) for x in xs))
    df, df_sep = n - 3 * m - 1, n - 4 * m
    if m < 2 or df_sep <= 0:
        return None
    lnc_grid = []
    for x in xs:
        pos = np.log(x[x > 0])
        lnc_grid.append(np.linspace(pos.min() - 1.5 * np.log(10), pos.max() + 1.5 * np.log(10), _N_LNC))
    best = (np.inf, 0.0)
    for lnb in _LNB:
        total = sum(_best_c(x, y, w, g, float(np.exp(lnb)), nonnegative)[0]
                    for x, y, w, g in zip(xs, ys, ws, lnc_grid, strict=True))
        if total < best[0]:
            best = (total, float(lnb))
    lnb0 = best[1]
    start = [_best_c(x, y, w, g, float(np.exp(lnb0)), nonnegative)
             for x, y, w, g in zip(xs, ys, ws, lnc_grid, strict=True)]
    lnc0 = np.array([g[k] for g, (_, k, _, _) in zip(lnc_grid, start, strict=True)])
    a0 = np.array([v[2] for v in start])
    d0 = np.array([v[3] for v in start])
    sw = [np.sqrt(w) for w in ws]

    def resid(theta: np.ndarray) -> np.ndarray:
        b = np.exp(theta[0])
        lnc, a, d = theta[1:1 + m], theta[1 + m:1 + 2 * m], theta[1 + 2 * m:]
        return np.concatenate([sq * (y - d[j] - (a[j] - d[j]) * _sigmoid(x, lnc[j:j + 1], b)[0])
                               for j, (x, y, sq) in enumerate(zip(xs, ys, sw, strict=True))])

    floor = 0.0 if nonnegative else -np.inf
    lo = np.concatenate([[np.log(0.05)], [g[0] - 3.0 for g in lnc_grid], np.full(2 * m, floor)])
    hi = np.concatenate([[np.log(20.0)], [g[-1] + 3.0 for g in lnc_grid], np.full(2 * m, np.inf)])
    theta0 = np.concatenate([[lnb0], lnc0, a0, d0])
    theta0 = np.minimum(np.maximum(theta0, np.where(np.isfinite(lo), lo + 1e-9, lo)), np.where(np.isfinite(hi), hi - 1e-9, hi))
    sol = optimize.least_squares(resid, theta0, bounds=(lo, hi), method="trf", x_scale="jac")
    rss = float(np.sum(sol.fun ** 2))
    f = ((rss - rss_separate) / (m - 1)) / (rss_separate / df_sep) if rss_separate > 0 else np.inf
    p_shared = float(stats.f.sf(max(f, 0.0), m - 1, df_sep))
    jac = np.asarray(sol.jac)
    se_lnb = float(np.sqrt(max(np.linalg.pinv(jac.T @ jac)[0, 0] * rss / df, 0.0)))
    t = stats.t.ppf(0.5 + ci_level / 2, df)
    lnc = sol.x[1:1 + m]
    c_ci = np.exp(_profile_intervals(xs, ys, ws, lnc, float(sol.x[0]), df, ci_level, nonnegative))
    b_ci = (float(np.exp(sol.x[0] - t * se_lnb)), float(np.exp(sol.x[0] + t * se_lnb)))
    return SharedSlopeFit(b=float(np.exp(sol.x[0])), a=sol.x[1 + m:1 + 2 * m].copy(), d=sol.x[1 + 2 * m:].copy(),
                          c=np.exp(lnc), c_ci=c_ci, b_ci=b_ci, p_shared=p_shared)
