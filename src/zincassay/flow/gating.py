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

import numpy as np
from scipy import ndimage
from scipy.special import chdtr, chdtri  # chi-square cdf / inverse survival (scipy.stats is slow to import)

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
    mask: np.ndarray
    gates: list[Gate]
    channels: ScatterChannels

    @property
    def events_gated(self) -> int:
        return int(self.mask.sum())


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
    """Scatter channels by name (FSC-A/FSC-H/SSC-A, FSC-H/SSC-H, FS Lin/SS Lin, ...).

    ``overrides`` maps ``fsc_a``/``fsc_h``/``ssc`` to channel names that win over the ones found
    (None or missing entries are found by name).
    """
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


def _robust_ellipse(xy: np.ndarray, start: np.ndarray, iters: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the population around ``start``, trimmed at the 99 % contour."""
    d0 = np.linalg.norm(xy - start, axis=1)
    keep = d0 <= np.quantile(d0, 0.3)
    cut = float(chdtri(2, 1.0 - 0.99))
    mean, cov = start, np.cov(xy[keep].T)
    for _ in range(iters):
        mean = xy[keep].mean(axis=0)
        cov = np.cov(xy[keep].T) + np.eye(2) * 1e-6
        diff = xy - mean
        m2 = np.einsum("ij,jk,ik->i", diff, np.linalg.inv(cov), diff)
        new = m2 <= cut
        if np.array_equal(new, keep):
            break
        keep = new
    # a 99 %-trimmed normal sample underestimates the covariance by this factor
    consistency = 0.99 / float(chdtr(4, cut))
    return mean, cov * consistency


def lymphocyte_gate(log_fsc: np.ndarray, log_ssc: np.ndarray, coverage: float) -> tuple[np.ndarray, dict]:
    xy = np.column_stack([log_fsc, log_ssc])
    bins = 64
    h, xe, ye = np.histogram2d(xy[:, 0], xy[:, 1], bins=bins)
    h = ndimage.gaussian_filter(h, 1.5)
    i, j = np.unravel_index(np.argmax(h), h.shape)
    start = np.array([(xe[i] + xe[i + 1]) / 2, (ye[j] + ye[j + 1]) / 2])
    mean, cov = _robust_ellipse(xy, start)
    diff = xy - mean
    m2 = np.einsum("ij,jk,ik->i", diff, np.linalg.inv(cov), diff)
    r2 = float(chdtri(2, 1.0 - coverage))
    return m2 <= r2, {"center_log10": mean.tolist(), "cov_log10": cov.tolist(), "mahalanobis2_max": float(r2),
                      "coverage": coverage}


def singlet_gate(fsc_a: np.ndarray, fsc_h: np.ndarray, within: np.ndarray, band: list[float] | None) -> tuple[np.ndarray, dict]:
    ratio = np.asarray(fsc_a, np.float64) / np.maximum(np.asarray(fsc_h, np.float64), 1e-9)
    if band is None:
        r = ratio[within & np.isfinite(ratio)]
        med = float(np.median(r))
        sd = 1.4826 * float(np.median(np.abs(r - med)))
        band = [med - 4 * sd, med + 4 * sd]
    return (ratio >= band[0]) & (ratio <= band[1]), {"ratio_low": float(band[0]), "ratio_high": float(band[1])}


def viability_threshold_from(values: np.ndarray) -> float:
    """Linear threshold between the negative and positive modes of a viability dye.

    Compensated values at or below 1 (over-compensated live cells) all land on log10(1) = 0; they
    are dye-negative, not a mode of their own, so they are left out of the histogram (they stay
    below the threshold).
    """
    lv = safe_log10(values)
    above = lv[lv > 0.0]
    if above.size >= 50:
        lv = above
    lo, hi = np.quantile(lv, [0.001, 0.999])
    hist, edges = np.histogram(lv, bins=128, range=(lo, hi + 1e-9))
    smooth = ndimage.gaussian_filter1d(hist.astype(float), 2.0)
    centers = (edges[:-1] + edges[1:]) / 2
    main = int(np.argmax(smooth))
    right = smooth[main + 1 :]
    if right.size > 2:
        # a positive mode: a local maximum right of the main one, holding >= 0.5 % of events
        peaks = [k for k in range(1, right.size - 1) if right[k] >= right[k - 1] and right[k] > right[k + 1]]
        for k in peaks:
            p = main + 1 + k
            valley = main + int(np.argmin(smooth[main : p + 1]))
            if smooth[p] > 1.5 * smooth[valley] and hist[valley:].sum() >= 0.005 * hist.sum():
                return float(10 ** centers[valley])
    neg = lv[lv <= centers[main] + 0.5]
    med = float(np.median(neg))
    sd = 1.4826 * float(np.median(np.abs(neg - med)))
    return float(10 ** (med + 4 * sd))


def gate_events(
    data: FCSData, *, gating: str = "auto", scatter: ScatterChannels | None = None,
    lymphocyte_coverage: float, singlet_ratio: tuple[float, float] | None = None,
    viability_channel: str | None = None, viability_threshold: float | None = None,
) -> GatingResult:
    """Apply the lymphocyte, singlet and live gates to ``data.events`` (compensated values).

    Parameters
    ----------
    data : FCSData
        The events (linear, compensated when ``data.compensation`` says so) and their channels.
    gating : {"auto", "none"}
        ``none`` keeps every event (one ``all_events`` gate).
    scatter : ScatterChannels, optional
        Channel names that override the ones found by name (None entries are found by name).
    lymphocyte_coverage : float
        Share (0-1) of the main FSC/SSC population kept by the lymphocyte ellipse.
    singlet_ratio : (low, high), optional
        Manual band of FSC-A/FSC-H kept as singlets; None = median +/- 4 robust SD.
    viability_channel : str, optional
        Viability-dye channel ($PnN or $PnS); dead cells are bright. None = no live gate.
    viability_threshold : float, optional
        Manual viability threshold (linear units); None = the valley between the dye's modes.
    """
    events = data.events
    n = events.shape[0]
    mask = np.ones(n, dtype=bool)
    gates: list[Gate] = []
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
        keep, params = lymphocyte_gate(safe_log10(fsc), safe_log10(ssc), lymphocyte_coverage)
        params.update(fsc=scatter.fsc, ssc=scatter.ssc)
        gates.append(Gate("lymphocytes", int(mask.sum()), int((mask & keep).sum()), params))
        mask &= keep
    else:
        gates.append(Gate("lymphocytes", n, n,
                          note=f"skipped: no FSC/SSC channels found among {', '.join(data.channel_names)}; name "
                               "them under the assay's scatter key (e.g. cfse.scatter or zincflow.scatter)"))
    if scatter.fsc_a and scatter.fsc_h:
        fa = events[:, data.channel_index(scatter.fsc_a)]
        fh = events[:, data.channel_index(scatter.fsc_h)]
        keep, params = singlet_gate(fa, fh, mask, None if singlet_ratio is None else list(singlet_ratio))
        params.update(fsc_a=scatter.fsc_a, fsc_h=scatter.fsc_h)
        gates.append(Gate("singlets", int(mask.sum()), int((mask & keep).sum()), params))
        mask &= keep
    else:
        gates.append(Gate("singlets", int(mask.sum()), int(mask.sum()),
                          note="skipped: the file has only one of FSC-A and FSC-H"))
    if viability_channel:
        v = events[:, data.channel_index(viability_channel)]
        thr = float(viability_threshold) if viability_threshold is not None else viability_threshold_from(v[mask])
        keep = v <= thr
        gates.append(Gate("live", int(mask.sum()), int((mask & keep).sum()),
                          {"channel": viability_channel, "threshold": thr}))
        mask &= keep
    return GatingResult(mask, gates, scatter)
