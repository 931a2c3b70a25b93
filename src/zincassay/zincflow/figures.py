"""Figures of a zinc-by-flow sample (:class:`matplotlib.figure.Figure`, no pyplot).

- :func:`gating_figure`: each tube's lymphocyte, singlet and live gates, then each marker's
  histogram with its threshold (one row per tube).
- :func:`histograms_figure`: per subset, the probe histograms of the sample, Fmin, Fmax (and
  unstained) tubes overlaid, medians marked, the calibration in the title.
- :func:`kinetics_figure`: per subset, [Zn2+] in time bins across the stimulus.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from zincassay.figures import new_figure
from zincassay.flow.figures import imported_gate_panel, live_panel, lymphocyte_panel, singlet_panel
from zincassay.flow.transforms import safe_log10
from zincassay.zincflow.pipeline import ZincflowResult
from zincassay.zincflow.subsets import to_scale
from zincassay.zincflow.tubes import GatedTube

__all__ = ["gating_figure", "histograms_figure", "kinetics_figure"]

TUBE_COLOURS = {"sample": "black", "fmin": "tab:blue", "fmax": "tab:red", "unstained": "0.6"}


def gating_figure(tubes: Mapping[str, GatedTube], title: str, *, marker_scale: str, asinh_cofactor: float) -> Figure:
    """The gates of a sample's tubes, one row per tube (role -> tube, e.g. :attr:`ZincflowResult.tubes`):
    scatter, singlets, live, then each marker on its analysis scale with its threshold."""
    n_markers = max(len(t.markers) for t in tubes.values())
    ncols = 3 + n_markers
    fig, axes = new_figure(len(tubes), ncols, figsize=(3.0 * ncols, 2.9 * len(tubes)), squeeze=False)
    for row, (role, tube) in zip(axes, tubes.items(), strict=True):
        if tube.imported is not None:  # the last three gates of the imported path, each in its own scale
            n = len(tube.imported.gates)
            for ax, i in zip(row[:3], range(max(n - 3, 0), n), strict=False):
                imported_gate_panel(ax, tube.imported, i)
            for ax in row[min(n, 3):3]:
                ax.set_axis_off()
        else:
            lymphocyte_panel(row[0], tube.data, tube.gating)
            singlet_panel(row[1], tube.data, tube.gating)
            live_panel(row[2], tube.data, tube.gating, "zincflow.viability_channel")
        row[0].set_title(f"{role} tube | {row[0].get_title()}", fontsize=9)
        gated = tube.gating.mask
        for ax, m in zip(row[3:], tube.markers.values(), strict=False):
            v = to_scale(tube.marker_values[m.marker][gated], marker_scale, asinh_cofactor)
            ax.hist(v, bins=150, color="0.4", histtype="stepfilled")
            if m.threshold is not None:
                ax.axvline(float(to_scale(np.array([m.threshold]), marker_scale, asinh_cofactor)[0]), color="red",
                           lw=1.2)
                pos = int((tube.marker_values[m.marker][gated] > m.threshold).sum())
                ax.set_title(f"{m.marker}+: {pos}/{int(gated.sum())} ({m.source})", fontsize=9)
            else:
                ax.set_title(f"{m.marker}: no valley; set zincflow.marker_thresholds", fontsize=9, color="red")
            ax.set_xlabel(f"asinh({m.channel} / {asinh_cofactor:g})" if marker_scale == "asinh"
                          else f"log10 {m.channel}")
        for ax in row[3 + len(tube.markers):]:
            ax.set_axis_off()
    height = fig.get_figheight()
    fig.suptitle(f"{title}: gates of each tube ({', '.join(tubes)})", fontsize=10, y=1 - 0.12 / height)
    # fixed margins (inches): tight_layout measures every tick label of the 4 x 6 axes, seconds per figure
    fig.subplots_adjust(left=0.6 / fig.get_figwidth(), right=0.99, bottom=0.5 / height, top=1 - 0.6 / height,
                        wspace=0.3, hspace=0.5)
    return fig


def _fmt(v: float) -> str:
    return "n/a" if not np.isfinite(v) else f"{v:.3g}"


def histograms_figure(result: ZincflowResult, title: str) -> Figure:
    """Overlaid probe histograms (log10) of each subset's tubes, medians dashed, calibration in the title."""
    n = len(result.subsets)
    fig, axes = new_figure(1, n, figsize=(4.6 * n, 3.8), squeeze=False)
    for ax, sr in zip(axes[0], result.subsets, strict=True):
        c = sr.calibration
        series = {"sample": sr.sample_values, "fmin": sr.fmin_values, "fmax": sr.fmax_values}
        if sr.af_values is not None:
            series["unstained"] = sr.af_values
        logs = {k: safe_log10(v) for k, v in series.items() if v.size}
        if not logs:
            ax.text(0.5, 0.5, "no events in this subset\n" + ";".join(c.flags), ha="center", va="center", fontsize=8)
            ax.set_title(sr.subset.name, fontsize=9)
            ax.set_axis_off()
            continue
        lo = min(np.quantile(v, 0.002) for v in logs.values())
        hi = max(np.quantile(v, 0.998) for v in logs.values())
        bins = np.linspace(lo, hi + 1e-9, 120)
        for role, v in logs.items():
            ax.hist(v, bins=bins, histtype="step", density=True, color=TUBE_COLOURS[role], lw=1.2,
                    label=f"{role} (n={v.size})")
            ax.axvline(np.log10(max(float(np.median(series[role])), 1.0)), color=TUBE_COLOURS[role], ls="--", lw=1)
        ax.set_xlabel(f"log10 {result.channel} ({result.probe})")
        ax.set_ylabel("density")
        ax.legend(fontsize=7, frameon=False)
        zn = (f"[Zn2+] = {_fmt(c.zn_nM)} nM ({_fmt(c.zn_ci_low)}-{_fmt(c.zn_ci_high)})"
              if np.isfinite(c.zn_nM) else "[Zn2+]: no number")
        flags = f"\n{';'.join(c.flags)}" if c.flags else ""
        ax.set_title(f"{sr.subset.name}: f = {_fmt(c.f)}, {zn}{flags}", fontsize=8,
                     color="black" if c.qc_pass else "red")
    fig.suptitle(f"{title}: medians dashed; Kd = {result.kd_nM:g} nM", fontsize=10)
    fig.tight_layout()
    return fig


