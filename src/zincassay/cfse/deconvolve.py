"""Deconvolution of a CFSE dye-dilution histogram into generations.

Model (log10 space, bins of 0.02 decades)
-----------------------------------------
Generation ``g`` carries dye ``D`` with ``log10 D ~ Normal(mu0 - g*delta, sigma)``; the cytometer
reports ``D + a`` with ``a`` drawn from the autofluorescence (plus electronic noise) of the
matched *unstained* control. Each generation's expected histogram is therefore a Gaussian on a
fine dye grid pushed through a transfer matrix ``T[dye, bin] = P(log10(D + a) in bin)`` built
from the unstained control's values, so generations near autofluorescence are modelled as they
really look, and not as Gaussians. Two background components take events that are no
generation: the autofluorescence shape itself (dye-negative events) and a flat component
(debris). Events at or below 1 (including <= 0 after compensation) are counted in the lowest bin,
where the background components hold them: nothing is dropped.

Fit: for given ``(mu0, delta, sigma)`` the amplitudes (expected events per component) are the
non-negative least-squares solution with Pearson weights ``1/max(y, 1)``; the outer problem is a
bounded quasi-Newton search (L-BFGS-B) with the analytic gradient of the NNLS residual
(envelope theorem: the amplitudes are optimal at every point). ``mu0`` starts at the unstimulated control's parent peak and may move
within +/- 0.25 decades (moves beyond ``cfse.max_parent_shift_log10`` are flagged); ``delta =
log10(peak ratio)`` is bounded by ``cfse.peak_ratio_bounds``; ``sigma`` may widen from the
control's width up to 1.6x. Generations are fitted from 0 to ``cfse.max_generations`` while the
generation's dye stays above half the autofluorescence median (the lowest resolvable generation);
the number of generations reported is the highest generation holding >= 0.5 % of cells.

Confidence intervals: bootstrap over events (a multinomial resample of the histogram is an
event resample), each replicate refitted; 2.5th and 97.5th percentiles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize, nnls

from zincassay.cfse.indices import INDEX_NAMES, division_indices
from zincassay.errors import ZincassayError
from zincassay.flow.transforms import safe_log10

__all__ = ["GenerationFit", "ParentPeak", "bootstrap_indices", "fit_generations", "fit_parent"]

BIN_WIDTH = 0.02  # decades
GRID_STEP = 0.005  # decades, dye grid of the transfer matrix
MIN_REPORTED_FRACTION = 0.005


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
    sigma: float
    cells: np.ndarray  # (G+1,) events assigned to each generation
    background_events: float
    reduced_chi2: float
    edges: np.ndarray  # (n_bins+1,) log10 bin edges
    counts: np.ndarray  # (n_bins,) observed
    components: np.ndarray  # (n_components, n_bins) fitted expected counts per component
    generation_mu: np.ndarray  # (G+1,) log10 dye position of each generation
    af_median_log10: float | None
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
            f"{100 * np.mean(x >= top - 1e-9):.0f} % of the unstimulated control's CFSE events sit at the top "
            "of the scale: the parent peak is off-scale. Re-acquire at a lower voltage/gain."
        )
    return ParentPeak(med, max(sd, 0.01), int(x.size))


class _Model:
    """Precomputed histogram, transfer matrix and background shapes for one sample."""

    def __init__(self, values: np.ndarray, parent: ParentPeak, af: np.ndarray | None, max_generations: int,
                 delta_bounds: tuple[float, float]) -> None:
        self.parent = parent
        x_hi = np.ceil((parent.mu_log10 + 6 * parent.sigma_log10 + 0.3) / BIN_WIDTH) * BIN_WIDTH
        self.edges = np.arange(0.0, x_hi + BIN_WIDTH / 2, BIN_WIDTH)
        nb = self.edges.size - 1
        self.nb = nb
        x = np.clip(safe_log10(values), 0.0, x_hi - 1e-9)
        self.counts = np.bincount(np.minimum((x / BIN_WIDTH).astype(int), nb - 1), minlength=nb).astype(float)
        self.grid = np.arange(-1.0, x_hi + GRID_STEP, GRID_STEP)
        a = np.zeros(1) if af is None or af.size == 0 else np.quantile(np.asarray(af, float), np.linspace(0.005, 0.995, 100))
        obs = safe_log10(10.0 ** self.grid[:, None] + a[None, :])
        idx = np.clip((obs / BIN_WIDTH).astype(int), 0, nb - 1)
        T = np.zeros((self.grid.size, nb))
        np.add.at(T, (np.repeat(np.arange(self.grid.size), a.size), idx.ravel()), 1.0 / a.size)
        self.T = T
        self.af_median_log10 = None if af is None or af.size == 0 else float(safe_log10(np.median(af)))
        bgs = [np.full(nb, 1.0 / nb)]
        if af is not None and af.size:
            la = np.clip(safe_log10(af), 0, x_hi - 1e-9)
            h = np.bincount(np.minimum((la / BIN_WIDTH).astype(int), nb - 1), minlength=nb).astype(float)
            bgs.append(h / h.sum())
        else:  # dye-negative events without an unstained control: a dim broad shape
            c = (self.edges[:-1] + self.edges[1:]) / 2
            h = np.exp(-0.5 * ((c - 1.5) / 0.6) ** 2)
            bgs.append(h / h.sum())
        self.background = np.array(bgs)
        # generations whose dye stays above half the autofluorescence median are resolvable
        floor = (self.af_median_log10 - np.log10(2)) if self.af_median_log10 is not None else 0.5
        lowest_mu = parent.mu_log10 + 0.25 - np.arange(max_generations + 1) * delta_bounds[0]
        self.n_gen = int(max(1, np.sum(lowest_mu >= floor) - 1))
        self.weights = 1.0 / np.sqrt(np.maximum(self.counts, 1.0))

    def design(self, mu0: float, delta: float, sigma: float, derivatives: bool = False):
        """Expected histogram of each component (rows) for the parameters; with ``derivatives``
        also d(rows)/d(mu0, delta, sigma) as an array (3, n_components, n_bins)."""
        mus = mu0 - delta * np.arange(self.n_gen + 1)
        n_comp = self.n_gen + 1 + self.background.shape[0]
        X = np.empty((n_comp, self.nb))
        dX = np.zeros((3, n_comp, self.nb)) if derivatives else None
        half = 5.0 * sigma
        for g, mu in enumerate(mus):  # each Gaussian only touches +/- 5 sigma of the dye grid
            lo = int(np.searchsorted(self.grid, mu - half))
            hi = max(int(np.searchsorted(self.grid, mu + half)), lo + 1)
            z = (self.grid[lo:hi] - mu) / sigma
            e = np.exp(-0.5 * z * z)
            total = e.sum()
            w = e / total
            Tw = self.T[lo:hi]
            if derivatives:
                # normalised weights w = e / sum(e): dw = (de - w * sum(de)) / sum(e)
                de_mu = e * z / sigma
                de_sig = e * z * z / sigma
                dw_mu = (de_mu - w * de_mu.sum()) / total
                dw_sig = (de_sig - w * de_sig.sum()) / total
                rows = np.stack([w, dw_mu, dw_sig]) @ Tw
                X[g] = rows[0]
                dX[0, g] = rows[1]
                dX[1, g] = -g * rows[1]
                dX[2, g] = rows[2]
            else:
                X[g] = w @ Tw
        X[self.n_gen + 1 :] = self.background
        if derivatives:
            return X, mus, dX
        return X, mus

    def objective(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Weighted residual sum of squares after NNLS, and its gradient in (mu0, delta, sigma).

        The amplitudes are re-optimised at every point, so by the envelope theorem the gradient
        is that of the residual with the amplitudes held fixed: -2 r . (a dX/dtheta) w.
        """
        y, wts = self.counts, self.weights
        X, _, dX = self.design(*theta, derivatives=True)
        amp, _ = nnls((X * wts[None, :]).T, y * wts, maxiter=50 * X.shape[0])
        r = (y - amp @ X) * wts
        grad = -2.0 * np.array([(r * wts) @ (amp @ dX[k]) for k in range(3)])
        return float(r @ r), grad

    def solve(self, theta: np.ndarray, counts: np.ndarray | None = None, reweight: bool = False
              ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        """Weighted NNLS for fixed (mu0, delta, sigma); ``reweight`` adds one pass with weights
        from the fitted model (Pearson), which removes the low bias of 1/y weights in sparse bins."""
        y = self.counts if counts is None else counts
        wts = self.weights if counts is None else 1.0 / np.sqrt(np.maximum(counts, 1.0))
        X, mus = self.design(*theta)
        amp, _ = nnls((X * wts[None, :]).T, y * wts, maxiter=50 * X.shape[0])
        if reweight:
            wts = 1.0 / np.sqrt(np.maximum(amp @ X, 1.0))
            amp, _ = nnls((X * wts[None, :]).T, y * wts, maxiter=50 * X.shape[0])
        resid = (y - amp @ X) * wts
        return float(resid @ resid), amp, X, mus


def fit_generations(
    values: np.ndarray, parent: ParentPeak, af: np.ndarray | None = None, *, max_generations: int = 10,
    peak_ratio_bounds: tuple[float, float] = (1.7, 2.3), _model: _Model | None = None,
) -> GenerationFit:
    """Deconvolve the CFSE values (linear, compensated, gated) of one sample.

    Parameters
    ----------
    values : ndarray (n_events,)
        CFSE channel, linear units; values <= 1 are kept (lowest bin).
    parent : ParentPeak
        From :func:`fit_parent` on the matched unstimulated control.
    af : ndarray, optional
        CFSE-channel values (linear) of the matched unstained control's gated events.
    max_generations : int
    peak_ratio_bounds : (low, high)
    """
    d_lo, d_hi = np.log10(peak_ratio_bounds[0]), np.log10(peak_ratio_bounds[1])
    model = _model or _Model(values, parent, af, max_generations, (d_lo, d_hi))
    bounds = [(parent.mu_log10 - 0.25, parent.mu_log10 + 0.25), (d_lo, d_hi),
              (parent.sigma_log10, 1.6 * parent.sigma_log10)]
    # coarse grid over the peak ratio and width, then one bounded quasi-Newton refinement
    best_theta, best_val = None, np.inf
    for delta in np.linspace(d_lo, d_hi, 5):
        for sig in (1.0, 1.25):
            th = np.array([parent.mu_log10, delta, parent.sigma_log10 * sig])
            val = model.solve(th)[0]
            if val < best_val:
                best_theta, best_val = th, val
    res = minimize(model.objective, best_theta, jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 40, "ftol": 1e-7})
    best = res if res.fun <= best_val else None
    if best is None:
        return _result(model, best_theta)
    return _result(model, best.x)


