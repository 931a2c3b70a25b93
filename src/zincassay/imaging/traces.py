"""Per-cell intensity traces with label-indexed reductions (no Python loop over cells).

Each cell is a row of a sparse matrix (cells x pixels) holding the resampling weights of its
pixels for the frame's registration shift; one sparse product with the flattened frame gathers,
weights and sums every cell at once; further rows sum groups of cell-free pixels for the
background. The matrix's column indices change only with the whole-pixel offset and its values
only with the (quantised) sub-pixel phase. Frames are read one at a time (a memory-mapped stack
is never copied whole or cast to float64).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from scipy import sparse

__all__ = ["Traces", "extract_traces"]


@dataclass
class Traces:
    """Raw per-cell measurements.

    Attributes
    ----------
    mean : ndarray (T, N) float64
        Mean intensity (counts) of each cell's pixels per frame, background not subtracted; NaN in
        frames that were not measured (unregistered).
    saturated : ndarray (T, N) int64
        Pixels at or above the camera maximum per cell and frame.
    background : ndarray (T,) float64
        Mean of the cell-free region per frame (counts), without groups of pixels whose mean is an
        outlier (see :func:`_clipped_group_mean`).
    n_background_px : int
        Pixels in the cell-free sample.
    """

    mean: np.ndarray
    saturated: np.ndarray
    background: np.ndarray
    n_background_px: int


def _background_pixels(labels: np.ndarray, margin_px: int, max_pixels: int) -> np.ndarray:
    free = ~ndi.binary_dilation(labels > 0, iterations=margin_px)
    free[:margin_px], free[-margin_px:], free[:, :margin_px], free[:, -margin_px:] = False, False, False, False
    idx = np.flatnonzero(free)
    if len(idx) > max_pixels:
        idx = idx[:: int(np.ceil(len(idx) / max_pixels))]
    return idx


TAPS = (-1, 0, 1, 2)
PHASE_STEPS = 20


def resampling_weights(phi: float) -> np.ndarray:
    """1-D weights at pixel offsets (-1, 0, 1, 2) for sampling at fractional offset ``phi`` in [0, 1).

    Linear interpolation ``[1 - phi, phi]`` blurs by a variance of ``phi (1 - phi)`` px², which
    changes with the shift and biases a cell's mean (by about 1 % for 0.3 px on a 5-px cell).
    Convolving with ``[a, 1 - 2a, a]``, ``a = (0.25 - phi (1 - phi)) / 2``, brings every frame to the
    same blur (0.25 px²), so the bias is one constant factor that cancels in the calibration.
    """
    a = (0.25 - phi * (1 - phi)) / 2
    return np.array([a * (1 - phi), (1 - 2 * a) * (1 - phi) + a * phi, a * (1 - phi) + (1 - 2 * a) * phi, a * phi])


def _kernel(phase: tuple[int, int]) -> np.ndarray:
    """4 x 4 resampling weights for a quantised phase (steps of 1/PHASE_STEPS px); a phase of
    PHASE_STEPS (rounding up to a whole pixel) is the same as phase 0 one pixel further."""
    ws = []
    for q in phase:
        if q >= PHASE_STEPS:
            w0 = resampling_weights(0.0)
            ws.append(np.array([0.0, w0[0], w0[1], w0[2]]))
        else:
            ws.append(resampling_weights(q / PHASE_STEPS))
    return np.outer(ws[0], ws[1])


def _soft_mask_pairs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pixel, cell) pairs of the labels shifted by each of the 4 x 4 resampling offsets.

    Returns pixel coordinates ``py``, ``px`` (reference grid + offset), the cell (1..N) of each
    pair, and a (P, 16) 0/1 membership of each pair in the label image shifted by
    ``(TAPS[i], TAPS[j])`` (column ``4 i + j``). Pairs are sorted by cell. A frame displaced by
    ``n + phi`` is measured as ``sum(frame[p + n] * (membership @ outer(w(phi_y), w(phi_x))))``:
    the frame resampled onto the reference grid and summed over each cell, without resampling
    the frame.
    """
    h, w = labels.shape
    span = (h + 3) * (w + 3)
    ys, xs = np.nonzero(labels)
    cell = labels[ys, xs].astype(np.int64)
    # key = (cell, padded pixel) << 4 | tap: one sort gives the pairs in (cell, pixel) order, and
    # an OR over each run of equal (cell, pixel) gives the 16-bit tap membership of the pair
    base = np.sort((cell * span + (ys + 1) * (w + 3) + (xs + 1)) << 4)
    taps = np.array([((oy * (w + 3) + ox) << 4) + 4 * i + j for i, oy in enumerate(TAPS) for j, ox in enumerate(TAPS)])
    keys = (base[None, :] + taps[:, None]).ravel()
    keys.sort(kind="stable")  # 16 sorted runs: a merge
    pair = keys >> 4
    first = np.flatnonzero(np.concatenate([[True], pair[1:] != pair[:-1]]))
    bits = np.bitwise_or.reduceat(np.left_shift(1, keys & 15), first) if len(keys) else np.zeros(0, np.int64)
    member = ((bits[:, None] >> np.arange(16)) & 1).astype(np.float32)
    uniq = pair[first]
    py, px = np.divmod(uniq % span, w + 3)
    return py - 1, px - 1, uniq // span, member


