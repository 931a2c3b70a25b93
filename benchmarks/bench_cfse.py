"""CFSE speed: fit of one histogram, read+gate+fit+indices of a 1,000,000-event file, bootstrap.

Targets (issues #7, #14): fit (global search and refinement) <= 50 ms once the histogram is
built; read + gate + fit + indices of a 1,000,000-event file <= 1.5 s on one core (figures
excluded); 200-replicate bootstrap over events and gate variants (as the pipeline runs it) <= 5 s.
Also prints the share of the end-to-end time spent reading, with the FCS read compared to
numpy.fromfile of the same bytes. Median of N runs; wall-clock and CPU seconds (the machine may be
shared: CPU time is what one core spends).

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

from zincassay.cfse.deconvolve import _Model, fit_generations
from zincassay.cfse.indices import division_indices
from zincassay.cfse.intervals import bootstrap_indices
from zincassay.cfse.pipeline import GATE_VARIANTS, load_gated, summarise_control
from zincassay.cfse.settings import CFSESettings
from zincassay.config import resolve_config
from zincassay.simulate.cfse import CFSEParams, write_cfse_sample

CPU: dict[str, float] = {}  # median CPU seconds of each timed step (robust to other work on a shared machine)


def median_time(fn, runs: int, label: str = "") -> float:
    """Median wall-clock seconds of ``runs`` calls of ``fn``; the median CPU seconds go to ``CPU[label]``."""
    ts, cs = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        ts.append(time.perf_counter() - t0)
        cs.append(time.process_time() - c0)
    CPU[label] = statistics.median(cs)
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
        options = cfg.fit_options()

        def end_to_end():
            g = load_gated(tmp / "big.fcs", cfg)
            fit = fit_generations(g.cfse, parent, af, options=options)
            return division_indices(fit.cells)

        end_to_end()
        gated = load_gated(tmp / "big.fcs", cfg)
        values = gated.cfse
        model = _Model(values, parent, af, options)
        fit = fit_generations(values, parent, af, options=options, _model=model)
        t_fit = median_time(lambda: fit_generations(values, parent, af, options=options, _model=model), args.runs,
                            "fit of one histogram")
        t_e2e = median_time(end_to_end, args.runs, "read+gate+fit+indices, 1e6 events")
        from zincassay.io.fcs import read_fcs

        t_read = median_time(lambda: read_fcs(tmp / "big.fcs"), args.runs)
        t_raw = median_time(lambda: np.fromfile(tmp / "big.fcs", dtype=np.uint8), args.runs)  # same run, same bytes

        def bootstrap():  # as the pipeline runs it: over events and gate variants
            rng = np.random.default_rng(0)
            dye = gated.events[:, gated.data.channel_index(cfg.channel)]
            masks = [gated.gating.perturbed_mask(rng) for _ in range(GATE_VARIANTS)]
            return bootstrap_indices(values, parent, af, fit, options=options, replicates=200, seed=0,
                                     gate_variants=(dye, masks))

        t_boot = median_time(bootstrap, max(1, args.runs // 2), "bootstrap, 200 replicates")
    rows = [
        ("fit of one histogram", t_fit, 0.050),
        ("read+gate+fit+indices, 1e6 events", t_e2e, 1.5),
        ("bootstrap, 200 replicates", t_boot, 5.0),
    ]
    print(f"{'step':40s} {'wall s':>8s} {'CPU s':>8s} {'target s':>9s} {'wall/target':>12s} {'CPU/target':>11s}")
    for label, t, target in rows:
        c = CPU[label]
        print(f"{label:40s} {t:8.3f} {c:8.3f} {target:9.3f} {t / target:11.2f}x {c / target:10.2f}x "
              f"{'ok' if t <= target else ('ok on CPU time (machine busy)' if c <= target else 'MISS')}")
    print(f"(of which FCS read of the 1e6-event file: {t_read:.3f} s = {t_read / t_e2e:.0%} of end to end; "
          f"{t_read / t_raw:.2f}x numpy.fromfile of the same file, {t_raw:.3f} s)")


if __name__ == "__main__":
    main()
