"""CFSE workflow steps (``zincassay run cfse-control|cfse-sample``), called by ``workflow/rules/cfse.smk``.

Every output path is given by the rule; nothing here names a file.
"""

from __future__ import annotations

import argparse
import json

SAMPLE_OUTPUTS = ("indices", "generations", "gates", "histogram", "histogram_figure", "generations_figure",
                  "gating_figure", "gates_xml", "by_generation", "by_generation_figure")


def _cmd_control(args: argparse.Namespace) -> int:
    from zincassay.cfse.settings import CFSESettings
    from zincassay.samplesheet import load_sample
    from zincassay.status import run_sample_step

    settings = CFSESettings.from_config(json.loads(args.settings))
    sample = load_sample(args.sheet, args.sample_id)

    def step() -> None:
        from zincassay.cfse.figures import control_figure
        from zincassay.cfse.pipeline import load_gated, marker_channels, summarise_control
        from zincassay.figures import save_figure
        from zincassay.tables import write_json

        gated = load_gated(args.fcs, settings)
        summary = summarise_control(gated, sample.role, sample.sample_id, markers=marker_channels(gated.data, settings))
        save_figure(control_figure(summary, gated.cfse, f"{sample.sample_id} ({sample.role} control)"), args.figure)
        write_json(summary.to_dict(), args.summary)

    return run_sample_step(step, labels=sample.labels, assay="cfse", role=sample.role, raw=args.fcs,
                           outputs={"summary": args.summary, "figure": args.figure}, primary="",
                           failed_columns={}, extra=sample.extra, status_path=args.status, checksum=args.checksum)


def _cmd_sample(args: argparse.Namespace) -> int:
    from zincassay.cfse.settings import CFSESettings
    from zincassay.samplesheet import load_sample
    from zincassay.status import run_sample_step

    settings = CFSESettings.from_config(json.loads(args.settings))
    sample = load_sample(args.sheet, args.sample_id)

    def step() -> None:
        from zincassay.cfse.figures import fit_figure, gating_figure, generations_figure
        from zincassay.cfse.phenotype import by_generation_figure
        from zincassay.cfse.pipeline import ControlSummary, analyse_sample, gate_shapes, load_gated, phenotype
        from zincassay.cfse.posterior import export_generations_fcs, generation_probabilities
        from zincassay.cfse.tables import gates_table, generations_table, histogram_table, indices_table
        from zincassay.figures import save_figure
        from zincassay.flow.gatingml import write_gatingml
        from zincassay.tables import read_json, write_table

        unstim = ControlSummary.from_dict(read_json(args.unstimulated), "unstimulated")
        unstained = ControlSummary.from_dict(read_json(args.unstained), "unstained") if args.unstained else None
        r = analyse_sample(load_gated(args.fcs, settings), settings, unstim, unstained)
        sid = sample.sample_id
        save_figure(gating_figure(r.gated, f"{sid}: gating"), args.gating_figure)
        save_figure(fit_figure(r.fit, sid), args.histogram_figure)
        save_figure(generations_figure(r.fit, f"{sid}: generations"), args.generations_figure)
        write_table(histogram_table(r, sid), args.histogram)
        write_table(generations_table(r, sid), args.generations)
        write_table(gates_table(r, sid), args.gates)
        shapes, matrices = gate_shapes(r, settings)
        write_gatingml(args.gates_xml, shapes, matrices=matrices)
        by_gen = phenotype(r, settings, unstained, sid)
        write_table(by_gen, args.by_generation)
        save_figure(by_generation_figure(by_gen, title=f"{sid}: markers by generation"), args.by_generation_figure)
        if args.events_fcs:  # written atomically; the events as read, with the matrix used
            export_generations_fcs(args.events_fcs, r.gated.raw, r.gated.gating.mask,
                                   generation_probabilities(r.gated.cfse, r.fit), spill=r.gated.spill)
        write_table(indices_table(r, sample), args.indices)

    return run_sample_step(step, labels=sample.labels, assay="cfse", role=sample.role, raw=args.fcs,
                           outputs={k: getattr(args, k) for k in (*SAMPLE_OUTPUTS, "events_fcs") if getattr(args, k)},
                           primary="indices",
                           failed_columns={"qc_pass": False, "qc_flags": "failed"}, extra=sample.extra,
                           status_path=args.status, checksum=args.checksum)


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the CFSE workflow steps on ``zincassay run``."""
    c = sub.add_parser("cfse-control", help="summarise a CFSE control (parent peak or autofluorescence)")
    c.add_argument("fcs")
    c.add_argument("--sheet", required=True, help="the validated sample sheet")
    c.add_argument("--checksum", help="the raw file's checksum file (zincassay.checksums)")
    c.add_argument("--sample-id", required=True)
    c.add_argument("--settings", required=True, help="the resolved cfse config section as JSON")
    c.add_argument("--summary", required=True, help="control summary (JSON)")
    c.add_argument("--figure", required=True, help="QC figure (PNG)")
    c.add_argument("--status", required=True, help="how the step ended (JSON)")
    c.set_defaults(func=_cmd_control)

    s = sub.add_parser("cfse-sample", help="gate, deconvolve and index one CFSE sample")
    s.add_argument("fcs")
    s.add_argument("--sheet", required=True, help="the validated sample sheet")
    s.add_argument("--checksum", help="the raw file's checksum file (zincassay.checksums)")
    s.add_argument("--sample-id", required=True)
    s.add_argument("--settings", required=True, help="the resolved cfse config section as JSON")
    s.add_argument("--unstimulated", required=True, help="summary of the matched unstimulated control")
    s.add_argument("--unstained", help="summary of the matched unstained control")
    for name in (*SAMPLE_OUTPUTS, "status"):
        s.add_argument(f"--{name.replace('_', '-')}", required=True)
    s.add_argument("--events-fcs", help="gated events with their generation (FCS 3.1; cfse.export_fcs)")
    s.set_defaults(func=_cmd_sample)


__all__ = ["add_commands"]
