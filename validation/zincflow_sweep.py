"""Validation sweep of free zinc by flow cytometry against the simulator's ground truth.

Usage::

    OMP_NUM_THREADS=1 nice -n 10 python validation/zincflow_sweep.py [--experiments 60] [--seed 2024]
        [--qc-repeats 3] [--workdir DIR] [--out results.tsv]

Each experiment is one simulated culture (sample, TPEN and zinc + pyrithione tubes, an
unstained tube in half of them) analysed by :func:`zincassay.zincflow.pipeline.run_sample` with
the default settings (the true Kd given). Parameters are drawn independently per experiment:

==========================  ==========================================================
probe / Kd                  FluoZin-3 15 nM, FluoZin-3 8.9 nM, Zinpyr-1 0.7 nM
resting zinc (CD4 T cells)  log-uniform 0.1-5 nM; other types x U(0.6, 1.4) each
per-cell zinc spread        U(0, 0.15) decades
dynamic range Fmax/Fmin     U(3, 15)
dye loading                 culture median Fmin log-uniform 500-8,000; per-cell spread U(0.1, 0.3) decades
events per tube             log-uniform 10,000-100,000 (all events, debris and dead included)
spillover                   PE->FITC U(0, 0.08), FITC->PE U(0.1, 0.3); every $SPILLOVER coefficient off by U(-10, 10) %
autofluorescence            median U(100, 600)
==========================  ==========================================================

Criteria (issue 17): ``zn_nM`` per subset within 10 % of the truth (the subset's median per-cell
resting zinc) in >= 95 % of subsets whose true f is in (0.05, 0.9); the 95 % CI covers the truth
in 90-98 % of subsets; every QC case flagged. QC cases (``--qc-repeats`` each): low dynamic range,
an Fmax tube that did not saturate the probe (F >= Fmax), f <= 0.02, f >= 0.95, an Fmax tube at
the top of the scale, too few events, a tube from another instrument, a marker without a
negative/positive valley.

Prints the accuracy by corner of the parameter space, names the worst corner, and the QC table;
exits 1 when a criterion fails.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from zincassay.config import resolve_config
from zincassay.simulate.zincflow import CELL_TYPES, ZincflowCulture, culture_truth, write_culture
from zincassay.zincflow.pipeline import run_sample
from zincassay.zincflow.settings import ZincflowSettings

PROBES = [("FluoZin-3", 15.0), ("FluoZin-3", 8.9), ("Zinpyr-1", 0.7)]
SUBSETS = ["CD3+", "CD3+CD4+CD8-", "CD3+CD4-CD8+"]
ACCURACY_RANGE = (0.05, 0.9)
TOLERANCE = 0.10


def settings_for(kd_nM: float, probe: str, **over: object) -> ZincflowSettings:
    section = {"viability_channel": "LiveDead", "probe": probe, "kd_nM": kd_nM, "subsets": SUBSETS, **over}
    return ZincflowSettings.from_config(resolve_config({"zincflow": section})["zincflow"])


def draw_experiment(rng: np.random.Generator) -> dict:
    """Parameters of one culture drawn from the documented space."""
    probe, kd = PROBES[int(rng.integers(len(PROBES)))]
    zn4 = float(10 ** rng.uniform(np.log10(0.1), np.log10(5.0)))
    zn = {t: zn4 * (1.0 if t == "CD4" else float(rng.uniform(0.6, 1.4))) for t in CELL_TYPES}
    culture = ZincflowCulture(
        zn_nM=zn, zn_sigma_log10=float(rng.uniform(0, 0.15)), kd_nM=kd, probe=probe,
        dynamic_range=float(rng.uniform(3, 15)), fmin_median=float(10 ** rng.uniform(np.log10(500), np.log10(8000))),
        load_sigma_log10=float(rng.uniform(0.1, 0.3)), af_median=float(rng.uniform(100, 600)),
        spill_pe_to_fitc=float(rng.uniform(0, 0.08)), spill_fitc_to_pe=float(rng.uniform(0.1, 0.3)),
        spill_error=float(rng.uniform(-0.1, 0.1)), n_events=int(10 ** rng.uniform(4, 5)))
    return {"case": "sweep", "culture": culture, "unstained": bool(rng.random() < 0.5), "instruments": {},
            "expect": None}


def qc_cases(rng: np.random.Generator, repeats: int) -> list[dict]:
    """Experiments built to trip one QC flag each (``expect``), around a random clean culture."""
    out = []
    for _ in range(repeats):
        base = replace(draw_experiment(rng)["culture"], kd_nM=15.0, probe="FluoZin-3", n_events=30000,
                       fmin_median=2000.0, load_sigma_log10=0.2)
        z = base.zn_nM
        cases = [
            ("low_dynamic_range", replace(base, dynamic_range=1.5), {}),
            # the zinc/pyrithione tube reached only 20 nM free zinc: the sample (60 nM) is brighter
            ("above_fmax", replace(base.with_zinc(60.0 / z["CD4"]), fmax_zn_nM=20.0), {}),
            ("f_low", base.with_zinc(0.12 / z["CD4"]), {}),
            ("f_high", replace(base.with_zinc(40.0 / z["CD4"]), kd_nM=0.7, probe="Zinpyr-1", dynamic_range=4.0), {}),
            ("fmax_saturated", replace(base, fmin_median=15000.0, dynamic_range=12.0), {}),
            ("too_few_events", replace(base, n_events=1500), {}),
            ("instrument_mismatch", base, {"fmax": "BD LSRFortessa"}),
            ("no_valley(CD8)", replace(base, type_shares={"CD4": 0.9, "DN": 0.05, "B": 0.05}), {}),
        ]
        for flag, culture, instruments in cases:
            out.append({"case": flag, "culture": culture, "unstained": bool(rng.random() < 0.5),
                        "instruments": instruments, "expect": flag})
    return out


def run_experiment(exp: dict, workdir: Path, seed: int, index: int) -> pd.DataFrame:
    """Simulate, analyse and compare one experiment; one row per subset."""
    c: ZincflowCulture = exp["culture"]
    rng = np.random.default_rng([seed, index])
    paths = write_culture(workdir, f"e{index}", rng, c, unstained=exp["unstained"], instruments=exp["instruments"])
    settings = settings_for(c.kd_nM, c.probe)
    subsets = [s for s in SUBSETS if exp["expect"] != "no_valley(CD8)" or "CD8" not in s]
    truth = culture_truth(c, subsets).set_index("subset")
    res = run_sample(paths["sample"], paths["fmin"], paths["fmax"], paths.get("unstained"), settings)
    rows = []
    for sr in res.subsets:
        cal = sr.calibration
        t = truth.loc[sr.subset.name] if sr.subset.name in truth.index else None
        zn_t = float(t["zn_nM"]) if t is not None else np.nan
        rows.append({
            "experiment": index, "case": exp["case"], "expect": exp["expect"] or "", "subset": sr.subset.name,
            "probe": c.probe, "kd_nM": c.kd_nM, "zn_true_nM": zn_t, "f_true": float(t["f"]) if t is not None else np.nan,
            "zn_expected_nM": float(t["zn_expected_nM"]) if t is not None else np.nan,
            "zn_nM": cal.zn_nM, "ci_low": cal.zn_ci_low, "ci_high": cal.zn_ci_high, "f": cal.f,
            "rel_err": cal.zn_nM / zn_t - 1 if zn_t > 0 else np.nan,
            "covered": bool(cal.zn_ci_low <= zn_t <= cal.zn_ci_high) if np.isfinite(cal.zn_ci_low) else np.nan,
            "covered_expected": (bool(cal.zn_ci_low <= float(t["zn_expected_nM"]) <= cal.zn_ci_high)
                                 if np.isfinite(cal.zn_ci_low) and t is not None else np.nan),
            # the subsets a QC case is about (a marker's valley concerns only the subsets using it)
            "relevant": exp["expect"] != "no_valley(CD8)" or "CD8" in sr.subset.name,
            "dynamic_range": c.dynamic_range, "dr_est": cal.dynamic_range, "load_sigma_log10": c.load_sigma_log10,
            "zn_sigma_log10": c.zn_sigma_log10, "fmin_median": c.fmin_median, "n_events": c.n_events,
            "events_sample": cal.events_sample, "spill_pe_to_fitc": c.spill_pe_to_fitc, "unstained": exp["unstained"],
            "flags": ";".join(cal.flags), "qc_pass": cal.qc_pass,
        })
    return pd.DataFrame(rows)


def corners(sweep: pd.DataFrame) -> pd.DataFrame:
    """Accuracy (share within 10 %) by halves of each swept parameter, within the f range."""
    d = sweep[(sweep["f_true"] > ACCURACY_RANGE[0]) & (sweep["f_true"] < ACCURACY_RANGE[1])].copy()
    d["ok"] = d["rel_err"].abs() <= TOLERANCE
    splits = {"f_true": 0.15, "dynamic_range": 7.0, "load_sigma_log10": 0.2, "events_sample": 5000,
              "zn_sigma_log10": 0.075, "spill_pe_to_fitc": 0.04}
    rows = []
    for col, cut in splits.items():
        for name, sel in ((f"{col} < {cut:g}", d[col] < cut), (f"{col} >= {cut:g}", d[col] >= cut)):
            g = d[sel]
            rows.append({"corner": name, "subsets": len(g), "within_10pct": g["ok"].mean() if len(g) else np.nan,
                         "median_abs_err": g["rel_err"].abs().median() if len(g) else np.nan,
                         "coverage": g["covered"].mean() if len(g) else np.nan})
    for sub in SUBSETS:
        g = d[d["subset"] == sub]
        rows.append({"corner": f"subset {sub}", "subsets": len(g), "within_10pct": g["ok"].mean(),
                     "median_abs_err": g["rel_err"].abs().median(), "coverage": g["covered"].mean()})
    return pd.DataFrame(rows)


def worst_corner(sweep: pd.DataFrame) -> str:
    """The pair of parameter halves with the lowest share within 10 % (at least 5 subsets)."""
    d = sweep[(sweep["f_true"] > ACCURACY_RANGE[0]) & (sweep["f_true"] < ACCURACY_RANGE[1])].copy()
    d["ok"] = d["rel_err"].abs() <= TOLERANCE
    halves = {"f_true": 0.15, "dynamic_range": 7.0, "load_sigma_log10": 0.2, "events_sample": 5000}
    best = ("", 2.0, 0)
    cols = list(halves)
    for i, a in enumerate(cols):
        for b in cols[i + 1:]:
            for sa in (False, True):
                for sb in (False, True):
                    sel = ((d[a] >= halves[a]) == sa) & ((d[b] >= halves[b]) == sb)
                    g = d[sel]
                    if len(g) >= 5 and g["ok"].mean() < best[1]:
                        name = f"{a} {'>=' if sa else '<'} {halves[a]:g} and {b} {'>=' if sb else '<'} {halves[b]:g}"
                        best = (name, float(g["ok"].mean()), len(g))
    return f"{best[0]}: {100 * best[1]:.0f} % within 10 % ({best[2]} subsets)"


def evaluate(sweep: pd.DataFrame, qc: pd.DataFrame) -> dict:
    """The three criteria as numbers."""
    d = sweep[(sweep["f_true"] > ACCURACY_RANGE[0]) & (sweep["f_true"] < ACCURACY_RANGE[1])]
    within = float((d["rel_err"].abs() <= TOLERANCE).mean()) if len(d) else np.nan
    cov = sweep["covered"].dropna()
    coverage = float(cov.astype(float).mean()) if len(cov) else np.nan
    cov_e = sweep["covered_expected"].dropna()
    coverage_expected = float(cov_e.astype(float).mean()) if len(cov_e) else np.nan
    qc = qc[(qc["expect"] != "") & qc["relevant"].astype(bool)]
    hit = qc.apply(lambda r: any(f == r["expect"] or f.startswith(r["expect"] + "(")
                                 for f in r["flags"].split(";")), axis=1)
    per = qc.assign(hit=hit).groupby("expect")["hit"].agg(["sum", "count"])
    return {"within": within, "n_within": len(d), "coverage": coverage, "n_coverage": len(cov),
            "coverage_expected": coverage_expected,
            "qc": per, "qc_all": bool(hit.all()) if len(hit) else True}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--experiments", type=int, default=60)
    ap.add_argument("--qc-repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None, help="write every subset's row here (TSV)")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    exps = [draw_experiment(rng) for _ in range(args.experiments)] + qc_cases(rng, args.qc_repeats)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        frames = []
        for i, e in enumerate(exps):
            frames.append(run_experiment(e, work, args.seed, i))
            for p in work.glob(f"e{i}_*.fcs"):
                p.unlink()
    rows = pd.concat(frames, ignore_index=True)
    if args.out:
        rows.to_csv(args.out, sep="\t", index=False, float_format="%.6g")
    sweep, qc = rows[rows["case"] == "sweep"], rows[rows["case"] != "sweep"]
    res = evaluate(sweep, qc)
    pd.set_option("display.width", 160)
    print(f"{args.experiments} sweep experiments ({len(sweep)} subsets), {len(qc) // len(SUBSETS)} QC experiments, "
          f"{time.perf_counter() - t0:.0f} s\n")
    print(corners(sweep).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\nworst corner: {worst_corner(sweep)}")
    print("\nQC cases flagged (hits / experiments):")
    print(res["qc"].to_string())
    fp = sweep.assign(severe=~sweep["qc_pass"])
    print(f"\nsweep subsets failing QC: {int(fp['severe'].sum())} of {len(fp)} "
          f"({', '.join(sorted({f.split('(')[0] for fl in fp.loc[fp['severe'], 'flags'] for f in fl.split(';') if f}))})")
    ok_acc = res["within"] >= 0.95
    ok_cov = 0.90 <= res["coverage"] <= 0.98
    print(f"\nzn within 10 % of truth where {ACCURACY_RANGE[0]} < f < {ACCURACY_RANGE[1]}: "
          f"{100 * res['within']:.1f} % of {res['n_within']} subsets (criterion >= 95 %): {'PASS' if ok_acc else 'FAIL'}")
    print(f"95 % CI covers the truth: {100 * res['coverage']:.1f} % of {res['n_coverage']} subsets "
          f"(criterion 90-98 %): {'PASS' if ok_cov else 'FAIL'}")
    print(f"  (covers zn_expected_nM, the calibrated infinite-event medians: {100 * res['coverage_expected']:.1f} %)")
    print(f"every QC case flagged: {'PASS' if res['qc_all'] else 'FAIL'}")
    return 0 if ok_acc and ok_cov and res["qc_all"] else 1


if __name__ == "__main__":
    sys.exit(main())
