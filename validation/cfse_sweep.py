"""CFSE validation sweep: accuracy, interval coverage and failures over a documented parameter space.

Every experiment is drawn from ``zincassay.simulate.cfse.SWEEP_SPACE`` (events 5,000-1,000,000
log-uniform; peak ratio 1.7-2.2; undivided width 0.04-0.09 decades growing with generation to
<= 0.12; blast FSC/SSC shift 0-100 %; dead 0-30 %; debris 0-40 %; doublets 0-10 %; beads 0-3 %;
undivided precursors 2-90 %, of which up to 30 % of the responders activated but undivided;
mean divisions of responders 1.5-4.5; undivided peak shifted 0-0.3 decades down from the
unstimulated control (1 in 8: 0-0.05 up); parent peak 10^4.3-10^4.9 and 2.3-3.2 decades above
the autofluorescence median; random spillover; the four FCS flavours; CFSE or CTV channel names). Each experiment writes a stimulated sample, its unstimulated control and its
unstained control (the controls hold min(max(events, 5,000), 100,000) events), runs them through
the pipeline exactly as the workflow does (read, compensate, gate, fit, bootstrap, QC) and
compares with the simulator's truth: live singlet cells per generation.

Printed: per index, the distribution of errors (median, 95th percentile, max of |error|; points
for the two percentages, % of the truth for the four ratios), the coverage of the 95 % intervals,
the failure rate (crashes; QC failures and their flags), the share of experiments within the
done-when bars, the per-generation spread of live-singlet retention by the gates, and the worst
corner of the space. Written: a per-experiment table (TSV) and a figure (PNG).

Run (about 10 minutes on 2 cores; fewer replicates or --max-events for a quick look):

    OMP_NUM_THREADS=1 nice -n 10 python validation/cfse_sweep.py --n 120 --seed 1 --processes 2
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pandas as pd

from zincassay.cfse.indices import INDEX_NAMES
from zincassay.cfse.pipeline import analyse_sample, load_gated, summarise_control
from zincassay.cfse.settings import CFSESettings
from zincassay.cfse.tables import indices_table
from zincassay.config import resolve_config
from zincassay.samplesheet import Sample
from zincassay.simulate.cfse import SWEEP_SPACE, draw_params, write_cfse_sample

#: Indices whose error is in points (percentages); the others are relative (% of the truth).
POINT_INDICES = ("pct_divided", "fraction_diluted")
BAR_PCT_DIVIDED = 2.0  # points
BAR_DIVISION_INDEX = 5.0  # % of the truth
CORNER_PARAMS = ("n_events", "peak_ratio", "cv_log10", "blast_shift", "frac_dead", "frac_debris",
                 "undivided_share", "mean_divisions", "parent_shift_log10", "dye_range_log10", "fmt")


def analyse(sample: Path, unstimulated: Path, unstained: Path | None, settings: dict) -> tuple[dict, object]:
    """Run the pipeline on one sample and its controls (``settings``: the user's cfse config section);
    return the ``indices.tsv`` row as a dict and the gated sample."""
    cfg = CFSESettings.from_config(resolve_config({"cfse": settings})["cfse"])
    unstim = summarise_control(load_gated(unstimulated, cfg), "unstimulated")
    unst = summarise_control(load_gated(unstained, cfg), "unstained") if unstained else None
    gated = load_gated(sample, cfg)
    result = analyse_sample(gated, cfg, unstim, unst)
    return indices_table(result, Sample(sample.stem)).iloc[0].to_dict(), gated


def run_experiment(index: int, seed: int, replicates: int, max_events: int | None = None,
                   fixed: dict | None = None) -> dict:
    """Simulate experiment ``index`` of the sweep with ``seed``, analyse it, compare with truth.

    Returns one row: the drawn parameters, truth and estimate of every index, whether each 95 %
    interval holds the truth, QC, the per-generation retention of live singlets by the gates,
    the run time and the error message of a crash ('' when none).
    """
    rng = np.random.default_rng([seed, index])
    params, fmt, drawn = draw_params(rng, **(fixed or {}))
    if max_events:
        params = replace(params, n_events=min(params.n_events, max_events))
    row: dict = {"experiment": index, **{k: v for k, v in drawn.items()}, "n_events": params.n_events,
                 "error": ""}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cfse_sweep_") as tmp:
        tmp = Path(tmp)
        n_ctrl = int(np.clip(params.n_events, 5000, 100_000))
        ctrl = replace(params, n_events=n_ctrl)
        write_cfse_sample(tmp / "unstim.fcs", rng, ctrl, role="unstimulated", fmt=fmt)
        write_cfse_sample(tmp / "unstained.fcs", rng, ctrl, role="unstained", fmt=fmt)
        truth = write_cfse_sample(tmp / "sample.fcs", rng, params, role="sample", fmt=fmt)
        settings = {"channel": params.dye, "viability_channel": "LiveDead", "bootstrap_replicates": replicates,
                    "seed": 0}
        try:
            est, gated = analyse(tmp / "sample.fcs", tmp / "unstim.fcs", tmp / "unstained.fcs", settings)
        except Exception as exc:  # a crash is a result of the sweep, not the end of it
            row["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            row["traceback"] = traceback.format_exc(limit=3).replace("\n", " | ")[-600:]
            est, gated = None, None
    row["seconds"] = time.perf_counter() - t0
    for k in INDEX_NAMES:
        row[f"true_{k}"] = truth["indices"][k]
    row["true_peak_ratio"] = params.peak_ratio
    if est is None:
        return row
    for k in INDEX_NAMES:
        t, e = truth["indices"][k], est[k]
        row[f"est_{k}"] = e
        row[f"err_{k}"] = (e - t) if k in POINT_INDICES else 100.0 * (e / t - 1.0)
        lo, hi = est[f"{k}_ci_low"], est[f"{k}_ci_high"]
        row[f"covered_{k}"] = bool(lo <= t <= hi) if np.isfinite(lo) and np.isfinite(hi) else np.nan
        half = (hi - lo) / 2 if k in POINT_INDICES else 100.0 * (hi - lo) / 2 / t
        row[f"ci_halfwidth_{k}"] = half
        tp = truth["population_indices"][k]
        row[f"true_population_{k}"] = tp
        row[f"covered_population_{k}"] = bool(lo <= tp <= hi) if np.isfinite(lo) and np.isfinite(hi) else np.nan
    row["est_peak_ratio"] = est["peak_ratio"]
    row["parent_shift_est_log10"] = est["parent_shift_log10"]
    row["reduced_chi2"] = est["reduced_chi2"]
    row["qc_pass"] = bool(est["qc_pass"])
    row["qc_flags"] = est["qc_flags"]
    # live singlets kept by the gates, per generation holding >= 200 cells
    kind, gen = truth["event_kind"], truth["event_generation"]
    live = kind == "live"
    kept = gated.gating.mask
    shares = [100.0 * kept[live & (gen == g)].mean() for g in range(gen.max() + 1) if (live & (gen == g)).sum() >= 200]
    row["retention_min_pct"] = min(shares) if shares else np.nan
    row["retention_spread_pct"] = (max(shares) - min(shares)) if shares else np.nan
    row["non_live_kept_pct"] = 100.0 * kept[~live].mean() if (~live).any() else 0.0
    return row


def _dist(v: pd.Series) -> tuple[float, float, float]:
    a = v.dropna().abs()
    if a.empty:
        return (np.nan, np.nan, np.nan)
    return float(a.median()), float(a.quantile(0.95)), float(a.max())


def summarise(df: pd.DataFrame) -> str:
    """The printed report (also returned as text)."""
    out = []
    n = len(df)
    ok = df[df["error"] == ""]
    out.append(f"{n} experiments, {len(ok)} analysed, {n - len(ok)} crashed; "
               f"median {df['seconds'].median():.1f} s per experiment")
    out.append("")
    out.append(f"{'index':22s} {'unit':>6s} {'median|err|':>12s} {'p95|err|':>10s} {'max|err|':>10s} {'CI coverage':>12s}")
    for k in INDEX_NAMES:
        med, p95, mx = _dist(ok[f"err_{k}"]) if len(ok) else (np.nan,) * 3
        cov = ok[f"covered_{k}"].dropna()
        cov_s = f"{100 * cov.mean():.1f} %" if len(cov) else "-"
        unit = "points" if k in POINT_INDICES else "%"
        out.append(f"{k:22s} {unit:>6s} {med:12.2f} {p95:10.2f} {mx:10.2f} {cov_s:>12s}")
    if len(ok):
        pr = (ok["est_peak_ratio"] - ok["true_peak_ratio"]).abs()
        out.append(f"{'peak_ratio':22s} {'abs':>6s} {pr.median():12.3f} {pr.quantile(0.95):10.3f} {pr.max():10.3f}")
    out.append("")
    in_pd = (df.get("err_pct_divided", pd.Series(np.nan, df.index)).abs() <= BAR_PCT_DIVIDED)
    in_di = (df.get("err_division_index", pd.Series(np.nan, df.index)).abs() <= BAR_DIVISION_INDEX)
    out.append(f"within bars (of all {n}, crashes count as misses): |d pct_divided| <= {BAR_PCT_DIVIDED:g} points: "
               f"{100 * in_pd.mean():.1f} %; |d division_index| <= {BAR_DIVISION_INDEX:g} %: {100 * in_di.mean():.1f} %; "
               f"both: {100 * (in_pd & in_di).mean():.1f} %")
    cov_main = pd.concat([ok["covered_pct_divided"], ok["covered_division_index"]]).dropna() if len(ok) else pd.Series()
    out.append(f"CI coverage, pct_divided and division_index together: {100 * cov_main.mean():.1f} % of the file's "
               "truth (its live singlets)" if len(cov_main) else "CI coverage: no intervals")
    if len(ok) and "covered_population_pct_divided" in ok:
        cov_pop = pd.concat([ok[f"covered_population_{k}"] for k in INDEX_NAMES]).dropna()
        cov_pop2 = pd.concat([ok[f"covered_population_{k}"] for k in ("pct_divided", "division_index")]).dropna()
        out.append(f"CI coverage of the culture's truth (the distribution the file's cells were drawn from): "
                   f"pct_divided and division_index {100 * cov_pop2.mean():.1f} %, all six indices "
                   f"{100 * cov_pop.mean():.1f} %")
    if len(ok) and "ci_halfwidth_pct_divided" in ok:
        ratio = pd.concat([ok[f"err_{k}"].abs() / ok[f"ci_halfwidth_{k}"] for k in ("pct_divided", "division_index")])
        out.append(f"|error| / interval half-width, pct_divided and division_index: median {ratio.median():.2f}, "
                   f"95th percentile {ratio.quantile(0.95):.2f} (a calibrated 95 % interval: ~0.34 and ~1); "
                   f"median half-width: pct_divided {ok['ci_halfwidth_pct_divided'].median():.2f} points, "
                   f"division_index {ok['ci_halfwidth_division_index'].median():.2f} %")
    qc_fail = ok[~ok["qc_pass"].astype(bool)] if len(ok) else ok
    flags = pd.Series([f for s in qc_fail["qc_flags"] for f in str(s).split(";") if f]).value_counts() if len(qc_fail) else pd.Series()
    out.append(f"failure rate: {100 * (n - len(ok)) / n:.1f} % crashed; {100 * len(qc_fail) / n:.1f} % failed QC"
               + (" (" + ", ".join(f"{k} {v}" for k, v in flags.items()) + ")" if len(flags) else ""))
    if len(ok):
        good_qc = ok[ok["qc_pass"].astype(bool)]
        if len(good_qc):
            both = ((good_qc["err_pct_divided"].abs() <= BAR_PCT_DIVIDED)
                    & (good_qc["err_division_index"].abs() <= BAR_DIVISION_INDEX))
            out.append(f"of the QC-passing experiments, {100 * both.mean():.1f} % are within both bars")
        r = ok["retention_spread_pct"].dropna()
        out.append(f"gates: spread of live-singlet retention between generations: median {r.median():.2f}, "
                   f"max {r.max():.2f} points; lowest retention of any generation {ok['retention_min_pct'].min():.1f} %; "
                   f"non-live events kept: median {ok['non_live_kept_pct'].median():.2f} %")
    out.append("")
    out.append(worst_corner(df))
    if (df["error"] != "").any():
        out.append("")
        out.append("crashes:")
        for _, r in df[df["error"] != ""].iterrows():
            out.append(f"  experiment {r['experiment']}: {r['error']}")
    return "\n".join(out)


def _miss(df: pd.DataFrame) -> pd.Series:
    pd_err = df.get("err_pct_divided", pd.Series(np.nan, df.index)).abs()
    di_err = df.get("err_division_index", pd.Series(np.nan, df.index)).abs()
    return ~((pd_err <= BAR_PCT_DIVIDED) & (di_err <= BAR_DIVISION_INDEX))


def _bins(df: pd.DataFrame, p: str) -> pd.Series:
    if p == "fmt":
        return df[p].astype(str)
    lo, hi = SWEEP_SPACE[p]
    edges = np.exp(np.linspace(np.log(lo), np.log(hi), 4)) if p == "n_events" else np.linspace(lo, hi, 4)
    edges[0], edges[-1] = -np.inf, np.inf
    labels = [f"{p} low", f"{p} mid", f"{p} high"]
    return pd.cut(df[p], edges, labels=labels).astype(str)


def worst_corner(df: pd.DataFrame) -> str:
    """The single parameter third and the pair of thirds with the most experiments outside the bars
    (and, where none are outside, with the largest median |error| of pct_divided)."""
    miss = _miss(df)
    score = miss.astype(float) + df.get("err_pct_divided", pd.Series(0.0, df.index)).abs().fillna(99) / 1000
    bins = {p: _bins(df, p) for p in CORNER_PARAMS}
    singles = []
    for b in bins.values():
        for label, idx in b.groupby(b).groups.items():
            if len(idx) >= 5:
                singles.append((score[idx].mean(), miss[idx].mean(), len(idx), label))
    pairs = []
    names = list(bins)
    for i, p in enumerate(names):
        for q in names[i + 1:]:
            key = bins[p] + " & " + bins[q]
            for label, idx in key.groupby(key).groups.items():
                if len(idx) >= 5:
                    pairs.append((score[idx].mean(), miss[idx].mean(), len(idx), label))
    singles.sort(reverse=True)
    pairs.sort(reverse=True)
    lines = ["worst corners (share of experiments outside the bars; n):"]
    for s in singles[:3]:
        lines.append(f"  {s[3]}: {100 * s[1]:.0f} % (n={s[2]})")
    for s in pairs[:3]:
        lines.append(f"  {s[3]}: {100 * s[1]:.0f} % (n={s[2]})")
    return "\n".join(lines)


def figure(df: pd.DataFrame, path: Path) -> None:
    """Errors of pct_divided and division_index against the parameters that matter most."""
    from zincassay.figures import new_figure, save_figure

    ok = df[df["error"] == ""]
    xs = [("blast_shift", "blast FSC/SSC shift"), ("parent_shift_log10", "undivided peak shift (decades)"),
          ("undivided_share", "undivided precursors"), ("peak_ratio", "peak ratio"), ("n_events", "events")]
    fig, axes = new_figure(2, len(xs), figsize=(3.2 * len(xs), 6.0), squeeze=False)
    colours = dict(zip(sorted(df["fmt"].unique()), ("tab:blue", "tab:orange", "tab:green", "tab:red"), strict=False))
    for row, (err, bar, label) in enumerate((("err_pct_divided", BAR_PCT_DIVIDED, "Δ pct_divided (points)"),
                                             ("err_division_index", BAR_DIVISION_INDEX, "Δ division_index (%)"))):
        for col, (x, xl) in enumerate(xs):
            ax = axes[row, col]
            for fmt, sub in ok.groupby("fmt"):
                ax.scatter(sub[x], sub[err], s=9, color=colours[fmt], label=fmt, alpha=0.8)
            ax.axhspan(-bar, bar, color="0.9", zorder=0)
            if x == "n_events":
                ax.set_xscale("log")
            ax.set_xlabel(xl, fontsize=8)
            if col == 0:
                ax.set_ylabel(label, fontsize=8)
            ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=6)
    fig.suptitle(f"CFSE sweep: {len(ok)} of {len(df)} experiments analysed (grey: done-when bars)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def _run(job: tuple) -> dict:
    return run_experiment(*job)


def _progress(rows: list[dict], n: int, t0: float) -> None:
    r = rows[-1]
    status = r["error"] or (f"d pct_divided {r['err_pct_divided']:+.2f}, d division_index {r['err_division_index']:+.2f} %")
    print(f"[{len(rows)}/{n}, {time.perf_counter() - t0:.0f} s] experiment {r['experiment']}: {status}",
          file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=120, help="experiments (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--replicates", type=int, default=200, help="bootstrap replicates (the pipeline default: 200)")
    ap.add_argument("--max-events", type=int, default=None, help="cap on events per sample (quick looks only)")
    ap.add_argument("--out", default="validation/out/cfse_sweep", help="prefix of the .tsv and .png written")
    args = ap.parse_args(argv)
    jobs = [(i, args.seed, args.replicates, args.max_events) for i in range(args.n)]
    t0 = time.perf_counter()
    rows = []
    if args.processes > 1:
        from multiprocessing import get_context

        with get_context("spawn").Pool(args.processes) as pool:
            for row in pool.imap_unordered(_run, jobs):
                rows.append(row)
                _progress(rows, args.n, t0)
    else:
        for j in jobs:
            rows.append(_run(j))
            _progress(rows, args.n, t0)
    df = pd.DataFrame(rows).sort_values("experiment")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from zincassay.tables import write_table

    write_table(df, out.with_suffix(".tsv"))
    figure(df, out.with_suffix(".png"))
    print(summarise(df))
    print(f"\n{len(df)} experiments in {time.perf_counter() - t0:.0f} s; table {out.with_suffix('.tsv')}, "
          f"figure {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
