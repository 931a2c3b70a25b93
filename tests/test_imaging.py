"""Zinc imaging: reader, registration, traces, calibration and QC against simulator truth."""

from __future__ import annotations

import struct
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from scipy import ndimage as ndi
from tests.conftest import IMAGING_DATA

from zincassay.config import resolve_config
from zincassay.imaging.calibrate import estimate_bleaching, find_plateau, zinc_from_f
from zincassay.imaging.pipeline import analyse_stack as _analyse_stack
from zincassay.imaging.register import estimate_shifts, register_stack
from zincassay.imaging.saturation import frame_statistics, saturation_level
from zincassay.imaging.segment import grow_cells, segment_cells
from zincassay.imaging.settings import ImagingSettings
from zincassay.imaging.tables import cell_table, summary_row
from zincassay.imaging.traces import extract_traces, resampling_weights
from zincassay.io.stacks import ImagingError, read_stack
from zincassay.samplesheet import Sample
from zincassay.simulate import simulate_dataset
from zincassay.simulate.imaging import ImagingParams, simulate_stack


def _settings(**over) -> ImagingSettings:
    return ImagingSettings.from_config(resolve_config({"imaging": over})["imaging"])


def _sample(meta: dict) -> Sample:
    """A Sample from sheet-like fields (times may be numbers, numeric strings, '' or NaN)."""
    def sec(v):
        return None if v is None or (isinstance(v, str) and not v.strip()) or pd.isna(v) else float(v)

    times = {k: sec(meta.get(k)) for k in ("frame_interval_s", "stimulus_s", "pyrithione_s", "tpen_s")}
    labels = {k: str(meta.get(k, "")) for k in ("condition", "donor", "batch")}
    return Sample(str(meta["sample_id"]), **labels, **times)


def analyse_stack(path: str, settings: dict, meta: dict):
    """The pipeline with config overrides and sheet-like fields, as the workflow gives them."""
    return _analyse_stack(path, _settings(**settings), _sample(meta))


EVENTS = ("stimulus_s", "pyrithione_s", "tpen_s")


# ---------------------------------------------------------------- calibration maths


def test_zinc_from_f_inverts_the_probe_model():
    kd, fmin, fmax = 15.0, 100.0, 600.0
    zn = np.array([0.1, 1.0, 15.0, 100.0, 1000.0])
    F = fmin + (fmax - fmin) * zn / (zn + kd)
    assert zinc_from_f(F, fmin, fmax, kd) == pytest.approx(zn, rel=1e-9)
    assert np.isnan(zinc_from_f(np.array([600.0, 700.0]), fmin, fmax, kd)).all()  # no number at or above Fmax


def test_bleaching_rate_recovered_from_a_noiseless_baseline():
    t = np.arange(24) * 5.0
    F = np.outer(np.exp(-t / 2500), [100.0, 300.0, 50.0])
    assert estimate_bleaching(F, t, np.arange(24), np.array([80, 120, 60])) == pytest.approx(1 / 2500, rel=1e-6)
    assert estimate_bleaching(F, t, np.arange(2)) == 0.0  # too short to say


def test_plateaus_skip_the_rise_and_the_slow_chelation():
    t = np.arange(60) * 5.0
    trace = np.where(t < 50, 1.0, 5.0)  # rise at 50 s, flat
    trace = trace * np.where(t > 120, np.exp(-(t - 120) / 15) * 0.8 + 0.2, 1.0)  # TPEN-like fall to 0.2
    fmax = find_plateau(trace, t, np.arange(10, 24), 0.06, "first")
    fmin = find_plateau(trace, t, np.arange(24, 60), 0.06, "last")
    assert fmax[0] >= 10 and t[fmax[-1]] <= 125
    assert len(fmax) >= 5
    # the plateau starts only once the fall has flattened to within 2 % of the floor
    assert np.all(trace[fmin] / (5 * 0.2) < 1.02) and len(fmin) >= 3


def test_fmin_plateau_is_not_cut_short_by_a_noise_excursion():
    """A long Fmin tail with a bump of a few frames (noise in the median trace) keeps the whole
    tail; the fall before it stays out."""
    t = np.arange(150) * 2.0
    trace = 0.3 + 0.7 * np.exp(-np.maximum(t - 20, 0) / 8)  # TPEN at 20 s: floor reached by ~80 s
    trace[120:123] += 0.015  # a 5 % bump for 3 frames, 60 frames before the end
    fmin = find_plateau(trace, t, np.arange(150), 0.06, "last")
    assert fmin[-1] == 149 and fmin[0] < 100  # not cut at the bump
    assert np.all(trace[fmin] < 0.3 * 1.06)  # nor into the fall


# ---------------------------------------------------------------- traces


def test_resampling_weights_keep_mean_shift_and_constant_blur():
    for phi in np.linspace(0, 0.99, 12):
        w = resampling_weights(phi)
        taps = np.array([-1, 0, 1, 2])
        assert w.sum() == pytest.approx(1)
        assert (w >= 0).all()
        mean = (w * taps).sum()
        assert mean == pytest.approx(phi)
        assert (w * (taps - mean) ** 2).sum() == pytest.approx(0.25)


