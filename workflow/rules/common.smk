import json
import os
import re
import shlex
import sys

from snakemake.exceptions import WorkflowError

from zincassay.checksums import refresh_checksums
from zincassay.errors import ValidationError
from zincassay.samplesheet import load_inputs
from zincassay.server import enable_server
from zincassay.zincflow.controls import parse_kinetic

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
ZINCFLOW = SHEET[SHEET["assay"] == "zincflow"]
ZINCFLOW_SAMPLES = sorted(ZINCFLOW.index[ZINCFLOW["role"] == "sample"])
# the culture's fmin, fmax and unstained tubes: each read and gated by its own job
ZINCFLOW_TUBES = sorted(ZINCFLOW.index[ZINCFLOW["role"] != "sample"])
ZINCFLOW_KINETIC = [
    s for s in ZINCFLOW_SAMPLES if parse_kinetic(SHEET.loc[s, "kinetic"])
]
ZINCFLOW_STATIC = [s for s in ZINCFLOW_SAMPLES if s not in ZINCFLOW_KINETIC]
# bead arrays: one job per well (FCS file), then one per batch; a sample is its first well
BEADPLEX = SHEET[SHEET["assay"] == "beadplex"]
BEADPLEX_WELLS = sorted(BEADPLEX.index)
BEADPLEX_BATCHES = sorted(set(BEADPLEX["batch"]))
BEADPLEX_SAMPLES = sorted(
    BEADPLEX.index[
        (BEADPLEX["role"] == "sample") & (BEADPLEX.get("replicate_of", "") == "")
    ]
)
# ELISA: the rows sharing an export and a layout are one plate (their batch), one job
ELISA = SHEET[SHEET["assay"] == "elisa"]
ELISA_SAMPLES = sorted(ELISA.index)
ELISA_PLATES = sorted(set(ELISA["batch"]))
# content fingerprints of the raw files: a file replaced by one with other bytes reruns, whatever its
# modification time (zincassay.checksums); refreshed once, by the process that plans the run
CHECKSUM_DIR = "results/inputs"
if workflow.is_main_process:
    refresh_checksums(SHEET["path"].to_dict(), CHECKSUM_DIR)
    if len(ELISA):
        refresh_checksums(
            ELISA.groupby("batch")["layout_path"].first().to_dict(),
            f"{CHECKSUM_DIR}/layouts",
        )
# the zincassay CLI of the Python running Snakemake (no reliance on PATH)
ZINCASSAY = f'"{sys.executable}" -m zincassay run'
# a local run's jobs share one warm process that runs their steps, so the batch does not pay
# Python's imports once per job (zincassay.server; the first job starts it). ZINCASSAY_SERVER=off:
# every job in its own process, as on a cluster.
if workflow.is_main_process and workflow.local_exec:
    enable_server()


wildcard_constraints:
    sample=r"[A-Za-z0-9_-]+",


def one_of(ids):
    """A wildcard constraint matching exactly these sample ids."""
    return "|".join(re.escape(i) for i in ids) or "(?!)"


def raw_file(wildcards):
    return SHEET.loc[wildcards.sample, "path"]


def checksum_file(wildcards):
    return f"{CHECKSUM_DIR}/{wildcards.sample}.sha256"


def status_files(samples, assay):
    """Every per-sample job's status.json (controls included)."""
    return [f"results/{assay}/{s}/status.json" for s in samples]


#: The status.json of every per-file job of the run (summaries, provenance, the end-of-run list):
#: controls, bead-array wells and ELISA plates included.
ALL_STATUS_FILES = [
    *status_files(CFSE_SAMPLES + CFSE_CONTROLS, "cfse"),
    *status_files(IMAGING_SAMPLES, "imaging"),
    *status_files(ZINCFLOW_SAMPLES + ZINCFLOW_TUBES, "zincflow"),
    *status_files(BEADPLEX_WELLS, "beadplex"),
    *status_files(ELISA_PLATES, "elisa"),
]


def cfse_controls(wildcards):
    """The control summaries a CFSE sample needs, by role (unstimulated, unstained)."""
    row = SHEET.loc[wildcards.sample]
    controls = {"unstimulated": f"results/cfse/{row['unstimulated']}/control.json"}
    if row["unstained"]:
        controls["unstained"] = f"results/cfse/{row['unstained']}/control.json"
    return controls


def beadplex_batch_inputs(wildcards):
    """beads.tsv and status.json of every well of a bead-array batch."""
    wells = sorted(BEADPLEX.index[BEADPLEX["batch"] == wildcards.batch])
    return {
        "beads": [f"results/beadplex/{w}/beads.tsv" for w in wells],
        "statuses": status_files(wells, "beadplex"),
    }


