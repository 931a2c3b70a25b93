"""Panels showing the shared flow gates (:mod:`zincassay.flow.gating`) on given axes.

Each function draws one gate of a :class:`~zincassay.flow.gating.GatingResult` of ``data`` (its
events as gated, i.e. compensated) on a :class:`matplotlib.axes.Axes` (no pyplot): density of the
events with the gate's boundary in red and ``kept/in`` in the title, or a note when the gate was
skipped.
"""

from __future__ import annotations

import matplotlib.colors
import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Ellipse

from zincassay.flow.gates_io import GateShape, ImportedGating
from zincassay.flow.gating import GatingResult
from zincassay.flow.transforms import safe_log10
from zincassay.io.fcs import FCSData

__all__ = ["live_panel", "lymphocyte_panel", "singlet_panel"]


def _gates(gating: GatingResult) -> dict:
    return {g.name: g for g in gating.gates}


def lymphocyte_panel(ax: Axes, data: FCSData, gating: GatingResult) -> None:
    """log10 FSC vs log10 SSC with the lymphocyte ellipse."""
    ch = gating.channels
    if not (ch.fsc and ch.ssc):
        ax.text(0.5, 0.5, "no scatter channels", ha="center")
        return
    fx = safe_log10(data.events[:, data.channel_index(ch.fsc)])
    sy = safe_log10(data.events[:, data.channel_index(ch.ssc)])
    ax.hist2d(fx, sy, bins=120, cmap="viridis", norm=matplotlib.colors.LogNorm())
    lg = _gates(gating).get("lymphocytes")
    if lg is not None and lg.params:
        vals, vecs = np.linalg.eigh(np.array(lg.params["cov_log10"]))
        r = np.sqrt(lg.params["mahalanobis2_max"] * vals)
        angle = np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1]))
        ax.add_patch(Ellipse(lg.params["center_log10"], 2 * r[1], 2 * r[0], angle=angle, fill=False, color="red",
                             lw=1.5))
        ax.set_title(f"lymphocytes: {lg.events_kept}/{lg.events_in}", fontsize=9)
    ax.set_xlabel(f"log10 {ch.fsc}")
    ax.set_ylabel(f"log10 {ch.ssc}")


def singlet_panel(ax: Axes, data: FCSData, gating: GatingResult) -> None:
    """FSC-A/FSC-H against log10 FSC-H with the singlet band."""
    ch = gating.channels
    sg = _gates(gating).get("singlets")
    if not (ch.fsc_a and ch.fsc_h and sg is not None and sg.params):
        ax.text(0.5, 0.5, "singlet gate skipped\n(only one of FSC-A, FSC-H)", ha="center", va="center")
        ax.set_axis_off()
        return
    fa = data.events[:, data.channel_index(ch.fsc_a)]
    fh = data.events[:, data.channel_index(ch.fsc_h)]
    lh = safe_log10(fh)
    ax.hist2d(lh, fa / np.maximum(fh, 1e-9), bins=(120, 120), range=[[np.quantile(lh, 0.001), lh.max()], [0.5, 3]],
              cmap="viridis", norm=matplotlib.colors.LogNorm())
    for k in ("ratio_low", "ratio_high"):
        ax.axhline(sg.params[k], color="red", lw=1.2)
    ax.set_xlabel(f"log10 {ch.fsc_h}")
    ax.set_ylabel(f"{ch.fsc_a} / {ch.fsc_h}")
    ax.set_title(f"singlets: {sg.events_kept}/{sg.events_in}", fontsize=9)


def live_panel(ax: Axes, data: FCSData, gating: GatingResult, setting: str) -> None:
    """Histogram of log10 viability dye with the live threshold; ``setting`` names the config key."""
    lv = _gates(gating).get("live")
    if lv is None:
        ax.text(0.5, 0.5, f"no viability channel\n({setting})", ha="center", va="center")
        ax.set_axis_off()
        return
    v = safe_log10(data.events[:, data.channel_index(lv.params["channel"])])
    ax.hist(v, bins=150, color="0.4")
    ax.axvline(np.log10(max(lv.params["threshold"], 1)), color="red", lw=1.2)
    ax.set_xlabel(f"log10 {lv.params['channel']}")
    ax.set_title(f"live: {lv.events_kept}/{lv.events_in}", fontsize=9)


def _axis_label(shape: GateShape, k: int) -> str:
    d = shape.dimensions[k]
    scale = (d.transform or {}).get("type", "linear")
    comp = "" if d.compensation == "uncompensated" else f", comp {d.compensation}"
    return f"{d.channel} ({scale}{comp})"


def imported_gate_panel(ax: Axes, imported: ImportedGating, i: int) -> None:
    """Gate ``i`` of imported gates drawn in its own (compensated, transformed) space over its parent's events."""
    shape = imported.gates[i]
    parent = imported.masks[i - 1] if i else np.ones(imported.masks[0].size, bool)
    xy = imported.coordinates[i] if i < len(imported.coordinates) else None
    kept, n_in = int(imported.masks[i].sum()), int(parent.sum())
    ax.set_title(f"{shape.population}: {kept}/{n_in}", fontsize=8)
    if xy is None or shape.kind == "boolean" or xy.shape[0] == 0 or n_in == 0:
        ax.text(0.5, 0.5, f"{shape.kind} gate: {kept} of {n_in} events", ha="center", va="center",
                transform=ax.transAxes, fontsize=8)
        ax.set_axis_off()
        return
    pts = np.asarray(xy[parent], dtype=float)
    if pts.shape[1] == 1:
        ax.hist(pts[:, 0], bins=200, color="0.5", histtype="stepfilled")
        d = shape.dimensions[0]
        for v in (d.min, d.max):
            if v is not None:
                ax.axvline(v, color="red", lw=1.5)
        ax.set_xlabel(_axis_label(shape, 0), fontsize=8)
        return
    ax.hist2d(pts[:, 0], pts[:, 1], bins=120, cmap="viridis", norm=matplotlib.colors.LogNorm())
    ax.set_autoscale_on(False)  # outlines may run far beyond the events (e.g. a singlet wedge)
    if shape.kind == "polygon" and shape.vertices is not None:
        v = np.vstack([shape.vertices, shape.vertices[:1]])
        ax.plot(v[:, 0], v[:, 1], color="red", lw=1.5)
    elif shape.kind == "ellipse" and shape.mean is not None and shape.covariance is not None:
        cov = np.asarray(shape.covariance, float)[:2, :2]
        vals, vecs = np.linalg.eigh(cov)
        r = np.sqrt(float(shape.distance_square or 1.0) * vals)
        angle = np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1]))
        ax.add_patch(Ellipse(tuple(np.asarray(shape.mean, float)[:2]), 2 * r[1], 2 * r[0], angle=angle, fill=False,
                             color="red", lw=1.5))
    elif shape.kind == "rectangle":
        lo = [d.min if d.min is not None else -np.inf for d in shape.dimensions[:2]]
        hi = [d.max if d.max is not None else np.inf for d in shape.dimensions[:2]]
        x0, x1 = ax.get_xlim()
        y0, y1 = ax.get_ylim()
        xs = [max(lo[0], x0), min(hi[0], x1)]
        ys = [max(lo[1], y0), min(hi[1], y1)]
        ax.plot([xs[0], xs[1], xs[1], xs[0], xs[0]], [ys[0], ys[0], ys[1], ys[1], ys[0]], color="red", lw=1.5)
    ax.set_xlabel(_axis_label(shape, 0), fontsize=8)
    ax.set_ylabel(_axis_label(shape, 1), fontsize=8)
