"""The generation fit: global search, fit options, bounds, the realistic pre-gated CTV file, figures.

Truth from the simulator. Bars: positions of generation 0 within 0.03 decades and peak ratio
within 0.06 of the truth; pct_divided within 2 points and division_index within 5 %.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from zincassay.cfse.deconvolve import ParentPeak, fit_generations
from zincassay.cfse.figures import fit_figure
from zincassay.cfse.pipeline import analyse_sample, load_gated, summarise_control
from zincassay.cfse.settings import CFSESettings
from zincassay.cfse.tables import indices_table
from zincassay.config import resolve_config
from zincassay.errors import ValidationError, ZincassayError
from zincassay.samplesheet import Sample
from zincassay.simulate.cfse import CFSEParams, write_cfse_sample


def _cfg(**over):
    fit = over.pop("fit", {})
    return CFSESettings.from_config(resolve_config({"cfse": {"viability_channel": "LiveDead", "bootstrap_replicates": 0,
                                                             "fit": fit, **over}})["cfse"])


def _simulate(tmp_path, params: CFSEParams, seed: int, unstained: bool = True):
    rng = np.random.default_rng(seed)
    ctrl = replace(params, n_events=30000, pregated=params.pregated)
    write_cfse_sample(tmp_path / "u.fcs", rng, ctrl, role="unstimulated")
    if unstained:
        write_cfse_sample(tmp_path / "n.fcs", rng, ctrl, role="unstained")
    truth = write_cfse_sample(tmp_path / "s.fcs", rng, params)
    return truth


def _analyse(tmp_path, cfg, unstained: bool = True):
    unstim = summarise_control(load_gated(tmp_path / "u.fcs", cfg), "unstimulated")
    unst = summarise_control(load_gated(tmp_path / "n.fcs", cfg), "unstained") if unstained else None
    r = analyse_sample(load_gated(tmp_path / "s.fcs", cfg), cfg, unstim, unst)
    return indices_table(r, Sample("s")).iloc[0], r.fit, unstim


SHIFTED = CFSEParams(n_events=40000, parent_shift_log10=-0.3, peak_ratio=1.75, blast_shift=0.6,
                     responder_fraction=0.75, activated_undivided=0.2, mean_divisions=2.5)


def test_global_search_finds_an_undivided_peak_shifted_beyond_the_control(tmp_path):
    truth = _simulate(tmp_path, SHIFTED, 11)
    row, fit, _ = _analyse(tmp_path, _cfg())
    assert fit.mu0 == pytest.approx(truth["undivided_log10"], abs=0.03)
    assert fit.peak_ratio == pytest.approx(1.75, abs=0.06)
    assert abs(row["pct_divided"] - truth["indices"]["pct_divided"]) <= 2
    assert abs(row["division_index"] / truth["indices"]["division_index"] - 1) <= 0.05
    assert row["qc_pass"] and not fit.at_bound


def test_pinning_generation_0_to_the_control_is_an_option_and_misses_a_shifted_peak(tmp_path):
    truth = _simulate(tmp_path, SHIFTED, 11)
    row, fit, unstim = _analyse(tmp_path, _cfg(fit={"undivided": "control"}))
    assert fit.mu0 == unstim.parent.mu_log10
    # the shifted culture cannot be described from the control's position: the indices are off
    assert abs(row["pct_divided"] - truth["indices"]["pct_divided"]) > 5


def test_fixed_position_peak_ratio_and_width(tmp_path):
    truth = _simulate(tmp_path, replace(SHIFTED, cv_growth_log10=0.0), 12)
    cfg = _cfg(fit={"undivided": round(truth["undivided_log10"], 3), "peak_ratio": 1.75, "cv": 0.065})
    row, fit, _ = _analyse(tmp_path, cfg)
    assert fit.mu0 == round(truth["undivided_log10"], 3)
    assert fit.peak_ratio == pytest.approx(1.75)
    assert np.allclose(fit.generation_sigma, 0.065)
    assert abs(row["pct_divided"] - truth["indices"]["pct_divided"]) <= 2
    shared = _analyse(tmp_path, _cfg(fit={"cv": "shared"}))[1]
    assert shared.tau == 0 and np.allclose(shared.generation_sigma, shared.sigma)


def test_growing_widths_are_recovered(tmp_path):
    truth = _simulate(tmp_path, replace(SHIFTED, cv_log10=0.05, cv_growth_log10=0.035), 13)
    row, fit, _ = _analyse(tmp_path, _cfg())
    assert fit.tau == pytest.approx(0.035, abs=0.01)
    assert fit.generation_sigma[4] > fit.generation_sigma[0] + 0.02
    assert abs(row["division_index"] / truth["indices"]["division_index"] - 1) <= 0.05


def test_a_fit_on_a_bound_fails_qc(tmp_path):
    _simulate(tmp_path, replace(SHIFTED, peak_ratio=2.2, parent_shift_log10=-0.05), 14)
    row, fit, _ = _analyse(tmp_path, _cfg(peak_ratio_bounds=[1.8, 2.1]))
    assert fit.at_bound == ["peak_ratio"]
    assert "at_bound" in row["qc_flags"] and not row["qc_pass"]
    row, fit, _ = _analyse(tmp_path, _cfg(fit={"undivided_shift_bounds_log10": [-0.01, 0.2]}))
    assert "undivided_position" in fit.at_bound and not row["qc_pass"]


def test_pregated_ctv_file_with_a_shifted_undivided_peak(tmp_path):
    """A realistic CellTrace Violet export: ~15,000 pre-gated events (live singlets and the residue of a
    hand-drawn gate), blasts, generation 0 0.28 decades below the unstimulated control, no unstained
    control. The fit puts its peaks on the observed ones: reduced chi-square < 5, peak ratio off its
    bounds, the drawn curve of every generation holding >= 3 % of cells and resolved from
    autofluorescence (>= 0.6 decades above it) peaks within 0.04 decades of an observed peak."""
    p = CFSEParams(n_events=20000, dye="CTV", parent_cfse=10**4.7, peak_ratio=1.9, cv_log10=0.07,
                   cv_growth_log10=0.02, parent_shift_log10=-0.28, af_median=180, frac_dead=0.1, frac_debris=0.1,
                   frac_doublet=0.05, responder_fraction=0.8, activated_undivided=0.2, mean_divisions=2.8,
                   blast_shift=0.5, pregated=True)
    truth = _simulate(tmp_path, p, 21, unstained=False)
    cfg = _cfg(channel="CTV", gating="none", viability_channel=None)
    row, fit, _ = _analyse(tmp_path, cfg, unstained=False)
    assert 14000 <= row["events_gated"] <= 16500
    assert fit.reduced_chi2 < 5
    assert not fit.at_bound and 1.65 < fit.peak_ratio < 2.35
    # observed peaks: local maxima of the lightly smoothed histogram
    from scipy.ndimage import gaussian_filter1d

    h = gaussian_filter1d(fit.counts, 1.0)
    centres = (fit.edges[:-1] + fit.edges[1:]) / 2
    peaks = centres[1:-1][(h[1:-1] > h[:-2]) & (h[1:-1] >= h[2:]) & (h[1:-1] > 0.02 * h.max())]
    resolved = (fit.fractions >= 0.03) & (fit.generation_mu >= fit.af_median_log10 + 0.6)
    assert resolved.sum() >= 4
    for g in np.flatnonzero(resolved):  # the fitted curve's mode (dye + autofluorescence)
        mode = centres[np.argmax(fit.components[g])]
        assert np.abs(peaks - mode).min() <= 0.04, (g, mode, peaks)
    assert abs(row["pct_divided"] - truth["indices"]["pct_divided"]) <= 2
    assert "no_unstained_control" in row["qc_flags"]
    ax = fit_figure(fit, "ctv", "CTV").axes[0]
    assert ax.get_xlabel() == "log10 CTV"


def test_fit_options_are_validated():
    with pytest.raises(ValidationError, match=r"cfse\.fit\.cv"):
        resolve_config({"cfse": {"fit": {"cv": "grow"}}})
    with pytest.raises(ValidationError, match=r"cfse\.fit\.peak_ratio"):
        resolve_config({"cfse": {"fit": {"peak_ratio": 5}}})
    with pytest.raises(ValidationError, match="unknown"):
        resolve_config({"cfse": {"fit": {"cvs": "shared"}}})
    with pytest.raises(ValidationError, match=r"cfse\.fit\.undivided_shift_bounds_log10"):
        resolve_config({"cfse": {"fit": {"undivided_shift_bounds_log10": [0.1, -0.3]}}})
    with pytest.raises(ZincassayError, match="peak_ratio_bounds"):
        _cfg(peak_ratio_bounds=[2.2, 1.8]).fit_options()
    opts = _cfg().fit_options()
    assert opts.undivided == "auto" and opts.cv == "growing" and opts.peak_ratio is None


def test_fit_uses_every_event_and_returns_finite_indices():
    rng = np.random.default_rng(0)
    values = 10 ** rng.normal(4.3, 0.06, 5000)
    opts = _cfg().fit_options()
    fit = fit_generations(values, ParentPeak(4.3, 0.06, 5000), None, options=opts)
    assert fit.counts.sum() == 5000
    assert fit.indices["pct_divided"] < 2 and fit.fractions[0] > 0.95
