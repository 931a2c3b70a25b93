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
                     sheet_path=root / "config" / "samples.tsv", zincflow=zincflow,
                     cytokines=False)  # cytokines: their own project below
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
    for col in ("file", "layout"):
        sheet[col] = [str((REPO / "config" / f).resolve()) if f else "" for f in sheet[col]]
    cfg = {**yaml.safe_load((REPO / "config" / "config.yaml").read_text()), "samples": str(work / "samples.tsv")}
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


def test_cytokine_sheet_problems_all_reported_at_once(sheet_project):
    """Bead-array and ELISA rows: every problem in one list, each naming the row and the fix."""
    sheet, cfg, work = sheet_project
    cfg = {k: v for k, v in cfg.items() if k not in ("beadplex", "elisa")}  # no beadplex.panel, no elisa.kit
    s = sheet.set_index("sample_id", drop=False)
    s.loc["cyto_std_C7_1", "standard_level"] = ""
    s.loc["cyto_D1_untreated", "standard_level"] = "C3"
    s.loc["cyto_D2_untreated", "replicate_of"] = "cyto_D9_none"
    s.loc["cyto_D1_asp50uM", "dilution"] = "1:0.5"
    s.loc["cyto_D1_asp25uM", ["batch", "role", "standard_level"]] = ["B9", "sample", ""]  # a batch without standards
    s.loc["cyto_D1_oxi50uM_elisa", "layout"] = ""
    s.loc["cyto_D2_oxi50uM_elisa", "layout_label"] = "cyto_D2_oxi25uM"
    s.loc["cyto_D2_asp50uM_elisa", "batch"] = "plate 2"
    s.loc["cyto_D2_asp25uM_elisa", "zn_supplement_uM"] = "lots"
    joined = "\n".join(_problems(s.reset_index(drop=True), cfg, work))
    for says in ("42 beadplex row(s)", "no beadplex.panel", "26 elisa row(s)", "no elisa.kit",
                 "(cyto_std_C7_1): a standard well needs its standard_level",
                 "(cyto_D1_untreated): standard_level 'C3' is set but the role is 'sample'",
                 "(cyto_D2_untreated): replicate_of 'cyto_D9_none' must name the first well",
                 "dilution '1:0.5' is not a factor >= 1",
                 "bead-array batch 'B9' has samples but no standard wells",
                 "(cyto_D1_oxi50uM_elisa): an ELISA sample needs its plate layout",
                 "layout label 'cyto_D2_oxi25uM' is also used",
                 "batch 'plate 2' names a results folder",
                 "ELISA export plate1_export.csv is given batches plate 2, plate1",
                 "(cyto_D2_asp25uM_elisa): zn_supplement_uM 'lots' is not a dose"):
        assert says in joined, (says, joined)


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


# --------------------------------------------------------------------------- cytokines (#18)

#: the cytokine project's bad inputs: a bead well missing a population, a spoiled standard level, a
#: truncated standard well and a truncated sample well, and an ELISA plate given the wrong layout
CYTO_DROPPED = ("cyto_D1_asp5", "A6", "IL-2")
CYTO_FAILED_LEVEL = "C4"


