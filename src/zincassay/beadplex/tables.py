"""Bead-array results -> table rows.

- ``results/beadplex/<sample_id>/beads.tsv`` (per well): :func:`well_table` (:func:`bead_rows`, the
  form :func:`~zincassay.beadplex.pipeline.quantify_run` takes, plus the well's labels and status)
- ``results/cytokines/concentrations.tsv``, ``standards.tsv``, ``standard_levels.tsv`` (per batch):
  :func:`run_tables`, shared columns with ELISA (:mod:`zincassay.curves.tables`)
"""

from __future__ import annotations

import pandas as pd

from zincassay.beadplex.pipeline import BeadplexRun, WellMeasurement
from zincassay.curves.tables import concentration_rows, standard_level_rows, standards_row
from zincassay.samplesheet import Sample

__all__ = ["ASSAY", "bead_rows", "run_tables", "well_table"]

ASSAY = "beadplex"


def bead_rows(sample_id: str, well: WellMeasurement) -> pd.DataFrame:
    """One row per panel bead of a well: ``sample_id`` + :data:`zincassay.beadplex.pipeline.BEAD_COLUMNS`,
    ``compensation``."""
    out = well.beads.copy()
    out.insert(0, "sample_id", sample_id)
    out["compensation"] = well.compensation
    return out


def well_table(well: WellMeasurement, sample: Sample) -> pd.DataFrame:
    """``beads.tsv`` of one well: ``sample_id, condition, donor, batch, status, failure``, then
    :func:`bead_rows`' columns (one row per panel bead)."""
    out = bead_rows(sample.sample_id, well)
    for i, (k, v) in enumerate({**sample.labels, "status": "ok", "failure": ""}.items()):
        if k != "sample_id":
            out.insert(i, k, v)
    return out


def run_tables(run: BeadplexRun, *, batch: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(concentrations, standards, standard_levels) rows of one batch, sorted by sample and analyte."""
    conc = pd.concat([concentration_rows(r, assay=ASSAY, batch=batch) for r in run.analytes], ignore_index=True)
    std = pd.DataFrame([standards_row(r, assay=ASSAY, batch=batch) for r in run.analytes])
    lev = pd.DataFrame([row for r in run.analytes for row in standard_level_rows(r, assay=ASSAY, batch=batch)])
    conc = conc.sort_values(["sample_id", "analyte"], kind="stable").reset_index(drop=True)
    return conc, std.sort_values("analyte", kind="stable").reset_index(drop=True), lev
