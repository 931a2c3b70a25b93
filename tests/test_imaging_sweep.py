"""A fast slice of ``validation/imaging_sweep.py``: the same parameter space (fields of at most
160 x 160 px and 120 frames, so it runs in seconds) and the same bars as issue #15.

Which bars hold here: every stack analysed, attached cells found, saturating and detaching
cells flagged, registration RMS <= 0.5 px on every stack (largest 0.41 px: stacks 0 and 4, a
detaching cell among 3-5 large ones) and blank stimulus / pyrithione times within 2 frames hold
on all five stacks. The median-[Zn2+] bar (baseline within 15 %, peak within 10 % in >= 90 % of
stacks, i.e. all five here) does NOT hold yet and is marked ``xfail(strict=True)`` with the bar
unchanged, so that it fails loudly once it is met. Why: capping the field at 160 px leaves stack
0 with 3 large cells (radius ~20 px), of which one saturates and one detaches, so its median is
one cell: a resting cell at ~6 % of its dynamic range (baseline ~1 nM against Kd 15 nM), which
reads baseline -44 %, peak -58 %. Registration is no longer the cause (0.39 px RMS) and the
cell's light is measured consistently (measured / true amplitude 0.48-0.50 at baseline, Fmax and
after TPEN); the error is in that cell's calibration. The full sweep meets this bar; this is open
work on issue #15.
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


OPEN = pytest.mark.xfail(strict=True, reason="stack 0's median is one resting cell at ~6 % of its range, "
                         "calibrated 44 % low (see the module docstring)")


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


def test_registration_within_the_bar(slice_rows):
    assert (slice_rows["reg_rms_px"] <= BARS["reg_rms_px"]).all(), slice_rows[["stack", "reg_rms_px"]].to_string()


def test_blank_events_within_two_frames(slice_rows):
    for k in ("stimulus", "pyrithione"):
        assert (slice_rows[f"{k}_frames"].abs() <= BARS["event_frames"]).all(), slice_rows[f"{k}_frames"].tolist()


def test_ablation_neutralises_effects_on_the_same_stack_and_detects_a_changed_stream():
    """``validation/imaging_ablation.py`` compares a stack with itself with one effect neutralised:
    that holds only if the variant draws the same random numbers (up to the camera noise)."""
    import dataclasses

    import numpy as np
    from validation.imaging_ablation import EFFECTS, StreamRecorder, run

    from zincassay.simulate.imaging import ImagingParams, simulate_stack

    rows = run(SEED, 1, ["no_rounding", "even_light+dim_overloaded"], max_side=96, max_frames=40)
    assert [r["variant"] for r in rows] == ["as_drawn", "no_rounding", "even_light+dim_overloaded"]
    assert all(r["same_stream"] for r in rows)
    assert all(np.isfinite(r["rms_px"]) and set(r["phases"]) == {"baseline", "stimulus", "pyrithione", "tpen"}
               for r in rows)

    def simulated(p: ImagingParams) -> tuple[list, np.ndarray]:
        recorder = StreamRecorder(np.random.default_rng(5))
        stack = simulate_stack(recorder, p)[0]
        return recorder.states, stack

    # a stack with every effect on: each neutralised one draws the same numbers
    p = ImagingParams(shape=(48, 48), n_cells=3, rounding=0.1, shape_change=0.05, texture=0.1,
                      illumination_falloff=0.2, illumination_tilt=0.1, nucleus_ratio=0.8, n_detaching=1)
    drawn, stack = simulated(p)
    for name, (neutral, _) in EFFECTS.items():
        assert simulated(dataclasses.replace(p, **neutral(p)))[0] == drawn, name
    # rounding neutralised leaves the cells as they were; switched off, the draws after it change
    assert not np.array_equal(simulated(dataclasses.replace(p, rounding_applied=False))[1], stack)
    assert simulated(dataclasses.replace(p, rounding=0.0))[0] != drawn
    # an effect that is off stays off (a tiny value would switch it on and change the draws)
    off = dataclasses.replace(p, texture=0.0)
    assert simulated(dataclasses.replace(off, **EFFECTS["no_texture"][0](off)))[0] == simulated(off)[0]
