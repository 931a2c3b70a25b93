"""In-situ calibration of single-wavelength zinc probes, per cell, with QC.

[Zn2+] = Kd * (F - Fmin) / (Fmax - F) (Grynkiewicz, Poenie & Tsien 1985), every F
background-subtracted and, by default, corrected for photobleaching. Fmax is the plateau after
pyrithione + ZnCl2, Fmin the plateau after TPEN; plateaus are the frames where the rolling slope
of the sample's median trace is near zero (``docs/science.md`` §2 lists the pitfalls handled).

One function per step, each over all cells at once: :func:`correct_bleaching`,
:func:`find_plateaus`, :func:`readouts`, :func:`call_responders`, :func:`quality_control`;
:func:`calibrate_cells` runs them in order. Frames that were not measured (unregistered) are NaN
and left out of every statistic.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from zincassay.imaging.events import Events, Phases, rolling_mean

__all__ = ["EXCLUDE", "Calibration", "Readouts", "calibrate_cells", "call_responders", "correct_bleaching",
           "estimate_bleaching", "find_plateau", "find_plateaus", "population_trace", "quality_control",
           "readouts", "zinc_from_f"]

#: QC reason codes (a cell with any of these is excluded from summaries)
EXCLUDE = ("touches_border", "too_small", "too_large", "saturated", "detached", "low_dynamic_range",
           "baseline_outside_fmin_fmax")


def _nan_quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return func(*args, **kwargs)


def zinc_from_f(F: np.ndarray, fmin: np.ndarray, fmax: np.ndarray, kd_nM: float) -> np.ndarray:
    """[Zn2+] (nM) = Kd (F - Fmin) / (Fmax - F); NaN where F >= Fmax (no number can be given).

    Values below 0 (F below Fmin by noise) are kept so that averages stay unbiased.
    """
    F = np.asarray(F, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        zn = kd_nM * (F - fmin) / (fmax - F)
    return np.where(F < fmax, zn, np.nan)


def estimate_bleaching(F: np.ndarray, time_s: np.ndarray, frames: np.ndarray,
                       weights: np.ndarray | None = None) -> float:
    """Photobleaching rate k (1/s) from the baseline: F(t) ~ exp(-k t).

    Least-squares line through the log of the summed background-subtracted signal of all cells
    (``weights``: each cell's area in px, so the sum is the total flux and bright cells, whose
    shot noise is relatively smaller, count more). 0 when fewer than 3 measured baseline frames or
    no positive signal.

    Parameters
    ----------
    F : ndarray (T, N)
        Background-subtracted mean intensity per cell.
    time_s : ndarray (T,)
    frames : ndarray of int
        Baseline frames (before the stimulus).
    weights : ndarray (N,), optional
    """
    frames = np.asarray(frames, dtype=int)
    if F.shape[1] == 0 or len(frames) == 0:
        return 0.0
    frames = frames[np.isfinite(F[frames]).all(axis=1)]
    if len(frames) < 3:
        return 0.0
    w = np.ones(F.shape[1]) if weights is None else np.asarray(weights, dtype=np.float64)
    flux = F[frames] @ w
    if np.any(flux <= 0):
        return 0.0
    slope = np.polyfit(time_s[frames], np.log(flux / flux.mean()), 1)[0]
    return float(-slope)


def find_plateau(trace: np.ndarray, time_s: np.ndarray, frames: np.ndarray, max_slope_per_min: float,
                 which: str, smooth_s: float = 30.0) -> np.ndarray:
    """Frames of a plateau of ``trace`` within ``frames`` (consecutive indices).

    The slope of the trace smoothed over ``smooth_s`` (a centred rolling mean of at least 3
    frames), relative to the window's level, must be below ``max_slope_per_min`` (fraction per
    minute) or below 3 robust SD of the slopes in the window (noise on a fast frame rate must not
    break a plateau into pieces). ``which='first'`` gives the first plateau after the trace has
    reached 90 % of its maximum in the window (Fmax, before any decline from leakage or cell
    death); ``'last'`` gives the plateau that runs to the end of the window (Fmin, once TPEN has
    fully acted), through runs of steep frames shorter than the smoothing window (noise).
    Returns at least the 2 frames nearest to where the plateau should be when no frame qualifies.
    """
    frames = np.asarray(frames, dtype=int)
    t = time_s[frames]
    if len(frames) < 3:
        return frames
    dt = float(np.median(np.diff(t)))
    w = max(3, round(smooth_s / dt) | 1)
    seg = rolling_mean(trace[frames], w)
    if not np.isfinite(seg).any():
        return frames
    level = np.abs(np.nanmedian(seg)) or 1.0
    slope = _nan_quiet(np.gradient, seg, t) * 60.0 / level
    # the slope's noise: pixel-to-pixel noise of the trace (robust SD of its frame-to-frame
    # differences) carried through the rolling mean and the central difference
    d = np.diff(trace[frames])
    d = d[np.isfinite(d)]
    sd = 1.4826 * float(np.median(np.abs(d - np.median(d)))) / np.sqrt(2) if len(d) > 3 else 0.0
    noise = sd * np.sqrt(2) / (2 * w * dt) * 60.0 / level
    flat = np.abs(slope) <= max(max_slope_per_min, 3 * noise)
    if which == "first":
        lo, hi = np.nanmin(seg), np.nanmax(seg)
        start = int(np.argmax(seg >= lo + 0.9 * (hi - lo)))
        ks = [k for k in range(start, len(seg)) if flat[k]]
        if not ks:
            return frames[start:start + 2]
        k0 = ks[0]
        k1 = k0
        while k1 + 1 < len(seg) and flat[k1 + 1]:
            k1 += 1
        return frames[k0:k1 + 1] if k1 > k0 else frames[k0:k0 + 2]
    k1 = len(seg) - 1
    while k1 > 0 and not np.isfinite(seg[k1]):
        k1 -= 1
    # back from the end, through flat frames and through fewer than a smoothing window of steep
    # ones in a row (a noise excursion of the smoothed slope), until a window's worth of steep
    # frames (the approach to Fmin): one excursion must not cut a long plateau short
    k0, steep, k = (k1 if flat[k1] else None), 0, k1
    while k - 1 >= 0 and steep < w:
        k -= 1
        if flat[k]:
            k0, steep = k, 0
        else:
            steep += 1
    if k0 is None:
        k0 = k1
    return frames[k0:k1 + 1] if k1 - k0 >= 1 else frames[max(k1 - 1, 0):k1 + 1]


def population_trace(F: np.ndarray, frames: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Median over usable cells of each cell's trace divided by its median over ``frames``.

    Normalising first keeps the median from jumping when bright cells detach or saturate.
    """
    cols = F[:, usable] if usable.any() else F
    level = _nan_quiet(np.nanmedian, cols[frames], axis=0) if len(frames) else _nan_quiet(np.nanmedian, cols, axis=0)
    ok = np.isfinite(level) & (level > 0)
    if not ok.any():
        return _nan_quiet(np.nanmedian, cols, axis=1)
    return _nan_quiet(np.nanmedian, cols[:, ok] / level[ok], axis=1)


