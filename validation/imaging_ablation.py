"""Which physical effect makes the registration of a sweep stack miss (rerunnable; not a unit test).

Each named stack of :mod:`validation.imaging_sweep` is drawn again (same seed, same draw) and
simulated once as drawn and once per effect with that effect neutralised, then registered with
:func:`zincassay.imaging.register.register_stack`; the script prints the registration RMS error
(px, after removing the constant offset of the reference, as the sweep scores it) and the mean
error per protocol phase (baseline, stimulus, pyrithione, TPEN).

An effect is neutralised *by value*, never by switching it off: the simulator draws an effect's
random numbers only when the effect is on, so turning it off would change every later draw (other
cell shapes, nuclei, loads) and the comparison would no longer be of the same stack. Each variant
is checked to make the same sequence of random draws as the stack as drawn up to the camera noise
(the same generator calls with the same sizes, in the same order), and says so when it does not.
The noise itself differs between variants (Poisson sampling consumes a number of draws that depends
on the signal); ``low_noise`` shows how much the noise matters.

Run: ``OMP_NUM_THREADS=1 python validation/imaging_ablation.py --stacks 22 59 [--seed 1]
[--effects even_light no_rounding ...]`` (each variant takes 1-10 s).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from validation.imaging_sweep import draw_params

from zincassay.imaging.register import register_stack
from zincassay.simulate.imaging import simulate_stack

#: effect -> (parameter values that neutralise it while drawing the same random numbers, meaning)
EFFECTS: dict[str, tuple[dict, str]] = {
    "even_light": ({"illumination_falloff": 1e-9, "illumination_tilt": 0.0}, "no vignetting or tilt"),
    "no_rounding": ({"rounding": 1e-9}, "cells keep their size and profile at pyrithione"),
    "no_shape_change": ({"shape_change": 1e-9}, "no shape change at the stimulus"),
    "no_saturation": ({"overload": (0.9, 0.9)}, "over-loaded cells peak at 0.9 x the camera maximum"),
    "dim_overloaded": ({"overload": (0.3, 0.3)}, "over-loaded cells peak at 0.3 x the camera maximum"),
    "no_detaching": ({"detach_after_s": (1e6, 1e6 + 1)}, "detaching cells stay until after the end"),
    "no_medium": ({"medium_counts": 0.0, "leak_counts": 0.0}, "no medium fluorescence or leaked dye"),
    "no_nucleus": ({"nucleus_ratio": 1.0}, "nucleus as bright as the cytoplasm"),
    "no_texture": ({"texture": 1e-9}, "no cytoplasmic granularity"),
    "no_bleaching": ({"bleach_tau_s": 1e12}, "no photobleaching"),
    "low_noise": ({"gain_e_per_count": 100.0, "read_noise": 0.1}, "shot and read noise ~30x smaller"),
}


class StreamRecorder:
    """A random generator that records its calls (method and size of the result) until the first
    Poisson draw (the camera noise): two simulations with equal records drew the same numbers for
    everything but the noise."""

    def __init__(self, rng: np.random.Generator):
        self._rng = rng
        self.calls: list[tuple[str, tuple[int, ...]]] = []
        self._noise = False

    def __getattr__(self, name: str):
        method = getattr(self._rng, name)

        def call(*args, **kwargs):
            out = method(*args, **kwargs)
            self._noise = self._noise or name == "poisson"
            if not self._noise:
                self.calls.append((name, np.shape(out)))
            return out

        return call


def phase_errors(shifts: np.ndarray, registered: np.ndarray, frames) -> tuple[float, dict[str, list[float]]]:
    """Registration RMS error (px) and the mean ``(dy, dx)`` error per protocol phase."""
    diff = shifts - frames[["shift_y_px", "shift_x_px"]].to_numpy()
    diff = diff - np.median(diff[registered], axis=0)
    rms = float(np.sqrt(np.mean(np.sum(diff[registered] ** 2, axis=1))))
    phase = frames["phase"].to_numpy()
    return rms, {k: np.round(diff[(phase == k) & registered].mean(axis=0), 2).tolist() for k in dict.fromkeys(phase)}


def run(seed: int, stack: int, variants: list[str], max_side: int = 512, max_frames: int = 400) -> list[dict]:
    """Simulate and register stack ``stack`` of the sweep with ``seed`` as drawn and with each
    variant (a ``+``-joined list of :data:`EFFECTS`); one row per variant."""
    rows, base_calls = [], None
    for variant in ["as_drawn", *variants]:
        rng = np.random.default_rng([seed, stack])
        p, _ = draw_params(rng, max_side=max_side, max_frames=max_frames)
        for effect in ([] if variant == "as_drawn" else variant.split("+")):
            p = dataclasses.replace(p, **EFFECTS[effect][0])
        recorder = StreamRecorder(rng)
        data, _, _, frames = simulate_stack(recorder, p)
        base_calls = recorder.calls if base_calls is None else base_calls
        same = recorder.calls == base_calls
        reg = register_stack(data)
        rms, per = phase_errors(reg.shifts, reg.registered, frames)
        rows.append({"stack": stack, "variant": variant, "rms_px": rms, "phases": per, "same_stream": same})
        print(f"stack {stack:3d}  {variant:28s} RMS {rms:6.3f} px  " + "  ".join(f"{k} {v[0]:+.2f} {v[1]:+.2f}"
              for k, v in per.items()) + ("" if same else "  (NOT the same random draws: not the same stack)"), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--stacks", type=int, nargs="+", required=True)
    ap.add_argument("--effects", nargs="+", default=list(EFFECTS),
                    help="effects to neutralise, one variant each; join with + to neutralise several together")
    args = ap.parse_args()
    for name in args.effects:
        for effect in name.split("+"):
            if effect not in EFFECTS:
                ap.error(f"unknown effect {effect!r}; choose from {', '.join(EFFECTS)}")
    print("effects: " + "; ".join(f"{k}: {v[1]}" for k, v in EFFECTS.items() if k in "+".join(args.effects)))
    for stack in args.stacks:
        run(args.seed, stack, args.effects)


if __name__ == "__main__":
    main()
