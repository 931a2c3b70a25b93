"""Confidence intervals of the division indices.

Bootstrap over events: a multinomial resample of the histogram is an event resample; each
replicate is refitted (every free parameter, from the point estimate) and the 2.5th and 97.5th
percentiles of each index are the interval.
"""

from __future__ import annotations

import numpy as np

from zincassay.cfse.deconvolve import FitOptions, GenerationFit, ParentPeak, _Model, _result
from zincassay.cfse.indices import INDEX_NAMES

__all__ = ["bootstrap_indices"]


def bootstrap_indices(values: np.ndarray, parent: ParentPeak, af: np.ndarray | None, fit: GenerationFit, *,
                      options: FitOptions, replicates: int, seed: int) -> dict[str, tuple[float, float]]:
    """95 % intervals for every index and the peak ratio: ``{name: (low, high)}`` ({} for 0 replicates)."""
    if replicates <= 0:
        return {}
    model = _Model(values, parent, af, options)
    rng = np.random.default_rng(seed)
    n = int(model.counts.sum())
    probs = model.counts / n
    theta0 = np.array([fit.mu0, fit.delta, fit.sigma, fit.tau])
    out: dict[str, list[float]] = {k: [] for k in (*INDEX_NAMES, "peak_ratio")}
    for _ in range(replicates):
        y = rng.multinomial(n, probs).astype(float)
        theta, _val = model.refine(theta0, y, maxiter=15)
        rep = _result(model, theta, y)
        for k in INDEX_NAMES:
            out[k].append(rep.indices[k])
        out["peak_ratio"].append(rep.peak_ratio)
    return {k: (float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5))) for k, v in out.items()}