def test_cell_means_do_not_depend_on_subpixel_shifts():
    """A blob moved by fractions of a pixel must give the same cell mean (< 0.3 %); rounding the
    shift to whole pixels would change it by several percent."""
    yy, xx = np.mgrid[0:64, 0:64].astype(float)
    blob = lambda cy, cx: 1000.0 / (1 + np.exp((np.hypot(yy - cy, xx - cx) - 6) / 0.6)) + 100  # noqa: E731
    shifts = np.array([[0, 0], [0.3, 0], [0.5, -0.5], [0.7, 0.2], [-1.4, 2.6]])
    stack = np.stack([blob(30 + dy, 31 + dx) for dy, dx in shifts]).astype(np.float32)
    labels = (np.hypot(yy - 30, xx - 31) <= 5.5).astype(np.int32)
    tr = extract_traces(stack, labels, shifts, saturation_value=1e9)
    means = tr.mean[:, 0]
    assert np.ptp(means) / means.mean() < 0.003
    rounded = extract_traces(stack, labels, np.rint(shifts), saturation_value=1e9).mean[:, 0]
    assert np.ptp(rounded) / rounded.mean() > 0.01  # the case the resampling exists for


def test_trace_extraction_matches_a_per_cell_loop_and_counts_saturation():
    rng = np.random.default_rng(0)
    labels = np.zeros((40, 50), dtype=np.int32)
    labels[5:12, 5:14] = 1
    labels[20:30, 30:41] = 2
    labels[25:35, 5:9] = 3
    stack = rng.integers(0, 4096, size=(6, 40, 50)).astype(np.uint16)
    stack[2, 21, 31] = 4095
    tr = extract_traces(stack, labels, np.zeros((6, 2)), saturation_value=4095)
    # every frame is measured at the same blur: [1/8, 3/4, 1/8] along each axis when unshifted
    k = resampling_weights(0.0)[:3]
    blurred = ndi.correlate1d(ndi.correlate1d(stack.astype(float), k, axis=1, mode="nearest"), k, axis=2, mode="nearest")
    for c in (1, 2, 3):
        assert tr.mean[:, c - 1] == pytest.approx([blurred[t][labels == c].mean() for t in range(6)], rel=1e-6)
        assert list(tr.saturated[:, c - 1]) == [int((stack[t][labels == c] >= 4095).sum()) for t in range(6)]
    assert tr.saturated[2, 1] >= 1


@pytest.mark.parametrize("kernel", ["numba", "scipy_private", "public_product"])
def test_trace_extraction_at_subpixel_shifts_matches_the_definition_for_touching_cells(kernel, monkeypatch):
    """Each cell's mean is the frame resampled onto the reference grid (4 x 4 taps at the frame's
    phase) averaged over the cell: checked pixel by pixel against that definition, with touching
    cells (pixels that two cells' taps reach) and every way of computing the product."""
    from zincassay.imaging import traces

    if kernel == "numba":
        pytest.importorskip("numba")
    else:
        monkeypatch.setattr(traces, "USE_NUMBA", False)
    if kernel == "public_product":
        monkeypatch.setattr(traces, "_csr_matvec", None)
    rng = np.random.default_rng(3)
    labels = np.zeros((48, 56), dtype=np.int32)
    labels[10:20, 10:18] = 1
    labels[10:20, 18:25] = 2  # touches cell 1
    labels[30:38, 30:40] = 3
    T = 5
    stack = rng.integers(100, 3000, size=(T, 48, 56)).astype(np.uint16)
    shifts = np.array([[0, 0], [0.35, -0.6], [1.25, 2.05], [-2.4, 0.8], [0.95, -1.15]])  # phases on the 1/20 grid
    tr = traces.extract_traces(stack, labels, shifts, saturation_value=65535)
    taps = np.array(traces.TAPS)
    for t in range(T):
        n = np.floor(shifts[t]).astype(int)
        wy, wx = (resampling_weights(v) for v in shifts[t] - n)
        for c in (1, 2, 3):
            ys, xs = np.nonzero(labels == c)
            total = 0.0
            for i, oy in enumerate(taps):
                for j, ox in enumerate(taps):
                    yy = np.clip(ys + n[0] + oy, 0, 47)
                    xx = np.clip(xs + n[1] + ox, 0, 55)
                    total += wy[i] * wx[j] * stack[t][yy, xx].astype(float).sum()
            assert tr.mean[t, c - 1] == pytest.approx(total / len(ys), rel=1e-6)


@pytest.mark.parametrize(("dtype", "saturation"), [("uint16", 4095), ("uint8", 250), ("int32", 4095),
                                                  ("float32", 4095.0001)])
