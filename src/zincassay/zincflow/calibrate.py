"""Calibration of one subset's median probe signal against its culture's TPEN and zinc/pyrithione tubes.

[Zn2+] = Kd (F - Fmin) / (Fmax - F) with F, Fmin, Fmax the medians of the probe channel of the
subset's gated events in the sample, TPEN (Fmin) and zinc + pyrithione (Fmax) tubes
(Grynkiewicz, Poenie & Tsien 1985, single-wavelength form). The bound fraction is
f = (F - Fmin) / (Fmax - Fmin), so [Zn2+] = Kd f / (1 - f). Subtracting the autofluorescence
median of an unstained tube from all three medians leaves F - Fmin and Fmax - F, hence f and
[Zn2+], unchanged; it matters for the dynamic range Fmax/Fmin only.

The 95 % CI resamples the events of all three tubes independently (percentile bootstrap). The
bootstrap median of n values is an order statistic whose distribution is known exactly:
P(median* <= x_(k)) = P(Binomial(n, k/n) >= r), r the median's rank, so each replicate's median
is drawn by inverting that distribution rather than by resampling n events; the cost is O(n) for
the sort plus O(replicates), whatever n.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

__all__ = ["SEVERE_FLAGS", "SubsetCalibration", "bootstrap_medians", "bound_fraction", "calibrate_subset",
           "zinc_nM"]

#: Flags that make a subset fail QC (the others are warnings; qc_pass stays true).
SEVERE_FLAGS = ("too_few_events", "low_dynamic_range", "fmin_below_autofluorescence", "below_fmin", "above_fmax",
                "fmax_median_saturated", "instrument_mismatch", "no_valley")
#: Fewer events than this in a tube: no median is computed at all.
MIN_EVENTS_FOR_MEDIAN = 10


def zinc_nM(F: np.ndarray | float, fmin: np.ndarray | float, fmax: np.ndarray | float,
            kd_nM: float) -> np.ndarray:
    """[Zn2+] (nM) = Kd (F - Fmin) / (Fmax - F); NaN where F >= Fmax (no number can be given).

    Values below 0 (F below Fmin) are returned as they are. Arrays broadcast.
    """
    F = np.asarray(F, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        zn = kd_nM * (F - fmin) / (fmax - F)
    return np.where(F < fmax, zn, np.nan)


def bound_fraction(F: np.ndarray | float, fmin: np.ndarray | float, fmax: np.ndarray | float) -> np.ndarray:
    """f = (F - Fmin) / (Fmax - Fmin), the probe's zinc-bound fraction."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.asarray(F, dtype=np.float64) - fmin) / (np.asarray(fmax, dtype=np.float64) - fmin)


