"""Standard-curve figure: standards, fitted curve, quantifiable range and samples (one analyte)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from zincassay.curves.quantify import StandardCurve
from zincassay.figures import new_figure

__all__ = ["draw_standard_curve", "standard_curve_figure"]


def draw_standard_curve(ax: Axes, curve: StandardCurve, samples: pd.DataFrame | None, *, title: str, units: str,
                        signal_label: str, log_signal: bool) -> None:
    """Draw one curve on ``ax``.

    ``samples`` has ``signal`` (mean reading), ``flag`` and ``concentration_extrapolated``
    divided back by the sample's dilution (column ``x_plot``, the concentration in the well).
    Zero standards are drawn at a quarter of the lowest non-zero standard, marked "0".
    """
    pos = curve.x[curve.x > 0]
    if pos.size == 0:
        ax.text(0.5, 0.5, "no standards", ha="center", transform=ax.transAxes)
        return
    x0 = pos.min() / 4.0
    xs = np.where(curve.x > 0, curve.x, x0)
    used = curve.used
    ax.scatter(xs[used], curve.y[used], s=22, color="black", zorder=3, label="standards")
    if (~used).any():
        ax.scatter(xs[~used], curve.y[~used], s=40, color="red", marker="x", zorder=3, label="excluded")
    if curve.fit is not None:
        grid = np.geomspace(x0, pos.max() * 2.0, 300)
        ax.plot(grid, curve.fit.curve.response(grid), color="tab:blue", lw=1.4,
                label=f"{curve.fit.model.upper()} fit")
    if curve.has_range:
        ax.axvspan(curve.lloq, curve.uloq, color="tab:green", alpha=0.08, label="LLOQ-ULOQ")
        for v in (curve.lloq, curve.uloq):
            ax.axvline(v, color="tab:green", lw=0.8, ls="--")
    if samples is not None and len(samples):
        inside = samples["flag"] == ""
        xp = samples["x_plot"].to_numpy(dtype=float)
        ax.scatter(xp[inside], samples["signal"][inside], s=18, marker="D", color="tab:orange", zorder=4,
                   label="samples")
        lo_edge, hi_edge = x0, pos.max() * 2.0
        for flag, edge, marker in (("<LLOQ", lo_edge, "<"), (">ULOQ", hi_edge, ">")):
            m = samples["flag"] == flag
            if m.any():
                ax.scatter(np.full(int(m.sum()), edge), samples["signal"][m], s=24, marker=marker,
                           color="tab:red", zorder=4, label=f"samples {flag}")
    ax.set_xscale("log")
    if log_signal:
        ax.set_yscale("log")
    ticks = [x0, *[t for t in 10.0 ** np.arange(-3, 9) if x0 * 3 < t < pos.max() * 2.5]]
    ax.set_xticks(ticks)
    ax.set_xticklabels(["0"] + [f"{t:g}" for t in ticks[1:]])
    ax.set_xlabel(f"concentration ({units})")
    ax.set_ylabel(signal_label)
    extra = "" if curve.fit is None else f", LLOQ {curve.lloq:.3g}, ULOQ {curve.uloq:.3g}"
    ax.set_title(f"{title}{extra}", fontsize=9)
    if curve.failed:
        ax.text(0.5, 0.5, f"no curve: {curve.failed}", ha="center", transform=ax.transAxes, fontsize=8, wrap=True)
    ax.legend(fontsize=7, loc="upper left")


def standard_curve_figure(curve: StandardCurve, samples: pd.DataFrame | None, *, title: str, units: str,
                          signal_label: str, log_signal: bool) -> Figure:
    """A figure with one analyte's curve (see :func:`draw_standard_curve`)."""
    fig, ax = new_figure(figsize=(5.2, 4.0))
    draw_standard_curve(ax, curve, samples, title=title, units=units, signal_label=signal_label,
                        log_signal=log_signal)
    fig.tight_layout()
    return fig
