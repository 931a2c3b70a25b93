"""Phenotype by generation: median and % positive of every other fluorescence channel.

Each event carries its posterior probability of every fit component (generations and background,
:func:`zincassay.cfse.posterior.component_probabilities`), not a hard gate. Weighting events by
P(generation g | event) alone is biased where neighbouring generations overlap: the weighted
distribution of generation ``g`` is a mixture ``S_g = sum_k M[g, k] N_k F_k`` of every
component's own distribution ``F_k`` (``M`` from :func:`zincassay.cfse.posterior.mixing_matrix`,
``N_k`` the component's events); near autofluorescence a fifth of generation 8's weight comes from
generation 7. So the weighted cumulative distributions are **unmixed**: at each value ``t``,
``N_k F_k(t)`` is solved from the weighted counts below ``t`` of every component (a linear system
with ``M``, restricted to components holding >= 0.1 % of the events; ``N`` itself is solved from
the total weights), clipped to [0, 1] and made non-decreasing. Per generation and channel
(compensated, linear units):

- ``median``: where the unmixed ``F_g`` reaches 0.5 (linear interpolation on a grid of the
  generation's weighted quantiles); ``estimate`` says ``unmixed``, or ``weighted`` (the plain
  weighted median, the value where the cumulative weight reaches half) when no mixing matrix is
  given or it cannot be inverted;
- ``pct_positive``: ``100 * (1 - F_g(threshold))``, the share above the threshold; the threshold
  comes from the unstained (or FMO) control, the ``positive_quantile`` of its values (99.5 % by
  default, so 0.5 % of unstained events are "positive"), or is given;
- ``cells``: the generation's events ``N_g`` (the sum of its posterior weights).

Output rows follow ``results/cfse/by_generation.tsv``: ``sample_id, generation, channel, marker,
median, pct_positive, threshold, threshold_source, cells, fraction, estimate``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from zincassay.figures import new_figure
from zincassay.io.fcs import FCSData

__all__ = [
    "BY_GENERATION_COLUMNS",
    "by_generation_figure",
    "fluorescence_channels",
    "phenotype_by_generation",
    "positivity_threshold",
    "weighted_median",
]

BY_GENERATION_COLUMNS = ["sample_id", "generation", "channel", "marker", "median", "pct_positive", "threshold",
                         "threshold_source", "cells", "fraction", "estimate"]
_NOT_FLUORESCENCE = re.compile(r"^(fsc|fs|ssc|ss|forward|side|time|event|width)|-w$|width", re.I)


def fluorescence_channels(data: FCSData, exclude: Sequence[str] = ()) -> list[str]:
    """``$PnN`` of the fluorescence channels: all but scatter, time, width and ``exclude``
    (e.g. the CFSE and viability channels, named by ``$PnN`` or ``$PnS``)."""
    skip = {data.channel_index(c) for c in exclude if c}
    return [n for i, n in enumerate(data.channel_names) if i not in skip and not _NOT_FLUORESCENCE.search(n.strip())]


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """Median of ``values`` with non-negative ``weights`` (NaN when the weights add up to 0).

    The weighted CDF is evaluated at each value's mid-weight, ``(cumsum(w) - w/2) / sum(w)``, and
    interpolated linearly at 0.5; with equal weights this is the ordinary median.
    """
    v = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    keep = (w > 0) & np.isfinite(v)
    v, w = v[keep], w[keep]
    total = w.sum()
    if v.size == 0 or total <= 0:
        return float("nan")
    order = np.argsort(v, kind="stable")
    v, w = v[order], w[order]
    pos = (np.cumsum(w) - w / 2) / total
    return float(np.interp(0.5, pos, v))


def positivity_threshold(control_values: np.ndarray, *, positive_quantile: float = 0.995) -> float:
    """Threshold above which an event is positive: a high quantile of an unstained/FMO control.

    Parameters
    ----------
    control_values : ndarray (n_events,)
        The channel's compensated, gated values in the control, linear units.
    positive_quantile : float
        Share of control events below the threshold.
    """
    v = np.asarray(control_values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan")
    return float(np.quantile(v, positive_quantile))


def _unmix(x: np.ndarray, w: np.ndarray, mixing: np.ndarray, n_gen: int, thr: float
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Unmixed medians, fractions above ``thr`` and sizes of the generations (None if singular)."""
    total = w.sum(axis=0)
    keep = np.nonzero(total >= 1e-3 * total.sum())[0]
    m = mixing[np.ix_(keep, keep)]
    if np.linalg.cond(m) > 1e8:
        return None
    minv = np.linalg.inv(m)
    n_k = minv @ total[keep]
    order = np.argsort(x, kind="stable")
    xs = x[order]
    cum = np.cumsum(w[order][:, keep], axis=0)
    levels = np.linspace(0.0, 1.0, 257)
    grid = [np.array([thr])] if np.isfinite(thr) else []
    for j in range(keep.size):  # each component's weighted quantiles: resolution where its cells are
        cw = cum[:, j]
        if cw[-1] > 0:
            grid.append(xs[np.minimum(np.searchsorted(cw, levels * cw[-1]), xs.size - 1)])
    t = np.unique(np.concatenate(grid))
    s = cum[np.searchsorted(xs, t, side="right") - 1] * (t >= xs[0])[:, None]  # weighted counts <= t
    f = (minv @ s.T) / np.where(n_k > 0, n_k, np.nan)[:, None]
    f = np.maximum.accumulate(np.clip(np.nan_to_num(f, nan=0.0), 0.0, 1.0), axis=1)
    med = np.full(n_gen, np.nan)
    above = np.full(n_gen, np.nan)
    sizes = np.zeros(n_gen)
    for j, k in enumerate(keep):
        if k >= n_gen or n_k[j] <= 0:
            continue
        sizes[k] = n_k[j]
        fk = f[j]
        i = int(np.searchsorted(fk, 0.5))
        if 0 < i < t.size:
            lo, hi = fk[i - 1], fk[i]
            med[k] = t[i - 1] + (t[i] - t[i - 1]) * (0.5 - lo) / (hi - lo) if hi > lo else t[i]
        elif i == 0:
            med[k] = t[0]
        if np.isfinite(thr):
            above[k] = 1.0 - fk[int(np.searchsorted(t, thr))]
    return med, above, sizes


