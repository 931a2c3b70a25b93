"""ELISA figures: the plate (corrected OD per well, labelled), and the standard curve."""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure

from zincassay.curves.figures import draw_standard_curve
from zincassay.elisa.pipeline import ElisaPlate
from zincassay.elisa.plate import PLATES
from zincassay.figures import new_figure

__all__ = ["plate_figure"]


def plate_figure(plate: ElisaPlate, title: str) -> Figure:
    """Left: the plate as a heat map of corrected OD, wells labelled by role (standard level, B blank,
    sample label without the labels' common prefix), saturated wells marked; right: the standard
    curve with the samples."""
    w = plate.wells
    n_cols = max(int(s[1:]) for s in w["well"]) if len(w) else 12
    n_cols = 12 if n_cols <= 12 else 24
    n_rows = PLATES[n_cols]
    grid = np.full((n_rows, n_cols), np.nan)
    fig, (ax, ax2) = new_figure(1, 2, figsize=(13, 4.2))
    # sample labels without their common prefix, in at most two lines of 7 characters
    names = [str(v) for v in w.loc[w["role"] == "sample", "label"]]
    shared = next((i for i, chars in enumerate(zip(*names, strict=False)) if len(set(chars)) > 1),
                  min(map(len, names), default=0))
    prefix = names[0][:shared] if len(names) > 1 else ""
    cut = prefix.rfind("_") + 1 if "_" in prefix else len(prefix)  # keep a word the labels share only in part
    for _, r in w.iterrows():
        i, j = ord(r["well"][0]) - 65, int(r["well"][1:]) - 1
        grid[i, j] = r["od_corrected"] if np.isfinite(r["od_corrected"]) else np.nan
        tag = {"standard": r["label"], "blank": "B"}.get(r["role"], str(r["label"])[cut:])
        tag = "\n".join(textwrap.wrap(str(tag), 7)[:2]) or str(tag)[:7]
        ax.text(j, i, ("SAT\n" if r["saturated"] else "") + tag, ha="center", va="center", fontsize=5)
    im = ax.imshow(grid, cmap="Blues", aspect="auto")
    fig.colorbar(im, ax=ax, label="OD (reference-corrected)")
    ax.set_xticks(range(n_cols), [str(c + 1) for c in range(n_cols)], fontsize=6)
    ax.set_yticks(range(n_rows), [chr(65 + i) for i in range(n_rows)], fontsize=6)
    ax.set_title(title, fontsize=9)
    s = plate.result.samples.copy()
    s["x_plot"] = s["concentration_extrapolated"] / s["dilution"]
    draw_standard_curve(ax2, plate.result.curve, s, title=plate.result.analyte, units=plate.result.units,
                        signal_label="OD (blank-subtracted)", log_signal=False)
    fig.tight_layout()
    return fig
