"""Workflow steps across samples (``zincassay run collect|conditions|provenance``), called by the
rules in ``workflow/rules/``. Every output path is given by the rule; nothing here names a file."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from zincassay.tables import read_table

#: Sort keys of collected tables, in order (the ones a table has are used).
COLLECT_SORT = ("sample_id", "cell_id", "generation", "step", "frame")


def _read(path: str | None) -> pd.DataFrame | None:
    if not path or not Path(path).exists():
        return None
    return read_table(path)


def _cmd_conditions(args: argparse.Namespace) -> int:
    from zincassay.conditions.figures import (
        cfse_overlay_figure,
        readout_figure,
        zinc_distribution_figure,
    )
    from zincassay.conditions.qc import qc_table
    from zincassay.conditions.settings import ConditionsSettings
    from zincassay.conditions.stats import CFSE_READOUTS, IMAGING_READOUTS, compare_conditions
    from zincassay.figures import save_figure
    from zincassay.tables import write_table

    settings = ConditionsSettings.from_config(json.loads(args.settings))
    order, reference = list(settings.order), settings.reference
    indices, gates = _read(args.cfse_indices), _read(args.cfse_gates)
    summary, cells = _read(args.imaging_summary), _read(args.imaging_cells)
    stats = compare_conditions(indices, summary, order, reference)
    seen = set()
    for t in (indices, summary):
        if t is not None:
            seen |= set(t["condition"].dropna())
    conditions = [c for c in order if c in seen] + sorted(seen - set(order))
    empty = pd.DataFrame(columns=["donor", "condition", "sample_id"])
    save_figure(readout_figure(indices if indices is not None else empty, list(CFSE_READOUTS), conditions,
                        stats, "CFSE indices per donor"), args.cfse_figure)
    save_figure(readout_figure(summary if summary is not None else empty, list(IMAGING_READOUTS), conditions,
                        stats, "Free zinc per donor (medians of QC-passing cells)"), args.imaging_figure)
    save_figure(zinc_distribution_figure(cells if cells is not None else pd.DataFrame(
        columns=["qc_pass", "condition", "baseline_zn_nM", "peak_zn_nM"]), conditions), args.zinc_figure)
    hists = [pd.read_csv(p, sep="\t") for p in args.cfse_histograms if Path(p).exists()]
    hist = pd.concat(hists, ignore_index=True) if hists else pd.DataFrame(columns=["sample_id"])
    save_figure(cfse_overlay_figure(hist, indices if indices is not None else empty, conditions), args.overlay_figure)
    write_table(qc_table(indices, gates, cells, summary), args.qc)
    write_table(stats, args.conditions)  # last: its presence means complete
    return 0


def _cmd_provenance(args: argparse.Namespace) -> int:
    from zincassay.provenance import build_provenance
    from zincassay.tables import write_json, write_text

    logs = [p for p in Path(args.logs).rglob("*.log")] if Path(args.logs).is_dir() else []
    start = min((datetime.fromtimestamp(p.stat().st_mtime, UTC) for p in logs), default=datetime.now(UTC))
    cfg = json.loads(args.config)
    prov = build_provenance(cfg, args.sheet, args.inputs, start, args.workflow_dir)
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
    c.add_argument("--cfse-indices")
    c.add_argument("--cfse-gates")
    c.add_argument("--imaging-summary")
    c.add_argument("--imaging-cells")
    for name in ("conditions", "qc", "cfse-figure", "imaging-figure", "zinc-figure", "overlay-figure"):
        c.add_argument(f"--{name}", required=True)
    c.add_argument("cfse_histograms", nargs="*", help="per-sample results/cfse/<id>/histogram.tsv")
    c.set_defaults(func=_cmd_conditions)

    p = sub.add_parser("provenance", help="write results/provenance.json")
    p.add_argument("--config", required=True, help="the resolved config as JSON")
    p.add_argument("--sheet", required=True)
    p.add_argument("--logs", default="logs")
    p.add_argument("--workflow-dir", default=".")
    p.add_argument("--out", required=True)
    p.add_argument("--config-copy", help="also write the resolved config here (YAML)")
    p.add_argument("--sheet-copy", help="also copy the sample sheet here")
    p.add_argument("inputs", nargs="*", help="raw input files to fingerprint")
    p.set_defaults(func=_cmd_provenance)


__all__ = ["add_commands"]
