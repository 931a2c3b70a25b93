"""FCS reader speed against the raw limit, flowio and fcsparser, measured in the same run.

Files: 1,000,000 events x 12 channels float32, and 1,000,000 x 14 int32 with $PnR = 2^24
(masked), each in both byte orders. Raw limit = numpy.fromfile of the data segment plus a
byteswap to native order. Prints the median of N runs and the ratio to raw for ``read_fcs``
(FCSData) and ``parse`` (the fcsparser-shaped ``(meta, DataFrame)``).
Targets: <= 1.3x raw for float data (read_fcs and parse), <= 2x raw for masked integer data.

Run: python benchmarks/bench_fcs.py [--runs 5] [--events 1000000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from zincassay.io.fcs import parse, read_fcs
from zincassay.io.fcs_write import write_fcs


def _median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _raw(path: Path, dtype: str, shape: tuple[int, int]):
    head = path.read_bytes()[:58]
    start = int(head[26:34])

    def run():
        a = np.fromfile(path, dtype=dtype, count=shape[0] * shape[1], offset=start)
        return a.astype(a.dtype.newbyteorder("="), copy=True).reshape(shape)

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--events", type=int, default=1_000_000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n = args.events
    try:
        import flowio  # type: ignore
    except ImportError:
        flowio = None
    try:
        import fcsparser  # type: ignore
    except Exception:
        fcsparser = None

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = []
        fl = rng.lognormal(8, 1.5, size=(n, 12)).astype(np.float32)
        it = rng.integers(0, 2**24, size=(n, 14)).astype(np.float64)
        for order in ("big", "little"):
            p = write_fcs(Path(tmp) / f"float_{order}.fcs", fl, [f"C{i}" for i in range(12)],
                          datatype="F", byteorder=order)
            cases.append((f"float32 12ch {order}", p, ("<" if order == "little" else ">") + "f4", (n, 12), 1.3))
            p = write_fcs(Path(tmp) / f"int_{order}.fcs", it, [f"C{i}" for i in range(14)],
                          datatype="I", byteorder=order, pnb=[32] * 14, pnr=[2.0**24] * 14)
            cases.append((f"int32 14ch $PnR=2^24 {order}", p, ("<" if order == "little" else ">") + "i4", (n, 14), 2.0))
        for label, path, dtype, shape, target in cases:
            read_fcs(path)  # warm the page cache
            raw_t = _median_time(_raw(path, dtype, shape), args.runs)
            ours_t = _median_time(lambda p=path: read_fcs(p), args.runs)
            parse_t = _median_time(lambda p=path: parse(p), args.runs)
            fio_t = fcp_t = float("nan")
            if flowio is not None:
                def fio(p=path):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        return flowio.FlowData(str(p)).as_array(preprocess=True)
                fio_t = _median_time(fio, args.runs)
            if fcsparser is not None:
                try:
                    fcp_t = _median_time(lambda p=path: fcsparser.parse(str(p)), args.runs)
                except Exception:
                    fcp_t = float("nan")
            rows.append((label, raw_t, ours_t, parse_t, fio_t, fcp_t, target))
    print(f"{'file':34s} {'raw ms':>8s} {'read ms':>8s} {'read/raw':>9s} {'parse ms':>9s} {'parse/raw':>10s} "
          f"{'target':>7s} {'flowio/raw':>11s} {'fcsparser/raw':>14s}")
    for label, raw_t, ours_t, parse_t, fio_t, fcp_t, target in rows:
        ok = "ok" if max(ours_t, parse_t) / raw_t <= target else "MISS"
        print(f"{label:34s} {raw_t * 1e3:8.1f} {ours_t * 1e3:8.1f} {ours_t / raw_t:8.2f}x {parse_t * 1e3:9.1f} "
              f"{parse_t / raw_t:9.2f}x {target:5.1f}x{ok:>5s} {fio_t / raw_t:10.1f}x {fcp_t / raw_t:13.1f}x")
    print("fcsparser:", "not importable (pins numpy<2)" if fcsparser is None else "measured")


if __name__ == "__main__":
    main()
