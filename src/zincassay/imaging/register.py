"""Rigid registration of a time-lapse: slow stage drift plus the sudden jolts at each addition.

Each frame is compared with a reference (the mean of the first frames) by cross-correlation
on a mean-subtracted, Hann-windowed central crop, with sub-pixel refinement by upsampled DFT
(:func:`skimage.registration.phase_cross_correlation` with ``normalization=None``; on dim,
noisy frames the unnormalised correlation was about twice as precise as phase normalisation).
"""

from __future__ import annotations

import numpy as np
from skimage.registration import phase_cross_correlation

__all__ = ["estimate_shifts"]


def _crop_slices(shape: tuple[int, int], max_size: int) -> tuple[slice, slice]:
    out = []
    for n in shape:
        m = min(n, max_size)
        start = (n - m) // 2
        out.append(slice(start, start + m))
    return out[0], out[1]


def estimate_shifts(data: np.ndarray, n_reference: int = 3, max_size: int = 256,
                    upsample_factor: int = 10) -> np.ndarray:
    """Displacement of every frame relative to the reference.

    Parameters
    ----------
    data : ndarray, shape (T, Y, X)
        The stack (any numeric dtype; a memory map is read one frame at a time).
    n_reference : int
        The reference is the mean of the first ``n_reference`` frames.
    max_size : int
        Side (px) of the central crop used for the correlation (speed; jolts are a few px).
    upsample_factor : int
        Sub-pixel precision is 1 / ``upsample_factor`` px.

    Returns
    -------
    shifts : ndarray, shape (T, 2), float64
        ``(dy, dx)`` in px: an object at ``(y, x)`` in the reference is at ``(y + dy, x + dx)`` in
        frame t.
    """
    sy, sx = _crop_slices(data.shape[1:], max_size)
    win = np.outer(np.hanning(sy.stop - sy.start), np.hanning(sx.stop - sx.start)).astype(np.float32)

    def prepared(frame: np.ndarray) -> np.ndarray:
        a = np.asarray(frame[sy, sx], dtype=np.float32)
        return np.fft.fft2((a - a.mean()) * win)

    ref = np.mean([np.asarray(data[i][sy, sx], dtype=np.float32) for i in range(min(n_reference, len(data)))],
                  axis=0)
    ref_f = np.fft.fft2((ref - ref.mean()) * win)
    shifts = np.zeros((len(data), 2))
    for t in range(len(data)):
        shift, _, _ = phase_cross_correlation(ref_f, prepared(data[t]), upsample_factor=upsample_factor,
                                              space="fourier", normalization=None)
        shifts[t] = -np.asarray(shift)
    return shifts
