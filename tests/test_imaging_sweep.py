"""A fast slice of ``validation/imaging_sweep.py``: the same parameter space (fields of at most
160 x 160 px and 120 frames, so it runs in seconds) and the same bars as issue #15.

Which bars hold here: every stack analysed, attached cells found, saturating and detaching
cells flagged, and blank stimulus / pyrithione times within 2 frames hold on all five stacks.
The median-[Zn2+] bars (baseline within 15 %, peak within 10 % in >= 90 % of stacks) and
registration RMS <= 0.5 px on every stack do NOT hold yet and are marked ``xfail(strict=True)``
with the bars unchanged, so that they fail loudly once they are met. Why: capping the field at
160 px leaves stacks 0 and 3 with 1-3 large cells (radius ~20 px, 5 wanted); registration then
has fewer than 3 cells to measure each frame by and falls back to correlation tracking, which
is off by 1-3 px (stack 0, after the cells round up at pyrithione) or 0.9 px (stack 3, a slow
shortfall of the drift), and the zinc errors follow (stack 0: baseline -35 %, peak -60 %; stack
3: baseline +21 %). The full sweep states the same corner; this is open work on issue #15.
"""

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


OPEN = pytest.mark.xfail(strict=True, reason="few-cell fields: registration falls back to correlation tracking "
                         "(stacks 0 and 3; see the module docstring)")


@OPEN
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


@OPEN
def test_registration_within_the_bar(slice_rows):
    assert (slice_rows["reg_rms_px"] <= BARS["reg_rms_px"]).all(), slice_rows[["stack", "reg_rms_px"]].to_string()


def test_blank_events_within_two_frames(slice_rows):
    for k in ("stimulus", "pyrithione"):
        assert (slice_rows[f"{k}_frames"].abs() <= BARS["event_frames"]).all(), slice_rows[f"{k}_frames"].tolist()