def _result(model: _Model, theta: np.ndarray, counts: np.ndarray | None = None) -> GenerationFit:
    chi2, amp, X, mus = model.solve(theta, counts, reweight=True)
    n_comp = X.shape[0]
    y = model.counts if counts is None else counts
    used = int(np.sum((y > 0) | (amp @ X > 0.5)))
    dof = max(used - (n_comp + 3), 1)
    cells = amp[: model.n_gen + 1]
    fit = GenerationFit(
        mu0=float(theta[0]), delta=float(theta[1]), sigma=float(theta[2]), cells=cells,
        background_events=float(amp[model.n_gen + 1 :].sum()), reduced_chi2=chi2 / dof, edges=model.edges,
        counts=y, components=amp[:, None] * X, generation_mu=mus, af_median_log10=model.af_median_log10,
    )
    fit.indices = division_indices(cells)
    return fit


def bootstrap_indices(
    values: np.ndarray, parent: ParentPeak, af: np.ndarray | None, fit: GenerationFit, *, replicates: int,
    seed: int, max_generations: int = 10, peak_ratio_bounds: tuple[float, float] = (1.7, 2.3),
) -> dict[str, tuple[float, float]]:
    """95 % bootstrap intervals for every index (and the peak ratio).

    Each replicate resamples the events (multinomially over the histogram, which is the same
    thing) and refits the parent position and peak ratio (Nelder-Mead from the point estimate,
    at most 30 evaluations) with the amplitudes, holding the width at its point estimate.
    """
    if replicates <= 0:
        return {}
    d_lo, d_hi = np.log10(peak_ratio_bounds[0]), np.log10(peak_ratio_bounds[1])
    model = _Model(values, parent, af, max_generations, (d_lo, d_hi))
    rng = np.random.default_rng(seed)
    n = int(model.counts.sum())
    probs = model.counts / n
    bounds = [(parent.mu_log10 - 0.25, parent.mu_log10 + 0.25), (d_lo, d_hi),
              (parent.sigma_log10, 1.6 * parent.sigma_log10)]
    theta0 = np.array([fit.mu0, fit.delta, fit.sigma])
    out: dict[str, list[float]] = {k: [] for k in (*INDEX_NAMES, "peak_ratio")}
    for _ in range(replicates):
        y = rng.multinomial(n, probs).astype(float)
        def objective(th2: np.ndarray, y: np.ndarray = y) -> float:
            return model.solve(np.array([th2[0], th2[1], theta0[2]]), y)[0]

        res = minimize(objective, theta0[:2], method="Nelder-Mead", bounds=bounds[:2],
                       options={"maxfev": 30, "initial_simplex": theta0[:2] + np.array([[0.0, 0.0], [0.01, 0.0], [0.0, 0.01]])})
        res.x = np.array([res.x[0], res.x[1], theta0[2]])
        rep = _result(model, res.x, y)
        for k in INDEX_NAMES:
            out[k].append(rep.indices[k])
        out["peak_ratio"].append(rep.peak_ratio)
    return {k: (float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5))) for k, v in out.items()}
