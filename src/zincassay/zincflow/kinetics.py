"""Kinetics of a tube acquired across a stimulus: median probe signal in time bins, calibrated.

The Time channel times ``$TIMESTEP`` gives seconds. The stimulus is added while acquisition is
paused, so the addition is the start of the longest pause of at least ``min_gap_s`` (the earliest
moment it can have happened), unless the sample sheet gives it. Bins of ``bin_s`` are aligned on
the addition. The baseline is the median of every event before the addition (before the pause);
the peak is the highest [Zn2+] over windows of :data:`PEAK_WINDOW_BINS` consecutive bins after the
addition (events pooled, so a single noisy bin does not make the peak), its time the window's
centre; all calibrated with the culture's Fmin and Fmax medians of the same subset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from zincassay.errors import ZincassayError
from zincassay.io.fcs import FCSData
from zincassay.zincflow.calibrate import bound_fraction, zinc_nM

__all__ = ["PEAK_WINDOW_BINS", "Addition", "KineticTrace", "find_addition", "kinetic_trace", "time_seconds"]

PEAK_WINDOW_BINS = 3
_TIME = re.compile(r"^(time|hdr-t)$", re.I)


def time_seconds(data: FCSData, timestep_s: float | None) -> np.ndarray:
    """Acquisition time of every event (s): the Time channel times ``$TIMESTEP``.

    Parameters
    ----------
    data : FCSData
    timestep_s : float or None
        Seconds per Time unit for files without ``$TIMESTEP`` (config ``zincflow.kinetic.timestep_s``).

    Raises
    ------
    ZincassayError
        No Time channel, or no ``$TIMESTEP`` and no ``timestep_s``.
    """
    cols = [i for i, n in enumerate(data.channel_names) if _TIME.match(n.strip())]
    if not cols:
        raise ZincassayError(f"{data.path}: a kinetic tube needs a Time channel; this file has none "
                             f"(channels: {data.describe_channels()}); acquire with the Time parameter "
                             "or remove 'kinetic' for this row of the sample sheet")
    raw = data.keywords.get("$TIMESTEP", "").strip()
    try:
        step = float(raw) if raw else None
    except ValueError:
        step = None
    if step is None or not step > 0:
        step = timestep_s
    if step is None:
        raise ZincassayError(f"{data.path}: no usable $TIMESTEP ({raw!r}), so the Time channel cannot be "
                             "converted to seconds; set zincflow.kinetic.timestep_s (seconds per Time unit)")
    return np.asarray(data.events[:, cols[0]], dtype=np.float64) * step


@dataclass(frozen=True)
class Addition:
    """When the stimulus was added (s) and the pause around it (NaN when none was found)."""

    addition_s: float
    source: str  # "gap" or "sheet"
    gap_start_s: float
    gap_end_s: float
    gaps_found: int


def find_addition(time_s: np.ndarray, *, min_gap_s: float, addition_s: float | None, path: str) -> Addition:
    """The stimulus addition: given, or the start of the longest pause of at least ``min_gap_s``.

    Raises
    ------
    ZincassayError
        No pause long enough and no ``addition_s``.
    """
    t = np.sort(np.asarray(time_s, dtype=np.float64))
    d = np.diff(t)
    gaps = np.flatnonzero(d >= min_gap_s)
    nan = float("nan")
    if gaps.size:
        g = gaps[np.argmax(d[gaps])]
        start, end = float(t[g]), float(t[g + 1])
    else:
        start = end = nan
    if addition_s is not None:
        if not t[0] < addition_s < t[-1]:
            raise ZincassayError(f"{path}: addition_s = {addition_s:g} s is outside the acquisition "
                                 f"({t[0]:g}-{t[-1]:g} s); check the sample sheet")
        return Addition(float(addition_s), "sheet", start, end, int(gaps.size))
    if not gaps.size:
        raise ZincassayError(
            f"{path}: no pause of at least {min_gap_s:g} s in acquisition (longest {d.max() if d.size else 0:.3g} s), "
            "so the stimulus addition cannot be found; give addition_s (seconds on the Time channel) in the "
            "sample sheet or lower zincflow.kinetic.min_gap_s")
    return Addition(start, "gap", start, end, int(gaps.size))


@dataclass(frozen=True)
class KineticTrace:
    """One subset's trace. Times are seconds on the tube's Time channel; F is AF-subtracted when
    the calibration is.

    ``bin_start_s``, ``bin_end_s``, ``events``, ``F_median``, ``f``, ``zn_nM``: per bin (bins with
    fewer than ``min_events_per_bin`` events have NaN values). Summary: baseline (events before
    the addition), peak (see module docstring), ``time_to_peak_s`` from the addition,
    ``delta_zn_nM`` = peak - baseline.
    """

    bin_start_s: np.ndarray
    bin_end_s: np.ndarray
    events: np.ndarray
    F_median: np.ndarray
    f: np.ndarray
    zn_nM: np.ndarray
    baseline_events: int
    baseline_F: float
    baseline_zn_nM: float
    peak_F: float
    peak_zn_nM: float
    time_to_peak_s: float
    delta_zn_nM: float
    flags: tuple[str, ...]


def _window_medians(t_sorted: np.ndarray, v_by_t: np.ndarray, lo: np.ndarray, hi: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    a = np.searchsorted(t_sorted, lo, side="left")
    b = np.searchsorted(t_sorted, hi, side="left")
    med = np.array([np.median(v_by_t[i:j]) if j > i else np.nan for i, j in zip(a, b, strict=True)])
    return b - a, med


def kinetic_trace(time_s: np.ndarray, values: np.ndarray, *, addition: Addition, bin_s: float,
                  min_events_per_bin: int, fmin: float, fmax: float, af: float, kd_nM: float) -> KineticTrace:
    """Bin one subset's probe values over time and calibrate them.

    Parameters
    ----------
    time_s, values : ndarray (n,)
        Time (s) and probe value (linear, compensated) of the subset's gated events.
    addition : Addition
    bin_s : bin width (s); min_events_per_bin : bins with fewer events are left out.
    fmin, fmax : the subset's calibration medians (AF-subtracted when ``af`` is not 0).
    af : autofluorescence median subtracted from every median (0 when none).
    kd_nM : probe Kd (nM).
    """
    order = np.argsort(time_s, kind="stable")
    t, v = np.asarray(time_s, dtype=np.float64)[order], np.asarray(values, dtype=np.float64)[order]
    flags: list[str] = []
    add = addition.addition_s
    # the last event before a pause is the pause's start, and belongs to the baseline
    pre = v[t <= add] if addition.source == "gap" else v[t < add]
    if pre.size < min_events_per_bin:
        flags.append("few_baseline_events")
    base_F = float(np.median(pre)) - af if pre.size else float("nan")
    k0 = int(np.floor((t[0] - add) / bin_s)) if t.size else 0
    k1 = int(np.ceil((t[-1] - add) / bin_s)) if t.size else 0
    edges = add + bin_s * np.arange(k0, max(k1, k0 + 1) + 1)
    counts, med = _window_medians(t, v, edges[:-1], edges[1:])
    med = np.where(counts >= min_events_per_bin, med - af, np.nan)
    post = np.flatnonzero((edges[:-1] >= add) & (counts >= min_events_per_bin))
    peak_F = peak_zn = ttp = float("nan")
    if post.size == 0:
        flags.append("no_bins_after_addition")
    else:
        # windows of PEAK_WINDOW_BINS consecutive post-addition bins, events pooled
        starts = edges[:-1][post]
        wc, wmed = _window_medians(t, v, starts, np.minimum(starts + PEAK_WINDOW_BINS * bin_s, edges[-1]))
        wmed = wmed - af
        ok = wc >= min_events_per_bin
        if ok.any():
            i = int(np.nanargmax(np.where(ok, wmed, -np.inf)))
            peak_F = float(wmed[i])
            peak_zn = float(zinc_nM(peak_F, fmin, fmax, kd_nM))
            if peak_F >= fmax:
                flags.append("peak_above_fmax")
            ttp = float(starts[i] + min(PEAK_WINDOW_BINS * bin_s, edges[-1] - starts[i]) / 2 - add)
    base_zn = float(zinc_nM(base_F, fmin, fmax, kd_nM))
    return KineticTrace(
        bin_start_s=edges[:-1], bin_end_s=edges[1:], events=counts, F_median=med, f=bound_fraction(med, fmin, fmax),
        zn_nM=zinc_nM(med, fmin, fmax, kd_nM), baseline_events=int(pre.size), baseline_F=base_F,
        baseline_zn_nM=base_zn, peak_F=peak_F, peak_zn_nM=peak_zn, time_to_peak_s=ttp,
        delta_zn_nM=peak_zn - base_zn, flags=tuple(flags))
