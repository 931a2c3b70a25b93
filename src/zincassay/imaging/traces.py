"""Per-cell intensity traces with label-indexed reductions (no Python loop over cells).

Each cell is a run of (pixel, cell) pairs holding the resampling weights of its pixels for the
frame's registration shift, followed by groups of cell-free pixels for the background. Each frame
is one sparse matrix-vector product: the matrix holds the pairs' pixel positions at the frame's
whole-pixel offset and their weights at its quantised sub-pixel phase (frames are taken in order
of phase, so the weights are computed once per phase), and one pass over the frame gathers,
weights and sums every cell and background group: a numba kernel that reads the stored pixels
(:mod:`zincassay.imaging._trace_kernel`), or scipy's product when numba cannot be imported.
Frames are read one at a time (a memory-mapped stack is never copied whole or cast to float64).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import sparse

try:  # scipy's CSR matrix-vector kernel, which adds into a given array (``matrix @ x`` allocates,
    # checks and copies on every call: 10-15 % of the time of a frame's product)
    from scipy.sparse._sparsetools import csr_matvec as _csr_matvec
except ImportError:  # pragma: no cover - a scipy that moved its private kernels: the public product
    _csr_matvec = None

__all__ = ["Traces", "extract_traces", "fit_background_surfaces"]

#: measure frames with the compiled kernel when numba can be imported (False: scipy's product, e.g.
#: to compare the two; they give identical traces)
USE_NUMBA = True
#: pixel types the compiled kernel reads (native byte order); other stacks take scipy's product
_NUMBA_DTYPES = frozenset(np.dtype(t) for t in ("u1", "u2", "u4", "u8", "i1", "i2", "i4", "i8", "f4", "f8"))


@functools.cache
def _numba_kernel():
    """The compiled frame kernel, or None when numba cannot be imported (it lags new Pythons) or
    cannot set up its cache (scipy's product then gives the same traces)."""
    try:
        from zincassay.imaging._trace_kernel import measure_frames
    except Exception:  # no numba, or numba unusable here (e.g. no writable cache directory)
        return None
    return measure_frames


def _saturation_threshold(dtype: np.dtype, saturation_value: float) -> float:
    """A float64 ``s`` with ``float64(v) >= s`` exactly when numpy's ``v >= saturation_value`` for
    pixels ``v`` of ``dtype``: a Python float compared with float32 pixels is first rounded to
    float32 (NEP 50), integers of up to 32 bits and numpy floats compare exactly in float64."""
    if np.dtype(dtype).kind == "f":
        return float(np.asarray(saturation_value, dtype=np.result_type(dtype, saturation_value)))
    return float(saturation_value)


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
    local_background : ndarray (T, N) float64
        Background under each cell per frame (counts): a smooth surface fitted to tiles of
        cell-free pixels in camera coordinates (see :func:`fit_background_surfaces`), read at the
        cell's position in that frame. Uneven illumination lights the medium unevenly, so one
        level for the field is wrong for every cell that is not at its average brightness.
    """

    mean: np.ndarray
    saturated: np.ndarray
    background: np.ndarray
    n_background_px: int
    local_background: np.ndarray
    #: per frame the background surface's coefficients (T, P) over :func:`_monomials` of ``degree``
    #: (NaN for frames not measured), and the cells' centroids (N,) in the reference frame (px)
    background_coef: np.ndarray | None = None
    background_degree: int = 0
    shape: tuple[int, int] = (0, 0)
    centroid_y: np.ndarray | None = None
    centroid_x: np.ndarray | None = None

    def background_pattern(self, max_noise: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The background surface's spatial pattern when it is the same in every frame up to its
        scale: ``(A, q, d)`` with ``A`` the measured frames' coefficients (T', P), ``d`` their
        mean shape terms and ``q`` (T',) each frame's scale of ``d``; None when the surface is a
        single level, or when the shape terms scatter from frame to frame by more than
        ``max_noise`` of their size (noise, or cell halos that change with the cells' signal,
        not illumination)."""
        if self.background_coef is None or self.background_degree == 0:
            return None
        ok = np.isfinite(self.background_coef).all(axis=1)
        A = self.background_coef[ok]
        if len(A) < 6:
            return None
        d = A[:, 1:].mean(axis=0)
        size = float(np.linalg.norm(d))
        if size == 0:
            return None
        q = A[:, 1:] @ d / size**2
        scatter = float(np.median(np.linalg.norm(A[:, 1:] - q[:, None] * d, axis=1))) / size
        return (A, q, d) if scatter <= max_noise else None

    def illumination(self, shifts: np.ndarray, min_change: float = 0.05) -> np.ndarray | None:
        """Relative illumination of each cell per frame (T, N), 1 at the cell's median position,
        or None when it cannot be measured (or is even).

        The background surface is ``c + L(x, y) m(t)``: the camera offset ``c``, the illumination
        ``L`` fixed to the optics and the medium's brightness ``m``. When the surface has a
        consistent pattern (:meth:`background_pattern`) and ``m`` changes during the recording
        (dye leaked into the medium brightens with the calibration zinc), the pattern scales
        with ``m`` and the surface's constant term moves along a line whose intercept is ``c``;
        then ``L`` is the time-averaged surface minus ``c``, read at each cell's position as the
        stage moves it through the field. Needs the medium to change by at least ``min_change``
        of its level and an offset below the dimmest measured background.
        """
        pattern = self.background_pattern()
        if pattern is None or self.centroid_y is None:
            return None
        A, q, _ = pattern
        mean_coef = A.mean(axis=0)
        if q.std() < min_change:
            return None
        slope, c = np.polyfit(q, A[:, 0], 1)  # constant term = c + (mean constant of L m) q
        if slope <= 0:
            return None
        h, w = self.shape
        grid = _monomials(*np.mgrid[0:h:max(h // 16, 1), 0:w:max(w // 16, 1)].reshape(2, -1), (h, w),
                          self.background_degree) @ mean_coef
        if not (c < grid.min() - 0.05 * (grid.max() - c)):
            return None
        T = len(self.background_coef)
        light = np.stack([_monomials(self.centroid_y + shifts[t, 0], self.centroid_x + shifts[t, 1], (h, w),
                                     self.background_degree) @ mean_coef for t in range(T)]) - c
        light = np.clip(light, grid.min() - c, grid.max() - c)
        return light / np.median(light, axis=0)


def _background_pixels(labels: np.ndarray, margin_px: int, max_pixels: int) -> np.ndarray:
    """Flat indices of cell-free pixels (at least ``margin_px`` from any cell and the edge), at most
    ``max_pixels`` evenly spaced, ordered by tile (see :func:`_tiles`)."""
    free = ~_dilate(labels > 0, margin_px)
    free[:margin_px], free[-margin_px:], free[:, :margin_px], free[:, -margin_px:] = False, False, False, False
    idx = np.flatnonzero(free)
    if len(idx) > max_pixels:
        idx = idx[:: int(np.ceil(len(idx) / max_pixels))]
    tile = _tiles(idx, labels.shape)
    return idx[np.argsort(tile, kind="stable")]


def _dilate(mask: np.ndarray, iterations: int) -> np.ndarray:
    """``ndi.binary_dilation(mask, iterations=iterations)`` (4-connected, nothing outside the image),
    as ORs of shifted views: 10x faster than ndimage's general structuring-element loop."""
    out = mask.copy()
    for _ in range(iterations):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


BACKGROUND_TILES = 8  # tiles per side for the background surface


def _tiles(idx: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Tile number (row-major, BACKGROUND_TILES per side) of each flat pixel index."""
    h, w = shape
    y, x = np.divmod(idx, w)
    return (y * BACKGROUND_TILES // h) * BACKGROUND_TILES + x * BACKGROUND_TILES // w


def _monomials(y: np.ndarray, x: np.ndarray, shape: tuple[int, int], degree: int) -> np.ndarray:
    """Terms ``u^a v^b`` (a + b <= degree) of coordinates scaled to [-1, 1]; (len(y), n_terms)."""
    h, w = shape
    u = (np.asarray(y, dtype=np.float64) - (h - 1) / 2) / max((h - 1) / 2, 1)
    v = (np.asarray(x, dtype=np.float64) - (w - 1) / 2) / max((w - 1) / 2, 1)
    return np.column_stack([u**a * v**b for a in range(degree + 1) for b in range(degree + 1 - a)])


def fit_background_surfaces(group_means: np.ndarray, design: np.ndarray, counts: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Robust least-squares fits of a smooth surface to the means of groups of cell-free pixels,
    for frames that share one design.

    ``group_means`` (F, G) counts, ``design`` (G, P) the groups' mean monomials, ``counts`` (G,)
    pixels per group (weights). In each frame, groups more than 3 robust SD from a first fit are
    left out (debris, a glowing cell edge) and the surface is fitted again. Returns the
    coefficients (F, P) and each frame's lowest and highest kept group mean (F,) (the surface is
    clipped to them where it is read, so it is never extrapolated beyond what was measured).
    """
    wgt = np.sqrt(counts)
    solve = np.linalg.pinv(design * wgt[:, None])  # (P, G): one solve for every frame at once
    coef = (group_means * wgt) @ solve.T
    res = group_means - coef @ design.T
    centre = np.median(res, axis=1, keepdims=True)
    mad = 1.4826 * np.median(np.abs(res - centre), axis=1, keepdims=True)
    keep = (np.abs(res) <= 3 * mad) | (mad == 0)
    redo = np.flatnonzero(~keep.all(axis=1) & (keep.sum(axis=1) >= design.shape[1] + 2))
    if len(redo):  # normal equations of the kept groups, every frame in one batched solve
        k, p = keep[redo] * counts, design.shape[1]
        gram = (k @ (design[:, :, None] * design[:, None, :]).reshape(-1, p * p)).reshape(-1, p, p)
        rhs = ((k * group_means[redo]) @ design)[..., None]
        try:
            coef[redo] = np.linalg.solve(gram, rhs)[..., 0]
        except np.linalg.LinAlgError:  # kept groups that do not hold the surface: least norm
            coef[redo] = (np.linalg.pinv(gram, hermitian=True) @ rhs)[..., 0]
    kept = np.where(keep, group_means, np.nan)
    return coef, np.nanmin(kept, axis=1), np.nanmax(kept, axis=1)


def _surface_degree(group_y: np.ndarray, group_x: np.ndarray, shape: tuple[int, int], n_groups: int) -> int:
    """2 (a quadratic: vignetting and a tilt) when the cell-free tiles cover the field, 1 (a
    plane) when they cover it coarsely, else 0 (one level): a surface is only fitted where there
    are data to hold it."""
    h, w = shape
    if n_groups < 4:
        return 0
    span_y = (group_y.max() - group_y.min()) / max(h, 1)
    span_x = (group_x.max() - group_x.min()) / max(w, 1)
    if n_groups >= 12 and span_y >= 0.5 and span_x >= 0.5:
        return 2
    return 1 if span_y >= 0.25 and span_x >= 0.25 else 0


TAPS = (-1, 0, 1, 2)
PHASE_STEPS = 20
PARTIAL_PAIRS = 32  # pairs of a cell per float32 partial sum


def resampling_weights(phi: float) -> np.ndarray:
    """1-D weights at pixel offsets (-1, 0, 1, 2) for sampling at fractional offset ``phi`` in [0, 1).

    Linear interpolation ``[1 - phi, phi]`` blurs by a variance of ``phi (1 - phi)`` px², which
    changes with the shift and biases a cell's mean (by about 1 % for 0.3 px on a 5-px cell).
    Convolving with ``[a, 1 - 2a, a]``, ``a = (0.25 - phi (1 - phi)) / 2``, brings every frame to the
    same blur (0.25 px²), so the bias is one constant factor that cancels in the calibration.
    """
    a = (0.25 - phi * (1 - phi)) / 2
    return np.array([a * (1 - phi), (1 - 2 * a) * (1 - phi) + a * phi, a * (1 - phi) + (1 - 2 * a) * phi, a * phi])


def _tap_weights(q: int) -> np.ndarray:
    """1-D resampling weights at the TAPS for a quantised phase (steps of 1/PHASE_STEPS px); a phase
    of PHASE_STEPS (rounding up to a whole pixel) is the same as phase 0 one pixel further."""
    if q >= PHASE_STEPS:
        w0 = resampling_weights(0.0)
        return np.array([0.0, w0[0], w0[1], w0[2]])
    return resampling_weights(q / PHASE_STEPS)


def _kernels(phases: np.ndarray) -> np.ndarray:
    """4 x 4 resampling weights (flattened, (len(phases), 16)) for quantised phases ``(qy, qx)``."""
    taps = {q: _tap_weights(q) for q in np.unique(phases).tolist()}  # a few distinct steps per axis
    return np.array([np.outer(taps[qy], taps[qx]).ravel() for qy, qx in phases.tolist()]).reshape(-1, 16)


def _soft_mask_pairs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pixel, cell) pairs of the labels shifted by each of the 4 x 4 resampling offsets.

    Returns pixel coordinates ``py``, ``px`` (reference grid + offset), the cell (1..N) of each
    pair, and the pair's membership in the label image shifted by ``(TAPS[i], TAPS[j])`` as bit
    ``4 i + j`` of an integer (P,). Pairs are sorted by cell. A frame displaced by ``n + phi`` is
    measured as ``sum(frame[p + n] * (membership @ outer(w(phi_y), w(phi_x))))``: the frame
    resampled onto the reference grid and summed over each cell, without resampling the frame.

    The 16 shifted label images are read at the pixels any of them covers (the cells' footprint
    dilated by the taps): a pixel that sees one cell is one pair, its bits where that cell is
    seen. Only pixels that see two cells (cells closer than the kernel) go through a sort of
    (cell, pixel, tap) keys; sorting keys for every pixel and tap took 3x longer.
    """
    h, w = labels.shape
    lo, hi = -min(TAPS), max(TAPS)
    H, W = h + lo + hi, w + lo + hi  # the pairs' grid: pixel p at p + lo
    span = H * W
    # the labels padded so that the image shifted by a tap, on the pairs' grid, is a window of it
    padded = np.zeros((H + lo + hi, W + lo + hi), dtype=np.min_scalar_type(max(int(labels.max(initial=0)), 1)))
    padded[lo + hi:lo + hi + h, lo + hi:lo + hi + w] = labels
    fg = padded > 0
    rows = np.zeros((len(fg), W), bool)
    for ox in TAPS:
        rows |= fg[:, hi - ox:hi - ox + W]
    covered = np.zeros((H, W), bool)
    for oy in TAPS:
        covered |= rows[hi - oy:hi - oy + H]
    pix = np.flatnonzero(covered)
    y, x = np.divmod(pix, W)
    at = (y + hi) * padded.shape[1] + x + hi  # pixel p of the pairs' grid in the padded labels
    seen = np.empty((len(TAPS) ** 2, len(pix)), padded.dtype)  # the label under each tap
    for k, (oy, ox) in enumerate((oy, ox) for oy in TAPS for ox in TAPS):
        np.take(padded.ravel(), at - (oy * padded.shape[1] + ox), out=seen[k], mode="clip")  # in range
    cell = seen.max(axis=0)
    hit = seen == cell
    bits, bit = np.zeros(len(pix), np.uint16), np.empty(len(pix), np.uint16)
    for k in range(len(hit)):  # (np.packbits along the first axis is 15x slower)
        bits |= np.left_shift(hit[k], k, out=bit, dtype=np.uint16)
    keys = (cell.astype(np.int64) * span + pix) << 16 | bits
    two = np.flatnonzero((hit | (seen == 0)).min(axis=0) == 0)
    if len(two):  # pixels that see two cells: the other cells' pairs from (cell, pixel, tap) keys
        other = seen[:, two]
        tap, i = np.nonzero((other != 0) & (other != cell[two]))
        k = np.sort((other[tap, i].astype(np.int64) * span + pix[two][i]) << 4 | tap)
        pair = k >> 4
        first = np.flatnonzero(np.concatenate([[True], pair[1:] != pair[:-1]]))
        keys = np.concatenate([keys, pair[first] << 16 | np.bitwise_or.reduceat(np.left_shift(1, k & 15), first)])
    keys.sort()
    pair = keys >> 16
    py, px = np.divmod(pair % span, W)
    return py - lo, px - lo, pair // span, keys & 0xFFFF


BACKGROUND_GROUP_PX = 64


def _segment_sums(x: np.ndarray, starts: np.ndarray, dtype: type | None = None) -> np.ndarray:
    """Sums of ``x`` (F, P) over runs of columns, each from its start to the next start (``starts``
    sorted; the last run ends at P); 0 for an empty run. Returns (F, len(starts))."""
    if len(starts) and starts[-1] < x.shape[1] and (starts[1:] > starts[:-1]).all():  # no empty run
        return np.add.reduceat(x, starts, axis=1, dtype=dtype)
    ends = np.append(starts[1:], x.shape[1])
    full = np.flatnonzero(ends > starts)
    out = np.zeros((len(x), len(starts)), dtype or x.dtype)
    if len(full):
        out[:, full] = np.add.reduceat(x, starts[full], axis=1, dtype=dtype)
    return out


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
        The background is measured on at most this many evenly spaced cell-free pixels, in groups
        of at most 64 within tiles of the field (8 x 8 tiles): their mean without groups more than 3
        robust SD (MAD) from the median group (see :func:`_clipped_group_mean`), and a smooth
        surface through the groups read at each cell (``local_background``).
    frames : ndarray (T,) bool, optional
        Frames to measure (e.g. the registered ones); the others are NaN.
    """
    h, w = labels.shape
    n = int(labels.max())
    py, px, cell, bits = _soft_mask_pairs(labels)
    starts = np.searchsorted(cell, np.arange(1, n + 1))
    ys, xs = np.nonzero(labels)
    label_of = labels[ys, xs]
    area = np.bincount(label_of, minlength=n + 1)[1:].astype(np.float64)
    bg_idx = _background_pixels(labels, background_margin_px, max_background_px)
    bys, bxs = np.divmod(bg_idx, w)
    # cell-free pixels in groups (runs of at most BACKGROUND_GROUP_PX pixels within one tile;
    # bg_idx is sorted by tile), gathered and summed with the cells' pairs
    tile = _tiles(bg_idx, (h, w))
    rank = np.arange(len(bg_idx)) - np.searchsorted(tile, tile)
    new = np.concatenate([[True], (tile[1:] != tile[:-1]) | (rank[1:] % BACKGROUND_GROUP_PX == 0)]) if len(bg_idx) else \
        np.zeros(0, bool)
    bg_starts = np.flatnonzero(new)
    bg_counts = np.diff(np.append(bg_starts, len(bg_idx))).astype(np.float64)
    group_of = np.cumsum(new) - 1
    gy = np.bincount(group_of, weights=bys, minlength=len(bg_starts)) / np.maximum(bg_counts, 1)
    gx = np.bincount(group_of, weights=bxs, minlength=len(bg_starts)) / np.maximum(bg_counts, 1)
    degree = _surface_degree(gy, gx, (h, w), len(bg_starts)) if len(bg_idx) else 0
    n_terms = (degree + 1) * (degree + 2) // 2
    cell_y, cell_x = (np.bincount(label_of, weights=v, minlength=n + 1)[1:] / np.maximum(area, 1) for v in (ys, xs))
    T = len(data)
    local = np.full((T, n), np.nan)
    coefs = np.full((T, n_terms), np.nan)
    mean = np.full((T, n), np.nan)
    saturated = np.zeros((T, n), dtype=np.int64)
    bg_sums = np.full((T, len(bg_starts)), np.nan)
    measure = np.ones(T, dtype=bool) if frames is None else np.asarray(frames, dtype=bool)
    base = np.floor(shifts).astype(np.int64)
    # fractional shifts quantised to 1/20 px (registration is good to about 0.1 px): the weights
    # are computed once per distinct phase
    phase = np.minimum(np.rint((shifts - base) * PHASE_STEPS).astype(np.int64), PHASE_STEPS)
    done = np.flatnonzero(measure)
    phases, phase_of = np.unique(phase[done], axis=0, return_inverse=True)
    offsets, offset_of = np.unique(base[done], axis=0, return_inverse=True)
    phase_of, offset_of = np.ravel(phase_of), np.ravel(offset_of)
    stack = np.asarray(data).reshape(T, h * w)  # a plain view of a memory map: cheaper to index
    dtype = np.result_type(stack.dtype, np.float32)
    # each pair's weight for each phase: the few distinct memberships weighted once per phase
    present = np.bincount(bits, minlength=1 << 16) > 0  # (np.unique sorts: 5x slower)
    patterns = np.flatnonzero(present)
    pattern_of = (np.cumsum(present) - 1)[bits]
    pattern_weights = (_kernels(phases) @ ((patterns[:, None] >> np.arange(16)) & 1).T).astype(dtype)
    # each frame is one sparse matrix-vector product over the frame's pixels. Its rows are runs of at
    # most PARTIAL_PAIRS pairs of one cell (float32 partial sums for integer frames, added per cell
    # in float64: a cell's mean is good to about 1e-7), then the background groups (exact: <= 64
    # integers of 16 bits); its columns are the pairs' pixel positions at the frame's whole-pixel
    # offset (``base[base_of[o]] + delta[o]``; clamped positions for offsets at the edge), its values
    # their weights at the frame's phase (``weight``, set per phase: frames are taken in order of
    # phase). The compiled kernel (:func:`._trace_kernel.measure_frames`, every frame in one call)
    # reads each pair's pixel from the frame as stored, weights and sums it in scipy's order (the
    # same float32 sums) and counts saturated pairs in rows whose largest pixel reaches the
    # threshold: no copy, cast or maximum of the frame (600 frames of 512 x 512 uint16 on a 2-core
    # AMD EPYC: 50 ms, scipy's product with them about 70 ms). Without numba, or for pixel types it
    # does not read, scipy's product computes the same sums from a float copy of each frame.
    n_pairs = len(py)
    parts = -(-np.diff(np.append(starts, n_pairs)) // PARTIAL_PAIRS)  # per cell
    first_part = np.cumsum(parts) - parts
    part_starts = np.repeat(starts - PARTIAL_PAIRS * first_part, parts) + PARTIAL_PAIRS * np.arange(parts.sum())
    n_parts = len(part_starts)
    indptr = np.concatenate([part_starts, n_pairs + bg_starts, [n_pairs + len(bg_idx)]]).astype(np.int32)
    gy, gx = np.concatenate([py, bys]), np.concatenate([px, bxs])
    inside = np.array([0 <= gy.min() + dy and gy.max() + dy < h and 0 <= gx.min() + dx and gx.max() + dx < w
                       for dy, dx in offsets.tolist()], dtype=bool)
    delta = np.where(inside, offsets @ np.array([w, 1]), 0).astype(np.int64)
    base_of = np.cumsum(~inside) * ~inside  # 0: the reference positions; edge offsets: their own
    base = np.stack([(gy * w + gx).astype(np.int32)]
                    + [(np.clip(gy + dy, 0, h - 1) * w + np.clip(gx + dx, 0, w - 1)).astype(np.int32)
                       for dy, dx in offsets[~inside].tolist()])
    weight = np.ones(indptr[-1], dtype)  # the pairs' weights for a phase, then 1 for the sample
    partial = np.zeros((len(done), len(indptr) - 1), dtype)  # per measured frame
    order = np.argsort(phase_of, kind="stable")
    kernel = _numba_kernel() if USE_NUMBA and stack.dtype in _NUMBA_DTYPES else None
    if kernel is not None:
        kernel(stack, done, phase_of, offset_of, order, pattern_weights, pattern_of, base, base_of, delta,
               indptr.view(np.uint32), n_parts, np.repeat(np.arange(n), parts),
               _saturation_threshold(stack.dtype, saturation_value), weight, partial, saturated)
    else:
        # scipy's matrix, its arrays swapped in place (building it per offset or phase would cost
        # more than the product; the constructor may copy: ``weight`` changes in place)
        position = [base[b] + np.int32(d) for b, d in zip(base_of.tolist(), delta.tolist(), strict=True)]
        matrix = sparse.csr_matrix((weight, np.zeros(len(weight), np.int32), indptr),
                                   shape=(len(indptr) - 1, h * w))
        matrix.indptr, matrix.data = indptr, weight
        frame = np.empty(h * w, dtype)
        current = -1  # the phase whose weights are in ``weight``
        for j in order:
            t, o, q = done[j], offset_of[j], phase_of[j]
            if q != current:
                current = q
                np.take(pattern_weights[q], pattern_of, out=weight[:n_pairs], mode="clip")  # in range
            matrix.indices = position[o]
            # the frame's maximum first: a streaming read of the stack, which leaves the frame in
            # cache for the cast (so the check costs little)
            # (a frame with NaN: its maximum is NaN and its pixels are compared one by one, as the kernel does)
            if n and not stack[t].max() < saturation_value:  # pixels with at least half their weight in the cell
                over = (stack[t][position[o][:n_pairs]] >= saturation_value) & (weight[:n_pairs] >= 0.5)
                saturated[t] = _segment_sums(over[None], starts, np.int64)[0]
            np.copyto(frame, stack[t])
            if _csr_matvec is None:
                partial[j] = matrix @ frame
            else:
                _csr_matvec(*matrix.shape, matrix.indptr, matrix.indices, matrix.data, frame, partial[j])  # adds to 0
    mean[done] = _segment_sums(partial[:, :n_parts].astype(np.float64), first_part) / area
    bg_sums[done] = partial[:, n_parts:]
    background = _clipped_group_mean(bg_sums, bg_counts) if len(bg_idx) else np.full(T, np.nan)
    if len(bg_idx):
        # the surface in camera coordinates: the cell-free pixels of the reference grid sit at
        # (reference + whole-pixel offset) in each frame, the cells at their centroid + shift;
        # frames that share an offset share a design and are fitted together
        at = _monomials((cell_y[None] + shifts[done, :1]).ravel(), (cell_x[None] + shifts[done, 1:]).ravel(),
                        (h, w), degree).reshape(len(done), n, n_terms)  # the cells in every frame at once
        for j, (dy, dx) in enumerate(offsets.tolist()):
            fr = done[offset_of == j]
            terms = _monomials(np.clip(bys + dy, 0, h - 1), np.clip(bxs + dx, 0, w - 1), (h, w), degree)
            design = np.stack([np.bincount(group_of, weights=terms[:, k], minlength=len(bg_starts))
                               for k in range(n_terms)], axis=1) / bg_counts[:, None]
            coefs[fr], lo, hi = fit_background_surfaces(bg_sums[fr] / bg_counts, design, bg_counts)
            if n:
                local[fr] = np.clip(np.einsum("fnp,fp->fn", at[offset_of == j], coefs[fr]), lo[:, None], hi[:, None])
    else:
        local = np.repeat(background[:, None], n, axis=1)
    return Traces(mean=mean, saturated=saturated, background=background, n_background_px=len(bg_idx),
                  local_background=local, background_coef=coefs, background_degree=degree, shape=(h, w),
                  centroid_y=cell_y, centroid_x=cell_x)
