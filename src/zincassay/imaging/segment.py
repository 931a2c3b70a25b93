"""Segment cells on the Fmax reference image (every loaded cell at its brightest).

Smoothing, background flattening, Otsu threshold, distance-transform watershed to split touching
cells, then per-object area and border checks. Objects failing a check are kept with a reason so
that the tables account for every object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.filters import gaussian, threshold_otsu
from skimage.segmentation import watershed

__all__ = ["Segmentation", "reference_image", "segment_cells"]


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
    """

    labels: np.ndarray
    area_px: np.ndarray
    centroid_y: np.ndarray
    centroid_x: np.ndarray
    reason: list[str]

    @property
    def n(self) -> int:
        return len(self.area_px)


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
    8 cell radii, on a copy block-averaged by half a cell radius, smoothed and resized back."""
    h, w = img.shape
    block = max(int(radius_px // 2), int(np.ceil(max(h, w) / 256)), 1)
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


def segment_cells(image: np.ndarray, area_limits_px: tuple[float, float], smooth_px: float = 1.0,
                  border_px: int = 4) -> Segmentation:
    """Segment bright cells in ``image`` (Y, X).

    Parameters
    ----------
    area_limits_px : (min, max)
        Objects outside these areas (px) get ``too_small`` / ``too_large``.
    smooth_px : float
        Gaussian sigma (px) before thresholding (at least a quarter of the smallest cell radius).
    border_px : int
        Objects with a pixel within this distance of the edge get ``touches_border`` (they can
        drift out of the field).
    """
    min_area, max_area = area_limits_px
    radius = max(np.sqrt(min_area / np.pi), 2.0)
    img = gaussian(np.asarray(image, dtype=np.float32), sigma=max(smooth_px, radius / 4), preserve_range=True)
    # flatten uneven illumination / tissue autofluorescence: a low percentile over ~8 cell radii,
    # computed on a block-averaged copy (fast) and interpolated back
    background = smooth_background(img, radius)
    flat = img - background
    # Otsu on a log scale: cells 2-10x brighter than others (over-loaded, saturating) must not pull
    # the threshold above the dimmer cells; never below 3 noise SDs of the background
    noise = 1.4826 * np.median(np.abs(flat - np.median(flat)))
    above = np.log1p(np.maximum(flat - np.median(flat), 0) / max(noise, 1e-6))
    level = max(np.expm1(threshold_otsu(above)) * max(noise, 1e-6), 3 * noise) + np.median(flat)
    mask = flat > level
    mask = _fill_small_holes(ndi.binary_opening(mask, iterations=1), min_area / 2)
    # each cell's outline at half the brightest value within about one cell radius: the edge of a
    # dim cell is found even beside a saturating neighbour, and touching cells of unequal
    # brightness come apart
    base = np.median(flat)
    rho = max(round(radius), 2)
    disk = np.hypot(*np.mgrid[-rho:rho + 1, -rho:rho + 1]) <= rho
    local_peak = ndi.maximum_filter(flat, footprint=disk)
    body = _fill_small_holes(mask & (flat - base >= 0.5 * (local_peak - base)), min_area / 2)
    # split touching cells along the necks of the distance transform
    dist = ndi.distance_transform_edt(body)
    objects, _ = ndi.label(body)
    peaks = peak_local_max(gaussian(dist, 0.7), min_distance=max(round(radius * 0.9), 2), labels=objects,
                           exclude_border=False)
    markers = np.zeros(mask.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = watershed(-dist, markers, mask=body)
    # drop specks (< a quarter of the minimum area): noise, not cells
    idx = np.arange(1, labels.max() + 1)
    area = ndi.sum_labels(np.ones_like(labels), labels, idx)
    keep = idx[area >= max(min_area / 4, 4)]
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
    reason = []
    for i in range(n):
        if on_edge[i + 1]:
            reason.append("touches_border")
        elif area[i] < min_area:
            reason.append("too_small")
        elif area[i] > max_area:
            reason.append("too_large")
        else:
            reason.append("")
    return Segmentation(labels=labels.astype(np.int32), area_px=area, centroid_y=com[:, 0],
                        centroid_x=com[:, 1], reason=reason)