def response_trace(F: np.ndarray, frames: np.ndarray, usable: np.ndarray, trim: float = 0.1) -> np.ndarray:
    """Mean over usable cells of each cell's trace divided by its median over ``frames``, leaving
    out the ``trim`` fraction at each end per frame: it moves when half the cells respond, where
    the median may not."""
    cols = F[:, usable] if usable.any() else F
    level = _nan_quiet(np.nanmedian, cols[frames], axis=0)
    ok = np.isfinite(level) & (level > 0)
    if not ok.any():
        return np.full(len(F), np.nan)
    x = np.sort(cols[:, ok] / level[ok], axis=1)
    k = int(trim * x.shape[1])
    return _nan_quiet(np.nanmean, x[:, k:x.shape[1] - k] if x.shape[1] > 2 * k else x, axis=1)


def correct_bleaching(F: np.ndarray, time_s: np.ndarray, baseline: np.ndarray, usable: np.ndarray, *,
                      area_px: np.ndarray | None = None, enabled: bool = True) -> tuple[np.ndarray, float, list[str]]:
    """Estimate photobleaching from the baseline (:func:`estimate_bleaching`) and divide it out.

    Returns the corrected F (T, N), the rate k (1/s) and sample flags (``short_baseline``,
    ``bleaching_uncorrected``).
    """
    sel = usable if usable.any() else np.ones(F.shape[1], dtype=bool)
    k = estimate_bleaching(F[:, sel], time_s, baseline, None if area_px is None else np.asarray(area_px)[sel])
    flags = ["short_baseline"] if len(baseline) < 3 else []
    if enabled and k > 0:
        F = F * np.exp(k * time_s)[:, None]
    elif not enabled and k > 0:
        flags.append("bleaching_uncorrected")
    return F, k, flags


