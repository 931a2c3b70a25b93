"""CFSE gating, deconvolution and indices against the simulator's ground truth.

Tolerances (issue #7): |pct_divided - truth| <= 2 points; division_index within 5 %; each
generation's fraction within 2 points; truth inside the 95 % bootstrap CI in >= 90 % of samples;
for FCS 3.1 float with spillover, FCS 3.0 int32 big-endian, FCS 2.0 4-decade log, and with a true
peak ratio of 1.85.
"""

from __future__ import annotations

import numpy as np
import pytest

from zincassay.cfse.indices import INDEX_NAMES, division_indices, precursor_fractions
from zincassay.cfse.pipeline import analyse_sample, load_gated, summarise_control
from zincassay.cfse.settings import CFSESettings
from zincassay.cfse.tables import gates_table, generations_table, indices_table
from zincassay.config import resolve_config
from zincassay.samplesheet import Sample
from zincassay.simulate import CONDITIONS
from zincassay.simulate.cfse import CFSEParams, write_cfse_sample

N_EVENTS = 30000
CASES = [("fcs3.1-float", 2.0), ("fcs3.0-int32", 2.0), ("fcs2.0-log", 2.0), ("fcs3.1-float", 1.85)]


def _cfg(**over):
    return CFSESettings.from_config(resolve_config({"cfse": {"viability_channel": "LiveDead", **over}})["cfse"])


def _analyse(gated, cfg, unstim, unstained, sample_id):
    """The sample's indices, generations and gates tables and its fit."""
    r = analyse_sample(gated, cfg, unstim, unstained)
    return (indices_table(r, Sample(sample_id)), generations_table(r, sample_id), gates_table(r, sample_id), r.fit)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """Simulate and analyse every case x condition once."""
    tmp = tmp_path_factory.mktemp("cfse")
    cfg = _cfg()
    out = []
    for k, (fmt, ratio) in enumerate(CASES):
        rng = np.random.default_rng(1000 + k)
        base = CFSEParams(n_events=N_EVENTS, peak_ratio=ratio)
        write_cfse_sample(tmp / f"u{k}.fcs", rng, base, role="unstimulated", fmt=fmt)
        write_cfse_sample(tmp / f"n{k}.fcs", rng, base, role="unstained", fmt=fmt)
        unstim = summarise_control(load_gated(tmp / f"u{k}.fcs", cfg), "unstimulated")
        unstained = summarise_control(load_gated(tmp / f"n{k}.fcs", cfg), "unstained")
        for cond, v in CONDITIONS.items():
            p = CFSEParams(n_events=N_EVENTS, peak_ratio=ratio, responder_fraction=v["responder_fraction"],
                           mean_divisions=v["mean_divisions"])
            path = tmp / f"s{k}_{cond}.fcs"
            truth = write_cfse_sample(path, rng, p, role="sample", fmt=fmt)
            idx, gens, gates, _fit = _analyse(load_gated(path, cfg), cfg, unstim, unstained, f"{fmt}_{ratio}_{cond}")
            out.append({"case": (fmt, ratio, cond), "truth": truth, "idx": idx.iloc[0], "gens": gens, "gates": gates})
    return out


def _label(r):
    return "/".join(map(str, r["case"]))


def test_pct_divided_within_2_points(fitted):
    errs = {_label(r): r["idx"]["pct_divided"] - r["truth"]["indices"]["pct_divided"] for r in fitted}
    assert all(abs(e) <= 2.0 for e in errs.values()), errs


def test_division_index_within_5_percent(fitted):
    errs = {_label(r): r["idx"]["division_index"] / r["truth"]["indices"]["division_index"] - 1 for r in fitted}
    assert all(abs(e) <= 0.05 for e in errs.values()), errs


def test_generation_fractions_within_2_points(fitted):
    for r in fitted:
        truth = r["truth"]["cells"] / r["truth"]["cells"].sum()
        fit = r["gens"]["fraction"].to_numpy()
        n = max(truth.size, fit.size)
        t, f = np.zeros(n), np.zeros(n)
        t[: truth.size], f[: fit.size] = truth, fit
        assert np.abs(t - f).max() <= 0.02, (_label(r), np.round(t, 3), np.round(f, 3))


def test_peak_ratio_recovered(fitted):
    for r in fitted:
        assert abs(r["idx"]["peak_ratio"] - r["case"][1]) < 0.05, _label(r)


def test_truth_inside_bootstrap_ci(fitted):
    hits, total = 0, 0
    for r in fitted:
        for k in ("pct_divided", "division_index"):
            t = r["truth"]["indices"][k]
            hits += r["idx"][f"{k}_ci_low"] <= t <= r["idx"][f"{k}_ci_high"]
            total += 1
    assert hits / total >= 0.9, f"{hits}/{total} intervals hold the truth"


