"""In-situ calibration of single-wavelength zinc probes, per cell, with QC.

[Zn2+] = Kd * (F - Fmin) / (Fmax - F) (Grynkiewicz, Poenie & Tsien 1985), every F
background-subtracted and, by default, corrected for photobleaching. Fmax is the plateau after
pyrithione + ZnCl2, Fmin the plateau after TPEN; plateaus are the frames where the rolling slope
of the sample's median trace is near zero. See ``docs/science.md`` §2 for the pitfalls handled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zincassay.imaging.events import Events, rolling_mean

__all__ = ["Calibration", "calibrate_cells", "estimate_bleaching", "find_plateau", "population_trace", "zinc_from_f"]

#: QC reason codes (a cell with any of these is excluded from summaries)
EXCLUDE = ("touches_border", "too_small", "too_large", "saturated", "detached", "low_dynamic_range",
           "baseline_outside_fmin_fmax")


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
    shot noise is relatively smaller, count more). 0 when fewer than 3 baseline frames or no
    positive signal.

    Parameters
    ----------
    F : ndarray (T, N)
        Background-subtracted mean intensity per cell.
    frames : ndarray of int
        Baseline frames (before the stimulus).
    """
    if len(frames) < 3 or F.shape[1] == 0:
        return 0.0
    w = np.ones(F.shape[1]) if weights is None else np.asarray(weights, dtype=np.float64)
    flux = F[frames] @ w
    if np.any(~np.isfinite(flux)) or np.any(flux <= 0):
        return 0.0
    slope = np.polyfit(time_s[frames], np.log(flux / flux.mean()), 1)[0]
    return float(-slope)


def find_plateau(trace: np.ndarray, time_s: np.ndarray, frames: np.ndarray, max_slope_per_min: float,
                 which: str) -> np.ndarray:
    """Frames of a plateau of ``trace`` within ``frames`` (consecutive indices).

    The rolling slope (3-frame centred mean, central difference) relative to the window's level
    must be below ``max_slope_per_min`` (fraction per minute). ``which='first'`` gives the first
    plateau after the trace has reached 90 % of its maximum in the window (Fmax, before any
    decline from leakage or cell death); ``'last'`` gives the plateau that runs to the end of the
    window (Fmin, once TPEN has fully acted). Returns at least the 2 frames nearest to where the
    plateau should be when no frame qualifies.
    """
    seg = rolling_mean(trace[frames], 3)
    t = time_s[frames]
    level = np.abs(np.median(seg)) or 1.0
    if len(seg) < 3:
        return frames
    slope = np.gradient(seg, t) * 60.0 / level
    flat = np.abs(slope) <= max_slope_per_min
    if which == "first":
        start = int(np.argmax(seg >= seg.min() + 0.9 * (seg.max() - seg.min())))
        ks = [k for k in range(start, len(seg)) if flat[k]]
        if not ks:
            return frames[start:start + 2]
        k0 = ks[0]
        k1 = k0
        while k1 + 1 < len(seg) and flat[k1 + 1]:
            k1 += 1
        return frames[k0:k1 + 1] if k1 > k0 else frames[k0:k0 + 2]
    k1 = len(seg) - 1
    k0 = k1
    while k0 - 1 >= 0 and flat[k0 - 1] and flat[k0]:
        k0 -= 1
    return frames[k0:] if k1 - k0 >= 1 else frames[-2:]


