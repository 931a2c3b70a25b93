"""Segment cells on the Fmax reference image (every loaded cell at its brightest).

The scale (typical cell radius) comes from the image itself (scale selection, refined on the cell
mask); smoothing, background flattening, an Otsu threshold, cores at half the local peak split by
a distance-transform watershed, then each core grown over its cell's extent; per-object area and
border checks. Objects failing a check are kept with a reason so that the tables account for
every object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft
from scipy import ndimage as ndi
from skimage.filters import gaussian, threshold_otsu
from skimage.measure import regionprops
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

__all__ = ["Segmentation", "estimate_cell_radius", "reference_image", "segment_cells"]


@dataclass
class Segmentation:
    """Labels and per-object facts.

    Attributes
    ----------
    labels : ndarray (Y, X) int32
        0 = background, 1..N = objects, numbered in raster order of their first pixel.
    area_px : ndarray (N,)
    centroid_y, centroid_x : ndarray (N,) px in the reference frame
    reason : list of str, length N
        '' for a usable cell, else ``touches_border``, ``too_small`` or ``too_large``.
    radius_px : float
        Typical cell radius (px) the segmentation worked at.
    """

    labels: np.ndarray
    area_px: np.ndarray
    centroid_y: np.ndarray
    centroid_x: np.ndarray
    reason: list[str]
    radius_px: float = float("nan")

    @property
    def n(self) -> int:
        return len(self.area_px)


def estimate_cell_radius(image: np.ndarray, min_px: float = 1.0, max_px: float | None = None,
                         max_fraction: float = 1 / 6) -> float:
    """Typical radius (px) of the bright objects in ``image`` (Y, X), by scale selection.

    The scale-normalised Laplacian of Gaussian, ``-sigma^2 LoG``, responds most strongly to a disk
    of radius r at ``sigma = r / sqrt(2)`` (Lindeberg 1998); the scale whose 99.5th-percentile
    response is largest gives the radius. Touching cells can pull the answer towards the size of
    a cluster (up to about 2x); callers refine it on their own mask. Radii from ``min_px`` to
    ``max_px`` (default ``max_fraction`` of the shorter side) on a 2^(1/4) ladder; computed with
    FFTs of a copy binned so that the smallest radius is at least 2 px.
    """
    img = np.asarray(image, dtype=np.float32)
    hi = min(img.shape) * max_fraction if max_px is None else min(max_px, min(img.shape) * max_fraction)
    hi = max(hi, min_px)
    b = max(1, int(min_px // 2))
    if b > 1:
        h, w = img.shape[0] // b, img.shape[1] // b
        img = img[: h * b, : w * b].reshape(h, b, w, b).mean(axis=(1, 3))
    h, w = img.shape
    spec = sfft.rfft2(img - img.mean())
    f2 = (sfft.fftfreq(h)[:, None] ** 2 + sfft.rfftfreq(w)[None, :] ** 2).astype(np.float32)
    radii = min_px * 2 ** (np.arange(0, 60) / 4)
    radii = radii[radii <= hi * 1.0001]
    sigmas = radii / np.sqrt(2) / b
    response = [np.percentile(sfft.irfft2(spec * (4 * np.pi**2 * f2 * s**2 * np.exp(-2 * np.pi**2 * s**2 * f2)),
                                          s=(h, w)), 99.5) for s in sigmas]
    return float(radii[int(np.argmax(response))])


def _fill_small_holes(mask: np.ndarray, max_area: float) -> np.ndarray:
    """Fill holes smaller than ``max_area`` px (not the gaps enclosed by a ring of cells)."""
    holes, n = ndi.label(ndi.binary_fill_holes(mask) & ~mask)
    if n == 0:
        return mask
    size = np.bincount(holes.ravel())
    small = size <= max_area
    small[0] = False
    return mask | small[holes]


def smooth_background(img: np.ndarray, radius_px: float, percentile: float = 30.0) -> np.ndarray:
    """Slowly varying background of ``img`` (Y, X): the ``percentile`` over a window of about
    8 cell radii, on a copy block-averaged by a cell radius (at most 128 blocks a side), smoothed
    and resized back."""
    h, w = img.shape
    block = max(int(radius_px), int(np.ceil(max(h, w) / 128)), 1)
    hb, wb = max(h // block, 1), max(w // block, 1)
    small = img[: hb * block, : wb * block].reshape(hb, block, wb, block).mean(axis=(1, 3))
    size = max(2 * round(8 * radius_px / block) + 1, 3)
    low = ndi.percentile_filter(small, percentile, size=(min(size, 2 * hb + 1), min(size, 2 * wb + 1)), mode="reflect")
    low = ndi.gaussian_filter(low, sigma=max(size / 4, 1.0), mode="reflect")
    zoom = (h / low.shape[0], w / low.shape[1])
    return ndi.zoom(low, zoom, order=1, mode="nearest", grid_mode=True)[:h, :w].astype(np.float32)


def reference_image(data: np.ndarray, shifts: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Mean of ``frames`` after undoing their shifts (sub-pixel, linear interpolation); (Y, X) float32."""
    acc = np.zeros(data.shape[1:], dtype=np.float64)
    for t in frames:
        img = np.asarray(data[t], dtype=np.float32)
        acc += ndi.shift(img, -shifts[t], order=1, mode="nearest")
    return (acc / max(len(frames), 1)).astype(np.float32)


