"""One ELISA plate: layout + reader export -> corrected ODs, standard curve, concentrations.

1. The layout and the export are read (:mod:`zincassay.elisa.plate`) and must describe the same
   plate: same size, a reading at the measurement wavelength, and a number in every well the
   layout uses. Otherwise one :class:`ZincassayError` line names both files and the problem.
2. Dual wavelength: the reference reading (plate and optics imperfections; 540-700 nm) is
   subtracted well by well when the export has one.
3. Blank subtraction: the mean of the blank wells is subtracted from every well; it is passed to
   the curve fit as the variance function's offset (the noise belongs to the raw OD).
4. Standards (and blanks as the zero standard) -> curve; sample replicate wells (same label) are
   averaged; concentrations x dilution (:func:`zincassay.curves.run.quantify_analyte`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from zincassay.curves.run import AnalyteResult, quantify_analyte, replicate_means
from zincassay.curves.standards import normalise_label
from zincassay.elisa.kit import ElisaKit
from zincassay.elisa.plate import (
    BLANK_LABELS,
    EMPTY_LABELS,
    PlateLayout,
    PlateReading,
    read_export,
    read_layout,
)
from zincassay.elisa.settings import ElisaSettings
from zincassay.errors import ZincassayError

__all__ = ["WELL_COLUMNS", "ElisaPlate", "analyse_plate", "plate_wells"]

WELL_COLUMNS = ("well", "label", "role", "level", "concentration", "dilution", "od", "od_reference", "od_corrected",
                "signal", "saturated")


class PlateMismatchError(ZincassayError):
    """The layout and the export do not describe the same plate."""


@dataclass
class ElisaPlate:
    """One analysed plate: per-well table (:data:`WELL_COLUMNS`), the blank and wavelengths used,
    the analyte's curve and sample concentrations, notes."""

    wells: pd.DataFrame
    blank_od: float
    wavelength_nm: float | None
    reference_wavelength_nm: float | None
    result: AnalyteResult
    notes: list[str]


def _mismatch(layout: PlateLayout, reading: PlateReading, problem: str) -> PlateMismatchError:
    return PlateMismatchError(f"ELISA layout {layout.path} does not match reader export {reading.path}: {problem}")


def _pick_wavelengths(layout: PlateLayout, reading: PlateReading, wavelength_nm: float,
                      reference_wavelength_nm: float | None, dual_wavelength: bool
                      ) -> tuple[float | None, float | None, list[str]]:
    notes = []
    keys = list(reading.readings)
    named = sorted(k for k in keys if k is not None)
    if wavelength_nm in reading.readings:
        main: float | None = wavelength_nm
    elif keys == [None]:
        main = None
        notes.append(f"{reading.path}: the export does not name its wavelength; read as {wavelength_nm:g} nm")
    else:
        raise _mismatch(layout, reading, f"the export has no {wavelength_nm:g} nm reading (it has "
                        f"{', '.join(f'{k:g} nm' for k in named) or 'unnamed grids'}); set elisa.wavelength_nm")
    ref = None
    if dual_wavelength:
        if reference_wavelength_nm is not None:
            if reference_wavelength_nm not in reading.readings:
                raise _mismatch(layout, reading, f"no {reference_wavelength_nm:g} nm reference reading in the export "
                                "(elisa.reference_wavelength_nm); set it to null to correct only when one is present")
            ref = reference_wavelength_nm
        else:
            cands = [k for k in named if k != main and 540 <= k <= 700]
            if len(cands) == 1:
                ref = cands[0]
            elif len(cands) > 1:
                notes.append(f"{reading.path}: several possible reference wavelengths ({', '.join(f'{c:g}' for c in cands)}); "
                             "none subtracted; set elisa.reference_wavelength_nm")
    return main, ref, notes


def _role(label: str, kit: ElisaKit) -> str:
    key = normalise_label(label)
    if key in EMPTY_LABELS:
        return "empty"
    if key in BLANK_LABELS or (kit.standards.blank and key == normalise_label(kit.standards.blank)):
        return "blank"
    if kit.standards.relative(label) is not None:
        return "standard"
    return "sample"


