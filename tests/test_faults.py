"""Fault suite: what a core facility's batch meets on day one, each case with the bad input, the
one line the user sees, and proof that nothing else is lost or silently wrong.

Workflow-level cases share two runs of the README's command (``snakemake --cores 2``): a clean
simulated batch, and the same batch with several kinds of bad file at once. The bad samples get a
failure record naming the file and the fix; every summary and the report still build; and every
other sample's tables are byte-identical to the clean run. Sheets with one assay, one donor or one
condition run to the report. The rest are quick checks of validation and of the command line.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from tests.test_workflow import SNAKEMAKE, _run

from zincassay.config import resolve_config
from zincassay.errors import ValidationError
from zincassay.io.fcs import read_fcs
from zincassay.io.fcs_write import write_fcs
from zincassay.samplesheet import load_inputs
from zincassay.simulate import simulate_dataset

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake not installed in this environment")


def _project(root: Path, seed: int = 5, donors: int = 3, imaging: bool = True, zincflow: bool = False) -> Path:
    (root / "config").mkdir(parents=True)
    simulate_dataset(root / "data", seed=seed, n_donors=donors, n_events=4000, imaging=imaging,
                     sheet_path=root / "config" / "samples.tsv", zincflow=zincflow)
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["cfse"]["bootstrap_replicates"] = 10
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    return root


def _sheet(work: Path) -> pd.DataFrame:
    return pd.read_csv(work / "config" / "samples.tsv", sep="\t", dtype=str, keep_default_na=False).set_index(
        "sample_id", drop=False)


def _raw(work: Path, sid: str) -> Path:
    return work / "config" / _sheet(work).loc[sid, "file"]


def _sample_tables(work: Path, sid: str) -> dict[str, str]:
    folder = next((work / "results").glob(f"*/{sid}"))
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.suffix in (".tsv", ".gz") or p.name == "control.json"}


def _status(work: Path, sid: str) -> dict:
    return json.loads(next((work / "results").glob(f"*/{sid}/status.json")).read_text())


def _nan_fcs(path: Path) -> None:
    """Rewrite a float FCS file with NaN and inf in a few events (a damaged export)."""
    d = read_fcs(path)
    ev = d.events.astype(np.float32).copy()
    ev[:5, 0] = np.nan
    ev[5:7, 3] = np.inf
    write_fcs(path, ev, list(d.channels["$PnN"]), pns=list(d.channels["$PnS"]),
              keywords={"$SPILLOVER": d.keywords["$SPILLOVER"]})


def _nan_stack(path: Path) -> None:
    """Rewrite a stack as float32 with NaN pixels in one frame (a damaged export)."""
    import tifffile

    with tifffile.TiffFile(path) as tf:
        data = tf.asarray().astype(np.float32)
        meta = tf.imagej_metadata or {}
    data[10, :4, :4] = np.nan
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TYX", "finterval": meta.get("finterval", 5.0)})


#: sample or control -> (how it is broken, what the one-line reason must say)
FAULTS = {
    "cfse_D1_def": ("zero bytes", "not an FCS file"),
    "cfse_D1_sup": ("NaN and inf events", "NaN or infinite"),
    "cfse_D2_rep": ("truncated", "truncated"),
    "zinc_D1_def": ("truncated stack", "truncated"),
    "zinc_D2_sup": ("NaN pixels in a float stack", "NaN or infinite"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same simulated batch run clean and with faults, both from scratch."""
    clean = _project(tmp_path_factory.mktemp("clean"))
    faulty = tmp_path_factory.mktemp("faulty")
    shutil.copytree(clean, faulty, dirs_exist_ok=True)
    run_clean = _run(clean)
    assert run_clean.returncode == 0, run_clean.stderr[-3000:]
    _raw(faulty, "cfse_D1_def").write_bytes(b"")
    _nan_fcs(_raw(faulty, "cfse_D1_sup"))
    data = _raw(faulty, "cfse_D2_rep").read_bytes()
    _raw(faulty, "cfse_D2_rep").write_bytes(data[: len(data) // 2])
    data = _raw(faulty, "zinc_D1_def").read_bytes()
    _raw(faulty, "zinc_D1_def").write_bytes(data[: len(data) // 3])
    _nan_stack(_raw(faulty, "zinc_D2_sup"))
    # donor 3's "unstained" tube actually carries dye: a copy of its unstimulated control
    shutil.copyfile(_raw(faulty, "cfse_D3_unstim"), _raw(faulty, "cfse_D3_unstained"))
    run_faulty = _run(faulty)
    report = _run(faulty, "--report", str(faulty / "results" / "report.html"))
    return clean, faulty, run_faulty, report


def test_faulty_batch_finishes_with_every_summary(runs):
    _, faulty, run, report = runs
    assert run.returncode == 0, run.stderr[-3000:]
    for rel in ("cfse/indices.tsv", "cfse/generations.tsv", "imaging/summary.tsv", "summary/conditions.tsv",
                "summary/qc.tsv", "summary/overview.rst", "provenance.json"):
        assert (faulty / "results" / rel).stat().st_size > 0, rel
    assert report.returncode == 0, report.stderr[-3000:]
    assert (faulty / "results" / "report.html").stat().st_size > 100_000
    assert "Traceback" not in run.stderr + report.stderr


@pytest.mark.parametrize("sid", sorted(FAULTS))
def test_each_bad_file_is_named_with_its_reason(runs, sid):
    _, faulty, run, _ = runs
    what, says = FAULTS[sid]
    status = _status(faulty, sid)
    assert status["status"] == "failed", (what, status)
    reason = status["reason"]
    assert says in reason and _raw(faulty, sid).name in reason and "\n" not in reason, (what, reason)
    # the job's log is that one line; the end of the run lists it; qc.tsv and the report's first page too
    assay = status["assay"]
    log = (faulty / "logs" / assay / f"{sid}.log").read_text().strip().splitlines()
    assert log == [f"{sid}: failed: {reason}"]
    assert f"  - {sid} (" in run.stderr
    qc = pd.read_csv(faulty / "results" / "summary" / "qc.tsv", sep="\t")
    row = qc[(qc["sample_id"] == sid) & (qc["item"] == "failed")]
    assert len(row) == 1 and reason in row["detail"].iloc[0] and bool(row["excluded"].iloc[0])
    assert sid in (faulty / "results" / "summary" / "overview.rst").read_text()


def test_failed_samples_have_records_not_half_tables(runs):
    _, faulty, _, _ = runs
    ind = pd.read_csv(faulty / "results" / "cfse" / "indices.tsv", sep="\t").set_index("sample_id")
    for sid in ("cfse_D1_def", "cfse_D1_sup", "cfse_D2_rep"):
        row = ind.loc[sid]
        assert row["status"] == "failed" and not row["qc_pass"] and pd.isna(row["pct_divided"])
        assert (faulty / "results" / "cfse" / sid / "generations.tsv").stat().st_size == 0
    summ = pd.read_csv(faulty / "results" / "imaging" / "summary.tsv", sep="\t").set_index("sample_id")
    assert summ.loc["zinc_D1_def", "status"] == "failed" and pd.isna(summ.loc["zinc_D1_def", "n_cells"])
    # failed samples are left out of the statistics
    cond = pd.read_csv(faulty / "results" / "summary" / "conditions.tsv", sep="\t")
    pct = cond[(cond["readout"] == "pct_divided")].set_index("condition")
    assert pct.loc["deficient", "n_donors"] <= 2


def test_stained_unstained_control_fails_its_samples_qc(runs):
    _, faulty, _, _ = runs
    ind = pd.read_csv(faulty / "results" / "cfse" / "indices.tsv", sep="\t").set_index("sample_id")
    for sid in ("cfse_D3_def", "cfse_D3_rep", "cfse_D3_sup"):
        assert "unstained_control_stained" in ind.loc[sid, "qc_flags"] and not ind.loc[sid, "qc_pass"]
    qc = pd.read_csv(faulty / "results" / "summary" / "qc.tsv", sep="\t")
    flagged = qc[qc["item"] == "unstained_control_stained"]
    assert set(flagged["sample_id"]) == {"cfse_D3_def", "cfse_D3_rep", "cfse_D3_sup"}
    assert flagged["excluded"].all()


def test_other_samples_are_byte_identical_to_a_clean_run(runs):
    clean, faulty, _, _ = runs
    touched = set(FAULTS) | {"cfse_D3_def", "cfse_D3_rep", "cfse_D3_sup", "cfse_D3_unstained"}
    others = [s for s in _sheet(clean).index if s not in touched]
    assert len(others) >= 9
    for sid in others:
        assert _sample_tables(faulty, sid) == _sample_tables(clean, sid), sid
    # and their lines of the collected tables, to the byte (same header, same columns)
    for rel in ("cfse/indices.tsv", "cfse/generations.tsv", "imaging/summary.tsv", "imaging/cells.tsv"):
        lines = [(clean / "results" / rel).read_text().splitlines(), (faulty / "results" / rel).read_text().splitlines()]
        assert lines[0][0] == lines[1][0], rel
        kept = [{ln for ln in ls[1:] if ln.split("\t", 1)[0] in others} for ls in lines]
        assert kept[0] == kept[1] and kept[0], rel


def test_replaced_file_with_an_older_mtime_is_rerun(runs):
    """``cp -p`` of other bytes keeps an old modification time: the content checksum catches it."""
    clean, _, _, _ = runs
    target = _raw(clean, "cfse_D2_def")
    before = _status(clean, "cfse_D2_def")["sha256"]
    other = _raw(clean, "cfse_D2_sup")
    backup = target.read_bytes()
    stamp = target.stat().st_mtime
    shutil.copyfile(other, target)
    os.utime(target, (stamp - 3600, stamp - 3600))
    try:
        run = _run(clean)
        assert run.returncode == 0, run.stderr[-3000:]
        after = _status(clean, "cfse_D2_def")["sha256"]
        assert after != before and after == hashlib.sha256(other.read_bytes()).hexdigest()
        prov = json.loads((clean / "results" / "provenance.json").read_text())
        recorded = {i["sample_id"]: i["sha256"] for i in prov["inputs"]}
        assert recorded["cfse_D2_def"] == after
    finally:
        target.write_bytes(backup)
        os.utime(target, (stamp - 3600, stamp - 3600))
    assert _run(clean).returncode == 0
    assert _status(clean, "cfse_D2_def")["sha256"] == before


def test_moving_the_project_reruns_nothing(runs, tmp_path):
    clean, _, _, _ = runs
    moved = tmp_path / "moved"
    shutil.copytree(clean, moved, symlinks=True)
    dry = _run(moved, "-n")
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "Nothing to be done" in dry.stdout + dry.stderr, (dry.stdout + dry.stderr)[-3000:]


@pytest.mark.parametrize("kind", ["cfse only, one donor", "imaging only, one condition"])
def test_single_assay_donor_or_condition_sheets_run_to_the_report(tmp_path, kind):
    if kind.startswith("cfse"):
        work = _project(tmp_path, seed=8, donors=1, imaging=False)
    else:
        work = _project(tmp_path, seed=9, donors=2)
        sheet = _sheet(work)
        keep = sheet[(sheet["assay"] == "imaging") & (sheet["condition"] == "deficient")]
        keep.to_csv(work / "config" / "samples.tsv", sep="\t", index=False)
    run = _run(work)
    assert run.returncode == 0, run.stderr[-3000:]
    report = _run(work, "--report", str(work / "results" / "report.html"))
    assert report.returncode == 0, report.stderr[-3000:]
    cond = pd.read_csv(work / "results" / "summary" / "conditions.tsv", sep="\t")
    assert len(cond) > 0
    if kind.startswith("cfse"):
        assert set(cond["assay"]) == {"cfse"}
        comp = cond[cond["condition"] != "replete"]
        assert (comp["test"] == "descriptive only (1 donor)").all()
        assert not (work / "results" / "summary" / "imaging_conditions.png").exists()
    else:
        assert set(cond["assay"]) == {"imaging"} and set(cond["condition"]) == {"deficient"}
        assert cond["test"].str.startswith("not compared: no sample of the reference condition").all()
        assert not (work / "results" / "cfse").exists()


# --------------------------------------------------------------------------- validation, all at once


@pytest.fixture
def sheet_project(tmp_path):
    work = tmp_path
    (work / "data").mkdir()
    src = REPO / "example_data"
    sheet = pd.read_csv(REPO / "config" / "samples.tsv", sep="\t", dtype=str, keep_default_na=False)
    sheet["file"] = [str((REPO / "config" / f).resolve()) for f in sheet["file"]]
    cfg = {"samples": str(work / "samples.tsv")}
    assert src.is_dir()
    return sheet, cfg, work


def _problems(sheet: pd.DataFrame, cfg: dict, work: Path, text: str | None = None) -> list[str]:
    if text is None:
        sheet.to_csv(work / "samples.tsv", sep="\t", index=False)
    else:
        (work / "samples.tsv").write_text(text)
    with pytest.raises(ValidationError) as err:
        load_inputs(cfg)
    return err.value.problems


@pytest.mark.parametrize("column", ["qc_pass", "n_cells", "kd_nM", "status", "zn_nM", "subset"])
def test_sheet_column_named_like_a_computed_one_is_refused(sheet_project, column):
    sheet, cfg, work = sheet_project
    problems = _problems(sheet.assign(**{column: "x"}), cfg, work)
    assert any(f"column {column!r}" in p and "computes" in p and f"sheet_{column}" in p for p in problems)


def test_duplicate_column_same_file_twice_and_missing_control_all_reported_at_once(sheet_project):
    sheet, cfg, work = sheet_project
    sheet = sheet[sheet["sample_id"] != "cfse_D2_unstim"].copy()
    sheet.loc[sheet["sample_id"] == "cfse_D1_rep", "file"] = sheet.loc[sheet["sample_id"] == "cfse_D1_def",
                                                                     "file"].iloc[0]
    sheet.loc[sheet["sample_id"] == "zinc_D1_def", "donor"] = ""  # a blank that used to hide the rest
    text = sheet.to_csv(sep="\t", index=False)
    header, rest = text.split("\n", 1)
    text = header + "\tcondition\n" + "\n".join(line + "\tx" for line in rest.splitlines()) + "\n"
    problems = _problems(sheet, cfg, work, text)
    joined = "\n".join(problems)
    assert "column 'condition' appears more than once" in joined
    assert "is also on row" in joined
    assert "donor is blank" in joined
    assert "no unstimulated control for donor D2" in joined


def test_culture_missing_its_fmax_tube_is_named_with_everything_else(sheet_project):
    """#17: a zinc-by-flow culture without its zinc + pyrithione tube is a validation error naming the culture
    and its sample, reported with the sheet's other problems at once (here a CFSE batch without its
    unstimulated control and a kinetic cell that is not yes or no)."""
    sheet, cfg, work = sheet_project
    sheet = sheet[~sheet["sample_id"].isin(["zf_D2_sup_fmax", "cfse_D1_unstim"])].copy()
    sheet.loc[sheet["sample_id"] == "zf_D1_def", "kinetic"] = "maybe"
    problems = _problems(sheet, cfg, work)
    fmax = [p for p in problems if "no fmax tube" in p]
    assert len(fmax) == 1 and "culture D2/supplemented/B2" in fmax[0] and "zf_D2_sup" in fmax[0], problems
    assert "role 'fmax'" in fmax[0]  # the fix
    assert any("no unstimulated control for donor D1" in p for p in problems)
    assert any("kinetic 'maybe' is not yes or no" in p for p in problems)


def test_comma_separated_sheet_gets_told_so(sheet_project):
    sheet, cfg, work = sheet_project
    problems = _problems(sheet, cfg, work, sheet.to_csv(index=False))
    assert len(problems) == 1 and "comma-separated" in problems[0]


def test_folder_of_tiff_frames_is_accepted(sheet_project):
    import tifffile

    sheet, cfg, work = sheet_project
    frames = work / "frames"
    frames.mkdir()
    for t in range(3):
        tifffile.imwrite(frames / f"f{t:03d}.tif", np.zeros((32, 32), np.uint16))
    sheet.loc[sheet["sample_id"] == "zinc_D1_def", "file"] = str(frames)
    sheet.to_csv(work / "samples.tsv", sep="\t", index=False)
    inputs = load_inputs(cfg)
    assert Path(inputs.sheet.loc["zinc_D1_def", "path"]).resolve() == frames.resolve()


@pytest.mark.parametrize("patch, says", [
    ({"cfse": {"peak_ratio_bounds": [2.3, 1.7]}}, "cfse.peak_ratio_bounds: [2.3, 1.7] must be [low, high]"),
    ({"cfse": {"gates": {"singlet_ratio": [1.6, 0.8]}}}, "cfse.gates.singlet_ratio"),
    ({"imaging": {"cell_area_um2": [700, 15]}}, "imaging.cell_area_um2"),
    ({"cfse": {"bootstrap_replicates": 1_000_000_000}}, "it must be at most 10000"),
    ({"zincflow": {"marker_thresholds": {"CD9": 500}}}, "zincflow.marker_thresholds: 'CD9' is not a marker"),
    ({"zincflow": {"subsets": ["CD3+", "CD4"]}}, "zincflow.subsets: 'CD4' is not a run of markers"),
])
def test_config_bounds_and_caps(patch, says):
    with pytest.raises(ValidationError) as err:
        resolve_config(patch)
    assert any(says in p for p in err.value.problems), err.value.problems


def test_garbage_spill_csv_is_refused(tmp_path):
    csv = tmp_path / "spill.csv"
    csv.write_text("garbage\n")
    with pytest.raises(ValidationError) as err:
        resolve_config({"cfse": {"compensate": str(csv)}})
    assert any("not a spill matrix" in p for p in err.value.problems)


# --------------------------------------------------------------------------- the command line


def _zincassay(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zincassay", *args], capture_output=True, text=True, cwd=cwd)


def test_disk_full_is_one_line(tmp_path):
    tables = []
    for i in range(2):
        p = tmp_path / f"t{i}.tsv"
        p.write_text("sample_id\tx\ns\t1\n")
        tables.append(str(p))
    out = tmp_path / "out.tsv"
    (tmp_path / "out.tsv.part").symlink_to("/dev/full")  # every write to it fails: no space left
    run = _zincassay("run", "collect", "--out", str(out), *tables)
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "no space left on the disk" in lines[0] and "out.tsv" in lines[0], run.stderr


def test_tiny_tube_message_does_not_advise_what_fails(tmp_path):
    from zincassay.cfse.pipeline import load_gated
    from zincassay.cfse.settings import CFSESettings
    from zincassay.errors import ZincassayError

    ev = np.abs(np.random.default_rng(1).normal(5000, 1000, (30, 4)))
    p = write_fcs(tmp_path / "tiny.fcs", ev, ["FSC-A", "FSC-H", "SSC-A", "FITC-A"], pns=["", "", "", "CFSE"])
    settings = CFSESettings.from_config(resolve_config({})["cfse"])
    with pytest.raises(ZincassayError) as err:
        load_gated(p, settings)
    assert "only 30 events" in str(err.value) and "gating: none" not in str(err.value)


def test_init_ignores_hidden_and_appledouble_files(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copyfile(REPO / "example_data" / "cfse" / "cfse_D1_def_B1.fcs", raw / "cfse_D1_def_B1.fcs")
    (raw / "._cfse_D1_def_B1.fcs").write_bytes(b"\x00\x05\x16\x07")  # a macOS resource fork
    (raw / ".hidden.fcs").write_bytes(b"junk")
    (raw / ".Trash").mkdir()
    (raw / ".Trash" / "old.fcs").write_bytes(b"junk")
    run = _zincassay("init", str(raw), "-o", str(tmp_path / "s.tsv"))
    assert run.returncode == 0, run.stderr
    sheet = pd.read_csv(tmp_path / "s.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert list(sheet["sample_id"]) == ["cfse_D1_def_B1"]


def test_float_stack_never_takes_saturation_from_its_data(tmp_path):
    """A float stack without bit depth in config or metadata: no saturation level (recorded), so no
    bright cell is excluded as 'saturated' for being the brightest."""
    import tifffile

    from zincassay.imaging.pipeline import analyse_stack
    from zincassay.imaging.settings import ImagingSettings
    from zincassay.samplesheet import Sample
    from zincassay.simulate.imaging import ImagingParams, simulate_stack

    p = ImagingParams()
    stack, *_ = simulate_stack(np.random.default_rng(4), p)
    path = tmp_path / "float.tif"
    tifffile.imwrite(path, stack.astype(np.float32), imagej=True,
                     metadata={"axes": "TYX", "finterval": p.frame_interval_s})
    settings = ImagingSettings.from_config(resolve_config({})["imaging"])
    r = analyse_stack(str(path), settings, Sample("f", stimulus_s=p.stimulus_s, pyrithione_s=p.pyrithione_s,
                                                  tpen_s=p.tpen_s))
    assert not np.isfinite(r.saturation_value)
    assert r.bit_depth_source == "none (float data)"
    assert not any("saturated" in q for q in r.calibration.qc_reason)
    # with the camera's bit depth in the config, its ceiling is used
    settings12 = ImagingSettings.from_config(resolve_config({"imaging": {"bit_depth": 12}})["imaging"])
    r12 = analyse_stack(str(path), settings12, Sample("f", stimulus_s=p.stimulus_s, pyrithione_s=p.pyrithione_s,
                                                      tpen_s=p.tpen_s))
    assert r12.saturation_value == 4095 and r12.bit_depth_source == "config"


# --------------------------------------------------------------------------- zinc by flow (#17)


def _without_stain(path: Path, channel: str) -> None:
    """Rewrite an FCS tube with the stain name ($PnS) of ``channel`` blanked: its marker is not in the file."""
    from zincassay.io.fcs_write import carried_keywords

    d = read_fcs(path)
    pns = ["" if n == channel else s for n, s in zip(d.channels["$PnN"], d.channels["$PnS"], strict=True)]
    write_fcs(path, d.events.astype(np.float32), list(d.channels["$PnN"]), pns=pns, spill=d.spill,
              keywords=carried_keywords(d))


#: zinc-by-flow file -> (how it is broken, what the one-line reason of the sample must say)
ZINCFLOW_FAULTS = {
    "zf_D1_def": ("its CD8 stain missing from the sample tube", "marker 'CD8'"),
    "zf_D2_sup": ("its fmax tube truncated", "its fmax tube zf_D2_sup_fmax failed:"),
}


@pytest.fixture(scope="module")
def zincflow_batch(tmp_path_factory):
    """A zinc-by-flow batch (2 donors x 3 conditions, one kinetic tube) with a subset marker absent from
    one sample tube and one culture's zinc + pyrithione tube truncated, run by the README's command."""
    work = _project(tmp_path_factory.mktemp("zincflow"), seed=6, donors=2, imaging=False, zincflow=True)
    sheet = _sheet(work)
    sheet[sheet["assay"] == "zincflow"].to_csv(work / "config" / "samples.tsv", sep="\t", index=False)
    _without_stain(_raw(work, "zf_D1_def"), "APC-A")
    data = _raw(work, "zf_D2_sup_fmax").read_bytes()
    _raw(work, "zf_D2_sup_fmax").write_bytes(data[: len(data) // 2])
    return work, _run(work)


def test_zincflow_faults_are_one_line_each_and_the_other_samples_finish(zincflow_batch):
    work, run = zincflow_batch
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    zinc = pd.read_csv(work / "results" / "zincflow" / "zinc.tsv", sep="\t")
    for (sid, (what, says)), culture in zip(ZINCFLOW_FAULTS.items(), ("D1/deficient/B1", "D2/supplemented/B2"),
                                            strict=True):
        status = _status(work, sid)
        reason = status["reason"]
        assert status["status"] == "failed" and says in reason and "\n" not in reason, (what, reason)
        assert (work / "logs" / "zincflow" / f"{sid}.log").read_text().strip().splitlines() == [
            f"{sid}: failed: {reason}"]
        assert f"  - {sid} (" in run.stderr  # listed at the end of the run
        row = zinc[zinc["sample_id"] == sid]
        assert len(row) == 1 and row["status"].iloc[0] == "failed" and row["failure"].iloc[0] == reason
        assert not row["qc_pass"].iloc[0] and row["culture"].iloc[0] == culture
    # the marker's file is named, with the fix; the truncated tube has its own record naming its file
    assert _raw(work, "zf_D1_def").name in _status(work, "zf_D1_def")["reason"]
    assert "zincflow.marker_channels" in _status(work, "zf_D1_def")["reason"]
    tube = _status(work, "zf_D2_sup_fmax")
    assert tube["status"] == "failed" and "truncated" in tube["reason"] and _raw(work, "zf_D2_sup_fmax").name in tube[
        "reason"]
    # every other sample finished, with a number for every subset
    ok = zinc[~zinc["sample_id"].isin(list(ZINCFLOW_FAULTS))]
    assert set(ok["sample_id"]) == {"zf_D1_rep", "zf_D1_rep_kinetic", "zf_D1_sup", "zf_D2_def", "zf_D2_rep"}
    assert (ok["status"] == "ok").all() and ok["zn_nM"].notna().all()
    qc = pd.read_csv(work / "results" / "summary" / "qc.tsv", sep="\t")
    assert set(qc.loc[qc["item"] == "failed", "sample_id"]) == {*ZINCFLOW_FAULTS, "zf_D2_sup_fmax"}
    cond = pd.read_csv(work / "results" / "summary" / "conditions.tsv", sep="\t").set_index(["readout", "condition"])
    assert cond.loc[("zn_nM_CD3+", "supplemented"), "n_donors"] == 1  # D2's culture failed
    assert cond.loc[("zn_nM_CD3+", "replete"), "n_donors"] == 2
    assert "zf_D1_def" in (work / "results" / "summary" / "overview.rst").read_text()


def test_zincflow_probe_channel_typo_is_a_one_line_failure_record(zincflow_batch, tmp_path):
    """A typo in zincflow.channel: the sample's job still succeeds, with a failure record naming the file,
    the channel asked for, the one it probably meant, and the key to fix."""
    work, _ = zincflow_batch
    settings = resolve_config({"zincflow": {"channel": "FTIC-A", "viability_channel": "LiveDead"}})["zincflow"]
    out = {name: tmp_path / f"{name}.{ext}" for name, ext in (("zinc", "tsv"), ("gates", "tsv"), ("status", "json"),
                                                               ("histograms-figure", "png"), ("gating-figure", "png"))}
    sheet = _sheet(work)
    tube = {role: sheet.loc[f"zf_D2_rep_{role}", "file"] for role in ("fmin", "fmax")}
    run = _zincassay("run", "zincflow-sample", str(Path("config") / sheet.loc["zf_D2_rep", "file"]),
                     "--sheet", "config/samples.tsv", "--sample-id", "zf_D2_rep", "--settings", json.dumps(settings),
                     "--fmin", str(Path("config") / tube["fmin"]), "--fmax", str(Path("config") / tube["fmax"]),
                     *(a for name, path in out.items() for a in (f"--{name}", str(path))), cwd=work)
    assert run.returncode == 0, run.stderr
    status = json.loads(out["status"].read_text())
    reason = status["reason"]
    assert status["status"] == "failed" and "\n" not in reason
    assert "zf_D2_rep_B2.fcs" in reason and "'FTIC-A'" in reason and "did you mean 'FITC-A'" in reason
    assert "zincflow.channel" in reason
    assert run.stderr.strip() == f"zf_D2_rep: failed: {reason}"
    row = pd.read_csv(out["zinc"], sep="\t")
    assert len(row) == 1 and row["status"].iloc[0] == "failed" and row["failure"].iloc[0] == reason
    assert out["gating-figure"].stat().st_size > 1000 and out["gates"].stat().st_size == 0
