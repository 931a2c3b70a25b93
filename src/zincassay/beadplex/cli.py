"""Bead-array workflow steps (``zincassay run beadplex-well|beadplex-batch``), called by
``workflow/rules/cytokines.smk``. Every output path is given by the rule; nothing here names a file.

``beadplex-well`` measures one FCS file (a well) inside :func:`zincassay.status.run_sample_step`, so
a well that cannot be read gets a failure record and the batch goes on. ``beadplex-batch`` then fits
the standard curves of a batch from the wells that finished and quantifies its samples: a failed
sample well is listed (its sample is quantified from its other wells, or gets a failure row), a
failed standard well is left out of the curves with a note and a flag on every sample of the batch.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zincassay.beadplex.panel import Panel
    from zincassay.samplesheet import Sample


def _check_standard(sample: Sample, panel: Panel) -> None:
    """A standard well's level must be one of the kit's (else the well fails with this line)."""
    from zincassay.errors import ZincassayError

    level = sample.assay_columns.get("standard_level", "")
    if sample.role == "standard" and panel.standards.relative(level) is None:
        names = [*panel.standards.levels, *([panel.standards.blank] if panel.standards.blank else [])]
        raise ZincassayError(f"{sample.sample_id}: standard_level {level!r} is not a level of {panel.source} "
                             f"({', '.join(names)}); fix it in the sample sheet")


def _cmd_well(args: argparse.Namespace) -> int:
    from zincassay.beadplex.settings import BeadplexSettings
    from zincassay.samplesheet import load_sample
    from zincassay.status import run_sample_step

    settings = BeadplexSettings.from_config(json.loads(args.settings))
    sample = load_sample(args.sheet, args.sample_id)

    def step() -> None:
        from zincassay.beadplex.figures import well_figure
        from zincassay.beadplex.panel import load_panel
        from zincassay.beadplex.pipeline import measure_well
        from zincassay.beadplex.tables import well_table
        from zincassay.figures import save_figure
        from zincassay.tables import write_table

        panel = load_panel(settings.panel)
        _check_standard(sample, panel)
        well = measure_well(args.fcs, panel=panel, settings=settings)
        for note in well.notes:
            print(f"{sample.sample_id}: {note}", file=sys.stderr)
        save_figure(well_figure(well, panel, f"{sample.sample_id} ({sample.role})"), args.figure)
        write_table(well_table(well, sample), args.beads)

    return run_sample_step(step, labels=sample.labels, assay="beadplex", role=sample.role, raw=args.fcs,
                           outputs={"beads": args.beads, "figure": args.figure}, primary="beads",
                           failed_columns={}, extra={}, status_path=args.status, checksum=args.checksum)


def figure_name(analyte: str) -> str:
    """File name (without .png) of an analyte's curve figure: its name with anything but letters,
    digits, '.', '-' and '_' replaced by '_'."""
    return re.sub(r"[^\w.-]+", "_", analyte)


def _cmd_batch(args: argparse.Namespace) -> int:
    from pathlib import Path

    import pandas as pd

    from zincassay.beadplex.figures import curve_figures
    from zincassay.beadplex.panel import load_panel
    from zincassay.beadplex.pipeline import BEAD_COLUMNS, quantify_run
    from zincassay.beadplex.settings import BeadplexSettings
    from zincassay.beadplex.tables import run_tables
    from zincassay.curves.tables import sample_table
    from zincassay.figures import save_figure
    from zincassay.samplesheet import load_samples
    from zincassay.tables import read_json, read_table, write_table

    settings = BeadplexSettings.from_config(json.loads(args.settings))
    panel = load_panel(settings.panel)
    samples = load_samples(args.sheet, assay="beadplex", batch=args.batch)
    status = {s["sample_id"]: s for s in (read_json(p) for p in args.statuses)}
    ok = [sid for sid, s in status.items() if s["status"] == "ok"]
    failed = {sid: s["reason"] for sid, s in status.items() if s["status"] != "ok"}
    beads = [t for t in (read_table(p) for p in args.beads) if not t.empty]
    beads = pd.concat(beads, ignore_index=True) if beads else pd.DataFrame(columns=["sample_id", *BEAD_COLUMNS])
    beads = beads[beads["sample_id"].isin(ok)][["sample_id", *BEAD_COLUMNS]].copy()
    beads["flag"] = beads["flag"].fillna("")  # blank in the TSV: no flag
    # every well of the batch enters (a failed one without readings, so its replicates still find it
    # and a batch whose standards all failed gets 'no_curve' rather than stopping), except a standard
    # whose level is not the kit's (its own step failed with that message)
    wells = pd.DataFrame([{"sample_id": s.sample_id, "role": s.role, **s.assay_columns} for s in samples
                          if s.role != "standard" or panel.standards.relative(s.assay_columns["standard_level"])
                          is not None])
    notes = [f"standard well {sid} failed and is left out: {failed[sid]}" for sid in sorted(failed)
             if next(s for s in samples if s.sample_id == sid).role != "sample"]
    run = quantify_run(wells, beads, panel=panel, settings=settings.curve)
    conc, std, lev = run_tables(run, batch=args.batch)
    std["notes"] = [" | ".join(filter(None, [n, *notes, *run.notes])) for n in std["notes"].fillna("")]
    # per sample: failure rows for samples whose every well failed; flags for a failed replicate well
    # and for curves that lost a standard well or excluded a failed level
    curve_flags = []
    if notes:
        curve_flags.append("standard_wells_failed")
    if std["excluded_levels"].fillna("").astype(str).str.len().gt(0).any():
        curve_flags.append("standard_level_excluded")
    firsts = [s for s in samples if s.role == "sample" and not s.assay_columns["replicate_of"]]
    failures, flags = {}, {}
    for s in firsts:
        mine = [w.sample_id for w in samples if w.sample_id == s.sample_id or w.assay_columns["replicate_of"] == s.sample_id]
        lost = [w for w in mine if w in failed]
        if len(lost) == len(mine):
            failures[s.sample_id] = failed[s.sample_id] if len(mine) == 1 else \
                f"every well failed ({'; '.join(f'{w}: {failed[w]}' for w in mine)})"
        flags[s.sample_id] = [*(["replicate_well_failed"] if 0 < len(lost) < len(mine) else []), *curve_flags]
    write_table(std, args.standards)
    write_table(lev, args.standard_levels)
    write_table(conc, args.concentrations)
    write_table(sample_table(conc, firsts, failures=failures, flags=flags), args.samples)
    out = Path(args.curves)
    out.mkdir(parents=True, exist_ok=True)
    for analyte, fig in curve_figures(run, batch=args.batch).items():
        save_figure(fig, out / f"{figure_name(analyte)}.png")
    for line in notes + run.notes:
        print(f"batch {args.batch}: {line}", file=sys.stderr)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the bead-array workflow steps on ``zincassay run``."""
    w = sub.add_parser("beadplex-well", help="bead populations and reporter medians of one bead-array FCS file")
    w.add_argument("fcs")
    w.add_argument("--sheet", required=True, help="the validated sample sheet")
    w.add_argument("--checksum", help="the raw file's checksum file (zincassay.checksums)")
    w.add_argument("--sample-id", required=True)
    w.add_argument("--settings", required=True, help="the resolved beadplex config section as JSON")
    for name, what in (("beads", "reporter median per bead (TSV)"), ("figure", "bead populations (PNG)"),
                       ("status", "how the step ended (JSON)")):
        w.add_argument(f"--{name}", required=True, help=what)
    w.set_defaults(func=_cmd_well)

    b = sub.add_parser("beadplex-batch", help="standard curves and concentrations of one bead-array batch")
    b.add_argument("--sheet", required=True, help="the validated sample sheet")
    b.add_argument("--batch", required=True)
    b.add_argument("--settings", required=True, help="the resolved beadplex config section as JSON")
    b.add_argument("--beads", nargs="+", required=True, help="beads.tsv of every well of the batch")
    b.add_argument("--statuses", nargs="+", required=True, help="status.json of every well of the batch")
    for name in ("concentrations", "standards", "standard-levels", "samples"):
        b.add_argument(f"--{name}", required=True)
    b.add_argument("--curves", required=True, help="folder for one standard-curve figure per analyte")
    b.set_defaults(func=_cmd_batch)


__all__ = ["add_commands", "figure_name"]
