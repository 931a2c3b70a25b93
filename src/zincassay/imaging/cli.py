"""Imaging subcommands called by the Snakemake rules: imaging-sample, imaging-collect."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np


def _cmd_sample(args: argparse.Namespace) -> int:
    import tifffile

    from zincassay.figures import save_figure
    from zincassay.imaging.figures import (
        baseline_peak_figure,
        raw_traces_figure,
        segmentation_figure,
        zinc_traces_figure,
    )
    from zincassay.imaging.pipeline import analyse_stack, cell_table, frame_table, summary_row, trace_table
    from zincassay.tables import write_table

    cfg = json.loads(args.settings)
    meta = json.loads(args.meta)
    extra = json.loads(args.extra) if args.extra else []
    r = analyse_stack(args.stack, cfg, meta)
    sid = meta["sample_id"]
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "labels.part.tif"
    tifffile.imwrite(tmp, r.segmentation.labels.astype(np.uint16 if r.segmentation.n < 65535 else np.uint32),
                     photometric="minisblack", metadata=None)
    os.replace(tmp, out / "labels.tif")
    save_figure(segmentation_figure(r, sid), out / "segmentation.png")
    save_figure(raw_traces_figure(r, sid), out / "raw_traces.png")
    save_figure(zinc_traces_figure(r, sid), out / "zinc_traces.png")
    save_figure(baseline_peak_figure(r, sid), out / "baseline_peak.png")
    write_table(trace_table(r, sid), out / "traces.tsv.gz")
    write_table(frame_table(r, sid), out / "frames.tsv")
    write_table(cell_table(r, meta, extra), out / "cells.tsv")
    write_table(summary_row(r, meta, extra), out / "summary.tsv")  # last: its presence means complete
    return 0


def _cmd_collect(args: argparse.Namespace) -> int:
    from zincassay.tables import collect_tables

    for filename in ("cells.tsv", "summary.tsv", "frames.tsv", "traces.tsv.gz"):
        collect_tables(args.sample_dirs, filename, Path(args.outdir) / filename, ("sample_id", "cell_id", "frame"))
    return 0


def add_imaging_commands(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("imaging-sample", help="register, segment, trace and calibrate one zinc-imaging stack")
    s.add_argument("stack")
    s.add_argument("--settings", required=True, help="the imaging config section as JSON")
    s.add_argument("--meta", required=True, help="sample-sheet fields as JSON")
    s.add_argument("--extra", help="names of the sheet's extra columns (JSON list)")
    s.add_argument("--outdir", required=True)
    s.set_defaults(func=_cmd_sample)

    k = sub.add_parser("imaging-collect", help="combine per-sample imaging tables")
    k.add_argument("--outdir", required=True)
    k.add_argument("sample_dirs", nargs="*")
    k.set_defaults(func=_cmd_collect)


__all__ = ["add_imaging_commands"]