def batch_rows(frame, wildcard):
    """The sheet rows of a batch or plate: a params value, so editing them reruns its job."""
    return lambda wc: frame[frame["batch"] == getattr(wc, wildcard)].to_dict("records")


def elisa_plate_inputs(wildcards):
    """A plate's export and layout, with their checksum files."""
    rows = ELISA[ELISA["batch"] == wildcards.plate].sort_index()
    return {
        "export": rows["path"].iloc[0],
        "layout": rows["layout_path"].iloc[0],
        "checksum": f"{CHECKSUM_DIR}/{rows.index[0]}.sha256",
        "layout_checksum": f"{CHECKSUM_DIR}/layouts/{wildcards.plate}.sha256",
    }


def cytokine_run_tables(name):
    """A per-run table (concentrations, standards, standard_levels) of every bead-array batch and plate."""
    return [
        *expand(
            f"results/beadplex/batches/{{batch}}/{name}.tsv", batch=BEADPLEX_BATCHES
        ),
        *expand(f"results/elisa/{{plate}}/{name}.tsv", plate=ELISA_PLATES),
    ]


def imported_gates(section):
    """The gates file of a flow assay (<section>.gates_from) as a named input (gates_file), so
    editing it reruns that assay's samples; no input with the automatic gates."""
    spec = config[section]["gates_from"]
    return {"gates_file": spec["file"]} if spec else {}


#: cfse.export_fcs: every sample's gated events also as FCS 3.1 with their generation.
CFSE_EXPORT_FCS = (
    {"events_fcs": "results/cfse/{sample}/gated_events.fcs"}
    if config["cfse"]["export_fcs"]
    else {}
)


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


#: Each assay's collected per-sample table: its readouts are compared across conditions.
ASSAY_TABLES = {
    "cfse": ("results/cfse/indices.tsv", CFSE_SAMPLES),
    "imaging": ("results/imaging/summary.tsv", IMAGING_SAMPLES),
    "zincflow": ("results/zincflow/readouts.tsv", ZINCFLOW_SAMPLES),
    "beadplex": ("results/beadplex/samples.tsv", BEADPLEX_SAMPLES),
    "elisa": ("results/elisa/samples.tsv", ELISA_SAMPLES),
}


def assay_table_flags():
    """``--table ASSAY=PATH`` for every assay in the sheet."""
    return " ".join(
        f"--table {assay}={shlex.quote(path)}"
        for assay, (path, samples) in ASSAY_TABLES.items()
        if samples
    )


def summary_inputs(wildcards):
    """The per-sample tables of the assays present, the QC extras and every status record."""
    out = {
        "tables": [path for path, samples in ASSAY_TABLES.values() if samples],
        "cfse_histograms": expand(
            "results/cfse/{sample}/histogram.tsv", sample=CFSE_SAMPLES
        ),
        "statuses": ALL_STATUS_FILES,
    }
    if CFSE_SAMPLES:
        out["cfse_gates"] = ["results/cfse/gates.tsv"]
    if IMAGING_SAMPLES:
        out["imaging_cells"] = ["results/imaging/cells.tsv"]
    return out


def table_flags(wildcards, input):
    """``--table ASSAY=PATH`` for the conditions step, plus the QC extras as ``--name path``."""
    extras = {
        k: input[k][0] for k in ("cfse_gates", "imaging_cells") if k in input.keys()
    }
    return f"{assay_table_flags()} {flags(extras)}"


def summary_figures():
    """The across-condition figures of the assays present (report entries)."""
    figures = {}
    if CFSE_SAMPLES:
        figures["cfse_figure"] = report(
            "results/summary/cfse_conditions.png",
            caption="../report/conditions_cfse.rst",
            category="Conditions",
            labels={"figure": "CFSE indices per donor"},
        )
        figures["overlay_figure"] = report(
            "results/summary/cfse_overlay.png",
            caption="../report/conditions_cfse_overlay.rst",
            category="Conditions",
            labels={"figure": "CFSE histograms per donor"},
        )
    if IMAGING_SAMPLES:
        figures["imaging_figure"] = report(
            "results/summary/imaging_conditions.png",
            caption="../report/conditions_imaging.rst",
            category="Conditions",
            labels={"figure": "free zinc per donor"},
        )
        figures["zinc_figure"] = report(
            "results/summary/zinc_distributions.png",
            caption="../report/conditions_zinc_distributions.rst",
            category="Conditions",
            labels={"figure": "[Zn2+] per cell"},
        )
    if ZINCFLOW_SAMPLES:
        figures["zincflow_figure"] = report(
            "results/summary/zincflow_conditions.png",
            caption="../report/conditions_zincflow.rst",
            category="Conditions",
            labels={"figure": "free zinc by flow per donor"},
        )
    for assay, what in (("beadplex", "bead array"), ("elisa", "ELISA")):
        if ASSAY_TABLES[assay][1]:
            figures[f"{assay}_figure"] = report(
                f"results/summary/{assay}_conditions.png",
                caption="../report/conditions_cytokines.rst",
                category="Conditions",
                labels={"figure": f"cytokines ({what}) per donor"},
            )
    return figures


