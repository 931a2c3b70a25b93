"""Simulated datasets with ground truth for the CFSE, imaging and zinc-by-flow assays (``zincassay simulate``).

Conditions differ as zinc status is reported to act on T cells (more zinc: more division and
higher free zinc): :data:`CONDITIONS` holds the parameters. Every output is deterministic for
a seed: tables are written sorted with fixed float formatting, gzip without a timestamp.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from zincassay.cfse.indices import INDEX_NAMES, precursor_fractions
from zincassay.simulate.beadplex import BeadplexParams
from zincassay.simulate.cfse import CFSEParams, write_cfse_sample
from zincassay.simulate.cytokines import simulate_cytokine_dataset
from zincassay.simulate.imaging import ImagingParams, write_imaging_sample
from zincassay.simulate.zincflow import T_CELL_CULTURE, KineticParams, zincflow_experiment
from zincassay.tables import write_table

__all__ = ["CONDITIONS", "CYTOKINE_EXAMPLE", "ZINCFLOW_KINETIC", "simulate_dataset", "write_table"]

#: Per condition: CFSE (responder fraction, mean divisions of responders) and imaging
#: (baseline free zinc nM, stimulus-evoked rise nM).
CONDITIONS = {
    "deficient": {"short": "def", "responder_fraction": 0.55, "mean_divisions": 1.8,
                  "baseline_zn_nM": 0.5, "rise_zn_nM": 2.0, "zn_supplement_uM": 0},
    "replete": {"short": "rep", "responder_fraction": 0.75, "mean_divisions": 2.6,
                "baseline_zn_nM": 1.0, "rise_zn_nM": 4.0, "zn_supplement_uM": 0},
    "supplemented": {"short": "sup", "responder_fraction": 0.85, "mean_divisions": 3.3,
                     "baseline_zn_nM": 2.0, "rise_zn_nM": 8.0, "zn_supplement_uM": 50},
}
#: The cytokine part of :func:`simulate_dataset` (arguments of
#: :func:`zincassay.simulate.cytokines.simulate_cytokine_dataset`): small FCS files (150 beads per
#: population) so the example stays small; the dose in the sheet's existing ``zn_supplement_uM``
#: and the source as the condition, so the sheet gains no column the other assays' tables would carry.
CYTOKINE_EXAMPLE = {"beads": BeadplexParams(beads_per_population=150), "dose_column": "zn_supplement_uM",
                    "source_column": "condition", "untreated_condition": "replete"}
#: The example's kinetic zinc-by-flow tube: 50 s before the pause, 150 s after, 100 events/s.
ZINCFLOW_KINETIC = KineticParams(baseline_s=50.0, after_s=150.0, rate_per_s=100.0)


def simulate_dataset(
    outdir: str | Path,
    seed: int = 1,
    n_donors: int = 2,
    n_events: int = 10000,
    cfse_format: str = "fcs3.1-float",
    peak_ratio: float = 2.0,
    imaging: bool = True,
    sheet_path: str | Path | None = None,
    zincflow: bool = True,
    zincflow_events: int = 5500,
    cytokines: bool = True,
) -> Path:
    """Write a complete simulated experiment and return the sample sheet's path.

    Layout: ``cfse/*.fcs``, ``imaging/*.tif``, ``zincflow/*.fcs``, ``beadplex/*.fcs``,
    ``elisa/plate1_{layout,export}.csv``, ``truth/`` (``cfse_generations.tsv``, ``cfse_indices.tsv``,
    ``imaging_cells.tsv``, ``imaging_traces.tsv.gz``, ``imaging_frames.tsv``, ``zincflow_truth.tsv``,
    ``cytokine_concentrations.tsv``, ``cytokine_dose_response.tsv``) and the sample sheet
    (``samples.tsv`` in ``outdir`` unless ``sheet_path`` is given; file paths in it are relative to
    the sheet's folder).
    Per donor (= batch): one CFSE tube per condition plus an unstimulated and an unstained
    control, one imaging stack per condition, and one zinc-by-flow culture per condition (a
    purified T-cell culture; sample, TPEN and zinc + pyrithione tubes of ``zincflow_events``
    events, 24-bit integer FCS) plus one unstained tube per donor; donor D1's replete culture also
    has a kinetic tube (:data:`ZINCFLOW_KINETIC`). Resting zinc follows the imaging baseline of
    :data:`CONDITIONS`. Cytokines (:data:`CYTOKINE_EXAMPLE`): one bead-array batch (the kit's
    standards and blanks in duplicate, then every culture) and one ELISA plate of a zinc dose
    series, per donor an untreated culture (``replete``, dose 0) and six doses of each zinc source
    (the ``condition``: ``zinc_aspartate``, ``zinc_oxide``), dose in ``zn_supplement_uM``. Each
    assay draws from its own random stream, so leaving one out does not change the others' files.
    """
    outdir = Path(outdir)
    for sub in ("cfse", "imaging", "truth"):
        (outdir / sub).mkdir(parents=True, exist_ok=True)
    sheet_path = Path(sheet_path) if sheet_path else outdir / "samples.tsv"
    rng = np.random.default_rng(seed)
    rows, gen_rows, idx_rows, cell_tabs, trace_tabs, frame_tabs = [], [], [], [], [], []
    for d in range(1, n_donors + 1):
        donor, batch = f"D{d}", f"B{d}"
        donor_factor = 1.0 - 0.08 * (d - 1)
        base = CFSEParams(n_events=n_events, peak_ratio=peak_ratio,
                          parent_cfse=10**4.6 * (1 + 0.05 * (d - 1)))
        tubes = [(c, "sample", v) for c, v in CONDITIONS.items()]
        tubes += [("", "unstimulated", None), ("", "unstained", None)]
        for cond, role, v in tubes:
            tag = v["short"] if v else ("unstim" if role == "unstimulated" else "unstained")
            sid = f"cfse_{donor}_{tag}"
            params = base if v is None else replace(
                base, responder_fraction=v["responder_fraction"],
                mean_divisions=v["mean_divisions"] * donor_factor)
            fpath = outdir / "cfse" / f"{sid}_{batch}.fcs"
            truth = write_cfse_sample(fpath, rng, params, role=role, fmt=cfse_format)
            rows.append({"sample_id": sid, "assay": "cfse", "file": fpath, "condition": cond, "role": role,
                         "donor": donor, "batch": batch,
                         "zn_supplement_uM": "" if v is None else v["zn_supplement_uM"]})
            if role == "sample":
                cells = truth["cells"]
                pf = precursor_fractions(cells)
                for g, c in enumerate(cells):
                    gen_rows.append({"sample_id": sid, "generation": g, "cells": int(c),
                                     "fraction": c / cells.sum(), "precursor_fraction": pf[g]})
                idx_rows.append({"sample_id": sid, "condition": cond, "donor": donor, "format": cfse_format,
                                 "peak_ratio": peak_ratio, "live_singlets": int(cells.sum()),
                                 **{k: truth["indices"][k] for k in INDEX_NAMES}, **truth["kinds"]})
        if not imaging:
            continue
        for cond, v in CONDITIONS.items():
            sid = f"zinc_{donor}_{v['short']}"
            p = ImagingParams(baseline_zn_nM=v["baseline_zn_nM"] * donor_factor,
                              rise_zn_nM=v["rise_zn_nM"] * donor_factor)
            fpath = outdir / "imaging" / f"{sid}_{batch}.tif"
            truth = write_imaging_sample(fpath, rng, p)
            rows.append({"sample_id": sid, "assay": "imaging", "file": fpath, "condition": cond,
                         "role": "sample", "donor": donor, "batch": batch,
                         "frame_interval_s": p.frame_interval_s, "stimulus_s": p.stimulus_s,
                         "pyrithione_s": p.pyrithione_s, "tpen_s": p.tpen_s,
                         "zn_supplement_uM": v["zn_supplement_uM"]})
            for _name, tab, store in (("cells", truth["cells"], cell_tabs), ("traces", truth["traces"], trace_tabs),
                                     ("frames", truth["frames"], frame_tabs)):
                tab = tab.copy()
                tab.insert(0, "sample_id", sid)
                store.append(tab)
    cols = ["sample_id", "assay", "file", "condition", "role", "donor", "batch",
            "frame_interval_s", "stimulus_s", "pyrithione_s", "tpen_s", "zn_supplement_uM"]
    truth_dir = outdir / "truth"
    if zincflow:
        zrows, ztruth = zincflow_experiment(
            outdir / "zincflow", np.random.default_rng([seed, 3]),
            conditions={c: v["baseline_zn_nM"] for c, v in CONDITIONS.items()}, n_donors=n_donors,
            n_events=zincflow_events, kinetic={("D1", "replete"): ZINCFLOW_KINETIC}, unstained="donor",
            type_shares=T_CELL_CULTURE, donor_zinc=tuple(1.0 - 0.08 * d for d in range(n_donors)), storage="int24",
            extra={c: {"zn_supplement_uM": v["zn_supplement_uM"]} for c, v in CONDITIONS.items()})
        rows += zrows
        cols.append("kinetic")
        write_table(ztruth, truth_dir / "zincflow_truth.tsv")
    sheet = pd.DataFrame(rows)
    rel = [os.path.relpath(Path(f).resolve(), sheet_path.parent.resolve()) for f in sheet["file"]]
    sheet["file"] = rel
    if cytokines:
        cyto, _ = simulate_cytokine_dataset(outdir, seed=[seed, 18], n_donors=n_donors, sheet_dir=sheet_path.parent,
                                            **CYTOKINE_EXAMPLE)
        sheet = pd.concat([sheet, cyto], ignore_index=True)
        at = cols.index("zn_supplement_uM")
        cols[at:at] = ["standard_level", "dilution", "replicate_of", "layout", "layout_label"]
    sheet = sheet.reindex(columns=cols).astype(object).fillna("")
    write_table(sheet.sort_values("sample_id"), sheet_path)
    write_table(pd.DataFrame(gen_rows).sort_values(["sample_id", "generation"]), truth_dir / "cfse_generations.tsv")
    write_table(pd.DataFrame(idx_rows).sort_values("sample_id"), truth_dir / "cfse_indices.tsv")
    if cell_tabs:
        write_table(pd.concat(cell_tabs).sort_values(["sample_id", "cell_id"]), truth_dir / "imaging_cells.tsv")
        write_table(pd.concat(trace_tabs).sort_values(["sample_id", "cell_id", "frame"]),
                    truth_dir / "imaging_traces.tsv.gz")
        write_table(pd.concat(frame_tabs).sort_values(["sample_id", "frame"]), truth_dir / "imaging_frames.tsv")
    return sheet_path
