"""Workflow steps across samples (``zincassay run collect|conditions|provenance``), called by the
rules in ``workflow/rules/``. Every output path is given by the rule; nothing here names a file."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

#: Sort keys of collected tables, in order (the ones a table has are used).
COLLECT_SORT = ("sample_id", "cell_id", "generation", "step", "frame")


def _read(path: str | None) -> pd.DataFrame | None:
    from zincassay.tables import read_table

    if not path or not Path(path).exists():
        return None
    return read_table(path)


def _assay_path(value: str) -> tuple[str, str]:
    """``ASSAY=PATH`` of ``--table``."""
    assay, sep, path = value.partition("=")
    if not sep or not assay or not path:
        from zincassay.errors import ZincassayError

        raise ZincassayError(f"--table {value!r}: give it as ASSAY=PATH (e.g. cfse=results/cfse/indices.tsv)")
    return assay, path


def _cmd_conditions(args: argparse.Namespace) -> int:
    from zincassay import __version__
    from zincassay.conditions.figures import cfse_overlay_figure, readout_figure, zinc_distribution_figure
    from zincassay.conditions.overview import overview_rst
    from zincassay.conditions.pipeline import summarise_conditions
    from zincassay.conditions.settings import ConditionsSettings
    from zincassay.conditions.stats import CFSE_READOUTS, IMAGING_READOUTS, READOUTS, readout_columns
    from zincassay.figures import save_figure
    from zincassay.tables import read_json, write_table, write_text

    settings = ConditionsSettings.from_config(json.loads(args.settings))
    hists = [t for t in (_read(p) for p in args.histograms) if t is not None and not t.empty]
    readouts = dict(_assay_path(v) for v in args.table)
    sheet_columns = _sheet_columns(args.sheet)
    r = summarise_conditions({assay: _read(path) for assay, path in readouts.items()},
                             {"cfse_gates": _read(args.cfse_gates), "imaging_cells": _read(args.imaging_cells),
                              "cfse_histograms": pd.concat(hists, ignore_index=True) if hists else None},
                             [read_json(p) for p in args.statuses], settings, sheet_columns=sheet_columns)
    cfse, imaging = r.usable("cfse"), r.usable("imaging")
    if args.cfse_figure:
        save_figure(readout_figure(cfse, [k for k in CFSE_READOUTS if k in cfse], r.assay_conditions("cfse"), r.stats,
                                   "CFSE indices per donor"), args.cfse_figure)
    if args.overlay_figure:
        hist = r.extra.get("cfse_histograms", pd.DataFrame(columns=["sample_id"]))
        save_figure(cfse_overlay_figure(hist, cfse, r.assay_conditions("cfse")), args.overlay_figure)
    if args.imaging_figure:
        save_figure(readout_figure(imaging, [k for k in IMAGING_READOUTS if k in imaging], r.assay_conditions("imaging"),
                                   r.stats, "Free zinc per donor (medians of QC-passing cells)"), args.imaging_figure)
    if args.zinc_figure:
        cells = r.extra.get("imaging_cells")
        if cells is None or cells.empty:
            cells = pd.DataFrame(columns=["qc_pass", "condition", "baseline_zn_nM", "peak_zn_nM"])
        save_figure(zinc_distribution_figure(cells, r.assay_conditions("imaging")), args.zinc_figure)
    for assay, title in (("zincflow", "Free zinc by flow cytometry per donor (QC-passing subsets)"),
                         ("beadplex", "Cytokines (bead array) per donor, pg/mL"), ("elisa", "Cytokines (ELISA) per donor")):
        path = getattr(args, f"{assay}_figure")
        if path:
            t = r.usable(assay)
            cols = readout_columns(t, READOUTS.get(assay), sheet_columns) if len(t) else []
            save_figure(readout_figure(t, cols, r.assay_conditions(assay), r.stats[r.stats["assay"] == assay], title),
                        path)
    write_table(r.qc, args.qc)
    write_text(overview_rst(r, sheet=args.sheet, version=__version__), args.overview)
    write_table(r.stats, args.conditions)  # last: its presence means complete
    return 0


def _sheet_columns(sheet: str) -> frozenset[str]:
    """The sample sheet's columns (never readouts), or none when no sheet is named."""
    if not sheet:
        return frozenset()
    from zincassay.samplesheet import read_sample_sheet

    return frozenset(read_sample_sheet(sheet).columns)


