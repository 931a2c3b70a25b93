"""Per-sample CFSE figures: gating, generation fit (FlowJo-style), generation bars, controls.

PNG files are written without timestamps or software tags, so reruns give identical bytes.
"""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from zincassay.cfse.deconvolve import GenerationFit
from zincassay.cfse.pipeline import ControlSummary, GatedFile
from zincassay.figures import new_figure
from zincassay.flow.figures import imported_gate_panel, live_panel, lymphocyte_panel, singlet_panel
from zincassay.flow.transforms import safe_log10

__all__ = ["control_figure", "fit_figure", "gating_figure", "generations_figure"]


def gating_figure(g: GatedFile, title: str) -> Figure:
    """Lymphocyte, singlet and live gates (the shared panels of :mod:`zincassay.flow.figures`), or
    the imported gates, each in its own space."""
    if g.imported is not None:
        n = len(g.imported.gates)
        fig, axes = new_figure(1, n, figsize=(4 * n, 3.8), squeeze=False)
        for i in range(n):
            imported_gate_panel(axes[0][i], g.imported, i)
        fig.suptitle(f"{title} (gates from {g.imported.source.name})", fontsize=10)
        fig.tight_layout()
        return fig
    fig, axes = new_figure(1, 3, figsize=(12, 3.8))
    lymphocyte_panel(axes[0], g.data, g.gating)
    singlet_panel(axes[1], g.data, g.gating)
    live_panel(axes[2], g.data, g.gating, "cfse.viability_channel")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def fit_figure(fit: GenerationFit, title: str) -> Figure:
    """CFSE histogram with each generation's fitted curve coloured and their sum (as FlowJo shows it)."""
    fig, ax = new_figure(figsize=(7, 4))
    centers = (fit.edges[:-1] + fit.edges[1:]) / 2
    ax.step(centers, fit.counts, where="mid", color="0.55", lw=1, label="events")
    cmap = matplotlib.colormaps["turbo"]
    n_gen = fit.cells.size
    for g in range(n_gen):
        if fit.cells[g] < 0.5:
            continue
        ax.fill_between(centers, fit.components[g], color=cmap(g / max(n_gen - 1, 1)), alpha=0.45, lw=0)
        peak = int(np.argmax(fit.components[g]))
        ax.text(centers[peak], fit.components[g][peak], str(g), ha="center", va="bottom", fontsize=8)
    bg = fit.components[n_gen:].sum(axis=0)
    if bg.sum() > 0.5:
        ax.plot(centers, bg, color="k", ls=":", lw=1, label="background")
    ax.plot(centers, fit.components.sum(axis=0), color="k", lw=1.2, label="sum of fit")
    if fit.af_median_log10 is not None:
        ax.axvline(fit.af_median_log10, color="purple", ls="--", lw=1, label="autofluorescence median")
    lo = max(0.0, min(fit.generation_mu[-1] - 0.5, fit.af_median_log10 or 5) - 0.3)
    ax.set_xlim(lo, fit.edges[-1])
    ax.set_xlabel("log10 CFSE")
    ax.set_ylabel("events per bin")
    ax.set_title(f"{title}  (peak ratio {fit.peak_ratio:.2f}, reduced χ² {fit.reduced_chi2:.2f})", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def generations_figure(fit: GenerationFit, title: str) -> Figure:
    """Raw generation fractions next to precursor-corrected fractions."""
    from zincassay.cfse.indices import precursor_fractions

    fig, ax = new_figure(figsize=(6, 3.6))
    g = np.arange(fit.cells.size)
    ax.bar(g - 0.2, 100 * fit.fractions, width=0.4, label="cells at harvest (%)", color="tab:blue")
    ax.bar(g + 0.2, 100 * precursor_fractions(fit.cells), width=0.4, label="precursors (%)", color="tab:orange")
    ax.set_xticks(g)
    ax.set_xlabel("generation (divisions)")
    ax.set_ylabel("%")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def control_figure(summary: ControlSummary, values: np.ndarray, title: str) -> Figure:
    """Gated CFSE histogram of a control with its parent-peak fit or autofluorescence median."""
    fig, ax = new_figure(figsize=(6, 3.6))
    x = safe_log10(values)
    ax.hist(x, bins=200, color="0.5", density=True)
    if summary.parent is not None:
        p = summary.parent
        grid = np.linspace(x.min(), x.max(), 400)
        ax.plot(grid, np.exp(-0.5 * ((grid - p.mu_log10) / p.sigma_log10) ** 2) / (p.sigma_log10 * np.sqrt(2 * np.pi)),
                color="red", lw=1.2, label=f"parent: {p.mu_log10:.3f} ± {p.sigma_log10:.3f} (log10)")
    else:
        median = summary.autofluorescence.median  # type: ignore[union-attr]
        ax.axvline(np.log10(max(median, 1)), color="purple", ls="--", label=f"autofluorescence median {median:.0f}")
    ax.set_xlabel("log10 CFSE")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
