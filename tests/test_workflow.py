"""The Snakemake workflow end to end on a small simulated experiment (about a minute)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from zincassay.simulate import simulate_dataset

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
pytestmark = pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake not installed in this environment")


def _run(workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "2",
         "--keep-going", *extra],
        capture_output=True, text=True,
    )


def _tables(workdir: Path) -> dict[str, str]:
    tables = [*sorted((workdir / "results" / "cfse").glob("*.tsv")),
              *sorted((workdir / "results" / "imaging").glob("*.tsv*"))]
    return {f"{p.parent.name}/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest() for p in tables}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    work = tmp_path_factory.mktemp("wf")
    (work / "config").mkdir()
    simulate_dataset(work / "data", seed=11, n_donors=2, n_events=6000,
                     sheet_path=work / "config" / "samples.tsv")
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["cfse"]["bootstrap_replicates"] = 20
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    return work


def test_workflow_runs_and_recovers_truth(project):
    run = _run(project)
    assert run.returncode == 0, run.stderr[-3000:]
    ind = pd.read_csv(project / "results" / "cfse" / "indices.tsv", sep="\t").set_index("sample_id")
    truth = pd.read_csv(project / "data" / "truth" / "cfse_indices.tsv", sep="\t").set_index("sample_id")
    assert list(ind.index) == sorted(ind.index)
    assert ((ind["pct_divided"] - truth.loc[ind.index, "pct_divided"]).abs() <= 3).all()
    assert "zn_supplement_uM" in ind.columns  # extra sheet columns are carried
    gens = pd.read_csv(project / "results" / "cfse" / "generations.tsv", sep="\t")
    assert set(gens.columns) >= {"sample_id", "generation", "cells", "fraction", "precursors",
                                 "precursor_fraction", "mean_log10"}
    for sid in ind.index:
        assert (project / "results" / "cfse" / sid / "histogram.png").stat().st_size > 10000
    # imaging: per-sample summary against the simulator's truth, per-cell table with the sheet's columns
    summ = pd.read_csv(project / "results" / "imaging" / "summary.tsv", sep="\t").set_index("sample_id")
    cells = pd.read_csv(project / "data" / "truth" / "imaging_cells.tsv", sep="\t")
    ok = ~cells["saturates"] & ~cells["detaches"]
    true_base = cells[ok].groupby("sample_id")["baseline_zn_nM"].median()
    assert list(summ.index) == sorted(true_base.index)
    assert ((summ["median_baseline_zn_nM"] / true_base.loc[summ.index] - 1).abs() <= 0.25).all()
    got = pd.read_csv(project / "results" / "imaging" / "cells.tsv", sep="\t")
    assert {"centroid_x", "fmin", "fmax", "qc_reason", "zn_supplement_uM"} <= set(got.columns)
    assert (got.groupby("sample_id")["qc_pass"].sum() == summ["n_pass"]).all()
    traces = pd.read_csv(project / "results" / "imaging" / "traces.tsv.gz", sep="\t")
    assert len(traces) == len(got) * summ["n_frames"].iloc[0]


def test_rerun_gives_byte_identical_tables(project):
    first = _tables(project)
    for p in (project / "results").rglob("*"):
        if p.is_file():
            p.unlink()
    run = _run(project)
    assert run.returncode == 0, run.stderr[-3000:]
    assert _tables(project) == first


def test_corrupt_file_fails_only_its_own_jobs(project):
    sheet = pd.read_csv(project / "config" / "samples.tsv", sep="\t", dtype=str, keep_default_na=False)
    cfse = sheet[(sheet["role"] == "sample") & (sheet["assay"] == "cfse")]
    victim = cfse.iloc[0]
    path = project / "config" / victim["file"]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated
    try:
        run = _run(project, "--forcerun", "cfse_sample")
        assert run.returncode != 0
        done = [s for s in cfse["sample_id"] if s != victim["sample_id"]]
        for sid in done:
            assert (project / "results" / "cfse" / sid / "indices.tsv").exists()
        assert not (project / "results" / "cfse" / victim["sample_id"] / "indices.tsv").exists()
        log = (project / "logs" / "cfse" / f"{victim['sample_id']}.log").read_text().strip().splitlines()
        assert len(log) == 1 and "truncated" in log[0] and path.name in log[0]
    finally:
        path.write_bytes(data)


def test_unreadable_stack_fails_only_its_own_job(project):
    sheet = pd.read_csv(project / "config" / "samples.tsv", sep="\t", dtype=str, keep_default_na=False)
    imaging = sheet[sheet["assay"] == "imaging"]
    victim = imaging.iloc[0]
    path = project / "config" / victim["file"]
    data = path.read_bytes()
    path.write_bytes(data[:5000])  # truncated stack
    try:
        run = _run(project, "--forcerun", "imaging_sample")
        assert run.returncode != 0
        for sid in imaging["sample_id"]:
            assert (project / "results" / "imaging" / sid / "summary.tsv").exists() == (sid != victim["sample_id"])
        log = (project / "logs" / "imaging" / f"{victim['sample_id']}.log").read_text().strip().splitlines()
        assert len(log) == 1 and path.name in log[0] and "truncated" in log[0]
    finally:
        path.write_bytes(data)