def find_plateaus(F: np.ndarray, time_s: np.ndarray, phases: Phases, usable: np.ndarray,
                  max_slope_pct_per_min: float) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Fmax and Fmin plateau frames of the sample's normalised median trace, and sample flags
    (``fmin_plateau_short``)."""
    pop = population_trace(F, phases.pyrithione, usable)
    lim = max_slope_pct_per_min / 100.0
    fmax_frames = find_plateau(pop, time_s, phases.pyrithione, lim, "first")
    fmin_frames = find_plateau(pop, time_s, phases.tpen, lim, "last")
    flags = ["fmin_plateau_short"] if len(fmin_frames) < 3 and len(phases.tpen) > 3 else []
    return fmax_frames, fmin_frames, flags


@dataclass
class Readouts:
    """Per-cell readouts (N,) from calibrated traces; ``zn_nM`` and ``f`` are (T, N)."""

    zn_nM: np.ndarray
    f: np.ndarray
    F_baseline: np.ndarray
    sd_baseline: np.ndarray
    F_peak: np.ndarray
    baseline_zn_nM: np.ndarray
    peak_zn_nM: np.ndarray
    time_to_peak_s: np.ndarray
    auc_zn_nM_s: np.ndarray


def readouts(F: np.ndarray, fmin: np.ndarray, fmax: np.ndarray, time_s: np.ndarray, phases: Phases,
             stimulus_s: float, kd_nM: float, peak_window_s: float = 0.0) -> Readouts:
    """Baseline = mean F before the stimulus; peak = maximum of the rolling mean over
    ``peak_window_s`` (at least 3 frames) between stimulus and pyrithione, at the time where the
    rolling mean over 3x that window is highest; both calibrated. The maximum of n noisy windows
    lies above the true peak by about ``sd sqrt(2 ln n)``: locating the peak on a longer window
    and reading it on the shorter one keeps a transient's height without that bias. Time to peak (s from the stimulus) and the area
    under [Zn2+] above baseline over the stimulus window. Peak readouts are NaN without a stimulus
    window."""
    N = F.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (F - fmin) / (fmax - fmin)
    zn = zinc_from_f(F, fmin, fmax, kd_nM)
    base = F[phases.baseline]
    Fb = _nan_quiet(np.nanmean, base, axis=0) if len(base) else np.full(N, np.nan)
    sd_b = _nan_quiet(np.nanstd, base, axis=0, ddof=1) if len(base) > 1 else np.zeros(N)
    baseline = zinc_from_f(Fb, fmin, fmax, kd_nM)
    stim = phases.stimulus
    nan = np.full(N, np.nan)
    if len(stim):
        dt = float(np.median(np.diff(time_s))) if len(time_s) > 1 else 1.0
        w = max(3, round(peak_window_s / dt))
        roll = rolling_mean(F[stim], w)
        # the time of the peak from a 3x longer window: picking the highest of many noisy short
        # windows would read the noise's maximum as the peak
        located = rolling_mean(F[stim], 3 * w)
        filled = np.where(np.isfinite(located), located, -np.inf)
        kpk = np.argmax(filled, axis=0)
        Fp = roll[kpk, np.arange(N)]
        peak = zinc_from_f(Fp, fmin, fmax, kd_nM)
        ttp = time_s[stim][kpk] - stimulus_s
        measured = np.isfinite(F[stim]).all(axis=1)  # unregistered frames are NaN for every cell
        auc = (np.trapezoid(zn[stim][measured] - baseline, time_s[stim][measured], axis=0)
               if measured.sum() > 1 else nan)
    else:
        Fp, peak, ttp, auc = nan, nan.copy(), nan.copy(), nan.copy()
    return Readouts(zn_nM=zn, f=f, F_baseline=Fb, sd_baseline=sd_b, F_peak=Fp, baseline_zn_nM=baseline,
                    peak_zn_nM=peak, time_to_peak_s=np.asarray(ttp, dtype=np.float64), auc_zn_nM_s=auc)


def call_responders(r: Readouts, fmin: np.ndarray, fmax: np.ndarray, kd_nM: float, min_rise: float) -> np.ndarray:
    """A responder's peak exceeds its baseline by ``min_rise`` x the baseline and by 3 SD of a
    3-frame mean of its baseline frames (propagated through the calibration)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        sd_zn = kd_nM * r.sd_baseline / (3**0.5) * (fmax - fmin) / (fmax - r.F_baseline) ** 2
        return (r.peak_zn_nM - r.baseline_zn_nM) > np.maximum(min_rise * np.abs(r.baseline_zn_nM), 3 * sd_zn)


