"""Live-singlet events with CFSE and an activation marker whose level depends on generation.

For testing phenotype-by-generation (:mod:`zincassay.cfse.phenotype`) against truth.

Physics (linear units)
----------------------
- Generation ``g`` is drawn with the harvested-cell distribution of
  :func:`zincassay.simulate.cfse.precursor_distribution` (``prec_k * 2**k``).
- CFSE: ``parent / peak_ratio**g`` with a lognormal per-cell spread (``cv_log10`` decades), plus
  autofluorescence (lognormal) and Gaussian electronic noise.
- Marker (e.g. CD25): a lognormal with median ``marker_base * marker_fold**g`` capped at
  ``marker_cap`` (the law), per-cell spread ``marker_sigma_log10``, plus its own
  autofluorescence and noise. ``marker_fold`` may be < 1 (a marker lost with division).
- An unstained tube gives autofluorescence and noise only, for positivity thresholds.

Truth per generation: the median of the observed marker among the cells of that generation
(the value a perfect gate would report), the law's median, and the share of cells above a
threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zincassay.simulate.cfse import precursor_distribution

__all__ = ["MarkerParams", "simulate_marker_events"]


@dataclass(frozen=True)
class MarkerParams:
    n_events: int = 30000
    parent_cfse: float = 10**4.6
    peak_ratio: float = 2.0
    cv_log10: float = 0.065
    af_median: float = 120.0
    af_sigma_log10: float = 0.18
    noise_sd: float = 25.0
    responder_fraction: float = 0.8
    mean_divisions: float = 3.0
    max_generation: int = 8
    marker_base: float = 400.0
    marker_fold: float = 1.5
    marker_cap: float = 2.0e4
    marker_sigma_log10: float = 0.2
    marker_af_median: float = 80.0


def simulate_marker_events(rng: np.random.Generator, p: MarkerParams, role: str = "sample"
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simulate one tube of gated (live singlet) events.

    Parameters
    ----------
    rng : numpy Generator
    p : MarkerParams
    role : ``"sample"``, ``"unstimulated"`` (generation 0 only) or ``"unstained"`` (no dye, no marker)

    Returns
    -------
    cfse : ndarray (n_events,) observed CFSE, linear
    marker : ndarray (n_events,) observed marker, linear
    generation : ndarray (n_events,) int, true generation
    """
    n = p.n_events
    if role == "sample":
        prec = precursor_distribution(p.responder_fraction, p.mean_divisions, p.max_generation)
    else:
        prec = np.zeros(p.max_generation + 1)
        prec[0] = 1.0
    harvest = prec * np.power(2.0, np.arange(prec.size))
    gen = rng.choice(prec.size, size=n, p=harvest / harvest.sum())
    stained = role != "unstained"
    dye = p.parent_cfse / np.power(p.peak_ratio, gen) * np.power(10.0, rng.normal(0, p.cv_log10, n))
    af = p.af_median * np.power(10.0, rng.normal(0, p.af_sigma_log10, n))
    cfse = (dye if stained else 0.0) + af + rng.normal(0, p.noise_sd, n)
    law = np.minimum(p.marker_base * np.power(p.marker_fold, gen), p.marker_cap)
    level = law * np.power(10.0, rng.normal(0, p.marker_sigma_log10, n))
    maf = p.marker_af_median * np.power(10.0, rng.normal(0, p.af_sigma_log10, n))
    marker = (level if stained else 0.0) + maf + rng.normal(0, p.noise_sd, n)
    return cfse, marker, gen
