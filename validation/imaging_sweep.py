"""Zinc-imaging accuracy over a documented space of simulated stacks (rerunnable; not a unit test).

Every stack is drawn from the space below, simulated with its ground truth
(:mod:`zincassay.simulate.imaging`), written as an ImageJ TIFF and analysed by
:func:`zincassay.imaging.pipeline.analyse_stack` with the stimulus, pyrithione and TPEN times
left blank (detected from the data) and the default settings.

Parameter space (one draw per stack; U = uniform, logU = log-uniform)
--------------------------------------------------------------------
=========================  ==========================================================================
pixel size                 logU 0.1-1 µm
cell diameter              logU 5-20 µm (per cell x U 0.85-1.15), at most 100 px across (redrawn)
cells                      logU 5-200, as many as fit in a field of at most 512 x 512 px at the
                           drawn coverage U 0.08-0.35; closest centres U 0.8-1.1 x the sum of radii
                           (touching and overlapping cells)
cell shape                 axis ratio 1-U(1, 1.6); profile flat to sphere-projected (dome U 0-0.5);
                           nucleus U 0.6-1.2 x the cytoplasm; granularity U 0-0.25; edge blur
                           U 0.15-0.3 µm (>= 0.5 px)
shape at additions         radius change up to U 0-8 % at the stimulus; rounding (radius -U 0-15 %,
                           dome -> 0.5, dye conserved) after pyrithione
camera                     12, 14 or 16 bit in uint16; bit depth in the metadata or not (1:1);
                           offset, read noise and e-/count typical of CCD (12 bit) / sCMOS (16 bit)
SNR                        resting cell / per-pixel noise logU 3-40 (the typical cell's Fmax capped at
                           70 % of the range; brighter cells of the loading spread saturate)
probe                      Fmax/Fmin U 3-10; loading spread 10^N(0, U 0.05-0.3)
zinc                       baseline logU 0.3-3 nM; stimulus rise logU 1-12 nM (responders U 50-100 %,
                           time constant U 10-60 s)
timing                     frame interval logU 1-10 s (raised so a stack has <= 400 frames);
                           baseline U 60-240 s; each phase long enough for its kinetics (Fmax rise
                           U 2-30 s, TPEN [Zn] decay U 3-12 s, which delays Fmin by ~9 x that)
bleaching                  U 0-30 % over the recording
medium                     U 5-50 % of a resting cell; leaked dye lights the medium at Fmax by
                           U 0-15 % of a typical cell's Fmax
illumination               vignetting U 0-40 %, tilt U 0-30 % (fixed to the optics)
stage                      drift U 0-30 px over the recording (settling), random walk U 0-0.03 px
                           per frame; per addition a jolt U 0-10 px, or none (30 %)
saturating loaders         U 5-20 % of the cells (>= 1), brightest pixel U 1.1-3 x the camera maximum
detaching cells            U 0-20 %, from 10 s after pyrithione to 30 s before the end; fading
                           U 3-20 s, floating off at U 0-1 px/s
=========================  ==========================================================================

Per stack it prints: median baseline and peak [Zn2+] of the QC-passing matched cells relative to
the truth of the same cells, attached cells found, saturating and detaching cells flagged,
registration RMS error (px, after removing the constant offset of the reference), detected event
frames minus true frames; then the distribution, the bars of issue #15, a figure
(``imaging_sweep.png``), ``imaging_sweep.tsv``, and the worst corner of the space.

Run: ``OMP_NUM_THREADS=1 nice -n 10 python validation/imaging_sweep.py [--n 60] [--seed 1] [--jobs 1]``
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import math
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

from zincassay.simulate.imaging import ImagingParams, write_imaging_sample

EVENTS = ("stimulus_s", "pyrithione_s", "tpen_s")
BARS = {"baseline": 0.15, "peak": 0.10, "found": 0.90, "saturated": 0.95, "detached": 0.95,
        "reg_rms_px": 0.5, "event_frames": 2}


def _logu(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def draw_params(rng: np.random.Generator, max_side: int = 512, max_frames: int = 400) -> tuple[ImagingParams, dict]:
    """One stack from the documented space: its :class:`ImagingParams` and the draw's facts
    (``bit_depth_metadata``, ``snr``, ``bleaching_pct``, ``diameter_um`` ...) for the tables."""
    pixel = _logu(rng, 0.1, 1.0)
    while True:
        diameter_um = _logu(rng, 5, 20)
        if diameter_um / pixel <= 100:
            break
    radius = diameter_um / pixel / 2
    n_want = round(_logu(rng, 5, 200))
    coverage = rng.uniform(0.08, 0.35)
    area = n_want * np.pi * radius**2 / coverage
    ratio = rng.uniform(1.0, 1.4)
    h = int(np.clip(np.sqrt(area / ratio), 96, max_side))
    w = int(np.clip(h * ratio, 96, max_side))
    n_cells = max(5, min(n_want, int(coverage * h * w / (np.pi * radius**2))))
    bits = int(rng.choice([12, 14, 16]))
    maxval = 2**bits - 1
    scale = 2 ** ((bits - 12) / 2)
    offset = rng.uniform(60, 250) * scale
    gain = {12: rng.uniform(0.5, 4), 14: rng.uniform(0.3, 1.5), 16: rng.uniform(0.2, 0.6)}[bits]
    read = {12: rng.uniform(2, 8), 14: rng.uniform(3, 12), 16: rng.uniform(5, 20)}[bits]
    dr = rng.uniform(3, 10)
    kd = 15.0
    base_zn = _logu(rng, 0.3, 3)
    f_rest = base_zn / (base_zn + kd)
    medium_frac = rng.uniform(0.05, 0.5)
    snr = _logu(rng, 3, 40)
    # resting cell F (counts) with F / sqrt((medium + F) / gain + read^2) = snr
    a = 1.0
    b = -(snr**2) * (1 + medium_frac) / gain
    c = -(snr**2) * read**2
    f_base = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    fmin = f_base / (1 + (dr - 1) * f_rest)
    cap = 0.7 * (maxval - offset) / dr
    if fmin > cap:
        fmin = cap
        f_base = fmin * (1 + (dr - 1) * f_rest)
        snr = f_base / math.sqrt((medium_frac * f_base + f_base) / gain + read**2)
    # timing: each phase long enough for its kinetics
    rise_tau = rng.uniform(10, 60)
    fmax_tau = rng.uniform(2, 30)
    tpen_tau = rng.uniform(3, 12)
    lag = tpen_tau * np.log(1e5 / kd)
    baseline_s = rng.uniform(60, 240)
    stim_s = rng.uniform(4 * rise_tau + 30, 4 * rise_tau + 200)
    pyr_s = rng.uniform(5 * fmax_tau + 60, 5 * fmax_tau + 200)
    tpen_s = rng.uniform(lag + 4 * tpen_tau + 90, lag + 4 * tpen_tau + 240)
    total = baseline_s + stim_s + pyr_s + tpen_s
    dt = _logu(rng, 1, 10)
    if total / dt > max_frames:
        dt = total / max_frames
    n_frames = int(total // dt) + 1
    bleach = rng.uniform(0, 0.30)
    bleach_tau = -total / np.log(1 - bleach) if bleach > 1e-6 else 1e12
    jolts = tuple(0.0 if rng.random() < 0.3 else float(rng.uniform(0, 10)) for _ in range(3))
    n_sat = max(1, round(rng.uniform(0.05, 0.20) * n_cells))
    n_det = round(rng.uniform(0, 0.20) * n_cells)
    tail = total - (baseline_s + stim_s) - 30
    p = ImagingParams(
        shape=(h, w), n_frames=n_frames, frame_interval_s=float(dt), stimulus_s=float(baseline_s),
        pyrithione_s=float(baseline_s + stim_s), tpen_s=float(baseline_s + stim_s + pyr_s),
        pixel_size_um=pixel, n_cells=n_cells, radius_px=(0.85 * radius, 1.15 * radius),
        aspect=(1.0, rng.uniform(1.0, 1.6)), dome=rng.uniform(0, 0.5), edge_px=max(0.5, rng.uniform(0.15, 0.3) / pixel),
        nucleus_ratio=rng.uniform(0.6, 1.2), texture=rng.uniform(0, 0.25), min_separation=rng.uniform(0.8, 1.1),
        shape_change=rng.uniform(0, 0.08), rounding=rng.uniform(0, 0.15),
        kd_nM=kd, fmin_per_load=float(fmin), dynamic_range=dr, load_median=1.0, load_sd_log10=rng.uniform(0.05, 0.3),
        baseline_zn_nM=base_zn, rise_zn_nM=_logu(rng, 1, 12), responder_fraction=rng.uniform(0.5, 1.0),
        rise_tau_s=rise_tau, fmax_tau_s=fmax_tau, tpen_tau_s=tpen_tau,
        bit_depth=bits, camera_offset=offset, read_noise=read, gain_e_per_count=gain,
        medium_counts=medium_frac * f_base, leak_counts=rng.uniform(0, 0.15) * fmin * dr,
        illumination_falloff=rng.uniform(0, 0.4), illumination_tilt=rng.uniform(0, 0.3),
        bleach_tau_s=float(bleach_tau), drift_px_per_frame=(0.0, 0.0), drift_px=rng.uniform(0, 30),
        jitter_px=rng.uniform(0, 0.03), jolts_px=jolts,
        n_overloaded=n_sat, overload=(1.1, 3.0), n_detaching=n_det, detach_after_s=(10.0, max(tail, 11.0)),
        detach_fade_s=rng.uniform(3, 20), detach_speed_px_per_s=rng.uniform(0, 1),
    )
    facts = {"bit_depth_metadata": bool(rng.random() < 0.5), "snr": snr, "bleaching_pct": 100 * bleach,
             "diameter_um": diameter_um, "diameter_px": 2 * radius}
    return p, facts


def _match(truth: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Each true cell's nearest object (one-to-one, within half its radius + 2 px) in the
    reference frame (frame 0)."""
    out = truth.reset_index(drop=True).copy()
    if not len(cells):
        out["found"] = False
        for col in ("baseline_zn_nM", "peak_zn_nM", "qc_pass", "qc_reason"):
            out[f"m_{col}"] = np.nan
        return out
    d = np.hypot(truth["y"].to_numpy()[:, None] - cells["centroid_y"].to_numpy()[None],
                 truth["x"].to_numpy()[:, None] - cells["centroid_x"].to_numpy()[None])
    j = d.argmin(axis=1)
    ok = d.min(axis=1) <= 0.5 * truth["radius_px"].to_numpy() + 2
    counts = np.bincount(j[ok], minlength=len(cells))
    ok &= counts[j] == 1  # a merged object counts for nobody
    out["found"] = ok
    for col in ("baseline_zn_nM", "peak_zn_nM", "qc_pass", "qc_reason"):
        out[f"m_{col}"] = cells[col].to_numpy()[j]
    out["m_qc_reason"] = out["m_qc_reason"].fillna("").astype(str)
    return out


