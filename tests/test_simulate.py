"""Simulator invariants: determinism, truth bookkeeping, physics of the imaging model."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import tifffile

from zincassay.cfse.indices import INDEX_NAMES, division_indices
from zincassay.init_sheet import draft_sample_sheet
from zincassay.io.fcs import read_fcs
from zincassay.simulate import simulate_dataset
from zincassay.simulate.cfse import CFSEParams, simulate_cfse_events, write_cfse_sample
from zincassay.simulate.imaging import ImagingParams, simulate_stack, zinc_trace


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    simulate_dataset(out, seed=3, n_donors=1, n_events=4000, cytokines=False)
    return out


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_deterministic_for_a_seed(dataset, tmp_path):
    simulate_dataset(tmp_path, seed=3, n_donors=1, n_events=4000, cytokines=False)
    assert _digest(tmp_path) == _digest(dataset)


def test_each_assay_draws_from_its_own_stream(dataset, tmp_path):
    """Leaving zinc by flow out changes no CFSE or imaging byte (the example's files stay as they are)."""
    simulate_dataset(tmp_path, seed=3, n_donors=1, n_events=4000, zincflow=False)
    for sub in ("cfse", "imaging"):
        assert _digest(tmp_path / sub) == _digest(dataset / sub), sub
    assert not (tmp_path / "zincflow").exists()
    sheet = pd.read_csv(dataset / "samples.tsv", sep="\t", dtype=str, keep_default_na=False)
    zf = sheet[sheet["assay"] == "zincflow"]
    assert sorted(zf["role"]) == ["fmax"] * 3 + ["fmin"] * 3 + ["sample"] * 4 + ["unstained"]
    assert list(zf.loc[zf["kinetic"] == "yes", "sample_id"]) == ["zf_D1_rep_kinetic"]
    truth = pd.read_csv(dataset / "truth" / "zincflow_truth.tsv", sep="\t")
    zn = truth[truth["subset"] == "CD3+"].set_index("condition")["zn_nM"]
    assert zn["supplemented"] > zn["replete"] > zn["deficient"]


def test_cytokines_are_deterministic_and_leave_the_other_files_alone(dataset, tmp_path):
    """The cytokine part draws from its own stream: the CFSE and imaging files are those without it."""
    for k in (1, 2):
        simulate_dataset(tmp_path / f"run{k}", seed=3, n_donors=1, n_events=4000, zincflow=False)
    assert _digest(tmp_path / "run1") == _digest(tmp_path / "run2")
    for sub in ("cfse", "imaging"):
        assert _digest(tmp_path / "run1" / sub) == _digest(dataset / sub)
    sheet = pd.read_csv(tmp_path / "run1" / "samples.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert set(sheet["assay"]) == {"cfse", "imaging", "beadplex", "elisa"}
    assert len(list((tmp_path / "run1" / "beadplex").glob("*.fcs"))) == 16 + 13


def test_generation_counts_sum_to_live_singlets_written(tmp_path):
    rng = np.random.default_rng(4)
    truth = write_cfse_sample(tmp_path / "s.fcs", rng, CFSEParams(n_events=5000))
    d = read_fcs(tmp_path / "s.fcs")
    assert d.n_events == 5000
    assert truth["cells"].sum() == truth["kinds"]["live"]
    assert sum(truth["kinds"].values()) == d.n_events
    assert truth["indices"] == division_indices(truth["cells"])


def test_truth_indices_follow_formulas(dataset):
    gens = pd.read_csv(dataset / "truth" / "cfse_generations.tsv", sep="\t")
    idx = pd.read_csv(dataset / "truth" / "cfse_indices.tsv", sep="\t").set_index("sample_id")
    for sid, g in gens.groupby("sample_id"):
        n = g.sort_values("generation")["cells"].to_numpy()
        p = (n / 2.0 ** np.arange(n.size)) / (n / 2.0 ** np.arange(n.size)).sum()
        assert idx.loc[sid, "pct_divided"] == pytest.approx(100 * (1 - p[0]), rel=1e-5)
        assert idx.loc[sid, "division_index"] == pytest.approx((np.arange(n.size) * p).sum(), rel=1e-5)
        assert idx.loc[sid, "expansion_index"] == pytest.approx(n.sum() / (n / 2.0 ** np.arange(n.size)).sum(), rel=1e-5)
        assert set(INDEX_NAMES) <= set(idx.columns)


def test_dye_halves_per_generation():
    rng = np.random.default_rng(0)
    p = CFSEParams(n_events=20000, frac_debris=0, frac_dead=0, frac_doublet=0, af_median=1e-3, noise_sd=0,
                   spill={"FITC->PE": 0.0, "PE->FITC": 0.0}, peak_ratio=1.85)
    ev, _kind, gen = simulate_cfse_events(rng, p)
    med = [np.median(np.log10(ev[gen == g, 3])) for g in range(4)]
    np.testing.assert_allclose(np.diff(med), -np.log10(1.85), atol=0.01)


def test_conditions_order_division(dataset):
    idx = pd.read_csv(dataset / "truth" / "cfse_indices.tsv", sep="\t").set_index("condition")
    assert idx.loc["deficient", "division_index"] < idx.loc["replete", "division_index"] < idx.loc["supplemented", "division_index"]


def test_imaging_fmax_plateau_mean_equals_load_fmax():
    p = ImagingParams(n_cells=8, n_overloaded=0, n_detaching=0, drift_px_per_frame=(0, 0), jolt_px=0, bleach_tau_s=1e12)
    stack, cells, _traces, frames = simulate_stack(np.random.default_rng(1), p)
    t = frames["time_s"].to_numpy()
    window = (t > p.pyrithione_s + 30) & (t < p.tpen_s)
    yy, xx = np.mgrid[0 : p.shape[0], 0 : p.shape[1]]
    for c in cells.itertuples():
        inner = np.hypot(yy - c.y, xx - c.x) < c.radius_px - 2.5
        mean = stack[window][:, inner].mean() - frames["background"][window].mean()
        assert mean == pytest.approx(c.fmax, rel=0.03)


def test_imaging_stack_metadata_and_truth(dataset):
    stacks = sorted((dataset / "imaging").glob("*.tif"))
    assert stacks
    with tifffile.TiffFile(stacks[0]) as tif:
        assert tif.imagej_metadata["finterval"] == 5.0
        arr = tif.asarray()
    assert arr.dtype == np.uint16 and arr.ndim == 3 and arr.max() <= 4095
    cells = pd.read_csv(dataset / "truth" / "imaging_cells.tsv", sep="\t")
    assert cells["saturates"].sum() >= 1 and cells["detaches"].sum() >= 1
    assert (cells["peak_zn_nM"] >= cells["baseline_zn_nM"]).all()


def test_zinc_trace_protocol():
    p = ImagingParams()
    t = np.arange(p.n_frames) * p.frame_interval_s
    zn = zinc_trace(t, p, baseline=1.0, rise=4.0)
    assert zn[t < p.stimulus_s] == pytest.approx(1.0)
    assert zn[(t > p.pyrithione_s + 40) & (t < p.tpen_s)].min() > 1000 * p.kd_nM  # saturating
    assert zn[t > p.tpen_s + 80].max() < 0.01 * p.kd_nM  # chelated


def test_init_drafts_the_sheet(dataset, tmp_path):
    sheet, unfilled = draft_sample_sheet(dataset, tmp_path / "samples.tsv")
    truth = pd.read_csv(dataset / "samples.tsv", sep="\t", dtype=str, keep_default_na=False)
    merged = sheet.merge(truth, left_on=sheet["file"].str.rsplit("/", n=1).str[-1],
                         right_on=truth["file"].str.rsplit("/", n=1).str[-1], suffixes=("", "_truth"))
    assert len(merged) == len(truth)
    for col in ("assay", "role", "donor", "batch", "condition"):
        assert (merged[col] == merged[f"{col}_truth"]).all(), col
    assert (merged.loc[merged["assay"] == "imaging", "frame_interval_s"] == "5").all()
    zf = merged[merged["assay"] == "zincflow"]  # tubes found by their tokens (zf, fmin, fmax, kinetic)
    assert len(zf) == 11 and (zf["kinetic"] == zf["kinetic_truth"]).all()
    assert any("stimulus_s" in u for u in unfilled)