def _foreground(img0: np.ndarray, radius: float) -> tuple[np.ndarray, float, float, np.ndarray, np.ndarray]:
    """Smoothed, background-flattened image, its background level and noise SD, the cell mask and
    the slowly varying background itself."""
    img = gaussian(img0, sigma=max(0.7, radius / 4), preserve_range=True)
    # flatten uneven illumination / tissue autofluorescence: a low percentile over ~8 cell radii,
    # computed on a block-averaged copy (fast) and interpolated back
    background = smooth_background(img, radius)
    flat = img - background
    base = float(np.median(flat))
    noise = 1.4826 * float(np.median(np.abs(flat - base)))
    # Otsu on a log scale, with values clipped at twice the typical cell (the median of the clearly
    # bright pixels): cells 2-10x brighter than others (over-loaded, saturating) must not form a
    # class of their own and pull the threshold above the dimmer cells; never below 3 noise SDs
    signal = np.maximum(flat - base, 0)
    bright = signal[signal > 6 * noise]
    if len(bright):
        signal = np.minimum(signal, 2 * float(np.median(bright)))
    above = np.log1p(signal / max(noise, 1e-6))
    level = max(np.expm1(threshold_otsu(above)) * max(noise, 1e-6), 3 * noise) + base
    mask = _fill_small_holes(ndi.binary_opening(flat > level, iterations=1), np.pi * radius**2 / 2)
    return flat, base, noise, mask, background


