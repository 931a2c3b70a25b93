"""Phenotype by generation against truth over a parameter space (rerunnable, prints tables).

For each setting and seed: simulate an unstimulated, an unstained and a stimulated tube with a
generation-dependent marker (:mod:`zincassay.simulate.markers`), deconvolve the CFSE histogram,
compute per-event component probabilities, and compare, for every generation holding >= 2 % of
cells, the marker median and % positive (threshold: unstained 99.5 %) with the truth (the median
and % positive of the cells of that generation). Reports the worst relative median error per
setting for the plain posterior-weighted median ("weighted") and the unmixed one (what
``phenotype_by_generation`` reports with a mixing matrix). Criterion (issue #16): within 5 %.

Runs whose fit the pipeline's QC fails are counted apart ("QC-failed") and left out of the error
columns: a parent peak moved more than 0.15 decades from its unstimulated control
(``parent_shift``, ``cfse.max_parent_shift_log10``: the generations are labelled one off, since the
deconvolution may move the parent by up to 0.25 decades and one peak ratio of 1.8 is 0.26) or a
reduced chi-square above 5 (``poor_fit``, ``cfse.max_reduced_chi2``: e.g. a peak ratio of 2.2
fitted at the 1.7 bound). These are failures of the deconvolution, not of the phenotype estimate.

The truth is the sample median of the generation's own cells. With 10,000 events, a generation
holding 2-3 % has 200-300 cells, and that median alone is uncertain by about 3.5 % (1 SE for a
marker spread of 0.2 decades).

Space: peak ratio 1.8/2.0/2.2 x per-cell CFSE spread 0.05/0.065/0.085 decades x marker fold per
division 0.7/1.5/2.0 x mean divisions 2.5/4 x events 10,000/30,000, seeds 0..S-1.

Run: OMP_NUM_THREADS=1 python validation/by_generation_sweep.py [--seeds 2] [--quick]
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from zincassay.cfse.deconvolve import fit_generations, fit_parent
from zincassay.cfse.phenotype import phenotype_by_generation, positivity_threshold
from zincassay.cfse.posterior import component_probabilities, mixing_matrix
from zincassay.simulate.markers import MarkerParams, simulate_marker_events

MAX_PARENT_SHIFT_LOG10 = 0.15  # the schema's default for cfse.max_parent_shift_log10
MAX_REDUCED_CHI2 = 5.0  # the schema's default for cfse.max_reduced_chi2


def one(seed: int, **kw: float) -> tuple[float, float, float] | None:
    """Worst |median error| (weighted, unmixed) in % and worst |% positive error| (points, unmixed);
    None when the pipeline's QC would fail the fit (parent_shift or poor_fit)."""
    rng = np.random.default_rng(seed)
    p = MarkerParams(**kw)
    unstim, _, _ = simulate_marker_events(rng, p, "unstimulated")
    unstained, unstained_marker, _ = simulate_marker_events(rng, p, "unstained")
    cfse, marker, gen = simulate_marker_events(rng, p)
    parent = fit_parent(unstim)
    fit = fit_generations(cfse, parent, unstained, max_generations=10)
    if abs(fit.mu0 - parent.mu_log10) > MAX_PARENT_SHIFT_LOG10 or fit.reduced_chi2 > MAX_REDUCED_CHI2:
        return None
    prob = component_probabilities(cfse, fit)
    ng = fit.cells.size
    thr = positivity_threshold(unstained_marker)
    frac = np.bincount(gen, minlength=ng)[:ng] / gen.size
    worst = []
    for mix in (None, mixing_matrix(fit)):
        t = phenotype_by_generation({"m": marker}, prob, n_generations=ng, mixing=mix, thresholds={"m": (thr, "u")})
        med_err, pct_err = 0.0, 0.0
        for g in np.nonzero(frac >= 0.02)[0]:
            row = t[t["generation"] == g].iloc[0]
            med_err = max(med_err, abs(row["median"] / np.median(marker[gen == g]) - 1) * 100)
            pct_err = max(pct_err, abs(row["pct_positive"] - 100 * np.mean(marker[gen == g] > thr)))
        worst.append((med_err, pct_err))
    return worst[0][0], worst[1][0], worst[1][1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="peak ratio 2.0 and 10,000 events only")
    args = ap.parse_args()
    ratios = (2.0,) if args.quick else (1.8, 2.0, 2.2)
    events = (10000,) if args.quick else (10000, 30000)
    print(f"{'ratio':>5s} {'cv':>6s} {'fold':>5s} {'div':>4s} {'events':>7s} | {'weighted %':>10s} "
          f"{'unmixed %':>9s} {'pct+ pts':>8s} {'QC-fail':>7s}  (worst over seeds and generations >= 2 %)")
    all_w, all_u, all_p, all_n = [], [], [], []
    runs = shifted = 0
    for ratio, cv, fold, div, n in itertools.product(ratios, (0.05, 0.065, 0.085), (0.7, 1.5, 2.0), (2.5, 4.0), events):
        base = 5000.0 if fold < 1 else 400.0
        every = [one(s, peak_ratio=ratio, cv_log10=cv, marker_fold=fold, marker_base=base, mean_divisions=div,
                     n_events=n) for s in range(args.seeds)]
        res = [r for r in every if r is not None]
        runs += len(every)
        shifted += len(every) - len(res)
        if not res:
            print(f"{ratio:5.2f} {cv:6.3f} {fold:5.2f} {div:4.1f} {n:7d} | {'':>10s} {'':>9s} {'':>8s} {len(every):7d}")
            continue
        w, u, p = (max(r[i] for r in res) for i in range(3))
        all_w.append(w)
        all_u.append(u)
        all_p.append(p)
        all_n.append(n)
        flag = "" if u <= 5 else "  > 5 %"
        print(f"{ratio:5.2f} {cv:6.3f} {fold:5.2f} {div:4.1f} {n:7d} | {w:10.2f} {u:9.2f} {p:8.2f} "
              f"{len(every) - len(res):7d}{flag}")
    print(f"runs: {runs}, of which {shifted} failed the fit QC (parent_shift or poor_fit; left out)")
    for n in events:
        sel = [u for u, e in zip(all_u, all_n, strict=True) if e == n]
        print(f"{n} events: {len(sel)} settings, unmixed worst {max(sel):.2f} %, within 5 %: "
              f"{np.mean(np.array(sel) <= 5):.0%}")
    print(f"settings: {len(all_u)}; unmixed worst {max(all_u):.2f} % (median {np.median(all_u):.2f}); "
          f"weighted worst {max(all_w):.2f} %; within 5 %: {np.mean(np.array(all_u) <= 5):.0%} (unmixed), "
          f"{np.mean(np.array(all_w) <= 5):.0%} (weighted); % positive worst {max(all_p):.2f} points")


if __name__ == "__main__":
    main()