def phenotype_by_generation(
    channels: Mapping[str, np.ndarray],
    probabilities: np.ndarray,
    *,
    n_generations: int,
    mixing: np.ndarray | None = None,
    markers: Mapping[str, str] | None = None,
    thresholds: Mapping[str, tuple[float, str]] | None = None,
    sample_id: str = "",
) -> pd.DataFrame:
    """Median and % positive of each channel in each generation, from per-event probabilities.

    Parameters
    ----------
    channels : mapping of ``$PnN`` to ndarray (n_events,)
        Compensated linear values of the gated events, one array per channel to report.
    probabilities : ndarray (n_events, n_components)
        P(component | event) for the same events: generations first, then background
        (:func:`zincassay.cfse.posterior.component_probabilities`).
    n_generations : int
        How many of the columns are generations.
    mixing : ndarray (n_components, n_components), optional
        :func:`zincassay.cfse.posterior.mixing_matrix`; without it the plain weighted medians.
    markers : mapping of ``$PnN`` to marker name (``$PnS``), optional
    thresholds : mapping of ``$PnN`` to (threshold, source), optional
        ``source`` says where it came from (e.g. ``"unstained q0.995"``, ``"config"``). A channel
        without one gets ``pct_positive`` NaN and source ``"none"``.
    sample_id : str

    Returns
    -------
    DataFrame with :data:`BY_GENERATION_COLUMNS`, one row per generation and channel, sorted by
    generation then channel.
    """
    prob = np.asarray(probabilities, dtype=float)
    markers = markers or {}
    thresholds = thresholds or {}
    weights = prob.sum(axis=0)[:n_generations]
    rows = []
    per_channel = {}
    for ch in sorted(channels):
        x = np.asarray(channels[ch], dtype=float)
        if x.shape[0] != prob.shape[0]:
            raise ValueError(f"channel {ch!r} has {x.shape[0]} events, probabilities {prob.shape[0]}")
        thr, source = thresholds.get(ch, (float("nan"), "none"))
        res = _unmix(x, prob, np.asarray(mixing, dtype=float), n_generations, float(thr)) if mixing is not None else None
        if res is not None:
            med, above, sizes = res
            est = "unmixed"
        else:
            med = np.array([weighted_median(x, prob[:, g]) for g in range(n_generations)])
            above = np.array([np.sum(prob[:, g] * (x > thr)) / weights[g] if weights[g] > 0 else np.nan
                              for g in range(n_generations)])
            sizes, est = weights, "weighted"
        per_channel[ch] = (x, float(thr), source, med, above, sizes, est)
    for g in range(n_generations):
        for ch, (_x, thr, source, med, above, sizes, est) in per_channel.items():
            total = sizes.sum()
            rows.append({
                "sample_id": sample_id, "generation": g, "channel": ch, "marker": markers.get(ch, ""),
                "median": float(med[g]), "pct_positive": float(100.0 * above[g]) if np.isfinite(thr) else float("nan"),
                "threshold": thr, "threshold_source": source, "cells": float(sizes[g]),
                "fraction": float(sizes[g] / total) if total > 0 else float("nan"), "estimate": est,
            })
    return pd.DataFrame(rows, columns=BY_GENERATION_COLUMNS)


def by_generation_figure(table: pd.DataFrame, *, title: str = "", min_fraction: float = 0.02) -> Figure:
    """Marker median (log scale) against generation, one panel per channel.

    Generations holding less than ``min_fraction`` of the cells are drawn hollow (their median
    rests on few cells). % positive is written above each point when a threshold exists.
    """
    chans = list(dict.fromkeys(table["channel"]))
    n = max(len(chans), 1)
    fig, axes = new_figure(1, n, figsize=(3.6 * n, 3.4), squeeze=False)
    for ax, ch in zip(axes[0], chans, strict=False):
        t = table[table["channel"] == ch].sort_values("generation")
        big = t["fraction"] >= min_fraction
        ax.plot(t["generation"], t["median"], color="0.6", lw=1, zorder=1)
        ax.scatter(t["generation"][big], t["median"][big], color="tab:blue", zorder=2, label=f">= {min_fraction:.0%} of cells")
        ax.scatter(t["generation"][~big], t["median"][~big], facecolors="none", edgecolors="tab:blue", zorder=2,
                   label=f"< {min_fraction:.0%} of cells")
        for _, r in t[big].iterrows():
            if np.isfinite(r["pct_positive"]):
                ax.annotate(f"{r['pct_positive']:.0f}%", (r["generation"], r["median"]), textcoords="offset points",
                            xytext=(0, 6), ha="center", fontsize=7)
        if (t["median"] > 0).all():
            ax.set_yscale("log")
        marker = t["marker"].iloc[0] if len(t) else ""
        ax.set_title(f"{ch} ({marker})" if marker else ch, fontsize=9)
        ax.set_xlabel("generation")
        ax.set_ylabel("median (compensated, linear)")
        ax.legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
