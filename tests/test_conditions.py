"""Across-condition statistics, QC table and provenance."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from zincassay.conditions.qc import qc_table
from zincassay.conditions.stats import compare_conditions, holm
from zincassay.provenance import build_provenance, sha256

ORDER = ["deficient", "replete", "supplemented"]


def _indices(values: dict[str, list[float]], readout: str = "division_index") -> pd.DataFrame:
    rows = []
    for cond, vals in values.items():
        for i, v in enumerate(vals):
            rows.append({"sample_id": f"s_{cond}_{i}", "condition": cond, "donor": f"D{i + 1}", readout: v,
                         "qc_pass": True})
    return pd.DataFrame(rows)


def test_holm_matches_the_step_down_definition():
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.2])
    # sorted: 0.01*4, 0.03*3, 0.04*2, 0.2*1 -> 0.04, 0.09, 0.09 (monotone), 0.2
    assert holm(p)[[0, 2, 1, 4]] == pytest.approx([0.04, 0.09, 0.09, 0.2])
    assert np.isnan(holm(p)[3])


def test_paired_t_ci_and_ratio_over_donors():
    rep = [1.8, 2.0, 2.3, 1.9]
    sup = [2.5, 2.6, 3.1, 2.4]
    out = compare_conditions({"cfse": _indices({"replete": rep, "supplemented": sup})}, ORDER, "replete")
    row = out[(out["readout"] == "division_index") & (out["condition"] == "supplemented")].iloc[0]
    d = np.subtract(sup, rep)
    assert row["n_paired"] == 4 and row["difference"] == pytest.approx(d.mean())
    assert row["p_value"] == pytest.approx(st.ttest_rel(sup, rep).pvalue)
    half = st.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    assert row["ratio"] == pytest.approx(np.mean(sup) / np.mean(rep))
    assert "paired t" in row["test"] and np.isnan(row["p_wilcoxon"])
    ref = out[out["condition"] == "replete"].iloc[0]
    assert ref["test"] == "reference" and ref["n_donors"] == 4 and ref["sd"] == pytest.approx(np.std(rep, ddof=1))


def test_wilcoxon_from_six_donors_and_descriptive_with_one():
    rng = np.random.default_rng(0)
    rep = list(rng.normal(2, 0.2, 6))
    sup = [v + 0.5 + rng.normal(0, 0.05) for v in rep]
    out = compare_conditions({"cfse": _indices({"replete": rep, "supplemented": sup})}, ORDER, "replete")
    row = out[out["condition"] == "supplemented"].iloc[0]
    assert row["p_wilcoxon"] == pytest.approx(2 / 2**6)  # all six differences positive: exact minimum
    one = compare_conditions({"cfse": _indices({"replete": [2.0], "deficient": [1.0]})}, ORDER, "replete")
    row = one[one["condition"] == "deficient"].iloc[0]
    assert row["test"] == "descriptive only (1 donor)" and row["difference"] == -1.0
    assert np.isnan(row["p_value"]) and np.isnan(row["ci_low"])


def test_donor_is_the_unit_and_failed_samples_are_left_out():
    t = _indices({"replete": [2.0, 2.2], "deficient": [1.0, 1.1]})
    # two more samples of donor D1 under deficient (another batch): averaged into one donor value
    extra = pd.DataFrame([{"sample_id": "x1", "condition": "deficient", "donor": "D1", "division_index": 1.4,
                           "qc_pass": True},
                          {"sample_id": "x2", "condition": "deficient", "donor": "D2", "division_index": 9.0,
                           "qc_pass": False}])
    out = compare_conditions({"cfse": pd.concat([t, extra])}, ORDER, "replete")
    row = out[out["condition"] == "deficient"].iloc[0]
    assert row["n_donors"] == 2
    assert row["mean"] == pytest.approx(((1.0 + 1.4) / 2 + 1.1) / 2)


def test_every_readout_and_p_holm_across_the_table():
    cfse = _indices({c: [1.0 + i, 1.2 + i, 1.1 + i] for i, c in enumerate(ORDER)})
    for col in ("pct_divided", "fraction_diluted", "proliferation_index", "expansion_index", "replication_index"):
        cfse[col] = cfse["division_index"] * 10
    img = pd.DataFrame([{"sample_id": f"z{c}{d}", "condition": c, "donor": f"D{d}", "n_pass": 10,
                         "median_baseline_zn_nM": 0.5 * (i + 1) + 0.01 * d, "median_peak_zn_nM": 2.0 * (i + 1),
                         "median_delta_zn_nM": 1.5 * (i + 1) + 0.02 * d, "fraction_responding": 0.8}
                        for i, c in enumerate(ORDER) for d in (1, 2, 3)])
    out = compare_conditions({"cfse": cfse, "imaging": img}, ORDER, "replete")
    assert len(out) == (6 + 4) * 3
    assert (out["p_holm"].dropna() >= out.loc[out["p_holm"].notna(), "p_value"]).all()
    assert out.loc[out["p_value"].notna(), "p_holm"].notna().all()


def test_qc_table_lists_samples_gates_and_cells():
    ind = pd.DataFrame([{"sample_id": "a", "qc_pass": False, "qc_flags": "poor_fit;no_unstained_control"},
                        {"sample_id": "b", "qc_pass": True, "qc_flags": ""}])
    gates = pd.DataFrame([{"sample_id": "b", "gate": "lymphocytes", "events_in": 1000, "events_kept": 800}])
    cells = pd.DataFrame([{"sample_id": "z", "cell_id": 3, "qc_reason": "saturated", "qc_flags": ""},
                          {"sample_id": "z", "cell_id": 4, "qc_reason": "", "qc_flags": "f_low_baseline"},
                          {"sample_id": "z", "cell_id": 5, "qc_reason": "", "qc_flags": ""}])
    q = qc_table({"cfse": ind, "imaging": pd.DataFrame([{"sample_id": "z", "n_pass": 0, "sample_flags": ""}])},
                 gates, cells)
    assert set(q.loc[q["sample_id"] == "a", "item"]) == {"poor_fit", "no_unstained_control"}
    assert q.loc[q["sample_id"] == "a", "excluded"].all()
    assert "800 of 1000" in q.loc[q["level"] == "gate", "detail"].iloc[0]
    cell_rows = q[q["level"] == "cell"]
    assert list(cell_rows["cell_id"]) == [3, 4] and list(cell_rows["excluded"]) == [True, False]
    assert "no_cell_passes_qc" in set(q["item"])


def test_provenance_fingerprints_inputs(tmp_path):
    from datetime import UTC, datetime

    from zincassay.status import run_sample_step
    from zincassay.tables import read_json

    f = tmp_path / "a.fcs"
    f.write_bytes(b"FCS3.1 data")
    sheet = tmp_path / "s.tsv"
    sheet.write_text("sample_id\n")
    # the per-sample job records the SHA-256 of the bytes it read; provenance is built from those records
    run_sample_step(lambda: None, labels={"sample_id": "a"}, assay="cfse", role="sample", raw=f, outputs={},
                    primary="", failed_columns={}, extra={}, status_path=tmp_path / "status.json")
    prov = build_provenance({"k": 1}, sheet, [read_json(tmp_path / "status.json")], datetime(2026, 1, 1, tzinfo=UTC))
    assert prov["inputs"][0]["sha256"] == sha256(f) == __import__("hashlib").sha256(b"FCS3.1 data").hexdigest()
    assert prov["inputs"][0]["bytes"] == 11 and prov["inputs"][0]["status"] == "ok"
    assert prov["sample_sheet"]["sha256"] == sha256(sheet)
    assert prov["packages"]["numpy"] == np.__version__ and prov["config"] == {"k": 1}
    assert prov["start"] == "2026-01-01T00:00:00+00:00" and prov["end"] >= prov["start"]
    json.dumps(prov)