def test_compiled_trace_kernel_gives_the_same_traces_as_scipy(dtype, saturation, monkeypatch):
    """numba's frame loop and scipy's product give bit-identical traces: drift with sub-pixel and
    whole-pixel steps, a cell at the edge (clamped positions), touching cells, saturated pixels,
    an unmeasured frame, and pixel types summed in float32 and (int32) float64. For float32 pixels
    the threshold 4095.0001 is 4095 in float32, so pixels of 4095 are saturated, as numpy compares."""
    pytest.importorskip("numba")
    from zincassay.imaging import traces

    assert traces._numba_kernel() is not None
    rng = np.random.default_rng(5)
    h, w, T = 64, 72, 9
    yy, xx = np.mgrid[0:h, 0:w]
    labels = np.zeros((h, w), dtype=np.int32)
    labels[0:6, 20:28] = 1  # at the top edge
    labels[20:30, 10:18] = 2
    labels[20:30, 18:25] = 3  # touches cell 2
    labels[np.hypot(yy - 45, xx - 50) <= 6] = 4
    labels[np.hypot(yy - 12, xx - 60) <= 4] = 5
    top = 200 if dtype == "uint8" else 3000
    stack = rng.integers(10, top, size=(T, h, w)).astype(dtype)
    stack += (labels > 0).astype(dtype) * (top // 10)
    stack[2, 22:25, 12:15] = saturation if dtype != "float32" else 4095  # saturated patches
    stack[5, 44:47, 49:53] = 255 if dtype == "uint8" else 4095
    stack[6, 0:3, 21:24] = 255 if dtype == "uint8" else 4095
    shifts = np.array([[0, 0], [0.35, -0.6], [1.25, 2.05], [-2.4, 0.8], [0.95, -1.15], [3.1, -3.3],
                       [-0.45, 0.05], [0.35, -0.6], [-1.0, 1.0]])
    frames = np.ones(T, bool)
    frames[4] = False

    def run():
        return traces.extract_traces(stack, labels, shifts, saturation_value=saturation, frames=frames,
                                     background_margin_px=3)

    compiled = run()
    monkeypatch.setattr(traces, "USE_NUMBA", False)
    reference = run()
    assert compiled.saturated.sum() > 0 and compiled.saturated[[2, 5, 6]].min(axis=1).max() == 0  # not all cells
    assert compiled.saturated[2, 1] > 0 and compiled.saturated[6, 0] > 0
    assert np.isnan(compiled.mean[4]).all() and np.isfinite(compiled.mean[frames]).all()
    for field in ("mean", "saturated", "background", "local_background", "background_coef"):
        assert np.array_equal(getattr(compiled, field), getattr(reference, field), equal_nan=True), field
    assert compiled.mean.dtype == reference.mean.dtype


def test_trace_extraction_without_cells_still_measures_the_background():
    rng = np.random.default_rng(2)
    level = np.array([100.0, 150.0, 200.0])
    stack = rng.poisson(level[:, None, None], size=(3, 64, 64)).astype(np.uint16)
    tr = extract_traces(stack, np.zeros((64, 64), dtype=np.int32), np.zeros((3, 2)), saturation_value=65535)
    assert tr.mean.shape == (3, 0) and tr.saturated.shape == (3, 0) and tr.local_background.shape == (3, 0)
    assert np.abs(tr.background - level).max() < 2


def test_background_follows_the_level_and_ignores_a_speck():
    rng = np.random.default_rng(1)
    T, h, w = 8, 96, 96
    level = np.linspace(100, 300, T)  # e.g. extracellular probe after the ZnCl2 addition
    stack = rng.poisson(level[:, None, None], size=(T, h, w)).astype(np.uint16)
    labels = np.zeros((h, w), dtype=np.int32)
    labels[40:50, 40:50] = 1
    stack[:, 40:50, 40:50] += 2000
    stack[3:5, 10:16, 70:76] = 4000  # debris drifting through the cell-free region
    tr = extract_traces(stack, labels, np.zeros((T, 2)), saturation_value=65535)
    assert tr.n_background_px > 1000
    assert np.abs(tr.background - level).max() < 1.5  # sd of a single pixel is 10-17 counts
    # the speck alone would move a plain mean of the same pixels by several counts
    free = ~ndi.binary_dilation(labels > 0, iterations=6)
    assert stack[3][free].mean() - level[3] > 5


# ---------------------------------------------------------------- registration


def test_registration_recovers_drift_and_jolts():
    p = ImagingParams()
    stack, _, _, frames = simulate_stack(np.random.default_rng(5), p)
    est = estimate_shifts(stack)
    true = frames[["shift_y_px", "shift_x_px"]].to_numpy()
    assert np.abs(est - true).max() < 0.35
    assert np.sqrt(np.mean((est - true) ** 2)) < 0.15


# ---------------------------------------------------------------- accuracy against truth


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    out = tmp_path_factory.mktemp("imaging")
    sheet = simulate_dataset(out, seed=7, n_donors=2, n_events=2000, zincflow=False, cytokines=False)
    rows = pd.read_csv(sheet, sep="\t", dtype=str, keep_default_na=False)
    rows = rows[rows["assay"] == "imaging"]
    truth = pd.read_csv(out / "truth" / "imaging_cells.tsv", sep="\t")
    frames = pd.read_csv(out / "truth" / "imaging_frames.tsv", sep="\t")
    return out, rows, truth, frames


def _match(truth: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Each true cell's nearest segmented object within 5 px (one-to-one), in the reference frame
    (frame 0 + the registration reference's tiny drift)."""
    d = np.hypot(truth["y"].to_numpy()[:, None] - cells["centroid_y"].to_numpy()[None],
                 truth["x"].to_numpy()[:, None] - cells["centroid_x"].to_numpy()[None])
    j = d.argmin(axis=1)
    ok = d.min(axis=1) <= 5
    counts = np.bincount(j[ok], minlength=len(cells))
    ok &= counts[j] == 1  # a merged object counts for nobody
    out = truth.reset_index(drop=True).copy()
    out["found"] = ok
    for col in ("baseline_zn_nM", "peak_zn_nM", "qc_pass", "qc_reason", "responder"):
        out[f"m_{col}"] = cells[col].to_numpy()[j]
    return out


def _analyse(base: Path, row: pd.Series, blank_events: bool = False):
    meta = row.to_dict()
    if blank_events:
        meta.update(dict.fromkeys(EVENTS, ""))
    r = analyse_stack(str(base / row["file"]), {}, meta)
    return r, cell_table(r, _sample(meta)), summary_row(r, _sample(meta))


def test_calibrated_zinc_matches_truth(experiment):
    """Per stack: median baseline within 15 % and median peak within 10 % of the same cells' truth.

    The bars are a rate (issue #15: in >= 90 % of stacks; validation/imaging_sweep.py measures 90 %
    and 92 % over 60 stacks), so of these six stacks at most one may miss a bar, and none by more
    than half the bar again (a broken calibration misses every stack, by far more). Over seeds 7-9
    (18 stacks) the misses are deficient stacks (baseline ~0.45 nM, f ~ 0.03), read 15-20 % high.
    """
    base, rows, truth, _ = experiment
    matched, misses = [], []
    for _, row in rows.iterrows():
        _, cells, summary = _analyse(base, row)
        m = _match(truth[truth["sample_id"] == row["sample_id"]], cells)
        m["sample_id"] = row["sample_id"]
        use = m["found"] & m["m_qc_pass"]
        assert use.sum() >= 8, row["sample_id"]
        # medians over QC-passing cells, measured vs the same cells' truth
        b_err = np.median(m.loc[use, "m_baseline_zn_nM"]) / np.median(m.loc[use, "baseline_zn_nM"]) - 1
        p_err = np.median(m.loc[use, "m_peak_zn_nM"]) / np.median(m.loc[use, "peak_zn_nM"]) - 1
        assert abs(b_err) <= 1.5 * 0.15 and abs(p_err) <= 1.5 * 0.10, (row["sample_id"], b_err, p_err)
        if abs(b_err) > 0.15 or abs(p_err) > 0.10:
            misses.append((row["sample_id"], round(b_err, 3), round(p_err, 3)))
        assert summary["n_pass"].iloc[0] == cells["qc_pass"].sum()
        matched.append(m)
    assert len(misses) <= 1, misses
    m = pd.concat(matched)
    attached = ~m["detaches"]
    assert m.loc[attached, "found"].mean() >= 0.90
    sat = m[m["saturates"] & m["found"]]
    assert len(sat) >= 4 and sat["m_qc_reason"].str.contains("saturated").mean() >= 0.95
    det = m[m["detaches"] & m["found"]]
    assert len(det) >= 4 and det["m_qc_reason"].str.contains("detached").all()
    ok = m["found"] & m["m_qc_pass"]
    assert (m.loc[ok, "m_responder"] == m.loc[ok, "responder"]).mean() >= 0.85


def test_conditions_rank_as_simulated(experiment):
    base, rows, _, _ = experiment
    med = {}
    for _, row in rows.iterrows():
        _, _, s = _analyse(base, row)
        med[row["sample_id"]] = s["median_baseline_zn_nM"].iloc[0]
    for donor in ("D1", "D2"):
        assert med[f"zinc_{donor}_def"] < med[f"zinc_{donor}_rep"] < med[f"zinc_{donor}_sup"]


def test_blank_event_times_are_detected_within_two_frames(experiment):
    base, rows, _, _ = experiment
    for _, row in rows.iterrows():
        r, _, s = _analyse(base, row, blank_events=True)
        for k in EVENTS:
            assert abs(getattr(r.events, k) - float(row[k])) <= 2 * 5.0, (row["sample_id"], k)
        assert set(s["events_detected"].iloc[0].split(",")) == {f"{k}:jolt" for k in EVENTS}


def test_pyrithione_found_from_the_trace_without_jolts(tmp_path):
    p = ImagingParams(jolt_px=0.0)
    stack, *_ = simulate_stack(np.random.default_rng(3), p)
    path = tmp_path / "nojolt.tif"
    tifffile.imwrite(path, stack, imagej=True, metadata={"axes": "TYX", "finterval": p.frame_interval_s})
    r = analyse_stack(str(path), {}, {"sample_id": "x", "stimulus_s": str(p.stimulus_s)})
    assert abs(r.events.pyrithione_s - p.pyrithione_s) <= 2 * p.frame_interval_s
    assert r.events.source == {"stimulus_s": "sheet", "pyrithione_s": "trace", "tpen_s": "trace"}
    # without a jolt TPEN reads late (the probe stays saturated until zinc nears Kd), never early
    assert p.tpen_s <= r.events.tpen_s <= p.tpen_s + 60


def test_bleaching_estimated_and_reported(experiment):
    base, rows, _, _ = experiment
    p = ImagingParams()
    t_end = (p.n_frames - 1) * p.frame_interval_s
    truth_pct = 100 * (1 - np.exp(-t_end / p.bleach_tau_s))
    got = [_analyse(base, row)[2]["bleaching_pct"].iloc[0] for _, row in rows.iterrows()]
    assert np.abs(np.array(got) - truth_pct).max() < 3.0
    # switching the correction off is reported and biases early [Zn] upwards (the known pitfall)
    row = rows.iloc[0]
    meta = row.to_dict()
    on = summary_row(analyse_stack(str(base / row["file"]), {}, meta), _sample(meta))
    off = summary_row(analyse_stack(str(base / row["file"]), {"bleach_correction": False}, meta), _sample(meta))
    assert "bleaching_uncorrected" in off["sample_flags"].iloc[0]
    assert off["median_baseline_zn_nM"].iloc[0] > 1.2 * on["median_baseline_zn_nM"].iloc[0]


# ---------------------------------------------------------------- reading


def test_imagej_metadata_read(tmp_path):
    data = np.zeros((5, 32, 40), dtype=np.uint16)
    path = tmp_path / "ij.tif"
    tifffile.imwrite(path, data, imagej=True, resolution=(1 / 0.5, 1 / 0.5),
                     metadata={"axes": "TYX", "finterval": 2.5, "unit": "um", "Info": "camera_bit_depth=14"})
    s = read_stack(path)
    assert s.data.shape == (5, 32, 40)
    assert s.frame_interval_s == 2.5 and s.pixel_size_um == pytest.approx(0.5) and s.bit_depth == 14


def test_ome_tiff_with_channels(tmp_path):
    data = np.arange(4 * 2 * 20 * 24, dtype=np.uint16).reshape(4, 2, 20, 24)
    path = tmp_path / "x.ome.tif"
    tifffile.imwrite(path, data, ome=True, metadata={
        "axes": "TCYX", "TimeIncrement": 3.0, "TimeIncrementUnit": "s", "PhysicalSizeX": 0.4,
        "Channel": {"Name": ["DAPI", "FluoZin-3"]}})
    with pytest.raises(ImagingError, match=r"imaging\.channel"):
        read_stack(path)
    s = read_stack(path, channel="FluoZin-3")
    assert np.array_equal(s.data, data[:, 1])
    assert s.frame_interval_s == 3.0 and s.pixel_size_um == pytest.approx(0.4)
    assert np.array_equal(read_stack(path, channel=0).data, data[:, 0])
    with pytest.raises(ImagingError, match="no channel named"):
        read_stack(path, channel="GFP")


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_other_pixel_types(tmp_path, dtype):
    path = tmp_path / "s.tif"
    tifffile.imwrite(path, (np.random.default_rng(0).random((3, 20, 20)) * 200).astype(dtype), photometric="minisblack")
    s = read_stack(path)
    assert s.data.dtype == dtype and s.data.shape == (3, 20, 20) and s.frame_interval_s is None


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: tifffile.imwrite(p, np.zeros((20, 20), np.uint16)), "single frame"),
    (lambda p: tifffile.imwrite(p, np.zeros((4, 3, 20, 20), np.uint16), imagej=True, metadata={"axes": "TZYX"}),
     "z-planes"),
    (lambda p: p.write_bytes(b"II*\x00garbage" * 10), "not a readable TIFF|no image data"),
    (lambda p: tifffile.imwrite(p, np.zeros((5, 8, 8), np.uint16)), "too small"),
])
def test_bad_stacks_give_one_clear_message(tmp_path, make, message):
    path = tmp_path / "bad.tif"
    make(path)
    with pytest.raises(ImagingError, match=message) as exc:
        read_stack(path)
    assert str(path) in str(exc.value)


