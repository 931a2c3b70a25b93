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

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.optimize import minimize, nnls
from scipy.sparse import csc_matrix, vstack
from scipy.special import ndtr, ndtri

from zincassay.cfse.indices import division_indices
from zincassay.errors import ZincassayError
from zincassay.flow.transforms import safe_log10

__all__ = ["FitOptions", "GenerationFit", "ParentPeak", "dequantize", "fit_generations", "fit_parent"]

BIN_WIDTH = 0.02  # decades
GRID_STEP = 0.01  # decades, dye grid of the transfer matrix
MIN_REPORTED_FRACTION = 0.005
COARSE_MU_STEP = 0.02  # decades
COARSE_DELTA_STEP = 0.015  # decades
#: Typical steps of (mu0, delta, sigma0, tau**2, autofluorescence level) for the refinement.
THETA_SCALE = np.array([0.01, 0.01, 0.01, 3e-4, 0.3])
REFINE_FTOL = 1e-5  # relative improvement of the objective that ends a refinement
COARSE_TAUS = (0.022, 0.045)  # decades: width growth per division tried by the coarse grid (slow, fast)
BOUND_TOL = 2e-3  # decades: a parameter this close to a bound is "at bound"
MAX_TAU = 0.06  # decades of partition noise per division
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)
AF_SIGMA_UNKNOWN_LOG10 = 0.2  # spread of autofluorescence when no unstained control gives it
#: Autofluorescence levels with an unstained control, x the control's: blasts are bigger and brighter,
#: up to about twice the resting cells' size (a higher ceiling only trades against the deepest generations).
AF_SCALES = (1.0, 1.5, 2.25)
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
        self._designs: OrderedDict = OrderedDict()  # the last few designs, by parameters
        self.set_generations(AF_START if self.af_known else float(np.argmin(np.abs(np.log10(self.af_ladder)
                                                                                - (parent.mu_log10 - 3.0)))))

    def level(self, i: int) -> tuple[np.ndarray, csc_matrix, np.ndarray, float]:
        """Autofluorescence ladder step ``i``: transfer matrix (dense and transposed sparse),
        background rows (flat, dye-negative) and log10 median of the autofluorescence."""
        if i not in self._levels:
            nb = self.nb
            a = self.af_values(self.af_ladder[i])
            # each grid cell sampled at 4 points across its width: T[cell, bin] = P(bin | dye in cell)
            sub = (self.grid[:, None] + GRID_STEP * (np.arange(4) - 1.5) / 4)[:, :, None]
            obs = safe_log10(10.0**sub + a[None, None, :])
            idx = np.clip((obs / BIN_WIDTH).astype(int), 0, nb - 1)
            flat = (np.arange(self.grid.size)[:, None, None] * nb + idx).ravel()
            T = np.bincount(flat, minlength=self.grid.size * nb).reshape(self.grid.size, nb) / (4 * a.size)
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

    def pair(self, i: int) -> tuple[csc_matrix, np.ndarray, np.ndarray, int]:
        """Transposed transfer matrices of ladder steps ``i`` and ``i + 1`` stacked (one sparse
        product gives both), their background rows, and the first grid cell from which every cell
        falls in at most two bins (above it autofluorescence hardly spreads the dye)."""
        key = -1 - i
        if key not in self._levels:
            a = self.level(i)
            b = self.level(min(i + 1, self.af_ladder.size - 1))
            # with an unstained control, dye-negative events (debris, dead cells) keep its autofluorescence;
            # only the cells' own (blasts) may be brighter
            bg_a, bg_b = (self.level(0)[2],) * 2 if self.af_known else (a[2], b[2])
            stacked = vstack([a[1], b[1]], format="csc")
            spread = np.flatnonzero(np.diff(stacked.indptr) > 4)  # grid cells spread over > 2 bins per level
            i_af = int(spread.max()) + 1 if spread.size else 0
            self._levels[key] = (stacked, bg_a, bg_b, i_af)
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

    def bin_index(self, values: np.ndarray) -> np.ndarray:
        """Bin of each of ``values`` (linear); values <= 1 in the lowest bin, above the range in the
        top. Quantized values (integer or log-amplifier channels) are spread over their channels
        first (:func:`dequantize`), so bins holding 5 or 6 channels do not alternate in height."""
        x = np.clip(dequantize(safe_log10(values)), 0.0, self.edges[-1] - 1e-9)
        return np.minimum((x / BIN_WIDTH).astype(np.int64), self.nb - 1)

    def histogram(self, values: np.ndarray) -> np.ndarray:
        """Events per bin of ``values`` (linear), see :meth:`bin_index`."""
        return np.bincount(self.bin_index(values), minlength=self.nb).astype(float)

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

        All generations at once: each Gaussian's mass in every cell of the dye grid (within 5
        widths), pushed through the sparse transfer matrices of the two autofluorescence levels
        around ``u``, restricted to the grid rows the Gaussians touch.
        """
        key = (tuple(np.asarray(theta, float)), self.n_gen, derivatives)
        if key in self._designs:  # e.g. every bootstrap replicate starts at the point estimate
            self._designs.move_to_end(key)
            return self._designs[key]
        full = (key[0], key[1], True)
        if not derivatives and full in self._designs:
            return self._designs[full][:3]
        out = self._design(theta, derivatives)
        self._designs[key] = out
        if len(self._designs) > 8:
            self._designs.popitem(last=False)
        return out

    def _design(self, theta: np.ndarray, derivatives: bool):
        mu0, delta, sigma0, tau2, u = theta
        gens = np.arange(self.n_gen + 1)
        n = gens.size
        mus = mu0 - delta * gens
        sigs, d_s0, d_tau = self.widths(sigma0, tau2)
        i0 = int(np.searchsorted(self.grid, (mus - 5 * sigs).min()))
        i1 = max(int(np.searchsorted(self.grid, (mus + 5 * sigs).max())), i0 + 1)
        # each grid point stands for the cell [x - h/2, x + h/2): its weight is the Gaussian's mass there
        s = sigs[:, None]
        a = (self.grid[None, i0:i1] - GRID_STEP / 2 - mus[:, None]) / s
        b = a + GRID_STEP / s
        w = ndtr(b) - ndtr(a)
        if derivatives:
            pa, pb = np.exp(-0.5 * a * a) * _INV_SQRT_2PI, np.exp(-0.5 * b * b) * _INV_SQRT_2PI
            M = np.vstack([w, (pa - pb) / s, (a * pa - b * pb) / s]).T
        else:
            M = w.T
        i, f = self._mix(u)
        pair, bg_a, bg_b, i_af = self.pair(i)
        # where autofluorescence spreads a grid cell over many bins, only the deepest generations
        # have weight: multiply those rows by their columns alone
        cut = int(np.clip(i_af, i0, i1))
        both = (pair[:, cut:i1] @ M[cut - i0 :]).T
        if cut > i0:
            deep = np.flatnonzero(mus - 5 * sigs < self.grid[cut])
            cols = np.concatenate([deep + k * n for k in range(M.shape[1] // n)])
            both[cols] += (pair[:, i0:cut] @ M[: cut - i0, cols]).T
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

    def _weights(self, counts: np.ndarray | None, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Counts and weights: the given weights, else 1/sqrt(max(count, 1)) (Neyman)."""
        y = self.counts if counts is None else counts
        if weights is not None:
            return y, weights
        return y, (self.weights if counts is None else 1.0 / np.sqrt(np.maximum(counts, 1.0)))

    def residual(self, theta: np.ndarray, counts: np.ndarray | None = None, weights: np.ndarray | None = None
                 ) -> tuple[float, np.ndarray, np.ndarray]:
        """Weighted residuals after NNLS, their sum of squares, and their Jacobian in theta.

        The amplitudes are re-optimised at every point (variable projection, Golub & Pereyra
        1973): with ``A`` the weighted design of the components NNLS keeps (amplitude > 0) and
        ``dA_k`` its derivative, ``J_k = -(I - P) dA_k a - A (A'A)^-1 dA_k' r``, ``P`` the
        projection on ``A``'s columns. Its first term alone gives the exact gradient (envelope
        theorem); both give a Gauss-Newton matrix good enough for quadratic convergence.

        Returns
        -------
        value : float; r : ndarray (n_bins,); J : ndarray (n_bins, 5).
        """
        y, wts = self._weights(counts, weights)
        X, _, _, dX = self.design(theta, derivatives=True)
        amp, _ = nnls((X * wts[None, :]).T, y * wts, maxiter=50 * X.shape[0])
        r = (y - amp @ X) * wts
        dA_a = (np.tensordot(amp, dX, axes=(0, 1)) * wts).T  # (n_bins, 5): dA_k a
        act = amp > 0
        if act.any():
            Q, R = np.linalg.qr((X[act] * wts).T)
            dA_r = (dX[:, act] * wts) @ r  # (5, n_active): dA_k' r
            J = -(dA_a - Q @ (Q.T @ dA_a)) - Q @ np.linalg.solve(R.T, dA_r.T)
        else:
            J = -dA_a
        return float(r @ r), r, J

    def objective(self, theta: np.ndarray, counts: np.ndarray | None = None, weights: np.ndarray | None = None
                  ) -> tuple[float, np.ndarray]:
        """Weighted residual sum of squares after NNLS, and its gradient in theta."""
        val, r, J = self.residual(theta, counts, weights)
        return val, 2.0 * (J.T @ r)

    def solve(self, theta: np.ndarray, counts: np.ndarray | None = None, reweight: bool = False,
              weights: np.ndarray | None = None) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Weighted NNLS for fixed theta; ``reweight`` adds one pass with weights from the fitted
        model (Pearson), which removes the low bias of 1/y weights in sparse bins."""
        y, wts = self._weights(counts, weights)
        X, mus, sigs = self.design(theta)
        amp, _ = nnls((X * wts[None, :]).T, y * wts, maxiter=50 * X.shape[0])
        if reweight:
            wts = 1.0 / np.sqrt(np.maximum(amp @ X, 1.0))
            amp, _ = nnls((X * wts[None, :]).T, y * wts, maxiter=50 * X.shape[0])
        resid = (y - amp @ X) * wts
        return float(resid @ resid), amp, X, mus, sigs

    # ----------------------------------------------------------------------------- search

    def coarse_grid(self) -> list[tuple[float, float, float, float, float]]:
        """The objective on a (mu0, delta) grid, widths growing by each of ``COARSE_TAUS`` per division (or shared).

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
        tau2s = sorted({min(t_hi, t**2) for t in COARSE_TAUS})
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

        step = 2 * GRID_STEP
        key = ("coarse", round(u), b0)
        if key not in self._levels:
            self._levels[key] = pairs(T[::2])
        t_coarse = self._levels[key]
        yy = pairs(self.counts)
        w = 1.0 / np.maximum(yy, 1.0)
        gens = np.arange(self.n_gen + 1)
        mm, dd = np.meshgrid(mus, deltas, indexing="ij")
        pos = (mm[..., None] - dd[..., None] * gens - self.grid[0]) / step  # (n_mu, n_d, G+1)
        k = np.clip(np.rint(pos).astype(int), 0, t_coarse.shape[0] - 1).reshape(-1, gens.size)
        bg = pairs(background)
        n_p, n_g, n_b = k.shape[0], gens.size, bg.shape[0]
        banks: dict[tuple[float, int, int], tuple[int, np.ndarray]] = {}
        t32, w32, y32 = t_coarse.astype(np.float32), w.astype(np.float32), yy.astype(np.float32)
        out = []
        for tau2 in tau2s:
            sig_g = np.round(self.widths(sigma, tau2)[0] / 0.02) * 0.02
            A = np.empty((n_p, n_g + n_b, nb2), np.float32)
            for sg in np.unique(sig_g):
                gs = np.flatnonzero(sig_g == sg)
                kg = k[:, gs]
                key = (float(sg), int(kg.min()), int(kg.max()))
                if key not in banks:  # smoothed rows, only where these generations' positions fall
                    pad = int(np.ceil(4 * sg / step)) + 1
                    r0, r1 = max(key[1] - pad, 0), key[2] + 1 + pad
                    banks[key] = (r0, gaussian_filter1d(t32[r0:r1], sg / step, axis=0, mode="constant", truncate=4.0))
                r0, bank = banks[key]
                A[:, gs] = bank[kg - r0]
            A[:, n_g:] = bg
            Aw = A * w32
            G = (Aw @ A.transpose(0, 2, 1)).astype(np.float64)
            b = (Aw @ y32).astype(np.float64)
            kk = G.shape[1]
            G += np.eye(kk) * (1e-9 * np.trace(G, axis1=1, axis2=2) / kk)[:, None, None]
            amp = np.maximum(np.linalg.solve(G, b[..., None])[..., 0], 0.0)
            diag = np.diagonal(G, axis1=1, axis2=2)
            for _ in range(4):
                for j in range(kk):
                    amp[:, j] = np.maximum(amp[:, j] + (b[:, j] - np.einsum("pk,pk->p", G[:, j], amp)) / diag[:, j], 0.0)
            vals = ((yy * w) @ yy - 2 * np.einsum("pk,pk->p", amp, b)
                    + np.einsum("pk,pkj,pj->p", amp, G, amp)).reshape(mus.size, deltas.size)
            out += [(float(vals[i, j]), float(mus[i]), float(deltas[j]), sigma, float(tau2), u)
                    for i, j in _local_minima(vals, 3)]
        return sorted(out)

    def refine(self, theta0: np.ndarray, counts: np.ndarray | None = None, maxiter: int = 40,
               weights: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """Bounded Levenberg-Marquardt over the free parameters from theta0 (variable projection:
        the amplitudes are re-solved at every point). Parameters are divided by ``THETA_SCALE``, their
        typical steps; a step that leaves the bounds is clipped to them. Stops when a step improves
        the objective by less than ``REFINE_FTOL`` (relative)."""
        free = self.free
        theta = np.array(theta0, float)
        if not free.any():
            return theta, self.residual(theta, counts, weights)[0]
        scale = THETA_SCALE[free]
        lo = np.array([b[0] for b in self.bounds])[free] / scale
        hi = np.array([b[1] for b in self.bounds])[free] / scale
        p = theta[free] / scale
        if ((p < lo) | (p > hi)).any():
            p = np.clip(p, lo, hi)
            theta[free] = p * scale
        val, r, J = self.residual(theta, counts, weights)
        J = J[:, free] * scale
        lam = 1e-3
        for _ in range(maxiter):
            g = J.T @ r
            H = J.T @ J
            step = np.linalg.solve(H + lam * (np.diag(np.diag(H)) + 1e-9 * np.eye(p.size)), -g)
            p_new = np.clip(p + step, lo, hi)
            trial = theta.copy()
            trial[free] = p_new * scale
            v_new, r_new, J_new = self.residual(trial, counts, weights)
            if v_new < val:
                gain = (val - v_new) / max(val, 1e-12)
                p, theta, val, r, J = p_new, trial, v_new, r_new, J_new[:, free] * scale
                lam = max(lam / 3.0, 1e-7)
                if gain < REFINE_FTOL:
                    break
            else:
                lam *= 4.0
                if lam > 1e8:
                    break
        return theta, val


_AF_LEVELS = np.linspace(0.005, 0.995, 100)
_AF_Z = np.random.default_rng(20240611).standard_normal((2, 4000))  # fixed draws: deterministic quantiles


def _split_autofluorescence(q: np.ndarray) -> tuple[float, float, float]:
    """Split a control's autofluorescence quantiles (at ``_AF_LEVELS``) into a lognormal part and
    Gaussian electronic noise: ``(median, log10 spread, noise SD)`` of ``m 10^(s Z1) + nu Z2``,
    matched to the central quantiles (2-98 %) by least squares (Nelder-Mead)."""
    med = float(np.median(q))
    iqr = float(q[74] - q[24])
    if med <= 0:  # no autofluorescence above the noise: all of it is noise
        return 0.0, 0.0, max(iqr / 1.349, 1e-6)
    scale = max(iqr, 1e-6)

    central = (_AF_LEVELS >= 0.02) & (_AF_LEVELS <= 0.98)  # a few outlying events must not steer the split

    def loss(p: np.ndarray) -> float:
        m, s, nu = med * np.exp(p[0]), abs(p[1]), abs(p[2]) * scale
        model = np.quantile(m * 10 ** (s * _AF_Z[0]) + nu * _AF_Z[1], _AF_LEVELS[central])
        return float(np.sum((model - q[central]) ** 2)) / scale**2

    res = minimize(loss, np.array([0.0, 0.15, 0.3]), method="Nelder-Mead",
                   options={"xatol": 1e-3, "fatol": 1e-6, "maxfev": 300})
    return float(med * np.exp(res.x[0])), float(abs(res.x[1])), float(abs(res.x[2]) * scale)


def dequantize(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Spread quantized values uniformly over their quantization cells (deterministic, seeded).

    Data stored as channels (FCS 2.0 log amplifiers: 256 channels per decade; integer data at low
    values) take few distinct values, and a histogram whose bins are not a whole number of channels
    alternates in height (a 0.02-decade bin holds 5 or 6 channels of 0.0039 decades), which the
    fit reads as misfit. When fewer than half of (a sample of) the values are distinct, each value
    is moved to a uniform position between the midpoints to its neighbouring distinct values (at
    most 3 median gaps wide). Continuous data are returned unchanged.

    Parameters
    ----------
    x : ndarray (n,)
        Values on the analysis scale (log10).
    seed : int

    Returns
    -------
    ndarray (n,)
    """
    x = np.asarray(x, np.float64)
    if x.size < 100:
        return x
    probe = x[:: max(1, x.size // 20000)]
    if np.unique(probe).size > 0.5 * probe.size:
        return x
    u, inv = np.unique(x, return_inverse=True)
    if u.size < 2:
        return x
    gaps = np.diff(u)
    cap = 3.0 * float(np.median(gaps))
    half = np.minimum(np.r_[gaps[0], gaps] / 2, cap / 2), np.minimum(np.r_[gaps, gaps[-1]] / 2, cap / 2)
    lo, hi = u - half[0], u + half[1]
    r = np.random.default_rng(seed).random(x.size)
    return lo[inv] + (hi[inv] - lo[inv]) * r


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


def _generation0_populated(model: _Model, theta: np.ndarray, weights: np.ndarray | None = None) -> bool:
    """Whether generation 0 holds significantly more events than chance: >= 3 + 3 sqrt(the events
    the other components put within 2 widths of it)."""
    _chi2, amp, X, mus, sigs = model.solve(theta, weights=weights)
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
    # refine the global grid minimum, and other local minima that come close to it (weights 1/count)
    cands: list[tuple[float, np.ndarray]] = []
    done: list[np.ndarray] = []
    for val0, *theta0 in minima[:3]:
        if val0 > 1.5 * minima[0][0] + 50.0:
            break
        if any(abs(theta0[0] - d[0]) < 0.05 and abs(theta0[1] - d[1]) < 0.02 for d in done):
            continue  # a start in a basin already refined
        theta, val = model.refine(np.array(theta0))
        done += [np.array(theta0), theta]
        cands.append((val, theta))
    cands.sort(key=lambda c: c[0])
    # then with weights from the fitted model (Pearson): 1/count weights favour models that put
    # too few events where counts are low, e.g. a sparse generation 0
    finals = [_pearson(model, theta) for val, theta in cands[:2] if val <= 1.3 * cands[0][0] + 20.0]
    best_val, best_theta, w = min(finals, key=lambda f: f[0])
    # generation 0 is the highest populated peak: an empty generation 0 with the ladder one
    # generation down fitting as well means the ladder sits one generation too high
    lo_mu = model.bounds[0][0]
    for _ in range(2):
        if not model.free[0] or _generation0_populated(model, best_theta, w):
            break
        down = best_theta.copy()
        down[0] -= down[1]
        if down[0] < lo_mu - 1e-9:
            break
        down[2] = float(np.sqrt(down[2] ** 2 + down[3]))  # its generation 0 was generation 1
        down[2] = float(np.clip(down[2], *model.bounds[2]))
        theta, val = model.refine(down, weights=w)
        if val > best_val + max(10.0, 0.02 * best_val):
            break
        best_theta, best_val = theta, val
    return _result(model, best_theta, weights=w)


def _pearson(model: _Model, theta: np.ndarray, rounds: int = 1) -> tuple[float, np.ndarray, np.ndarray]:
    """Refine with weights 1/sqrt(expected count) from the current fit, ``rounds`` times (Pearson
    chi-square); returns (value, theta, weights)."""
    for _ in range(rounds):
        _v, amp, X, _m, _s = model.solve(theta)
        w = 1.0 / np.sqrt(np.maximum(amp @ X, 1.0))
        theta, val = model.refine(theta, weights=w)
    return val, theta, w


def _result(model: _Model, theta: np.ndarray, counts: np.ndarray | None = None,
            weights: np.ndarray | None = None) -> GenerationFit:
    chi2, amp, X, mus, sigs = model.solve(theta, counts, reweight=True, weights=weights)
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
