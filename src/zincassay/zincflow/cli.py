"""Zinc-by-flow workflow steps (``zincassay run zincflow-tube|zincflow-sample|zincflow-readouts``), called
by ``workflow/rules/zincflow.smk``.

Every output path is given by the rule; nothing here names a file.
"""

from __future__ import annotations

import argparse
import json

SAMPLE_OUTPUTS = ("zinc", "gates", "histograms_figure", "gating_figure")
KINETIC_OUTPUTS = ("kinetics", "kinetic_bins", "kinetics_figure")
TUBE_ROLES = ("fmin", "fmax", "unstained")


def _cmd_tube(args: argparse.Namespace) -> int:
    """A culture's control tube (fmin, fmax, unstained): read and gated on its own, so a bad tube gets its own
    failure record (and its samples say which tube failed); its bytes are recorded for provenance."""
    from zincassay.samplesheet import load_sample
    from zincassay.status import run_sample_step
    from zincassay.zincflow.settings import ZincflowSettings

    settings = ZincflowSettings.from_config(json.loads(args.settings))
    sample = load_sample(args.sheet, args.sample_id)

    def step() -> None:
        from zincassay.zincflow.tubes import gate_tube

        gate_tube(args.fcs, sample.role, settings)

    return run_sample_step(step, labels=sample.labels, assay="zincflow", role=sample.role, raw=args.fcs, outputs={},
                           primary="", failed_columns={}, extra=sample.extra, status_path=args.status,
                           checksum=args.checksum)


def _cmd_sample(args: argparse.Namespace) -> int:
    from zincassay.samplesheet import load_sample
    from zincassay.status import run_sample_step
    from zincassay.zincflow.controls import parse_kinetic
    from zincassay.zincflow.settings import ZincflowSettings

    settings = ZincflowSettings.from_config(json.loads(args.settings))
    sample = load_sample(args.sheet, args.sample_id)
    culture = sample.assay_columns.get("culture", "")
    kinetic = parse_kinetic(sample.assay_columns.get("kinetic", ""))
    addition = sample.assay_columns.get("addition_s", "")
    outputs = {k: getattr(args, k) for k in SAMPLE_OUTPUTS + KINETIC_OUTPUTS if getattr(args, k)}

    def step() -> None:
        from zincassay.errors import ZincassayError
        from zincassay.figures import save_figure
        from zincassay.tables import read_json, write_table
        from zincassay.zincflow.figures import gating_figure, histograms_figure, kinetics_figure
        from zincassay.zincflow.pipeline import run_sample
        from zincassay.zincflow.tables import gates_table, kinetic_bins_table, kinetics_table, zinc_table

        if kinetic != all(getattr(args, k) for k in KINETIC_OUTPUTS):
            raise ZincassayError(f"{sample.sample_id}: kinetic is {'yes' if kinetic else 'no'} in the sample sheet "
                                 "but the rule gave kinetic outputs for the other case; rerun the workflow")
        for role in TUBE_ROLES:
            path = getattr(args, f"{role}_status")
            if path:
                st = read_json(path)
                if st.get("status") != "ok":
                    raise ZincassayError(f"its {role} tube {st.get('sample_id', '')} failed: {st.get('reason', '')}")
        r = run_sample(args.fcs, args.fmin, args.fmax, args.unstained, settings, kinetic=kinetic,
                       addition_s=float(addition) if addition else None)
        sid = sample.sample_id
        save_figure(gating_figure(r.tubes, sid, marker_scale=settings.marker_scale,
                                  asinh_cofactor=settings.asinh_cofactor), args.gating_figure)
        save_figure(histograms_figure(r, f"{sid} ({culture})"), args.histograms_figure)
        write_table(gates_table(r, sid), args.gates)
        if kinetic:
            save_figure(kinetics_figure(r, sid), args.kinetics_figure)
            write_table(kinetic_bins_table(r, sid), args.kinetic_bins)
            write_table(kinetics_table(r, sample, culture=culture), args.kinetics)
        write_table(zinc_table(r, sample, culture=culture), args.zinc)

    return run_sample_step(step, labels=sample.labels, assay="zincflow", role=sample.role, raw=args.fcs,
                           outputs=outputs, primary="zinc",
                           failed_columns={"culture": culture, "qc_pass": False, "qc_flags": "failed"},
                           extra=sample.extra, status_path=args.status, checksum=args.checksum)


def _cmd_readouts(args: argparse.Namespace) -> int:
    import sys

    from zincassay.tables import read_table, write_table
    from zincassay.zincflow.settings import ZincflowSettings
    from zincassay.zincflow.tables import readouts_table

    settings = ZincflowSettings.from_config(json.loads(args.settings))
    table, notes = readouts_table(read_table(args.zinc), pool_instruments=settings.pool_instruments,
                                  source=args.zinc)
    for note in notes:
        print(f"{note}; each instrument's samples are compared among themselves (readouts zn_nM_<subset>@<$CYT>)",
              file=sys.stderr)
    write_table(table, args.out)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the zinc-by-flow workflow steps on ``zincassay run``."""
    t = sub.add_parser("zincflow-tube", help="read and gate a zinc-by-flow control tube (fmin, fmax, unstained)")
    t.add_argument("fcs")
    t.add_argument("--sheet", required=True, help="the validated sample sheet")
    t.add_argument("--checksum", help="the raw file's checksum file (zincassay.checksums)")
    t.add_argument("--sample-id", required=True)
    t.add_argument("--settings", required=True, help="the resolved zincflow config section as JSON")
    t.add_argument("--status", required=True, help="how the step ended (JSON)")
    t.set_defaults(func=_cmd_tube)

    s = sub.add_parser("zincflow-sample", help="calibrate free zinc per subset of one zinc-by-flow sample")
    s.add_argument("fcs")
    s.add_argument("--sheet", required=True, help="the validated sample sheet")
    s.add_argument("--checksum", help="the raw file's checksum file (zincassay.checksums)")
    s.add_argument("--sample-id", required=True)
    s.add_argument("--settings", required=True, help="the resolved zincflow config section as JSON")
    s.add_argument("--fmin", required=True, help="the culture's TPEN tube (FCS)")
    s.add_argument("--fmax", required=True, help="the culture's zinc + pyrithione tube (FCS)")
    s.add_argument("--unstained", help="the culture's unstained tube (FCS)")
    for role in TUBE_ROLES:
        s.add_argument(f"--{role}-status", help=f"status.json of the {role} tube's own step")
    for name in (*SAMPLE_OUTPUTS, "status"):
        s.add_argument(f"--{name.replace('_', '-')}", required=True)
    for name in KINETIC_OUTPUTS:
        s.add_argument(f"--{name.replace('_', '-')}", help="kinetic samples only")
    s.set_defaults(func=_cmd_sample)

    r = sub.add_parser("zincflow-readouts", help="zinc.tsv -> one row per sample with zn_nM per subset")
    r.add_argument("--zinc", required=True, help="the collected results/zincflow/zinc.tsv")
    r.add_argument("--settings", required=True, help="the resolved zincflow config section as JSON")
    r.add_argument("--out", required=True)
    r.set_defaults(func=_cmd_readouts)


__all__ = ["add_commands"]
