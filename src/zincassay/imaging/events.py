"""Addition times of the calibration protocol and the phase windows they define.

Protocol: baseline, stimulus, pyrithione + ZnCl2 (Fmax), TPEN (Fmin). :class:`Events` holds the
times (s) and how each was obtained; :func:`detect_events` fills in the times the sample sheet
leaves blank from the signal itself, refined by the registration jolts a manual addition causes;
:class:`Phases` turns the times into frame windows once, for the calibration, the tables and the
figures.

Detection from the signal
-------------------------
Each addition is located by fitting, on a window of the population trace, a line (baseline
drift, photobleaching) plus an exponential change starting at an onset ``t0`` (grid over t0 in
quarter frames and over time constants, first a coarse ladder, then steps of 2^(1/8) near the
best: onset and time constant trade off, so a coarse ladder read slow onsets several frames
early; linear least squares for the rest): the onset whose
fit improves most on the line alone, accepted when the improvement is significant (more than
``min_significance`` times the residual variance). Pyrithione + ZnCl2 is the rise to the
recording's maximum; TPEN the fall from it to the level the recording ends on; the stimulus the
onset of the population response before pyrithione. A jolt (a jump in the registration shifts
well above the frame-to-frame drift) near an onset (from 2 frames before it to 1 after, 3 after for
the stimulus, whose fitted onset can read early on a noisy response) pins the addition to its frame;
for TPEN the jolt is looked for over the chelation delay (the probe stays saturated until TPEN
brings [Zn2+] near Kd, so the fall lags the addition by up to minutes; without a jolt TPEN reads
late, never early). A stimulus with neither a response nor a jolt is reported as not found and
the sample is analysed without a stimulus window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Events", "Phases", "detect_events", "jolt_sizes", "rolling_mean"]

#: Time constants (frames) tried for the exponential change after an onset
_TAUS = (0.3, 0.7, 1.5, 3.0, 6.0, 12.0, 25.0, 50.0, 100.0)


def rolling_mean(x: np.ndarray, w: int) -> np.ndarray:
    """Centred rolling mean along axis 0, shrinking at the ends; shape preserved. NaN rows
    (unregistered frames) are skipped."""
    x = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(x)
    c = np.cumsum(np.concatenate([np.zeros((1, *x.shape[1:])), np.where(ok, x, 0.0)]), axis=0)
    k = np.cumsum(np.concatenate([np.zeros((1, *x.shape[1:])), ok.astype(np.float64)]), axis=0)
    n = len(x)
    lo = np.clip(np.arange(n) - w // 2, 0, n)
    hi = np.clip(np.arange(n) + w - w // 2, 0, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (c[hi] - c[lo]) / (k[hi] - k[lo])


@dataclass
class Events:
    """Addition times (s; NaN when not found) and how each was obtained: ``sheet``, ``jolt``,
    ``trace`` (from the signal) or ``not found``."""

    stimulus_s: float
    pyrithione_s: float
    tpen_s: float
    source: dict[str, str] = field(default_factory=dict)

    @property
    def detected(self) -> list[str]:
        """Names of the events that were not given by the sheet."""
        return sorted(k for k, v in self.source.items() if v != "sheet")

    @property
    def stimulus_found(self) -> bool:
        return bool(np.isfinite(self.stimulus_s))


@dataclass
class Phases:
    """Frame windows of one recording (index arrays into the frames).

    ``baseline``: before the stimulus (before pyrithione when the stimulus was not found);
    ``stimulus``: stimulus to pyrithione (empty when not found); ``pyrithione``: pyrithione to
    TPEN; ``tpen``: from TPEN to the end. ``label`` is each frame's phase name.
    """

    baseline: np.ndarray
    stimulus: np.ndarray
    pyrithione: np.ndarray
    tpen: np.ndarray
    label: np.ndarray

    @classmethod
    def from_events(cls, events: Events, time_s: np.ndarray) -> Phases:
        t = np.asarray(time_s, dtype=np.float64)
        stim = events.stimulus_s if events.stimulus_found else events.pyrithione_s
        label = np.select([t < stim, t < events.pyrithione_s, t < events.tpen_s],
                          ["baseline", "stimulus", "pyrithione"], "tpen").astype(object)
        return cls(baseline=np.flatnonzero(label == "baseline"), stimulus=np.flatnonzero(label == "stimulus"),
                   pyrithione=np.flatnonzero(label == "pyrithione"), tpen=np.flatnonzero(label == "tpen"),
                   label=label)


def jolt_sizes(shifts: np.ndarray | None, registered: np.ndarray | None = None, span: int = 3) -> np.ndarray:
    """Size (px) of the stage jump into each frame from the previous registered one, if it
    persists: the smaller of that jump and the step between the median positions of the ``span``
    registered frames from it on and of the ``span`` before it (0 for the first frame and for
    unregistered frames). A jolt is a step that stays; a single badly registered frame jumps
    out and back and moves neither median much."""
    if shifts is None or len(shifts) < 2:
        return np.zeros(0 if shifts is None else len(shifts))
    shifts = np.asarray(shifts, dtype=np.float64)
    ok = np.ones(len(shifts), bool) if registered is None else np.asarray(registered, bool)
    out = np.zeros(len(shifts))
    idx = np.flatnonzero(ok)
    for j in range(1, len(idx)):
        before = shifts[idx[max(0, j - span):j]]
        after = shifts[idx[j:j + span]]
        step = float(np.hypot(*(np.median(after, axis=0) - np.median(before, axis=0))))
        jump = float(np.hypot(*(shifts[idx[j]] - shifts[idx[j - 1]])))
        out[idx[j]] = min(step, jump)  # the jump into this frame, if it persists
    return out


def _jolt_threshold(jump: np.ndarray) -> float:
    """A frame-to-frame displacement (px) above ordinary drift: 3x (median + 3 robust SD), >= 0.5 px."""
    j = jump[1:]
    typical = np.median(j) + 3 * 1.4826 * np.median(np.abs(j - np.median(j)))
    return max(0.5, 3 * typical)


def _jolts(jump: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Frames in [lo, hi] with a jolt."""
    if len(jump) < 3:
        return np.zeros(0, dtype=int)
    lo, hi = max(lo, 1), min(hi, len(jump) - 1)
    if hi < lo:
        return np.zeros(0, dtype=int)
    k = np.arange(lo, hi + 1)
    return k[jump[k] > _jolt_threshold(jump)]