def _cytokine_project(root: Path) -> tuple[Path, dict]:
    """A bead-array batch (LEGENDplex 13-plex standards in duplicate with level C4 spoiled, 8 cultures
    of 2 donors, one in two wells, one well without bead A6) and two ELISA plates of the same
    cultures; plate2 is given a 384-well layout for its 96-well export. Returns the project and the
    truth (culture -> analyte -> pg/mL)."""
    from zincassay.beadplex.panel import load_panel
    from zincassay.elisa.kit import load_kit
    from zincassay.simulate.beadplex import BeadplexParams, simulate_beadplex_run
    from zincassay.simulate.cytokines import UNTREATED_PG_ML
    from zincassay.simulate.elisa import ElisaParams, write_elisa_plate

    rng = np.random.default_rng(1818)
    data, config = root / "data", root / "config"
    config.mkdir(parents=True)
    panel = load_panel("legendplex_human_th_cytokine_13plex")
    cultures = []
    for donor in ("D1", "D2"):
        for cond, dose in (("replete", 0), ("zinc_aspartate", 5), ("zinc_aspartate", 50), ("zinc_oxide", 50)):
            sid = f"cyto_{donor}_" + ("untreated" if not dose else f"{cond[5:8]}{dose}")
            conc = {a: u * (1 - 0.5 * s * dose / (dose + 8)) * 10 ** rng.normal(0, 0.1)
                    for a, (u, s) in UNTREATED_PG_ML.items()}
            cultures.append({"sample_id": sid, "concentration": conc, "condition": cond, "donor": donor,
                             "zn_supplement_uM": dose,
                             **({"drop_beads": (CYTO_DROPPED[1],)} if sid == CYTO_DROPPED[0] else {}),
                             **({"replicates": 2} if sid == "cyto_D2_untreated" else {})})
    wells, _ = simulate_beadplex_run(data / "beadplex", rng, panel, cultures, BeadplexParams(beads_per_population=150),
                                     prefix="cyto", failed_level=CYTO_FAILED_LEVEL, failed_factor=0.4)
    rows = [{"sample_id": w["sample_id"], "assay": "beadplex", "file": os.path.relpath(w["file"], config),
             "condition": w.get("condition", ""), "role": w["role"], "donor": w.get("donor", ""), "batch": "B1",
             "standard_level": w["standard_level"], "dilution": w["dilution"] if w["role"] == "sample" else "",
             "replicate_of": w["replicate_of"], "layout": "", "layout_label": "",
             "zn_supplement_uM": w.get("zn_supplement_uM", "")} for w in wells]
    kit = load_kit("sandwich_elisa_7pt_2fold")
    for plate in ("plate1", "plate2"):
        export, layout, _ = write_elisa_plate(
            data / "elisa", rng, kit, [{"sample_id": c["sample_id"], "concentration": c["concentration"]["IL-6"],
                                        "dilution": 4.0} for c in cultures], ElisaParams(), plate_id=plate)
        rows += [{"sample_id": f"{c['sample_id']}_{plate}", "assay": "elisa", "file": os.path.relpath(export, config),
                  "condition": c["condition"], "role": "sample", "donor": c["donor"], "batch": plate,
                  "standard_level": "", "dilution": "", "replicate_of": "", "layout": os.path.relpath(layout, config),
                  "layout_label": c["sample_id"], "zn_supplement_uM": c["zn_supplement_uM"]} for c in cultures]
    # plate2's layout file is a 384-well one (the wrong file picked up): its export is 96-well
    (data / "elisa" / "plate2_layout.csv").write_text(
        "layout," + ",".join(str(c) for c in range(1, 25)) + "\n"
        + "".join(f"{chr(65 + r)}," + ",".join("STD1" if c == 0 else "" for c in range(24)) + "\n" for r in range(16)))
    pd.DataFrame(rows).to_csv(config / "samples.tsv", sep="\t", index=False)
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    (config / "config.yaml").write_text(yaml.safe_dump(cfg))
    # a truncated standard well and a truncated sample well
    for sid in ("cyto_std_C6_2", "cyto_D2_oxi50"):
        f = data / "beadplex" / f"{sid}.fcs"
        f.write_bytes(f.read_bytes()[:5000])
    return root, {c["sample_id"]: c["concentration"] for c in cultures}


@pytest.fixture(scope="module")
def cytokine_run(tmp_path_factory):
    work, truth = _cytokine_project(tmp_path_factory.mktemp("cytokines"))
    run = _run(work)
    report = _run(work, "--report", str(work / "results" / "report.html"))
    return work, truth, run, report


def _tsv(work: Path, rel: str) -> pd.DataFrame:
    return pd.read_csv(work / "results" / rel, sep="\t", keep_default_na=False, na_values=[""])


