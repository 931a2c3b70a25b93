"""CFSE speed: fit of one histogram, read+gate+fit+indices of a 1,000,000-event file, bootstrap.

Targets (issue #7): fit <= 50 ms once the histogram is built; read + gate + fit + indices of a
1,000,000-event file <= 1.5 s on one core (figures excluded); 200-replicate bootstrap <= 5 s.
Also prints the share of the end-to-end time spent reading, with the FCS read compared to
numpy.fromfile of the same bytes. Median of N runs.

Run: python benchmarks/bench_cfse.py [--runs 5]
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

from zincassay.cfse.deconvolve import (
    _Model,
    bootstrap_indices,
    fit_generations,
)
from zincassay.cfse.indices import division_indices
from zincassay.cfse.pipeline import load_gated, summarise_control
from zincassay.cfse.settings import CFSESettings
from zincassay.config import resolve_config
from zincassay.simulate.cfse import CFSEParams, write_cfse_sample


def median_time(fn, runs: int) -> float:
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    cfg = CFSESettings.from_config(resolve_config({"cfse": {"viability_channel": "LiveDead"}})["cfse"])
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_cfse_sample(tmp / "u.fcs", rng, CFSEParams(n_events=30000), role="unstimulated")
        write_cfse_sample(tmp / "n.fcs", rng, CFSEParams(n_events=30000), role="unstained")
        write_cfse_sample(tmp / "big.fcs", rng, CFSEParams(n_events=1_000_000), role="sample")
        u = summarise_control(load_gated(tmp / "u.fcs", cfg), "unstimulated")
        n = summarise_control(load_gated(tmp / "n.fcs", cfg), "unstained")
        parent = u.parent
        af = np.asarray(n.autofluorescence.quantiles)
        bounds = tuple(cfg.peak_ratio_bounds)

        def end_to_end():
            g = load_gated(tmp / "big.fcs", cfg)
            fit = fit_generations(g.cfse, parent, af, peak_ratio_bounds=bounds)
            return division_indices(fit.cells)

        end_to_end()
        values = load_gated(tmp / "big.fcs", cfg).cfse
        d_lo, d_hi = np.log10(bounds[0]), np.log10(bounds[1])
        model = _Model(values, parent, af, cfg.max_generations, (d_lo, d_hi))
        fit = fit_generations(values, parent, af, peak_ratio_bounds=bounds, _model=model)
        t_fit = median_time(lambda: fit_generations(values, parent, af, peak_ratio_bounds=bounds, _model=model), args.runs)
        t_e2e = median_time(end_to_end, args.runs)
        from zincassay.io.fcs import read_fcs

        t_read = median_time(lambda: read_fcs(tmp / "big.fcs"), args.runs)
        t_boot = median_time(lambda: bootstrap_indices(values, parent, af, fit, replicates=200, seed=0,
                                                       peak_ratio_bounds=bounds), max(1, args.runs // 2))
    rows = [
        ("fit of one histogram", t_fit, 0.050),
        ("read+gate+fit+indices, 1e6 events", t_e2e, 1.5),
        ("bootstrap, 200 replicates", t_boot, 5.0),
    ]
    print(f"{'step':40s} {'median s':>9s} {'target s':>9s} {'ratio':>7s}")
    for label, t, target in rows:
        print(f"{label:40s} {t:9.3f} {target:9.3f} {t / target:6.2f}x {'ok' if t <= target else 'MISS'}")
    print(f"(of which FCS read of 1e6 x 7 float32: {t_read:.3f} s)")


if __name__ == "__main__":
    main()