def test_vendor_format_names_the_extra(tmp_path, monkeypatch):
    for module, suffix, extra in (("nd2", ".nd2", "nd2"), ("czifile", ".czi", "czi"), ("readlif.reader", ".lif", "lif")):
        monkeypatch.setitem(sys.modules, module, None)  # as if the extra were not installed
        path = tmp_path / f"x{suffix}"
        path.write_bytes(b"\0" * 100)
        with pytest.raises(ImagingError, match=rf"pip install 'zincassay\[{extra}\]'"):
            read_stack(path)


def test_missing_frame_interval_and_short_stack(tmp_path):
    p = ImagingParams(n_frames=30)
    stack, *_ = simulate_stack(np.random.default_rng(1), ImagingParams())
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, stack)  # no metadata
    with pytest.raises(ImagingError, match="frame_interval_s"):
        analyse_stack(str(path), {}, {"sample_id": "x"})
    tifffile.imwrite(path, stack[: p.n_frames])
    with pytest.raises(ImagingError, match=r"ends at 145 s \(30 frames.*pyrithione_s = 240 s.*truncated"):
        analyse_stack(str(path), {}, {"sample_id": "x", "frame_interval_s": "5", "stimulus_s": "120",
                                      "pyrithione_s": "240", "tpen_s": "300"})


