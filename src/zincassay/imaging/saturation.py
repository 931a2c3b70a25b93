"""The camera's clipping level, from the settings, the file's metadata or the data themselves.

Most scientific cameras write 10-, 12- or 14-bit data into 16-bit files, often without saying so;
taking the clipping level from the pixel type (65,535) then lets saturated cells pass QC and makes
their Fmax an underestimate. A clipped camera leaves a signature: a pile-up of pixels at exactly
one value, the top of the range, ``2**k - 1`` for a k-bit camera (or another value when the
acquisition software scaled or offset the data). :func:`frame_statistics` collects, in one pass
over the stack, each frame's mean, maximum and the counts of the values just below its maximum;
:func:`saturation_level` decides.

Order of precedence: a detected pile-up (no pixel can be brighter than where pixels pile up), then
``imaging.bit_depth`` from the settings, then the file's metadata, then the pixel type. Float
stacks have no clipping level unless the settings or the metadata give a bit depth: their
maximum says nothing about the camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FrameStats", "frame_statistics", "saturation_level"]

#: values just below a frame's maximum that are counted (the pile-up's neighbourhood)
_BELOW = 16


@dataclass
class FrameStats:
    """One pass over a stack (T frames).

    Attributes
    ----------
    mean : ndarray (T,) float64
        Mean of each frame (counts).
    maximum : ndarray (T,) float64
        Maximum of each frame.
    top_counts : ndarray (T, 17) int64 or None
        Integer stacks: pixels at ``maximum - 16 + j`` for j = 0..16 (the last column counts the
        pixels at the frame's maximum); None for float stacks.
    """

    mean: np.ndarray
    maximum: np.ndarray
    top_counts: np.ndarray | None


def frame_statistics(data: np.ndarray) -> FrameStats:
    """Per-frame mean, maximum and top-of-range counts of ``data`` (T, Y, X), read one frame at a time.

    Raises
    ------
    ValueError
        When a float stack holds NaN or infinite values (the message gives the first such frame
        and how many pixels).
    """
    T = len(data)
    mean = np.empty(T)
    maximum = np.empty(T)
    integer = np.issubdtype(data.dtype, np.integer)
    top = np.zeros((T, _BELOW + 1), dtype=np.int64) if integer else None
    for t in range(T):
        frame = np.asarray(data[t])
        if not integer:
            bad = ~np.isfinite(frame)
            if bad.any():
                raise ValueError(f"frame {t} holds {int(bad.sum())} NaN or infinite pixel values")
        m = frame.max()
        maximum[t] = m
        mean[t] = frame.mean(dtype=np.float64)
        if integer:
            lo = int(m) - _BELOW
            vals = frame[frame >= lo] if lo > int(np.iinfo(frame.dtype).min) else frame.ravel()
            counts = np.bincount((vals.astype(np.int64) - lo).clip(0), minlength=_BELOW + 1)
            top[t] = counts[-(_BELOW + 1):]
    return FrameStats(mean=mean, maximum=maximum, top_counts=top)


def _pile_up(stats: FrameStats) -> tuple[float | None, int]:
    """The value pixels pile up at (None if none) and how many pixels sit there."""
    if stats.top_counts is None or not len(stats.maximum):
        return None, 0
    M = float(stats.maximum.max())
    at_max = stats.maximum == M
    n_at = int(stats.top_counts[at_max, -1].sum())
    below = stats.top_counts[at_max, :-1].sum(axis=0)  # the 16 values under M, in the frames that reach M
    is_power = any(M == 2**k - 1 for k in range(8, 17))
    typical = float(np.mean(below)) if len(below) else 0.0
    if is_power and n_at >= 1:
        return M, n_at
    if n_at >= 20 and n_at >= 5 * max(typical, 1.0):
        return M, n_at
    return None, n_at


def saturation_level(stats: FrameStats, dtype: np.dtype, *, bit_depth_setting: int | None = None,
                     bit_depth_metadata: int | None = None) -> tuple[float, str]:
    """Clipping level (counts; ``inf`` when none) and its source.

    Parameters
    ----------
    stats : FrameStats
        From :func:`frame_statistics`.
    dtype : numpy dtype
        The stack's pixel type.
    bit_depth_setting : int, optional
        ``imaging.bit_depth`` from the settings.
    bit_depth_metadata : int, optional
        The camera bit depth the file's metadata give.

    Returns
    -------
    level : float
        Pixels at or above this value are saturated.
    source : str
        ``detected`` (a pile-up of pixels at the top of the data), ``config``, ``metadata``,
        ``pixel type`` or ``none (float data)`` (float data without a bit depth).
    """
    dtype = np.dtype(dtype)
    declared = None
    if bit_depth_setting:
        declared = (float(2 ** int(bit_depth_setting) - 1), "config")
    elif bit_depth_metadata:
        declared = (float(2 ** int(bit_depth_metadata) - 1), "metadata")
    if np.issubdtype(dtype, np.integer):
        piled, _ = _pile_up(stats)
        if piled is not None and (declared is None or piled < declared[0]):
            return piled, "detected"
        if declared is not None:
            return declared
        return float(np.iinfo(dtype).max), "pixel type"
    if declared is not None:
        return declared
    return float("inf"), "none (float data)"