BACKGROUND_GROUP_PX = 64


def _clipped_group_mean(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per-frame background from the sums of groups of cell-free pixels.

    ``sums`` is (frames, groups), ``counts`` the pixels per group. Groups whose mean is more than
    3 robust SD (1.4826 x the median absolute deviation) from the frame's median group are left
    out, so a speck of debris or a glowing cell edge, which lands in a few groups, does not move the
    level; the result is the pixel-weighted mean of the other groups (counts).
    """
    g = sums / counts
    med = np.median(g, axis=1, keepdims=True)
    mad = np.median(np.abs(g - med), axis=1, keepdims=True)
    keep = np.abs(g - med) <= 3 * 1.4826 * mad
    kept = (keep * counts).sum(axis=1)
    return np.where(kept > 0, (sums * keep).sum(axis=1) / np.maximum(kept, 1), med[:, 0])


def interior(labels: np.ndarray, erode_px: int) -> np.ndarray:
    """Labels with ``erode_px`` pixels removed from every cell's edge (4-connected erosion)."""
    out = labels.copy()
    for _ in range(erode_px):
        p = np.pad(out, 1)
        same = ((p[1:-1, 1:-1] == p[:-2, 1:-1]) & (p[1:-1, 1:-1] == p[2:, 1:-1])
                & (p[1:-1, 1:-1] == p[1:-1, :-2]) & (p[1:-1, 1:-1] == p[1:-1, 2:]))
        out = np.where(same, out, 0)
    return out


def extract_traces(data: np.ndarray, labels: np.ndarray, shifts: np.ndarray, saturation_value: float,
                   background_margin_px: int = 6, max_background_px: int = 4096,
                   frames: np.ndarray | None = None) -> Traces:
    """Mean intensity per labelled cell per frame, at sub-pixel registration.

    Parameters
    ----------
    data : ndarray (T, Y, X)
        Raw stack; read one frame at a time.
    labels : ndarray (Y, X) int
        Cells 1..N in the reference frame.
    shifts : ndarray (T, 2)
        Displacement ``(dy, dx)`` (px) of each frame from the reference. Each cell's mean is that
        of the frame resampled onto the reference grid at constant blur (see
        :func:`resampling_weights`); rounding to whole pixels would move a 5-px-radius cell's edge
        by up to 0.5 px and change its mean by several percent.
    saturation_value : float
        Camera maximum (e.g. 4095 for 12 bit); pixels ``>=`` it count as saturated (pixels with
        at least half their weight in the cell).
    background_margin_px : int
        Cell-free pixels are at least this far from any cell.
    max_background_px : int
        The background is the mean of at most this many evenly spaced cell-free pixels, measured in
        raster-order groups of 64; groups more than 3 robust SD (MAD) from the median group are
        left out (see :func:`_clipped_group_mean`).
    frames : ndarray (T,) bool, optional
        Frames to measure (e.g. the registered ones); the others are NaN.
    """
    h, w = labels.shape
    n = int(labels.max())
    py, px, cell, member = _soft_mask_pairs(labels)
    starts = np.searchsorted(cell, np.arange(1, n + 1))
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:].astype(np.float64)
    bg_idx = _background_pixels(labels, background_margin_px, max_background_px)
    bys, bxs = np.divmod(bg_idx, w)
    # cell-free pixels in raster-order groups of BACKGROUND_GROUP_PX: extra rows of the same
    # sparse product, so the background costs no gather of its own
    bg_starts = np.arange(0, len(bg_idx), BACKGROUND_GROUP_PX)
    bg_counts = np.diff(np.append(bg_starts, len(bg_idx))).astype(np.float64)
    T = len(data)
    mean = np.full((T, n), np.nan)
    saturated = np.zeros((T, n), dtype=np.int64)
    bg_sums = np.full((T, len(bg_starts)), np.nan)
    measure = np.ones(T, dtype=bool) if frames is None else np.asarray(frames, dtype=bool)
    base = np.floor(shifts).astype(np.int64)
    # fractional shifts quantised to 1/20 px (registration is good to about 0.1 px), so the
    # per-pair weights are computed once per distinct phase, not once per frame
    phase = np.minimum(np.rint((shifts - base) * PHASE_STEPS).astype(np.int64), PHASE_STEPS)
    arr = np.asarray(data)  # a plain view of a memory map: cheaper to index
    # per phase: the product's values (cell weights, then 1 for each background pixel) and the
    # saturation matrix's values (1 where a pixel has at least half its weight in the cell)
    weight_cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    # one sparse matrix (cells and background groups x pixels) gathers, weights and sums a whole
    # frame in one pass; its structure changes only with the whole-pixel offset, its values with
    # the phase
    indptr = np.concatenate([starts, len(py) + bg_starts, [len(py) + len(bg_idx)]]).astype(np.int64)
    nnz = len(py) + len(bg_idx)
    matrix = sparse.csr_matrix((np.ones(nnz, np.float32), np.zeros(nnz, np.int64), indptr),
                               shape=(n + len(bg_starts), h * w))
    sat_matrix = sparse.csr_matrix((np.ones(len(py), np.float32), np.zeros(len(py), np.int64), indptr[:n + 1]),
                                   shape=(n, h * w))
    offset = None
    for t, (dy, dx), pk in zip(range(T), base.tolist(), map(tuple, phase.tolist()), strict=True):
        if not measure[t]:
            continue
        if (dy, dx) != offset:
            offset = (dy, dx)
            cols = np.clip(py + dy, 0, h - 1) * w + np.clip(px + dx, 0, w - 1)
            matrix.indices = np.concatenate([cols, np.clip(bys + dy, 0, h - 1) * w + np.clip(bxs + dx, 0, w - 1)])
            sat_matrix.indices = cols
        if pk not in weight_cache:
            weights = member @ _kernel(pk).ravel().astype(np.float32)
            weight_cache[pk] = (np.concatenate([weights, np.ones(len(bg_idx), np.float32)]),
                                (weights >= 0.5).astype(np.float32))
        matrix.data, sat_matrix.data = weight_cache[pk]
        frame = arr[t].ravel()
        sums = matrix @ frame
        mean[t] = sums[:n] / area
        bg_sums[t] = sums[n:]
        if n and frame.max() >= saturation_value:
            saturated[t] = np.rint(sat_matrix @ (frame >= saturation_value)).astype(np.int64)
    background = _clipped_group_mean(bg_sums, bg_counts) if len(bg_idx) else np.full(T, np.nan)
    return Traces(mean=mean, saturated=saturated, background=background, n_background_px=len(bg_idx))