def population_trace(F: np.ndarray, frames: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Median over usable cells of each cell's trace divided by its median over ``frames``.

    Normalising first keeps the median from jumping when bright cells detach or saturate.
    """
    cols = F[:, usable] if usable.any() else F
    level = np.median(cols[frames], axis=0) if len(frames) else np.median(cols, axis=0)
    ok = np.isfinite(level) & (level > 0)
    if not ok.any():
        return np.median(cols, axis=1)
    return np.median(cols[:, ok] / level[ok], axis=1)


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
                    events: Events, kd_nM: float, segmentation_reason: list[str], *,
                    min_dynamic_range: float = 2.0, bleach_correction: bool = True,
                    plateau_max_slope_pct_per_min: float = 6.0, responder_min_rise: float = 0.5,
                    area_px: np.ndarray | None = None) -> Calibration:
    """Calibrate every cell of one sample.

    Parameters
    ----------
    mean : ndarray (T, N)
        Raw mean intensity per cell and frame (counts).
    background : ndarray (T,)
        Cell-free background per frame (counts); subtracted from every cell.
    saturated : ndarray (T, N)
        Saturated pixels per cell and frame.
    time_s : ndarray (T,)
    events : Events
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
    area_px : ndarray (N,), optional
        Pixels per cell measured; weights for the bleaching estimate (total flux).
    responder_min_rise : float
        A responder's peak exceeds its baseline by this fraction of the baseline and by 3 SD of
        its baseline frames.
    """
    F = mean - background[:, None]
    N = F.shape[1]
    sample_flags: list[str] = []
    base_frames = np.flatnonzero(time_s < events.stimulus_s)
    stim_frames = np.flatnonzero((time_s >= events.stimulus_s) & (time_s < events.pyrithione_s))
    pyr_frames = np.flatnonzero((time_s >= events.pyrithione_s) & (time_s < events.tpen_s))
    tpen_frames = np.flatnonzero(time_s >= events.tpen_s)
    usable = np.array([r == "" for r in segmentation_reason], dtype=bool)
    sel = usable if usable.any() else np.ones(N, dtype=bool)
    k = estimate_bleaching(F[:, sel], time_s, base_frames, None if area_px is None else np.asarray(area_px)[sel])
    if len(base_frames) < 3:
        sample_flags.append("short_baseline")
    if bleach_correction and k > 0:
        F = F * np.exp(k * time_s)[:, None]
    elif not bleach_correction and k > 0:
        sample_flags.append("bleaching_uncorrected")
    pop = population_trace(F, pyr_frames, usable)
    slope_lim = plateau_max_slope_pct_per_min / 100.0
    fmax_frames = find_plateau(pop, time_s, pyr_frames, slope_lim, "first")
    fmin_frames = find_plateau(pop, time_s, tpen_frames, slope_lim, "last")
    if len(fmin_frames) < 3 and len(tpen_frames) > 3:
        sample_flags.append("fmin_plateau_short")
    fmax = np.median(F[fmax_frames], axis=0)
    fmin = np.median(F[fmin_frames], axis=0)
    f = (F - fmin) / (fmax - fmin)
    zn = zinc_from_f(F, fmin, fmax, kd_nM)
    Fb = F[base_frames].mean(axis=0)
    sd_b = F[base_frames].std(axis=0, ddof=1) if len(base_frames) > 1 else np.zeros(N)
    baseline = zinc_from_f(Fb, fmin, fmax, kd_nM)
    if len(stim_frames):
        roll = rolling_mean(F[stim_frames], 3)
        kpk = np.argmax(roll, axis=0)
        Fp = roll[kpk, np.arange(N)]
        peak = zinc_from_f(Fp, fmin, fmax, kd_nM)
        ttp = time_s[stim_frames][kpk] - events.stimulus_s
        rise = zn[stim_frames] - baseline
        auc = np.trapezoid(rise, time_s[stim_frames], axis=0) if len(stim_frames) > 1 else np.full(N, np.nan)
    else:
        Fp = np.full(N, np.nan)
        peak = ttp = auc = np.full(N, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd_zn = kd_nM * sd_b / (3 ** 0.5) * (fmax - fmin) / (fmax - Fb) ** 2  # error of a 3-frame mean
        responder = (peak - baseline > np.maximum(responder_min_rise * np.abs(baseline), 3 * sd_zn))
    # QC
    sat_fmax = saturated[fmax_frames].max(axis=0) if len(fmax_frames) else np.zeros(N)
    # signal collapse after pyrithione: the cell falls below half its own maximum in the window
    win = rolling_mean(F[pyr_frames], 2)
    top = np.argmax(win, axis=0)
    after_top = np.where(np.arange(len(pyr_frames))[:, None] >= top[None, :], win, np.inf)
    collapse = after_top.min(axis=0) < 0.5 * win.max(axis=0)
    dyn = np.where(fmin > 0, fmax / np.where(fmin > 0, fmin, 1), np.inf)
    typical_dyn = np.median(dyn[usable & np.isfinite(dyn)]) if (usable & np.isfinite(dyn)).any() else np.nan
    lost = collapse | (fmin <= 0) | (dyn > 5 * typical_dyn)
    reasons, flags = [], []
    for i in range(N):
        r = [segmentation_reason[i]] if segmentation_reason[i] else []
        if sat_fmax[i] > 0:
            r.append("saturated")
        if lost[i]:
            r.append("detached")
        elif dyn[i] < min_dynamic_range:
            r.append("low_dynamic_range")
        if not (fmin[i] < Fb[i] < fmax[i]) and not lost[i]:
            r.append("baseline_outside_fmin_fmax")
        reasons.append(";".join(r))
        fl = []
        fb = (Fb[i] - fmin[i]) / (fmax[i] - fmin[i]) if fmax[i] != fmin[i] else np.nan
        fp = (Fp[i] - fmin[i]) / (fmax[i] - fmin[i]) if fmax[i] != fmin[i] else np.nan
        if fb <= 0.02:
            fl.append("f_low_baseline")
        if fp >= 0.95:
            fl.append("f_high_peak")
        if np.isnan(peak[i]) and np.isfinite(Fp[i]):
            fl.append("peak_at_or_above_fmax")
        flags.append(";".join(fl))
    return Calibration(F=F, f=f, zn_nM=zn, fmin=fmin, fmax=fmax, baseline_zn_nM=baseline, peak_zn_nM=peak,
                       time_to_peak_s=ttp.astype(np.float64), auc_zn_nM_s=auc, responder=responder,
                       qc_reason=reasons, qc_flags=flags, fmax_frames=fmax_frames, fmin_frames=fmin_frames,
                       bleach_rate_per_s=k, sample_flags=sample_flags)