def plate_wells(layout: PlateLayout, reading: PlateReading, *, kit: ElisaKit, wavelength_nm: float,
                reference_wavelength_nm: float | None, dual_wavelength: bool
                ) -> tuple[pd.DataFrame, float | None, float | None, list[str]]:
    """Join layout and export: one row per used well with its role, OD and reference-corrected OD.

    Returns the table (:data:`WELL_COLUMNS` without ``signal``), the wavelength and reference
    wavelength used, and notes. Raises a one-line :class:`ZincassayError` naming both files when
    they do not describe the same plate.
    """
    if layout.n_cols != reading.n_cols:
        raise _mismatch(layout, reading, f"the layout is a {layout.n_wells}-well plate, the export "
                        f"{reading.n_cols * (8 if reading.n_cols == 12 else 16)}-well")
    main, ref, notes = _pick_wavelengths(layout, reading, wavelength_nm, reference_wavelength_nm, dual_wavelength)
    used = layout.used_wells()
    od = reading.readings[main]
    missing = [w for w in used if np.isnan(od.get(w, np.nan))]
    if missing:
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        raise _mismatch(layout, reading, f"{len(missing)} well(s) labelled in the layout have no reading in the "
                        f"export ({shown}); check that the layout belongs to this plate")
    rows = []
    for w in used:
        label = layout.labels[w].strip()
        role = _role(label, kit)
        v = od[w]
        r = reading.readings[ref].get(w, np.nan) if ref is not None else 0.0
        rows.append({"well": w, "label": label, "role": role,
                     "level": label if role == "standard" else (kit.standards.blank or "BLANK") if role == "blank" else "",
                     "concentration": kit.concentration(label) if role == "standard" else 0.0 if role == "blank" else np.nan,
                     "dilution": layout.dilution.get(w, np.nan), "od": v,
                     "od_reference": r if ref is not None else np.nan,
                     "od_corrected": v - r if np.isfinite(v) else v, "saturated": bool(np.isposinf(v))})
    return pd.DataFrame(rows), main, ref, notes


def analyse_plate(export: str | Path, layout: str | Path, *, kit: ElisaKit, settings: ElisaSettings,
                  dilutions: dict[str, float] | None = None) -> ElisaPlate:
    """Analyse one ELISA plate.

    Parameters
    ----------
    export : the plate reader's export (CSV or .xlsx).
    layout : the plate layout (CSV or .xlsx grid; module :mod:`zincassay.elisa.plate`).
    kit : ElisaKit
    settings : ElisaSettings
    dilutions : sample label -> dilution factor, for samples without one in the layout (e.g. from
        the sample sheet); otherwise 1.

    Returns
    -------
    ElisaPlate
        ``result.samples`` keyed by the layout's sample labels (``sample_id``).

    Raises
    ------
    ZincassayError
        Unreadable files, layout/export mismatch, no standards on the plate, replicate wells of
        one sample with different dilutions.
    """
    lay = read_layout(layout)
    rd = read_export(export)
    wells, main, ref, notes = plate_wells(lay, rd, kit=kit, wavelength_nm=settings.wavelength_nm,
                                          reference_wavelength_nm=settings.reference_wavelength_nm,
                                          dual_wavelength=settings.dual_wavelength)
    if not (wells["role"] == "standard").any():
        raise ZincassayError(f"{lay.path}: no well is labelled with a standard level of {kit.source} "
                             f"({', '.join(kit.standards.levels)})")
    blanks = wells.loc[wells["role"] == "blank", "od_corrected"]
    blanks = blanks[np.isfinite(blanks)]
    blank = float(blanks.mean()) if settings.blank_subtraction and len(blanks) else 0.0
    if settings.blank_subtraction and not len(blanks):
        notes.append(f"{lay.path}: no blank wells; ODs are not blank-subtracted")
    wells["signal"] = wells["od_corrected"] - blank
    std_roles = ["standard", "blank"] if settings.curve.blanks_as_zero_standard else ["standard"]
    st = wells[wells["role"].isin(std_roles)]
    sat_std = st[~np.isfinite(st["signal"])]
    if len(sat_std):
        notes.append(f"{rd.path}: standard well(s) {', '.join(sat_std['well'])} above the reader's range; "
                     "left out of the curve")
    st = st[np.isfinite(st["signal"])]
    standards = st[["concentration", "signal", "level"]]
    sm = wells[wells["role"] == "sample"].copy()
    sm["sample"] = sm["label"]
    means = replicate_means(sm, "sample").rename(columns={"sample": "sample_id"})
    dil = []
    for sid in means["sample_id"]:
        d = sm.loc[sm["sample"] == sid, "dilution"].dropna().unique()
        if len(d) > 1:
            raise ZincassayError(f"{lay.path}: sample {sid} has wells with different dilutions "
                                 f"({', '.join(f'{v:g}' for v in sorted(d))}); label them as different samples")
        dil.append(float(d[0]) if len(d) else float((dilutions or {}).get(sid, 1.0)))
    means["dilution"] = dil
    sat = sm.groupby("sample")["saturated"].any()
    means["qc_flags"] = ["saturated" if sat.get(s, False) else "" for s in means["sample_id"]]
    result = quantify_analyte(kit.analyte, kit.units, standards, means, settings=settings.curve, offset=blank)
    return ElisaPlate(wells[list(WELL_COLUMNS)], blank, main, ref, result, notes)
