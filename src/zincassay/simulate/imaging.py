"""FluoZin-3 time-lapse simulator with in-situ calibration, with ground truth.

Physics
-------
Per cell and frame the dye's fluorescence is
``F = load * bleach(t) * (Fmin + (Fmax - Fmin) * f(t)) * attached(t)``, ``f = Zn / (Zn + Kd)``
(single-wavelength form of Grynkiewicz et al. 1985), with ``Fmin``/``Fmax`` per unit load and
Kd = 15 nM (FluoZin-3, Gee et al. 2002). Free zinc follows the protocol: a baseline, a
stimulus-evoked rise (responders; per-cell amplitude and time constant), then pyrithione + ZnCl2
(f rises to saturation with a time constant: Fmax), then TPEN ([Zn] decays exponentially, so f
stays near 1 until [Zn] nears Kd and Fmin is reached late).

Each cell is an ellipse (axis ratio, orientation) whose profile runs from flat (a spread cell) to
the projection of a sphere (a round lymphocyte), with a blurred edge, an optional nucleus of
different brightness and cytoplasmic granularity. At the stimulus cells change shape a little; at
pyrithione they round up (radii shrink, profile becomes a dome) with their dye conserved, so a
fixed mask sees their mean change. Cells may touch or overlap (their light adds).

The image is ``offset + illumination(x, y) * (medium(t) + sum of cells)`` with the illumination
fixed to the optics (vignetting and a tilt; cells move through it as the stage drifts), a medium
that brightens when calibration zinc meets leaked dye and dims again after TPEN, photon shot noise
(Poisson in electrons, ``gain_e_per_count``), Gaussian read noise and clipping at the camera's bit
depth (12, 14 or 16 bit data stored in uint16). The stage drifts slowly (linear, or settling
exponentially, plus a small random walk) and jolts at each addition (per-addition sizes, 0 = no
jolt). Over-loaded cells saturate at Fmax; detaching cells fade (and may float away) after
pyrithione.

Truth: per cell (position, size, load, baseline and peak [Zn2+], responder, saturates = a pixel of
the noise-free image reaches the camera maximum while the cell is at Fmax, detaches and when),
per frame (stage shift, jump, mean background) and per cell and frame ([Zn2+], amplitude).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile

__all__ = ["ImagingParams", "simulate_stack", "write_imaging_sample", "zinc_trace"]

#: [Zn2+] (nM) that pyrithione + ZnCl2 drives cells towards (saturates any zinc probe)
ZN_SATURATING_NM = 1e5


@dataclass
class ImagingParams:
    """One simulated field of view. Times in s, intensities in camera counts, zinc in nM, sizes in px.

    Defaults give a small, easy stack (flat round cells, 12-bit camera with its bit depth in the
    metadata, linear drift and a 3-px jolt at each addition); ``validation/imaging_sweep.py``
    draws every parameter over a documented range.
    """

    # field and protocol
    shape: tuple[int, int] = (80, 112)
    n_frames: int = 84
    frame_interval_s: float = 5.0
    stimulus_s: float = 120.0  # a 2-min baseline: the bleaching rate is estimated from it
    pyrithione_s: float = 240.0
    tpen_s: float = 300.0
    pixel_size_um: float = 0.65
    # cells: number, size (radius, px), shape
    n_cells: int = 16
    radius_px: tuple[float, float] = (4.5, 7.0)
    aspect: tuple[float, float] = (1.0, 1.0)  # major / minor axis, drawn per cell in this range
    dome: float = 0.0  # profile (1 - rho^2)^dome: 0 flat (spread cell), 0.5 projection of a sphere
    edge_px: float = 0.6  # width of the blurred edge (logistic scale, px)
    nucleus_ratio: float = 1.0  # brightness of the nucleus relative to the cytoplasm
    texture: float = 0.0  # relative amplitude of cytoplasmic granularity
    min_separation: float = 0.85  # closest centre distance / (r1 + r2); below 1 cells touch or overlap
    shape_change: float = 0.0  # at the stimulus each radius changes by up to +-this fraction
    rounding: float = 0.0  # at pyrithione radii shrink by up to this fraction, axis ratio -> 1, dome -> 0.5
    rounding_applied: bool = True  # False: rounding's random numbers are drawn, the cells left as they are (ablation)
    # probe and zinc
    kd_nM: float = 15.0
    fmin_per_load: float = 40.0
    dynamic_range: float = 6.0
    load_median: float = 3.0
    load_sd_log10: float = 0.12  # loading spread between cells
    baseline_zn_nM: float = 1.0
    baseline_sd_log10: float = 0.1
    rise_zn_nM: float = 4.0
    rise_sd_log10: float = 0.1
    responder_fraction: float = 0.8
    rise_tau_s: float = 20.0  # stimulus response time constant (per cell: x 10^N(0, 0.1))
    fmax_tau_s: float = 2.0  # time constant of the rise of f to saturation after pyrithione + ZnCl2
    tpen_tau_s: float = 5.0  # time constant of the [Zn2+] decay after TPEN
    # camera
    bit_depth: int = 12
    camera_offset: float = 100.0
    read_noise: float = 3.0
    gain_e_per_count: float = 1.0  # photo-electrons per count (shot noise)
    # background and illumination
    medium_counts: float = 15.0  # medium autofluorescence + resting extracellular dye (at full illumination)
    leak_counts: float = 25.0  # rise of the medium at Fmax (leaked dye meets the calibration zinc)
    illumination_falloff: float = 0.0  # vignetting: fraction lost at the corners
    illumination_tilt: float = 0.0  # linear gradient across the field (fraction, end to end)
    # losses
    bleach_tau_s: float = 2500.0  # dye in cells: exp(-t / tau)
    # stage motion
    drift_px_per_frame: tuple[float, float] = (0.03, -0.02)  # (dx, dy) per frame, when drift_px is None
    drift_px: float | None = None  # total drift over the recording (random direction, settling)
    jitter_px: float = 0.0  # random-walk step (px per frame) on top of the drift
    jolt_px: float = 3.0  # jolt at each addition: jolt_px x U(0.6, 1), when jolts_px is None
    jolts_px: tuple[float, float, float] | None = None  # exact jolt per addition (0 = none)
    # special cells
    n_overloaded: int = 2
    overload: tuple[float, float] = (1.4, 1.4)  # brightest noise-free pixel at Fmax / camera maximum
    n_detaching: int = 2
    detach_after_s: tuple[float, float] = (30.0, 30.0)  # detachment time after pyrithione
    detach_fade_s: float = 4.0
    detach_speed_px_per_s: float = 0.0  # a detaching cell floats off in a random direction


def zinc_trace(t: np.ndarray, p: ImagingParams, baseline: float, rise: float,
               rise_tau_s: float | None = None) -> np.ndarray:
    """Free [Zn2+] (nM) at times ``t`` (s) for one cell."""
    tau = p.rise_tau_s if rise_tau_s is None else rise_tau_s
    zn = np.full(t.shape, baseline, dtype=np.float64)
    s = (t >= p.stimulus_s) & (t < p.pyrithione_s)
    zn[s] = baseline + rise * (1 - np.exp(-(t[s] - p.stimulus_s) / tau))
    pre = baseline + rise * (1 - np.exp(-(p.pyrithione_s - p.stimulus_s) / tau))
    f_pre, f_sat = pre / (pre + p.kd_nM), ZN_SATURATING_NM / (ZN_SATURATING_NM + p.kd_nM)

    def f_after_pyr(x: np.ndarray) -> np.ndarray:
        return f_sat - (f_sat - f_pre) * np.exp(-(x - p.pyrithione_s) / max(p.fmax_tau_s, 1e-9))

    y = (t >= p.pyrithione_s) & (t < p.tpen_s)
    f = f_after_pyr(t[y])
    zn[y] = p.kd_nM * f / (1 - f)
    f_t = f_after_pyr(np.array([p.tpen_s]))[0]
    at_tpen = p.kd_nM * f_t / (1 - f_t)
    z = t >= p.tpen_s
    zn[z] = at_tpen * np.exp(-(t[z] - p.tpen_s) / p.tpen_tau_s)
    return zn


def _events(p: ImagingParams) -> tuple[float, float, float]:
    return (p.stimulus_s, p.pyrithione_s, p.tpen_s)


def _shifts(rng: np.random.Generator, p: ImagingParams, t: np.ndarray) -> np.ndarray:
    """Stage position (dy, dx) in px per frame: slow drift plus a jolt at each addition."""
    frames = np.arange(p.n_frames)
    if p.drift_px is None:
        shift = np.outer(frames, p.drift_px_per_frame[::-1]).astype(np.float64)
    else:
        angle = rng.uniform(0, 2 * np.pi)
        span = max(t[-1], 1e-9)
        tau = rng.uniform(0.3, 2.0) * span  # thermal settling: fast at first, then slower
        path = (1 - np.exp(-t / tau)) / (1 - np.exp(-span / tau))
        shift = np.outer(path * p.drift_px, [np.sin(angle), np.cos(angle)])
    if p.jitter_px > 0:
        shift += np.cumsum(rng.normal(0, p.jitter_px, (p.n_frames, 2)), axis=0)
    for k, event in enumerate(_events(p)):
        angle = rng.uniform(0, 2 * np.pi)
        size = p.jolt_px * rng.uniform(0.6, 1.0) if p.jolts_px is None else p.jolts_px[k]
        shift[t >= event] += size * np.array([np.sin(angle), np.cos(angle)])
    return shift - shift[0]


def _illumination(rng: np.random.Generator, p: ImagingParams) -> np.ndarray | None:
    """Relative illumination (Y, X), 1 at its brightest point; None when even."""
    if p.illumination_falloff <= 0 and p.illumination_tilt <= 0:
        return None
    h, w = p.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    cy, cx = h / 2 + rng.uniform(-0.25, 0.25) * h, w / 2 + rng.uniform(-0.25, 0.25) * w
    rho2 = ((yy - cy) ** 2 + (xx - cx) ** 2) / ((h / 2) ** 2 + (w / 2) ** 2)
    angle = rng.uniform(0, 2 * np.pi)
    u = ((yy - h / 2) * np.sin(angle) + (xx - w / 2) * np.cos(angle)) / np.hypot(h, w)
    field = (1 - p.illumination_falloff * np.minimum(rho2, 1.5)) * (1 + p.illumination_tilt * u)
    return field / field.max()


def _place_cells(rng: np.random.Generator, p: ImagingParams, margin: float) -> pd.DataFrame:
    h, w = p.shape
    rows: list[tuple[float, float, float]] = []
    tries = 0
    while len(rows) < p.n_cells and tries < 20000:
        tries += 1
        r = rng.uniform(*p.radius_px)
        m = margin + r
        if h - 2 * m <= 0 or w - 2 * m <= 0:
            break
        y, x = rng.uniform(m, h - m), rng.uniform(m, w - m)
        # touching allowed (watershed must split them), heavy overlap not
        if all(np.hypot(y - y2, x - x2) > p.min_separation * (r + r2) for y2, x2, r2 in rows):
            rows.append((y, x, r))
    return pd.DataFrame(rows, columns=["y", "x", "radius_px"])


@dataclass
class _Cell:
    """Shape of one cell (px, radians); ``blobs``: (k, 4) texture/nucleus spots in cell units."""

    a: np.ndarray  # semi-axes per frame (T,)
    b: np.ndarray
    theta: float
    dome: np.ndarray  # (T,)
    nucleus: tuple[float, float, float]  # centre (u, v) and radius in units of the semi-axes
    blobs: np.ndarray


def _profile(cell: _Cell, k: int, dy: np.ndarray, dx: np.ndarray, edge: float, p: ImagingParams) -> np.ndarray:
    """Noise-free profile (peak about 1 before dye conservation) at offsets (dy, dx) from the centre."""
    # Python floats keep float32 offsets in float32 (speed)
    a, b, th, dome = float(cell.a[k]), float(cell.b[k]), float(cell.theta), float(cell.dome[k])
    c, s = np.cos(th), np.sin(th)
    u = (dx * c + dy * s) / a
    v = (dy * c - dx * s) / b
    rho = np.sqrt(u * u + v * v)
    size = float(np.sqrt(a * b))
    prof = 1.0 / (1.0 + np.exp(np.clip((rho - 1.0) * size / edge, -50, 50)))
    if dome > 0:
        prof *= (1.0 - np.minimum(rho, 0.97) ** 2) ** dome
    if p.nucleus_ratio != 1.0:
        nu, nv, nr = cell.nucleus
        rn = np.sqrt((u - nu) ** 2 + (v - nv) ** 2) / nr
        prof *= 1.0 + (p.nucleus_ratio - 1.0) / (1.0 + np.exp(np.clip((rn - 1.0) * nr * size / edge, -50, 50)))
    if p.texture > 0:
        tex = np.zeros_like(prof)
        for bu, bv, bs, sign in cell.blobs.tolist():
            tex += sign * np.exp(-((u - bu) ** 2 + (v - bv) ** 2) / (2 * bs**2))
        prof *= np.maximum(1.0 + p.texture * tex, 0.05)
    return prof


def _smoothstep(t: np.ndarray, t0: float, width: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(np.clip(-(t - t0) / max(width, 1e-9), -50, 50)))


def _cell_shapes(rng: np.random.Generator, p: ImagingParams, radius: np.ndarray, t: np.ndarray) -> list[_Cell]:
    out = []
    for r in radius:
        ratio = rng.uniform(*p.aspect)
        a0, b0 = r * np.sqrt(ratio), r / np.sqrt(ratio)
        theta = rng.uniform(0, np.pi)
        a, b = np.full(len(t), a0), np.full(len(t), b0)
        dome = np.full(len(t), float(p.dome))
        if p.shape_change > 0:
            ca, cb = 1 + rng.uniform(-p.shape_change, p.shape_change, 2)
            step = _smoothstep(t, p.stimulus_s + 15.0, 6.0)
            a, b = a * (1 + (ca - 1) * step), b * (1 + (cb - 1) * step)
        if p.rounding > 0:
            shrink = 1 - rng.uniform(0, p.rounding)
            if p.rounding_applied:
                step = _smoothstep(t, p.pyrithione_s + 20.0, 8.0)
                target = np.sqrt(a * b) * shrink
                a, b = a + (target - a) * step, b + (target - b) * step
                dome = dome + (max(p.dome, 0.5) - dome) * step
        nucleus = (rng.uniform(-0.15, 0.15), rng.uniform(-0.15, 0.15), rng.uniform(0.35, 0.55))
        n_blobs = 5 if p.texture > 0 else 0
        blobs = np.column_stack([rng.uniform(-0.8, 0.8, n_blobs), rng.uniform(-0.8, 0.8, n_blobs),
                                 rng.uniform(0.08, 0.2, n_blobs), rng.choice([-1.0, 1.0], n_blobs)])
        out.append(_Cell(a=a, b=b, theta=theta, dome=dome, nucleus=nucleus, blobs=blobs))
    return out


def simulate_stack(rng: np.random.Generator, p: ImagingParams) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Simulate one stack.

    Returns
    -------
    stack : ndarray (T, Y, X) uint16
        Counts clipped at ``2**bit_depth - 1``.
    cells : DataFrame, one row per cell: ``cell_id``, ``x``, ``y`` (px, frame 0), ``radius_px``,
        ``diameter_um``, ``load``, ``baseline_zn_nM``, ``peak_zn_nM``, ``responder``, ``saturates``,
        ``detaches``, ``detach_s``, ``touches`` (another cell within the sum of radii), ``fmin``,
        ``fmax`` (counts above background at t = 0 at full illumination, before bleaching).
    traces : DataFrame ``cell_id, frame, time_s, zn_nM, f_true`` (f_true: the cell's amplitude,
        counts above background at full illumination).
    frames : DataFrame ``frame, time_s, shift_y_px, shift_x_px, jump_px, background`` (mean
        background over the field, counts) and ``event`` (the addition the frame follows first).
    """
    t = np.arange(p.n_frames) * p.frame_interval_s
    maxval = 2**p.bit_depth - 1
    shifts = _shifts(rng, p, t)
    excursion = float(np.abs(shifts).max()) if len(shifts) else 0.0
    cells = _place_cells(rng, p, margin=excursion + 3 * p.edge_px + 2)
    n = len(cells)
    cells.insert(0, "cell_id", np.arange(1, n + 1))
    cells["load"] = p.load_median * np.power(10.0, rng.normal(0, p.load_sd_log10, n))
    special = rng.permutation(n)
    over = special[: p.n_overloaded]
    detach = special[p.n_overloaded : p.n_overloaded + p.n_detaching]
    cells["baseline_zn_nM"] = p.baseline_zn_nM * np.power(10.0, rng.normal(0, p.baseline_sd_log10, n))
    responder = rng.random(n) < p.responder_fraction
    rise = np.where(responder, p.rise_zn_nM * np.power(10.0, rng.normal(0, p.rise_sd_log10, n)), 0.05 * p.rise_zn_nM)
    rise_tau = p.rise_tau_s * np.power(10.0, rng.normal(0, 0.1, n))
    cells["responder"] = responder
    cells["detaches"] = False
    cells.loc[detach, "detaches"] = True
    detach_s = np.full(n, np.nan)
    detach_s[detach] = p.pyrithione_s + rng.uniform(*p.detach_after_s, len(detach))
    cells["detach_s"] = detach_s
    illum = _illumination(rng, p)
    shapes = _cell_shapes(rng, p, cells["radius_px"].to_numpy(), t)
    h, w = p.shape
    if len(over):
        # over-loaded: the brightest noise-free pixel at Fmax is overload x the camera maximum
        factor = rng.uniform(*p.overload, len(over))
        for j, i in enumerate(over):
            yi, xi = int(np.clip(round(cells.at[i, "y"]), 0, h - 1)), int(np.clip(round(cells.at[i, "x"]), 0, w - 1))
            light = 1.0 if illum is None else illum[yi, xi]
            peak_prof = max(p.nucleus_ratio, 1.0) * (1 + p.texture)
            cells.loc[i, "load"] = factor[j] * maxval / (p.fmin_per_load * p.dynamic_range * light * peak_prof)
    load = cells["load"].to_numpy()
    fmin = load * p.fmin_per_load
    fmax = fmin * p.dynamic_range
    cells["fmin"], cells["fmax"] = fmin, fmax
    # touching: another cell closer than the sum of their radii
    yx = cells[["y", "x"]].to_numpy()
    rr = cells["radius_px"].to_numpy()
    d = np.hypot(yx[:, None, 0] - yx[None, :, 0], yx[:, None, 1] - yx[None, :, 1]) + np.eye(n) * 1e9
    cells["touches"] = (d < (rr[:, None] + rr[None, :])).any(axis=1) if n else np.zeros(0, bool)
    cells["diameter_um"] = 2 * np.array([np.sqrt(s.a[0] * s.b[0]) for s in shapes]) * p.pixel_size_um

    bleach = np.exp(-t / p.bleach_tau_s)
    # medium: autofluorescence + resting dye, brightening as leaked dye meets the calibration zinc,
    # back towards the dye's Fmin once TPEN has chelated it
    lit = _smoothstep(t, p.pyrithione_s + 10.0, 5.0)
    chelated = _smoothstep(t, p.tpen_s + p.tpen_tau_s * np.log(ZN_SATURATING_NM / p.kd_nM), 2 * p.tpen_tau_s)
    medium = p.medium_counts + p.leak_counts * lit * (1 - (1 - 1 / p.dynamic_range) * chelated)
    zn = np.empty((p.n_frames, n))
    amp = np.empty((p.n_frames, n))
    peaks = np.empty(n)
    attached = np.ones((n, p.n_frames))
    stim = (t >= p.stimulus_s) & (t < p.pyrithione_s)
    for i in range(n):
        zn[:, i] = zinc_trace(t, p, cells.at[i, "baseline_zn_nM"], rise[i], rise_tau[i])
        peaks[i] = zn[stim, i].max() if stim.any() else np.nan
        f = fmin[i] + (fmax[i] - fmin[i]) * zn[:, i] / (zn[:, i] + p.kd_nM)
        if cells.at[i, "detaches"]:
            attached[i] = 1.0 - _smoothstep(t, detach_s[i], p.detach_fade_s)
        amp[:, i] = f * bleach * attached[i]
    cells["peak_zn_nM"] = peaks
    float_angle = rng.uniform(0, 2 * np.pi, n)
    edge = max(p.edge_px, 0.3)
    stack = np.empty((p.n_frames, h, w), dtype=np.uint16)
    field = np.ones((h, w)) if illum is None else illum
    fmax_window = (t >= p.pyrithione_s) & (t < p.tpen_s)
    sat_peak = np.zeros(n)
    ext = [np.ceil(max(s.a.max(), s.b.max()) + 6 * edge + 1) for s in shapes]
    # dye is conserved as a cell changes shape: each frame's profile is scaled to the light of the
    # cell's first shape (the sum over the whole, unclipped profile)
    light0 = []
    for i in range(n):
        o = np.arange(-ext[i], ext[i] + 1, dtype=np.float32)
        light0.append(float(_profile(shapes[i], 0, o[:, None], o[None, :], edge, p).sum()))
    cy0, cx0, detaches = cells["y"].to_numpy(), cells["x"].to_numpy(), cells["detaches"].to_numpy()
    for k in range(p.n_frames):
        scene = np.zeros((h, w))
        strongest = np.zeros((h, w))  # the largest single-cell contribution per pixel
        owner = np.full((h, w), -1)
        spans = []
        for i in range(n):
            if amp[k, i] <= 1e-6 * fmin[i]:
                spans.append(None)
                continue
            drift = 0.0
            if detaches[i] and t[k] > detach_s[i]:
                drift = p.detach_speed_px_per_s * (t[k] - detach_s[i])
            cy = cy0[i] + shifts[k, 0] + drift * np.sin(float_angle[i])
            cx = cx0[i] + shifts[k, 1] + drift * np.cos(float_angle[i])
            Y0, X0 = int(np.floor(cy - ext[i])), int(np.floor(cx - ext[i]))
            Y1, X1 = int(np.ceil(cy + ext[i])) + 1, int(np.ceil(cx + ext[i])) + 1
            y0, y1, x0, x1 = max(Y0, 0), min(Y1, h), max(X0, 0), min(X1, w)
            if y1 <= y0 or x1 <= x0:
                spans.append(None)
                continue
            dy = (np.arange(Y0, Y1)[:, None] - cy).astype(np.float32)
            dx = (np.arange(X0, X1)[None, :] - cx).astype(np.float32)
            prof = _profile(shapes[i], k, dy, dx, edge, p)
            prof = prof[y0 - Y0:y1 - Y0, x0 - X0:x1 - X0] * (light0[i] / float(prof.sum()))
            glow = amp[k, i] * prof
            scene[y0:y1, x0:x1] += glow
            if fmax_window[k]:
                mine = glow > strongest[y0:y1, x0:x1]
                strongest[y0:y1, x0:x1][mine] = glow[mine]
                owner[y0:y1, x0:x1][mine] = i
            spans.append((y0, y1, x0, x1, prof > 0.3 * prof.max()))
        expected = p.camera_offset + field * (medium[k] + scene)
        if fmax_window[k]:
            for i, span in enumerate(spans):
                if span is not None and not detaches[i]:
                    # the cell's own pixels: its bright part, where its light outshines any neighbour's
                    y0, y1, x0, x1, foot = span
                    own = foot & (owner[y0:y1, x0:x1] == i)
                    if own.any():
                        sat_peak[i] = max(sat_peak[i], float(expected[y0:y1, x0:x1][own].max()))
        g = p.gain_e_per_count
        counts = rng.poisson(expected * g) / g + rng.normal(0, p.read_noise, expected.shape)
        stack[k] = np.clip(np.rint(counts), 0, maxval).astype(np.uint16)
    cells["saturates"] = sat_peak >= maxval
    trace = pd.DataFrame({"cell_id": np.tile(np.arange(1, n + 1), p.n_frames),
                          "frame": np.repeat(np.arange(p.n_frames), n), "time_s": np.repeat(t, n),
                          "zn_nM": zn.ravel(), "f_true": amp.ravel()}).sort_values(["cell_id", "frame"],
                                                                                   kind="stable")
    jump = np.concatenate([[0.0], np.hypot(*np.diff(shifts, axis=0).T)])
    event = np.select([t >= p.tpen_s, t >= p.pyrithione_s, t >= p.stimulus_s], ["tpen", "pyrithione", "stimulus"],
                      "baseline")
    frames = pd.DataFrame({"frame": np.arange(p.n_frames), "time_s": t, "shift_y_px": shifts[:, 0],
                           "shift_x_px": shifts[:, 1], "jump_px": jump,
                           "background": p.camera_offset + field.mean() * medium, "phase": event})
    return stack, cells, trace.reset_index(drop=True), frames


def write_imaging_sample(path: str | Path, rng: np.random.Generator, p: ImagingParams,
                         bit_depth_metadata: bool = True) -> dict:
    """Simulate one stack and write it as an ImageJ TIFF (uint16, ``finterval`` = frame interval,
    pixel size; the camera's bit depth in the Info text unless ``bit_depth_metadata`` is False, as
    most acquisition software writes 12- and 14-bit data).

    Returns truth: ``cells``, ``traces`` and ``frames`` DataFrames (see :func:`simulate_stack`).
    """
    stack, cells, traces, frames = simulate_stack(rng, p)
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    info = "simulator=zincassay" + (f"\ncamera_bit_depth={p.bit_depth}" if bit_depth_metadata else "")
    tifffile.imwrite(
        tmp, stack, imagej=True, resolution=(1 / p.pixel_size_um, 1 / p.pixel_size_um),
        metadata={"axes": "TYX", "finterval": p.frame_interval_s, "unit": "um", "Info": info},
        photometric="minisblack",
    )
    tmp.replace(path)
    return {"cells": cells, "traces": traces, "frames": frames}
