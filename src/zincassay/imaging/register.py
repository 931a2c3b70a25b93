"""Rigid registration of a time-lapse that survives the calibration steps.

A zinc-calibration recording changes at every addition: cells brighten several-fold at
pyrithione + ZnCl2, over-loaded cells saturate, cells round up or float away, the medium lights
up, and every addition may jolt the dish. Registration works on images band-passed at the scale
of whole cells (difference of Gaussians, sigmas 0.35 and 1 cell radius; the frame binned so a
cell is at most ~16 px across): a cell that brightens, saturates or rounds up keeps its centre,
where an edge-based match would follow its changing outline. Before the band-pass each frame's
periodic component is taken (Moisan, J. Math. Imaging Vis. 2011): the FFT joins opposite edges,
and the band-pass would turn the step between them into lines fixed to the frame that pull every
match towards no displacement. Three stages per frame:

1. **Tracking by correlation** (finds the frame, including jolts). The band-passed central crop
   is divided by its robust noise level and soft-clipped (tanh at 3 noise SD) so that cells count
   by where they are, not by how bright they are; it is matched to the current *keyframe* and to
   the previous frame, with correlation peaks searched only within ``max_jump_px`` of the previous
   frame's position (a plausibility bound) and used only when their normalised correlation stands
   out. When the keyframe match weakens (the image has changed) the frame becomes the next
   keyframe; a frame that matches neither is *flagged* (unregistered, position held), never given
   a wild shift.
2. **Cell centres** (measures the frame). Cells found in the reference (the first frames) are
   located in the frame near the tracked position by an iterated, Gaussian-windowed centroid of the
   band-passed image; the frame's shift is the mean displacement of the cells that agree with the
   median displacement (a cell that floats away, fades or is covered does not). Every frame is
   thus measured against the reference itself: no error accumulates along the keyframe chain.
   One or two cells are used when they agree with each other and with the tracked position; when
   none does, the tracked position is used.
3. **Measurement against the reference** (the sub-pixel shift). The frame, binned so that a cell
   is at most ~32 px across, is moved back by the whole-pixel part of the position from stages 1-2
   and correlated with the reference over their common part, both normalised as in stage 1 and
   with no window: the contents coincide to within a pixel, so nothing fixed to the frame pulls
   the sub-pixel peak (a window or the frame's edge does when a frame is matched where it lies:
   a shortfall of about a tenth of the drift in fields of a few large cells). The match is then repeated without
   the parts that do not match (normalised difference above 0.3, averaged over a cell), so that a
   cell that floats off or fades does not pull it. A peak on the edge of the search (one binned
   pixel around the placed position) is no peak: the search is repeated from there, up to four
   times, so a frame that stage 2 misplaced by a few pixels is still measured (cell centres move
   when over-loaded cells saturate in a tilted illumination or round up). This stage sets the
   shift of every placed frame; ``source`` says which stage placed it.
4. **Cells' extents** (corrects the measurement's bias). The three stages above measure the cells'
   light, which moves with respect to the dish when cells round up at pyrithione (their nucleus
   and granules move with the profile) or an over-loaded cell's share of the light changes. Each
   isolated cell of the reference (its extent 2 binned px inside its territory: two touching
   cells that round up by different amounts move their joint outline) is located by the centre of
   its extent (above 0.4 of the way from its window's background to its brightest pixel, with a ramp), which
   rounding up about the centre does not move. When at least two cells agree, the difference from
   stage 3 is applied: per frame in proportion to how steady the extents are from frame to frame
   against stage 3 (second differences), the rest as the difference's precision-weighted mean over
   ±3 frames (a jolt is not blurred; neither measurement's scatter is kept where the other is
   steadier); ``var / (var + 0.3²)`` of it is dropped, where ``var`` is the variance of that mean
   (px²) and 0.3 px the prior SD of stage 3's bias, so a field of dim, noisy cells keeps the
   correlation and a field of clear cells takes their outlines.

Sub-pixel correlation peaks come from an upsampled DFT of the cross-power spectrum around the
integer peak (Guizar-Sicairos, Thurman & Fienup, Opt. Lett. 2008) with a parabolic refinement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft
from scipy import ndimage as ndi

__all__ = ["Registration", "estimate_shifts", "register_stack"]


def _binned(frame: np.ndarray, bin_px: int) -> np.ndarray:
    """``frame`` (Y, X) as float32, averaged over blocks of ``bin_px`` x ``bin_px`` pixels (a partial
    block at the bottom or right edge is left out)."""
    h, w = frame.shape[0] // bin_px, frame.shape[1] // bin_px
    a = np.asarray(frame[: h * bin_px, : w * bin_px], dtype=np.float32)
    return a.reshape(h, bin_px, w, bin_px).mean(axis=(1, 3)) if bin_px > 1 else a


def _sample(x: np.ndarray, n: int = 20000) -> np.ndarray:
    """Evenly spaced values of ``x`` (at most about ``n``) for robust statistics."""
    flat = x.ravel()
    return flat[:: max(1, len(flat) // n)]


@dataclass
class Registration:
    """Per-frame registration of a stack (T frames).

    Attributes
    ----------
    shifts : ndarray (T, 2) float64
        ``(dy, dx)`` px: an object at ``(y, x)`` in the reference (the first frames) is at
        ``(y + dy, x + dx)`` in frame t.
    confidence : ndarray (T,) float64
        0-1: the fraction of tracked cells that moved together (``cells``), or the normalised
        correlation of the tracking match (``correlation``); 0 when unregistered.
    registered : ndarray (T,) bool
        False for frames nothing could place (their shift is held from the previous frame).
    source : ndarray (T,) str
        How the frame was placed before its measurement against the reference: ``cells``,
        ``correlation``, or ``held`` (not registered).
    cell_radius_px : float
        Cell radius (px) that set the band-pass.
    n_cells : int
        Cells tracked from the reference.
    n_keyframes : int
        Keyframes of the tracking stage (1 = every frame matched the reference).
    """

    shifts: np.ndarray
    confidence: np.ndarray
    registered: np.ndarray
    source: np.ndarray
    cell_radius_px: float
    n_cells: int
    n_keyframes: int


class _Bandpass:
    """Binned, band-passed frames (float32) and the spectra of their normalised central crops."""

    def __init__(self, shape: tuple[int, int], bin_px: int, radius: float, max_size: int):
        self.bin = bin_px
        self.h, self.w = shape[0] // bin_px, shape[1] // bin_px
        fy = sfft.fftfreq(self.h)[:, None]
        fx = sfft.rfftfreq(self.w)[None, :]
        f2 = fy**2 + fx**2
        s1, s2 = max(0.7, 0.35 * radius), max(2.0, radius)
        self.band = (np.exp(-2 * np.pi**2 * s1**2 * f2) - np.exp(-2 * np.pi**2 * s2**2 * f2)).astype(np.float32)
        # white pixel noise of SD 1 leaves SD `gain` after the band-pass
        full = sfft.fftfreq(self.h)[:, None] ** 2 + sfft.fftfreq(self.w)[None, :] ** 2
        self.gain = float(np.sqrt(np.mean((np.exp(-2 * np.pi**2 * s1**2 * full)
                                           - np.exp(-2 * np.pi**2 * s2**2 * full)) ** 2)))
        self.noise = 1.0
        ch, cw = min(self.h, max_size), min(self.w, max_size)
        self.cy = slice((self.h - ch) // 2, (self.h - ch) // 2 + ch)
        self.cx = slice((self.w - cw) // 2, (self.w - cw) // 2 + cw)
        # periodic component (Moisan 2011): what the frame's edges add to its spectrum is removed
        self.smooth = (2 * np.cos(2 * np.pi * fy) + 2 * np.cos(2 * np.pi * fx) - 4).astype(np.float32)
        self.smooth[0, 0] = 1.0
        self.window = np.outer(np.hanning(ch), np.hanning(cw)).astype(np.float32)
        self.fy, self.fx = sfft.fftfreq(ch), sfft.fftfreq(cw)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        return self.filtered(_binned(frame, self.bin))

    def filtered(self, a: np.ndarray) -> np.ndarray:
        """Band-pass of a frame already binned by ``self.bin`` (float32)."""
        # pixel noise from neighbour differences (robust to the cells), carried through the band-pass
        d = _sample(np.diff(a, axis=1))
        pix = max(1.4826 * float(np.median(np.abs(d - np.median(d)))) / np.sqrt(2), 1e-12)
        self.noise = pix * self.gain
        # the FFT wraps the frame round: its opposite edges meet in a step that the band-pass would
        # turn into bright lines fixed to the frame (pulling every match towards no displacement)
        v = np.zeros_like(a)
        v[0] += a[-1] - a[0]
        v[-1] += a[0] - a[-1]
        v[:, 0] += a[:, -1] - a[:, 0]
        v[:, -1] += a[:, 0] - a[:, -1]
        edges = sfft.rfft2(v) / self.smooth
        edges[0, 0] = 0
        return sfft.irfft2((sfft.rfft2(a) - edges) * self.band, s=(self.h, self.w))

    def spectrum(self, g: np.ndarray) -> np.ndarray:
        c = _soft_clipped(g[self.cy, self.cx]) * self.window
        return sfft.fft2(c - c.mean())


def _energy(spec: np.ndarray) -> float:
    return float(np.sum(np.abs(spec) ** 2) / spec.size)


def _upsampled(cross: np.ndarray, centre: np.ndarray, fy: np.ndarray, fx: np.ndarray, factor: int,
               size: int) -> np.ndarray:
    """Inverse DFT of ``cross`` at ``centre + (k - size // 2) / factor`` (px) along each axis."""
    off = (np.arange(size) - size // 2) / factor
    ey = np.exp(2j * np.pi * np.outer(centre[0] + off, fy))
    ex = np.exp(2j * np.pi * np.outer(fx, centre[1] + off))
    return (ey @ cross @ ex).real


def _match(ref: np.ndarray, ref_energy: float, mov: np.ndarray, mov_energy: float, guess: np.ndarray,
           radius: float, fy: np.ndarray, fx: np.ndarray, factor: int = 10) -> tuple[np.ndarray, float]:
    """Displacement of ``mov`` relative to ``ref`` (spectra) and the normalised correlation of the
    match; the integer peak is searched within ``radius`` px of ``guess``."""
    cross = np.conj(ref) * mov
    corr = sfft.ifft2(cross).real
    h, w = corr.shape
    dy = (np.arange(h) + h // 2) % h - h // 2  # signed displacement of each index
    dx = (np.arange(w) + w // 2) % w - w // 2
    allowed = (np.abs(dy - guess[0])[:, None] <= radius) & (np.abs(dx - guess[1])[None, :] <= radius)
    k = np.unravel_index(int(np.argmax(np.where(allowed, corr, -np.inf))), corr.shape)
    peak = np.array([dy[k[0]], dx[k[1]]], dtype=np.float64)
    shift, top = _subpixel(cross, peak, fy, fx, factor, h * w)
    return shift, float(top / np.sqrt(max(ref_energy * mov_energy, 1e-30)))


def _subpixel(cross: np.ndarray, peak: np.ndarray, fy: np.ndarray, fx: np.ndarray, factor: int, n: int
              ) -> tuple[np.ndarray, float]:
    """Sub-pixel peak of the cross-correlation with spectrum ``cross`` near the whole-pixel
    ``peak``: upsampled DFT by ``factor``, then a parabola through the best sample and its
    neighbours. Returns the peak (px) and the correlation there (divided by ``n``)."""
    up = _upsampled(cross, peak, fy, fx, factor, 2 * factor + 1) / n
    j = np.unravel_index(int(np.argmax(up)), up.shape)
    sub = np.zeros(2)
    for ax in (0, 1):
        if 0 < j[ax] < up.shape[ax] - 1:
            lo = up[tuple(j[a] - (a == ax) for a in (0, 1))]
            hi = up[tuple(j[a] + (a == ax) for a in (0, 1))]
            den = lo - 2 * up[j] + hi
            sub[ax] = 0.5 * (lo - hi) / den if den < 0 else 0.0
    return peak + (np.array(j) - factor + sub) / factor, float(up[j])


def _soft_clipped(c: np.ndarray) -> np.ndarray:
    """``c`` centred on its median, divided by 3 robust SD and soft-clipped (tanh): cells count by
    where they are, not by how bright they are."""
    sub = _sample(c)
    med = np.median(sub)
    scale = 1.4826 * np.median(np.abs(sub - med))
    if not np.isfinite(scale) or scale <= 0:
        scale = float(np.std(c)) or 1.0
    return np.tanh((c - med) / (3 * scale))


def _normalised(c: np.ndarray) -> np.ndarray:
    """:func:`_soft_clipped` with its mean removed."""
    v = _soft_clipped(c)
    return v - v.mean()


def _local_match(a: np.ndarray, b: np.ndarray, radius_px: float, factor: int) -> tuple[np.ndarray, float]:
    """Displacement of image ``b`` relative to image ``a`` (same shape, nearly aligned: the peak
    is searched within ``radius_px`` of zero) and the normalised correlation. Uses the half
    spectra of real images (the other half is their mirror) and evaluates the correlation only
    near zero displacement, so it costs two real FFTs."""
    h, w = a.shape
    fy, fx = sfft.fftfreq(h), sfft.rfftfreq(w)
    cross = np.conj(sfft.rfft2(a)) * sfft.rfft2(b)
    cross[:, 1:(w + 1) // 2] *= 2  # the columns whose mirror image the half spectrum leaves out
    r = int(np.floor(radius_px))
    near = _upsampled(cross, np.zeros(2), fy, fx, 1, 2 * r + 1)
    off = np.arange(-r, r + 1)
    near[np.hypot(*np.meshgrid(off, off, indexing="ij")) > max(radius_px, 1.0) * np.sqrt(2)] = -np.inf
    k = np.unravel_index(int(np.argmax(near)), near.shape)
    shift, top = _subpixel(cross, np.array([off[k[0]], off[k[1]]], dtype=np.float64), fy, fx, factor, h * w)
    return shift, top / np.sqrt(max(float(np.sum(a * a)) * float(np.sum(b * b)), 1e-30))


def _smoothed(x: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian smoothing (``sigma_px``) of ``x`` computed on blocks of about sigma / 2 px (the
    blocks' means, smoothed, spread back over their pixels): for masks at the scale of a cell."""
    q = max(1, int(sigma_px // 2))
    h, w = x.shape
    H, W = -(-h // q), -(-w // q)
    pad = np.pad(x, ((0, H * q - h), (0, W * q - w)), mode="edge")
    coarse = ndi.gaussian_filter(pad.reshape(H, q, W, q).mean(axis=(1, 3)), sigma_px / q, mode="nearest")
    return np.repeat(np.repeat(coarse, q, axis=0), q, axis=1)[:h, :w]


def _refine(g_ref: np.ndarray, g: np.ndarray, shift: np.ndarray, blob_px: float, radius_px: float = 1.0,
            factor: int = 20, max_residual: float = 0.3) -> tuple[np.ndarray | None, float]:
    """Shift (px of ``g``) of band-passed frame ``g`` relative to band-passed reference ``g_ref``
    (same shape), measured on their common part once ``g`` is moved back by the whole-pixel part
    of ``shift``.

    The contents then coincide to within about a pixel, so nothing fixed to the frame (its edges, a
    window) pulls the sub-pixel peak towards zero displacement, as it does when a frame is matched
    where it lies; no window is applied for the same reason. The peak is searched within
    ``radius_px`` of the whole-pixel shift. Then once more without what does not match (the
    normalised images differ by more than ``max_residual`` averaged over a cell, ``blob_px``): a
    cell that floated away, faded or appeared does not pull the match. Returns the shift and the
    normalised correlation; None when too little of the frames overlaps.
    """
    h, w = g.shape
    ky, kx = (int(v) for v in np.rint(shift))
    y0, y1 = max(0, -ky), min(h, h - ky)
    x0, x1 = max(0, -kx), min(w, w - kx)
    if y1 - y0 < 8 or x1 - x0 < 8:
        return None, 0.0
    a = _normalised(g_ref[y0:y1, x0:x1])
    b = _normalised(g[y0 + ky:y1 + ky, x0 + kx:x1 + kx])
    d, ncc = _local_match(a, b, radius_px, factor)
    residual = _smoothed(np.abs(a - ndi.shift(b, -d, order=1, mode="nearest")), max(blob_px, 1.0))
    keep = (residual < max_residual).astype(np.float32)
    if 0.3 < keep.mean() < 1.0:
        a, b = a * keep, b * keep
        d, ncc = _local_match(a - a.mean(), b - b.mean(), radius_px, factor)
    return np.array([ky, kx], dtype=np.float64) + d, ncc


def _territories(centres: np.ndarray, base: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(N, P): which pixels ``base + offsets`` of each cell's window are closer to its centre than to
    any other cell's (``centres``, ``base`` (N, 2), ``offsets`` (P, 2), px), so that a neighbour
    that brightens, fades or rounds up does not pull a cell's centre."""
    from scipy.spatial import cKDTree

    N, P = len(centres), len(offsets)
    if N < 2:
        return np.ones((N, P), dtype=bool)
    _, nearest = cKDTree(centres).query((base[:, None, :] + offsets[None]).reshape(-1, 2))
    return nearest.reshape(N, P) == np.arange(N)[:, None]


class _Cells:
    """Cells of the reference, located in a frame by an iterated Gaussian-windowed centroid."""

    def __init__(self, g: np.ndarray, noise: float, radius: float, max_cells: int = 400):
        self.radius = radius
        R = max(int(np.ceil(radius)) + 1, 2)
        oy, ox = np.mgrid[-R:R + 1, -R:R + 1]
        self.offsets = np.stack([oy.ravel(), ox.ravel()], axis=1).astype(np.float64)  # (P, 2)
        self.sigma = max(0.4 * radius, 1.0)
        self.R = R
        med = np.median(g)
        peaks = (g == ndi.maximum_filter(g, size=2 * max(int(radius), 1) + 1)) & (g > med + 5 * noise)
        h, w = g.shape
        edge = int(np.ceil(radius)) + 2
        peaks[: int(edge)], peaks[h - int(edge):], peaks[:, : int(edge)], peaks[:, w - int(edge):] = False, False, False, False
        ys, xs = np.nonzero(peaks)
        order = np.argsort(-g[ys, xs])[:max_cells]
        centres = np.stack([ys[order], xs[order]], axis=1).astype(np.float64)
        self.own = np.ones((len(centres), len(self.offsets)), dtype=bool)
        self.ref = self.locate(g, centres, iterations=6) if len(centres) else centres
        self.ref = self.ref[np.isfinite(self.ref).all(axis=1)]
        self.own = _territories(self.ref, np.floor(self.ref), self.offsets)

    def locate(self, g: np.ndarray, centres: np.ndarray, iterations: int = 3, base: np.ndarray | None = None
               ) -> np.ndarray:
        """Centroids (N, 2) of the positive band-passed signal near ``centres``, over each cell's
        window of pixels ``base + offsets`` (default: the centres rounded down); NaN when the
        centre leaves the frame or the window holds no signal."""
        h, w = g.shape
        c = centres.copy()
        alive = np.isfinite(c).all(axis=1)
        c[~alive] = 0.0
        base = np.floor(c) if base is None else base
        py = base[:, :1] + self.offsets[None, :, 0]  # (N, P): the window's pixels, fixed
        px = base[:, 1:] + self.offsets[None, :, 1]
        inside = (py >= 0) & (py < h) & (px >= 0) & (px < w)
        near = (py - c[:, :1]) ** 2 + (px - c[:, 1:]) ** 2 <= (np.ceil(self.radius) + 1) ** 2  # capture disc
        # a capture disc cut by the frame's edge (a cell leaving the field) would bias the centre
        alive &= (inside | ~near).all(axis=1)
        vals = np.maximum(g[np.clip(py, 0, h - 1).astype(np.intp), np.clip(px, 0, w - 1).astype(np.intp)], 0)
        vals = vals * self.own[: len(c)] * inside
        k = -0.5 / self.sigma**2
        for _ in range(iterations):  # mean shift: climbs to the cell from a guess a few px off
            wgt = vals * near * np.exp(k * ((py - c[:, :1]) ** 2 + (px - c[:, 1:]) ** 2))
            c, alive = self._centroid(wgt, py, px, c, alive)
        c[~alive] = np.nan
        return c

    @staticmethod
    def _centroid(wgt: np.ndarray, py: np.ndarray, px: np.ndarray, c: np.ndarray, alive: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
        tot = wgt.sum(axis=1)
        ok = alive & (tot > 0)
        safe = np.where(ok, tot, 1.0)
        c = np.where(ok[:, None], np.stack([(wgt * py).sum(axis=1), (wgt * px).sum(axis=1)], axis=1) / safe[:, None], c)
        return c, ok

    def shift(self, g: np.ndarray, noise: float, guess: np.ndarray, tolerance: float) -> tuple[np.ndarray | None, float]:
        """Frame shift from the cells that move together, and the fraction of cells that do. A
        cell counts only where the band-passed frame stands 3 noise SD (``noise``) above its
        median (a blank or washed-out frame places nothing)."""
        if not len(self.ref):
            return None, 0.0
        # windows moved by the whole-pixel part of the guess, so each cell's own pixels stay its own
        c = self.locate(g, self.ref + guess, base=np.floor(self.ref) + np.rint(guess))
        found = np.isfinite(c).all(axis=1)
        h, w = g.shape
        iy = np.clip(np.rint(c[found, 0]), 0, h - 1).astype(np.intp)
        ix = np.clip(np.rint(c[found, 1]), 0, w - 1).astype(np.intp)
        med = float(np.median(_sample(g)))
        strong = np.zeros(len(c), dtype=bool)
        strong[np.flatnonzero(found)] = g[iy, ix] > med + 3 * noise
        d = (c - self.ref)[strong]
        if not len(d):
            return None, 0.0
        if len(d) < 3:  # one or two cells: used when they agree (the caller checks them against tracking)
            if len(d) == 2 and np.hypot(*(d[0] - d[1])) > 5 * tolerance:
                return None, 0.0
            return d.mean(axis=0), float(len(d)) / len(self.ref)
        med = np.median(d, axis=0)
        dev = np.hypot(*(d - med).T)
        keep = dev <= max(3 * 1.4826 * float(np.median(dev)), tolerance)
        if keep.sum() < max(3, 0.3 * len(d)):
            return None, float(keep.sum()) / len(self.ref)
        return d[keep].mean(axis=0), float(keep.sum()) / len(self.ref)


class _Extents:
    """Isolated cells of the reference, located in a frame by the centre of their extent.

    A cell's extent is where its lightly smoothed image stands above ``threshold`` of the way from
    its window's background (5th percentile) to its brightest pixel, with a linear ramp of
    ``ramp`` around it so that it moves by fractions of a pixel. Its centre follows the cell's
    outline, not its light: a cell that rounds up about its centre, whose nucleus or granules
    change with its profile, or that saturates keeps it. Only cells whose extent stays 2 px (of the
    binned frame) inside their own territory (the window pixels nearer to them than to any other
    cell) and window are used: two touching cells that round up by different amounts move the
    centre of their joint extent.
    """

    def __init__(self, a: np.ndarray, centres: np.ndarray, radius: float, threshold: float = 0.4,
                 ramp: float = 0.2):
        self.sigma = max(0.7, 0.08 * radius)
        self.threshold, self.ramp = threshold, ramp
        R = int(np.ceil(1.6 * radius))
        oy, ox = np.mgrid[-R:R + 1, -R:R + 1]
        self.offsets = np.stack([oy.ravel(), ox.ravel()], axis=1)  # (P, 2)
        centres = centres[np.isfinite(centres).all(axis=1)]
        self.base = np.rint(centres).astype(np.intp)
        N = len(centres)
        self.own = _territories(centres, self.base, self.offsets)
        ref, wgt = self._locate(self.smoothed(a), np.zeros(2, np.intp))
        # isolated: the extent (weight > 1/4) at least 2 (binned) px inside the territory and the window
        inner = ndi.binary_erosion(self.own.reshape(N, 2 * R + 1, 2 * R + 1), np.ones((1, 3, 3), bool),
                                   iterations=2, border_value=0).reshape(N, len(self.offsets))
        isolated = np.isfinite(ref).all(axis=1) & ~((wgt > 0.25) & ~inner).any(axis=1)
        self.base, self.own, self.ref = self.base[isolated], self.own[isolated], ref[isolated]

    def smoothed(self, a: np.ndarray) -> np.ndarray:
        return ndi.gaussian_filter(a, self.sigma)

    def _locate(self, img: np.ndarray, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Centres (N, 2) of the cells' extents in ``img`` with their windows moved by ``offset``
        (whole px; NaN for a window not wholly in the frame) and the extents' weights (N, P)."""
        h, w = img.shape
        N = len(self.base)
        at = self.base + offset
        lo, hi = at + self.offsets.min(axis=0), at + self.offsets.max(axis=0)
        inside = (lo >= 0).all(axis=1) & (hi[:, 0] < h) & (hi[:, 1] < w)
        py = np.clip(at[:, :1] + self.offsets[None, :, 0], 0, h - 1)
        px = np.clip(at[:, 1:] + self.offsets[None, :, 1], 0, w - 1)
        v = img[py, px]  # (N, P)
        bg = np.percentile(v, 5, axis=1, keepdims=True)
        top = np.max(np.where(self.own, v, -np.inf), axis=1, keepdims=True) if N else bg
        span = top - bg
        u = (v - bg) / np.where(span > 0, span, 1.0)
        wgt = np.clip((u - self.threshold) / self.ramp + 0.5, 0.0, 1.0) * self.own
        tot = wgt.sum(axis=1)
        ok = inside & (span[:, 0] > 0) & (tot > 0)
        c = at + (wgt @ self.offsets) / np.where(tot > 0, tot, 1.0)[:, None]
        c[~ok] = np.nan
        return c, wgt

    def shift(self, img: np.ndarray, guess: np.ndarray, tolerance: float) -> tuple[np.ndarray, float] | None:
        """Frame shift (px of ``img``) from the cells' extents near ``guess`` and the variance (px²,
        per axis) of that mean; None unless at least two cells agree (within ``tolerance``, or
        3 robust SD of the cells' scatter when larger)."""
        if len(self.base) < 2:
            return None
        c, _ = self._locate(self.smoothed(img), np.rint(guess).astype(np.intp))
        d = (c - self.ref)[np.isfinite(c).all(axis=1)]
        if len(d) < 2:
            return None
        dev = np.hypot(*(d - np.median(d, axis=0)).T)
        keep = dev <= max(3 * 1.4826 * float(np.median(dev)), tolerance)
        if keep.sum() < 2:
            return None
        if len(d) == 2 and np.hypot(*(d[0] - d[1])) > 3 * tolerance:
            return None
        d = d[keep]
        m = d.mean(axis=0)
        return m, float(np.sum((d - m) ** 2) / (len(d) - 1) / 2 / len(d))


def _steadier(a: np.ndarray, b: np.ndarray) -> float:
    """Weight (0-1) of series ``a`` (T, 2) against ``b`` measuring the same positions: the inverse of
    each one's frame-to-frame variance, from the median of its squared second differences (white
    noise of variance v gives 6 v; smooth drift none; a jolt moves three of them)."""
    if len(a) < 5:
        return 0.5
    va, vb = (float(np.median(np.diff(x, n=2, axis=0) ** 2)) / 0.455 / 6 + 1e-8 for x in (a, b))
    return vb / (va + vb)


EXTENT_PRIOR_PX = 0.3
EXTENT_FRAMES = 3


def register_stack(data: np.ndarray, *, cell_radius_px: float | None = None, n_reference: int = 3,
                   max_size: int = 256, max_jump_px: float = 16.0, keyframe_drop: float = 0.75,
                   min_ncc: float = 0.05) -> Registration:
    """Register every frame of ``data`` to its first frames.

    Parameters
    ----------
    data : ndarray, shape (T, Y, X)
        The stack (any numeric dtype; a memory map is read one frame at a time).
    cell_radius_px : float, optional
        Typical cell radius (px); estimated from the first frames when not given
        (:func:`~zincassay.imaging.segment.estimate_cell_radius`).
    n_reference : int
        Frames averaged into the reference.
    max_size : int
        Side (binned px) of the central crop used for tracking by correlation.
    max_jump_px : float
        Largest plausible displacement (px) between consecutive frames (a jolt at an addition).
    keyframe_drop : float
        The frame becomes a new keyframe when its correlation with the keyframe falls below this
        fraction of the keyframe's first matches.
    min_ncc : float
        Normalised correlation below which a tracking match is not used (the floor also rises to a
        quarter of the median of recent matches).

    Returns
    -------
    Registration
    """
    from zincassay.imaging.segment import estimate_cell_radius

    T = len(data)
    first = np.mean([np.asarray(data[i], dtype=np.float32) for i in range(min(n_reference, T))], axis=0)
    if cell_radius_px is None:
        cell_radius_px = estimate_cell_radius(first)
    bin_px = max(1, int(cell_radius_px // 8))
    radius = cell_radius_px / bin_px
    band = _Bandpass(data.shape[1:], bin_px, radius, max_size)
    fy, fx = band.fy, band.fx
    jump = max_jump_px / bin_px
    g_ref = band(first)
    # the measurement against the reference: binned so that a cell is at most ~32 px across
    bin_fine = max(1, int(cell_radius_px // 16))
    if bin_fine != bin_px:
        band_fine = _Bandpass(data.shape[1:], bin_fine, cell_radius_px / bin_fine, max_size)
        g_ref_fine = band_fine(first)
    else:
        band_fine, g_ref_fine = band, g_ref
    ratio = bin_px / bin_fine
    cells = _Cells(g_ref, band.noise, radius)
    extents = _Extents(_binned(first, bin_fine), (cells.ref + 0.5) * ratio - 0.5, cell_radius_px / bin_fine)
    tol = 0.3 / bin_px
    ref = band.spectrum(g_ref)
    ref_energy = _energy(ref)
    shifts = np.zeros((T, 2))
    change, change_var = np.zeros((T, 2)), np.full(T, np.inf)  # stage 4 (binned px, px²)
    conf = np.zeros(T)
    ok = np.ones(T, dtype=bool)
    source = np.full(T, "cells", dtype=object)
    key, key_energy, key_shift = ref, ref_energy, np.zeros(2)
    key_typical: list[float] = []
    n_key = 1
    prev, prev_energy = ref, ref_energy
    accepted: list[float] = []
    for t in range(T):
        a = _binned(data[t], bin_px)
        g = band.filtered(a)
        cur = band.spectrum(g)
        cur_energy = _energy(cur)
        last = shifts[t - 1] if t else np.zeros(2)
        m, c_key = _match(key, key_energy, cur, cur_energy, last - key_shift, jump, fy, fx)
        floor = max(min_ncc, 0.25 * float(np.median(accepted[-50:]))) if accepted else min_ncc
        via_key = key_shift + m if c_key >= floor else None
        typical_key = float(np.median(key_typical)) if key_typical else 0.0
        if via_key is not None and c_key >= keyframe_drop * typical_key and len(key_typical) >= n_reference:
            via_prev, c_prev = None, 0.0  # a strong keyframe match needs no second opinion
        else:
            d, c_prev = _match(prev, prev_energy, cur, cur_energy, np.zeros(2), jump, fy, fx)
            via_prev = last + d if c_prev >= floor else None
        if via_key is not None and (via_prev is None or c_key >= c_prev
                                    or np.hypot(*(via_key - via_prev)) <= 1.5 / bin_px):
            tracked, c_track = via_key, c_key
        elif via_prev is not None:
            tracked, c_track = via_prev, c_prev
        else:
            tracked, c_track = None, 0.0
        fine, agree = cells.shift(g, band.noise, last if tracked is None else tracked, tol)
        if fine is not None and (tracked is None or np.hypot(*(fine - tracked)) <= 2.0 + 1.0 / bin_px):
            shifts[t], conf[t], source[t] = fine, agree, "cells"
        elif tracked is not None:
            shifts[t], conf[t], source[t] = tracked, c_track, "correlation"
        else:
            shifts[t], conf[t], ok[t], source[t] = last, 0.0, False, "held"
            continue
        # measured against the reference itself, where the frame stands (no error accumulates)
        a_fine = a if bin_fine == bin_px else _binned(data[t], bin_fine)
        gf = g if band_fine is band else band_fine.filtered(a_fine)
        start = shifts[t] * ratio
        for _ in range(4):  # a peak on the edge of the search: search again from there
            better, c_ref = _refine(g_ref_fine, gf, start, radius * ratio, radius_px=ratio)
            if better is None or np.abs(better - np.rint(start)).max() < ratio - 0.05:
                break
            start = better
        if better is not None and c_ref >= min_ncc:
            shifts[t] = better / ratio
        got = extents.shift(a_fine, shifts[t] * ratio, 0.3 / bin_fine)
        if got is not None and np.hypot(*(got[0] / ratio - shifts[t])) * bin_px <= 0.5 * cell_radius_px:
            change[t], change_var[t] = got[0] / ratio - shifts[t], max(got[1] * bin_fine**2, 0.02**2)
        accepted.append(c_track)
        if len(key_typical) < 2 * n_reference:
            key_typical.append(c_key)
        if c_key < keyframe_drop * float(np.median(key_typical)) or via_key is None:
            key, key_energy, key_shift, key_typical = cur, cur_energy, shifts[t].copy(), []
            n_key += 1
        prev, prev_energy = cur, cur_energy
    # the cells' extents against the reference. Their difference from stage 3 is stage 3's bias (it
    # follows the cells' change of shape) plus both measurements' frame-to-frame scatter: the bias
    # is its precision-weighted mean over the frames within EXTENT_FRAMES, and each frame takes the
    # extents' own difference in proportion to how little they scatter from frame to frame against
    # stage 3 (each measurement's scatter from its second differences, robustly: drift is smooth,
    # a jolt is one outlier), so neither measurement's scatter is kept where the other is steadier
    # and a jolt is not blurred; the whole is shrunk towards stage 3 by a prior SD of
    # EXTENT_PRIOR_PX for its bias (few or dim cells)
    valid = np.isfinite(change_var)
    weight = np.where(valid, 1.0 / change_var, 0.0)
    bias, precision = np.zeros_like(change), np.zeros(T)
    for t in np.flatnonzero(ok):
        near = slice(max(0, t - EXTENT_FRAMES), t + EXTENT_FRAMES + 1)
        precision[t] = weight[near].sum()
        if precision[t] > 0:
            bias[t] = (weight[near, None] * change[near]).sum(axis=0) / precision[t]
    own = _steadier(shifts[valid] + change[valid], shifts[valid])
    for t in np.flatnonzero(ok & (precision > 0)):
        mine = change[t] if valid[t] else bias[t]  # a frame without its own measurement takes the mean
        shifts[t] += (own * mine + (1 - own) * bias[t]) * EXTENT_PRIOR_PX**2 / (EXTENT_PRIOR_PX**2 + 1.0 / precision[t])
    for t in np.flatnonzero(~ok):  # frames nothing placed hold the previous frame's final shift
        shifts[t] = shifts[t - 1] if t else 0.0
    return Registration(shifts=shifts * bin_px, confidence=conf, registered=ok, source=source.astype(str),
                        cell_radius_px=float(cell_radius_px), n_cells=len(cells.ref), n_keyframes=n_key)


def estimate_shifts(data: np.ndarray, **kwargs) -> np.ndarray:
    """Displacement ``(dy, dx)`` (px) of every frame relative to the first frames; see
    :func:`register_stack` (which also gives each frame's confidence and unregistered frames)."""
    return register_stack(data, **kwargs).shifts
