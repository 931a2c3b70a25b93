"""Zinc-imaging workflow step (``zincassay run imaging-sample``), called by ``workflow/rules/imaging.smk``.

Every output path is given by the rule; nothing here names a file.
"""

from __future__ import annotations

import argparse
import json

OUTPUTS = ("cells", "summary", "frames", "traces", "labels", "segmentation-figure", "raw-traces-figure",
           "zinc-traces-figure", "baseline-peak-figure")


def _cmd_sample(args: argparse.Namespace) -> int:
    from zincassay.imaging.settings import ImagingSettings
    from zincassay.samplesheet import load_sample
    from zincassay.status import run_sample_step

    settings = ImagingSettings.from_config(json.loads(args.settings))
    sample = load_sample(args.sheet, args.sample_id)

    def step() -> None:
        import numpy as np
        import tifffile

        from zincassay.figures import save_figure
        from zincassay.imaging.figures import (
            baseline_peak_figure,
            raw_traces_figure,
            segmentation_figure,
            zinc_traces_figure,
        )
        from zincassay.imaging.pipeline import analyse_stack
        from zincassay.imaging.tables import cell_table, frame_table, summary_row, trace_table
        from zincassay.tables import atomic_path, write_table

        r = analyse_stack(args.stack, settings, sample)
        sid = sample.sample_id
        labels = r.segmentation.labels.astype(np.uint16 if r.segmentation.n < 65535 else np.uint32)
        with atomic_path(args.labels) as tmp:
            tifffile.imwrite(tmp, labels, photometric="minisblack", metadata=None)
        save_figure(segmentation_figure(r, sid), args.segmentation_figure)
        save_figure(raw_traces_figure(r, sid), args.raw_traces_figure)
        save_figure(zinc_traces_figure(r, sid), args.zinc_traces_figure)
        save_figure(baseline_peak_figure(r, sid), args.baseline_peak_figure)
        write_table(trace_table(r, sid), args.traces)
        write_table(frame_table(r, sid), args.frames)
        write_table(cell_table(r, sample), args.cells)
        write_table(summary_row(r, sample), args.summary)

    return run_sample_step(step, labels=sample.labels, assay="imaging", role=sample.role, raw=args.stack,
                           outputs={k.replace("-", "_"): getattr(args, k.replace("-", "_")) for k in OUTPUTS},
                           primary="summary", failed_columns={"sample_flags": "failed"}, extra=sample.extra,
                           status_path=args.status, checksum=args.checksum)


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the imaging workflow step on ``zincassay run``."""
    s = sub.add_parser("imaging-sample", help="register, segment, trace and calibrate one zinc-imaging stack")
    s.add_argument("stack")
    s.add_argument("--sheet", required=True, help="the validated sample sheet")
    s.add_argument("--checksum", help="the raw file's checksum file (zincassay.checksums)")
    s.add_argument("--sample-id", required=True)
    s.add_argument("--settings", required=True, help="the resolved imaging config section as JSON")
    for name in (*OUTPUTS, "status"):
        s.add_argument(f"--{name}", required=True)
    s.set_defaults(func=_cmd_sample)


__all__ = ["add_commands"]
