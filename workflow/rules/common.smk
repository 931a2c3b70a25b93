import json
import sys

from snakemake.exceptions import WorkflowError

from zincassay.errors import ValidationError
from zincassay.samplesheet import extra_columns, load_inputs

# Validate config and sample sheet before any job runs: every problem at once, no traceback.
try:
    INPUTS = load_inputs(config, base_dir=".")
except ValidationError as exc:
    raise WorkflowError(str(exc)) from None

config = INPUTS.config
SHEET = INPUTS.sheet
EXTRA_COLUMNS = extra_columns(SHEET)
CFSE = SHEET[SHEET["assay"] == "cfse"]
CFSE_SAMPLES = sorted(CFSE.index[CFSE["role"] == "sample"])
CFSE_CONTROLS = sorted(CFSE.index[CFSE["role"] != "sample"])
IMAGING_SAMPLES = sorted(SHEET.index[SHEET["assay"] == "imaging"])
# the zincassay CLI of the Python running Snakemake (no reliance on PATH)
ZINCASSAY = f'"{sys.executable}" -m zincassay'


wildcard_constraints:
    sample=r"[A-Za-z0-9_-]+",


def raw_file(wildcards):
    return SHEET.loc[wildcards.sample, "path"]


def sample_meta(sample):
    row = SHEET.loc[sample]
    keys = ["sample_id", "condition", "donor", "batch", "unstimulated", "unstained"]
    return json.dumps({k: str(row[k]) for k in keys + EXTRA_COLUMNS}, sort_keys=True)


def imaging_meta(sample):
    row = SHEET.loc[sample]
    keys = ["sample_id", "condition", "donor", "batch"]
    keys += ["frame_interval_s", "stimulus_s", "pyrithione_s", "tpen_s"]
    return json.dumps(
        {k: str(row.get(k, "")) for k in keys + EXTRA_COLUMNS}, sort_keys=True
    )


def input_mb(wildcards, input):
    return max(int(input.size_mb), 1)


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
