"""Across-condition figures: donor-paired readouts, [Zn2+] distributions, CFSE overlays."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from zincassay.conditions.stats import donor_values
from zincassay.figures import new_figure

__all__ = ["cfse_overlay_figure", "dose_response_figure", "readout_figure", "zinc_distribution_figure"]

LABELS = {"median_baseline_zn_nM": "baseline [Zn2+] (nM, median of cells)",
          "median_peak_zn_nM": "peak [Zn2+] (nM, median of cells)",
          "median_delta_zn_nM": "peak - baseline (nM, median of cells)",
          "fraction_responding": "fraction of cells responding"}


def readout_figure(table: pd.DataFrame, readouts: list[str], conditions: list[str], stats: pd.DataFrame,
                   title: str) -> Figure:
    """One panel per readout: each donor's value per condition, joined across conditions; the
    Holm-adjusted p against the reference above each condition (a note when there is no readout)."""
    n = len(readouts)
    if not n:
        fig, ax = new_figure(figsize=(6, 2))
        ax.set_axis_off()
        ax.text(0.5, 0.5, f"{title}: no usable sample", ha="center", va="center", fontsize=10)
        return fig
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig, axes = new_figure(rows, cols, figsize=(4 * cols, 3.4 * rows), squeeze=False)
    t = table.copy()
    t["donor"] = t["donor"].astype(str)
    for ax, readout in zip(axes.ravel(), readouts, strict=False):
        vals = donor_values(t, readout).reindex(columns=conditions)
        x = np.arange(len(conditions))
        for donor, row in vals.iterrows():
            ax.plot(x, row.to_numpy(dtype=float), marker="o", lw=1, label=str(donor))
        ax.set_xticks(x, conditions, fontsize=8)
        ax.set_title(LABELS.get(readout, readout), fontsize=9)
        s = stats[stats["readout"] == readout].set_index("condition")
        for i, c in enumerate(conditions):
            if c in s.index and np.isfinite(s.at[c, "p_holm"]):
                ax.text(i, 1.0, f"p(Holm)={s.at[c, 'p_holm']:.2g}", transform=ax.get_xaxis_transform(),
                        ha="center", va="bottom", fontsize=7)
        ax.margins(x=0.15)
    for ax in axes.ravel()[n:]:
        ax.set_axis_off()
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, title="donor", fontsize=7, loc="upper right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.93, 0.95))
    return fig


def zinc_distribution_figure(cells: pd.DataFrame, conditions: list[str]) -> Figure:
    """Per-cell baseline and peak [Zn2+] (QC-passing cells) per condition, log scale, donors pooled
    for display only (statistics use donor medians)."""
    fig, axes = new_figure(1, 2, figsize=(9, 3.8))
    ok = cells[cells["qc_pass"].astype(str).str.lower() == "true"]
    for ax, col, name in ((axes[0], "baseline_zn_nM", "baseline"), (axes[1], "peak_zn_nM", "peak")):
        data = [ok.loc[(ok["condition"] == c) & (ok[col] > 0), col].to_numpy() for c in conditions]
        present = [i for i, d in enumerate(data) if len(d)]
        if present:
            ax.boxplot([data[i] for i in present], positions=present, widths=0.5, showfliers=False)
            rng = np.random.default_rng(0)
            for i in present:
                ax.scatter(i + rng.uniform(-0.15, 0.15, len(data[i])), data[i], s=6, alpha=0.5, color="#08519c")
            ax.set_yscale("log")
        ax.set_xticks(range(len(conditions)), conditions, fontsize=8)
        ax.set_ylabel(f"{name} [Zn2+] (nM)")
        ax.set_title(f"{name} free zinc per cell", fontsize=9)
    fig.tight_layout()
    return fig


def cfse_overlay_figure(hist: pd.DataFrame, samples: pd.DataFrame, conditions: list[str]) -> Figure:
    """For each donor, the gated CFSE histograms of each condition overlaid (area-normalised)."""
    donors = sorted(samples["donor"].astype(str).unique())
    fig, axes = new_figure(1, max(len(donors), 1), figsize=(4.5 * max(len(donors), 1), 3.5), squeeze=False)
    colours = dict(zip(conditions, matplotlib.colormaps["viridis"](np.linspace(0, 0.9, max(len(conditions), 1))),
                       strict=False))
    for ax, donor in zip(axes.ravel(), donors, strict=False):
        sub = samples[samples["donor"].astype(str) == donor]
        for _, s in sub.sort_values("condition", key=lambda c: c.map({k: i for i, k in enumerate(conditions)})).iterrows():
            h = hist[hist["sample_id"] == s["sample_id"]]
            if h.empty:
                continue
            centres = (h["bin_low_log10"] + h["bin_high_log10"]).to_numpy() / 2
            y = h["events"].to_numpy(dtype=float)
            ax.plot(centres, y / max(y.sum(), 1), color=colours.get(s["condition"], "k"), lw=1.2,
                    label=f"{s['condition']} ({s['sample_id']})")
        ax.set_title(f"donor {donor}", fontsize=9)
        ax.set_xlabel("log10 CFSE")
        ax.set_ylabel("fraction of events per bin")
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def dose_response_figure(table: pd.DataFrame, fits: pd.DataFrame, readouts: list[str], *, dose_column: str,
                         source_column: str | None, donor_column: str = "donor") -> Figure:
    """One panel per readout: every sample (colour = source, marker = donor) and each donor's fitted
    4PL; dose 0 (untreated) sits at a quarter of the lowest dose on the log axis, marked "0"."""
    from zincassay.conditions.dose_response import dose_sources, source_rows
    from zincassay.curves.model import Logistic

    n = max(len(readouts), 1)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig, axes = new_figure(rows, cols, figsize=(4.3 * cols, 3.5 * rows), squeeze=False)
    t = table.copy()
    t[donor_column] = t[donor_column].astype(str)
    dose = pd.to_numeric(t[dose_column], errors="coerce")
    pos = dose[dose > 0]
    x0 = float(pos.min()) / 4 if len(pos) else 0.1
    xmax = float(pos.max()) if len(pos) else 1.0
    sources = dose_sources(t, dose_column=dose_column, source_column=source_column)
    colours = {s: matplotlib.colormaps["tab10"](i) for i, s in enumerate(sources)}
    markers = dict(zip(sorted(t[donor_column].unique()), "osD^v<>ph*", strict=False))
    grid = np.geomspace(x0, xmax * 1.5, 200)
    for ax, readout in zip(axes.ravel(), readouts, strict=False):
        for source in sources:
            sel = source_rows(t, source, dose_column=dose_column, source_column=source_column, sources=sources)
            xs = np.where(dose[sel] > 0, dose[sel], x0)
            for donor, mk in markers.items():
                m = (t.loc[sel, donor_column] == donor).to_numpy()
                ax.scatter(xs[m], pd.to_numeric(t.loc[sel, readout], errors="coerce")[m], s=12, marker=mk,
                           color=colours[source], alpha=0.7)
            for _, f in fits[(fits["readout"] == readout) & (fits["source"] == source)].iterrows():
                if f["model"] in ("4pl", "4pl_shared") and np.isfinite(f["ec50_estimate"]):
                    b = abs(f["hill_slope"])
                    curve = Logistic("4pl", a=f["response_untreated"], d=f["response_saturating"], c=f["ec50_estimate"], b=b)
                    ax.plot(grid, curve.response(grid), color=colours[source], lw=0.8, alpha=0.8)
            ax.plot([], [], color=colours[source], label=source or "all")
        ax.set_xscale("log")
        ticks = [x0, *[v for v in sorted(pos.unique()) if v > x0]]
        ax.set_xticks(ticks)
        ax.set_xticklabels(["0"] + [f"{v:.2g}" for v in ticks[1:]], fontsize=7, rotation=45)
        ax.set_xlabel(dose_column)
        ax.set_title(readout, fontsize=9)
    for donor, mk in markers.items():  # marker = donor, once
        axes[0, 0].scatter([], [], marker=mk, color="0.4", s=12, label=f"donor {donor}")
    for ax in axes.ravel()[:len(readouts)]:
        ax.legend(fontsize=6)
    for ax in axes.ravel()[len(readouts):]:
        ax.set_axis_off()
    fig.tight_layout()
    return fig