# ---------------------------------------------------------------- real images (skip without ../shared)


def _imagej_rect_rois(path: Path) -> list[tuple[int, int, int, int]]:
    """(top, left, bottom, right) of the rectangle ROIs of an ImageJ RoiSet.zip, in the set's order
    (ImageJ .roi header: magic 'Iout', version, type byte 6 = 1 for a rectangle, then the bounds)."""
    out = []
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            b = z.read(name)
            assert b[:4] == b"Iout" and b[6] == 1, name
            out.append(struct.unpack(">hhhh", b[8:16]))
    return out


@pytest.fixture
def imaging_data() -> Path:
    if not IMAGING_DATA.is_dir():
        pytest.skip("../shared/data/imaging is absent")
    return IMAGING_DATA


def test_real_frame_folders_read_and_segment(imaging_data):
    gc = read_stack(imaging_data / "gcamp_slice")
    assert gc.data.shape == (3, 1040, 1392) and gc.bit_depth == 8
    seg = segment_cells(gc.data[0], (300, 8000))
    assert seg.n > 10
    # segmented objects are brighter than the image around them
    flat = gc.data[0].astype(float)
    inside = ndi.mean(flat, seg.labels, np.arange(1, seg.n + 1))
    ring = ndi.mean(flat, ndi.grey_dilation(seg.labels, size=15) * (seg.labels == 0), np.arange(1, seg.n + 1))
    assert np.nanmedian(inside / ring) > 1.04
    with pytest.raises(ImagingError, match=r"imaging\.channel"):
        read_stack(imaging_data / "histone_gfp_sequence")  # RGB frames: the channel must be chosen
    hist = read_stack(imaging_data / "histone_gfp_sequence", channel=1)
    assert hist.data.shape == (21, 264, 542)
    nuclei = segment_cells(hist.data[0], (25, 5000))
    assert nuclei.n > 20