def bootstrap_medians(x: np.ndarray, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """Medians of ``replicates`` bootstrap resamples of ``x``, drawn from their exact distribution.

    For odd n the median of a resample is its r-th order statistic, r = (n + 1) / 2, and it is at
    most x_(k) exactly when at least r of the n draws are at most x_(k): a Binomial(n, k/n)
    event. For even n, numpy's median averages ranks n/2 and n/2 + 1; both are drawn with the
    same uniform (comonotone), which they nearly are. Only the ranks within 8 binomial SD of the
    middle are tabulated (the rest have probability < 1e-14).

    Parameters
    ----------
    x : ndarray (n,)
    replicates : int
    rng : numpy Generator

    Returns
    -------
    ndarray (replicates,)
    """
    xs = np.sort(np.asarray(x, dtype=np.float64))
    n = xs.size
    if n == 0:
        return np.full(replicates, np.nan)
    r_lo, r_hi = (n + 1) // 2, n // 2 + 1
    half = int(np.ceil(4.0 * np.sqrt(n))) + 2
    k = np.arange(max(1, r_lo - half), min(n, r_hi + half) + 1)
    u = rng.random(replicates)
    out = np.zeros(replicates)
    for r in (r_lo, r_hi):
        cdf = binom.sf(r - 1, n, k / n)
        idx = np.minimum(np.searchsorted(cdf, u), k.size - 1)
        out += xs[k[idx] - 1]
    return out / 2.0


@dataclass(frozen=True)
class SubsetCalibration:
    """One subset's calibration (linear fluorescence units; zinc in nM).

    ``F``, ``Fmin``, ``Fmax`` are medians, autofluorescence-subtracted when ``af`` is not NaN.
    ``zn_nM`` is NaN when F >= Fmax, the Fmax median is at the top of the scale, or a tube has
    fewer than :data:`MIN_EVENTS_FOR_MEDIAN` events. The CI bounds may be +inf when bootstrap
    replicates reach F >= Fmax.
    """

    F: float
    Fmin: float
    Fmax: float
    af: float
    dynamic_range: float
    f: float
    zn_nM: float
    zn_ci_low: float
    zn_ci_high: float
    events_sample: int
    events_fmin: int
    events_fmax: int
    events_unstained: int
    fmax_saturated_fraction: float
    flags: tuple[str, ...]

    @property
    def qc_pass(self) -> bool:
        return not any(f.split("(")[0] in SEVERE_FLAGS for f in self.flags)


def calibrate_subset(
    sample: np.ndarray, fmin: np.ndarray, fmax: np.ndarray, *, kd_nM: float, af: np.ndarray | None,
    fmax_at_top: np.ndarray, min_dynamic_range: float, f_low: float, f_high: float,
    max_saturated_fraction: float, min_events: int, replicates: int, rng: np.random.Generator,
) -> SubsetCalibration:
    """Calibrate one subset from the probe values of its gated events in each tube.

    Parameters
    ----------
    sample, fmin, fmax : ndarray
        Probe values (linear, compensated) of the subset's events in the sample, TPEN and
        zinc + pyrithione tubes.
    kd_nM : probe Kd (nM).
    af : ndarray or None
        The subset's probe-channel values in an unstained (not probe-loaded) tube.
    fmax_at_top : bool ndarray like ``fmax``
        Which Fmax-tube events are at the top of the scale.
    min_dynamic_range, f_low, f_high, max_saturated_fraction, min_events : QC limits.
    replicates : bootstrap replicates (0 = no CI).
    rng : numpy Generator.

    Returns
    -------
    SubsetCalibration
    """
    flags: list[str] = []
    counts = (sample.size, fmin.size, fmax.size)
    n_af = 0 if af is None else int(af.size)
    if min(counts) < min_events:
        flags.append("too_few_events")
    sat = float(np.mean(fmax_at_top)) if fmax_at_top.size else 0.0
    if sat > max_saturated_fraction:
        flags.append("fmax_saturated")
    nan = float("nan")
    if min(counts) < MIN_EVENTS_FOR_MEDIAN:
        return SubsetCalibration(nan, nan, nan, nan, nan, nan, nan, nan, nan, *counts, n_af, sat, tuple(flags))
    a = float(np.median(af)) if af is not None and af.size >= MIN_EVENTS_FOR_MEDIAN else 0.0
    af_med = a if af is not None and af.size >= MIN_EVENTS_FOR_MEDIAN else nan
    F, lo, hi = (float(np.median(v)) - a for v in (sample, fmin, fmax))
    if lo <= 0:
        flags.append("fmin_below_autofluorescence")
        dr = nan
    else:
        dr = hi / lo
        if dr < min_dynamic_range:
            flags.append("low_dynamic_range")
    f = float(bound_fraction(F, lo, hi))
    zn = float(zinc_nM(F, lo, hi, kd_nM))
    if F <= lo:
        flags.append("below_fmin")
    if F >= hi:
        flags.append("above_fmax")
    if f <= f_low:
        flags.append("f_low")
    if f >= f_high:
        flags.append("f_high")
    if sat >= 0.5:
        flags.append("fmax_median_saturated")
        zn = nan
    ci_lo = ci_hi = nan
    if replicates > 0 and np.isfinite(zn):
        bF, blo, bhi = (bootstrap_medians(v, replicates, rng) for v in (sample, fmin, fmax))
        with np.errstate(divide="ignore", invalid="ignore"):
            bz = kd_nM * (bF - blo) / (bhi - bF)
        bz = np.where(bF < bhi, bz, np.inf)
        ci_lo, ci_hi = (float(q) for q in np.quantile(bz, [0.025, 0.975], method="inverted_cdf"))
    return SubsetCalibration(F, lo, hi, af_med, dr, f, zn, ci_lo, ci_hi, *counts, n_af, sat, tuple(flags))
