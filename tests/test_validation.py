"""Config and sample-sheet contract: every kind of invalid input gives one clear message."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from zincassay.config import resolve_config
from zincassay.errors import ValidationError
from zincassay.samplesheet import load_inputs

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path):
    """A copy of the example config with an absolute-path sample sheet we can break."""
    sheet = pd.read_csv(REPO / "config" / "samples.tsv", sep="\t", dtype=str, keep_default_na=False)
    for col in ("file", "layout"):  # the raw files and the ELISA plate layouts
        sheet[col] = [str((REPO / "config" / f).resolve()) if f else "" for f in sheet[col]]
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["samples"] = str(tmp_path / "samples.tsv")

    def write(sheet_df=sheet, config=cfg):
        sheet_df.to_csv(tmp_path / "samples.tsv", sep="\t", index=False)
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        return config

    return sheet.copy(), cfg, write, tmp_path


def _problems(cfg) -> list[str]:
    with pytest.raises(ValidationError) as err:
        load_inputs(cfg)
    return err.value.problems


def test_example_is_valid(project):
    _sheet, _cfg, write, _ = project
    inputs = load_inputs(write())
    s = inputs.sheet
    assert s.loc["cfse_D1_def", "unstimulated"] == "cfse_D1_unstim"
    assert s.loc["cfse_D2_sup", "unstained"] == "cfse_D2_unstained"
    assert inputs.config["cfse"]["max_generations"] == 10  # default filled in


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda s: s.assign(sample_id=s["sample_id"].where(s.index != 1, s.loc[0, "sample_id"])), "already used on row 2"),
        (lambda s: s.assign(file=s["file"].where(s.index != 0, "/nonexistent/x.fcs")), "not found"),
        (lambda s: s[s["role"] != "unstimulated"].reset_index(drop=True), "has no unstimulated control"),
        (lambda s: s.assign(tpen_s=s["tpen_s"].where(s["assay"] != "imaging", "100")), "out of order"),
        (lambda s: s.assign(condition=s["condition"].replace("deficient", "defficient")), "'defficient' is not in conditions.order"),
        (lambda s: s.assign(role=s["role"].replace("unstained", "unstain")), "role 'unstain'"),
        (lambda s: s.assign(role=s["role"].where(s["assay"] != "imaging", "unstained")), "not valid for assay imaging"),
        (lambda s: s.assign(sample_id=s["sample_id"].where(s.index != 0, "bad id!")), "letters, digits"),
        (lambda s: s.assign(frame_interval_s=s["frame_interval_s"].where(s["assay"] != "imaging", "5s")), "not a number of seconds"),
        (lambda s: s.drop(columns=["donor"]), "lacks column(s) donor"),
        (lambda s: s.assign(assay=s["assay"].replace("imaging", "microscopy")), "'microscopy' is not one of"),
    ],
)
def test_invalid_sheets(project, mutate, expected):
    sheet, _cfg, write, _ = project
    problems = _problems(write(mutate(sheet)))
    assert any(expected in p for p in problems), problems
    assert all(("row " in p) or ("column" in p) for p in problems)


def test_all_problems_reported_at_once(project):
    sheet, _cfg, write, _ = project
    sheet.loc[0, "file"] = "/nonexistent.fcs"
    sheet.loc[1, "condition"] = "typo"
    problems = _problems(write(sheet))
    assert len(problems) >= 2


@pytest.mark.parametrize(
    "patch, expected",
    [
        ({"cfse": {"chanel": "CFSE"}}, "did you mean 'channel'"),
        ({"imaging": {"probe": "FluoZin3"}}, "is not one of"),
        ({"conditions": {"order": ["a", "b"], "reference": "c"}}, "not in conditions.order"),
        ({"cfse": {"max_generations": "ten"}}, "should be of type"),
        ({"extra_key": 1}, "'extra_key' is unknown"),
        ({"cfse": {"compensate": "/no/such.csv"}}, "neither auto, off"),
    ],
)
def test_invalid_configs(patch, expected):
    with pytest.raises(ValidationError) as err:
        resolve_config(patch)
    assert any(expected in p for p in err.value.problems), err.value.problems


def test_cli_validate_exit_code_and_no_traceback(project):
    sheet, _cfg, write, tmp = project
    sheet.loc[0, "condition"] = "typo"
    write(sheet)
    run = subprocess.run([sys.executable, "-m", "zincassay", "validate", "--config", str(tmp / "config.yaml")],
                         capture_output=True, text=True)
    assert run.returncode == 1
    assert "'typo' is not in conditions.order" in run.stderr
    assert "Traceback" not in run.stderr
    write()
    ok = subprocess.run([sys.executable, "-m", "zincassay", "validate", "--config", str(tmp / "config.yaml")],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr


@pytest.mark.skipif(shutil.which("snakemake") is None and not (Path(sys.executable).parent / "snakemake").exists(),
                    reason="snakemake not installed")
def test_snakemake_refuses_bad_sheet_before_any_job(project):
    sheet, _cfg, write, tmp = project
    sheet.loc[0, "condition"] = "typo"
    write(sheet)
    snakemake = str(Path(sys.executable).parent / "snakemake")
    run = subprocess.run([snakemake, "-n", "--cores", "1", "--configfile", str(tmp / "config.yaml")],
                         capture_output=True, text=True, cwd=REPO)
    assert run.returncode != 0
    assert "'typo' is not in conditions.order" in run.stderr + run.stdout
    assert "Traceback" not in run.stderr + run.stdout
