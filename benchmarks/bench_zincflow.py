"""Zinc-by-flow speed: the bootstrap CI, and one sample end to end.

Targets: the 95 % CI of one subset (three tubes, 2,000 replicates) in <= 1 % of the time of
resampling the events (numpy, the same replicates); for one sample (sample, TPEN, zinc/pyrithione
and unstained tubes of 100,000 events each, 3 subsets, 2,000 replicates), the zinc-specific work
(marker valleys, then subsets, medians, bootstrap and QC) <= 0.5 x the shared compensation +
lymphocyte/singlet/live gates of :mod:`zincassay.flow` on the same tubes. Median of N runs, one core.

Run: python benchmarks/bench_zincflow.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from zincassay.config import resolve_config
from zincassay.flow.compensation import apply_compensation
from zincassay.flow.gating import gate_events
from zincassay.io.fcs import read_fcs
from zincassay.simulate.zincflow import ZincflowCulture, write_culture
from zincassay.zincflow.calibrate import bootstrap_medians
from zincassay.zincflow.pipeline import analyse_sample, run_sample
from zincassay.zincflow.settings import ZincflowSettings
from zincassay.zincflow.subsets import valley_threshold
from zincassay.zincflow.tubes import gate_tube


def median_time(fn, runs: int) -> float:
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def resampled_medians(x: np.ndarray, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """The reference: resample n events per replicate (in blocks to bound memory)."""
    out = np.empty(replicates)
    for i in range(0, replicates, 50):
        k = min(50, replicates - i)
        out[i:i + k] = np.median(x[rng.integers(0, x.size, (k, x.size))], axis=1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    reps = 2000
    print("bootstrap CI of one subset (3 tubes, 2,000 replicates):")
    for n in (5_000, 30_000):
        tubes = [rng.lognormal(np.log(2000), 0.45, n) for _ in range(3)]
        exact = median_time(lambda t=tubes: [bootstrap_medians(x, reps, np.random.default_rng(1)) for x in t], args.runs)
        ref = median_time(lambda t=tubes: [resampled_medians(x, reps, np.random.default_rng(1)) for x in t], 1)
        print(f"  {n:>6} events per tube: exact order statistics {1000 * exact:7.1f} ms, resampling {ref:6.2f} s, "
              f"ratio {exact / ref:.4f} (target <= 0.01)")
    settings = ZincflowSettings.from_config(
        resolve_config({"zincflow": {"viability_channel": "LiveDead", "bootstrap_replicates": reps}})["zincflow"])
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_culture(Path(tmp), "b", rng, ZincflowCulture(n_events=100_000))
        data = [read_fcs(p) for p in paths.values()]
        g = settings.gates

        def shared_gates() -> None:
            for d in data:
                comp, _, _ = apply_compensation(d, settings.compensate, settings.on_bad_spill)
                gate_events(comp, gating=settings.gating, scatter=settings.scatter,  # type: ignore[arg-type]
                            singlet_ratio=g.singlet_ratio, viability_channel=settings.viability_channel,
                            viability_threshold=g.viability_threshold, scatter_populations="densest")

        read = median_time(lambda: [read_fcs(p) for p in paths.values()], args.runs)
        gates = median_time(shared_gates, args.runs)
        tubes = {role: gate_tube(p, role, settings) for role, p in paths.items()}

        def marker_splits() -> None:
            for t in tubes.values():
                for name in settings.markers:
                    valley_threshold(t.marker_values[name][t.gating.mask], scale=settings.marker_scale,
                                     cofactor=settings.asinh_cofactor)

        splits = median_time(marker_splits, args.runs)
        calib = median_time(lambda: analyse_sample(tubes["sample"], tubes["fmin"], tubes["fmax"], tubes["unstained"],
                                                   settings), args.runs)
        full = median_time(lambda: run_sample(paths["sample"], paths["fmin"], paths["fmax"], paths["unstained"],
                                              settings), args.runs)
    own = splits + calib
    print(f"one sample, 4 tubes x 100,000 events, 3 subsets: {full:.2f} s end to end; reading {read:.3f} s, shared "
          f"gates {gates:.2f} s, marker valleys {splits:.3f} s, subsets + medians + bootstrap + QC {calib:.3f} s; "
          f"zinc-specific / shared gates {own / gates:.2f} (target <= 0.5)")

if __name__ == "__main__":
    main()