def test_gcamp_pixels_match_imagej_measurements(imaging_data):
    """Our reader gives ImageJ's numbers: the mean of each of the author's 10 ROIs in the first frame
    equals row 1 of the author's ImageJ Multi Measure table (3 decimals), so pixel values, frame order
    and orientation are right. (The ROIs were drawn on activity during the drug window, not on
    brightness, so they are not a segmentation target.)"""
    gc = read_stack(imaging_data / "gcamp_slice")
    rows = (imaging_data / "gcamp_slice" / "Results.xls").read_text().splitlines()
    first = [float(v) for v in rows[1].split("\t")[1:]]
    rois = _imagej_rect_rois(imaging_data / "gcamp_slice" / "RoiSet.zip")
    assert len(rois) == len(first) == 10
    frame = np.asarray(gc.data[0], dtype=np.float64)
    means = [frame[top:bottom, left:right].mean() for top, left, bottom, right in rois]
    np.testing.assert_allclose(means, first, atol=0.0006)


# ---------------------------------------------------------------- camera clipping level


def _write(path: Path, stack: np.ndarray, interval: float | None = 5.0, **kw) -> Path:
    if interval is None:
        tifffile.imwrite(path, stack, photometric="minisblack", **kw)
    else:
        tifffile.imwrite(path, stack, imagej=True, metadata={"axes": "TYX", "finterval": interval}, **kw)
    return path


def _match_reasons(truth: pd.DataFrame, r) -> pd.DataFrame:
    cells = cell_table(r, _sample({"sample_id": "x"}))
    d = np.hypot(truth["y"].to_numpy()[:, None] - cells["centroid_y"].to_numpy()[None],
                 truth["x"].to_numpy()[:, None] - cells["centroid_x"].to_numpy()[None])
    out = truth.copy()
    out["found"] = d.min(axis=1) <= 0.5 * truth["radius_px"] + 2
    out["reason"] = cells["qc_reason"].to_numpy()[d.argmin(axis=1)]
    return out


@pytest.mark.parametrize("bits", [12, 14])
def test_clipping_level_detected_in_uint16_without_tags(tmp_path, bits):
    """12- and 14-bit cameras in 16-bit files with no bit-depth tag: the pile-up at 2^k - 1 gives
    the clipping level, recorded as detected, and the cells that reach it are flagged."""
    p = ImagingParams(bit_depth=bits, fmin_per_load=40.0 * 2 ** (bits - 12), n_overloaded=3)
    stack, truth, _, _ = simulate_stack(np.random.default_rng(bits), p)
    path = _write(tmp_path / "s.tif", stack)  # ImageJ TIFF with the frame interval, no bit depth
    r = analyse_stack(str(path), {}, {"sample_id": "x", **{k: getattr(p, k) for k in EVENTS}})
    assert (r.saturation_value, r.saturation_source) == (2**bits - 1, "detected")
    assert summary_row(r, _sample({"sample_id": "x"}))["saturation_source"].iloc[0] == "detected"
    m = _match_reasons(truth, r)
    sat = m[m["saturates"] & m["found"]]
    assert len(sat) >= 3 and sat["reason"].str.contains("saturated").all()


def test_saturation_level_sources():
    rng = np.random.default_rng(0)
    data = rng.integers(100, 3000, size=(6, 40, 40)).astype(np.uint16)
    assert saturation_level(frame_statistics(data), data.dtype) == (65535.0, "pixel type")
    assert saturation_level(frame_statistics(data), data.dtype, bit_depth_metadata=12) == (4095.0, "metadata")
    assert saturation_level(frame_statistics(data), data.dtype, bit_depth_metadata=12,
                            bit_depth_setting=14) == (16383.0, "config")
    data[3, 10:14, 10:14] = 4095  # a 12-bit camera clipping, while the metadata claim 16 bit
    assert saturation_level(frame_statistics(data), data.dtype, bit_depth_metadata=16) == (4095.0, "detected")
    odd = data.copy()
    odd[3, 10:16, 10:16] = 3995  # software that subtracted an offset of 100 before saving
    odd[odd > 3995] = 3995
    assert saturation_level(frame_statistics(odd), odd.dtype) == (3995.0, "detected")
    flt = data.astype(np.float32)
    assert saturation_level(frame_statistics(flt), flt.dtype) == (float("inf"), "none (float data)")  # not its max
    assert saturation_level(frame_statistics(flt), flt.dtype, bit_depth_setting=12) == (4095.0, "config")


