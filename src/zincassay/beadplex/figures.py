"""Bead-array figures: a well's bead populations, and one standard curve per analyte."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse

from zincassay.beadplex.panel import Panel
from zincassay.beadplex.pipeline import BeadplexRun, WellMeasurement
from zincassay.beadplex.populations import GROUP_GATE_CHI2
from zincassay.curves.figures import standard_curve_figure
from zincassay.figures import new_figure
from zincassay.flow.transforms import safe_log10

__all__ = ["curve_figures", "well_figure"]


def well_figure(well: WellMeasurement, panel: Panel, title: str) -> Figure:
    """FSC/SSC with the size groups' 99.9 % ellipses, then per group the classification histogram
    coloured by assigned bead (missing beads named), and the reporter per bead."""
    pops = well.populations
    k = len(panel.groups)
    fig, axes = new_figure(1, k + 1, figsize=(4.2 * (k + 1), 3.6), squeeze=False)
    ax = axes[0, 0]
    fx, sy = safe_log10(well.fsc), safe_log10(well.ssc)
    ok = np.isfinite(fx) & np.isfinite(sy)
    counts, xe, ye = np.histogram2d(fx[ok], sy[ok], bins=120)
    ax.pcolormesh(xe, ye, np.ma.masked_equal(counts.T, 0), cmap="viridis", norm=matplotlib.colors.LogNorm(),
                  rasterized=True)
    for g in pops.groups:
        cov = np.array(g.cov_log10)
        vals, vecs = np.linalg.eigh(cov)
        r = np.sqrt(GROUP_GATE_CHI2 * np.maximum(vals, 0))  # the groups' gate
        angle = np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1]))
        ax.add_patch(Ellipse(g.center_log10, 2 * r[1], 2 * r[0], angle=angle, fill=False, color="red", lw=1.2))
        ax.annotate(g.name, g.center_log10, color="white", fontsize=9, ha="center")
    ax.set_xlabel("log10 FSC")
    ax.set_ylabel("log10 SSC")
    ax.set_title(title, fontsize=9)
    cmap = matplotlib.colormaps["tab20"]
    lc = safe_log10(well.classification)
    for gi, gname in enumerate(panel.groups):
        ax = axes[0, gi + 1]
        members = pops.group == gi
        if members.any():  # histograms as filled steps: one polygon each, not a bar per bin
            lo, hi = np.quantile(lc[members], [0.001, 0.999])
            bins = np.linspace(lo - 0.1, hi + 0.1, 150)
            ax.stairs(np.histogram(lc[members], bins)[0], bins, fill=True, color="0.8")
            for b in panel.beads_in(gname):
                j = pops.bead_ids.index(b.bead_id)
                sel = pops.bead == j
                if sel.any():
                    ax.stairs(np.histogram(lc[sel], bins)[0], bins, fill=True, color=cmap(j % 20),
                              label=f"{b.bead_id} {b.analyte} ({int(sel.sum())})")
        lost = [b.bead_id for b in panel.beads_in(gname) if b.bead_id in pops.missing]
        ax.set_title(f"group {gname}" + (f": missing {', '.join(lost)}" if lost else ""), fontsize=9,
                     color="red" if lost else "black")
        ax.set_xlabel("log10 classification")
        ax.legend(fontsize=6)
    fig.subplots_adjust(left=0.2 / (k + 1), right=0.99, bottom=0.14, top=0.92, wspace=0.22)  # tight_layout: 0.4 s
    return fig


def curve_figures(run: BeadplexRun, *, batch: str) -> dict[str, Figure]:
    """One standard-curve figure per analyte (standards, fit, LLOQ-ULOQ, samples)."""
    out = {}
    for r in run.analytes:
        s = r.samples.copy()
        s["x_plot"] = s["concentration_extrapolated"] / s["dilution"]
        out[r.analyte] = standard_curve_figure(r.curve, s, title=f"{r.analyte} ({batch})", units=r.units,
                                               signal_label="reporter median (MFI)", log_signal=True)
    return out