def quality_control(F: np.ndarray, fmin: np.ndarray, fmax: np.ndarray, r: Readouts, saturated: np.ndarray,
                    fmax_frames: np.ndarray, phases: Phases, segmentation_reason: list[str], usable: np.ndarray, *,
                    min_dynamic_range: float) -> tuple[list[str], list[str]]:
    """QC reasons (the cell is excluded) and flags (kept) per cell; see the README for the codes.

    ``saturated``: a pixel of the cell at the camera maximum between pyrithione and TPEN.

    ``detached``: after pyrithione the cell's trace, relative to its own maximum, falls below half
    of the sample's median trace relative to its maximum (3-frame means), or Fmin is not
    positive, or the cell's Fmax/Fmin is over 5x the sample's typical (its Fmin collapsed).
    """
    N = F.shape[1]
    # a pixel at the camera maximum anywhere between pyrithione and TPEN (the plateau may move)
    sat_frames = phases.pyrithione if len(phases.pyrithione) else fmax_frames
    sat = saturated[sat_frames].max(axis=0) > 0 if len(sat_frames) else np.zeros(N, dtype=bool)
    after = np.concatenate([phases.pyrithione, phases.tpen])
    win = rolling_mean(F[after], 3)
    own = win / _nan_quiet(np.nanmax, win, axis=0)
    pop = _nan_quiet(np.nanmedian, own[:, usable] if usable.any() else own, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = own / pop[:, None]
        collapse = _nan_quiet(np.nanmin, np.where(np.isfinite(rel), rel, np.inf), axis=0) < 0.5
        dyn = np.where(fmin > 0, fmax / np.where(fmin > 0, fmin, 1), np.inf)
    typical = _nan_quiet(np.nanmedian, dyn[usable & np.isfinite(dyn)]) if (usable & np.isfinite(dyn)).any() else np.nan
    lost = collapse | (fmin <= 0) | (dyn > 5 * typical)
    low_dr = ~lost & (dyn < min_dynamic_range)
    outside = ~lost & ~((fmin < r.F_baseline) & (r.F_baseline < fmax))
    seg = np.array(segmentation_reason, dtype=object)
    parts = np.stack([seg, np.where(sat, "saturated", ""), np.where(lost, "detached", ""),
                      np.where(low_dr, "low_dynamic_range", ""), np.where(outside, "baseline_outside_fmin_fmax", "")],
                     axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        fb = (r.F_baseline - fmin) / (fmax - fmin)
        fp = (r.F_peak - fmin) / (fmax - fmin)
    flag_parts = np.stack([np.where(fb <= 0.02, "f_low_baseline", ""), np.where(fp >= 0.95, "f_high_peak", ""),
                           np.where(np.isnan(r.peak_zn_nM) & np.isfinite(r.F_peak), "peak_at_or_above_fmax", "")],
                          axis=1)
    join = lambda rows: [";".join(x for x in row if x) for row in rows]  # noqa: E731
    return join(parts.tolist()), join(flag_parts.tolist())


@dataclass
class Calibration:
    """Per-cell calibration of one sample. Arrays have one entry per cell (N) unless noted.

    ``F``: (T, N) background-subtracted, bleach-corrected intensity; ``zn_nM``: (T, N);
    ``f``: (T, N) fractional saturation (F - Fmin)/(Fmax - Fmin).
    """

    F: np.ndarray
    f: np.ndarray
    zn_nM: np.ndarray
    fmin: np.ndarray
    fmax: np.ndarray
    baseline_zn_nM: np.ndarray
    peak_zn_nM: np.ndarray
    time_to_peak_s: np.ndarray
    auc_zn_nM_s: np.ndarray
    responder: np.ndarray
    qc_reason: list[str]
    qc_flags: list[str]
    fmax_frames: np.ndarray
    fmin_frames: np.ndarray
    bleach_rate_per_s: float
    sample_flags: list[str]

    @property
    def delta_zn_nM(self) -> np.ndarray:
        return self.peak_zn_nM - self.baseline_zn_nM

    @property
    def dynamic_range(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.fmin > 0, self.fmax / self.fmin, np.nan)

    @property
    def qc_pass(self) -> np.ndarray:
        return np.array([r == "" for r in self.qc_reason], dtype=bool)


def calibrate_cells(mean: np.ndarray, background: np.ndarray, saturated: np.ndarray, time_s: np.ndarray,
                    events: Events, phases: Phases, kd_nM: float, segmentation_reason: list[str], *,
                    min_dynamic_range: float, bleach_correction: bool, plateau_max_slope_pct_per_min: float,
                    responder_min_rise: float, peak_window_s: float, area_px: np.ndarray | None = None) -> Calibration:
    """Calibrate every cell of one sample.

    Parameters
    ----------
    mean : ndarray (T, N)
        Raw mean intensity per cell and frame (counts; NaN for frames not measured).
    background : ndarray (T,) or (T, N)
        Background per frame (counts), or per frame and cell; subtracted.
    saturated : ndarray (T, N)
        Saturated pixels per cell and frame.
    time_s : ndarray (T,)
    events : Events
        Addition times (the stimulus time sets the time to peak).
    phases : Phases
        Frame windows of the protocol (:meth:`Phases.from_events`).
    kd_nM : float
        Probe Kd (nM).
    segmentation_reason : list of str (N)
        Reasons from segmentation ('' for usable objects).
    min_dynamic_range : float
        Fmax/Fmin below this fails QC (``low_dynamic_range``).
    bleach_correction : bool
        Divide F by exp(-k t), k from the pre-stimulus baseline.
    plateau_max_slope_pct_per_min : float
        Rolling-slope limit (% of level per minute) for the Fmax and Fmin plateaus.
    responder_min_rise : float
        A responder's peak exceeds its baseline by this fraction of the baseline and by 3 SD of
        its baseline frames.
    peak_window_s : float
        The peak is the maximum of the rolling mean over this many seconds (at least 3 frames).
    area_px : ndarray (N,), optional
        Pixels per cell measured; weights for the bleaching estimate (total flux).
    """
    bg = background[:, None] if np.ndim(background) == 1 else background
    F = mean - bg
    usable = np.array([r == "" for r in segmentation_reason], dtype=bool)
    F, k, flags = correct_bleaching(F, time_s, phases.baseline, usable, area_px=area_px, enabled=bleach_correction)
    fmax_frames, fmin_frames, plateau_flags = find_plateaus(F, time_s, phases, usable, plateau_max_slope_pct_per_min)
    flags += plateau_flags
    if not events.stimulus_found:
        flags.append("stimulus_not_found")
    fmax = _nan_quiet(np.nanmedian, F[fmax_frames], axis=0)
    fmin = _nan_quiet(np.nanmedian, F[fmin_frames], axis=0)
    r = readouts(F, fmin, fmax, time_s, phases, events.stimulus_s, kd_nM, peak_window_s)
    responder = call_responders(r, fmin, fmax, kd_nM, responder_min_rise)
    reasons, cell_flags = quality_control(F, fmin, fmax, r, saturated, fmax_frames, phases, segmentation_reason,
                                          usable, min_dynamic_range=min_dynamic_range)
    return Calibration(F=F, f=r.f, zn_nM=r.zn_nM, fmin=fmin, fmax=fmax, baseline_zn_nM=r.baseline_zn_nM,
                       peak_zn_nM=r.peak_zn_nM, time_to_peak_s=r.time_to_peak_s, auc_zn_nM_s=r.auc_zn_nM_s,
                       responder=responder, qc_reason=reasons, qc_flags=cell_flags, fmax_frames=fmax_frames,
                       fmin_frames=fmin_frames, bleach_rate_per_s=k, sample_flags=flags)
