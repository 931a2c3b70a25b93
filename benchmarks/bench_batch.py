"""Batch overhead: the Snakemake workflow against one long-lived process per core doing the same work.

A simulated CFSE batch (13 donors x 3 conditions + an unstimulated and an unstained control per
donor: 39 samples, 65 per-file jobs, 200,000 events per file) is analysed twice on 2 cores:

1. ``snakemake --cores 2`` (the README's command; the report is not built): every job is a fresh
   process that hands its step to the run's warm server (``zincassay.server``); and, to show what
   that buys, the same with ``ZINCASSAY_SERVER=off`` (each step imports everything itself);
2. the same shell commands, taken from ``snakemake --dry-run --printshellcmds``, run in two
   long-lived worker processes that imported everything before the clock starts (``zincassay.cli.main``
   in-process), stage by stage (controls, samples, collect, conditions and provenance).

Both produce the same tables and figures (checked). Prints both wall times and their ratio
(target <= 1.3).

Run: python benchmarks/bench_batch.py [--donors 13] [--events 200000] [--cores 2]
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
STAGES = ("cfse_control", ("cfse_sample", "imaging_sample"), ("cfse_collect", "imaging_collect"),
          ("conditions", "provenance"))


def build(work: Path, donors: int, events: int) -> None:
    from zincassay.simulate import simulate_dataset

    (work / "config").mkdir(parents=True)
    simulate_dataset(work / "data", seed=3, n_donors=donors, n_events=events, imaging=False,
                     sheet_path=work / "config" / "samples.tsv", cytokines=False)
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))


def shell_commands(work: Path) -> dict[str, list[list[str]]]:
    """Every job's zincassay command line by rule, from a dry run."""
    run = subprocess.run([str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--cores", "2", "-n", "-p",
                          "--forceall"], cwd=work, capture_output=True, text=True, check=True)
    jobs: dict[str, list[list[str]]] = {}
    rule = None
    for line in run.stdout.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):", line.strip())
        if m:
            rule = m.group(1)
        elif "-m zincassay run" in line and rule:
            argv = shlex.split(line.split(" 2> ")[0])
            jobs.setdefault(rule, []).append(argv[argv.index("zincassay") + 1:])
    return jobs


def _warm() -> None:
    import zincassay.cfse.cli
    import zincassay.cfse.figures
    import zincassay.cfse.pipeline
    import zincassay.cfse.tables
    import zincassay.conditions.figures
    import zincassay.conditions.stats
    import zincassay.provenance  # noqa: F401


def _job(argv_cwd: tuple[list[str], str]) -> int:
    from zincassay.cli import main

    argv, cwd = argv_cwd
    os.chdir(cwd)
    return main(argv)


def tables_digest(results: Path) -> dict[str, str]:
    """SHA-256 of every table, figure and JSON record (not provenance, not the input checksums that
    the workflow keeps and the replayed commands do not write)."""
    files = sorted(p for p in results.rglob("*") if p.suffix in (".tsv", ".gz", ".png", ".json")
                   and p.name != "provenance.json" and p.parent.name != "inputs")
    return {str(p.relative_to(results)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--donors", type=int, default=13)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        build(work, args.donors, args.events)
        jobs = shell_commands(work)
        n_jobs = sum(len(v) for v in jobs.values())

        timings = {}
        for label, server in (("workflow, a process per job", "off"), ("workflow (README command)", None)):
            shutil.rmtree(work / "results", ignore_errors=True)
            shutil.rmtree(work / ".snakemake", ignore_errors=True)
            env = dict(os.environ)
            env.pop("ZINCASSAY_SERVER", None)
            if server:
                env["ZINCASSAY_SERVER"] = server
            t0 = time.perf_counter()
            run = subprocess.run([str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--cores",
                                  str(args.cores), "--quiet"], cwd=work, capture_output=True, text=True, env=env)
            timings[label] = time.perf_counter() - t0
            if run.returncode != 0:
                sys.exit(f"workflow failed:\n{run.stderr[-3000:]}")
        digest_wf = tables_digest(work / "results")
        t_workflow = timings["workflow (README command)"]

        shutil.rmtree(work / "results")
        with mp.get_context("fork").Pool(args.cores, initializer=_warm) as pool:
            pool.map(_warm_noop, range(args.cores))  # workers have imported everything
            t0 = time.perf_counter()
            for stage in STAGES:
                rules = (stage,) if isinstance(stage, str) else stage
                batch = [(argv, str(work)) for r in rules for argv in jobs.get(r, [])]
                codes = pool.map(_job, batch, chunksize=1)
                if any(codes):
                    sys.exit(f"a job of {rules} failed in the long-lived workers")
            t_reference = time.perf_counter() - t0
        digest_ref = tables_digest(work / "results")
        same = digest_wf == digest_ref
    print(f"{args.donors * 3} samples, {n_jobs} jobs, {args.events} events per file, {args.cores} cores")
    for label, t in timings.items():
        print(f"{label + ':':42s} {t:7.1f} s  ({t / t_reference:.2f}x)")
    print(f"{'long-lived workers, same commands:':42s} {t_reference:7.1f} s")
    print(f"ratio, README command / long-lived workers: {t_workflow / t_reference:.2f}x (target <= 1.3x); "
          f"identical outputs: {same}")
    if not same:
        differ = sorted(k for k in set(digest_wf) | set(digest_ref) if digest_wf.get(k) != digest_ref.get(k))
        sys.exit(f"the two runs produced different outputs: {', '.join(differ[:10])}")


def _warm_noop(_: int) -> None:
    return None


if __name__ == "__main__":
    main()