def _cmd_dose_response(args: argparse.Namespace) -> int:
    """Every readout of every assay against the sheet's dose column, per donor and source."""
    import numpy as np

    from zincassay.conditions.dose_response import (
        CI_LEVEL,
        COMPARISON_COLUMNS,
        FIT_COLUMNS,
        dose_response_table,
    )
    from zincassay.conditions.figures import dose_response_figure
    from zincassay.conditions.settings import ConditionsSettings
    from zincassay.conditions.stats import READOUTS, holm, readout_columns, usable_samples
    from zincassay.errors import ZincassayError
    from zincassay.figures import save_figure
    from zincassay.samplesheet import read_sample_sheet
    from zincassay.tables import write_table

    settings = ConditionsSettings.from_config(json.loads(args.settings))
    dose, source = settings.dose_column, settings.source_column
    if not dose:
        raise ZincassayError("conditions.dose_column is not set; name the sample-sheet column holding the dose")
    sheet = read_sample_sheet(args.sheet)
    meta = sheet.set_index("sample_id")[[dose, *([source] if source and source != dose else [])]]
    figures = dict(_assay_path(v) for v in args.figure)
    fits, comps = [], []
    for assay, path in (_assay_path(v) for v in args.table):
        table = _read(path)
        t = usable_samples(table) if table is not None and not table.empty else pd.DataFrame()
        if len(t):
            cols = readout_columns(t, READOUTS.get(assay), frozenset(sheet.columns))
            t = t.drop(columns=[c for c in meta.columns if c in t]).join(meta, on="sample_id")
            t = t[t[dose] != ""]
        else:
            cols = []
        if len(t) and cols:
            f, c = dose_response_table(t, readouts=cols, dose_column=dose, source_column=source,
                                       weighting=settings.dose_response_weighting, ci_level=CI_LEVEL,
                                       source_reference=settings.source_reference)
            fits.append(f.assign(assay=assay))
            comps.append(c.assign(assay=assay))
        else:
            f = pd.DataFrame(columns=list(FIT_COLUMNS))
        if assay in figures:
            save_figure(dose_response_figure(t if len(t) else pd.DataFrame(columns=["donor", dose, *cols]), f, cols,
                                             dose_column=dose, source_column=source), figures[assay])
    fit = pd.concat(fits, ignore_index=True) if fits else pd.DataFrame(columns=["assay", *FIT_COLUMNS])
    comp = pd.concat(comps, ignore_index=True) if comps else pd.DataFrame(columns=["assay", *COMPARISON_COLUMNS])
    # Holm across the whole table (every assay), as conditions.tsv
    p = np.concatenate([comp["p_ec50"].to_numpy(float), comp["p_max_dose"].to_numpy(float)])
    adj = holm(p) if len(p) else p
    comp["p_holm_ec50"], comp["p_holm_max_dose"] = adj[: len(comp)], adj[len(comp):]
    write_table(comp[["assay", *COMPARISON_COLUMNS]], args.sources)
    write_table(fit[["assay", *FIT_COLUMNS]], args.fits)
    return 0


