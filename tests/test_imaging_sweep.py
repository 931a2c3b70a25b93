"""A fast slice of ``validation/imaging_sweep.py``: the same parameter space (fields of at most
160 x 160 px and 120 frames, so it runs in seconds) and the same bars as issue #15."""

from __future__ import annotations

import pandas as pd
import pytest
from validation.imaging_sweep import BARS, passes, run_one

N_STACKS = 5
SEED = 2  # not the sweep's seed (1): different stacks from the same space


@pytest.fixture(scope="module")
def slice_rows(tmp_path_factory) -> pd.DataFrame:
    work = tmp_path_factory.mktemp("sweep")
    return pd.DataFrame([run_one(i, SEED, str(work), max_side=160, max_frames=120) for i in range(N_STACKS)])


def test_every_stack_is_analysed(slice_rows):
    assert (slice_rows["status"] == "ok").all(), slice_rows[["stack", "status", "message"]].to_string()


def test_median_zinc_within_the_bars(slice_rows):
    checks = pd.DataFrame([passes(r) for _, r in slice_rows.iterrows()])
    shown = slice_rows[["stack", "baseline_err", "peak_err", "snr", "cells"]].to_string()
    assert checks["baseline"].mean() >= 0.90, shown
    assert checks["peak"].mean() >= 0.90, shown


def test_cells_found_and_flagged(slice_rows):
    s = slice_rows.sum(numeric_only=True)
    assert s["attached_found"] >= BARS["found"] * s["attached"]
    assert s["saturating"] >= 1 and s["saturating_flagged"] >= BARS["saturated"] * s["saturating"]
    assert s["detaching_flagged"] >= BARS["detached"] * s["detaching"]


def test_registration_and_blank_events(slice_rows):
    assert (slice_rows["reg_rms_px"] <= BARS["reg_rms_px"]).all(), slice_rows[["stack", "reg_rms_px"]].to_string()
    for k in ("stimulus", "pyrithione"):
        assert (slice_rows[f"{k}_frames"].abs() <= BARS["event_frames"]).all(), slice_rows[f"{k}_frames"].tolist()
