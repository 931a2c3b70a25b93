"""A cytokine experiment across a zinc dose series, as bead-array FCS files and an ELISA plate, with truth.

For phase-2 wiring into ``zincassay simulate`` and the example data. Each donor's stimulated T cells
are cultured untreated and at each dose of each zinc source; every analyte's concentration follows
a 4-parameter log-logistic in the dose (:mod:`zincassay.simulate.dose_response` for the biology):
IFN-γ, TNF-α, IL-2, IL-5, IL-13, IL-17A/F, IL-9 and IL-22 are suppressed (aspartate: lower IC50,
deeper suppression than oxide), IL-4, IL-6, IL-10 and IL-21 are not. One bead-array batch holds the
kit's standards and blanks in duplicate and every sample; one ELISA plate (IL-6) holds the same samples.

Sheet rows (one per file for bead arrays, one per sample for ELISA, all pointing at the plate's
export and layout) carry the dose (``dose_column``, default ``zn_uM``) and the source (``source_column``,
default ``zn_source``, blank for untreated; or the condition itself, ``source_column="condition"``,
with untreated cultures in ``untreated_condition``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from zincassay.beadplex.panel import load_panel
from zincassay.curves.model import Logistic
from zincassay.elisa.kit import load_kit
from zincassay.simulate.beadplex import BeadplexParams, simulate_beadplex_run
from zincassay.simulate.elisa import ElisaParams, write_elisa_plate
from zincassay.tables import write_table

__all__ = ["SOURCES", "UNTREATED_PG_ML", "simulate_cytokine_dataset"]

#: per source: IC50 (uM), maximal suppression, Hill steepness
SOURCES = {"zinc_aspartate": {"ec50_uM": 6.0, "max_suppression": 0.85, "hill": 1.4},
           "zinc_oxide": {"ec50_uM": 10.0, "max_suppression": 0.5, "hill": 1.2}}
#: untreated concentration (pg/mL) and sensitivity to zinc (0 = unaffected) of each analyte
UNTREATED_PG_ML = {"IFN-γ": (2500, 1.0), "TNF-α": (900, 0.9), "IL-2": (1500, 0.8), "IL-5": (150, 0.8),
                   "IL-13": (300, 0.7), "IL-17A": (400, 0.8), "IL-17F": (250, 0.6), "IL-9": (120, 0.6),
                   "IL-22": (200, 0.5), "IL-4": (60, 0.0), "IL-6": (500, 0.0), "IL-10": (350, 0.0), "IL-21": (80, 0.0)}


def simulate_cytokine_dataset(outdir: str | Path, *, seed: int | list[int] = 1, n_donors: int = 3,
                              doses_uM: tuple[float, ...] = (0.0, 1.5625, 3.125, 6.25, 12.5, 25.0, 50.0),
                              panel: str = "legendplex_human_th_cytokine_13plex", sheet_dir: str | Path | None = None,
                              beads: BeadplexParams | None = None, dose_column: str = "zn_uM",
                              source_column: str = "zn_source", untreated_condition: str = "replete",
                              treated_condition: str = "supplemented", batch: str = "B1", plate: str = "plate1",
                              elisa_dilution: float = 4.0) -> tuple[pd.DataFrame, dict]:
    """Write ``beadplex/*.fcs``, ``elisa/<plate>_{layout,export}.csv`` and ``truth/`` under ``outdir``.

    Parameters
    ----------
    seed : seed of the generator (an int or a list of ints, as numpy takes it).
    n_donors : donors D1 .. Dn, each with one untreated culture and one per dose and source.
    doses_uM : the dose series (0 = untreated).
    beads : parameters of the simulated bead wells (default :class:`BeadplexParams`).
    dose_column, source_column : sheet columns of the dose and the zinc source; with
        ``source_column="condition"`` the source is the culture's condition (untreated cultures:
        ``untreated_condition``), else treated cultures get ``treated_condition``.
    batch, plate : the bead-array batch and the ELISA plate (its batch).
    elisa_dilution : dilution of every sample on the ELISA plate (in the layout's dilution grid; the
        kit's top standard, 600 pg/mL IL-6, is about the untreated level).

    Returns
    -------
    sheet : DataFrame of sample-sheet rows (file paths relative to ``sheet_dir``, default ``outdir``):
        ``sample_id, assay, file, condition, role, donor, batch, standard_level, dilution,
        replicate_of, layout, layout_label``, the dose and (unless it is the condition) source columns.
    truth : dict with ``samples`` (DataFrame: sample_id, donor, zn_uM, zn_source and one column per
        analyte, undiluted pg/mL) and ``dose_response`` (DataFrame: donor, source, analyte, ec50,
        hill_slope, response_untreated, response_saturating).
    """
    outdir = Path(outdir)
    sheet_dir = Path(sheet_dir) if sheet_dir else outdir
    rng = np.random.default_rng(seed)
    kit = load_panel(panel)
    samples, truth_rows, dr_rows = [], [], []
    for k in range(1, n_donors + 1):
        donor = f"D{k}"
        level = {a: u * 10 ** rng.normal(0, 0.15) for a, (u, _) in UNTREATED_PG_ML.items()}
        curves = {}
        for source, sv in SOURCES.items():
            shift = 10 ** rng.normal(0, 0.08)
            for a, (_, sens) in UNTREATED_PG_ML.items():
                curves[(source, a)] = Logistic("4pl", a=level[a], d=level[a] * (1 - sv["max_suppression"] * sens),
                                               c=sv["ec50_uM"] * shift, b=sv["hill"])
                dr_rows.append({"donor": donor, "source": source, "analyte": a, "ec50": sv["ec50_uM"] * shift if sens else np.nan,
                                "hill_slope": -sv["hill"] if sens else 0.0, "response_untreated": level[a],
                                "response_saturating": level[a] * (1 - sv["max_suppression"] * sens)})
        for source in ["", *SOURCES]:
            for dose in doses_uM:
                if (source == "") != (dose == 0):
                    continue
                sid = f"cyto_{donor}_" + ("untreated" if not source else f"{source.split('_')[1][:3]}{dose:g}uM")
                conc = {a: (level[a] if not source else float(curves[(source, a)].response(np.array([dose]))[0]))
                        * np.exp(rng.normal(0, 0.05)) for a in UNTREATED_PG_ML}
                samples.append({"sample_id": sid.replace(".", "p"), "donor": donor, "zn_uM": dose,
                                "zn_source": source, "concentration": conc, "dilution": 1.0})
                truth_rows.append({"sample_id": sid.replace(".", "p"), "donor": donor, "zn_uM": dose, "zn_source": source, **conc})
    wells, _ = simulate_beadplex_run(outdir / "beadplex", rng, kit, [
        {k: v for k, v in s.items() if k not in ("zn_uM", "zn_source", "donor")} for s in samples],
        beads or BeadplexParams(), prefix="cyto")
    meta = {s["sample_id"]: s for s in samples}

    def culture(m: dict) -> dict:
        """condition, dose and source cells of a culture (blank for standards and blanks)."""
        if not m:
            return {"condition": "", dose_column: "", **({} if source_column == "condition" else {source_column: ""})}
        if source_column == "condition":
            return {"condition": m["zn_source"] or untreated_condition, dose_column: m["zn_uM"]}
        return {"condition": treated_condition if m["zn_uM"] > 0 else untreated_condition, dose_column: m["zn_uM"],
                source_column: m["zn_source"]}

    rows = []
    for w in wells:
        m = meta.get(w["sample_id"], {})
        rows.append({"sample_id": w["sample_id"], "assay": "beadplex", "file": w["file"], "role": w["role"],
                     "donor": m.get("donor", ""), "batch": batch, "standard_level": w["standard_level"],
                     "dilution": w["dilution"], "replicate_of": w["replicate_of"], "layout": "", "layout_label": "",
                     **culture(m)})
    ekit = load_kit("sandwich_elisa_7pt_2fold")
    el_samples = [{"sample_id": s["sample_id"], "concentration": s["concentration"][ekit.analyte],
                   "dilution": elisa_dilution} for s in samples]
    export, layout, _ = write_elisa_plate(outdir / "elisa", rng, ekit, el_samples, ElisaParams(), plate_id=plate)
    for s in samples:
        rows.append({"sample_id": f"{s['sample_id']}_elisa", "assay": "elisa", "file": export, "role": "sample",
                     "donor": s["donor"], "batch": plate, "standard_level": "", "dilution": "", "replicate_of": "",
                     "layout": layout, "layout_label": s["sample_id"], **culture(s)})
    sheet = pd.DataFrame(rows).fillna("")
    for col in ("file", "layout"):
        sheet[col] = [os.path.relpath(Path(f).resolve(), sheet_dir.resolve()) if f else "" for f in sheet[col]]
    truth = {"samples": pd.DataFrame(truth_rows), "dose_response": pd.DataFrame(dr_rows)}
    (outdir / "truth").mkdir(parents=True, exist_ok=True)
    write_table(truth["samples"].sort_values("sample_id"), outdir / "truth" / "cytokine_concentrations.tsv")
    write_table(truth["dose_response"].sort_values(["analyte", "source", "donor"]), outdir / "truth" / "cytokine_dose_response.tsv")
    return sheet.sort_values(["assay", "sample_id"], kind="stable").reset_index(drop=True), truth
