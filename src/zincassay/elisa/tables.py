"""ELISA results -> table rows: ``results/elisa/<plate>/wells.tsv`` and the shared cytokine tables
(``concentrations.tsv``, ``standards.tsv``, ``standard_levels.tsv``; :mod:`zincassay.curves.tables`)."""

from __future__ import annotations

import pandas as pd

from zincassay.curves.tables import concentration_rows, standard_level_rows, standards_row
from zincassay.elisa.pipeline import ElisaPlate

__all__ = ["ASSAY", "plate_tables", "well_rows"]

ASSAY = "elisa"


def well_rows(plate_id: str, plate: ElisaPlate) -> pd.DataFrame:
    """Every used well: ``plate`` + :data:`zincassay.elisa.pipeline.WELL_COLUMNS`, the blank and wavelengths."""
    out = plate.wells.copy()
    out.insert(0, "plate", plate_id)
    out["blank_od"] = plate.blank_od
    out["wavelength_nm"] = plate.wavelength_nm
    out["reference_wavelength_nm"] = plate.reference_wavelength_nm
    return out


def plate_tables(plate_id: str, plate: ElisaPlate) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(concentrations, standards, standard_levels) rows of one plate (batch = plate id)."""
    r = plate.result
    conc = concentration_rows(r, assay=ASSAY, batch=plate_id).sort_values("sample_id", kind="stable")
    return (conc.reset_index(drop=True), pd.DataFrame([standards_row(r, assay=ASSAY, batch=plate_id)]),
            pd.DataFrame(standard_level_rows(r, assay=ASSAY, batch=plate_id)))