def test_float_stack_uses_no_data_maximum(tmp_path):
    p = ImagingParams(n_overloaded=0)
    stack, *_ = simulate_stack(np.random.default_rng(11), p)
    path = _write(tmp_path / "f.tif", stack.astype(np.float32))
    meta = {"sample_id": "x", **{k: getattr(p, k) for k in EVENTS}}
    r = analyse_stack(str(path), {}, meta)
    assert r.saturation_source == "none (float data)" and np.isinf(r.saturation_value)
    assert not any("saturated" in q for q in r.calibration.qc_reason)
    r12 = analyse_stack(str(path), {"bit_depth": 12}, meta)
    assert (r12.saturation_value, r12.saturation_source) == (4095.0, "config")


def test_nan_in_float_stack_is_one_clear_line(tmp_path):
    stack, *_ = simulate_stack(np.random.default_rng(2), ImagingParams())
    bad = stack.astype(np.float32)
    bad[7, 3:5, 3:9] = np.nan
    path = _write(tmp_path / "nan.tif", bad)
    with pytest.raises(ImagingError, match=r"frame 7 holds 12 NaN or infinite") as exc:
        analyse_stack(str(path), {}, {"sample_id": "x"})
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_truncated_stack_says_truncated(tmp_path):
    stack, *_ = simulate_stack(np.random.default_rng(2), ImagingParams())
    for kw in ({"imagej": True, "metadata": {"axes": "TYX", "finterval": 5.0}}, {"ome": True}):
        path = tmp_path / "cut.tif"
        tifffile.imwrite(path, stack, **kw)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
        with pytest.raises(ImagingError, match="truncated"):
            read_stack(path)


# ---------------------------------------------------------------- registration through the calibration


def test_registration_survives_drift_jolts_saturation_and_detachment():
    """Drift of 30 px over the recording, a 10-px jolt at every addition, saturating, detaching
    and rounding cells: every frame within 0.5 px RMS; a blank frame is flagged, not shifted."""
    p = ImagingParams(shape=(150, 190), n_frames=110, n_cells=22, drift_px=30.0, jitter_px=0.02,
                      jolts_px=(10.0, 10.0, 10.0), n_overloaded=4, overload=(1.5, 3.0), n_detaching=4,
                      detach_after_s=(10.0, 60.0), detach_speed_px_per_s=1.0, rounding=0.15, dome=0.3,
                      illumination_falloff=0.3, tpen_s=330.0)
    stack, _, _, frames = simulate_stack(np.random.default_rng(8), p)
    stack[60] = np.random.default_rng(0).poisson(120, stack.shape[1:])  # shutter closed
    reg = register_stack(stack)
    true = frames[["shift_y_px", "shift_x_px"]].to_numpy()
    ok = reg.registered
    assert not ok[60] and ok.sum() == p.n_frames - 1
    assert np.abs(reg.shifts[60] - reg.shifts[59]).max() == 0  # held, not wild
    diff = reg.shifts[ok] - true[ok]
    err = np.hypot(*(diff - np.median(diff, axis=0)).T)  # the reference (first frames) vs frame 0
    assert np.sqrt(np.mean(err**2)) <= 0.5
    assert reg.confidence[ok].min() > 0 and reg.confidence[60] == 0


def test_cells_grow_over_where_they_extended_at_baseline_and_no_further():
    """A cell that rounded up (radius 9 px at Fmax, 11 px at baseline) takes the ring it covered at
    baseline; its neighbour keeps its own pixels; an empty field beyond half a radius and a cell
    absent at baseline take nothing."""
    yy, xx = np.mgrid[0:80, 0:120]
    labels = np.zeros((80, 120), np.int32)
    labels[np.hypot(yy - 40, xx - 35) <= 9] = 1
    labels[np.hypot(yy - 40, xx - 62) <= 9] = 2  # 27 px away: the baseline cell 1 reaches 3 px short
    labels[np.hypot(yy - 40, xx - 100) <= 9] = 3  # not loaded at baseline
    rng = np.random.default_rng(0)
    before = 100 + 400 * (np.hypot(yy - 40, xx - 35) <= 11) + 400 * (np.hypot(yy - 40, xx - 62) <= 9)
    before = before + rng.normal(0, 5, before.shape)
    grown = grow_cells(before, labels, radius_px=9.0)
    ring = (np.hypot(yy - 40, xx - 35) <= 10.5) & (labels == 0)
    assert (grown[ring] == 1).mean() > 0.95
    assert (grown[labels > 0] == labels[labels > 0]).all()
    # where the cell was at baseline (11 px, blurred by a pixel), not up to the half-radius cap (13.5 px)
    assert not (grown[np.hypot(yy - 40, xx - 35) > 12.5] == 1).any()
    assert (grown == 3).sum() == (labels == 3).sum() and (grown == 2).sum() <= (labels == 2).sum() * 1.3


def test_registration_without_cells_does_not_fail():
    """A field with nothing in it (no cell in the reference): registration still runs (by
    correlation) and places every frame; the cells' extents stage has nothing to add."""
    stack = np.random.default_rng(0).poisson(100, (6, 96, 96)).astype(np.uint16)
    reg = register_stack(stack, cell_radius_px=6)
    assert reg.n_cells == 0 and reg.shifts.shape == (6, 2) and np.isfinite(reg.shifts).all()