def score(result, cells: pd.DataFrame, truth: dict, p: ImagingParams) -> dict:
    """Errors of one analysed stack against its truth (see the module docstring)."""
    m = _match(truth["cells"], cells)
    use = m["found"] & m["m_qc_pass"].astype(bool)
    row: dict = {"n_true": len(m), "n_objects": len(cells), "n_pass_matched": int(use.sum())}
    if use.sum() >= 1:
        row["baseline_err"] = float(np.nanmedian(m.loc[use, "m_baseline_zn_nM"]) / np.median(m.loc[use, "baseline_zn_nM"]) - 1)
        row["peak_err"] = float(np.nanmedian(m.loc[use, "m_peak_zn_nM"]) / np.median(m.loc[use, "peak_zn_nM"]) - 1)
    else:
        row["baseline_err"] = row["peak_err"] = np.nan
    attached = ~m["detaches"]
    row["attached"], row["attached_found"] = int(attached.sum()), int(m.loc[attached, "found"].sum())
    sat = m["saturates"] & m["found"]
    row["saturating"], row["saturating_flagged"] = int(sat.sum()), int(m.loc[sat, "m_qc_reason"].str.contains("saturated").sum())
    det = m["detaches"] & m["found"]
    row["detaching"], row["detaching_flagged"] = int(det.sum()), int(m.loc[det, "m_qc_reason"].str.contains("detached").sum())
    fr = truth["frames"]
    true_shift = fr[["shift_y_px", "shift_x_px"]].to_numpy()
    est = np.asarray(result.shifts, dtype=float)
    ok = np.asarray(getattr(result, "registered", np.ones(len(est), bool)), dtype=bool)
    err = np.hypot(*registration_error(est, true_shift, ok).T)
    row["reg_rms_px"] = float(np.sqrt(np.mean(err[ok] ** 2))) if ok.any() else np.nan
    row["reg_max_px"] = float(err[ok].max()) if ok.any() else np.nan
    row["unregistered_frames"] = int((~ok).sum())
    t = fr["time_s"].to_numpy()
    k_est = getattr(getattr(result, "calibration", None), "bleach_rate_per_s", np.nan)
    row["bleaching_est_pct"] = float(100 * (1 - np.exp(-k_est * t[-1])))
    for k in EVENTS:
        true_frame = int(np.searchsorted(t, getattr(p, k)))
        got = getattr(result.events, k)
        row[f"{k[:-2]}_frames"] = (int(np.searchsorted(t, got - 1e-9)) - true_frame) if np.isfinite(got) else np.nan
        row[f"{k[:-2]}_source"] = result.events.source.get(k, "")
    return row