def dose_response_figures():
    """One dose-response figure per assay in the sheet (report entries)."""
    return {
        f"figure_{assay}": report(
            f"results/summary/dose_response_{assay}.png",
            caption="../report/dose_response_figure.rst",
            category="Dose response",
            labels={"figure": assay},
        )
        for assay, (path, samples) in ASSAY_TABLES.items()
        if samples
    }


def print_failures():
    """At the end of a run: the files that could not be analysed, one line each (they are in
    results/summary/qc.tsv and the report too; the run itself succeeds)."""
    records = []
    for path in ALL_STATUS_FILES:
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                records.append(json.load(fh))
    failed = [r for r in records if r.get("status") == "failed"]
    if failed:
        print(
            f"zincassay: {len(failed)} of {len(records)} files could not be analysed "
            "(also in results/summary/qc.tsv and the report):",
            file=sys.stderr,
        )
        for r in failed:
            print(f"  - {r['sample_id']} ({r['file']}): {r['reason']}", file=sys.stderr)


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
    if ZINCFLOW_SAMPLES:
        out += expand("results/zincflow/{name}.tsv", name=["zinc", "gates", "readouts"])
    if ZINCFLOW_KINETIC:
        out += expand("results/zincflow/{name}.tsv", name=["kinetics", "kinetic_bins"])
    if BEADPLEX_WELLS:
        out += ["results/beadplex/beads.tsv", "results/beadplex/samples.tsv"]
    if ELISA_SAMPLES:
        out += ["results/elisa/wells.tsv", "results/elisa/samples.tsv"]
    if BEADPLEX_WELLS or ELISA_SAMPLES:
        out += expand(
            "results/cytokines/{name}.tsv",
            name=["concentrations", "standards", "standard_levels"],
        )
    out += ["results/summary/conditions.tsv", "results/summary/qc.tsv"]
    if config["conditions"]["dose_column"]:
        out += [
            "results/summary/dose_response.tsv",
            "results/summary/dose_response_sources.tsv",
        ]
    return out


def zincflow_tubes(wildcards):
    """The culture's control tubes of a zinc-by-flow sample: their FCS files, the status of each
    tube's own step and their checksums (so a tube replaced by other bytes reruns the sample).
    """
    row = SHEET.loc[wildcards.sample]
    tubes = {}
    for role in ("fmin", "fmax", "unstained"):
        tube = row[role]
        if tube:
            tubes[role] = SHEET.loc[tube, "path"]
            tubes[f"{role}_status"] = f"results/zincflow/{tube}/status.json"
            tubes[f"{role}_checksum"] = f"{CHECKSUM_DIR}/{tube}.sha256"
    return tubes


def zincflow_outputs(kinetic):
    """A zinc-by-flow sample's outputs; a kinetic tube's add its trace."""
    out = {
        "status": "results/zincflow/{sample}/status.json",
        "zinc": "results/zincflow/{sample}/zinc.tsv",
        "gates": "results/zincflow/{sample}/gates.tsv",
        "histograms_figure": report(
            "results/zincflow/{sample}/histograms.png",
            caption="../report/zincflow_histograms.rst",
            category="Zinc (flow)",
            subcategory="Calibration per subset",
            labels={"sample": "{sample}", "figure": "probe histograms"},
        ),
        "gating_figure": report(
            "results/zincflow/{sample}/gating.png",
            caption="../report/zincflow_gating.rst",
            category="QC",
            subcategory="Zinc (flow) gating",
            labels={"sample": "{sample}", "figure": "gating"},
        ),
    }
    if kinetic:
        out["kinetics"] = "results/zincflow/{sample}/kinetics.tsv"
        out["kinetic_bins"] = "results/zincflow/{sample}/kinetic_bins.tsv"
        out["kinetics_figure"] = report(
            "results/zincflow/{sample}/kinetics.png",
            caption="../report/zincflow_kinetics.rst",
            category="Zinc (flow)",
            subcategory="Kinetics",
            labels={"sample": "{sample}", "figure": "kinetics"},
        )
    return out
