"""A cytokine experiment across a zinc dose series, as bead-array FCS files and an ELISA plate, with truth.

For phase-2 wiring into ``zincassay simulate`` and the example data. Each donor's stimulated T cells
are cultured untreated and at each dose of each zinc source; every analyte's concentration follows
a 4-parameter log-logistic in the dose (:mod:`zincassay.simulate.dose_response` for the biology):
IFN-γ, TNF-α, IL-2, IL-5, IL-13, IL-17A/F, IL-9 and IL-22 are suppressed (aspartate: lower IC50,
deeper suppression than oxide), IL-4, IL-6, IL-10 and IL-21 are not. One bead-array batch holds the
kit's standards and blanks in duplicate and every sample; one ELISA plate (IL-6) holds the same samples.

Sheet rows (one per file for bead arrays, one per sample for ELISA, all pointing at the plate's
export and layout) carry ``zn_uM`` and ``zn_source`` (blank for untreated).
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


def simulate_cytokine_dataset(outdir: str | Path, *, seed: int = 1, n_donors: int = 3,
                              doses_uM: tuple[float, ...] = (0.0, 1.5625, 3.125, 6.25, 12.5, 25.0, 50.0),
                              panel: str = "legendplex_human_th_cytokine_13plex", sheet_dir: str | Path | None = None
                              ) -> tuple[pd.DataFrame, dict]:
    """Write ``beadplex/*.fcs``, ``elisa/plate1_{layout,export}.csv`` and ``truth/`` under ``outdir``.

    Returns
    -------
    sheet : DataFrame of sample-sheet rows (file paths relative to ``sheet_dir``, default ``outdir``):
        ``sample_id, assay, file, condition, role, donor, batch, standard_level, dilution,
        replicate_of, layout, zn_uM, zn_source``.
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
        {k: v for k, v in s.items() if k not in ("zn_uM", "zn_source", "donor")} for s in samples], BeadplexParams(),
        prefix="cyto")
    meta = {s["sample_id"]: s for s in samples}
    rows = []
    for w in wells:
        m = meta.get(w["sample_id"], {})
        rows.append({"sample_id": w["sample_id"], "assay": "beadplex", "file": w["file"], "condition": "",
                     "role": w["role"], "donor": m.get("donor", ""), "batch": "B1",
                     "standard_level": w["standard_level"], "dilution": w["dilution"], "replicate_of": w["replicate_of"],
                     "layout": "", "zn_uM": m.get("zn_uM", ""), "zn_source": m.get("zn_source", "")})
    ekit = load_kit("sandwich_elisa_7pt_2fold")
    el_samples = [{"sample_id": s["sample_id"], "concentration": s["concentration"][ekit.analyte]} for s in samples]
    export, layout, _ = write_elisa_plate(outdir / "elisa", rng, ekit, el_samples, ElisaParams(), plate_id="plate1")
    for s in samples:
        rows.append({"sample_id": f"{s['sample_id']}_elisa", "assay": "elisa", "file": export, "condition": "",
                     "role": "sample", "donor": s["donor"], "batch": "plate1", "standard_level": "", "dilution": "",
                     "replicate_of": "", "layout": layout, "zn_uM": s["zn_uM"], "zn_source": s["zn_source"],
                     "layout_label": s["sample_id"]})
    sheet = pd.DataFrame(rows).fillna("")
    for col in ("file", "layout"):
        sheet[col] = [os.path.relpath(Path(f).resolve(), sheet_dir.resolve()) if f else "" for f in sheet[col]]
    truth = {"samples": pd.DataFrame(truth_rows), "dose_response": pd.DataFrame(dr_rows)}
    (outdir / "truth").mkdir(parents=True, exist_ok=True)
    write_table(truth["samples"].sort_values("sample_id"), outdir / "truth" / "cytokine_concentrations.tsv")
    write_table(truth["dose_response"].sort_values(["analyte", "source", "donor"]), outdir / "truth" / "cytokine_dose_response.tsv")
    return sheet.sort_values(["assay", "sample_id"], kind="stable").reset_index(drop=True), truth
