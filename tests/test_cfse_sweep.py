"""A fast slice of the CFSE validation sweep (validation/cfse_sweep.py), with the same bars.

Three experiments in each of eight corners of the documented parameter space (the sweep's own
runner and draws, with the corner's parameters fixed, at most 30,000 events per sample and 40
bootstrap replicates): |d pct_divided| <= 2 points and |d division_index| <= 5 % in >= 95 % of
the experiments (23 of 24), no crash, >= 90 % of the 95 % intervals of pct_divided and
division_index holding the truth, and every generation's live singlets kept alike by the gates.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

spec = importlib.util.spec_from_file_location("cfse_sweep", REPO / "validation" / "cfse_sweep.py")
sweep = importlib.util.module_from_spec(spec)
sys.modules["cfse_sweep"] = sweep
spec.loader.exec_module(sweep)

CORNERS = {
    "blasts 2x, many dead": {"blast_shift": 1.0, "frac_dead": 0.3},
    "debris 40 %, beads": {"frac_debris": 0.4, "frac_beads": 0.03},
    "undivided peak 0.3 decades down": {"parent_shift_log10": -0.3},
    "peak ratio 1.7, wide growing peaks": {"peak_ratio": 1.7, "cv_log10": 0.09},
    "peak ratio 2.2": {"peak_ratio": 2.2},
    "90 % undivided": {"undivided_share": 0.9, "mean_divisions": 1.5},
    "5 % undivided, many divisions": {"undivided_share": 0.05, "mean_divisions": 4.0},
    "5,000 events, FCS 2.0": {"n_events": 5000, "fmt": "fcs2.0-log"},
}
PER_CORNER = 3


@pytest.fixture(scope="module")
def rows():
    out = []
    for k, (name, fixed) in enumerate(CORNERS.items()):
        for j in range(PER_CORNER):
            row = sweep.run_experiment(1000 + 10 * k + j, seed=7, replicates=40, max_events=30000, fixed=fixed)
            row["corner"] = name
            out.append(row)
    return out


def test_no_crash(rows):
    crashed = {r["corner"]: r["error"] for r in rows if r["error"]}
    assert not crashed, crashed


def test_accuracy_bars(rows):
    within = {(r["corner"], r["experiment"]): abs(r["err_pct_divided"]) <= sweep.BAR_PCT_DIVIDED
              and abs(r["err_division_index"]) <= sweep.BAR_DIVISION_INDEX for r in rows}
    misses = {k: (round(r["err_pct_divided"], 2), round(r["err_division_index"], 2))
              for k, r in zip(within, rows, strict=True) if not within[k]}
    assert np.mean(list(within.values())) >= 0.95, misses


def test_interval_coverage(rows):
    hits = [r[f"covered_{k}"] for r in rows for k in ("pct_divided", "division_index")]
    assert np.mean(hits) >= 0.9, f"{sum(hits)}/{len(hits)} intervals hold the truth"


def test_gates_keep_every_generation_alike(rows):
    spread = {r["corner"]: round(r["retention_spread_pct"], 2) for r in rows}
    assert max(spread.values()) <= 2.0, spread
