"""Deconvolution of a dye-dilution (CFSE, CellTrace) histogram into generations.

Model (log10 space, bins of 0.02 decades)
-----------------------------------------
Generation ``g`` carries dye ``D`` with ``log10 D ~ Normal(mu0 - g*delta, sigma_g)``, where
``sigma_g = sqrt(sigma0**2 + g*tau**2)`` (each division adds partition noise ``tau``; capped at
``max_cv_log10``); the cytometer reports ``D + a`` with ``a`` drawn from the autofluorescence
(plus electronic noise) of the matched *unstained* control. Each generation's expected
histogram is therefore a Gaussian on a fine dye grid pushed through a transfer matrix
``T[dye, bin] = P(log10(D + a) in bin)`` built from the unstained control's values, so
generations near autofluorescence are modelled as they really look, not as Gaussians. Two
background components take events that are no generation: the autofluorescence shape
(dye-negative events) and a flat component (debris). Events at or below 1 (including <= 0
after compensation) are counted in the lowest bin, where the background components hold them.

``mu0`` is where the *stimulated* culture's undivided cells sit. It may differ from the
unstimulated control's peak (dye lost on activation, up to ~0.3 decades, usually downward);
every undivided cell, responder or not, is generation 0.

Fit: global, then local. For given ``(mu0, delta, sigma0, tau)`` the amplitudes (expected events
per component) are the non-negative least-squares solution with weights ``1/max(y, 1)``.
1. A coarse grid over ``mu0`` (the allowed window around the control's peak, 0.015-decade steps)
   and ``delta`` (the whole peak-ratio range, <= 0.012-decade steps), with one shared width,
   evaluates every ladder of peaks; precomputed rows (the transfer matrix smoothed by the
   width) make each point one gather and one NNLS.
2. The best grid points (the global minimum and the deepest other local minima) are refined by a
   bounded quasi-Newton search (L-BFGS-B) over every free parameter with the analytic gradient
   of the NNLS residual (envelope theorem: the amplitudes are optimal at every point).
3. A ladder whose generation 0 is empty is the same data one generation further up: when the
   ladder one generation down (still in the window) fits as well, it is taken, so generation 0
   is the highest populated peak.
A fit whose ``mu0`` or peak ratio ends on a bound is reported in ``at_bound``.

Options (``FitOptions``, the ``cfse.fit`` config section): generation 0 found (``auto``), pinned
to the control (``control``) or to a given position; peak ratio fitted or fixed; widths growing
with generation, one shared width, or a fixed width. Generations are fitted from 0 to
``max_generations`` while the generation's dye stays above half the autofluorescence median
(the lowest resolvable generation); the number of generations reported is the highest
generation holding >= 0.5 % of cells.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.optimize import minimize, nnls
from scipy.sparse import csc_matrix, vstack
from scipy.special import ndtri

from zincassay.cfse.indices import division_indices
from zincassay.errors import ZincassayError
from zincassay.flow.transforms import safe_log10

__all__ = ["FitOptions", "GenerationFit", "ParentPeak", "fit_generations", "fit_parent"]

BIN_WIDTH = 0.02  # decades
GRID_STEP = 0.005  # decades, dye grid of the transfer matrix
MIN_REPORTED_FRACTION = 0.005
COARSE_MU_STEP = 0.02  # decades
COARSE_DELTA_STEP = 0.015  # decades
#: Typical steps of (mu0, delta, sigma0, tau**2, autofluorescence level) for the refinement.
THETA_SCALE = np.array([0.01, 0.01, 0.01, 3e-4, 0.3])
COARSE_TAU = 0.022  # decades: width growth per division assumed by the coarse grid (between shared and fast growth)
BOUND_TOL = 2e-3  # decades: a parameter this close to a bound is "at bound"
MAX_TAU = 0.06  # decades of partition noise per division
AF_SIGMA_UNKNOWN_LOG10 = 0.2  # spread of autofluorescence when no unstained control gives it
#: Autofluorescence levels with an unstained control, x the control's (blasts are bigger and brighter).
AF_SCALES = (1.0, 1.5, 2.25, 3.4)
#: Where the search starts on that ladder (1.5 x: stimulated cultures are mostly blasts; the
#: search moves down to 1 x when the cells are not brighter).
AF_START = 1.0


@dataclass(frozen=True)
class FitOptions:
    """How generations are fitted (``cfse.fit``, ``cfse.peak_ratio_bounds``, ``cfse.max_generations``).

    Attributes
    ----------
    undivided : "auto", "control" or float
        Generation 0: searched within ``undivided_shift_bounds_log10`` of the unstimulated
        control's peak (``auto``), pinned to it (``control``), or pinned to this log10 position.
    undivided_shift_bounds_log10 : (low, high)
        Window of ``auto`` around the control's peak (decades; negative = dimmer).
    peak_ratio : float or None
        Fixed ratio between successive generations, or None to fit it within ``peak_ratio_bounds``.
    peak_ratio_bounds : (low, high)
    cv : "growing", "shared" or float
        Widths growing with generation (partition noise), one width shared by all generations
        (fitted), or this fixed width (decades) for every generation.
    max_cv_log10 : float
        Upper bound of any fitted generation's width (decades; a fixed width is not capped).
    max_generations : int
    """

    undivided: str | float
    undivided_shift_bounds_log10: tuple[float, float]
    peak_ratio: float | None
    peak_ratio_bounds: tuple[float, float]
    cv: str | float
    max_cv_log10: float
    max_generations: int

    def __post_init__(self) -> None:
        lo, hi = self.undivided_shift_bounds_log10
        if not lo < hi:
            raise ZincassayError(f"config key cfse.fit.undivided_shift_bounds_log10: [{lo}, {hi}] must be "
                                 "[low, high] with low < high (e.g. [-0.35, 0.1])")
        plo, phi = self.peak_ratio_bounds
        if not plo < phi:
            raise ZincassayError(f"config key cfse.peak_ratio_bounds: [{plo}, {phi}] must be [low, high] with "
                                 "low < high (e.g. [1.6, 2.4])")
        if isinstance(self.undivided, str) and self.undivided not in ("auto", "control"):
            raise ZincassayError(f"config key cfse.fit.undivided: {self.undivided!r} is not auto, control or a "
                                 "log10 position")
        if isinstance(self.cv, str) and self.cv not in ("growing", "shared"):
            raise ZincassayError(f"config key cfse.fit.cv: {self.cv!r} is not growing, shared or a width in decades")
        if not isinstance(self.cv, str) and not float(self.cv) > 0:
            raise ZincassayError(f"config key cfse.fit.cv: a fixed width must be > 0 decades, not {self.cv}")


@dataclass
class ParentPeak:
    """Undivided peak from the unstimulated control: log10 position and width (decades)."""

    mu_log10: float
    sigma_log10: float
    n_events: int


@dataclass
class GenerationFit:
    """Result of one deconvolution. Units: log10 of linear fluorescence; counts are events."""

    mu0: float
    delta: float
    sigma: float  # width of generation 0 (decades)
    tau: float  # partition noise added per division (decades)
    cells: np.ndarray  # (G+1,) events assigned to each generation
    background_events: float
    reduced_chi2: float
    edges: np.ndarray  # (n_bins+1,) log10 bin edges
    counts: np.ndarray  # (n_bins,) observed
    components: np.ndarray  # (n_components, n_bins) fitted expected counts per component
    generation_mu: np.ndarray  # (G+1,) log10 dye position of each generation
    generation_sigma: np.ndarray  # (G+1,) width of each generation (decades)
    af_median_log10: float  # of the autofluorescence used (fitted when no unstained control)
    af_scale: float = 1.0  # autofluorescence used = af_scale x the unstained control's
    at_bound: list[str] = field(default_factory=list)  # "undivided_position" and/or "peak_ratio"
    theta: np.ndarray = field(default_factory=lambda: np.zeros(5))  # fitted (mu0, delta, sigma0, tau**2, af level)
    indices: dict[str, float] = field(default_factory=dict)

    @property
    def peak_ratio(self) -> float:
        return float(10**self.delta)

    @property
    def n_generations(self) -> int:
        """Highest generation holding >= 0.5 % of the cells."""
        frac = self.cells / max(self.cells.sum(), 1e-12)
        hits = np.nonzero(frac >= MIN_REPORTED_FRACTION)[0]
        return int(hits.max()) if hits.size else 0

    @property
    def fractions(self) -> np.ndarray:
        return self.cells / max(self.cells.sum(), 1e-12)


def fit_parent(values: np.ndarray) -> ParentPeak:
    """Position and width of the main peak of the unstimulated control (log10, robust)."""
    x = safe_log10(values)
    if x.size == 0:
        raise ZincassayError("the unstimulated control has no gated events; cannot locate the parent peak")
    med = float(np.median(x))
    sd = max(1.4826 * float(np.median(np.abs(x - med))), 0.01)
    for _ in range(10):
        sel = x[np.abs(x - med) < 2.5 * sd]
        if sel.size < 10:
            break
        new_med = float(np.median(sel))
        # MAD of a +/- 2.5 SD-truncated normal is 0.6745*0.977 SD
        new_sd = max(1.4826 * float(np.median(np.abs(sel - new_med))) / 0.985, 0.01)
        if abs(new_med - med) < 1e-5 and abs(new_sd - sd) < 1e-5:
            break
        med, sd = new_med, new_sd
    top = float(x.max())
    if np.mean(x >= top - 1e-9) > 0.2:
        raise ZincassayError(
            f"{100 * np.mean(x >= top - 1e-9):.0f} % of the unstimulated control's dye events sit at the top "
            "of the scale: the parent peak is off-scale. Re-acquire at a lower voltage/gain."
        )
    return ParentPeak(med, max(sd, 0.01), int(x.size))


class _Model:
    """Precomputed histogram, transfer matrices, background shapes and parameter bounds for one sample.

    Parameters ``theta = (mu0, delta, sigma0, tau**2, u)``; ``u`` is the autofluorescence level:
    between ladder steps ``i`` and ``i + 1`` the autofluorescence is the mixture
    ``(1 - f) * AF_i + f * AF_(i+1)`` with ``f = u - i`` (so its transfer matrix is the same
    mixture, and the fit's gradient in ``u`` is exact). With an unstained control the ladder is
    ``AF_SCALES`` x the control's autofluorescence; without one, a lognormal autofluorescence at
    0.2-decade steps from 3.5 to 1 decade below the parent peak.
    """

    def __init__(self, values: np.ndarray, parent: ParentPeak, af: np.ndarray | None, options: FitOptions) -> None:
        self.parent = parent
        self.options = options
        o = options
        if o.undivided == "auto":
            mu_b = (parent.mu_log10 + o.undivided_shift_bounds_log10[0], parent.mu_log10 + o.undivided_shift_bounds_log10[1])
        else:
            mu = parent.mu_log10 if o.undivided == "control" else float(o.undivided)
            mu_b = (mu, mu)
        d_b = ((np.log10(o.peak_ratio),) * 2 if o.peak_ratio is not None
               else (np.log10(o.peak_ratio_bounds[0]), np.log10(o.peak_ratio_bounds[1])))
        if isinstance(o.cv, str):
            s_lo = max(0.7 * parent.sigma_log10, 0.015)
            s_b = (min(s_lo, o.max_cv_log10), min(max(2.0 * parent.sigma_log10, s_lo + 0.01), o.max_cv_log10))
            t_b = (0.0, MAX_TAU**2 if o.cv == "growing" else 0.0)
        else:
            s_b, t_b = (float(o.cv),) * 2, (0.0, 0.0)
        levels = np.linspace(0.005, 0.995, 100)
        self.af_known = af is not None and np.size(af) > 0
        if self.af_known:
            self.af_base = np.quantile(np.asarray(af, float), levels)
            self.af_ladder = np.array(AF_SCALES)
            self.af_parts = _split_autofluorescence(self.af_base)
        else:  # no unstained control: a lognormal autofluorescence whose level the fit finds
            self.af_base = 10 ** (AF_SIGMA_UNKNOWN_LOG10 * ndtri(levels))
            self.af_ladder = 10 ** np.arange(parent.mu_log10 - 3.5, parent.mu_log10 - 0.99, 0.2)
        self.bounds = [mu_b, d_b, s_b, t_b, (0.0, float(self.af_ladder.size - 1))]
        self.free = np.array([b[1] > b[0] for b in self.bounds])
        x_hi = np.ceil((mu_b[1] + 5 * max(s_b[1], parent.sigma_log10) + 0.15) / BIN_WIDTH) * BIN_WIDTH
        self.edges = np.arange(0.0, x_hi + BIN_WIDTH / 2, BIN_WIDTH)
        self.nb = self.edges.size - 1
        self.counts = self.histogram(values)
        self.weights = 1.0 / np.sqrt(np.maximum(self.counts, 1.0))
        self.grid = np.arange(-1.0, x_hi + GRID_STEP, GRID_STEP)
        self._levels: dict = {}  # per autofluorescence level: transfer matrices and derived arrays
        self.set_generations(AF_START if self.af_known else float(np.argmin(np.abs(np.log10(self.af_ladder)
                                                                                - (parent.mu_log10 - 3.0)))))

    def level(self, i: int) -> tuple[np.ndarray, csc_matrix, np.ndarray, float]:
        """Autofluorescence ladder step ``i``: transfer matrix (dense and transposed sparse),
        background rows (flat, dye-negative) and log10 median of the autofluorescence."""
        if i not in self._levels:
            nb = self.nb
            a = self.af_values(self.af_ladder[i])
            obs = safe_log10(10.0 ** self.grid[:, None] + a[None, :])
            idx = np.clip((obs / BIN_WIDTH).astype(int), 0, nb - 1)
            flat = (np.arange(self.grid.size)[:, None] * nb + idx).ravel()
            T = np.bincount(flat, minlength=self.grid.size * nb).reshape(self.grid.size, nb) / a.size
            la = np.clip(safe_log10(a), 0, self.edges[-1] - 1e-9)
            h = np.bincount(np.minimum((la / BIN_WIDTH).astype(int), nb - 1), minlength=nb).astype(float)
            bg = np.array([np.full(nb, 1.0 / nb), h / h.sum()])
            self._levels[i] = (T, csc_matrix(T.T), bg, float(safe_log10(np.median(a))))
        return self._levels[i]

    def af_values(self, scale: float) -> np.ndarray:
        """Autofluorescence values (linear, 100 quantile levels) of cells ``scale`` x as bright as
        the unstained control's: the lognormal autofluorescence scales, the electronic noise (and
        compensation spread) does not."""
        if not self.af_known:
            return self.af_base * scale
        m, s, nu = self.af_parts
        return np.quantile(m * scale * 10 ** (s * _AF_Z[0]) + nu * _AF_Z[1], _AF_LEVELS)

    def pair(self, i: int) -> tuple[csc_matrix, np.ndarray, np.ndarray]:
        """Transposed transfer matrices of ladder steps ``i`` and ``i + 1`` stacked (one sparse
        product gives both), and their background rows."""
        key = -1 - i
        if key not in self._levels:
            a = self.level(i)
            b = self.level(min(i + 1, self.af_ladder.size - 1))
            # with an unstained control, dye-negative events (debris, dead cells) keep its autofluorescence;
            # only the cells' own (blasts) may be brighter
            bg_a, bg_b = (self.level(0)[2],) * 2 if self.af_known else (a[2], b[2])
            self._levels[key] = (vstack([a[1], b[1]], format="csc"), bg_a, bg_b)
        return self._levels[key]

    def af_at(self, u: float) -> tuple[float, float]:
        """Autofluorescence scale (x the base) and log10 median at level ``u`` (log-interpolated)."""
        lk = np.interp(u, np.arange(self.af_ladder.size), np.log10(self.af_ladder))
        return float(10**lk), float(lk + safe_log10(np.median(self.af_base)) if self.af_known
                                    else lk)

    def set_generations(self, u: float) -> None:
        """Fit generations whose dye stays above half the autofluorescence median at level ``u``."""
        floor = self.af_at(u)[1] - np.log10(2)
        lowest_mu = self.bounds[0][1] - np.arange(self.options.max_generations + 1) * self.bounds[1][0]
        self.n_gen = int(max(1, np.sum(lowest_mu >= floor) - 1))
        self.u_start = float(u)

    def histogram(self, values: np.ndarray) -> np.ndarray:
        """Events per bin of ``values`` (linear); values <= 1 in the lowest bin, above the range in the top."""
        x = np.clip(safe_log10(values), 0.0, self.edges[-1] - 1e-9)
        return np.bincount(np.minimum((x / BIN_WIDTH).astype(int), self.nb - 1), minlength=self.nb).astype(float)

    # ----------------------------------------------------------------------------- model rows

    def widths(self, sigma0: float, tau2: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Width of each generation and its derivatives in sigma0 and ``tau2 = tau**2`` (zero where
        capped). The growth is parametrised by tau**2 so the gradient does not vanish at tau = 0."""
        g = np.arange(self.n_gen + 1)
        raw = np.sqrt(sigma0**2 + g * tau2)
        cap = self.options.max_cv_log10 if isinstance(self.options.cv, str) else np.inf  # a fixed width is not capped
        capped = raw > cap
        sig = np.where(capped, cap, raw)
        d_s0 = np.where(capped, 0.0, sigma0 / raw)
        d_tau2 = np.where(capped, 0.0, g / (2.0 * raw))
        return sig, d_s0, d_tau2

    def _mix(self, u: float) -> tuple[int, float]:
        i = int(min(np.floor(u), self.af_ladder.size - 2)) if self.af_ladder.size > 1 else 0
        return i, (u - i if self.af_ladder.size > 1 else 0.0)

    def design(self, theta: np.ndarray, derivatives: bool = False):
        """Expected histogram of each component (rows) for ``theta``; with ``derivatives`` also
        d(rows)/d(theta) as an array (5, n_components, n_bins).

        All generations at once: Gaussian weights on the dye grid (truncated at 5 widths and
        normalised), pushed through the sparse transfer matrices of the two autofluorescence
        levels around ``u``, restricted to the grid rows the Gaussians touch.
        """
        mu0, delta, sigma0, tau2, u = theta
        gens = np.arange(self.n_gen + 1)
        n = gens.size
        mus = mu0 - delta * gens
        sigs, d_s0, d_tau = self.widths(sigma0, tau2)
        i0 = int(np.searchsorted(self.grid, (mus - 5 * sigs).min()))
        i1 = max(int(np.searchsorted(self.grid, (mus + 5 * sigs).max())), i0 + 1)
        z = (self.grid[None, i0:i1] - mus[:, None]) / sigs[:, None]
        e = np.where(np.abs(z) <= 5.0, np.exp(-0.5 * z * z), 0.0)
        total = e.sum(axis=1, keepdims=True)
        w = e / total
        if derivatives:
            # normalised weights w = e / sum(e): dw = (de - w * sum(de)) / sum(e)
            de_mu = e * z / sigs[:, None]
            de_sig = de_mu * z
            dw_mu = (de_mu - w * de_mu.sum(axis=1, keepdims=True)) / total
            dw_sig = (de_sig - w * de_sig.sum(axis=1, keepdims=True)) / total
            M = np.vstack([w, dw_mu, dw_sig]).T
        else:
            M = w.T
        i, f = self._mix(u)
        pair, bg_a, bg_b = self.pair(i)
        both = (pair[:, i0:i1] @ M).T
        rows_a, rows_b = both[:, : self.nb], both[:, self.nb :]
        rows = (1 - f) * rows_a + f * rows_b
        bg = (1 - f) * bg_a + f * bg_b
        n_comp = n + bg.shape[0]
        X = np.empty((n_comp, self.nb))
        X[:n] = rows[:n]
        X[n:] = bg
        if not derivatives:
            return X, mus, sigs
        dX = np.zeros((5, n_comp, self.nb))
        dX[0, :n] = rows[n : 2 * n]
        dX[1, :n] = -gens[:, None] * rows[n : 2 * n]
        dX[2, :n] = d_s0[:, None] * rows[2 * n :]
        dX[3, :n] = d_tau[:, None] * rows[2 * n :]
        dX[4, :n] = rows_b[:n] - rows_a[:n]
        dX[4, n:] = bg_b - bg_a
        return X, mus, sigs, dX

    # ----------------------------------------------------------------------------- objectives

    def objective(self, theta: np.ndarray, counts: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """Weighted residual sum of squares after NNLS, and its gradient in theta.

        The amplitudes are re-optimised at every point, so by the envelope theorem the gradient
        is that of the residual with the amplitudes held fixed: -2 r . (a dX/dtheta) w.
        """
        y = self.counts if counts is None else counts
        wts = self.weights if counts is None else 1.0 / np.sqrt(np.maximum(counts, 1.0))
        X, _, _, dX = self.design(theta, derivatives=True)
        amp, _ = nnls((X * wts[None, :]).T, y * wts, maxiter=50 * X.shape[0])
        r = (y - amp @ X) * wts
        grad = -2.0 * np.array([(r * wts) @ (amp @ dX[k]) for k in range(5)])
        return float(r @ r), grad

    def solve(self, theta: np.ndarray, counts: np.ndarray | None = None, reweight: bool = False
              ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Weighted NNLS for fixed theta; ``reweight`` adds one pass with weights from the fitted
        model (Pearson), which removes the low bias of 1/y weights in sparse bins."""
        y = self.counts if counts is None else counts
        wts = self.weights if counts is None else 1.0 / np.sqrt(np.maximum(counts, 1.0))
        X, mus, sigs = self.design(theta)
        amp, _ = nnls((X * wts[None, :]).T, y * wts, maxiter=50 * X.shape[0])
        if reweight:
            wts = 1.0 / np.sqrt(np.maximum(amp @ X, 1.0))
            amp, _ = nnls((X * wts[None, :]).T, y * wts, maxiter=50 * X.shape[0])
        resid = (y - amp @ X) * wts
        return float(resid @ resid), amp, X, mus, sigs

    # ----------------------------------------------------------------------------- search

    def coarse_grid(self) -> list[tuple[float, float, float, float, float]]:
        """The objective on a (mu0, delta) grid, widths growing by ``COARSE_TAU`` per division (or shared).

        Returns the grid's local minima as ``(value, mu0, delta, sigma0, tau**2, u)``, best first (at
        the autofluorescence level ``u_start``).
        Vectorised over the grid: precomputed rows (the transfer matrix at 0.02-decade dye steps,
        smoothed by each generation's width rounded to 0.01 decades), bins merged in pairs and cut
        below the lowest resolvable generation, the weighted normal equations of every grid point
        at once, and NNLS by projected coordinate descent from the clipped unconstrained solution
        (enough to rank grid points).
        """
        (mu_lo, mu_hi), (d_lo, d_hi), (s_lo, s_hi), (_, t_hi), _ = self.bounds
        sigma = float(np.clip(1.1 * self.parent.sigma_log10, s_lo, s_hi))
        u = self.u_start
        T, _tt, background, _m = self.level(round(u))
        tau2s = [min(t_hi, COARSE_TAU**2)]
        mus = np.arange(mu_lo, mu_hi + 1e-9, COARSE_MU_STEP) if mu_hi > mu_lo else np.array([mu_lo])
        if mus[-1] < mu_hi - 1e-9:
            mus = np.append(mus, mu_hi)
        n_d = int(np.ceil((d_hi - d_lo) / COARSE_DELTA_STEP)) + 1 if d_hi > d_lo else 1
        deltas = np.linspace(d_lo, d_hi, n_d)
        floor = self.af_at(u)[1] - np.log10(2)
        b0 = int(np.clip(np.searchsorted(self.edges, floor - 0.3) - 1, 0, self.nb - 2))
        b0 = max(b0 - (self.nb - b0) % 2, 0)  # an even number of bins, merged in pairs
        nb2 = (self.nb - b0) // 2

        def pairs(a: np.ndarray) -> np.ndarray:
            a = a[..., b0 : b0 + 2 * nb2]
            return a.reshape(*a.shape[:-1], nb2, 2).sum(-1)

        step = 4 * GRID_STEP
        key = ("coarse", round(u), b0)
        if key not in self._levels:
            self._levels[key] = pairs(T[::4])
        t_coarse = self._levels[key]
        yy = pairs(self.counts)
        w = 1.0 / np.maximum(yy, 1.0)
        gens = np.arange(self.n_gen + 1)
        mm, dd = np.meshgrid(mus, deltas, indexing="ij")
        pos = (mm[..., None] - dd[..., None] * gens - self.grid[0]) / step  # (n_mu, n_d, G+1)
        k = np.clip(np.rint(pos).astype(int), 0, t_coarse.shape[0] - 1).reshape(-1, gens.size)
        bg = pairs(background)
        n_p, n_g, n_b = k.shape[0], gens.size, bg.shape[0]
        banks: dict[float, np.ndarray] = {}
        out = []
        for tau2 in tau2s:
            sig_g = np.round(self.widths(sigma, tau2)[0] / 0.02) * 0.02
            A = np.empty((n_p, n_g + n_b, nb2))
            for g, sg in enumerate(sig_g):
                if sg not in banks:
                    banks[sg] = gaussian_filter1d(t_coarse, sg / step, axis=0, mode="constant", truncate=4.0)
                A[:, g] = banks[sg][k[:, g]]
            A[:, n_g:] = bg
            Aw = A * w
            G = Aw @ A.transpose(0, 2, 1)
            b = Aw @ yy
            kk = G.shape[1]
            G += np.eye(kk) * (1e-9 * np.trace(G, axis1=1, axis2=2) / kk)[:, None, None]
            amp = np.maximum(np.linalg.solve(G, b[..., None])[..., 0], 0.0)
            diag = np.diagonal(G, axis1=1, axis2=2)
            for _ in range(6):
                for j in range(kk):
                    amp[:, j] = np.maximum(amp[:, j] + (b[:, j] - np.einsum("pk,pk->p", G[:, j], amp)) / diag[:, j], 0.0)
            vals = ((yy * w) @ yy - 2 * np.einsum("pk,pk->p", amp, b)
                    + np.einsum("pk,pkj,pj->p", amp, G, amp)).reshape(mus.size, deltas.size)
            out += [(float(vals[i, j]), float(mus[i]), float(deltas[j]), sigma, float(tau2), u)
                    for i, j in _local_minima(vals, 3)]
        return sorted(out)

    def refine(self, theta0: np.ndarray, counts: np.ndarray | None = None, maxiter: int = 60
               ) -> tuple[np.ndarray, float]:
        """Bounded quasi-Newton search over the free parameters from theta0 (each parameter divided
        by ``THETA_SCALE``, its typical step, so the search is well conditioned)."""
        free = self.free
        if not free.any():
            return theta0, self.objective(theta0, counts)[0]
        full = theta0.copy()
        scale = THETA_SCALE[free]

        def f(p: np.ndarray) -> tuple[float, np.ndarray]:
            full[free] = p * scale
            val, grad = self.objective(full, counts)
            return val, grad[free] * scale

        bounds = [(b[0] / sc, b[1] / sc) for b, sc in zip((b for b, fr in zip(self.bounds, free, strict=True) if fr),
                                                         scale, strict=True)]
        start = np.clip(theta0[free] / scale, [b[0] for b in bounds], [b[1] for b in bounds])
        res = minimize(f, start, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": maxiter, "ftol": 1e-7})
        out = theta0.copy()
        out[free] = res.x * scale
        return out, float(res.fun)


_AF_LEVELS = np.linspace(0.005, 0.995, 100)
_AF_Z = np.random.default_rng(20240611).standard_normal((2, 4000))  # fixed draws: deterministic quantiles


def _split_autofluorescence(q: np.ndarray) -> tuple[float, float, float]:
    """Split a control's autofluorescence quantiles (at ``_AF_LEVELS``) into a lognormal part and
    Gaussian electronic noise: ``(median, log10 spread, noise SD)`` of ``m 10^(s Z1) + nu Z2``,
    matched to the quantiles by least squares (Nelder-Mead)."""
    med = float(np.median(q))
    iqr = float(q[74] - q[24])
    if med <= 0:  # no autofluorescence above the noise: all of it is noise
        return 0.0, 0.0, max(iqr / 1.349, 1e-6)
    scale = max(iqr, 1e-6)

    def loss(p: np.ndarray) -> float:
        m, s, nu = med * np.exp(p[0]), abs(p[1]), abs(p[2]) * scale
        model = np.quantile(m * 10 ** (s * _AF_Z[0]) + nu * _AF_Z[1], _AF_LEVELS)
        return float(np.sum((model - q) ** 2)) / scale**2

    res = minimize(loss, np.array([0.0, 0.15, 0.3]), method="Nelder-Mead",
                   options={"xatol": 1e-3, "fatol": 1e-6, "maxfev": 300})
    return float(med * np.exp(res.x[0])), float(abs(res.x[1])), float(abs(res.x[2]) * scale)


def _local_minima(vals: np.ndarray, n: int) -> list[tuple[int, int]]:
    """Indices of the ``n`` lowest local minima of a 2-D array (8-neighbourhood, edges included)."""
    padded = np.pad(vals, 1, constant_values=np.inf)
    centre = padded[1:-1, 1:-1]
    is_min = np.ones(vals.shape, bool)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di or dj:
                is_min &= centre <= padded[1 + di : 1 + di + vals.shape[0], 1 + dj : 1 + dj + vals.shape[1]]
    cand = np.argwhere(is_min)
    order = np.argsort(vals[is_min])
    return [tuple(cand[k]) for k in order[:n]]


def _generation0_populated(model: _Model, theta: np.ndarray) -> bool:
    """Whether generation 0 holds significantly more events than chance: >= 3 + 3 sqrt(the events
    the other components put within 2 widths of it)."""
    _chi2, amp, X, mus, sigs = model.solve(theta)
    c = (model.edges[:-1] + model.edges[1:]) / 2
    near = np.abs(c - mus[0]) <= 2 * sigs[0]
    others = float((amp[1:] @ X[1:])[near].sum())
    return amp[0] >= 3.0 + 3.0 * np.sqrt(others)


def fit_generations(values: np.ndarray, parent: ParentPeak, af: np.ndarray | None = None, *,
                    options: FitOptions, _model: _Model | None = None) -> GenerationFit:
    """Deconvolve the dye values (linear, compensated, gated) of one sample: global search, then refinement.

    Parameters
    ----------
    values : ndarray (n_events,)
        Dye channel, linear units; values <= 1 are kept (lowest bin).
    parent : ParentPeak
        From :func:`fit_parent` on the matched unstimulated control.
    af : ndarray, optional
        Dye-channel values (linear) of the matched unstained control's gated events (or their
        quantiles).
    options : FitOptions

    Returns
    -------
    GenerationFit
    """
    model = _model or _Model(values, parent, af, options)
    if model.af_known:
        model.set_generations(AF_START)
    minima = model.coarse_grid()
    if not model.af_known:  # find the autofluorescence level first: scan the ladder at the best grid point
        theta = np.array(minima[0][1:])
        vals = [model.solve(np.r_[theta[:4], k])[0] for k in range(model.af_ladder.size)]
        model.set_generations(float(np.argmin(vals)))
        minima = model.coarse_grid()
    # refine the global grid minimum, and other local minima that come close to it
    best_theta, best_val = None, np.inf
    for val0, *theta0 in minima[:3]:
        if val0 > 1.5 * minima[0][0] + 50.0:
            break
        theta, val = model.refine(np.array(theta0))
        if val < best_val:
            best_theta, best_val = theta, val
    # generation 0 is the highest populated peak: an empty generation 0 with the ladder one
    # generation down fitting as well means the ladder sits one generation too high
    lo_mu = model.bounds[0][0]
    for _ in range(2):
        if not model.free[0] or _generation0_populated(model, best_theta):
            break
        down = best_theta.copy()
        down[0] -= down[1]
        if down[0] < lo_mu - 1e-9:
            break
        down[2] = float(np.sqrt(down[2] ** 2 + down[3]))  # its generation 0 was generation 1
        down[2] = float(np.clip(down[2], *model.bounds[2]))
        theta, val = model.refine(down)
        if val > best_val + max(10.0, 0.02 * best_val):
            break
        best_theta, best_val = theta, val
    best_theta, best_val = _polish_af_level(model, best_theta, best_val)
    return _result(model, best_theta)


def _polish_af_level(model: _Model, theta: np.ndarray, val: float) -> tuple[np.ndarray, float]:
    """The objective has kinks in the autofluorescence level at the ladder steps, where a quasi-Newton
    search can stall: try the level half a step and a step either side (other parameters held),
    and refine again from any that fits better."""
    if not model.free[4]:
        return theta, val
    lo, hi = model.bounds[4]
    tries = []
    for du in (-1.0, -0.5, 0.5, 1.0):
        t = theta.copy()
        t[4] = float(np.clip(t[4] + du, lo, hi))
        if t[4] != theta[4]:
            tries.append((model.solve(t)[0], t))
    if not tries:
        return theta, val
    v0, t0 = min(tries, key=lambda x: x[0])
    if v0 >= val:
        return theta, val
    t1, v1 = model.refine(t0)
    return (t1, v1) if v1 < val else (theta, val)


def _result(model: _Model, theta: np.ndarray, counts: np.ndarray | None = None) -> GenerationFit:
    chi2, amp, X, mus, sigs = model.solve(theta, counts, reweight=True)
    n_comp = X.shape[0]
    y = model.counts if counts is None else counts
    used = int(np.sum((y > 0) | (amp @ X > 0.5)))
    dof = max(used - (n_comp + int(model.free.sum())), 1)
    cells = amp[: model.n_gen + 1]
    at_bound = []
    for k, name in ((0, "undivided_position"), (1, "peak_ratio")):
        lo, hi = model.bounds[k]
        if hi > lo and min(theta[k] - lo, hi - theta[k]) < BOUND_TOL:
            at_bound.append(name)
    af_scale, af_median = model.af_at(float(theta[4]))
    fit = GenerationFit(
        mu0=float(theta[0]), delta=float(theta[1]), sigma=float(sigs[0]), tau=float(np.sqrt(theta[3])), cells=cells,
        background_events=float(amp[model.n_gen + 1 :].sum()), reduced_chi2=chi2 / dof, edges=model.edges,
        counts=y, components=amp[:, None] * X, generation_mu=mus, generation_sigma=sigs,
        af_median_log10=af_median, af_scale=af_scale if model.af_known else 1.0, at_bound=at_bound,
        theta=np.array(theta, float),
    )
    fit.indices = division_indices(cells)
    return fit