def test_registration_follows_cells_extents_not_their_light():
    """A few large cells that round up at pyrithione (nucleus and granules moving with the
    profile) and one over-loaded cell that saturates: their light moves with respect to the dish,
    their outlines' centres do not. Six stacks: each within the issue's 0.5 px RMS, the median
    within 0.1 px (registering on the light alone gave 0.25-1.2 px, median 0.54)."""
    p = ImagingParams(shape=(220, 260), n_frames=90, n_cells=7, radius_px=(20.0, 26.0), aspect=(1.0, 1.4),
                      rounding=0.15, nucleus_ratio=0.7, texture=0.15, n_overloaded=1, overload=(2.0, 3.0),
                      drift_px=12.0, jolts_px=(3.0, 3.0, 3.0), illumination_falloff=0.3, min_separation=1.3,
                      tpen_s=330.0)
    rms = []
    for seed in range(6):
        stack, _, _, frames = simulate_stack(np.random.default_rng(seed), p)
        reg = register_stack(stack)
        assert reg.registered.all()
        diff = reg.shifts - frames[["shift_y_px", "shift_x_px"]].to_numpy()
        err = np.hypot(*(diff - np.median(diff, axis=0)).T)  # the reference (first frames) vs frame 0
        rms.append(float(np.sqrt(np.mean(err**2))))
    assert max(rms) <= 0.5 and np.median(rms) <= 0.1, rms


# ---------------------------------------------------------------- events from the signal


def _analyse_sim(tmp_path: Path, p: ImagingParams, seed: int, cfg: dict | None = None, **meta):
    stack, truth, _, _ = simulate_stack(np.random.default_rng(seed), p)
    path = _write(tmp_path / f"s{seed}.tif", stack, p.frame_interval_s)
    return analyse_stack(str(path), cfg or {}, {"sample_id": "x", **dict.fromkeys(EVENTS, ""), **meta}), truth


def test_blank_stimulus_found_from_the_response_without_a_jolt(tmp_path):
    p = ImagingParams(jolts_px=(0.0, 3.0, 3.0))
    for seed in (1, 2):
        r, _ = _analyse_sim(tmp_path, p, seed)
        assert r.events.source["stimulus_s"] == "trace"
        assert abs(r.events.stimulus_s - p.stimulus_s) <= 2 * p.frame_interval_s


def test_stimulus_without_response_or_jolt_is_flagged_not_refused(tmp_path):
    p = ImagingParams(jolts_px=(0.0, 3.0, 3.0), responder_fraction=0.0, rise_zn_nM=0.0)
    r, _ = _analyse_sim(tmp_path, p, 3)
    assert r.events.source["stimulus_s"] == "not found" and not r.events.stimulus_found
    assert "stimulus_not_found" in r.calibration.sample_flags
    assert np.isnan(r.calibration.peak_zn_nM).all() and np.isfinite(r.calibration.baseline_zn_nM).any()
    s = summary_row(r, _sample({"sample_id": "x"}))
    assert "stimulus_s:not found" in s["events_detected"].iloc[0]


def test_stack_without_pyrithione_says_so(tmp_path):
    p = ImagingParams(pyrithione_s=1e6, tpen_s=2e6)  # baseline and stimulus only
    with pytest.raises(ImagingError, match=r"pyrithione \+ ZnCl2 .*is missing"):
        _analyse_sim(tmp_path, p, 4)
    flat = ImagingParams(pyrithione_s=1e6, tpen_s=2e6, responder_fraction=0.0, rise_zn_nM=0.0)
    with pytest.raises(ImagingError, match=r"no pyrithione \+ ZnCl2 rise found"):
        _analyse_sim(tmp_path, flat, 5)
    no_tpen = ImagingParams(tpen_s=1e6)
    with pytest.raises(ImagingError, match="no TPEN fall found after the pyrithione"):
        _analyse_sim(tmp_path, no_tpen, 6)


# ---------------------------------------------------------------- immune-cell sizes


def test_resting_lymphocytes_pass_the_default_size_prior(tmp_path):
    """Mouse T cells 4.5-7 µm across at 0.325 µm/px (round: sphere-projected profile): none is
    too small, and the segmented area covers the cell (within 25 % of its true area)."""
    p = ImagingParams(shape=(192, 192), n_cells=24, pixel_size_um=0.325, radius_px=(6.9, 10.8), dome=0.5,
                      edge_px=0.8, n_overloaded=2, n_detaching=0)
    r, truth = _analyse_sim(tmp_path, p, 9, stimulus_s=p.stimulus_s, pyrithione_s=p.pyrithione_s, tpen_s=p.tpen_s)
    cells = cell_table(r, _sample({"sample_id": "x"}))
    d = np.hypot(truth["y"].to_numpy()[:, None] - cells["centroid_y"].to_numpy()[None],
                 truth["x"].to_numpy()[:, None] - cells["centroid_x"].to_numpy()[None])
    j = d.argmin(axis=1)
    found = d.min(axis=1) <= 4
    assert found.mean() >= 0.9
    reasons = cells["qc_reason"].to_numpy()[j[found]]
    assert not any("too_small" in q for q in reasons)
    ratio = cells["area_px"].to_numpy()[j[found]] / (np.pi * truth["radius_px"].to_numpy()[found] ** 2)
    assert np.median(ratio) == pytest.approx(1.0, abs=0.25)
