"""zincassay: check a sample sheet, draft one from raw files, simulate an experiment (the analysis runs with snakemake).

Expected problems (:class:`zincassay.errors.ZincassayError`) are printed as one message and
exit with status 1; no Python traceback.
"""

from __future__ import annotations

import argparse
import errno
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from zincassay import __version__
from zincassay.errors import ZincassayError


def _cmd_validate(args: argparse.Namespace) -> int:
    from zincassay.config import load_config_file
    from zincassay.samplesheet import load_inputs

    cfg = load_config_file(args.config)
    if args.samples:
        cfg["samples"] = args.samples
    inputs = load_inputs(cfg, base_dir=args.workdir)
    sheet = inputs.sheet
    counts = sheet.groupby(["assay", "role"]).size()
    print(f"OK: config and sample sheet are valid ({len(sheet)} files: "
          + ", ".join(f"{n} {a} {r}" for (a, r), n in counts.items()) + ")")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from zincassay.simulate import simulate_dataset

    sheet = simulate_dataset(args.outdir, seed=args.seed, n_donors=args.donors, n_events=args.events,
                             cfse_format=args.cfse_format, peak_ratio=args.peak_ratio,
                             imaging=not args.no_imaging, sheet_path=args.sheet, zincflow=not args.no_zincflow,
                             zincflow_events=args.zincflow_events, cytokines=not args.no_cytokines)
    print(f"simulated data in {args.outdir}; sample sheet {sheet}; ground truth in {Path(args.outdir) / 'truth'}")
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    from zincassay.init_sheet import draft_sample_sheet
    from zincassay.tables import write_table

    raw = Path(args.raw_dir)
    if not raw.is_dir():
        raise ZincassayError(f"{raw}: no such folder; give the folder that holds your FCS files and stacks")
    out = Path(args.output)
    if out.exists() and not args.force:
        raise ZincassayError(f"{out} exists; pass --force to overwrite it or -o to write elsewhere")
    sheet, unfilled = draft_sample_sheet(raw, out)
    if sheet.empty:
        raise ZincassayError(f"{raw}: no FCS (.fcs, .lmd) or image (.tif, .nd2, .czi, .lif) files found")
    write_table(sheet, out)
    print(f"wrote {out} with {len(sheet)} rows")
    if unfilled:
        print("review these cells:")
        for msg in unfilled:
            print(f"  - {msg}")
    print(f"then check it with: zincassay validate --samples {out}")
    return 0


