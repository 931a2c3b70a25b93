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
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((workdir / "results" / "cfse").glob("*.tsv"))}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    work = tmp_path_factory.mktemp("wf")
    (work / "config").mkdir()
    simulate_dataset(work / "data", seed=11, n_donors=2, n_events=6000, imaging=False,
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
    victim = sheet[(sheet["role"] == "sample")].iloc[0]
    path = project / "config" / victim["file"]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated
    try:
        run = _run(project, "--forcerun", "cfse_sample")
        assert run.returncode != 0
        done = [s for s in sheet.loc[sheet["role"] == "sample", "sample_id"] if s != victim["sample_id"]]
        for sid in done:
            assert (project / "results" / "cfse" / sid / "indices.tsv").exists()
        assert not (project / "results" / "cfse" / victim["sample_id"] / "indices.tsv").exists()
        log = (project / "logs" / "cfse" / f"{victim['sample_id']}.log").read_text().strip().splitlines()
        assert len(log) == 1 and "truncated" in log[0] and path.name in log[0]
    finally:
        path.write_bytes(data)
