"""Addition times of the calibration protocol: stimulus, pyrithione + ZnCl2 (Fmax), TPEN (Fmin).

:class:`Events` holds the times (s) and how each was obtained; :func:`detect_events` fills in the
times the sample sheet leaves blank from the whole-field trace and the registration jolts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Events", "detect_events", "rolling_mean"]


def rolling_mean(x: np.ndarray, w: int) -> np.ndarray:
    """Centred rolling mean along axis 0, shrinking at the ends; shape preserved."""
    x = np.asarray(x, dtype=np.float64)
    c = np.cumsum(np.concatenate([np.zeros((1, *x.shape[1:])), x]), axis=0)
    n = len(x)
    lo = np.clip(np.arange(n) - w // 2, 0, n)
    hi = np.clip(np.arange(n) + w - w // 2, 0, n)
    return (c[hi] - c[lo]) / (hi - lo).reshape((-1,) + (1,) * (x.ndim - 1))


@dataclass
class Events:
    """Addition times (s) and how each was obtained (``sheet``, ``jolt`` or ``trace``)."""

    stimulus_s: float
    pyrithione_s: float
    tpen_s: float
    source: dict[str, str] = field(default_factory=dict)

    @property
    def detected(self) -> list[str]:
        return sorted(k for k, v in self.source.items() if v != "sheet")


def _jumps(shifts: np.ndarray | None) -> np.ndarray:
    """Size (px) of the stage displacement between consecutive frames; jump[k] is into frame k."""
    if shifts is None or len(shifts) < 2:
        return np.zeros(0 if shifts is None else len(shifts))
    return np.concatenate([[0.0], np.hypot(*np.diff(shifts, axis=0).T)])


def _jolt_threshold(jump: np.ndarray) -> float:
    """A frame-to-frame displacement (px) above ordinary drift: 3x (median + 3 robust SD), >= 0.5 px."""
    j = jump[1:]
    typical = np.median(j) + 3 * 1.4826 * np.median(np.abs(j - np.median(j)))
    return max(0.5, 3 * typical)


def _jolt_near(jump: np.ndarray, lo: int, hi: int) -> int | None:
    """The frame with the largest jolt in [lo, hi] if it stands out from ordinary drift."""
    if len(jump) == 0:
        return None
    lo, hi = max(lo, 1), min(hi, len(jump) - 1)
    if hi < lo:
        return None
    k = lo + int(np.argmax(jump[lo:hi + 1]))
    return k if jump[k] > _jolt_threshold(jump) else None


def detect_events(population: np.ndarray, time_s: np.ndarray, shifts: np.ndarray | None,
                  known: dict[str, float | None]) -> Events:
    """Fill in the addition times the sheet leaves blank.

    Pyrithione + ZnCl2 is the steepest rise of the sample's median trace; TPEN the onset of the
    steepest fall after it. Adding a reagent by hand jolts the dish, so a jolt in the
    registration shifts just before a trace change pins the addition to the frame; without one
    the trace onset is used (TPEN then reads late: the probe stays saturated until chelation
    brings zinc near Kd). The stimulus, if blank, is the first jolt before pyrithione.

    Parameters
    ----------
    population : ndarray (T,)
        Median background-subtracted intensity over cells per frame.
    time_s : ndarray (T,)
    shifts : ndarray (T, 2) or None
        Registration displacements (px).
    known : dict
        ``stimulus_s``, ``pyrithione_s``, ``tpen_s`` from the sheet (None when blank).

    Raises
    ------
    ValueError
        When an event cannot be found; the message says which column to fill in.
    """
    p = rolling_mean(population, 2)
    d = np.diff(p)
    jump = _jumps(shifts)
    src: dict[str, str] = {}
    out: dict[str, float] = {}
    noise = 1.4826 * np.median(np.abs(np.diff(d))) if len(d) > 2 else 0.0

    def addition(onset: int, lookback: int) -> tuple[float, str]:
        j = _jolt_near(jump, onset - lookback, onset + 1)
        if j is not None:
            return float(time_s[j]), "jolt"
        return float(time_s[onset]), "trace"

    if known.get("pyrithione_s") is not None:
        out["pyrithione_s"], src["pyrithione_s"] = float(known["pyrithione_s"]), "sheet"
        k_pyr = int(np.searchsorted(time_s, out["pyrithione_s"]))
    else:
        if len(d) < 3 or d.max() <= 5 * noise:
            raise ValueError("no pyrithione + ZnCl2 rise found in the whole-field trace; fill in pyrithione_s")
        k = int(np.argmax(d))
        while k > 0 and d[k - 1] > max(0.1 * d.max(), 3 * noise):
            k -= 1
        out["pyrithione_s"], src["pyrithione_s"] = addition(k, 2)
        k_pyr = int(np.searchsorted(time_s, out["pyrithione_s"]))
    if known.get("tpen_s") is not None:
        out["tpen_s"], src["tpen_s"] = float(known["tpen_s"]), "sheet"
    else:
        after = d[k_pyr + 1:]
        if len(after) < 2 or after.min() >= -5 * noise:
            raise ValueError("no TPEN fall found after pyrithione in the whole-field trace; fill in tpen_s")
        k = k_pyr + 1 + int(np.argmin(after))
        while k > k_pyr + 1 and d[k - 1] < -max(0.1 * abs(after.min()), 3 * noise):
            k -= 1
        dt = float(np.median(np.diff(time_s)))
        out["tpen_s"], src["tpen_s"] = addition(k, max(round(60.0 / dt), 2))
    if known.get("stimulus_s") is not None:
        out["stimulus_s"], src["stimulus_s"] = float(known["stimulus_s"]), "sheet"
    else:
        j = _jolt_near(jump, 1, k_pyr - 2)
        if j is None:
            raise ValueError("the stimulus time is blank and no addition jolt was found before pyrithione; "
                             "fill in stimulus_s")
        # the first clear jolt, not just the largest one
        first = next(k for k in range(1, k_pyr - 1) if jump[k] > _jolt_threshold(jump))
        out["stimulus_s"], src["stimulus_s"] = float(time_s[first]), "jolt"
    return Events(stimulus_s=out["stimulus_s"], pyrithione_s=out["pyrithione_s"], tpen_s=out["tpen_s"], source=src)
