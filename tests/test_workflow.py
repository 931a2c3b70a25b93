"""The Snakemake workflow end to end on a small simulated experiment (about a minute)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from zincassay.simulate import simulate_dataset

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
pytestmark = pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake not installed in this environment")


def link_workflow(workdir: Path) -> None:
    """Make ``workdir`` look like the repository to Snakemake (Snakefile, workflow/, profiles/), so
    tests run the README's exact command there: ``snakemake --cores 2``."""
    for name in ("Snakefile", "workflow", "profiles"):
        if not (workdir / name).exists():
            (workdir / name).symlink_to(REPO / name)


def _run(workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    """The README's command (``snakemake --cores 2``) in ``workdir``, plus ``extra`` flags."""
    link_workflow(workdir)
    return subprocess.run([str(SNAKEMAKE), "--cores", "2", *extra], cwd=workdir, capture_output=True, text=True)


def _tables(workdir: Path) -> dict[str, str]:
    tables = [*sorted((workdir / "results" / "cfse").glob("*.tsv")),
              *sorted((workdir / "results" / "imaging").glob("*.tsv*")),
              *sorted((workdir / "results" / "zincflow").glob("*.tsv")),
              *sorted((workdir / "results" / "summary").glob("*.tsv")),
              *sorted((workdir / "results").rglob("*.png"))]  # figures carry no timestamps
    return {str(p.relative_to(workdir)): hashlib.sha256(p.read_bytes()).hexdigest() for p in tables}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    work = tmp_path_factory.mktemp("wf")
    (work / "config").mkdir()
    simulate_dataset(work / "data", seed=11, n_donors=2, n_events=6000,
                     sheet_path=work / "config" / "samples.tsv", cytokines=False)  # cytokines: tests/test_faults.py
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
    # zinc by flow: every subset of every sample (the kinetic tube too) against the culture's truth
    zinc = pd.read_csv(project / "results" / "zincflow" / "zinc.tsv", sep="\t")
    zt = pd.read_csv(project / "data" / "truth" / "zincflow_truth.tsv", sep="\t").set_index(["culture", "subset"])
    assert len(zinc) == 7 * 3 and (zinc["status"] == "ok").all() and zinc["qc_pass"].all()
    true_zn = zt.loc[list(zip(zinc["culture"], zinc["subset"], strict=True)), "zn_nM"].to_numpy()
    # resting zinc sits at f = 0.02-0.12 with FluoZin-3, where [Zn2+] rests on F - Fmin (docs/science.md): each
    # value within 25 % of the truth or its own 95 % CI covering it, and most CIs covering it
    covered = (zinc["zn_ci_low"] <= true_zn) & (true_zn <= zinc["zn_ci_high"])
    assert (((zinc["zn_nM"] / true_zn - 1).abs() <= 0.25) | covered).all(), zinc[["sample_id", "subset", "zn_nM"]]
    assert covered.mean() >= 2 / 3
    assert {"zn_supplement_uM", "fmin", "fmax", "unstained", "instrument"} <= set(zinc.columns)
    kin = pd.read_csv(project / "results" / "zincflow" / "kinetics.tsv", sep="\t")
    assert list(kin["sample_id"].unique()) == ["zf_D1_rep_kinetic"] and (kin["peak_zn_nM"] > kin["baseline_zn_nM"]).all()
    # across conditions: every readout x non-reference condition with CI and p; direction as simulated
    cond = pd.read_csv(project / "results" / "summary" / "conditions.tsv", sep="\t")
    comp = cond[cond["condition"] != "replete"]
    assert len(comp) == (10 + 3) * 2 and comp[["ci_low", "ci_high", "p_value", "p_holm"]].notna().all().all()
    di = cond[cond["readout"] == "division_index"].set_index("condition")["mean"]
    assert di["supplemented"] > di["replete"] > di["deficient"]
    for subset in ("CD3+", "CD3+CD4+CD8-", "CD3+CD4-CD8+"):
        zn = cond[(cond["assay"] == "zincflow") & (cond["readout"] == f"zn_nM_{subset}")].set_index("condition")["mean"]
        assert zn["supplemented"] > zn["replete"] > zn["deficient"], subset
    qc = pd.read_csv(project / "results" / "summary" / "qc.tsv", sep="\t")
    assert len(qc[(qc["level"] == "cell") & qc["excluded"]]) == (~got["qc_pass"]).sum()
    prov = json.loads((project / "results" / "provenance.json").read_text())
    raw = sorted((project / "data").rglob("*.fcs")) + sorted((project / "data").rglob("*.tif"))
    assert len(prov["inputs"]) == len(raw)
    assert {Path(i["path"]).name: i["sha256"] for i in prov["inputs"]} == {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in raw}


def test_every_computed_column_is_reserved_in_the_sheet(project):
    """A sheet column may not shadow a computed one: the reserved list covers every column the
    per-sample tables that carry sheet columns compute."""
    from zincassay.samplesheet import ASSAY_COLUMNS, IMAGING_TIME_COLUMNS, REQUIRED_COLUMNS, RESERVED_COLUMNS

    assert _run(project).returncode == 0  # up to date after the first test: nothing to do
    # the contract's own columns (an assay's optional columns too) are never extra columns
    sheet_columns = (set(REQUIRED_COLUMNS) | set(IMAGING_TIME_COLUMNS) | {c for cs in ASSAY_COLUMNS.values() for c in cs}
                     | {"zn_supplement_uM"})
    for rel in ("cfse/indices.tsv", "imaging/cells.tsv", "imaging/summary.tsv", "zincflow/zinc.tsv",
                "zincflow/kinetics.tsv"):
        header = (project / "results" / rel).read_text().splitlines()[0].split("\t")
        assert set(header) - sheet_columns <= RESERVED_COLUMNS, (rel, sorted(set(header) - sheet_columns - RESERVED_COLUMNS))


def test_rerun_gives_byte_identical_tables(project):
    first = _tables(project)
    for p in (project / "results").rglob("*"):
        if p.is_file():
            p.unlink()
    run = _run(project)
    assert run.returncode == 0, run.stderr[-3000:]
    assert _tables(project) == first


def test_imported_gates_drive_the_cfse_pipeline(project, tmp_path):
    """#16: a facility's gates (here one sample's exported gates.xml, as GatingML 2.0) replace the
    automatic ones for every CFSE tube; exported gates and gated events round-trip."""
    pytest.importorskip("flowkit", reason="the flowjo extra (FlowKit) is not installed")
    from zincassay.flow.gates_io import apply_gates
    from zincassay.io.fcs import read_fcs

    assert _run(project).returncode == 0  # the automatic run is complete
    first = pd.read_csv(project / "results" / "cfse" / "indices.tsv", sep="\t").set_index("sample_id")
    donor = first.index[0]
    sheet = pd.read_csv(project / "config" / "samples.tsv", sep="\t", dtype=str, keep_default_na=False)
    sheet = sheet[sheet["assay"] == "cfse"]
    sheet["file"] = [str((project / "config" / f).resolve()) for f in sheet["file"]]
    (tmp_path / "config").mkdir()
    sheet.to_csv(tmp_path / "config" / "samples.tsv", sep="\t", index=False)
    gates = tmp_path / "config" / "facility.xml"
    gates.write_bytes((project / "results" / "cfse" / donor / "gates.xml").read_bytes())
    cfg = yaml.safe_load((project / "config" / "config.yaml").read_text())
    cfg["cfse"].update(gates_from={"file": "config/facility.xml", "population": "/root/lymphocytes/singlets/live"},
                       export_fcs=True)
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    run = _run(tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    res = tmp_path / "results" / "cfse"
    ind = pd.read_csv(res / "indices.tsv", sep="\t").set_index("sample_id")
    assert list(ind.index) == list(first.index) and (ind["status"] == "ok").all()
    # the sample whose gates these are: as many events (an event on a gate's edge may swap: FlowKit
    # tests in float64 what our gates tested in float32), so the same numbers to 1e-4
    assert ind.loc[donor, "events_gated"] == first.loc[donor, "events_gated"]
    cols = ["pct_divided", "division_index", "division_index_ci_low", "peak_ratio"]
    pd.testing.assert_series_equal(ind.loc[donor, cols], first.loc[donor, cols], rtol=1e-4)
    truth = pd.read_csv(project / "data" / "truth" / "cfse_indices.tsv", sep="\t").set_index("sample_id")
    assert ((ind["pct_divided"] - truth.loc[ind.index, "pct_divided"]).abs() <= 3).all()
    gt = pd.read_csv(res / "gates.tsv", sep="\t")
    assert list(gt["gate"].unique()) == ["lymphocytes", "singlets", "live"]
    assert gt["note"].eq("imported from facility.xml").all()
    # every sample's gates.xml: the imported gates plus its generations, loadable in FlowKit with the same counts
    for sid in ind.index:
        raw = read_fcs(sheet.set_index("sample_id").loc[sid, "file"])
        xml = res / sid / "gates.xml"
        live = apply_gates(xml, "/lymphocytes/singlets/live", raw)
        assert int(live.mask.sum()) == ind.loc[sid, "events_gated"]
        exported = read_fcs(res / sid / "gated_events.fcs")
        assert exported.n_events == ind.loc[sid, "events_gated"]
        gen = exported.column("generation")
        for g in (0, 1, 2):
            back = apply_gates(xml, f"/lymphocytes/singlets/live/generation_{g}", raw)
            hard = np.sum(gen == g)  # most probable generation vs the boundary gate: nearly the same events
            assert abs(int(back.mask.sum()) - hard) <= max(0.1 * hard, 30), (sid, g)
    by_gen = pd.read_csv(res / "by_generation.tsv", sep="\t")
    assert set(by_gen["sample_id"]) == set(ind.index) and (by_gen["channel"] == "PE-A").all()
    assert (by_gen["threshold_source"] == "unstained q0.995").all()
    for sid in ind.index:
        assert (res / sid / "by_generation.png").stat().st_size > 5000


def test_corrupt_file_fails_only_its_own_sample_and_summaries_still_build(project):
    """A truncated FCS file and a truncated stack: the README's command still succeeds, the two
    samples carry a failure record with a one-line reason, every summary is written, and the run
    ends by naming them."""
    sheet = pd.read_csv(project / "config" / "samples.tsv", sep="\t", dtype=str, keep_default_na=False)
    victims = [sheet[(sheet["role"] == "sample") & (sheet["assay"] == a)].iloc[0]
               for a in ("cfse", "imaging", "zincflow")]
    saved = {}
    for v in victims:
        path = project / "config" / v["file"]
        saved[path] = path.read_bytes()
        path.write_bytes(saved[path][: len(saved[path]) // 3])  # truncated
    try:
        run = _run(project)
        assert run.returncode == 0, run.stderr[-3000:]
        assert "Traceback" not in run.stderr
        for v in victims:
            assay, sid = v["assay"], v["sample_id"]
            status = json.loads((project / "results" / assay / sid / "status.json").read_text())
            assert status["status"] == "failed" and "truncated" in status["reason"], status
            assert Path(v["file"]).name in status["reason"] and "\n" not in status["reason"]
            log = (project / "logs" / assay / f"{sid}.log").read_text().strip().splitlines()
            assert len(log) == 1 and "truncated" in log[0]
            assert f"{sid} (" in run.stderr  # the end-of-run list of failures
        ind = pd.read_csv(project / "results" / "cfse" / "indices.tsv", sep="\t").set_index("sample_id")
        assert ind.loc[victims[0]["sample_id"], "status"] == "failed"
        assert (ind.drop(victims[0]["sample_id"])["status"] == "ok").all()
        qc = pd.read_csv(project / "results" / "summary" / "qc.tsv", sep="\t")
        assert set(qc.loc[qc["item"] == "failed", "sample_id"]) == {v["sample_id"] for v in victims}
        assert (project / "results" / "summary" / "conditions.tsv").stat().st_size > 0
    finally:
        for path, data in saved.items():
            path.write_bytes(data)
    # the repaired files have new content: exactly their samples (and the summaries) run again
    run = _run(project)
    assert run.returncode == 0, run.stderr[-3000:]
    for v in victims:
        status = json.loads((project / "results" / v["assay"] / v["sample_id"] / "status.json").read_text())
        assert status["status"] == "ok"


def _chromium() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_opens_in_headless_chromium(project):
    """``snakemake --report`` builds; in a real browser the page raises no JavaScript error, every
    category lists its figures, and a figure of each subcategory renders."""
    if _chromium() is None:
        pytest.skip("Debian's chromium is not installed")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    assert _run(project).returncode == 0
    report = project / "results" / "report.html"
    run = _run(project, "--report", str(report))
    assert run.returncode == 0, run.stderr[-3000:]
    registered = len(list((project / "results").rglob("*.png")))
    with sync_playwright() as p:  # the report opens on the answer: the overview with the comparisons
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(report.as_uri())
        page.wait_for_timeout(500)
        landing = page.inner_text("body")
        browser.close()
    assert "zincassay results" in landing and "Main comparisons" in landing and "pct_divided" in landing
    errors: list[str] = []
    rows_seen, rendered = 0, 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        page = browser.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

        menu = page.locator("nav").first  # the report's navigation column

        def open_category(name: str) -> None:
            page.goto(report.as_uri())
            menu.get_by_text(name, exact=True).first.click()
            page.wait_for_timeout(300)

        for category in ("CFSE", "Imaging", "Zinc (flow)", "Conditions", "QC", "Dose response", "Provenance"):
            open_category(category)
            if menu.locator("table").count():  # the category's results listed right away
                groups = [None]
            else:  # its subcategories, under the breadcrumb "Results / <category>"
                lines = [x.strip() for x in menu.inner_text().splitlines() if x.strip()]
                groups = lines[lines.index(category) + 1:]
            for group in groups:
                if group is not None:
                    open_category(category)
                    menu.get_by_text(group, exact=True).first.click()
                    page.wait_for_timeout(300)
                images = page.locator("tr").filter(has=page.locator("a[iconname=eye][href='#']"))
                rows_seen += images.count()
                if images.count():
                    images.first.locator("a[iconname=eye]").first.click()
                    page.wait_for_timeout(500)
                    sizes = page.locator("img").evaluate_all("els => els.map(e => e.naturalWidth)")
                    assert max(sizes) > 300, (category, group)
                    rendered += 1
        browser.close()
    assert errors == []
    assert rows_seen == registered  # every figure is listed
    assert rendered >= 8


def _jobs_planned(workdir: Path, *extra: str) -> int:
    """Jobs a run would execute (the 'total' of Snakemake's job stats; 0 when nothing to do)."""
    import re

    dry = _run(workdir, "-n", *extra)
    m = re.search(r"^total\s+(\d+)", dry.stdout + dry.stderr, flags=re.MULTILINE)
    return int(m.group(1)) if m else 0


def test_killed_run_resumes_without_recomputing_finished_samples(project):
    import os
    import shutil
    import signal
    import time

    results = project / "results"
    shutil.rmtree(results, ignore_errors=True)
    full = _jobs_planned(project)
    link_workflow(project)
    proc = subprocess.Popen([str(SNAKEMAKE), "--cores", "1"], cwd=project, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    seen: dict[Path, float] = {}  # a sample's last table -> when it appeared
    deadline = time.time() + 300

    def settled() -> list[Path]:  # Snakemake has had 2 s to record these jobs as finished
        return sorted(p for p, t in seen.items() if time.time() - t > 2)

    while time.time() < deadline and len(settled()) < 4:
        for p in [*results.glob("cfse/*/indices.tsv"), *results.glob("imaging/*/summary.tsv")]:
            seen.setdefault(p, time.time())
        time.sleep(0.1)
    finished = settled()
    os.killpg(proc.pid, signal.SIGKILL)  # the whole job tree, as when a node dies
    proc.wait()
    assert len(finished) >= 4
    # nothing that looks complete is half-written: every table present parses to at least one row
    for p in results.rglob("*.tsv"):
        assert len(pd.read_csv(p, sep="\t")) >= 1, p
    stamps = {p: p.stat().st_mtime_ns for p in finished}
    unlock = subprocess.run([str(SNAKEMAKE), "--unlock"], cwd=project, capture_output=True)
    assert unlock.returncode == 0
    remaining = _jobs_planned(project)  # the default profile sets rerun-incomplete
    assert 0 < remaining <= full - len(finished)
    run = _run(project)
    assert run.returncode == 0, run.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in finished} == stamps  # finished samples were not recomputed
    assert _jobs_planned(project) == 0