def registration_error(shifts: np.ndarray, true_shifts: np.ndarray, registered: np.ndarray) -> np.ndarray:
    """Error (px, (T, 2)) of each frame's estimated shift against the truth once the constant offset
    of the reference (the median error over the registered frames) is removed; NaN when no frame
    was registered."""
    diff = np.asarray(shifts, dtype=float) - true_shifts
    if not registered.any():
        return np.full_like(diff, np.nan)
    return diff - np.median(diff[registered], axis=0)


def run_one(i: int, seed: int, workdir: str, max_side: int = 512, max_frames: int = 400) -> dict:
    """Draw, simulate, write, analyse and score stack ``i`` of the sweep with ``seed`` (fields of
    at most ``max_side`` px a side and ``max_frames`` frames)."""
    from zincassay.imaging.pipeline import analyse_stack

    try:
        from zincassay.config import resolve_config
        from zincassay.imaging.settings import ImagingSettings
        from zincassay.imaging.tables import cell_table
        from zincassay.samplesheet import Sample
    except ImportError:  # zincassay before settings objects (to measure the method it replaced)
        from zincassay.imaging.pipeline import cell_table as old_cell_table

        def analyse(path: str, _settings, sample: dict):
            return analyse_stack(path, {}, sample)

        def cells_of(r, sample: dict) -> pd.DataFrame:
            return old_cell_table(r, sample, [])

        sample_of = lambda sid: {"sample_id": sid, **dict.fromkeys(EVENTS, "")}  # noqa: E731
        default_settings = None
    else:
        analyse, cells_of = analyse_stack, cell_table
        sample_of = Sample
        default_settings = ImagingSettings.from_config(resolve_config({})["imaging"])

    rng = np.random.default_rng([seed, i])
    p, facts = draw_params(rng, max_side=max_side, max_frames=max_frames)
    row = {"stack": i, **facts, "pixel_um": p.pixel_size_um, "cells": p.n_cells, "side_px": f"{p.shape[0]}x{p.shape[1]}",
           "frames": p.n_frames, "dt_s": p.frame_interval_s, "bits": p.bit_depth, "drift_px": p.drift_px,
           "max_jolt_px": max(p.jolts_px), "no_jolt_events": sum(j == 0 for j in p.jolts_px),
           "dyn_range": p.dynamic_range, "rounding": p.rounding, "dome": p.dome, "leak": p.leak_counts,
           "illum_falloff": p.illumination_falloff, "min_sep": p.min_separation, "load_sd": p.load_sd_log10,
           "sat_frac": p.n_overloaded / p.n_cells, "det_frac": p.n_detaching / p.n_cells}
    folder = Path(tempfile.mkdtemp(dir=workdir))
    try:
        path = folder / f"stack{i:03d}.tif"
        truth = write_imaging_sample(path, rng, p, bit_depth_metadata=facts["bit_depth_metadata"])
        sample = sample_of(f"s{i:03d}")  # frame interval from the metadata; every event time detected
        t0 = time.perf_counter()
        try:
            r = analyse(str(path), default_settings, sample)
        except Exception as exc:  # a sweep records every failure and goes on
            from zincassay.errors import ZincassayError

            kind = "error" if isinstance(exc, ZincassayError) else "crash"
            row.update(status=kind, message=str(exc).replace(str(path), "<stack>")[:200],
                       seconds=time.perf_counter() - t0)
            if kind == "crash":
                row["message"] = traceback.format_exc(limit=-3).replace("\n", " | ")[-300:]
            return row
        row["seconds"] = time.perf_counter() - t0
        row.update(status="ok", message="")
        row.update(score(r, cells_of(r, sample), truth, p))
        row["saturation_source"] = getattr(r, "saturation_source", getattr(r, "bit_depth_source", ""))
        row["saturation_value"] = getattr(r, "saturation_value", np.nan)
        return row
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def passes(row: pd.Series) -> dict[str, bool]:
    """Per-stack bar checks (NaN counts as a failure)."""
    ok = row.get("status") == "ok"

    def within(v: float, lim: float) -> bool:
        return bool(ok and np.isfinite(v) and abs(v) <= lim)

    return {
        "baseline": within(row.get("baseline_err", np.nan), BARS["baseline"]),
        "peak": within(row.get("peak_err", np.nan), BARS["peak"]),
        "registration": within(row.get("reg_rms_px", np.nan), BARS["reg_rms_px"]),
        "events": bool(ok and all(within(row.get(f"{k}_frames", np.nan), BARS["event_frames"])
                                  for k in ("stimulus", "pyrithione"))),
    }