def test_cytokine_faults_leave_the_batch_finished_with_every_summary(cytokine_run):
    work, _, run, report = cytokine_run
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr + report.stderr
    for rel in ("cytokines/concentrations.tsv", "cytokines/standards.tsv", "cytokines/standard_levels.tsv",
                "beadplex/samples.tsv", "beadplex/beads.tsv", "elisa/samples.tsv", "elisa/wells.tsv",
                "summary/conditions.tsv", "summary/qc.tsv", "summary/dose_response.tsv", "provenance.json"):
        assert (work / "results" / rel).stat().st_size > 0, rel
    assert report.returncode == 0, report.stderr[-3000:]
    html = (work / "results" / "report.html").read_text()
    assert "Standard curves" in html and "curves/IL-2.png" in html and "ELISA plates" in html
    # the failures are listed at the end of the run, in qc.tsv and on the report's first page
    qc = _tsv(work, "summary/qc.tsv")
    failed = set(qc.loc[qc["item"] == "failed", "sample_id"])
    assert failed == {"cyto_std_C6_2", "cyto_D2_oxi50", "plate2"}
    for sid in failed:
        assert f"  - {sid} (" in run.stderr
        assert sid in (work / "results" / "summary" / "overview.rst").read_text()


def test_bead_file_missing_a_population_is_flagged_and_its_other_analytes_measured(cytokine_run):
    work, truth, _, _ = cytokine_run
    sid, bead, analyte = CYTO_DROPPED
    beads = _tsv(work, f"beadplex/{sid}/beads.tsv").set_index("bead_id")
    assert beads.at[bead, "flag"] == "missing" and beads.at[bead, "n_beads"] == 0
    assert beads.drop(bead)["flag"].isna().all()
    log = (work / "logs" / "beadplex" / f"{sid}.log").read_text()
    assert f"bead {bead} ({analyte}) not found" in log and f"{sid}.fcs" in log
    conc = _tsv(work, "cytokines/concentrations.tsv")
    mine = conc[conc["sample_id"] == sid].set_index("analyte")
    assert mine.at[analyte, "flag"] == "no_reading" and "bead_population_missing" in mine.at[analyte, "qc_flags"]
    inside = mine.drop(analyte)
    inside = inside[inside["flag"].isna()]
    assert len(inside) >= 10
    err = [abs(r.concentration / truth[sid][a] - 1) for a, r in inside.iterrows()]
    assert np.mean(np.array(err) <= 0.15) >= 0.9
    table = _tsv(work, "beadplex/samples.tsv").set_index("sample_id")
    assert table.at[sid, "status"] == "ok" and pd.isna(table.at[sid, f"{analyte}_pg_mL"])
    assert f"{analyte}_pg_mL:bead_population_missing" in table.at[sid, "qc_flags"]
    qc = _tsv(work, "summary/qc.tsv")
    assert ((qc["sample_id"] == sid) & (qc["item"] == f"{analyte}_pg_mL:bead_population_missing")).any()


def test_standard_series_with_a_failed_level_is_flagged_and_samples_still_quantified(cytokine_run):
    work, truth, _, _ = cytokine_run
    std = _tsv(work, "cytokines/standards.tsv")
    bp = std[std["assay"] == "beadplex"]
    # the spoiled level is excluded with a note (for nearly every analyte: a 0.4x dilution of a level
    # near an asymptote can stay within the curve's noise), the failed standard well is named
    assert (bp["excluded_levels"] == CYTO_FAILED_LEVEL).mean() >= 0.75
    assert bp["excluded_levels"].fillna(CYTO_FAILED_LEVEL).eq(CYTO_FAILED_LEVEL).all()
    assert bp["notes"].str.contains(f"standard level {CYTO_FAILED_LEVEL} excluded").mean() >= 0.75
    assert bp["notes"].str.contains("standard well cyto_std_C6_2 failed and is left out").all()
    levels = _tsv(work, "cytokines/standard_levels.tsv")
    c4 = levels[(levels["assay"] == "beadplex") & (levels["level"] == CYTO_FAILED_LEVEL)]
    assert (~c4["used"].astype(bool)).mean() >= 0.75
    table = _tsv(work, "beadplex/samples.tsv").set_index("sample_id")
    ok = table[table["status"] == "ok"]
    assert ok["qc_flags"].str.contains("standard_level_excluded").all()
    assert ok["qc_flags"].str.contains("standard_wells_failed").all()
    # the other samples finish, on curves without the spoiled level: within 15 % of truth
    conc = _tsv(work, "cytokines/concentrations.tsv")
    conc = conc[(conc["assay"] == "beadplex") & conc["flag"].isna()]
    err = (conc["concentration"] / [truth[s][a] for s, a in zip(conc["sample_id"], conc["analyte"], strict=True)] - 1)
    assert len(conc) >= 70 and (err.abs() <= 0.15).mean() >= 0.95


