"""Per-sample imaging figures: segmentation overlay, raw traces, calibrated [Zn2+], baseline vs peak.

PNG files carry no timestamps or software tags, so reruns give identical bytes.
"""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import ndimage as ndi

from zincassay.figures import new_figure
from zincassay.imaging.pipeline import ImagingResult

__all__ = ["baseline_peak_figure", "raw_traces_figure", "segmentation_figure", "zinc_traces_figure"]

PASS, FAIL = "#1b9e77", "#d95f02"


def _phases(ax: Axes, r: ImagingResult) -> None:
    t, p = r.time_s, r.phases
    names = {"baseline": ("baseline", "#eeeeee"), "stimulus": ("stimulus", "#deebf7"),
             "pyrithione": ("pyrithione + Zn (Fmax)", "#fee0d2"), "tpen": ("TPEN (Fmin)", "#e5f5e0")}
    ends = {"baseline": p.stimulus[:1] if len(p.stimulus) else p.pyrithione[:1], "stimulus": p.pyrithione[:1],
            "pyrithione": p.tpen[:1], "tpen": np.array([len(t) - 1])}
    for key, frames in (("baseline", p.baseline), ("stimulus", p.stimulus), ("pyrithione", p.pyrithione),
                        ("tpen", p.tpen)):
        if not len(frames):
            continue
        a, b = t[frames[0]], t[ends[key][0]] if len(ends[key]) else t[frames[-1]]
        name, colour = names[key]
        ax.axvspan(a, b, color=colour, zorder=0)
        ax.text((a + b) / 2, 1.0, name, transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=7)
    c = r.calibration
    for frames, colour in ((c.fmax_frames, "#cb181d"), (c.fmin_frames, "#238b45")):
        ax.axvspan(t[frames[0]], t[frames[-1]], ymin=0, ymax=0.03, color=colour, zorder=1)


def segmentation_figure(r: ImagingResult, title: str) -> Figure:
    """Fmax reference image (square-root display) with each object's outline coloured by QC and its id."""
    seg, c = r.segmentation, r.calibration
    fig, ax = new_figure(figsize=(7, 7 * seg.labels.shape[0] / seg.labels.shape[1] + 0.6))
    lo, hi = np.percentile(r.reference, [1, 99.9])
    ax.imshow(np.sqrt(np.clip((r.reference - lo) / max(hi - lo, 1e-9), 0, 1)), cmap="gray", interpolation="nearest")
    edges = seg.labels != ndi.grey_erosion(seg.labels, size=3)
    edges &= seg.labels > 0
    ok = np.concatenate([[False], c.qc_pass])
    overlay = np.zeros((*seg.labels.shape, 4))
    overlay[edges & ok[seg.labels]] = matplotlib.colors.to_rgba(PASS)
    overlay[edges & ~ok[seg.labels]] = matplotlib.colors.to_rgba(FAIL)
    ax.imshow(overlay, interpolation="nearest")
    for i in range(seg.n):
        ax.text(seg.centroid_x[i], seg.centroid_y[i], str(i + 1), color=PASS if c.qc_pass[i] else FAIL,
                fontsize=7, ha="center", va="center")
    ax.set_title(f"{title}: {int(c.qc_pass.sum())} of {seg.n} cells pass QC (green)", fontsize=9)
    ax.set_axis_off()
    fig.tight_layout()
    return fig


def raw_traces_figure(r: ImagingResult, title: str) -> Figure:
    """Background-subtracted (and bleach-corrected) F per cell, with the protocol phases shaded."""
    fig, ax = new_figure(figsize=(8, 4))
    _phases(ax, r)
    c = r.calibration
    for i in range(c.F.shape[1]):
        ax.plot(r.time_s, c.F[:, i], lw=0.8, color=PASS if c.qc_pass[i] else FAIL, alpha=0.8)
    ax.plot(r.time_s, r.traces.background - np.nanmin(r.traces.background), color="k", lw=1, ls="--",
            label="background (minus its minimum)")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("F (counts above background)")
    ax.set_title(f"{title}: raw traces (green pass QC, orange excluded); bars mark the Fmax/Fmin plateaus",
                 fontsize=9, pad=14)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def zinc_traces_figure(r: ImagingResult, title: str) -> Figure:
    """[Zn2+] per QC-passing cell and the median over them, up to pyrithione (log scale)."""
    fig, ax = new_figure(figsize=(8, 4))
    c = r.calibration
    keep = r.time_s < r.events.pyrithione_s
    t = r.time_s[keep]
    z = c.zn_nM[keep][:, c.qc_pass]
    for i in range(z.shape[1]):
        ax.plot(t, np.clip(z[:, i], 1e-3, None), lw=0.7, color="#9ecae1")
    if z.shape[1]:
        ax.plot(t, np.clip(np.nanmedian(z, axis=1), 1e-3, None), lw=2, color="#08519c", label="median of cells")
        ax.legend(fontsize=7)
    stim = "dotted: stimulus" if r.events.stimulus_found else "stimulus not found"
    if r.events.stimulus_found:
        ax.axvline(r.events.stimulus_s, color="k", lw=0.8, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("free [Zn2+] (nM)")
    ax.set_title(f"{title}: [Zn2+] = Kd (F - Fmin) / (Fmax - F), Kd = {r.kd_nM:g} nM; {stim}", fontsize=9)
    fig.tight_layout()
    return fig


def baseline_peak_figure(r: ImagingResult, title: str) -> Figure:
    """Baseline vs peak [Zn2+] per QC-passing cell (responders filled)."""
    fig, ax = new_figure(figsize=(4.5, 4.5))
    c = r.calibration
    ok = c.qc_pass
    b, p = c.baseline_zn_nM[ok], c.peak_zn_nM[ok]
    resp = c.responder[ok]
    good = np.isfinite(b) & np.isfinite(p) & (b > 0) & (p > 0)
    ax.scatter(b[good & resp], p[good & resp], color="#08519c", s=18, label="responder")
    ax.scatter(b[good & ~resp], p[good & ~resp], facecolor="none", edgecolor="#08519c", s=18, label="non-responder")
    if good.any():
        lo, hi = min(b[good].min(), p[good].min()) / 1.5, max(b[good].max(), p[good].max()) * 1.5
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    ax.set_xlabel("baseline [Zn2+] (nM)")
    ax.set_ylabel("peak [Zn2+] after stimulus (nM)")
    ax.set_title(f"{title}: {int(good.sum())} cells", fontsize=9)
    fig.tight_layout()
    return fig