def kinetics_figure(result: ZincflowResult, title: str) -> Figure:
    """[Zn2+] per time bin of each subset, from the addition; pause shaded, baseline and peak marked."""
    a = result.addition
    subs = [sr for sr in result.subsets if sr.kinetic is not None]
    n = max(len(subs), 1)
    fig, axes = new_figure(n, 1, figsize=(7, 2.6 * n), squeeze=False, sharex=True)
    if a is None or not subs:
        axes[0, 0].text(0.5, 0.5, "no kinetic trace", ha="center", va="center")
        axes[0, 0].set_axis_off()
        return fig
    for ax, sr in zip(axes[:, 0], subs, strict=True):
        k = sr.kinetic
        assert k is not None
        t = (k.bin_start_s + k.bin_end_s) / 2 - a.addition_s
        ax.plot(t, k.zn_nM, "o-", color="black", ms=3, lw=1)
        if np.isfinite(a.gap_start_s):
            ax.axvspan(a.gap_start_s - a.addition_s, a.gap_end_s - a.addition_s, color="0.9", label="no acquisition")
        ax.axvline(0.0, color="tab:green", lw=1, label=f"addition ({a.source})")
        ax.axhline(k.baseline_zn_nM, color="tab:blue", ls="--", lw=1, label=f"baseline {_fmt(k.baseline_zn_nM)} nM")
        if np.isfinite(k.peak_zn_nM):
            ax.plot([k.time_to_peak_s], [k.peak_zn_nM], "v", color="tab:red", ms=8,
                    label=f"peak {_fmt(k.peak_zn_nM)} nM at {_fmt(k.time_to_peak_s)} s")
        ax.set_ylabel("[Zn2+] (nM)")
        ax.set_title(f"{sr.subset.name}" + (f" ({';'.join(k.flags)})" if k.flags else ""), fontsize=9)
        ax.legend(fontsize=7, frameon=False, loc="upper right")
    axes[-1, 0].set_xlabel("time from addition (s)")
    fig.suptitle(f"{title}: median per bin, Kd = {result.kd_nM:g} nM", fontsize=10)
    fig.tight_layout()
    return fig