def summarise(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The bars of issue #15 over the sweep: (table, lines)."""
    ok = df[df["status"] == "ok"]
    checks = pd.DataFrame([passes(r) for _, r in df.iterrows()], index=df.index)
    tpen_jolted = ok[ok["tpen_source"] == "jolt"] if "tpen_source" in ok else ok.iloc[:0]

    def frac(a: float, b: float) -> str:
        return f"{a:.0f} / {b:.0f} ({100 * a / b:.0f} %)" if b else "n/a"

    rows = [
        ("stacks analysed without error", frac(len(ok), len(df)), "all", len(ok) == len(df)),
        ("median baseline within 15 %", frac(checks["baseline"].sum(), len(df)), ">= 90 % of stacks",
         checks["baseline"].mean() >= 0.90),
        ("median peak within 10 %", frac(checks["peak"].sum(), len(df)), ">= 90 % of stacks", checks["peak"].mean() >= 0.90),
        ("attached cells found", frac(ok["attached_found"].sum(), ok["attached"].sum()) if len(ok) else "n/a",
         ">= 90 %", len(ok) > 0 and ok["attached_found"].sum() >= 0.90 * ok["attached"].sum()),
        ("saturating cells flagged", frac(ok["saturating_flagged"].sum(), ok["saturating"].sum()) if len(ok) else "n/a",
         ">= 95 %", len(ok) > 0 and ok["saturating_flagged"].sum() >= 0.95 * ok["saturating"].sum()),
        ("detaching cells flagged", frac(ok["detaching_flagged"].sum(), ok["detaching"].sum()) if len(ok) else "n/a",
         ">= 95 %", len(ok) > 0 and ok["detaching_flagged"].sum() >= 0.95 * ok["detaching"].sum()),
        ("registration RMS <= 0.5 px", frac(checks["registration"].sum(), len(df)), "all stacks",
         bool(checks["registration"].all())),
        ("blank stimulus and pyrithione within 2 frames", frac(checks["events"].sum(), len(df)), "all stacks",
         bool(checks["events"].all())),
        ("blank TPEN within 2 frames (jolted additions)",
         frac((tpen_jolted["tpen_frames"].abs() <= 2).sum(), len(tpen_jolted)), "(reported)", True),
    ]
    table = pd.DataFrame(rows, columns=["criterion", "result", "bar", "met"])
    lines = []
    if len(ok):
        for col, label in (("baseline_err", "baseline error"), ("peak_err", "peak error"), ("reg_rms_px", "registration RMS px")):
            v = ok[col].dropna()
            if len(v):
                q = np.percentile(v, [5, 25, 50, 75, 95])
                lines.append(f"{label:22s} 5/25/50/75/95 %: " + " ".join(f"{x:+.3f}" for x in q)
                             + f"   worst {v.iloc[np.argmax(np.abs(v.to_numpy()))]:+.3f}")
        for k in ("stimulus", "pyrithione", "tpen"):
            v = ok[f"{k}_frames"].dropna().astype(int)
            lines.append(f"{k:10s} detected - true frame: " + ", ".join(
                f"{d:+d}: {c}" for d, c in sorted(v.value_counts().items())) + f"   (not found: {ok[f'{k}_frames'].isna().sum()})")
    return table, lines


def worst_corner(df: pd.DataFrame) -> list[str]:
    """Which tercile of which parameter concentrates the failures, and the worst stack."""
    checks = pd.DataFrame([passes(r) for _, r in df.iterrows()], index=df.index)
    fail = ~checks.all(axis=1)
    lines = [f"stacks failing any per-stack bar: {int(fail.sum())} of {len(df)}"]
    params = ["pixel_um", "diameter_px", "cells", "snr", "dt_s", "bleaching_pct", "drift_px", "max_jolt_px", "dyn_range",
              "rounding", "dome", "illum_falloff", "min_sep", "load_sd", "sat_frac", "det_frac", "bits"]
    rates = []
    for prm in params:
        v = pd.to_numeric(df[prm], errors="coerce")
        if v.nunique() < 3:
            continue
        bins = pd.qcut(v.rank(method="first"), 3, labels=["low", "mid", "high"])
        for b in ("low", "mid", "high"):
            sel = bins == b
            rates.append((fail[sel].mean(), prm, b, v[sel].min(), v[sel].max(), int(sel.sum())))
    rates.sort(key=lambda r: -r[0])
    for rate, prm, b, lo, hi, n in rates[:5]:
        lines.append(f"  {prm} {b} third ({lo:.3g}-{hi:.3g}): {100 * rate:.0f} % of {n} stacks fail")
    if fail.any():
        score_cols = df[["baseline_err", "peak_err"]].abs().fillna(9).max(axis=1)
        worst = df.loc[score_cols.idxmax()]
        lines.append("worst stack: " + ", ".join(f"{k}={worst[k]}" for k in ["stack", "status", "baseline_err", "peak_err",
                                                                             "reg_rms_px", *params] if k in worst))
        if worst.get("message"):
            lines.append(f"  message: {worst['message']}")
    return lines


def figure(df: pd.DataFrame, path: Path) -> None:
    from zincassay.figures import new_figure, save_figure

    ok = df[df["status"] == "ok"]
    fig, axes = new_figure(nrows=2, ncols=3, figsize=(13, 7.5))
    ax = axes.ravel()
    for a, col, lim, label in ((ax[0], "baseline_err", BARS["baseline"], "median baseline [Zn2+] / truth - 1"),
                               (ax[1], "peak_err", BARS["peak"], "median peak [Zn2+] / truth - 1")):
        v = ok[col].dropna().clip(-1, 1)
        a.hist(v, bins=np.linspace(-0.6, 0.6, 49), color="#4292c6")
        a.axvspan(-lim, lim, color="#c7e9c0", zorder=0)
        a.set_xlabel(label)
        a.set_ylabel("stacks")
    v = ok["reg_rms_px"].dropna()
    ax[2].hist(np.log10(v.clip(1e-3)), bins=30, color="#6a51a3")
    ax[2].axvline(np.log10(BARS["reg_rms_px"]), color="k", ls="--")
    ax[2].set_xlabel("log10 registration RMS error (px)")
    for k, c in (("stimulus", "#1b9e77"), ("pyrithione", "#d95f02"), ("tpen", "#7570b3")):
        vv = ok[f"{k}_frames"].dropna().clip(-10, 10)
        ax[3].hist(vv + {"stimulus": -0.2, "pyrithione": 0, "tpen": 0.2}[k], bins=np.arange(-10.5, 11), alpha=0.6,
                   color=c, label=k)
    ax[3].axvspan(-2.5, 2.5, color="#eeeeee", zorder=0)
    ax[3].set_xlabel("detected - true event frame (clipped at +-10)")
    ax[3].legend(fontsize=7)
    for col, label, c in (("saturating", "saturating flagged", "#e6550d"), ("detaching", "detaching flagged", "#31a354"),
                          ("attached", "attached found", "#3182bd")):
        num = ok[{"saturating": "saturating_flagged", "detaching": "detaching_flagged", "attached": "attached_found"}[col]]
        den = ok[col]
        sel = den > 0
        ax[4].scatter(den[sel], (num[sel] / den[sel]), s=12, alpha=0.7, color=c, label=label)
    ax[4].set_xscale("log")
    ax[4].set_xlabel("cells of that kind in the stack")
    ax[4].set_ylabel("fraction")
    ax[4].legend(fontsize=7)
    ax[5].scatter(ok["snr"], ok["baseline_err"].clip(-1, 1), s=12, label="baseline", color="#4292c6")
    ax[5].scatter(ok["snr"], ok["peak_err"].clip(-1, 1), s=12, label="peak", color="#ef3b2c")
    ax[5].set_xscale("log")
    ax[5].axhspan(-0.1, 0.1, color="#eeeeee", zorder=0)
    ax[5].set_xlabel("SNR (resting cell / pixel noise)")
    ax[5].set_ylabel("error")
    ax[5].legend(fontsize=7)
    fig.suptitle(f"zinc imaging sweep: {len(df)} stacks, {len(ok)} analysed", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60, help="stacks (default 60)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1, help="parallel processes")
    ap.add_argument("--outdir", default="validation/out/imaging")
    ap.add_argument("--only", type=int, nargs="*", help="run only these stack numbers (debugging)")
    ap.add_argument("--from-tsv", help="summarise a saved imaging_sweep.tsv again instead of running")
    args = ap.parse_args(argv)
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    if args.from_tsv:
        report(pd.read_csv(args.from_tsv, sep="\t"), out)
        return 0
    work = tempfile.mkdtemp(prefix="imaging_sweep_")
    ids = args.only if args.only else list(range(args.n))
    t0 = time.perf_counter()
    try:
        if args.jobs > 1:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(args.jobs) as pool:
                rows = list(pool.map(run_one, ids, [args.seed] * len(ids), [work] * len(ids)))
        else:
            rows = []
            for i in ids:
                rows.append(run_one(i, args.seed, work))
                r = rows[-1]
                print(f"stack {i:3d}: {r['status']:5s} base {r.get('baseline_err', np.nan):+.3f} "
                      f"peak {r.get('peak_err', np.nan):+.3f} reg {r.get('reg_rms_px', np.nan):.3f} px "
                      f"{r.get('seconds', np.nan):.1f} s {r.get('message', '')[:100]}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    df = pd.DataFrame(rows).sort_values("stack").reset_index(drop=True)
    from zincassay.tables import write_table

    write_table(df, out / "imaging_sweep.tsv")
    report(df, out)
    print(f"\n{len(df)} stacks in {time.perf_counter() - t0:.0f} s; table and figure in {out}/")
    return 0


def report(df: pd.DataFrame, out: Path) -> None:
    """Print the per-stack table, the distributions, the bars and the worst corner; write the
    figure and the bars as Markdown (``imaging_sweep.md``)."""
    cols = ["stack", "status", "cells", "side_px", "frames", "dt_s", "pixel_um", "diameter_px", "bits", "bit_depth_metadata",
            "snr", "baseline_err", "peak_err", "attached_found", "attached", "saturating_flagged", "saturating",
            "detaching_flagged", "detaching", "reg_rms_px", "unregistered_frames", "stimulus_frames", "pyrithione_frames",
            "tpen_frames", "saturation_source", "message"]
    with pd.option_context("display.width", 250, "display.max_columns", 40, "display.max_rows", 500,
                           "display.float_format", "{:.3g}".format):
        print(df[[c for c in cols if c in df.columns]].to_string(index=False))
    table, lines = summarise(df)
    print()
    for line in lines:
        print(line)
    print()
    print(table.to_string(index=False))
    print()
    corner = worst_corner(df)
    for line in corner:
        print(line)
    figure(df, out / "imaging_sweep.png")
    md = ["| criterion | result | bar | met |", "|---|---|---|---|"]
    md += [f"| {r.criterion} | {r.result} | {r.bar} | {'yes' if r.met else 'no'} |" for r in table.itertuples()]
    (out / "imaging_sweep.md").write_text("\n".join([*md, "", *lines, "", *corner]) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["BARS", "draw_params", "passes", "run_one", "score", "summarise"]
