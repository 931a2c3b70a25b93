import json
import os
import shlex
import sys

from snakemake.exceptions import WorkflowError

from zincassay.errors import ValidationError
from zincassay.samplesheet import load_inputs

# Validate config and sample sheet before any job runs: every problem at once, no traceback.
try:
    INPUTS = load_inputs(config, base_dir=".")
except ValidationError as exc:
    raise WorkflowError(str(exc)) from None

config = INPUTS.config
SHEET = INPUTS.sheet
SHEET_FILE = config["samples"]
CFSE = SHEET[SHEET["assay"] == "cfse"]
CFSE_SAMPLES = sorted(CFSE.index[CFSE["role"] == "sample"])
CFSE_CONTROLS = sorted(CFSE.index[CFSE["role"] != "sample"])
IMAGING_SAMPLES = sorted(SHEET.index[SHEET["assay"] == "imaging"])
# the zincassay CLI of the Python running Snakemake (no reliance on PATH)
ZINCASSAY = f'"{sys.executable}" -m zincassay run'


wildcard_constraints:
    sample=r"[A-Za-z0-9_-]+",


def raw_file(wildcards):
    return SHEET.loc[wildcards.sample, "path"]


def cfse_controls(wildcards):
    """The control summaries a CFSE sample needs, by role."""
    row = SHEET.loc[wildcards.sample]
    controls = {"unstimulated": f"results/cfse/{row['unstimulated']}/control.json"}
    if row["unstained"]:
        controls["unstained"] = f"results/cfse/{row['unstained']}/control.json"
    return controls


def settings(section):
    """An assay's resolved config section as JSON: a params value, so changing it reruns that assay."""
    return json.dumps(config[section], sort_keys=True)


def sheet_row(wildcards):
    """The sample's sheet row: a params value, so editing the row reruns the sample (and only it)."""
    return SHEET.loc[wildcards.sample].to_dict()


def flags(paths):
    """``--name path`` for every named input or output (names with _ become -)."""
    return " ".join(
        f"--{name.replace('_', '-')} {shlex.quote(str(path))}"
        for name, path in paths.items()
    )


def outs(output):
    """``--out path`` for every output, in order (the collect step splits its inputs among them)."""
    return " ".join(f"--out {shlex.quote(str(path))}" for path in output)


def input_mb(input):
    """Size (MB, at least 1) of the inputs that exist."""
    return max(sum(os.path.getsize(f) for f in input if os.path.exists(f)) >> 20, 1)


def final_outputs():
    out = []
    if CFSE_SAMPLES:
        out += expand(
            "results/cfse/{name}.tsv", name=["indices", "generations", "gates"]
        )
    if IMAGING_SAMPLES:
        out += expand(
            "results/imaging/{name}",
            name=["cells.tsv", "summary.tsv", "frames.tsv", "traces.tsv.gz"],
        )
    out += ["results/summary/conditions.tsv", "results/summary/qc.tsv"]
    return out
