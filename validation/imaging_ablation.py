"""Which physical effect makes the registration of a sweep stack miss (rerunnable; not a unit test).

Each named stack of :mod:`validation.imaging_sweep` is drawn again (same seed, same draw) and
simulated once as drawn and once per effect with that effect neutralised, then registered with
:func:`zincassay.imaging.register.register_stack`; the script prints the registration RMS error
(px, after removing the constant offset of the reference, as the sweep scores it) and the mean
error per protocol phase (baseline, stimulus, pyrithione, TPEN).

An effect is neutralised without changing what is drawn (by value, or for rounding with
``rounding_applied=False``), never by switching it off: the simulator draws an effect's random
numbers only when the effect is on, so turning it off would change every later draw (other cell
shapes, nuclei, loads) and the comparison would no longer be of the same stack. Each variant
is checked to make the same random draws as the stack as drawn up to the camera noise (the same
generator calls from the same generator states), and says so when it does not; an effect that is
off in the drawn stack stays off. Each line also gives the number of cells that saturate (the
over-loaded cells' brightness is set on their frame-0 shape; rounding up with the dye conserved
raises it).
The noise itself differs between variants (Poisson sampling consumes a number of draws that depends
on the signal); ``low_noise`` shows how much the noise matters.

Run: ``OMP_NUM_THREADS=1 python validation/imaging_ablation.py --stacks 22 59 [--seed 1]
[--effects even_light no_rounding ...]`` (each variant takes 1-30 s).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from validation.imaging_sweep import draw_params, registration_error

from zincassay.imaging.register import register_stack
from zincassay.simulate.imaging import ImagingParams, simulate_stack

#: effect -> (parameter values that neutralise it, from the drawn parameters, while drawing the same
#: random numbers; meaning). An effect that is off stays off: a tiny value would switch it on.
EFFECTS: dict[str, tuple[Callable[[ImagingParams], dict], str]] = {
    "even_light": (lambda p: {"illumination_falloff": min(p.illumination_falloff, 1e-9),
                              "illumination_tilt": min(p.illumination_tilt, 1e-9)}, "no vignetting or tilt"),
    "no_rounding": (lambda p: {"rounding_applied": False}, "cells keep their size, shape and profile at pyrithione"),
    "no_shape_change": (lambda p: {"shape_change": min(p.shape_change, 1e-9)}, "no shape change at the stimulus"),
    "no_saturation": (lambda p: {"overload": (0.9, 0.9)},
                      "over-loaded cells' brightest pixel at Fmax 0.9x the camera maximum (their frame-0 shape)"),
    "dim_overloaded": (lambda p: {"overload": (0.3, 0.3)},
                       "over-loaded cells' brightest pixel at Fmax 0.3x the camera maximum (their frame-0 shape)"),
    "no_detaching": (lambda p: {"detach_after_s": (1e6, 1e6 + 1)}, "detaching cells stay until after the end"),
    "no_medium": (lambda p: {"medium_counts": 0.0, "leak_counts": 0.0}, "no medium fluorescence or leaked dye"),
    "no_nucleus": (lambda p: {"nucleus_ratio": 1.0}, "nucleus as bright as the cytoplasm"),
    "no_texture": (lambda p: {"texture": min(p.texture, 1e-9)}, "no cytoplasmic granularity"),
    "no_bleaching": (lambda p: {"bleach_tau_s": 1e12}, "no photobleaching"),
    "low_noise": (lambda p: {"gain_e_per_count": max(p.gain_e_per_count, 100.0), "read_noise": 0.1},
                  "read noise 0.1 count, shot noise smaller by sqrt(100 / gain)"),
}


class StreamRecorder:
    """A random generator that records its bit generator's state before each call until the first
    Poisson draw (the camera noise): two simulations with equal records drew the same numbers for
    everything but the noise."""

    def __init__(self, rng: np.random.Generator):
        self._rng = rng
        self.states: list[tuple[str, dict]] = []
        self._noise = False

    def __getattr__(self, name: str):
        method = getattr(self._rng, name)
        if not callable(method):
            return method

        def call(*args, **kwargs):
            if not self._noise:  # the first Poisson draw's state is the last recorded
                self.states.append((name, self._rng.bit_generator.state))
                self._noise = name == "poisson"
            return method(*args, **kwargs)

        return call


def phase_errors(shifts: np.ndarray, registered: np.ndarray, frames: pd.DataFrame) -> tuple[float, dict[str, np.ndarray]]:
    """Registration RMS error (px) and the mean ``(dy, dx)`` error (px) per protocol phase (NaN for
    a phase with no registered frame)."""
    if not registered.any():
        return float("nan"), {}
    diff = registration_error(shifts, frames[["shift_y_px", "shift_x_px"]].to_numpy(), registered)
    rms = float(np.sqrt(np.mean(np.sum(diff[registered] ** 2, axis=1))))
    phase = frames["phase"].to_numpy()
    per = {}
    for k in dict.fromkeys(phase):
        m = (phase == k) & registered
        per[k] = diff[m].mean(axis=0) if m.any() else np.full(2, np.nan)
    return rms, per


def run(seed: int, stack: int, variants: list[str], max_side: int = 512, max_frames: int = 400) -> list[dict]:
    """Simulate and register stack ``stack`` of the sweep with ``seed`` as drawn and with each
    variant (a ``+``-joined list of :data:`EFFECTS`); one row per variant."""
    rows, base = [], None
    for variant in ["as_drawn", *variants]:
        rng = np.random.default_rng([seed, stack])
        p, _ = draw_params(rng, max_side=max_side, max_frames=max_frames)
        for effect in ([] if variant == "as_drawn" else variant.split("+")):
            p = dataclasses.replace(p, **EFFECTS[effect][0](p))
        recorder = StreamRecorder(rng)
        data, cells, _, frames = simulate_stack(recorder, p)
        base = recorder.states if base is None else base
        same = recorder.states == base
        reg = register_stack(data)
        rms, per = phase_errors(reg.shifts, reg.registered, frames)
        n_sat = int(cells["saturates"].sum())
        rows.append({"stack": stack, "variant": variant, "rms_px": rms, "phases": per, "same_stream": same,
                     "saturating_cells": n_sat})
        print(f"stack {stack:3d}  {variant:44s} RMS {rms:6.3f} px  " + "  ".join(f"{k} {v[0]:+.2f} {v[1]:+.2f}"
              for k, v in per.items()) + f"  saturating {n_sat}"
              + ("" if same else "  (NOT the same random draws: not the same stack)"), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--stacks", type=int, nargs="+", required=True)
    ap.add_argument("--effects", nargs="+", default=list(EFFECTS),
                    help="effects to neutralise, one variant each; join with + to neutralise several together")
    args = ap.parse_args()
    used = {effect for name in args.effects for effect in name.split("+")}
    for effect in sorted(used - set(EFFECTS)):
        ap.error(f"unknown effect {effect!r}; choose from {', '.join(EFFECTS)}")
    print("effects: " + "; ".join(f"{k}: {v[1]}" for k, v in EFFECTS.items() if k in used))
    for stack in args.stacks:
        run(args.seed, stack, args.effects)


if __name__ == "__main__":
    main()
