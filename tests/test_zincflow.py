"""Free zinc by flow cytometry against the simulator's ground truth, QC cases and input errors.

Tolerances: the fast slice of ``validation/zincflow_sweep.py`` (6 experiments drawn from its
parameter space) has every subset with 0.05 < f < 0.9 within 10 % of the true median zinc or
within its own 95 % CI, and the CI covers the truth in >= 2/3 of subsets (the sweep itself
measures the 95 % / 90-98 % criteria over >= 50 experiments).
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from zincassay.config import resolve_config
from zincassay.errors import ZincassayError
from zincassay.flow.settings import GatesFrom
from zincassay.io.fcs import read_fcs
from zincassay.io.fcs_write import write_fcs
from zincassay.samplesheet import Sample
from zincassay.simulate.zincflow import KineticParams, ZincflowCulture, culture_truth, write_culture
from zincassay.zincflow import figures, tables
from zincassay.zincflow.calibrate import bootstrap_medians, bound_fraction, calibrate_subset, zinc_nM
from zincassay.zincflow.controls import kinetic_column_problems, match_cultures
from zincassay.zincflow.instruments import instrument_problems
from zincassay.zincflow.kinetics import find_addition
from zincassay.zincflow.pipeline import run_sample
from zincassay.zincflow.settings import ZincflowSettings, parse_subset
from zincassay.zincflow.subsets import valley_threshold
from zincassay.zincflow.tubes import gate_tube, top_of_scale

REPO = Path(__file__).resolve().parents[1]


def _sweep_module():
    spec = importlib.util.spec_from_file_location("zincflow_sweep", REPO / "validation" / "zincflow_sweep.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["zincflow_sweep"] = mod
    spec.loader.exec_module(mod)
    return mod


SWEEP = _sweep_module()


def _settings(**over) -> ZincflowSettings:
    return ZincflowSettings.from_config(resolve_config({"zincflow": {"viability_channel": "LiveDead", **over}})["zincflow"])


# --------------------------------------------------------------------------- settings


def test_settings_from_schema_defaults():
    s = _settings()
    assert s.kd_in_force_nM == 15.0 and s.kd_nM is None and s.probe == "FluoZin-3" and s.channel == "FITC-A"
    assert [x.name for x in s.subset_list] == ["CD3+", "CD3+CD4+CD8-", "CD3+CD4-CD8+"]
    assert s.markers == ("CD3", "CD4", "CD8")
    assert s.gates.lymphocyte_coverage == 0.97 and s.scatter.fsc_a is None and s.kinetic.bin_s == 10
    assert _settings(probe="Zinpyr-1").kd_in_force_nM == 0.7
    assert _settings(kd_nM=8.9).kd_in_force_nM == 8.9
    with pytest.raises(AttributeError):
        s.kd_nM = 1.0  # type: ignore[misc]


def test_parse_subset():
    assert parse_subset("CD4+CD8-").markers == (("CD4", True), ("CD8", False))
    assert parse_subset("CD3+ CD45RA-").markers == (("CD3", True), ("CD45RA", False))
    assert parse_subset("HLA-DR+CD38-", known=("HLA-DR",)).markers == (("HLA-DR", True), ("CD38", False))
    for bad in ("CD4+CD8", "CD4", "CD4+CD4-"):
        with pytest.raises(ZincassayError, match=r"zincflow\.subsets"):
            parse_subset(bad)


def test_settings_reject_threshold_for_unused_marker():
    with pytest.raises(ZincassayError, match="'CD8a' is not a marker"):
        _settings(marker_thresholds={"CD8a": 500})


# --------------------------------------------------------------------------- calibration arithmetic


def test_zinc_formula_and_bound_fraction():
    fmin, fmax, kd = 1000.0, 7000.0, 15.0
    F = np.array([500.0, 1000.0, 4000.0, 6999.0, 7000.0, 9000.0])
    zn = zinc_nM(F, fmin, fmax, kd)
    f = bound_fraction(F, fmin, fmax)
    assert np.isnan(zn[-2:]).all()
    np.testing.assert_allclose(zn[:4], kd * f[:4] / (1 - f[:4]))
    assert zn[0] < 0 and zn[1] == 0 and zn[2] == pytest.approx(15.0)


@pytest.mark.parametrize("n", [501, 500])
def test_exact_bootstrap_median_matches_resampling(n):
    rng = np.random.default_rng(n)
    x = rng.lognormal(0, 0.5, n)
    exact = bootstrap_medians(x, 20000, np.random.default_rng(1))
    brute = np.median(x[rng.integers(0, n, (20000, n))], axis=1)
    q = [0.025, 0.25, 0.5, 0.75, 0.975]
    se = np.std(brute) / np.sqrt(20000) * 8  # a few MC standard errors of a quantile
    np.testing.assert_allclose(np.quantile(exact, q), np.quantile(brute, q), atol=max(se, 0.004))
    assert np.std(exact) == pytest.approx(np.std(brute), rel=0.05)


def test_autofluorescence_cancels_in_zinc_but_not_in_dynamic_range():
    rng = np.random.default_rng(0)
    load = lambda n: rng.lognormal(np.log(1000), 0.4, n)  # noqa: E731
    s, lo, hi = load(5000) * 1.5, load(5000), load(5000) * 5
    af = rng.lognormal(np.log(300), 0.3, 5000)
    kw = dict(kd_nM=15.0, fmax_at_top=np.zeros(5000, bool), min_dynamic_range=2, f_low=0.02, f_high=0.95,
              max_saturated_fraction=0.01, min_events=1000, replicates=200)
    with_af = calibrate_subset(s, lo, hi, af=af, rng=np.random.default_rng(1), **kw)
    without = calibrate_subset(s, lo, hi, af=None, rng=np.random.default_rng(1), **kw)
    assert with_af.zn_nM == pytest.approx(without.zn_nM, rel=1e-12)
    assert with_af.f == pytest.approx(without.f, rel=1e-12)
    assert with_af.zn_ci_low == pytest.approx(without.zn_ci_low, rel=1e-12)
    assert with_af.dynamic_range > without.dynamic_range * 1.05
    assert np.isnan(without.af)


def test_fmax_median_at_top_of_scale_gives_no_number():
    rng = np.random.default_rng(0)
    top = np.r_[np.ones(3000, bool), np.zeros(2000, bool)]
    cal = calibrate_subset(rng.normal(2000, 100, 5000), rng.normal(1000, 50, 5000), np.full(5000, 262143.0),
                           kd_nM=15.0, af=None, fmax_at_top=top, min_dynamic_range=2, f_low=0.02, f_high=0.95,
                           max_saturated_fraction=0.01, min_events=1000, replicates=100, rng=rng)
    assert np.isnan(cal.zn_nM) and "fmax_median_saturated" in cal.flags and not cal.qc_pass


def test_top_of_scale_needs_a_pile_up():
    assert top_of_scale(np.array([1.0, 5.0, 262143.0, 262143.0])).tolist() == [False, False, True, True]
    assert not top_of_scale(np.array([1.0, 5.0, 9.0])).any()


# --------------------------------------------------------------------------- subsets


def test_valley_between_modes_and_none_when_unimodal():
    rng = np.random.default_rng(3)
    neg = rng.normal(100, 80, 7000)
    pos = rng.lognormal(np.log(15000), 0.3, 3000)
    thr = valley_threshold(np.r_[neg, pos], scale="asinh", cofactor=150)
    assert thr is not None and 400 < thr < 5000
    thr_log = valley_threshold(np.r_[neg, pos], scale="log", cofactor=150)
    assert thr_log is not None and 300 < thr_log < 5000
    assert valley_threshold(rng.lognormal(np.log(15000), 0.3, 10000), scale="asinh", cofactor=150) is None


# --------------------------------------------------------------------------- simulated cultures


@pytest.fixture(scope="module")
def culture(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("zincflow")
    c = ZincflowCulture(n_events=30000)
    kin = KineticParams(tau_off_s=150.0, rate_per_s=600.0)
    paths = write_culture(tmp, "c", np.random.default_rng(11), c, kinetic=kin)
    s = _settings()
    res = run_sample(paths["sample"], paths["fmin"], paths["fmax"], paths["unstained"], s)
    kres = run_sample(paths["kinetic"], paths["fmin"], paths["fmax"], paths["unstained"], s, kinetic=True)
    truth = culture_truth(c, list(s.subsets), kin).set_index("subset")
    return {"tmp": tmp, "paths": paths, "res": res, "kres": kres, "truth": truth, "culture": c, "settings": s,
            "kin": kin}


def test_default_culture_against_truth(culture):
    res, truth = culture["res"], culture["truth"]
    for sr in res.subsets:
        cal, t = sr.calibration, truth.loc[sr.subset.name]
        assert cal.qc_pass, (sr.subset.name, cal.flags)
        assert cal.zn_nM == pytest.approx(t["zn_nM"], rel=0.10)
        assert cal.zn_ci_low < cal.zn_nM < cal.zn_ci_high
        # medians of the tubes, autofluorescence-subtracted, against the simulator's expected medians
        assert cal.Fmin + cal.af == pytest.approx(t["Fmin_expected"], rel=0.03)
        assert cal.Fmax + cal.af == pytest.approx(t["Fmax_expected"], rel=0.03)
        assert cal.af == pytest.approx(t["af_expected"], rel=0.05)
        assert cal.dynamic_range == pytest.approx(culture["culture"].dynamic_range * t["fmax_theta"]
                                                  + (1 - t["fmax_theta"]), rel=0.05)


def test_subset_event_counts_follow_the_cell_types(culture):
    res, truth = culture["res"], culture["truth"]
    live = res.sample.gating.events_gated
    for sr in res.subsets:
        share = sr.calibration.events_sample / live
        assert share == pytest.approx(truth.loc[sr.subset.name, "live_fraction_of_lymphocytes"], abs=0.02)


def test_kinetics_against_truth(culture):
    kres, truth, kin = culture["kres"], culture["truth"], culture["kin"]
    a = kres.addition
    assert a.source == "gap" and a.gap_start_s == pytest.approx(kin.baseline_s, abs=0.1)
    assert a.gap_end_s == pytest.approx(kin.baseline_s + kin.gap_s, abs=0.2)
    for sr in kres.subsets:
        k, t = sr.kinetic, truth.loc[sr.subset.name]
        assert k.baseline_zn_nM == pytest.approx(t["kinetic_baseline_zn_nM"], rel=0.10)
        assert k.peak_zn_nM == pytest.approx(t["kinetic_peak_zn_nM"], rel=0.12)
        # time from the detected addition (pause start); the true addition came delay_s later
        ttp = t["kinetic_time_to_peak_s"] + kin.delay_s
        assert abs(k.time_to_peak_s - ttp) <= 2 * culture["settings"].kinetic.bin_s + 5
        assert sr.calibration.zn_nM == pytest.approx(k.baseline_zn_nM)  # static value = pre-addition events


def test_kinetics_with_addition_from_the_sheet(culture):
    p, s = culture["paths"], culture["settings"]
    res = run_sample(p["kinetic"], p["fmin"], p["fmax"], None, s, kinetic=True, addition_s=64.0)
    assert res.addition.source == "sheet" and res.addition.addition_s == 64.0
    assert np.isfinite(res.subsets[0].kinetic.peak_zn_nM)


def test_tables_and_figures(culture):
    res, kres = culture["res"], culture["kres"]
    sample = Sample("s1", assay="zincflow", condition="replete", donor="D1", batch="B1",
                    controls={"fmin": "s1_fmin", "fmax": "s1_fmax", "unstained": "s1_u"}, extra={"notes": "n"})
    z = tables.zinc_table(res, sample, culture="D1/replete/B1")
    assert list(z.columns) == [*tables.ZINC_COLUMNS, "notes"] and (z["notes"] == "n").all()
    assert (z["status"] == "ok").all() and (z["failure"] == "").all()
    assert z["subset"].tolist() == list(culture["settings"].subsets)
    assert (z["instrument"] == "zincassay simulator").all() and z["qc_pass"].all()
    assert (z["fmax"] == "s1_fmax").all() and (z["culture"] == "D1/replete/B1").all()
    g = tables.gates_table(res, "s1")
    assert set(g["tube"]) == {"sample", "fmin", "fmax", "unstained"}
    assert set(g.loc[g["gate"].str.endswith("+"), "note"]) == {"valley"}
    assert tables.kinetics_table(res, sample, culture="c").empty
    k = tables.kinetics_table(kres, sample, culture="c")
    assert len(k) == 3 and (k["addition_source"] == "gap").all()
    b = tables.kinetic_bins_table(kres, "s1")
    assert (b.loc[b["events"] < culture["settings"].kinetic.min_events_per_bin, "zn_nM"].isna()).all()
    fig = figures.histograms_figure(res, "s1")
    assert isinstance(fig, Figure) and len([a for a in fig.axes if a.get_legend()]) == 3
    assert "[Zn2+]" in fig.axes[0].get_title()
    gf = figures.gating_figure(res.tubes, "s1", marker_scale="asinh", asinh_cofactor=150)
    assert any("CD8+" in a.get_title() for a in gf.axes)
    assert [a.get_title().split(" |")[0] for a in gf.axes[::6]] == [f"{t} tube" for t in res.tubes]
    kf = figures.kinetics_figure(kres, "s1")
    assert len(kf.axes) == 3 and "peak" in " ".join(t.get_text() for t in kf.axes[0].get_legend().get_texts())


# --------------------------------------------------------------------------- fast slice of the sweep


def test_fast_slice_of_the_sweep(tmp_path):
    rng = np.random.default_rng(77)
    exps = [SWEEP.draw_experiment(rng) for _ in range(6)]
    for e in exps:  # keep the slice fast: at most 40,000 events per tube
        e["culture"] = replace(e["culture"], n_events=min(e["culture"].n_events, 40000))
    rows = pd.concat([SWEEP.run_experiment(e, tmp_path, 77, i) for i, e in enumerate(exps)], ignore_index=True)
    inrange = rows[(rows["f_true"] > 0.05) & (rows["f_true"] < 0.9)]
    assert len(inrange) >= 6
    half_ci = (inrange["ci_high"] - inrange["ci_low"]) / 2
    err = (inrange["zn_nM"] - inrange["zn_true_nM"]).abs()
    ok = (inrange["rel_err"].abs() <= 0.10) | (err <= half_ci)
    assert ok.all(), inrange[~ok]
    assert rows["covered"].astype(float).mean() >= 2 / 3, rows[["subset", "zn_true_nM", "zn_nM", "ci_low", "ci_high"]]
    assert rows["qc_pass"].all() or rows.loc[~rows["qc_pass"], "flags"].str.contains("below_fmin|f_low").all()


# --------------------------------------------------------------------------- QC cases


@pytest.mark.parametrize("case", ["low_dynamic_range", "above_fmax", "f_low", "f_high", "fmax_saturated",
                                  "too_few_events", "instrument_mismatch", "no_valley(CD8)"])
def test_qc_case_is_flagged(case, tmp_path):
    exps = {e["case"]: e for e in SWEEP.qc_cases(np.random.default_rng(5), 1)}
    rows = SWEEP.run_experiment(exps[case], tmp_path, 5, 0)
    rel = rows[rows["relevant"]]
    assert len(rel) >= 1
    for flags in rel["flags"]:
        assert any(f == case or f.startswith(case + "(") for f in flags.split(";")), (case, flags)
    if case in ("low_dynamic_range", "above_fmax", "too_few_events", "instrument_mismatch", "no_valley(CD8)"):
        assert not rel["qc_pass"].any()
    if case in ("above_fmax", "no_valley(CD8)"):
        assert rel["zn_nM"].isna().all()


# --------------------------------------------------------------------------- input errors


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_probe_channel_typo_is_one_clear_line(culture):
    p = culture["paths"]
    with pytest.raises(ZincassayError) as exc:
        run_sample(p["sample"], p["fmin"], p["fmax"], None, _settings(channel="FTIC-A"))
    msg = _one_line(exc)
    assert str(p["sample"]) in msg and "'FTIC-A'" in msg and "zincflow.channel" in msg and "did you mean 'FITC-A'" in msg


def test_subset_marker_absent_from_a_file_is_one_clear_line(culture, tmp_path):
    c = replace(culture["culture"], n_events=3000, stains={"PE-A": "CD4", "BV421-A": "CD3", "APC-Cy7-A": "LiveDead"})
    paths = write_culture(tmp_path, "noCD8", np.random.default_rng(2), c, unstained=False)
    p = culture["paths"]
    with pytest.raises(ZincassayError) as exc:
        run_sample(p["sample"], p["fmin"], paths["fmax"], None, culture["settings"])
    msg = _one_line(exc)
    assert str(paths["fmax"]) in msg and "marker 'CD8'" in msg and "CD3+CD4-CD8+" in msg
    assert "zincflow.marker_channels" in msg
    # mapping the marker to its detector fixes it
    s = _settings(marker_channels={"CD8": "APC-A"}, min_events=100)
    res = run_sample(paths["sample"], paths["fmin"], paths["fmax"], None, s)
    assert np.isfinite(res.subsets[2].calibration.zn_nM)


def test_kinetic_tube_errors(culture, tmp_path):
    p, s = culture["paths"], culture["settings"]
    c = replace(culture["culture"], n_events=3000)
    paths = write_culture(tmp_path, "nots", np.random.default_rng(4), c, unstained=False, write_timestep=False)
    with pytest.raises(ZincassayError) as exc:
        run_sample(paths["sample"], p["fmin"], p["fmax"], None, s, kinetic=True)
    assert "$TIMESTEP" in _one_line(exc) and "zincflow.kinetic.timestep_s" in str(exc.value)
    with pytest.raises(ZincassayError) as exc:  # a static tube has no pause
        run_sample(p["sample"], p["fmin"], p["fmax"], None, s, kinetic=True)
    assert "no pause" in _one_line(exc) and "addition_s" in str(exc.value)
    t = np.sort(np.random.default_rng(0).uniform(0, 100, 1000))
    assert find_addition(t, min_gap_s=5, addition_s=50.0, path="x").source == "sheet"
    with pytest.raises(ZincassayError, match="outside the acquisition"):
        find_addition(t, min_gap_s=5, addition_s=500.0, path="x")


def test_no_time_channel(tmp_path, culture):
    data = read_fcs(culture["paths"]["sample"])
    keep = [i for i, n in enumerate(data.channel_names) if n != "Time"]
    path = tmp_path / "notime.fcs"
    write_fcs(path, data.events[:, keep], [data.channel_names[i] for i in keep],
              pns=[data.channels["$PnS"].iloc[i] for i in keep], keywords={"$CYT": "x"})
    with pytest.raises(ZincassayError) as exc:
        run_sample(path, culture["paths"]["fmin"], culture["paths"]["fmax"], None, culture["settings"], kinetic=True)
    assert "Time channel" in _one_line(exc)


# --------------------------------------------------------------------------- sample sheet and instruments


def _sheet(rows):
    cols = ["sample_id", "assay", "file", "condition", "role", "donor", "batch"]
    return pd.DataFrame([dict(zip(cols, r, strict=True)) for r in rows])


def _culture_rows(donor, cond, batch, roles=("sample", "fmin", "fmax")):
    return [(f"{donor}_{cond}_{r}", "zincflow", "x.fcs", cond, r, donor, batch) for r in roles]


def test_match_cultures():
    rows = (_culture_rows("D1", "deficient", "B1") + _culture_rows("D1", "replete", "B1")
            + [("D1_af", "zincflow", "x.fcs", "", "unstained", "D1", "B1"),
               ("cfse1", "cfse", "y.fcs", "replete", "sample", "D1", "B1")])
    sheet, problems = match_cultures(_sheet(rows))
    assert problems == []
    s = sheet.set_index("sample_id")
    assert s.loc["D1_deficient_sample", "fmin"] == "D1_deficient_fmin"
    assert s.loc["D1_replete_sample", "fmax"] == "D1_replete_fmax"
    assert s.loc["D1_replete_sample", "unstained"] == "D1_af"
    assert s.loc["D1_replete_sample", "culture"] == "D1/replete/B1"
    assert s.loc["cfse1", "fmin"] == ""


def test_culture_without_fmax_is_named():
    rows = _culture_rows("D1", "deficient", "B1") + _culture_rows("D2", "deficient", "B1", ("sample", "fmin"))
    _, problems = match_cultures(_sheet(rows))
    assert len(problems) == 1
    assert "culture D2/deficient/B1" in problems[0] and "no fmax tube" in problems[0] and "D2_deficient_sample" in problems[0]


def test_culture_problems():
    rows = [*_culture_rows("D1", "deficient", "B1"), ("dup", "zincflow", "x.fcs", "deficient", "fmin", "D1", "B1"),
            *_culture_rows("D1", "replete", "B1", ("fmin", "fmax")),  # controls with no sample (a typo?)
            ("bad", "zincflow", "x.fcs", "deficient", "tpen", "D1", "B1")]
    _, problems = match_cultures(_sheet(rows))
    text = "\n".join(problems)
    assert "2 fmin tubes (D1_deficient_fmin, dup)" in text
    assert "culture D1/replete/B1" in text and "no sample" in text
    assert "role 'tpen' is not valid for assay zincflow" in text


def test_explicit_culture_column():
    rows = [*_culture_rows("D1", "deficient", "B1"), ("s2", "zincflow", "x.fcs", "deficient", "sample", "D1", "B1")]
    sheet = _sheet(rows)
    sheet["culture"] = ["A", "A", "A", "B"]
    _, problems = match_cultures(sheet)
    assert len(problems) == 2 and all("culture B " in p for p in problems)


def test_kinetic_columns():
    sheet = _sheet(_culture_rows("D1", "deficient", "B1"))
    sheet["kinetic"] = ["yes", "", "maybe"]
    sheet["addition_s"] = ["60", "30", ""]
    problems = kinetic_column_problems(sheet)
    assert any("kinetic 'maybe'" in p for p in problems)
    assert any("addition_s is set but the tube is not marked kinetic" in p for p in problems)
    sheet["kinetic"] = ["yes", "", ""]
    sheet["addition_s"] = ["-3", "", ""]
    assert any("not a number of seconds" in p for p in kinetic_column_problems(sheet))


def test_instruments_not_pooled_unless_configured():
    table = pd.DataFrame({"sample_id": ["a", "a", "b", "c"], "instrument": ["Canto", "Canto", "Fortessa", ""]})
    problems = instrument_problems(table, pool_instruments=False, source="zinc.tsv")
    assert len(problems) == 1 and "3 instruments" in problems[0] and "(no $CYT): c" in problems[0]
    assert "zincflow.pool_instruments" in problems[0]
    assert instrument_problems(table, pool_instruments=True, source="zinc.tsv") == []
    assert instrument_problems(table[table["sample_id"] == "a"], pool_instruments=False, source="zinc.tsv") == []


def test_overcompensated_viability_channel_keeps_live_cells(tmp_path):
    """$SPILLOVER 10 % too high pushes live CD8+ cells below 0 in the viability channel (APC spills
    into APC-Cy7); they are live, not a mode of their own, and every marker keeps its valley."""
    c = ZincflowCulture(n_events=20000, spill_error=0.1)
    paths = write_culture(tmp_path, "oc", np.random.default_rng(8), c, unstained=False)
    res = run_sample(paths["sample"], paths["fmin"], paths["fmax"], None, _settings())
    live = next(g for g in res.sample.gating.gates if g.name == "live")
    assert live.events_kept > 0.95 * live.events_in
    assert all(m.source == "valley" for t in res.tubes.values() for m in t.markers.values())
    assert all(sr.calibration.qc_pass for sr in res.subsets)


def test_bad_spill_matrix_stops_or_warns(culture, tmp_path):
    p = culture["paths"]
    csv = tmp_path / "spill.csv"
    csv.write_text("FITC-A,PE-X\n1,0.1\n0.02,1\n")
    with pytest.raises(ZincassayError) as exc:
        run_sample(p["sample"], p["fmin"], p["fmax"], None, _settings(compensate=str(csv)))
    assert "PE-X" in _one_line(exc)
    res = run_sample(p["sample"], p["fmin"], p["fmax"], None, _settings(compensate=str(csv), on_bad_spill="warn"))
    flags = res.subsets[0].calibration.flags
    assert {"spill_not_applied(sample)", "spill_not_applied(fmin)", "spill_not_applied(fmax)"} <= set(flags)
    assert res.subsets[0].calibration.qc_pass  # a warning: the medians cancel marker spillover


# --------------------------------------------------------------------------- real files (skip without ../shared)


def test_marker_valleys_on_real_files(fcs_corpus):
    """Real T-cell stains: the CD3 split lies between the negative and positive modes seen in the
    histograms (MACSQuant, compensated 18-bit data on asinh; FACSCanto 4-decade data on log)."""
    mq = _settings(viability_channel=None, channel="HDR-TM", marker_channels={"CD3": "cd3 PE-A", "CD4": "cd4 APC-A", "CD8": "cd8 FITC-A"})
    t = gate_tube(fcs_corpus / "cytoflow__Miltenyi_Biotec_-_MACSQuant_Analyzer.fcs", "sample", mq)
    assert t.markers["CD3"].source == "valley" and 200 < t.markers["CD3"].threshold < 3000
    cd3 = t.subset(parse_subset("CD3+"))
    assert 0.05 < cd3.sum() / t.gating.events_gated < 0.5
    canto = _settings(viability_channel=None, channel="Time", marker_scale="log")
    t = gate_tube(fcs_corpus / "cytoflow__itn_02.fcs", "sample", canto)
    assert 30 < t.markers["CD3"].threshold < 1000 and 30 < t.markers["CD8"].threshold < 1000


def test_marker_named_by_detector_and_stain_on_a_real_file(fcs_corpus):
    path = fcs_corpus / "FlowIO__data1.fcs"
    with pytest.raises(ZincassayError) as exc:
        gate_tube(path, "sample", _settings(viability_channel=None, channel="FL1-H"))
    msg = _one_line(exc)
    assert "marker 'CD3'" in msg and "did you mean 'CD3 PerCP'" in msg and str(path) in msg


# --------------------------------------------------------------------------- readouts for the conditions step


def _zinc_rows(sid, cond, donor, instrument, zn, qc=(True, True), status="ok"):
    if status != "ok":
        return [{"sample_id": sid, "condition": cond, "donor": donor, "batch": "B1", "status": status,
                 "failure": "x.fcs: truncated", "qc_pass": False, "qc_flags": "failed"}]
    return [{"sample_id": sid, "condition": cond, "donor": donor, "batch": "B1", "status": "ok", "failure": "",
             "subset": sub, "zn_nM": z, "qc_pass": q, "qc_flags": "" if q else "too_few_events",
             "instrument": instrument} for sub, z, q in zip(("CD3+", "CD3+CD4-CD8+"), zn, qc, strict=True)]


def test_readouts_one_row_per_sample_qc_failing_subsets_blank():
    zinc = pd.DataFrame(_zinc_rows("b", "replete", "D1", "Canto", (1.0, 0.8), qc=(True, False))
                        + _zinc_rows("a", "deficient", "D1", "Canto", (0.5, 0.4))
                        + _zinc_rows("c", "replete", "D2", "", (0, 0), status="failed"))
    t, notes = tables.readouts_table(zinc, pool_instruments=False, source="zinc.tsv")
    assert notes == [] and list(t["sample_id"]) == ["a", "b", "c"]
    assert list(t.columns) == ["sample_id", "condition", "donor", "batch", "status", "failure", "qc_flags",
                               "zn_nM_CD3+", "zn_nM_CD3+CD4-CD8+"]
    t = t.set_index("sample_id")
    assert t.loc["b", "zn_nM_CD3+"] == 1.0 and np.isnan(t.loc["b", "zn_nM_CD3+CD4-CD8+"])
    assert t.loc["b", "qc_flags"] == "CD3+CD4-CD8+:too_few_events"
    assert t.loc["c", "status"] == "failed" and t.loc[["c"], ["zn_nM_CD3+"]].isna().all().all()


def test_readouts_split_by_instrument_unless_pooled():
    zinc = pd.DataFrame(_zinc_rows("a", "deficient", "D1", "Canto", (0.5, 0.4))
                        + _zinc_rows("b", "replete", "D1", "Fortessa", (1.0, 0.8)))
    t, notes = tables.readouts_table(zinc, pool_instruments=False, source="zinc.tsv")
    assert len(notes) == 1 and "2 instruments" in notes[0]
    assert [c for c in t.columns if c.startswith("zn_nM")] == [
        "zn_nM_CD3+@Canto", "zn_nM_CD3+CD4-CD8+@Canto", "zn_nM_CD3+@Fortessa", "zn_nM_CD3+CD4-CD8+@Fortessa"]
    t = t.set_index("sample_id")
    assert t.loc["a", "zn_nM_CD3+@Canto"] == 0.5 and np.isnan(t.loc["a", "zn_nM_CD3+@Fortessa"])
    pooled, notes = tables.readouts_table(zinc, pool_instruments=True, source="zinc.tsv")
    assert notes == [] and "zn_nM_CD3+" in pooled.columns


def test_imported_gates_replace_the_automatic_ones(culture, tmp_path):
    """#16 for every flow assay: ``zincflow.gates_from`` (here the sample tube's own automatic
    gates, written as GatingML 2.0) gates each tube through FlowKit; the subsets and zinc follow."""
    pytest.importorskip("flowkit", reason="the flowjo extra (FlowKit) is not installed")
    from zincassay.flow.gatingml import auto_gate_shapes, write_gatingml

    s = culture["settings"]
    tube = gate_tube(culture["paths"]["sample"], "sample", s)
    fsc_h_max = 2 * max(float(tube.data.column("FSC-H").max()), 262144.0)
    shapes = auto_gate_shapes(tube.gating, fsc_h_max=fsc_h_max, compensated=tube.data.spill.labels, data=tube.data)
    xml = write_gatingml(tmp_path / "facility.xml", shapes)
    imported = replace(s, gates_from=GatesFrom(str(xml), shapes[-1].population))
    again = gate_tube(culture["paths"]["sample"], "sample", imported)
    assert again.imported is not None
    assert [g.events_kept for g in again.gating.gates] == [g.events_kept for g in tube.gating.gates]
    assert {g.note for g in again.gating.gates} == {"imported from facility.xml"}
    p = culture["paths"]
    res = run_sample(p["sample"], p["fmin"], p["fmax"], p["unstained"], imported)
    truth = culture["truth"]
    for sr in res.subsets:  # the other tubes get the same (sample tube's) gates: zinc as with their own
        assert sr.calibration.zn_nM == pytest.approx(truth.loc[sr.subset.name, "zn_nM"], rel=0.10), sr.subset.name
    gf = figures.gating_figure(res.tubes, "s1", marker_scale="asinh", asinh_cofactor=150)
    assert "/lymphocytes" in gf.axes[0].get_title()