@dataclass
class _Onset:
    t0: float  # onset (frames, continuous): the change starts between frame ceil(t0) - 1 and ceil(t0)
    amplitude: float  # size of the exponential change (trace units)
    significance: float  # (RSS of a line - RSS of the fit) / residual variance

    @property
    def frame(self) -> int:
        return int(np.ceil(self.t0 - 1e-9))


def _best_onset(t: np.ndarray, yy: np.ndarray, t0s: np.ndarray, taus: np.ndarray | tuple[float, ...], sign: int
                ) -> tuple[float, float, float, float] | None:
    """Least-squares line + exponential onset over the grid ``t0s`` x ``taus`` (frames):
    ``(rss, t0, amplitude, tau)`` of the best fit, or None."""
    n = len(t)
    tc = t - t.mean()
    best = None
    for tau in taus:
        if tau > 2 * n:
            continue
        G = 1 - np.exp(-np.clip(t[None, :] - t0s[:, None], 0, None) / tau)  # (K, n)
        A = np.empty((len(t0s), 3, 3))
        b = np.empty((len(t0s), 3))
        A[:, 0, 0], A[:, 0, 1], A[:, 1, 1] = n, tc.sum(), (tc * tc).sum()
        A[:, 0, 2] = G.sum(axis=1)
        A[:, 1, 2] = G @ tc
        A[:, 2, 2] = (G * G).sum(axis=1)
        A[:, 1, 0], A[:, 2, 0], A[:, 2, 1] = A[:, 0, 1], A[:, 0, 2], A[:, 1, 2]
        b[:, 0], b[:, 1], b[:, 2] = yy.sum(), tc @ yy, G @ yy
        good = np.abs(np.linalg.det(A)) > 1e-9 * np.abs(A).max(axis=(1, 2)) ** 3
        if not good.any():
            continue
        beta = np.full((len(t0s), 3), np.nan)
        beta[good] = np.linalg.solve(A[good], b[good][..., None])[..., 0]
        rss = float(yy @ yy) - np.einsum("ki,ki->k", beta, b)
        if sign:
            rss = np.where(np.sign(beta[:, 2]) == sign, rss, np.inf)
        rss = np.where(good, rss, np.inf)
        k = int(np.argmin(rss))
        if np.isfinite(rss[k]) and (best is None or rss[k] < best[0]):
            best = (float(rss[k]), float(t0s[k]), float(beta[k, 2]), float(tau))
    return best


