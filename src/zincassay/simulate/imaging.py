"""FluoZin-3 time-lapse simulator with in-situ calibration, with ground truth.

Physics
-------
Per cell and frame the dye's fluorescence is
``F = load * bleach(t) * (Fmin + (Fmax - Fmin) * Zn / (Zn + Kd))`` (single-wavelength form of
Grynkiewicz et al. 1985), with ``Fmin``/``Fmax`` per unit load and Kd = 15 nM (FluoZin-3,
Gee et al. 2002). Free zinc follows the protocol: a baseline, a stimulus-evoked rise, then
pyrithione + ZnCl2 (Zn -> 10^5 nM, saturating the probe: Fmax), then TPEN (Zn -> 0: Fmin).

The image adds a camera offset, a medium background that brightens when calibration zinc meets
leaked dye, photon shot noise (Poisson), read noise, clipping at the camera's bit depth,
photobleaching (exponential in time), slow stage drift with a jolt at each addition, a few
over-loaded cells that saturate at Fmax and a few cells that detach after pyrithione.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile

__all__ = ["ImagingParams", "simulate_stack", "write_imaging_sample", "zinc_trace"]


@dataclass
class ImagingParams:
    """One simulated field of view. Times in s, intensities in camera counts, zinc in nM."""

    shape: tuple[int, int] = (80, 112)
    n_frames: int = 84
    frame_interval_s: float = 5.0
    stimulus_s: float = 120.0  # a 2-min baseline: the bleaching rate is estimated from it
    pyrithione_s: float = 240.0
    tpen_s: float = 300.0
    n_cells: int = 16
    radius_px: tuple[float, float] = (4.5, 7.0)
    kd_nM: float = 15.0
    fmin_per_load: float = 40.0
    dynamic_range: float = 6.0
    load_median: float = 3.0
    baseline_zn_nM: float = 1.0
    rise_zn_nM: float = 4.0
    responder_fraction: float = 0.8
    bit_depth: int = 12
    camera_offset: float = 100.0
    read_noise: float = 3.0
    bleach_tau_s: float = 2500.0
    drift_px_per_frame: tuple[float, float] = (0.03, -0.02)
    jolt_px: float = 3.0
    n_overloaded: int = 2
    n_detaching: int = 2
    pixel_size_um: float = 0.65


def zinc_trace(t: np.ndarray, p: ImagingParams, baseline: float, rise: float) -> np.ndarray:
    """Free [Zn2+] (nM) at times ``t`` (s) for one cell."""
    zn = np.full(t.shape, baseline, dtype=np.float64)
    s = (t >= p.stimulus_s) & (t < p.pyrithione_s)
    zn[s] = baseline + rise * (1 - np.exp(-(t[s] - p.stimulus_s) / 20.0))
    pre = baseline + rise * (1 - np.exp(-(p.pyrithione_s - p.stimulus_s) / 20.0))
    y = (t >= p.pyrithione_s) & (t < p.tpen_s)
    zn[y] = pre + (1e5 - pre) * (1 - np.exp(-(t[y] - p.pyrithione_s) / 6.0))
    at_tpen = pre + (1e5 - pre) * (1 - np.exp(-(p.tpen_s - p.pyrithione_s) / 6.0))
    z = t >= p.tpen_s
    zn[z] = at_tpen * np.exp(-(t[z] - p.tpen_s) / 5.0)
    return zn


def _shifts(rng: np.random.Generator, p: ImagingParams, t: np.ndarray) -> np.ndarray:
    """Stage position (dy, dx) in px per frame: slow drift plus a jolt at each addition."""
    frames = np.arange(p.n_frames)
    shift = np.outer(frames, p.drift_px_per_frame[::-1]).astype(np.float64)
    for event in (p.stimulus_s, p.pyrithione_s, p.tpen_s):
        angle = rng.uniform(0, 2 * np.pi)
        jolt = p.jolt_px * rng.uniform(0.6, 1.0) * np.array([np.sin(angle), np.cos(angle)])
        shift[t >= event] += jolt
    return shift


def _place_cells(rng: np.random.Generator, p: ImagingParams) -> pd.DataFrame:
    h, w = p.shape
    margin = p.radius_px[1] + p.jolt_px * 3 + 3
    rows: list[tuple[float, float, float]] = []
    tries = 0
    while len(rows) < p.n_cells and tries < 5000:
        tries += 1
        r = rng.uniform(*p.radius_px)
        y, x = rng.uniform(margin, h - margin), rng.uniform(margin, w - margin)
        # allow touching (watershed must split them) but not heavy overlap
        if all(np.hypot(y - y2, x - x2) > 0.85 * (r + r2) for y2, x2, r2 in rows):
            rows.append((y, x, r))
    return pd.DataFrame(rows, columns=["y", "x", "radius_px"])


def simulate_stack(rng: np.random.Generator, p: ImagingParams) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Simulate one stack.

    Returns
    -------
    stack : ndarray (T, Y, X) uint16
    cells : DataFrame, one row per cell: ``cell_id``, ``x``, ``y`` (px, frame 0), ``radius_px``,
        ``load``, ``baseline_zn_nM``, ``peak_zn_nM``, ``responder``, ``saturates``, ``detaches``,
        ``fmin``, ``fmax`` (counts above background at t = 0, before bleaching).
    traces : DataFrame ``cell_id, frame, time_s, zn_nM, f_true`` (f_true: counts above background).
    frames : DataFrame ``frame, time_s, shift_y_px, shift_x_px, background``.
    """
    t = np.arange(p.n_frames) * p.frame_interval_s
    cells = _place_cells(rng, p)
    n = len(cells)
    cells.insert(0, "cell_id", np.arange(1, n + 1))
    cells["load"] = p.load_median * np.power(10.0, rng.normal(0, 0.12, n))
    special = rng.permutation(n)
    over = special[: p.n_overloaded]
    detach = special[p.n_overloaded : p.n_overloaded + p.n_detaching]
    maxval = 2**p.bit_depth - 1
    cells.loc[over, "load"] = (maxval * 1.4) / (p.fmin_per_load * p.dynamic_range)
    cells["baseline_zn_nM"] = p.baseline_zn_nM * np.power(10.0, rng.normal(0, 0.1, n))
    responder = rng.random(n) < p.responder_fraction
    rise = np.where(responder, p.rise_zn_nM * np.power(10.0, rng.normal(0, 0.1, n)), 0.05 * p.rise_zn_nM)
    cells["responder"] = responder
    cells["detaches"] = False
    cells.loc[detach, "detaches"] = True
    fmin = cells["load"].to_numpy() * p.fmin_per_load
    fmax = fmin * p.dynamic_range
    cells["fmin"], cells["fmax"] = fmin, fmax

    bleach = np.exp(-t / p.bleach_tau_s)
    shifts = _shifts(rng, p, t)
    bg = p.camera_offset + 15.0 + 25.0 / (1 + np.exp(-(t - p.pyrithione_s - 10) / 5.0)) * (1 - 0.6 / (1 + np.exp(-(t - p.tpen_s - 20) / 8.0)))
    h, w = p.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    signal = np.zeros((p.n_frames, h, w), dtype=np.float64)
    trace_rows = []
    peaks = []
    attached = np.ones((n, p.n_frames))
    for i in range(n):
        zn = zinc_trace(t, p, cells.at[i, "baseline_zn_nM"], rise[i])
        peaks.append(zn[(t >= p.stimulus_s) & (t < p.pyrithione_s)].max())
        f = fmin[i] + (fmax[i] - fmin[i]) * zn / (zn + p.kd_nM)
        if cells.at[i, "detaches"]:
            attached[i] = 1.0 / (1 + np.exp((t - (p.pyrithione_s + 30.0)) / 4.0))
        f_t = f * bleach * attached[i]
        r = cells.at[i, "radius_px"]
        for k in range(p.n_frames):
            cy, cx = cells.at[i, "y"] + shifts[k, 0], cells.at[i, "x"] + shifts[k, 1]
            y0, y1 = int(max(cy - r - 3, 0)), int(min(cy + r + 4, h))
            x0, x1 = int(max(cx - r - 3, 0)), int(min(cx + r + 4, w))
            d = np.hypot(yy[y0:y1, x0:x1] - cy, xx[y0:y1, x0:x1] - cx)
            signal[k, y0:y1, x0:x1] += f_t[k] / (1 + np.exp((d - r) / 0.6))
        for k in range(p.n_frames):
            trace_rows.append((i + 1, k, t[k], zn[k], f_t[k]))
    cells["peak_zn_nM"] = peaks
    cells["saturates"] = (fmax * bleach[t >= p.pyrithione_s].max() + bg.max()) > maxval
    expected = signal + bg[:, None, None]
    counts = rng.poisson(expected).astype(np.float64) + rng.normal(0, p.read_noise, expected.shape)
    stack = np.clip(np.rint(counts), 0, maxval).astype(np.uint16)
    traces = pd.DataFrame(trace_rows, columns=["cell_id", "frame", "time_s", "zn_nM", "f_true"])
    frames = pd.DataFrame({"frame": np.arange(p.n_frames), "time_s": t, "shift_y_px": shifts[:, 0],
                           "shift_x_px": shifts[:, 1], "background": bg})
    return stack, cells, traces, frames


def write_imaging_sample(path: str | Path, rng: np.random.Generator, p: ImagingParams) -> dict:
    """Simulate one stack and write it as an ImageJ TIFF (uint16, ``finterval`` = frame interval).

    Returns truth: ``cells``, ``traces`` and ``frames`` DataFrames (see :func:`simulate_stack`).
    """
    stack, cells, traces, frames = simulate_stack(rng, p)
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    tifffile.imwrite(
        tmp, stack, imagej=True, resolution=(1 / p.pixel_size_um, 1 / p.pixel_size_um),
        metadata={"axes": "TYX", "finterval": p.frame_interval_s, "unit": "um",
                  "Info": f"camera_bit_depth={p.bit_depth}\nsimulator=zincassay"},
        photometric="minisblack",
    )
    tmp.replace(path)
    return {"cells": cells, "traces": traces, "frames": frames}
