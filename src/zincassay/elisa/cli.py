"""ELISA workflow step (``zincassay run elisa-plate``), called by ``workflow/rules/cytokines.smk``.
Every output path is given by the rule; nothing here names a file.

One job per plate: the sheet's rows sharing an export and a layout (one batch) are its samples,
found in the layout by ``layout_label`` (blank = the sample_id). The step runs inside
:func:`zincassay.status.run_sample_step`: a plate that cannot be analysed (unreadable export, a
layout that does not match it, no standards) gives every one of its samples a failure row with the
one-line reason, and the run goes on. A sample the layout does not name gets a failure row of its
own; the rest of the plate is quantified.
"""

from __future__ import annotations

import argparse
import json
import sys


def _cmd_plate(args: argparse.Namespace) -> int:
    from zincassay.elisa.settings import ElisaSettings
    from zincassay.samplesheet import load_samples
    from zincassay.status import run_sample_step

    settings = ElisaSettings.from_config(json.loads(args.settings))
    samples = load_samples(args.sheet, assay="elisa", batch=args.plate)
    label_of = {s.sample_id: s.assay_columns["layout_label"] or s.sample_id for s in samples}

    def step() -> None:
        from zincassay.curves.standards import parse_dilution
        from zincassay.curves.tables import sample_table
        from zincassay.elisa.figures import plate_figure
        from zincassay.elisa.kit import load_kit
        from zincassay.elisa.pipeline import analyse_plate
        from zincassay.elisa.tables import plate_tables, well_rows
        from zincassay.figures import save_figure
        from zincassay.tables import write_table

        kit = load_kit(settings.kit)
        sheet_dilution = {label_of[s.sample_id]: parse_dilution(s.assay_columns["dilution"], s.sample_id)
                          for s in samples if s.assay_columns["dilution"]}
        plate = analyse_plate(args.export, args.layout, kit=kit, settings=settings, dilutions=sheet_dilution)
        conc, std, lev = plate_tables(args.plate, plate)
        sid_of = {lab: sid for sid, lab in label_of.items()}
        in_layout = set(conc["sample_id"])
        notes = list(plate.notes)
        unlisted = sorted(in_layout - set(sid_of))
        if unlisted:
            notes.append(f"layout samples not in the sample sheet (in wells.tsv only): {', '.join(unlisted)}")
        failures = {s.sample_id: f"{args.layout}: no well is labelled {label_of[s.sample_id]!r}; label the sample's "
                    f"wells so in the layout, or set its layout_label" for s in samples
                    if label_of[s.sample_id] not in in_layout}
        conc = conc[conc["sample_id"].isin(sid_of)].copy()
        conc["sample_id"] = conc["sample_id"].map(sid_of)
        conc = conc.sort_values("sample_id", kind="stable").reset_index(drop=True)
        used = plate.result.samples.set_index("sample_id")["dilution"]
        flags: dict[str, list[str]] = {}
        for label, d in sheet_dilution.items():
            if label in used.index and used[label] != d:
                flags.setdefault(sid_of[label], []).append("dilution_from_layout")
                notes.append(f"{sid_of[label]}: the layout's dilution grid gives {used[label]:g}, the sheet {d:g}; "
                             "the layout's is used")
        if std["excluded_levels"].fillna("").astype(str).str.len().gt(0).any():
            for s in samples:
                flags.setdefault(s.sample_id, []).append("standard_level_excluded")
        std["notes"] = [" | ".join(filter(None, [n, *notes])) for n in std["notes"].fillna("")]
        wells = well_rows(args.plate, plate)
        wells.insert(3, "sample_id", [sid_of.get(lab, "") if role == "sample" else ""
                                      for lab, role in zip(wells["label"], wells["role"], strict=True)])
        save_figure(plate_figure(plate, f"{args.plate}: {kit.analyte} ({kit.name})"), args.figure)
        write_table(wells, args.wells)
        write_table(std, args.standards)
        write_table(lev, args.standard_levels)
        write_table(conc, args.concentrations)
        write_table(sample_table(conc, samples, failures=failures, flags=flags), args.samples)
        for line in notes:
            print(f"plate {args.plate}: {line}", file=sys.stderr)

    labels = {"sample_id": args.plate, "condition": "", "donor": "", "batch": args.plate}
    outputs = {"samples": args.samples, "concentrations": args.concentrations, "standards": args.standards,
               "standard_levels": args.standard_levels, "wells": args.wells, "figure": args.figure}
    return run_sample_step(step, labels=labels, assay="elisa", role="plate", raw=args.export, outputs=outputs,
                           primary="samples", failed_columns={"qc_flags": "plate_failed"}, extra={},
                           status_path=args.status, checksum=args.checksum,
                           covers=[(s.labels, s.extra) for s in samples])


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the ELISA workflow step on ``zincassay run``."""
    p = sub.add_parser("elisa-plate", help="standard curve and concentrations of one ELISA plate")
    p.add_argument("export", help="the plate reader's export (CSV or .xlsx)")
    p.add_argument("--layout", required=True, help="the plate layout (CSV or .xlsx grid)")
    p.add_argument("--sheet", required=True, help="the validated sample sheet")
    p.add_argument("--plate", required=True, help="the plate (the batch of its rows in the sheet)")
    p.add_argument("--checksum", help="the export's checksum file (zincassay.checksums)")
    p.add_argument("--settings", required=True, help="the resolved elisa config section as JSON")
    for name in ("samples", "concentrations", "standards", "standard-levels", "wells", "figure", "status"):
        p.add_argument(f"--{name}", required=True)
    p.set_defaults(func=_cmd_plate)


__all__ = ["add_commands"]
