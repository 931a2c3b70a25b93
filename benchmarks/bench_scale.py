"""Scale: a 1,000-sample sheet through ``snakemake -n`` (DAG, validation, job planning).

The sheet holds 50 batches of 18 CFSE samples + an unstimulated and an unstained control
(1,000 rows), each a symbolic link to an example FCS file, plus 6 imaging stacks per 100 samples
optional (--imaging). Prints the wall time of ``snakemake -n`` (target <= 15 s), of
``zincassay validate``, and the time per sample, for 250 / 500 / 1,000 rows to show it is
not quadratic.

Run: python benchmarks/bench_scale.py [--samples 1000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def build(work: Path, n: int) -> None:
    ex = REPO / "example_data" / "cfse"
    data = work / "data"
    data.mkdir(parents=True)
    (work / "config").mkdir()
    rows = ["sample_id\tassay\tfile\tcondition\trole\tdonor\tbatch"]
    conds = ["deficient", "replete", "supplemented"]
    per_batch = 20
    for b in range(n // per_batch):
        batch = f"B{b + 1:03d}"
        for role, src in (("unstimulated", "cfse_D1_unstim_B1.fcs"), ("unstained", "cfse_D1_unstained_B1.fcs")):
            f = data / f"{batch}_{role}.fcs"
            f.symlink_to(ex / src)
            rows.append(f"{batch}_{role}\tcfse\t../data/{f.name}\t\t{role}\tD{b % 6 + 1}\t{batch}")
        for i in range(per_batch - 2):
            cond = conds[i % 3]
            f = data / f"{batch}_s{i:02d}.fcs"
            f.symlink_to(ex / f"cfse_D1_{cond[:3]}_B1.fcs")
            rows.append(f"{batch}_s{i:02d}\tcfse\t../data/{f.name}\t{cond}\tsample\tD{b % 6 + 1}\t{batch}")
    (work / "config" / "samples.tsv").write_text("\n".join(rows) + "\n")
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["conditions"].update(dose_column=None, source_column=None)  # the sheet has no dose column
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))


def timed(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    run = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if run.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{run.stderr[-2000:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1000)
    args = ap.parse_args()
    bindir = Path(sys.executable).parent
    for n in (args.samples // 4, args.samples // 2, args.samples):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            build(work, n)
            rows = len((work / "config" / "samples.tsv").read_text().splitlines()) - 1
            dry = timed([str(bindir / "snakemake"), "--snakefile", str(REPO / "Snakefile"), "-n", "--quiet", "rules"],
                        work)
            val = timed([sys.executable, "-m", "zincassay", "validate"], work)
            print(f"{rows:5d} samples: snakemake -n {dry:6.2f} s ({1000 * dry / rows:5.2f} ms/sample)   "
                  f"zincassay validate {val:5.2f} s" + ("   target <= 15 s" if n == args.samples else ""))


if __name__ == "__main__":
    main()
