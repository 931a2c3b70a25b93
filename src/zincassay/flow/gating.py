"""Automatic, inspectable gating: lymphocytes (FSC/SSC), singlets (FSC-A/FSC-H), live cells.

Every gate returns its boolean mask and the parameters that define it, so figures can draw it
and ``gates.tsv`` can report the events it kept.

- Lymphocytes: the main dense population in log10(FSC, SSC), found at the peak of a smoothed 2-D
  histogram and described by a robust mean/covariance (iteratively trimmed at the 99 % chi-square
  contour); the gate is the ellipse holding ``coverage`` of that population.
- Singlets: FSC-A/FSC-H within ``median +/- 4 robust SD`` of the lymphocytes (doublets have a
  larger area for their height), or a manual band.
- Live: below the valley between the viability dye's negative and positive modes (log10), or a
  manual threshold; with no positive mode, ``median + 4 robust SD`` of the negative mode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
from scipy import ndimage

from zincassay.errors import ZincassayError
from zincassay.flow.transforms import safe_log10
from zincassay.io.fcs import FCSData

__all__ = ["Gate", "GatingResult", "ScatterChannels", "find_scatter_channels", "gate_events"]


class GatingError(ZincassayError):
    """Gating cannot proceed (no scatter channels, too few events)."""


@dataclass
class ScatterChannels:
    fsc_a: str | None
    fsc_h: str | None
    ssc: str | None

    @property
    def fsc(self) -> str | None:
        return self.fsc_a or self.fsc_h


@dataclass
class Gate:
    """One gate: its name, events in and kept, its parameters, and a note (e.g. why skipped)."""

    name: str
    events_in: int
    events_kept: int
    params: dict = field(default_factory=dict)
    note: str = ""


@dataclass
class GatingResult:
    """The combined mask, every gate, the scatter channels used, and each automatic gate's margins.

    ``margins[name]`` is, per event, how far inside that gate's boundary it sits (log10 decades;
    negative = outside, -inf = outside whatever the boundary), and ``margin_range[name]`` how far
    a reasonable analyst might move that boundary (decades). :meth:`perturbed_mask` draws one such
    set of boundaries (for intervals that include the gate choice).
    """

    mask: np.ndarray
    gates: list[Gate]
    channels: ScatterChannels
    margins: dict[str, np.ndarray] = field(default_factory=dict)
    margin_range: dict[str, float] = field(default_factory=dict)

    @property
    def events_gated(self) -> int:
        return int(self.mask.sum())

    def perturbed_mask(self, rng: np.random.Generator) -> np.ndarray:
        """The mask with every automatic gate boundary moved by a uniform draw within its range
        (gates set by hand, with range 0, stay where they are)."""
        if not self.margins:
            return self.mask
        out = np.ones(self.mask.size, bool)
        for name, m in self.margins.items():
            r = self.margin_range.get(name, 0.0)
            out &= m + (rng.uniform(-r, r) if r > 0 else 0.0) >= 0
        return out


_FSC = re.compile(r"^(fsc|fs|forward)(?![a-z])", re.I)
_SSC = re.compile(r"^(ssc|ss|side)(?![a-z])", re.I)


def _kind(name: str) -> str:
    n = name.upper()
    if re.search(r"[-_ ]?A$|AREA|\bINT\b", n) and not n.endswith("LIN"):
        return "A"
    if re.search(r"[-_ ]?H$|HEIGHT|PEAK|\bLIN\b|LIN$", n):
        return "H"
    return "?"


def find_scatter_channels(data: FCSData, overrides: dict | None = None) -> ScatterChannels:
    """Scatter channels by name (FSC-A/FSC-H/SSC-A, FSC-H/SSC-H, FS Lin/SS Lin, ...), or as configured."""
    overrides = overrides or {}
    names = data.channel_names
    fsc = [n for n in names if _FSC.match(n.strip()) and "width" not in n.lower() and not n.upper().endswith("-W")]
    ssc = [n for n in names if _SSC.match(n.strip()) and "width" not in n.lower() and not n.upper().endswith("-W")]
    fsc_a = next((n for n in fsc if _kind(n) == "A"), None)
    fsc_h = next((n for n in fsc if _kind(n) == "H"), None)
    if fsc_a is None and fsc_h is None and fsc:
        fsc_a = fsc[0]
    ssc_pick = next((n for n in ssc if _kind(n) == "A"), None) or next((n for n in ssc if _kind(n) == "H"), None)
    ssc_pick = ssc_pick or (ssc[0] if ssc else None)
    out = ScatterChannels(fsc_a, fsc_h, ssc_pick)
    for key in ("fsc_a", "fsc_h", "ssc"):
        if overrides.get(key):
            data.channel_index(overrides[key])  # raises listing the channels
            setattr(out, key, overrides[key])
    return out


def _grid_index(v: np.ndarray, lo: float, step: float, n: int) -> np.ndarray:
    return np.clip(((v - lo) / step).astype(np.int64), 0, n - 1)


def _merge_basins(hs: np.ndarray, labels: np.ndarray, n_lab: int, saddle_ratio: float) -> np.ndarray:
    """Merge watershed basins whose saddle is higher than ``saddle_ratio`` x the lower of the two
    peaks (no real valley between them): persistence merging, highest saddles first."""
    peak = np.zeros(n_lab + 1)
    np.maximum.at(peak, labels.ravel(), hs.ravel())
    saddles: dict[tuple[int, int], float] = {}
    for a, b, va, vb in ((labels[1:, :], labels[:-1, :], hs[1:, :], hs[:-1, :]),
                         (labels[:, 1:], labels[:, :-1], hs[:, 1:], hs[:, :-1])):
        diff = a != b
        if not diff.any():
            continue
        la, lb, v = a[diff], b[diff], np.minimum(va[diff], vb[diff])
        lo, hi = np.minimum(la, lb), np.maximum(la, lb)
        key = lo.astype(np.int64) * (n_lab + 1) + hi
        order = np.lexsort((-v, key))
        key, v = key[order], v[order]
        first = np.r_[True, key[1:] != key[:-1]]
        for k, val in zip(key[first], v[first], strict=True):
            saddles[(int(k // (n_lab + 1)), int(k % (n_lab + 1)))] = float(val)
    parent = np.arange(n_lab + 1)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return int(i)

    top = peak.copy()  # the highest peak of each merged group, kept at its root
    for (a, b), val in sorted(saddles.items(), key=lambda kv: -kv[1]):
        ra, rb = root(a), root(b)
        if ra == rb:
            continue
        if val >= saddle_ratio * min(top[ra], top[rb]):
            keep, drop = (ra, rb) if top[ra] >= top[rb] else (rb, ra)
            parent[drop] = keep
    roots = np.array([root(i) for i in range(n_lab + 1)])
    return roots[labels]


#: Peaks of scatter populations further apart than this in log10 FSC belong to different kinds of
#: event (debris vs cells): blasts are <= 2x (0.3 decades) resting cells, dead cells ~0.2 below.
DEBRIS_GAP_LOG10 = 0.4
#: Cells below the lowest cell population's peak by more than this (log10 FSC) are cut as debris.
CELL_FLOOR_LOG10 = 0.6
#: A population this much lower in FSC and higher in SSC than a bigger cell population is dead cells.
DEAD_FSC_LOG10 = 0.12
DEAD_SSC_LOG10 = 0.08
#: A population narrower than this (robust SD, log10) in both FSC and SSC is a bead population.
BEAD_MAX_SD_LOG10 = 0.025
#: How far a reasonable analyst might move each automatic boundary (for intervals that include the
#: gate choice, :meth:`GatingResult.perturbed_mask`): the scatter floor and the viability
#: threshold in decades, the singlet band as a share of its half-width.
SCATTER_FLOOR_RANGE_LOG10 = 0.1
SINGLET_BAND_RANGE = 0.3
VIABILITY_RANGE_LOG10 = 0.15
#: Live and dead cells' viability-dye modes are at least this far apart (log10; typically 1-2 decades).
VIABILITY_MIN_GAP_LOG10 = 0.5


def polygon_mask(poly: np.ndarray, x: np.ndarray, y: np.ndarray, region: np.ndarray, grid: tuple, flat: np.ndarray
                 ) -> np.ndarray:
    """Events inside ``poly`` (vertices (n, 2) in the coordinates of ``x``, ``y``).

    ``poly`` is the 0.5 contour of the binary ``region`` on the histogram grid ``(lo, step, n)``:
    bins whose 3x3 neighbourhood is all inside (outside) the region are entirely inside (outside)
    the polygon, so only the events of the bins along its edge need the exact test.
    """
    if poly.shape[0] < 3:
        return np.zeros(x.size, bool)
    from matplotlib.path import Path as _Path

    inner = ndimage.binary_erosion(region, structure=np.ones((3, 3)), border_value=0)
    outer = ~ndimage.binary_dilation(region, structure=np.ones((3, 3)))
    state = np.where(inner, 1, np.where(outer, 0, 2)).ravel()[flat]  # 1 in, 0 out, 2 test
    keep = state == 1
    edge = np.flatnonzero(state == 2)
    if edge.size:
        keep[edge] = _Path(poly).contains_points(np.column_stack([x[edge], y[edge]]))
    return keep


def scatter_gate(log_fsc: np.ndarray, log_ssc: np.ndarray, *, cut_dead: bool = True, populations: str = "all",
                 resting_log10: tuple[float, float] | None = None) -> tuple[np.ndarray, dict]:
    """Keep every cell population in log10 FSC/SSC; cut debris and beads by their own populations.

    The smoothed 2-D histogram is split into populations at its density valleys (watershed from
    the local maxima, basins without a valley between them merged). Populations are then
    classified: **beads** are populations narrower than ``BEAD_MAX_SD_LOG10`` decades in both
    axes that hold under half of the events, beside a cell population of >= 5 %; **debris** are the populations below the largest gap (>= ``DEBRIS_GAP_LOG10``) between
    the FSC peaks of the substantial populations (>= 1 % of events), and any event more than
    ``CELL_FLOOR_LOG10`` below the lowest cell population's peak; with ``cut_dead``, **dead
    cells** are populations lower in FSC (by ``DEAD_FSC_LOG10``) and higher in SSC (by
    ``DEAD_SSC_LOG10``) than a cell population at least as big (blasts move up in both). Use it
    only without a viability dye: dead blasts sit at the FSC of live resting cells, so the dye, not
    the scatter, tells them apart. Everything else is kept, so
    resting cells, blasts (up to ~2x their FSC) and the thin tails around them are kept alike; the
    gate's edges are the valleys towards debris, dead cells and beads, not a contour of the densest
    cluster.

    Parameters
    ----------
    log_fsc, log_ssc : ndarray (n_events,)
        log10 forward and side scatter.
    cut_dead : bool
        Cut dead-cell populations by their scatter (when no viability dye is gated).
    populations : {"all", "densest"}
        Keep every cell population (stimulated T cells: resting cells and blasts) or only the one
        with the densest peak (resting lymphocytes, the tightest cluster, among monocytes and
        granulocytes, which look like blasts).
    resting_log10 : (fsc, ssc), optional
        Position of resting cells (e.g. the unstimulated control's main population): the
        population holding it is a cell population even when it is small.

    Returns
    -------
    keep : ndarray (n_events,) bool
    params : dict with ``polygons_log10`` (a list holding the one polygon, log10 FSC/SSC, that is
        the gate: the outline of the largest connected kept region, holes filled; an event is kept
        when it lies inside), ``populations`` (peak, share of events and kind of each population)
        and ``fsc_floor_log10``.
    """
    from skimage.measure import find_contours
    from skimage.segmentation import watershed

    n = log_fsc.size
    nb = int(np.clip(np.sqrt(n) / 2, 48, 128))
    sub = slice(None, None, max(1, n // 200_000))  # ranges and spreads need no more than 200,000 events
    fs, ss = log_fsc[sub], log_ssc[sub]
    lo = np.array([np.quantile(fs, 0.0005), np.quantile(ss, 0.0005)]) - 0.1
    hi = np.array([np.quantile(fs, 0.9995), np.quantile(ss, 0.9995)]) + 0.1
    step = (hi - lo) / nb
    ix = _grid_index(log_fsc, lo[0], step[0], nb)
    iy = _grid_index(log_ssc, lo[1], step[1], nb)
    flat = ix * nb + iy
    h = np.bincount(flat, minlength=nb * nb).reshape(nb, nb).astype(float)
    hs = ndimage.gaussian_filter(h, 1.2 * 0.02 / step.mean() if n > 20000 else 1.5)
    from skimage.feature import peak_local_max

    peaks = peak_local_max(hs, min_distance=2, threshold_abs=max(hs.max() * 1e-3, 1e-9), exclude_border=False)
    markers = np.zeros(hs.shape, dtype=np.int64)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = watershed(-hs, markers)
    labels = _merge_basins(hs, labels, len(peaks), saddle_ratio=0.6)
    ev_lab = labels.ravel()[flat]
    cx = lo[0] + (np.arange(nb) + 0.5) * step[0]
    cy = lo[1] + (np.arange(nb) + 0.5) * step[1]
    pops = []
    for lab in np.unique(labels):
        m = labels == lab
        mass = h[m].sum()
        if mass <= 0:
            continue
        i, j = np.unravel_index(np.argmax(np.where(m, hs, -1)), hs.shape)
        sel = ev_lab[sub] == lab
        fx, fy = fs[sel], ss[sel]
        sd = [1.4826 * float(np.median(np.abs(v - np.median(v)))) for v in (fx, fy)] if fx.size >= 20 else [1.0, 1.0]
        pops.append({"label": int(lab), "peak_log10": [float(cx[i]), float(cy[j])], "share": float(mass / n),
                     "sd_log10": sd, "kind": "cells", "density": float(hs[i, j])})
    for p in pops:  # beads: a tight minority beside the cells (a file of one tight population is cells)
        if 0.002 <= p["share"] < 0.5 and max(p["sd_log10"]) < BEAD_MAX_SD_LOG10:
            p["kind"] = "beads"
    if not any(p["kind"] == "cells" and p["share"] >= 0.05 for p in pops):
        for p in pops:
            if p["kind"] == "beads":
                p["kind"] = "cells"
    big = sorted((p for p in pops if p["kind"] == "cells" and p["share"] >= 0.01), key=lambda p: p["peak_log10"][0])
    if resting_log10 is not None:
        r = labels[_grid_index(np.array([resting_log10[0]]), lo[0], step[0], nb)[0],
                   _grid_index(np.array([resting_log10[1]]), lo[1], step[1], nb)[0]]
        big += [p for p in pops if p["label"] == r and p not in big]
        big.sort(key=lambda p: p["peak_log10"][0])
    cut = -np.inf
    if len(big) > 1:
        fsc_peaks = np.array([p["peak_log10"][0] for p in big])
        gaps = np.diff(fsc_peaks)
        k = int(np.argmax(gaps))
        if gaps[k] >= DEBRIS_GAP_LOG10:
            cut = float(fsc_peaks[k] + gaps[k] / 2)
    for p in pops:
        if p["kind"] == "cells" and p["peak_log10"][0] < cut:
            p["kind"] = "debris"
    # dead cells: smaller (FSC down) and more granular (SSC up) than a cell population at least as big;
    # blasts move the other way (FSC and SSC up), resting cells sit down-left of blasts
    cells = [p for p in pops if p["kind"] == "cells" and p["share"] >= 0.01] if cut_dead else []
    for p in cells:
        if any(q is not p and q["share"] >= p["share"] and p["peak_log10"][0] <= q["peak_log10"][0] - DEAD_FSC_LOG10
               and p["peak_log10"][1] >= q["peak_log10"][1] + DEAD_SSC_LOG10 for q in cells):
            p["kind"] = "dead"
    cell_peaks = [p["peak_log10"][0] for p in big if p["kind"] == "cells"]
    floor = (min(cell_peaks) if cell_peaks else float(np.median(log_fsc))) - CELL_FLOOR_LOG10
    cell_pops = [p for p in pops if p["kind"] == "cells"]
    if populations == "densest" and cell_pops:  # lymphocytes: the tightest cluster among leukocytes
        # not a pile-up at the top of a scatter scale (saturated granulocytes look dense)
        top = (float(log_fsc.max()) - 2 * step[0], float(log_ssc.max()) - 2 * step[1])
        on_scale = [p for p in cell_pops if p["peak_log10"][0] < top[0] and p["peak_log10"][1] < top[1]] or cell_pops
        densest = max(on_scale, key=lambda p: p["density"])
        for p in cell_pops:
            if p is not densest:
                p["kind"] = "other cells"
        cell_pops = [densest]
    kept_labels = np.array([p["label"] for p in cell_pops])
    kept_bins = np.isin(labels, kept_labels) & (cx[:, None] >= floor)
    # the gate is one polygon (so it can be written as GatingML and redrawn in FlowJo): the outline
    # of the largest connected kept region, holes filled
    comp, n_comp = ndimage.label(kept_bins, structure=np.ones((3, 3)))
    if n_comp > 1:
        mass = np.bincount(comp.ravel(), weights=h.ravel(), minlength=n_comp + 1)
        mass[0] = -1
        kept_bins = comp == int(np.argmax(mass))
    kept_bins = ndimage.binary_fill_holes(kept_bins)
    contours = find_contours(np.pad(kept_bins.astype(float), 1), 0.5)
    c = max(contours, key=len) if contours else np.zeros((0, 2))
    poly = np.round(np.column_stack([lo[0] + (c[:, 0] - 0.5) * step[0], lo[1] + (c[:, 1] - 0.5) * step[1]]), 6)
    keep = polygon_mask(poly, log_fsc, log_ssc, kept_bins, (lo, step, nb), flat)
    polys = [poly.tolist()]
    for p in pops:
        p.pop("label")
        p.pop("density")
    populations = sorted((p for p in pops if p["share"] >= 0.005), key=lambda p: -p["share"])
    return keep, {"polygons_log10": polys, "populations": populations, "fsc_floor_log10": float(floor)}


def singlet_gate(fsc_a: np.ndarray, fsc_h: np.ndarray, within: np.ndarray, band: list[float] | None
                 ) -> tuple[np.ndarray, dict, np.ndarray]:
    """Singlets: FSC-A/FSC-H close to the singlet trend at the event's size, or in a manual band.

    Bigger cells (blasts) have wider pulses, so the singlet ratio grows with FSC-H; a band of fixed
    ratio would keep small cells and drop blasts. The trend is a robust line of log10(FSC-A/FSC-H)
    against log10 FSC-H (up to 50,000 events in ``within``; least squares on the events within
    4 robust SD, iterated); singlets lie from 8 robust SD below it to 6 above (doublets sit
    ~0.2-0.3 decades above; below the trend the band is wider, as cells of different sizes share
    an FSC-H there: dead blasts beside live resting cells).

    Parameters
    ----------
    fsc_a, fsc_h : ndarray (n_events,), linear.
    within : ndarray (n_events,) bool; events the trend is learnt from.
    band : [low, high] manual FSC-A/FSC-H band, or None.

    Returns
    -------
    keep : ndarray (n_events,) bool
    params : dict (the trend and band, or the manual band)
    margin : ndarray (n_events,) float32, decades inside the band (negative outside; +1/-inf for a
        manual band, which is not moved)
    """
    fa = np.asarray(fsc_a, np.float64)
    fh = np.asarray(fsc_h, np.float64)
    if band is not None:
        ratio = fa / np.maximum(fh, 1e-9)
        keep = (ratio >= band[0]) & (ratio <= band[1])
        return keep, {"ratio_low": float(band[0]), "ratio_high": float(band[1])}, \
            np.where(keep, 1.0, -np.inf).astype(np.float32)
    lh = safe_log10(fh)
    lr = safe_log10(fa) - lh
    idx = np.flatnonzero(within & np.isfinite(lr))
    idx = idx[:: max(1, idx.size // 50_000)]  # the trend needs no more
    x, y = lh[idx], lr[idx]
    # robust line: least squares on the events within 4 robust SD of the current line (doublets,
    # ~0.25 decades above, never take part)
    coef = np.array([0.0, float(np.median(y))])
    resid = y - coef[1]
    sd = max(1.4826 * float(np.median(np.abs(resid))), 1e-3)
    for _ in range(6):
        core = np.abs(resid) < 4 * sd
        if core.sum() < 20:
            break
        coef = np.polyfit(x[core], y[core], 1)
        resid = y - np.polyval(coef, x)
        sd = max(1.4826 * float(np.median(np.abs(resid[core]))), 1e-3)
    lo, hi = -8 * sd, 6 * sd
    off = lr - (coef[0] * lh + coef[1])
    margin = np.minimum(off - lo, hi - off).astype(np.float32)
    return margin >= 0, {"trend_slope": float(coef[0]), "trend_intercept_log10": float(coef[1]),
                         "band_log10": [lo, hi]}, margin


def viability_threshold_from(values: np.ndarray) -> float:
    """Linear threshold between the negative (live) and positive (dead) modes of a viability dye.

    Modes are the peaks of the smoothed log10 histogram that stand out from the valleys beside
    them (the valley below 2/3 of the lower peak). Live cells can form several modes (bigger
    cells, blasts, stain brighter; over-compensation pushes a subset down), and a culture may hold
    more dead cells than live ones, so neither the tallest nor the dimmest mode is taken for "the"
    negative one: the threshold is the valley across the widest gap between neighbouring modes,
    when that gap is >= ``VIABILITY_MIN_GAP_LOG10`` decades and >= 0.5 % of events lie above it
    (dead cells stain 1-2 decades brighter). Without such a gap (no dead mode), the median + 4
    robust SD (log10) of all events. Compensated values at or below 1 (over-compensated live
    cells) all land on log10(1) = 0; they are dye-negative, not a mode of their own, so they are
    left out of the histogram (they stay below the threshold).
    """
    lv = safe_log10(values)
    above = lv[lv > 0.0]
    if above.size >= 50:
        lv = above
    lo, hi = np.quantile(lv[:: max(1, lv.size // 200_000)], [0.001, 0.999])
    hist, edges = np.histogram(lv, bins=128, range=(lo, hi + 1e-9))
    smooth = ndimage.gaussian_filter1d(hist.astype(float), 2.0)
    centers = (edges[:-1] + edges[1:]) / 2
    padded = np.r_[-1.0, smooth, -1.0]
    peaks = [k for k in range(smooth.size) if padded[k + 1] > padded[k] and padded[k + 1] >= padded[k + 2]
             and smooth[k] >= 0.005 * smooth.max()]
    modes: list[int] = []
    for k in peaks:  # merge peaks without a real valley between them into the taller one
        if modes and smooth[modes[-1] : k + 1].min() * 1.5 >= min(smooth[modes[-1]], smooth[k]):
            if smooth[k] > smooth[modes[-1]]:
                modes[-1] = k
            continue
        modes.append(k)
    best = None
    for a, b in pairwise(modes):
        valley = a + int(np.argmin(smooth[a : b + 1]))
        gap = centers[b] - centers[a]
        if gap >= VIABILITY_MIN_GAP_LOG10 and hist[valley:].sum() >= 0.005 * hist.sum() and (best is None or gap > best[0]):
            best = (gap, valley)
    if best is not None:
        return float(10 ** centers[best[1]])
    med = float(np.median(lv))
    sd = 1.4826 * float(np.median(np.abs(lv - med)))
    return float(10 ** (med + 4 * sd))


def gate_events(
    data: FCSData, *, gating: str = "auto", scatter: ScatterChannels | None = None,
    singlet_ratio: tuple[float, float] | None = None,
    viability_channel: str | None = None, viability_threshold: float | None = None,
    scatter_populations: str = "all",
) -> GatingResult:
    """Apply the scatter ("lymphocytes"), singlet and live gates to ``data.events`` (compensated values).

    Parameters
    ----------
    data : FCSData
        The events (linear, compensated when ``data.compensation`` says so) and their channels.
    gating : {"auto", "none"}
        ``none`` keeps every event (one ``all_events`` gate).
    scatter : ScatterChannels, optional
        Channel names that override the ones found by name (None entries are found by name).
    singlet_ratio : (low, high), optional
        Manual band of FSC-A/FSC-H kept as singlets; None = the singlet trend +8/-6 robust SD
        (:func:`singlet_gate`).
    viability_channel : str, optional
        Viability-dye channel ($PnN or $PnS); dead cells are bright. None = no live gate.
    viability_threshold : float, optional
        Manual viability threshold (linear units); None = the valley across the widest gap between
        the dye's modes.
    scatter_populations : {"all", "densest"}
        Which cell populations the scatter gate keeps (:func:`scatter_gate`): every one (the CFSE
        assay: blasts must stay) or the densest (resting lymphocytes among other leukocytes).

    Returns
    -------
    GatingResult
        With each automatic gate's per-event margins, for intervals that include the gate choice.
    """
    events = data.events
    n = events.shape[0]
    mask = np.ones(n, dtype=bool)
    gates: list[Gate] = []
    margins: dict[str, np.ndarray] = {}
    ranges: dict[str, float] = {}
    overrides = {} if scatter is None else {k: getattr(scatter, k) for k in ("fsc_a", "fsc_h", "ssc")}
    scatter = find_scatter_channels(data, overrides)
    if gating == "none":
        gates.append(Gate("all_events", n, n, note="gating: none"))
        return GatingResult(mask, gates, scatter)
    if n < 50:
        raise GatingError(f"{data.path}: only {n} events; at least 50 are needed to gate and analyse a tube "
                          "(was the tube empty, or the acquisition stopped early?)")
    if scatter.fsc and scatter.ssc:
        fsc = events[:, data.channel_index(scatter.fsc)]
        ssc = events[:, data.channel_index(scatter.ssc)]
        lf = safe_log10(fsc)
        keep, params = scatter_gate(lf, safe_log10(ssc), cut_dead=not viability_channel,
                                    populations=scatter_populations)
        params.update(fsc=scatter.fsc, ssc=scatter.ssc)
        gates.append(Gate("lymphocytes", int(mask.sum()), int((mask & keep).sum()), params))
        mask &= keep
        margins["lymphocytes"] = np.where(keep, lf - params["fsc_floor_log10"], -np.inf).astype(np.float32)
        ranges["lymphocytes"] = SCATTER_FLOOR_RANGE_LOG10
    else:
        gates.append(Gate("lymphocytes", n, n,
                          note=f"skipped: no FSC/SSC channels found among {', '.join(data.channel_names)}; name "
                               "them under the assay's scatter key (e.g. cfse.scatter or zincflow.scatter)"))
    if scatter.fsc_a and scatter.fsc_h:
        fa = events[:, data.channel_index(scatter.fsc_a)]
        fh = events[:, data.channel_index(scatter.fsc_h)]
        keep, params, margins["singlets"] = singlet_gate(fa, fh, mask, None if singlet_ratio is None else list(singlet_ratio))
        params.update(fsc_a=scatter.fsc_a, fsc_h=scatter.fsc_h)
        gates.append(Gate("singlets", int(mask.sum()), int((mask & keep).sum()), params))
        mask &= keep
        ranges["singlets"] = SINGLET_BAND_RANGE * params["band_log10"][1] if "band_log10" in params else 0.0
    else:
        gates.append(Gate("singlets", int(mask.sum()), int(mask.sum()),
                          note="skipped: the file has only one of FSC-A and FSC-H"))
    if viability_channel:
        v = events[:, data.channel_index(viability_channel)]
        thr = float(viability_threshold) if viability_threshold is not None else viability_threshold_from(v[mask])
        keep = v <= thr
        # the detector ($PnN) the threshold applies to, whether the setting named it by $PnN or $PnS
        detector = data.channel_names[data.channel_index(viability_channel)]
        gates.append(Gate("live", int(mask.sum()), int((mask & keep).sum()), {"channel": detector, "threshold": thr}))
        mask &= keep
        margins["live"] = (np.log10(max(thr, 1.0)) - safe_log10(v)).astype(np.float32)
        ranges["live"] = 0.0 if viability_threshold is not None else VIABILITY_RANGE_LOG10
    return GatingResult(mask, gates, scatter, margins, ranges)
