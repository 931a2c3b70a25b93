"""Figure creation and saving for every assay.

Figures are :class:`matplotlib.figure.Figure` objects made without pyplot, so no global backend
is switched and no figure is left open. PNGs are written without timestamps or software tags
(reruns give identical bytes) and atomically (``*.part`` then rename), so a killed job never
leaves a figure that looks complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from zincassay.tables import atomic_path

__all__ = ["DPI", "new_figure", "save_figure"]

DPI = 110


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], **subplot_kw: Any
               ) -> tuple[Figure, Any]:
    """A figure and its axes, like ``pyplot.subplots`` but without pyplot's global state.

    Parameters
    ----------
    nrows, ncols : int
        Grid of axes.
    figsize : (width, height)
        Inches.
    **subplot_kw
        Passed to :meth:`matplotlib.figure.Figure.subplots` (e.g. ``squeeze=False``).

    Returns
    -------
    fig : Figure
    axes : Axes or ndarray of Axes
    """
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **subplot_kw)


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG at :data:`DPI`, reproducibly and atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    return Path(path)