def _cmd_provenance(args: argparse.Namespace) -> int:
    from zincassay.provenance import build_provenance
    from zincassay.tables import read_json, write_json, write_text

    logs = [p for p in Path(args.logs).rglob("*.log")] if Path(args.logs).is_dir() else []
    start = min((datetime.fromtimestamp(p.stat().st_mtime, UTC) for p in logs), default=datetime.now(UTC))
    cfg = json.loads(args.config)
    prov = build_provenance(cfg, args.sheet, [read_json(p) for p in args.statuses], start)
    if args.config_copy:
        import yaml

        write_text("# resolved config (defaults filled in) of this run\n"
                   + yaml.safe_dump(cfg, sort_keys=True, allow_unicode=True), args.config_copy)
    if args.sheet_copy:
        write_text(Path(args.sheet).read_text(encoding="utf-8"), args.sheet_copy)
    write_json(prov, args.out)
    return 0


def _cmd_collect(args: argparse.Namespace) -> int:
    from zincassay.errors import ZincassayError
    from zincassay.tables import collect_tables

    n_out = len(args.out)
    if len(args.tables) % n_out:
        raise ZincassayError(f"{len(args.tables)} tables cannot be split evenly into {n_out} outputs")
    k = len(args.tables) // n_out
    for i, out in enumerate(args.out):
        collect_tables(args.tables[i * k:(i + 1) * k], out, COLLECT_SORT)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the steps across samples on ``zincassay run``."""
    k = sub.add_parser("collect", help="concatenate per-sample tables into one per --out, sorted")
    k.add_argument("--out", required=True, action="append",
                   help="an output table; the tables are split evenly among the --out given, in order")
    k.add_argument("tables", nargs="*")
    k.set_defaults(func=_cmd_collect)

    c = sub.add_parser("conditions", help="donor-aware comparison of conditions, QC table and figures")
    c.add_argument("--settings", required=True, help="the conditions config section as JSON")
    c.add_argument("--table", action="append", default=[],
                   help="ASSAY=PATH: an assay's collected per-sample table, whose readouts are compared")
    c.add_argument("--cfse-gates", help="results/cfse/gates.tsv (gate losses in the QC table)")
    c.add_argument("--imaging-cells", help="results/imaging/cells.tsv (excluded cells in the QC table)")
    c.add_argument("--sheet", default="", help="the sample sheet (named on the report's first page)")
    for name in ("conditions", "qc", "overview"):
        c.add_argument(f"--{name}", required=True)
    for name in ("cfse-figure", "imaging-figure", "zinc-figure", "overlay-figure", "zincflow-figure", "beadplex-figure",
                 "elisa-figure"):
        c.add_argument(f"--{name}", help="made when given (the assay is in the sheet)")
    c.add_argument("--histograms", nargs="*", default=[], help="per-sample CFSE histogram.tsv")
    c.add_argument("--statuses", nargs="*", default=[], help="every per-sample status.json")
    c.set_defaults(func=_cmd_conditions)

    d = sub.add_parser("dose-response", help="every readout against the sheet's dose column, per donor and source")
    d.add_argument("--settings", required=True, help="the conditions config section as JSON")
    d.add_argument("--sheet", required=True, help="the validated sample sheet (doses and sources)")
    d.add_argument("--table", action="append", default=[],
                   help="ASSAY=PATH: an assay's collected per-sample table, whose readouts are fitted")
    d.add_argument("--figure", action="append", default=[], help="ASSAY=PATH: that assay's dose-response figure")
    d.add_argument("--fits", required=True, help="one row per assay x readout x source x donor (TSV)")
    d.add_argument("--sources", required=True, help="one row per assay x readout x source, compared (TSV)")
    d.set_defaults(func=_cmd_dose_response)

    p = sub.add_parser("provenance", help="write results/provenance.json")
    p.add_argument("--config", required=True, help="the resolved config as JSON")
    p.add_argument("--sheet", required=True)
    p.add_argument("--logs", default="logs")
    p.add_argument("--out", required=True)
    p.add_argument("--config-copy", help="also write the resolved config here (YAML)")
    p.add_argument("--sheet-copy", help="also copy the sample sheet here")
    p.add_argument("statuses", nargs="*", help="every per-sample status.json (with the raw files' SHA-256)")
    p.set_defaults(func=_cmd_provenance)


__all__ = ["add_commands"]
