"""Weighted 4PL/5PL fitting: global grid search, then iteratively reweighted refinement.

Global step. For fixed (c, b, g) the logistic is linear in the asymptotes: y = a*h + d*(1 - h) with
h = (1 + (x/c)**b)**-g. A grid over ln c (1.5 decades beyond the data on both sides), b and g is
therefore searched with a and d solved exactly by weighted least squares at every node (variable
projection), so no starting values are guessed and no local optimiser is started from a single
point. The best few nodes, at least two grid steps apart in ln c, are refined.

Refinement. Levenberg-Marquardt with the analytic Jacobian (steps clipped to bounds on b, c, g)
from each start, the best
kept, then iteratively reweighted: weights 1/v(mu) from the *fitted* means (weights from observed
values bias the fit towards low readings). Variance functions (Davidian & Giltinan, Nonlinear Models
for Repeated Measurement Data, 1995, ch. 4; Findlay & Dillard, AAPS J 9 (2007) E260):

- ``"power"``: Var(y) = sigma^2 * mu^(2*theta), theta estimated by pseudo-likelihood on [0, 2];
- ``"1/y2"``: theta = 1 (constant CV);
- ``"none"``: theta = 0 (constant variance).

``mu`` is taken as ``|mu + offset|`` floored at 1e-3 of the largest reading, where ``offset`` adds
back a subtracted blank (the variance belongs to the raw signal). The log-likelihood is Gaussian with
those variances; AIC counts the mean parameters, sigma and (for ``"power"``) theta, and AICc adds
the small-sample term 2k(k+1)/(n-k-1) (Hurvich & Tsai, Biometrika 76 (1989) 297).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zincassay.curves.model import Logistic, n_params

__all__ = ["WEIGHTINGS", "CurveFit", "FitError", "fit_logistic", "profile_interval_lnc", "variance_function"]

WEIGHTINGS = ("power", "1/y2", "none")
_LNB = np.log(np.geomspace(0.3, 5.0, 12))
_LNG = np.log(np.geomspace(0.2, 5.0, 9))
_N_LNC = 36
_N_STARTS = 4
_POWER_GRID = np.linspace(0.0, 2.0, 101)


class FitError(ValueError):
    """Too few points or no usable signal to fit a curve (callers turn this into a flag)."""


def variance_function(mu: np.ndarray, power: float, offset: float, floor: float) -> np.ndarray:
    """v(mu) = max(|mu + offset|, floor)**(2*power): the variance of a reading up to sigma^2."""
    return np.power(np.maximum(np.abs(np.asarray(mu, dtype=np.float64) + offset), floor), 2.0 * power)


@dataclass(frozen=True)
class CurveFit:
    """A fitted curve with its uncertainty.

    Attributes
    ----------
    model, weighting : str
    theta : ndarray (p,)
        ``(a, d, ln c, ln b[, ln g])``.
    cov : ndarray (p, p)
        Covariance of ``theta`` (sigma^2 from the residuals with n - p degrees of freedom).
    sigma2 : float
        Residual variance scale (unbiased): Var(y) = sigma2 * v(mu).
    variance_power, offset, floor : float
        The variance function :func:`variance_function` in force.
    n, k : int
        Points fitted; parameters counted by AIC.
    loglik : float
    """

    model: str
    weighting: str
    theta: np.ndarray
    cov: np.ndarray
    sigma2: float
    variance_power: float
    offset: float
    floor: float
    n: int
    k: int
    loglik: float

    @property
    def curve(self) -> Logistic:
        return Logistic.from_theta(self.model, self.theta)

    @property
    def df(self) -> int:
        """Residual degrees of freedom, n - p."""
        return self.n - len(self.theta)

    @property
    def aic(self) -> float:
        return 2.0 * self.k - 2.0 * self.loglik

    @property
    def aicc(self) -> float:
        extra = self.n - self.k - 1
        return self.aic + (2.0 * self.k * (self.k + 1) / extra if extra > 0 else np.inf)

    def variance(self, mu: np.ndarray) -> np.ndarray:
        """Variance of one reading whose mean is ``mu``."""
        return self.sigma2 * variance_function(mu, self.variance_power, self.offset, self.floor)


class _Design:
    """Response and Jacobian at fixed concentrations, with ln x computed once (fits call these
    thousands of times on tens of points, where numpy's per-call overhead dominates)."""

    def __init__(self, x: np.ndarray) -> None:
        self.pos = x > 0
        self.lx = np.log(np.where(self.pos, x, 1.0))

    def _u(self, lnc: float, b: float) -> np.ndarray:
        return np.exp(np.minimum(b * (self.lx - lnc), 700.0)) * self.pos

    def response(self, theta: np.ndarray) -> np.ndarray:
        g = np.exp(theta[4]) if len(theta) > 4 else 1.0
        u = self._u(theta[2], np.exp(theta[3]))
        return theta[1] + (theta[0] - theta[1]) * (1.0 + u) ** -g

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        a, d, lnc, lnb = theta[:4]
        b = np.exp(lnb)
        g = np.exp(theta[4]) if len(theta) > 4 else 1.0
        u = self._u(lnc, b)
        op = 1.0 + u
        h = op**-g
        common = (a - d) * (-g) * h / op * u  # (a-d) dh/du * u
        J = np.empty((u.size, len(theta)))
        J[:, 0] = h
        J[:, 1] = 1.0 - h
        J[:, 2] = -b * common
        J[:, 3] = common * b * (self.lx - lnc) * self.pos
        if len(theta) > 4:
            J[:, 4] = (a - d) * (-g) * np.log1p(u) * h
        return J


def _grid_starts(x: np.ndarray, y: np.ndarray, w: np.ndarray, model: str, n_starts: int) -> list[np.ndarray]:
    """Best grid nodes (a, d profiled out), at least two ln c steps apart."""
    pos = x[x > 0]
    lo, hi = np.log(pos.min()), np.log(pos.max())
    lnc = np.linspace(lo - np.log(30.0), hi + np.log(30.0), _N_LNC)
    lng = _LNG if model == "5pl" else np.array([0.0])
    C, B, G = np.meshgrid(lnc, _LNB, lng, indexing="ij")
    C, B, G = C.ravel()[:, None], np.exp(B.ravel())[:, None], np.exp(G.ravel())[:, None]
    with np.errstate(divide="ignore"):
        lx = np.log(np.where(x > 0, x, 1.0))[None, :]
    u = np.where(x[None, :] > 0, np.exp(np.minimum(B * (lx - C), 700.0)), 0.0)
    h = np.power(1.0 + u, -G)
    k = 1.0 - h
    sw = w[None, :]
    s_hh, s_hk, s_kk = (sw * h * h).sum(1), (sw * h * k).sum(1), (sw * k * k).sum(1)
    s_hy, s_ky = (sw * h * y).sum(1), (sw * k * y).sum(1)
    det = s_hh * s_kk - s_hk**2
    ok = det > 1e-12 * np.maximum(s_hh * s_kk, 1e-300)
    det = np.where(ok, det, 1.0)
    a = (s_kk * s_hy - s_hk * s_ky) / det
    d = (s_hh * s_ky - s_hk * s_hy) / det
    rss = (sw * (y[None, :] - a[:, None] * h - d[:, None] * k) ** 2).sum(1)
    rss = np.where(ok, rss, np.inf)
    order = np.argsort(rss, kind="stable")
    starts: list[np.ndarray] = []
    used: list[float] = []
    step = lnc[1] - lnc[0]
    for i in order:
        if not np.isfinite(rss[i]):
            break
        if any(abs(C[i, 0] - c0) < 2 * step for c0 in used):
            continue
        t = [a[i], d[i], C[i, 0], np.log(B[i, 0])]
        if model == "5pl":
            t.append(np.log(G[i, 0]))
        starts.append(np.array(t))
        used.append(C[i, 0])
        if len(starts) == n_starts:
            break
    return starts


def _bounds(x: np.ndarray, model: str, nonnegative: bool) -> tuple[np.ndarray, np.ndarray]:
    pos = x[x > 0]
    floor = 0.0 if nonnegative else -np.inf
    lo = [floor, floor, np.log(pos.min()) - 10.0, np.log(0.05)]
    hi = [np.inf, np.inf, np.log(pos.max()) + 10.0, np.log(20.0)]
    if model == "5pl":
        lo.append(np.log(0.02))
        hi.append(np.log(50.0))
    return np.array(lo), np.array(hi)


def _levenberg_marquardt(design: _Design, y: np.ndarray, sw: np.ndarray, theta: np.ndarray,
                         bounds: tuple[np.ndarray, np.ndarray], max_iter: int = 100) -> tuple[np.ndarray, float]:
    """Weighted least squares by Levenberg-Marquardt (Marquardt's diagonal scaling), steps clipped
    to the bounds. Curves have 4-5 parameters and tens of points, where this small loop is ~10x
    faster than a general trust-region solver."""
    lo, hi = bounds
    theta = np.clip(theta, lo, hi)
    r = sw * (design.response(theta) - y)
    cost = float(r @ r)
    lam = 1e-3
    for _ in range(max_iter):
        J = sw[:, None] * design.jacobian(theta)
        A = J.T @ J
        g = J.T @ r
        dg = A.diagonal().copy()
        dg = np.maximum(dg, 1e-12 * max(float(dg.max()), 1e-300))
        improved = small = False
        while lam < 1e12:
            M = A.copy()
            M[np.diag_indices_from(M)] += lam * dg
            try:
                step = np.linalg.solve(M, -g)
            except np.linalg.LinAlgError:
                lam *= 10.0
                continue
            new = np.clip(theta + step, lo, hi)
            r_new = sw * (design.response(new) - y)
            c_new = float(r_new @ r_new)
            if c_new < cost:  # False for NaN
                small = (cost - c_new) <= 1e-9 * cost or bool(np.all(np.abs(new - theta) <= 1e-8 * (1 + np.abs(theta))))
                theta, r, cost, improved = new, r_new, c_new, True
                lam = max(lam / 5.0, 1e-12)
                break
            lam *= 4.0
        if not improved or small:
            break
    return theta, cost


def _refine(design: _Design, y: np.ndarray, w: np.ndarray, theta: np.ndarray,
            bounds: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, float]:
    return _levenberg_marquardt(design, y, np.sqrt(w), theta, bounds)


def _estimate_power(y: np.ndarray, mu: np.ndarray, offset: float, floor: float) -> float:
    """Pseudo-likelihood estimate of theta in Var = sigma^2 mu^(2 theta) (Davidian & Carroll 1987)."""
    r2 = (y - mu) ** 2
    lm = np.log(np.maximum(np.abs(mu + offset), floor))
    n = len(y)
    v = np.exp(2.0 * _POWER_GRID[:, None] * lm[None, :])
    pl = n * np.log(np.maximum((r2[None, :] / v).sum(1) / n, 1e-300)) + np.log(v).sum(1)
    return float(_POWER_GRID[int(np.argmin(pl))])


def fit_logistic(x: np.ndarray, y: np.ndarray, *, model: str, weighting: str, offset: float = 0.0,
                 max_reweights: int = 8, n_starts: int = _N_STARTS, nonnegative: bool = False) -> CurveFit:
    """Fit a 4PL or 5PL to (x, y) by weighted least squares, globally then refined.

    Parameters
    ----------
    x : ndarray (n,)
        Concentrations (>= 0; zeros are blanks / untreated and enter exactly).
    y : ndarray (n,)
        Responses (one per well or replicate).
    model : {"4pl", "5pl"}
    weighting : {"power", "1/y2", "none"}
        Variance function (module docstring).
    offset : float
        Added to the fitted mean inside the variance function (a subtracted blank); 0 otherwise.
    max_reweights : int
        Reweighting passes at most (stops earlier when parameters settle).
    n_starts : int
        Best grid nodes refined (at least two ln c grid steps apart).
    nonnegative : bool
        Keep both asymptotes >= 0 (readouts that cannot be negative, e.g. concentrations).

    Returns
    -------
    CurveFit

    Raises
    ------
    FitError
        Fewer than p + 2 finite points, fewer than 3 distinct positive concentrations, or no
        spread in the responses.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}; use one of {WEIGHTINGS}")
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y) & (x >= 0)
    x, y = x[keep], y[keep]
    p = n_params(model)
    n = len(y)
    if n < p + 2 or len(np.unique(x[x > 0])) < 3:
        raise FitError(f"{n} points at {len(np.unique(x[x > 0]))} positive concentrations; "
                       f"a {model.upper()} needs at least {p + 2} points at 3 or more concentrations")
    if np.ptp(y) <= 0:
        raise FitError("all responses are equal")
    floor = 1e-3 * float(np.max(np.abs(y + offset)))
    power = {"power": 1.0, "1/y2": 1.0, "none": 0.0}[weighting]
    bounds = _bounds(x, model, nonnegative)
    w = 1.0 / variance_function(y, power, offset, floor)
    starts = _grid_starts(x, y, w, model, n_starts)
    if not starts:
        raise FitError("no grid node gives a usable curve")
    design = _Design(x)
    best = min((_refine(design, y, w, s, bounds) for s in starts), key=lambda r: r[1])
    theta = best[0]
    for _ in range(max_reweights):
        mu = design.response(theta)
        if weighting == "power":
            power = _estimate_power(y, mu, offset, floor)
        w = 1.0 / variance_function(mu, power, offset, floor)
        new, _ = _refine(design, y, w, theta, bounds)
        settled = bool(np.all(np.abs(new - theta) <= 1e-5 * (1 + np.abs(theta))))
        theta = new
        if settled:
            break
    mu = design.response(theta)
    v = variance_function(mu, power, offset, floor)
    r2w = (y - mu) ** 2 / v
    sigma2_ml = max(float(r2w.sum() / n), 1e-300)
    sigma2 = float(r2w.sum() / max(n - p, 1))
    J = design.jacobian(theta) / np.sqrt(v)[:, None]
    cov = sigma2 * np.linalg.pinv(J.T @ J)
    loglik = -0.5 * (n * np.log(2 * np.pi * sigma2_ml) + np.log(v).sum() + n)
    k = p + 1 + (1 if weighting == "power" else 0)
    return CurveFit(model, weighting, theta, cov, sigma2, power, float(offset), floor, n, k, float(loglik))


def profile_interval_lnc(x: np.ndarray, y: np.ndarray, fit: CurveFit, level: float) -> tuple[float, float]:
    """Profile-likelihood interval of ln c (the inflection / EC50) of a fitted curve.

    With the fit's final weights held, the weighted residual sum of squares is profiled over ln c:
    for every ln c on a fine grid the other parameters are re-optimised (b and g on grids, a and d
    solved exactly). The interval is the connected set around the estimate where
    RSS(c) <= RSS_min * (1 + F(1, n - p; level) / (n - p)) (Bates & Watts, Nonlinear Regression
    Analysis, 1988, ch. 6). Unlike the delta method it follows the curve's real shape: an EC50
    the doses cannot pin down gets an interval open towards the end it cannot exclude (+-inf).

    Returns
    -------
    (low, high) of ln c; -inf / +inf where the profile stays below the threshold up to the grid's
    end (3 decades beyond the data).
    """
    from scipy.stats import f as f_dist

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y) & (x >= 0)
    x, y = x[keep], y[keep]
    design = _Design(x)
    mu = design.response(fit.theta)
    w = 1.0 / variance_function(mu, fit.variance_power, fit.offset, fit.floor)
    pos = x[x > 0]
    lnc_hat = float(fit.theta[2])
    lnc = np.union1d(np.linspace(np.log(pos.min()) - 7.0, np.log(pos.max()) + 7.0, 281), [lnc_hat])
    lnb = np.linspace(np.log(0.05), np.log(20.0), 100)
    lng = np.log(np.geomspace(0.05, 20.0, 15)) if fit.model == "5pl" else np.array([0.0])
    lx = np.log(np.where(x > 0, x, 1.0))
    prof = np.empty(lnc.size)
    B, G = np.meshgrid(np.exp(lnb), np.exp(lng), indexing="ij")
    B, G = B.ravel()[:, None], G.ravel()[:, None]
    for i, c in enumerate(lnc):
        u = np.exp(np.minimum(B * (lx[None, :] - c), 700.0)) * (x[None, :] > 0)
        h = (1.0 + u) ** -G
        k = 1.0 - h
        s_hh, s_hk, s_kk = (w * h * h).sum(1), (w * h * k).sum(1), (w * k * k).sum(1)
        s_hy, s_ky = (w * h * y).sum(1), (w * k * y).sum(1)
        det = s_hh * s_kk - s_hk**2
        ok = det > 1e-12 * np.maximum(s_hh * s_kk, 1e-300)
        det = np.where(ok, det, 1.0)
        a = (s_kk * s_hy - s_hk * s_ky) / det
        d = (s_hh * s_ky - s_hk * s_hy) / det
        rss = (w * (y[None, :] - a[:, None] * h - d[:, None] * k) ** 2).sum(1)
        prof[i] = np.min(np.where(ok, rss, np.inf))
    rss_hat = float(np.sum(w * (y - mu) ** 2))
    rss_min = min(rss_hat, float(prof.min()))
    df = max(fit.df, 1)
    limit = rss_min * (1.0 + f_dist.ppf(level, 1, df) / df)
    i0 = int(np.searchsorted(lnc, lnc_hat))
    inside = prof <= limit
    inside[i0] = True
    lo = i0
    while lo > 0 and inside[lo - 1]:
        lo -= 1
    hi = i0
    while hi < lnc.size - 1 and inside[hi + 1]:
        hi += 1

    def edge(i_in: int, i_out: int) -> float:
        # linear interpolation of the crossing between a grid point inside and one outside
        p_in, p_out = prof[i_in], prof[i_out]
        t = (limit - p_in) / (p_out - p_in) if np.isfinite(p_out) and p_out != p_in else 0.0
        return float(lnc[i_in] + np.clip(t, 0.0, 1.0) * (lnc[i_out] - lnc[i_in]))

    low = -np.inf if lo == 0 else edge(lo, lo - 1)
    high = np.inf if hi == lnc.size - 1 else edge(hi, hi + 1)
    return low, high