def _split_large(cores: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Split cores that are larger than 1.5x the median core and not convex (solidity below 0.95),
    or larger than 1.75x: cells joined along wide necks, e.g. a chain of overlapping cells. Each is
    cut into as many parts as typical cells fit (area / median core) by k-means on the pixel
    positions (started from the distance transform's maximum, then the farthest pixels) and a
    watershed on the distance transform from the k centres."""
    n = int(cores.max())
    if n < 3:
        return cores
    area = np.bincount(cores.ravel(), minlength=n + 1)[1:]
    typical = float(np.median(area))
    big = [p.label for p in regionprops(cores)
           if p.area > 1.75 * typical or (p.area > 1.5 * typical and p.solidity < 0.95)]
    out = cores.copy()
    nxt = n + 1
    for lab in big:
        k = max(2, round(area[lab - 1] / typical))
        region = cores == lab
        sl = ndi.find_objects(region.astype(np.int32))[0]
        sub = region[sl]
        pts = np.argwhere(sub).astype(np.float64)
        centres = [pts[int(np.argmax(dist[sl][sub]))]]
        for _ in range(k - 1):  # farthest-point start
            d2 = np.min([((pts - c) ** 2).sum(axis=1) for c in centres], axis=0)
            centres.append(pts[int(np.argmax(d2))])
        centres = np.array(centres)
        for _ in range(20):  # Lloyd iterations
            owner = np.argmin(((pts[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
            new = np.array([pts[owner == j].mean(axis=0) if (owner == j).any() else centres[j] for j in range(k)])
            if np.allclose(new, centres, atol=0.05):
                break
            centres = new
        mk = np.zeros(sub.shape, dtype=np.int32)
        idx = np.clip(np.rint(centres).astype(int), 0, np.array(sub.shape) - 1)
        for j, (y, x) in enumerate(idx):
            if sub[y, x]:
                mk[y, x] = j + 1
        if (mk > 0).sum() < 2:
            continue
        parts = watershed(-dist[sl], mk, mask=sub)
        view = out[sl]
        for j in np.unique(parts[parts > 1]):
            view[parts == j] = nxt
            nxt += 1
    return out


def _grown(img0: np.ndarray, cores: np.ndarray, radius: float, extent_fraction: float, flat: np.ndarray,
           base: float, background: np.ndarray) -> np.ndarray:
    """``cores`` grown over each cell's extent in ``img0``: signal above ``extent_fraction`` of the
    core's own peak (or 3 noise SD), within half a radius of the core, by watershed on the
    intensity (``flat``, ``base`` and ``background`` from :func:`_foreground`)."""
    core_peak = ndi.maximum(flat, cores, np.arange(cores.max() + 1)) if cores.max() else np.zeros(1)
    near = ndi.distance_transform_edt(cores == 0) <= max(0.5 * radius, 1.5)
    nearest = ndi.distance_transform_edt(cores == 0, return_distances=False, return_indices=True)
    owner = cores[nearest[0], nearest[1]]
    # on a lightly smoothed copy, so that the extent is not widened by the smoothing of the cores
    fine = gaussian(img0, sigma=0.7, preserve_range=True) - background
    fine_base = float(np.median(fine))
    fine_noise = 1.4826 * float(np.median(np.abs(fine - fine_base)))
    floor = np.maximum(3 * fine_noise, extent_fraction * (core_peak[owner] - base)) + fine_base
    extent = (cores > 0) | (near & (fine > floor) & (owner > 0))
    return watershed(-flat, cores, mask=extent)


def grow_cells(image: np.ndarray, labels: np.ndarray, radius_px: float, extent_fraction: float = 0.15) -> np.ndarray:
    """Cells ``labels`` (Y, X) int grown over where each also extends in another ``image`` (Y, X),
    e.g. the mean of the baseline frames when ``labels`` come from the Fmax reference: a cell that
    rounds up after pyrithione covered more of the dish before it (its dye conserved, the light
    outside its Fmax extent is its own). Each cell keeps its pixels and takes those within half a
    radius (``radius_px``, px) where ``image`` stands above ``extent_fraction`` of the cell's own peak
    in it (or 3 noise SD), as :func:`segment_cells` grows its cores."""
    img0 = np.asarray(image, dtype=np.float32)
    radius = max(float(radius_px), 1.5)
    flat, base, _noise, _mask, background = _foreground(img0, radius)
    return _grown(img0, np.asarray(labels), radius, extent_fraction, flat, base, background).astype(np.int32)


def segment_cells(image: np.ndarray, area_limits_px: tuple[float, float], *, radius_px: float | None = None,
                  border_px: int = 4, extent_fraction: float = 0.15) -> Segmentation:
    """Segment bright cells in ``image`` (Y, X), each over its whole extent.

    Parameters
    ----------
    image : ndarray (Y, X)
        The Fmax reference (every loaded cell at its brightest).
    area_limits_px : (min, max)
        Objects whose extent (px) is outside these get ``too_small`` / ``too_large``; they do not
        steer the segmentation (its scale comes from ``radius_px``).
    radius_px : float, optional
        Typical cell radius (px); estimated from ``image`` when not given
        (:func:`estimate_cell_radius`), then refined on the cell mask (median inscribed radius).
    border_px : int
        Objects with a pixel within this distance of the edge get ``touches_border``.
    extent_fraction : float
        A cell extends to where its signal falls below this fraction of its own peak (above the
        flattened background) or into noise (3 SD).

    Notes
    -----
    Steps: smoothing (a quarter radius), background flattening (a low percentile over ~8 radii),
    Otsu on a log scale (never below 3 noise SD) for the foreground; each cell's *core* is where
    the signal exceeds half the brightest value within one radius, so a dim cell beside a
    saturating one keeps its shape and touching cells of unequal brightness come apart; cores are
    split along the necks of their distance transform (watershed); each core then grows over the
    cell's *extent* (signal above ``extent_fraction`` of the local peak, within half a radius of
    the core), so areas and measurements cover the whole cell, not its bright middle.
    """
    img0 = np.asarray(image, dtype=np.float32)
    min_area, max_area = area_limits_px
    radius = float(radius_px) if radius_px else estimate_cell_radius(
        img0, min_px=max(1.0, 0.5 * np.sqrt(min_area / np.pi)), max_px=np.sqrt(max_area / np.pi))
    radius = max(radius, 1.5)
    # fit the scale globally, then refine: the mask at the estimated scale gives the median of the
    # local maxima of its distance transform (each cell of a cluster has its own, near its radius);
    # when that is much smaller (dense small cells read as clusters), redo the mask at that scale
    for _ in range(4):
        flat, base, _noise, mask, background = _foreground(img0, radius)
        dist0 = ndi.distance_transform_edt(mask)
        # every local maximum of the distance transform (each cell of a cluster has its own)
        ridge = (dist0 == ndi.maximum_filter(dist0, size=3)) & (dist0 >= 1.5)
        inscribed = dist0[ridge]
        refined = float(np.median(inscribed)) + 0.5 if len(inscribed) else radius
        if refined >= 0.7 * radius or refined < 1.5:
            radius = min(radius, max(refined, 0.7 * radius))
            break
        radius = refined
    min_obj = max(np.pi * radius**2 / 8, 3)
    rho = max(round(radius / 2), 2)
    disk = np.hypot(*np.mgrid[-rho:rho + 1, -rho:rho + 1]) <= rho
    local_peak = ndi.maximum_filter(flat, footprint=disk)
    body = _fill_small_holes(mask & (flat - base >= 0.5 * (local_peak - base)), np.pi * radius**2 / 2)
    # split touching cells along the necks of the distance transform: one seed per maximum that
    # stands at least a tenth of a radius above the neck joining it to a higher one (h-maxima)
    dist = gaussian(ndi.distance_transform_edt(body), 0.7)
    markers, _ = ndi.label(h_maxima(dist, max(0.4, 0.1 * radius)) & body)
    cores = watershed(-dist, markers, mask=body)
    cores = _split_large(cores, dist)
    labels = _grown(img0, cores, radius, extent_fraction, flat, base, background)
    # drop specks (< 1/8 of a typical cell): noise, not cells
    idx = np.arange(1, labels.max() + 1)
    area = ndi.sum_labels(np.ones_like(labels), labels, idx)
    keep = idx[area >= min_obj]
    # number the objects in raster order of their first pixel
    flat_idx = np.flatnonzero(labels)
    first = np.full(labels.max() + 1, labels.size, dtype=np.int64)
    np.minimum.at(first, labels.ravel()[flat_idx], flat_idx)
    keep = keep[np.argsort(first[keep], kind="stable")]
    relabel = np.zeros(labels.max() + 1, dtype=np.int32)
    relabel[keep] = np.arange(1, len(keep) + 1)
    labels = relabel[labels]
    n = len(keep)
    idx = np.arange(1, n + 1)
    area = ndi.sum_labels(np.ones_like(labels), labels, idx).astype(np.int64)
    com = np.array(ndi.center_of_mass(np.ones_like(labels), labels, idx)).reshape(-1, 2)
    edge = np.zeros(labels.shape, dtype=bool)
    edge[:border_px], edge[-border_px:], edge[:, :border_px], edge[:, -border_px:] = True, True, True, True
    on_edge = np.zeros(n + 1, dtype=bool)
    on_edge[np.unique(labels[edge])] = True
    reason = np.select([on_edge[1:], area < min_area, area > max_area], ["touches_border", "too_small", "too_large"], "")
    return Segmentation(labels=labels.astype(np.int32), area_px=area, centroid_y=com[:, 0],
                        centroid_x=com[:, 1], reason=[str(r) for r in reason], radius_px=radius)