def _fit_onset(y: np.ndarray, lo: int, hi: int, sign: int = 0) -> _Onset | None:
    """Best exponential-onset fit to ``y[lo:hi + 1]`` (see the module docstring); ``sign`` +1/-1
    keeps rises/falls only. None when the window is too short.

    The time constant is found on a coarse ladder (``_TAUS``), then on a fine one (steps of
    2^(1/8)) within a factor 2 of it, with the onset searched again near the first estimate: the
    onset and the time constant trade off against each other, so a time constant between the
    coarse steps would move the onset by several frames for a slow rise.
    """
    lo, hi = max(lo, 0), min(hi, len(y) - 1)
    idx = np.arange(lo, hi + 1)
    idx = idx[np.isfinite(y[idx])]
    n = len(idx)
    if n < 5:
        return None
    t = idx.astype(np.float64)
    yy = y[idx]
    t0s = np.arange(lo + 0.25, hi - 0.5, 0.25)
    if not len(t0s):
        return None
    X0 = np.column_stack([np.ones(n), t - t.mean()])
    beta0, *_ = np.linalg.lstsq(X0, yy, rcond=None)
    rss_line = float(np.sum((yy - X0 @ beta0) ** 2))
    best = _best_onset(t, yy, t0s, _TAUS, sign)
    if best is None:
        return None
    near = t0s[np.abs(t0s - best[1]) <= 8 + 2 * best[3]]
    fine = _best_onset(t, yy, near, best[3] * 2 ** (np.arange(-8, 9) / 8), sign)
    if fine is not None and fine[0] < best[0]:
        best = fine
    rss, t0, amp, _ = best
    var = max(rss, 1e-30) / max(n - 4, 1)
    return _Onset(t0=t0, amplitude=amp, significance=(rss_line - rss) / var)


def _noise(y: np.ndarray) -> float:
    d = np.diff(y[np.isfinite(y)])
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2)) if len(d) > 2 else 0.0


