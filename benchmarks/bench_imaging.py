"""Imaging speed and memory on a 600-frame 512 x 512 uint16 stack, measured in the same run.

Stack: 150 cells (FluoZin-3 protocol: baseline, stimulus, pyrithione + Zn, TPEN) with shot noise,
slow drift and a jolt at each addition, written as an ImageJ TIFF and memory-mapped.
Reference: ``stack.sum()`` of the same memory-mapped array (one numpy pass).
Prints:
  - trace extraction time (numba's kernel; after a first call, timed apart, that compiles it or
    loads it from numba's cache) and its ratio to the reference (target <= 2x);
  - end-to-end ``analyse_stack`` time on one core (target <= 60 s), wall and CPU time;
  - peak resident memory of the end-to-end run (child process) / stack size (target <= 3x).

Run: python benchmarks/bench_imaging.py [--frames 600] [--size 512] [--runs 3]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

EVENTS = {"stimulus_s": 120.0, "pyrithione_s": 360.0, "tpen_s": 450.0}


def make_stack(path: Path, frames: int, size: int, seed: int = 0) -> None:
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    t = np.arange(frames) * 1.0
    yy, xx = np.mgrid[0:size, 0:size]
    labels = np.zeros((size, size), dtype=np.int32)
    n = 0
    for _ in range(2000):
        if n == 150:
            break
        cy, cx, r = rng.uniform(20, size - 20), rng.uniform(20, size - 20), rng.uniform(5, 8)
        disk = np.hypot(yy - cy, xx - cx) <= r
        if not labels[ndi.binary_dilation(disk, iterations=2)].any():
            n += 1
            labels[disk] = n
    zn = np.where(t < EVENTS["stimulus_s"], 1.0, 4.0)
    zn = np.where(t >= EVENTS["pyrithione_s"], 1e5, zn)
    zn = np.where(t >= EVENTS["tpen_s"] + 30, 0.001, zn)
    f = 40 + 200 * zn / (zn + 15)
    load = rng.uniform(2, 4, n + 1)
    load[0] = 0
    shifts = np.cumsum(rng.normal(0, 0.02, (frames, 2)), axis=0)
    for e in EVENTS.values():
        shifts[t >= e] += rng.uniform(-2, 2, 2)
    out = tifffile.memmap(path, shape=(frames, size, size), dtype=np.uint16, imagej=True,
                          metadata={"axes": "TYX", "finterval": 1.0})
    for k in range(frames):
        img = 110 + load[labels] * f[k] * np.exp(-t[k] / 3000)
        img = ndi.shift(img, shifts[k], order=1, mode="nearest")
        out[k] = rng.poisson(img).astype(np.uint16)
    out.flush()
    del out


def child(path: str) -> None:
    """End-to-end run in a fresh process: prints seconds and peak RSS (bytes) as JSON."""
    from zincassay.config import resolve_config
    from zincassay.imaging.pipeline import analyse_stack
    from zincassay.imaging.settings import ImagingSettings
    from zincassay.samplesheet import Sample

    t0, c0 = time.perf_counter(), time.process_time()
    settings = ImagingSettings.from_config(resolve_config({})["imaging"])
    r = analyse_stack(path, settings, Sample("bench", **{k: float(v) for k, v in EVENTS.items()}))
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"seconds": dt, "cpu_seconds": cpu,
                      "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                      "cells": int(r.segmentation.n), "pass": int(r.calibration.qc_pass.sum())}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    from zincassay.imaging.pipeline import measurement_labels
    from zincassay.imaging.register import estimate_shifts
    from zincassay.imaging.segment import reference_image, segment_cells
    from zincassay.imaging.traces import extract_traces
    from zincassay.io.stacks import read_stack

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.tif"
        make_stack(path, args.frames, args.size)
        stack = read_stack(path)
        data = stack.data
        nbytes = data.size * data.itemsize
        print(f"stack {data.shape} {data.dtype}, {nbytes / 1e6:.0f} MB, memory-mapped: {isinstance(data, np.memmap)}")
        shifts = estimate_shifts(data)
        ref = reference_image(data, shifts, np.arange(380, 420))
        # what analyse_stack measures, before growing it over the baseline mean (which adds a few pixels)
        labels = measurement_labels(segment_cells(ref, (12, 40000)))
        t0 = time.perf_counter()
        extract_traces(data, labels, shifts, 65535)
        first = time.perf_counter() - t0
        ref_times, tr_times = [], []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            data.sum()
            ref_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            extract_traces(data, labels, shifts, 65535)
            tr_times.append(time.perf_counter() - t0)
        ref_t, tr_t = statistics.median(ref_times), statistics.median(tr_times)
        print(f"stack.sum()            {ref_t * 1e3:8.1f} ms")
        print(f"trace extraction       {tr_t * 1e3:8.1f} ms   ratio {tr_t / ref_t:.2f}x   (target <= 2x; "
              f"{int(labels.max())} cells, {int((labels > 0).sum())} px measured)")
        print(f"  first call           {first * 1e3:8.1f} ms   (numba compiles its kernel, or loads it from its cache)")
        out = subprocess.run([sys.executable, __file__, "--child", str(path)], capture_output=True, text=True,
                             check=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"end to end (1 core)    {res['seconds']:8.1f} s    (target <= 60 s; {res['cells']} cells, "
              f"{res['pass']} pass QC; {res['cpu_seconds']:.1f} s of CPU: on a shared machine the wall "
              "time includes waiting)")
        print(f"peak memory            {res['peak_rss'] / 1e6:8.0f} MB   ratio {res['peak_rss'] / nbytes:.2f}x of the "
              "stack (target <= 3x)")


if __name__ == "__main__":
    main()