def _cmd_plan_dose(args: argparse.Namespace) -> int:
    import numpy as np

    from zincassay.conditions.dose_design import design_table

    try:
        doses = sorted({float(v) for v in args.doses.split(",") if v.strip()})
    except ValueError as exc:
        raise ZincassayError(f"--doses: {exc}; give the doses as numbers separated by commas, e.g. 0,1,2,4,8") from exc
    if len([d for d in doses if d > 0]) < 3 or min(doses) < 0:
        raise ZincassayError("--doses: need at least 3 positive doses (and 0 for untreated), none negative")
    try:
        t = design_table(np.array(doses), ec50=args.ec50, suppression=args.suppression, hill=args.hill,
                         noise_cv=args.noise_cv, replicates=tuple(args.replicates), donors=args.donors,
                         tolerance=args.tolerance)
    except ValueError as exc:
        option = re.compile(r"\b(suppression|ec50|hill|noise_cv|replicates|donors|tolerance)\b")
        raise ZincassayError(option.sub(lambda m: "--" + m.group(1).replace("_", "-"), str(exc))) from exc
    pct = f"{args.tolerance:.0%}"
    effect = f"falls by {args.suppression:.0%}" if args.suppression > 0 else f"rises by {-args.suppression:.0%}"
    print(f"doses {', '.join(f'{d:g}' for d in doses)}; expected EC50 {args.ec50:g}, response {effect} at saturating "
          f"dose, Hill {args.hill:g}, CV {args.noise_cv:.0%} per reading, {args.donors} donor(s)")
    print(f"best possible precision of the EC50 (Cramer-Rao bound, for unbiased estimates; fits approach it with "
          f"enough readings): share of estimates within {pct} of the truth")
    print(f"{'replicates':>10} {'readings':>8} {'95% CI x/÷':>10} {'own slope':>10} {'shared slope':>12} "
          f"{f'mean of {args.donors}':>11}")
    for r in t.itertuples():
        print(f"{r.replicates:>10} {r.n_readings:>8} {r.ci95_fold:>10.2f} {r.p_within:>10.2f} "
              f"{r.p_within_shared_slope:>12.2f} {r.p_within_donor_mean:>11.2f}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from zincassay.server import serve

    return serve(args.name, idle_s=args.idle)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="zincassay", description=__doc__.splitlines()[0])
    ap.add_argument("--version", action="version", version=f"zincassay {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="check the config and sample sheet, reporting every problem at once")
    v.add_argument("--config", default="config/config.yaml", help="config file (default: %(default)s)")
    v.add_argument("--samples", help="sample sheet (overrides the config's 'samples')")
    v.add_argument("--workdir", default=".", help="folder the config's paths are relative to (default: .)")
    v.set_defaults(func=_cmd_validate)

    s = sub.add_parser("simulate", help="write a simulated experiment with ground truth")
    s.add_argument("outdir")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--donors", type=int, default=2)
    s.add_argument("--events", type=int, default=10000, help="events per FCS file")
    s.add_argument("--cfse-format", default="fcs3.1-float", choices=["fcs3.1-float", "fcs3.0-int32", "fcs2.0-log", "fcs3.1-pipe"])
    s.add_argument("--peak-ratio", type=float, default=2.0)
    s.add_argument("--no-imaging", action="store_true")
    s.add_argument("--no-zincflow", action="store_true", help="leave out the zinc-by-flow tubes")
    s.add_argument("--zincflow-events", type=int, default=5500, help="events per zinc-by-flow tube")
    s.add_argument("--no-cytokines", action="store_true", help="no bead-array batch and ELISA plate")
    s.add_argument("--sheet", help="where to write the sample sheet (default: OUTDIR/samples.tsv)")
    s.set_defaults(func=_cmd_simulate)

    i = sub.add_parser("init", help="draft a sample sheet from a folder of raw files")
    i.add_argument("raw_dir")
    i.add_argument("-o", "--output", default="config/samples.tsv")
    i.add_argument("--force", action="store_true")
    i.set_defaults(func=_cmd_init)

    d = sub.add_parser("plan-dose", help="how precisely a planned dose series can determine an IC50/EC50")
    d.add_argument("--doses", default="0,0.78125,1.5625,3.125,6.25,12.5,25,50",
                   help="distinct doses, 0 = untreated, comma-separated (default: %(default)s)")
    d.add_argument("--ec50", type=float, required=True, help="expected EC50/IC50, in the doses' unit")
    d.add_argument("--suppression", type=float, default=0.85,
                   help="expected effect as a fraction of untreated; negative for a rising readout (default: %(default)s)")
    d.add_argument("--hill", type=float, default=1.4, help="expected steepness (default: %(default)s)")
    d.add_argument("--noise-cv", type=float, default=0.1, help="each reading's CV (default: %(default)s)")
    d.add_argument("--replicates", type=int, nargs="+", default=[1, 2, 3, 4, 6],
                   help="replicate counts per dose to tabulate (default: 1 2 3 4 6)")
    d.add_argument("--donors", type=int, default=6,
                   help="donors per source, fitted with one Hill slope and averaged (default: %(default)s)")
    d.add_argument("--tolerance", type=float, default=0.2, help="within this fraction of the truth (default: %(default)s)")
    d.set_defaults(func=_cmd_plan_dose)

    # the workflow's steps, one per rule: grouped under 'run', out of the user's way
    r = sub.add_parser("run", help="a workflow step, as the Snakemake rules call it (not needed by hand)")
    steps = r.add_subparsers(dest="step", required=True, metavar="STEP")
    from zincassay.beadplex import cli as beadplex_cli
    from zincassay.cfse import cli as cfse_cli
    from zincassay.conditions import cli as conditions_cli
    from zincassay.elisa import cli as elisa_cli
    from zincassay.imaging import cli as imaging_cli
    from zincassay.zincflow import cli as zincflow_cli

    for module in (cfse_cli, imaging_cli, zincflow_cli, beadplex_cli, elisa_cli, conditions_cli):
        module.add_commands(steps)
    w = steps.add_parser("serve", help="a warm process that runs the other steps for a local workflow run")
    w.add_argument("--name", required=True, help="the server's name (abstract Unix socket)")
    w.add_argument("--idle", type=float, default=60.0, help="exit after this many seconds without a job")
    w.set_defaults(func=_cmd_serve)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ZincassayError as exc:
        name = " ".join(filter(None, (args.command, getattr(args, "step", None))))
        print(f"zincassay {name}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        name = " ".join(filter(None, (args.command, getattr(args, "step", None))))
        where = f" while writing {exc.filename}" if exc.filename else ""
        print(f"zincassay {name}: error: no space left on the disk{where}; free some space and run the same "
              "command again (finished samples are kept)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