def detect_events(population: np.ndarray, time_s: np.ndarray, shifts: np.ndarray | None,
                  known: dict[str, float | None], *, response: np.ndarray | None = None,
                  registered: np.ndarray | None = None, min_significance: float = 30.0,
                  min_step: float = 0.02, tpen_delay_s: float = 240.0) -> Events:
    """Fill in the addition times the sheet leaves blank (see the module docstring).

    Parameters
    ----------
    population : ndarray (T,)
        A whole-sample trace (e.g. the median over cells of each cell's normalised trace); NaN
        for unregistered frames.
    time_s : ndarray (T,)
        Frame times (s).
    shifts : ndarray (T, 2) or None
        Registration displacements (px).
    known : dict
        ``stimulus_s``, ``pyrithione_s``, ``tpen_s`` from the sheet (None when blank).
    response : ndarray (T,), optional
        The trace in which to look for the stimulus response (e.g. a trimmed mean over cells,
        which moves when half the cells respond); ``population`` when not given.
    registered : ndarray (T,) bool, optional
        Frames whose registration can be trusted (jolts are measured between them).
    min_significance : float
        An onset is accepted when its fit reduces the residual sum of squares of a line by this
        many residual variances.
    min_step : float
        ... and when the change is at least this fraction of the trace's median level.
    tpen_delay_s : float
        How long before the fall of the trace a jolt is taken as the TPEN addition.

    Raises
    ------
    ValueError
        When pyrithione + ZnCl2 or TPEN cannot be found; the message says what is missing and
        which column to fill in.
    """
    y = np.asarray(population, dtype=np.float64)
    t = np.asarray(time_s, dtype=np.float64)
    T = len(y)
    dt = float(np.median(np.diff(t))) if T > 1 else 1.0
    jump = jolt_sizes(shifts, registered)
    level = float(np.nanmedian(np.abs(y))) or 1.0
    smooth = rolling_mean(y, 3)
    src: dict[str, str] = {}
    out: dict[str, float] = {}

    def significant(o: _Onset | None) -> bool:
        return o is not None and o.significance >= min_significance and abs(o.amplitude) >= min_step * level

    def pin(onset: int, back: int, ahead: int = 1) -> tuple[float, str]:
        """The addition at a jolt within [onset - back, onset + ahead] (the nearest), else the onset."""
        js = _jolts(jump, onset - back, onset + ahead)
        if len(js):
            return float(t[js[np.argmin(np.abs(js - onset))]]), "jolt"
        return float(t[min(onset, T - 1)]), "trace"

    def frame(s: float) -> int:
        return int(np.searchsorted(t, s - 1e-9))

    # pyrithione + ZnCl2: the rise to the maximum of the recording
    if known.get("pyrithione_s") is not None:
        out["pyrithione_s"], src["pyrithione_s"] = float(known["pyrithione_s"]), "sheet"
    else:
        if T < 8 or not np.isfinite(smooth).any():
            raise ValueError("too few frames to find pyrithione + ZnCl2; fill in pyrithione_s")
        top = int(np.nanargmax(smooth))
        rise = np.diff(smooth)[:top] if top > 0 else np.zeros(0)
        if not len(rise) or not np.isfinite(rise).any():
            raise ValueError("no pyrithione + ZnCl2 rise found: the whole-field trace is highest in its first frames; "
                             "check that the stack contains the calibration, or fill in pyrithione_s")
        steep = int(np.nanargmax(rise)) + 1
        o = _fit_onset(y, max(0, steep - max(6, round(60.0 / dt))), top, sign=+1)
        if not significant(o):
            raise ValueError("no pyrithione + ZnCl2 rise found in the whole-field trace (no step up to a higher "
                             "plateau); check that the stack contains the calibration, or fill in pyrithione_s")
        out["pyrithione_s"], src["pyrithione_s"] = pin(o.frame, 2)
    k_pyr = frame(out["pyrithione_s"])
    # TPEN: the fall from the Fmax plateau to the level the recording ends on
    if known.get("tpen_s") is not None:
        out["tpen_s"], src["tpen_s"] = float(known["tpen_s"]), "sheet"
    else:
        after = smooth[k_pyr:]
        if len(after) < 5 or not np.isfinite(after).any():
            raise ValueError(f"the stack ends {t[-1] - out['pyrithione_s']:g} s after pyrithione + ZnCl2 "
                             f"({out['pyrithione_s']:g} s): no TPEN fall; check the stack is complete or fill in tpen_s")
        top = k_pyr + int(np.nanargmax(after))
        fall = np.diff(smooth)[top:]
        o = None
        if len(fall) > 3 and np.isfinite(fall).any():
            steep = top + int(np.nanargmin(fall)) + 1
            bottom = steep + int(np.nanargmin(smooth[steep:]))
            o = _fit_onset(y, top, max(bottom, steep + 4), sign=-1)
        # TPEN takes the trace from Fmax down to Fmin, below where it was before pyrithione: a fall
        # of less than half the pyrithione rise is something else (cells detaching, bleaching)
        before = np.nanmedian(smooth[max(0, k_pyr - 5):k_pyr]) if k_pyr > 0 else np.nan
        rise = np.nanmax(smooth[k_pyr:]) - before if np.isfinite(before) else np.nan
        if o is not None and np.isfinite(rise) and abs(o.amplitude) < 0.5 * rise:
            o = None
        if not significant(o):
            earlier = _fit_onset(y, 0, k_pyr - 2) if k_pyr >= 7 else None
            if known.get("pyrithione_s") is not None or significant(earlier):
                raise ValueError(f"no TPEN fall found after the pyrithione + ZnCl2 rise at {out['pyrithione_s']:g} s: "
                                 "the whole-field trace never falls back from its maximum; check that the stack is "
                                 "complete, or fill in tpen_s")
            raise ValueError(f"the whole-field trace rises once (at {out['pyrithione_s']:g} s) and never falls: "
                             "pyrithione + ZnCl2 (a rise to Fmax) or TPEN (the fall to Fmin) is missing, so the "
                             "calibration is incomplete; check that the stack holds both steps, or fill in "
                             "pyrithione_s and tpen_s")
        js = _jolts(jump, k_pyr + 2, o.frame + 1)
        late = js[t[js] >= t[o.frame] - tpen_delay_s] if len(js) else js
        if len(late):
            out["tpen_s"], src["tpen_s"] = float(t[late[0]]), "jolt"
        else:
            out["tpen_s"], src["tpen_s"] = float(t[o.frame]), "trace"
    # stimulus: the onset of the population response before pyrithione (or its jolt)
    if known.get("stimulus_s") is not None:
        out["stimulus_s"], src["stimulus_s"] = float(known["stimulus_s"]), "sheet"
    else:
        r = y if response is None else np.asarray(response, dtype=np.float64)
        # the last frames before a detected pyrithione may already hold its first rise
        o = _fit_onset(r, 0, k_pyr - 2) if k_pyr >= 7 else None
        if significant(o) and 1 <= o.frame <= k_pyr - 3:
            # a slow or noisy response's fitted onset may read a few frames early: its jolt up to 3
            # frames after it is still the addition (sweep stack 15, SNR 3.8: onset 3 frames early)
            out["stimulus_s"], src["stimulus_s"] = pin(o.frame, 2, ahead=3)
        else:
            js = _jolts(jump, 1, k_pyr - 2)
            if len(js):
                out["stimulus_s"], src["stimulus_s"] = float(t[js[0]]), "jolt"
            else:
                out["stimulus_s"], src["stimulus_s"] = float("nan"), "not found"
    if out["tpen_s"] <= out["pyrithione_s"]:
        raise ValueError(f"TPEN ({out['tpen_s']:g} s) is not after pyrithione + ZnCl2 ({out['pyrithione_s']:g} s); "
                         "fill in pyrithione_s and tpen_s")
    if np.isfinite(out["stimulus_s"]) and out["stimulus_s"] >= out["pyrithione_s"]:
        out["stimulus_s"], src["stimulus_s"] = float("nan"), "not found"
    return Events(stimulus_s=out["stimulus_s"], pyrithione_s=out["pyrithione_s"], tpen_s=out["tpen_s"], source=src)
