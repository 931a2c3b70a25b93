"""T-cell subsets from marker channels: each marker split at its valley or a manual threshold.

A marker's threshold is sought on an analysis scale, ``asinh(x / cofactor)`` (negative
compensated values keep their place) or ``log10`` (values below 1 set to 1; the pile-up at the
floor is left out of the histogram and counted as negative). The histogram of the gated events
(200 bins between the 0.2 % and 99.8 % quantiles, Gaussian-smoothed over 2.5 bins) is split at
the local minimum that is deepest relative to the highest point on each side, provided each side
holds at least ``min_mode_fraction`` of the events and both sides' maxima are at least
``min_depth`` times the minimum. A unimodal marker has no valley: its subsets cannot be formed
without a manual threshold, and the caller says so.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from zincassay.flow.transforms import safe_log10
from zincassay.zincflow.settings import Subset

__all__ = ["from_scale", "subset_mask", "to_scale", "valley_threshold"]

_BINS = 200
_SMOOTH_BINS = 2.5


def to_scale(x: np.ndarray, scale: str, cofactor: float) -> np.ndarray:
    """Linear values (any shape) to the analysis scale ``"asinh"`` or ``"log"``."""
    x = np.asarray(x, dtype=np.float64)
    if scale == "asinh":
        return np.arcsinh(x / cofactor)
    return safe_log10(x)


def from_scale(v: float, scale: str, cofactor: float) -> float:
    """Inverse of :func:`to_scale` for one value."""
    return float(np.sinh(v) * cofactor) if scale == "asinh" else float(10.0**v)


def valley_threshold(values: np.ndarray, *, scale: str, cofactor: float, min_mode_fraction: float = 0.02,
                     min_depth: float = 1.5) -> float | None:
    """Linear threshold between a marker's negative and positive populations, or None (unimodal).

    Parameters
    ----------
    values : ndarray (n,)
        Compensated linear values of the gated events.
    scale : "asinh" or "log"
    cofactor : float
        asinh cofactor (linear units).
    min_mode_fraction : float
        Least share of events on each side of the valley.
    min_depth : float
        Least ratio of each side's highest smoothed bin to the valley's.
    """
    v = to_scale(values, scale, cofactor)
    v = v[np.isfinite(v)]
    if scale == "log":
        v = v[v > 0.0]
    if v.size < 50:
        return None
    lo, hi = np.quantile(v, [0.002, 0.998])
    if not hi > lo:
        return None
    hist, edges = np.histogram(v, bins=_BINS, range=(lo, hi))
    smooth = ndimage.gaussian_filter1d(hist.astype(np.float64), _SMOOTH_BINS, mode="constant")
    total = hist.sum()
    left_max = np.maximum.accumulate(smooth)
    right_max = np.maximum.accumulate(smooth[::-1])[::-1]
    left_mass = np.cumsum(hist)
    best, best_depth = None, min_depth
    for i in range(1, _BINS - 1):
        if not (smooth[i] <= smooth[i - 1] and smooth[i] <= smooth[i + 1]):
            continue
        if left_mass[i] < min_mode_fraction * total or total - left_mass[i] < min_mode_fraction * total:
            continue
        depth = min(left_max[i], right_max[i]) / max(smooth[i], 1e-12)
        if depth > best_depth:
            best, best_depth = i, depth
    if best is None:
        return None
    return from_scale(0.5 * (edges[best] + edges[best + 1]), scale, cofactor)


def subset_mask(marker_values: dict[str, np.ndarray], thresholds: dict[str, float | None], subset: Subset,
                within: np.ndarray) -> np.ndarray | None:
    """Events of ``subset`` among ``within``: above each ``+`` marker's threshold, at or below each ``-``.

    Returns None when a marker of the subset has no threshold.
    """
    mask = within.copy()
    for name, positive in subset.markers:
        thr = thresholds.get(name)
        if thr is None:
            return None
        v = marker_values[name]
        mask &= (v > thr) if positive else (v <= thr)
    return mask
