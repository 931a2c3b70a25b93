"""Confidence intervals of the division indices that cover event sampling *and* the gate choice.

Each bootstrap replicate (1) takes the events of one gate variant, the sample's gates with every
automatic boundary moved by a random amount a reasonable analyst might choose
(:meth:`zincassay.flow.gating.GatingResult.perturbed_mask`: viability threshold +/- 0.15
decades, singlet band +/- 30 %, scatter floor +/- 0.1 decades), (2) resamples those events
(multinomially over the histogram, which is an event resample), and (3) refits every free
parameter from the point estimate (weights from the point estimate's expected counts). The 2.5th and 97.5th percentiles of each index are the
interval. It does not cover a wrong model (e.g. a culture whose generation 0 holds no cells at
all, where the ladder's phase cannot be known from the dye alone).
"""

from __future__ import annotations

import numpy as np

from zincassay.cfse.deconvolve import FitOptions, GenerationFit, ParentPeak, _Model
from zincassay.cfse.indices import INDEX_NAMES, division_indices

__all__ = ["bootstrap_indices"]

#: Levenberg-Marquardt steps per replicate: it starts at the point estimate, a few steps away from
#: the replicate's own optimum (the search converges quadratically).
REPLICATE_STEPS = 3


def bootstrap_indices(values: np.ndarray, parent: ParentPeak, af: np.ndarray | None, fit: GenerationFit, *,
                      options: FitOptions, replicates: int, seed: int,
                      gate_variants: tuple[np.ndarray, list[np.ndarray]] | None = None
                      ) -> dict[str, tuple[float, float]]:
    """95 % intervals for every index and the peak ratio.

    Parameters
    ----------
    values : ndarray (n_events,)
        Dye values (linear) of the gated events.
    parent, af, fit, options
        As for :func:`zincassay.cfse.deconvolve.fit_generations`; ``fit`` is the point estimate.
    replicates : int
        Refits (0 = no intervals).
    seed : int
    gate_variants : (all_values, masks), optional
        Dye values (linear) of every event before gating, and the masks of alternative gates;
        replicate ``r`` resamples the events of ``masks[r % len(masks)]`` (None: ``values`` only,
        an interval over event sampling alone).

    Returns
    -------
    dict
        ``{name: (low, high)}`` for the six indices and ``peak_ratio``; {} for 0 replicates.
    """
    if replicates <= 0:
        return {}
    model = _Model(values, parent, af, options)
    model.set_generations(model.u_start if model.af_known else float(round(fit.theta[4])))
    rng = np.random.default_rng(seed)
    if gate_variants:
        all_values, masks = gate_variants
        idx = model.bin_index(all_values)
        hists = [np.bincount(idx[m], minlength=model.nb).astype(float) for m in masks]
    else:
        hists = [model.counts]
    theta0 = fit.theta
    # weights from the point estimate's expected counts (Pearson), as the point fit ends with
    w = 1.0 / np.sqrt(np.maximum(fit.components.sum(axis=0), 1.0))
    n_gen = fit.cells.size
    out: dict[str, list[float]] = {k: [] for k in (*INDEX_NAMES, "peak_ratio")}
    for r in range(replicates):
        h = hists[r % len(hists)]
        n = int(h.sum())
        y = rng.multinomial(n, h / n).astype(float)
        theta, _val = model.refine(theta0, y, maxiter=REPLICATE_STEPS, weights=w)
        amp = model.solve(theta, y, weights=w)[1]
        ind = division_indices(amp[:n_gen])
        for k in INDEX_NAMES:
            out[k].append(ind[k])
        out["peak_ratio"].append(float(10 ** theta[1]))
    return {k: (float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5))) for k, v in out.items()}