def test_failed_bead_wells_are_listed_and_replicates_averaged(cytokine_run):
    work, _, _, _ = cytokine_run
    status = _status(work, "cyto_D2_oxi50")
    assert status["status"] == "failed" and "truncated" in status["reason"] and "cyto_D2_oxi50.fcs" in status["reason"]
    table = _tsv(work, "beadplex/samples.tsv").set_index("sample_id")
    assert table.at["cyto_D2_oxi50", "status"] == "failed" and status["reason"] in table.at["cyto_D2_oxi50", "failure"]
    assert pd.isna(table.at["cyto_D2_oxi50", "IFN-γ_pg_mL"])
    assert table.at["cyto_D2_untreated", "n_wells"] == 2 and "cyto_D2_untreated_r2" not in table.index
    assert (table.drop("cyto_D2_oxi50")["status"] == "ok").all() and len(table) == 8


def test_layout_that_does_not_match_its_export_fails_that_plate_only(cytokine_run):
    work, truth, _, _ = cytokine_run
    status = _status(work, "plate2")
    reason = status["reason"]
    assert status["status"] == "failed" and "\n" not in reason
    assert "plate2_layout.csv" in reason and "plate2_export.csv" in reason and "384-well" in reason
    log = (work / "logs" / "elisa" / "plate2.log").read_text().strip().splitlines()
    assert log == [f"plate2: failed: {reason}"]
    el = _tsv(work, "elisa/samples.tsv").set_index("sample_id")
    p2 = el[el["batch"] == "plate2"]
    assert len(p2) == 8 and (p2["status"] == "failed").all() and (p2["failure"] == reason).all()
    assert (p2["qc_flags"] == "plate_failed").all()
    p1 = el[el["batch"] == "plate1"]
    assert len(p1) == 8 and (p1["status"] == "ok").all()
    got = p1["IL-6_pg_mL"].dropna()
    assert len(got) >= 6
    err = [abs(v / truth[s.removesuffix("_plate1")]["IL-6"] - 1) for s, v in got.items()]
    assert max(err) <= 0.2
    assert (work / "results" / "elisa" / "plate2" / "plate.png").stat().st_size > 1000  # the reason, drawn


def test_report_shows_the_standard_curves(cytokine_run):
    """In a real browser, the report's Cytokines category lists one curve per analyte of the batch
    and each ELISA plate, and a curve renders."""
    from tests.test_workflow import _chromium

    if _chromium() is None:
        pytest.skip("Debian's chromium is not installed")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    work = cytokine_run[0]
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        page = browser.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        menu = page.locator("nav").first
        listed = {}
        for group in ("Standard curves", "ELISA plates", "Bead populations"):
            page.goto((work / "results" / "report.html").as_uri())
            menu.get_by_text("Cytokines", exact=True).first.click()
            page.wait_for_timeout(300)
            menu.get_by_text(group, exact=True).first.click()
            page.wait_for_timeout(300)
            rows = page.locator("tr").filter(has=page.locator("a[iconname=eye][href='#']"))
            listed[group] = rows.count()
            if group == "Standard curves":
                assert "IL-2" in menu.inner_text() and "IFN-γ" in menu.inner_text()
                rows.first.locator("a[iconname=eye]").first.click()
                page.wait_for_timeout(500)
                assert max(page.locator("img").evaluate_all("els => els.map(e => e.naturalWidth)")) > 300
        browser.close()
    assert listed == {"Standard curves": 13, "ELISA plates": 2, "Bead populations": 25}
    assert errors == []