def test_gating_removes_debris_dead_and_doublets(fitted):
    for r in fitted:
        g = r["gates"].set_index("gate")
        kinds = r["truth"]["kinds"]
        # all non-live events are removed and >= 90 % of live singlets kept
        assert kinds["live"] * 0.9 <= g.loc["live", "events_kept"] <= kinds["live"]


def test_condition_order_matches_truth(fitted):
    by = {r["case"]: r["idx"]["division_index"] for r in fitted}
    for fmt, ratio in CASES:
        assert by[(fmt, ratio, "deficient")] < by[(fmt, ratio, "replete")] < by[(fmt, ratio, "supplemented")]


# --------------------------------------------------------------------------- formulas


def test_indices_match_flowjo_worked_example():
    # FlowJo: half the cells divided 3 times -> proliferation index 3, division index 1.5
    precursors = np.array([0.5, 0, 0, 0.5])
    cells = precursors * 2.0 ** np.arange(4)
    ind = division_indices(cells)
    assert ind["proliferation_index"] == pytest.approx(3.0)
    assert ind["division_index"] == pytest.approx(1.5)
    assert ind["pct_divided"] == pytest.approx(50.0)
    assert ind["expansion_index"] == pytest.approx(cells.sum() / precursors.sum())
    assert ind["replication_index"] == pytest.approx(8.0)
    assert ind["fraction_diluted"] == pytest.approx(100 * 4 / 4.5)
    np.testing.assert_allclose(precursor_fractions(cells), precursors)


def test_undivided_culture():
    ind = division_indices(np.array([100.0, 0, 0]))
    assert ind["pct_divided"] == 0 and ind["division_index"] == 0 and ind["expansion_index"] == 1
    assert np.isnan(ind["proliferation_index"]) and np.isnan(ind["replication_index"])
    assert set(ind) == set(INDEX_NAMES)


def test_missing_unstained_control_is_flagged(tmp_path):
    cfg = _cfg(bootstrap_replicates=0)
    rng = np.random.default_rng(5)
    write_cfse_sample(tmp_path / "u.fcs", rng, CFSEParams(), role="unstimulated")
    truth = write_cfse_sample(tmp_path / "s.fcs", rng, CFSEParams(), role="sample")
    unstim = summarise_control(load_gated(tmp_path / "u.fcs", cfg), "unstimulated")
    idx, *_ = _analyse(load_gated(tmp_path / "s.fcs", cfg), cfg, unstim, None, "s")
    assert "no_unstained_control" in idx.iloc[0]["qc_flags"]
    # generations well above autofluorescence still carry the indices
    assert abs(idx.iloc[0]["pct_divided"] - truth["indices"]["pct_divided"]) <= 2


def test_negative_events_are_kept(tmp_path):
    """Events at or below zero after compensation are counted (in the lowest bin), never dropped."""
    cfg = _cfg(bootstrap_replicates=0)
    rng = np.random.default_rng(9)
    p = CFSEParams(noise_sd=300.0)  # strong electronic noise: many dim events go negative
    write_cfse_sample(tmp_path / "u.fcs", rng, p, role="unstimulated")
    write_cfse_sample(tmp_path / "n.fcs", rng, p, role="unstained")
    write_cfse_sample(tmp_path / "s.fcs", rng, p, role="sample")
    g = load_gated(tmp_path / "s.fcs", cfg)
    assert (g.cfse <= 0).sum() > 0
    unstim = summarise_control(load_gated(tmp_path / "u.fcs", cfg), "unstimulated")
    unst = summarise_control(load_gated(tmp_path / "n.fcs", cfg), "unstained")
    idx, gens, _, fit = _analyse(g, cfg, unstim, unst, "s")
    assert fit.counts.sum() == g.cfse.size
    assert idx.iloc[0]["events_at_or_below_zero"] == int((g.cfse <= 0).sum())
    assert gens["cells"].sum() + idx.iloc[0]["background_events"] == pytest.approx(g.cfse.size, rel=0.02)


def test_bad_spill_error_or_warning(tmp_path):
    from zincassay.io.fcs import CompensationError
    from zincassay.io.fcs_write import write_fcs

    ev = np.abs(np.random.default_rng(1).normal(5000, 1000, (200, 3)))
    p = write_fcs(tmp_path / "b.fcs", ev, ["FSC-A", "SSC-A", "FITC-A"], pns=["", "", "CFSE"],
                  keywords={"$SPILLOVER": "2,FITC-A,SSC-A"})
    with pytest.raises(CompensationError, match="coefficients"):
        load_gated(p, _cfg())
    g = load_gated(p, _cfg(on_bad_spill="warn", viability_channel=None))
    assert "spill_not_applied" in g.flags


def test_gating_none_keeps_every_event(tmp_path):
    rng = np.random.default_rng(2)
    write_cfse_sample(tmp_path / "s.fcs", rng, CFSEParams(n_events=3000), role="sample")
    g = load_gated(tmp_path / "s.fcs", _cfg(gating="none"))
    assert g.cfse.size == 3000

