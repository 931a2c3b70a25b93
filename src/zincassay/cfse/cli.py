"""CFSE subcommands called by the Snakemake rules: cfse-control, cfse-sample, cfse-collect."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pandas as pd


def _write_json(obj: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=float) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _cmd_control(args: argparse.Namespace) -> int:
    from zincassay.cfse.figures import control_figure
    from zincassay.cfse.pipeline import load_gated, summarise_control
    from zincassay.figures import save_figure

    cfg = json.loads(args.settings)
    # controls carry no viability information worth gating differently; same gates as samples
    gated = load_gated(args.fcs, cfg)
    summary = summarise_control(gated, args.role)
    summary["sample_id"] = args.sample_id
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_figure(control_figure(summary, gated.cfse, f"{args.sample_id} ({args.role} control)", cfg["channel"]), args.figure)
    _write_json(summary, out)
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    from zincassay.cfse.figures import fit_figure, gating_figure, generations_figure
    from zincassay.cfse.pipeline import analyse_sample, load_gated
    from zincassay.figures import save_figure
    from zincassay.tables import write_table

    cfg = json.loads(args.settings)
    meta = json.loads(args.meta)
    unstim = json.loads(Path(args.unstimulated).read_text(encoding="utf-8"))
    unstained = json.loads(Path(args.unstained).read_text(encoding="utf-8")) if args.unstained else None
    gated = load_gated(args.fcs, cfg)
    indices, gens, gates, fit = analyse_sample(gated, cfg, unstim, unstained, meta)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    sid = meta.get("sample_id", "")
    save_figure(gating_figure(gated, f"{sid}: gating"), outdir / "gating.png")
    save_figure(fit_figure(fit, sid, cfg["channel"]), outdir / "histogram.png")
    save_figure(generations_figure(fit, f"{sid}: generations"), outdir / "generations.png")
    write_table(pd.DataFrame({"sample_id": sid, "bin_low_log10": fit.edges[:-1], "bin_high_log10": fit.edges[1:],
                              "events": fit.counts, "fitted": fit.components.sum(axis=0)}),
                outdir / "histogram.tsv")
    write_table(gens, outdir / "generations.tsv")
    write_table(gates, outdir / "gates.tsv")
    write_table(indices, outdir / "indices.tsv")  # last: its presence means the sample is complete
    return 0


def _cmd_collect(args: argparse.Namespace) -> int:
    from zincassay.tables import collect_tables

    for name in ("indices", "generations", "gates"):
        collect_tables(args.sample_dirs, f"{name}.tsv", Path(args.outdir) / f"{name}.tsv",
                       ("sample_id", "generation", "step"))
    return 0


def add_cfse_commands(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("cfse-control", help="summarise a CFSE control (parent peak or autofluorescence)")
    c.add_argument("fcs")
    c.add_argument("--role", required=True, choices=["unstimulated", "unstained"])
    c.add_argument("--sample-id", required=True)
    c.add_argument("--settings", required=True, help="the cfse config section as JSON")
    c.add_argument("--out", required=True, help="control summary (JSON)")
    c.add_argument("--figure", required=True, help="QC figure (PNG)")
    c.set_defaults(func=_cmd_control)

    s = sub.add_parser("cfse-sample", help="gate, deconvolve and index one CFSE sample")
    s.add_argument("fcs")
    s.add_argument("--settings", required=True, help="the cfse config section as JSON")
    s.add_argument("--meta", required=True, help="sample-sheet fields as JSON")
    s.add_argument("--unstimulated", required=True, help="control summary of the matched unstimulated control")
    s.add_argument("--unstained", help="control summary of the matched unstained control")
    s.add_argument("--outdir", required=True)
    s.set_defaults(func=_cmd_sample)

    k = sub.add_parser("cfse-collect", help="combine per-sample CFSE tables")
    k.add_argument("--outdir", required=True)
    k.add_argument("sample_dirs", nargs="*")
    k.set_defaults(func=_cmd_collect)


__all__ = ["add_cfse_commands"]
