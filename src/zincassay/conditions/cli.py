"""Across-condition subcommands called by the Snakemake rules: conditions, provenance."""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from zincassay.tables import read_table


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
    from zincassay.conditions.stats import CFSE_READOUTS, IMAGING_READOUTS, compare_conditions
    from zincassay.figures import save_figure
    from zincassay.tables import write_table

    cfg = json.loads(args.settings)
    order, reference = list(cfg.get("order", [])), cfg.get("reference", "replete")
    indices, gates = _read(args.cfse_indices), _read(args.cfse_gates)
    summary, cells = _read(args.imaging_summary), _read(args.imaging_cells)
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    stats = compare_conditions(indices, summary, order, reference)
    seen = set()
    for t in (indices, summary):
        if t is not None:
            seen |= set(t["condition"].dropna())
    conditions = [c for c in order if c in seen] + sorted(seen - set(order))
    empty = pd.DataFrame(columns=["donor", "condition", "sample_id"])
    save_figure(readout_figure(indices if indices is not None else empty, list(CFSE_READOUTS), conditions,
                        stats, "CFSE indices per donor"), out / "cfse_conditions.png")
    save_figure(readout_figure(summary if summary is not None else empty, list(IMAGING_READOUTS), conditions,
                        stats, "Free zinc per donor (medians of QC-passing cells)"), out / "imaging_conditions.png")
    save_figure(zinc_distribution_figure(cells if cells is not None else pd.DataFrame(
        columns=["qc_pass", "condition", "baseline_zn_nM", "peak_zn_nM"]), conditions), out / "zinc_distributions.png")
    hists = [pd.read_csv(p, sep="\t") for p in args.cfse_histograms if Path(p).exists()]
    hist = pd.concat(hists, ignore_index=True) if hists else pd.DataFrame(columns=["sample_id"])
    save_figure(cfse_overlay_figure(hist, indices if indices is not None else empty, conditions), out / "cfse_overlay.png")
    write_table(qc_table(indices, gates, cells, summary), out / "qc.tsv")
    write_table(stats, out / "conditions.tsv")  # last: its presence means complete
    return 0


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _cmd_provenance(args: argparse.Namespace) -> int:
    from zincassay.provenance import build_provenance

    logs = [p for p in Path(args.logs).rglob("*.log")] if Path(args.logs).is_dir() else []
    start = min((datetime.fromtimestamp(p.stat().st_mtime, UTC) for p in logs), default=datetime.now(UTC))
    cfg = json.loads(args.config)
    prov = build_provenance(cfg, args.sheet, args.inputs, start, args.workflow_dir)
    if args.config_copy:
        import yaml

        _atomic_text(Path(args.config_copy), "# resolved config (defaults filled in) of this run\n"
                     + yaml.safe_dump(cfg, sort_keys=True, allow_unicode=True))
    if args.sheet_copy:
        _atomic_text(Path(args.sheet_copy), Path(args.sheet).read_text(encoding="utf-8"))
    out = Path(args.out)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(json.dumps(prov, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    return 0


def add_conditions_commands(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("conditions", help="donor-aware comparison of conditions, QC table and figures")
    c.add_argument("--settings", required=True, help="the conditions config section as JSON")
    c.add_argument("--cfse-indices")
    c.add_argument("--cfse-gates")
    c.add_argument("--imaging-summary")
    c.add_argument("--imaging-cells")
    c.add_argument("--outdir", required=True)
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


__all__ = ["add_conditions_commands"]
