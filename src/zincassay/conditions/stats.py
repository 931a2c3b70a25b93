"""Donor-aware comparison of zinc conditions against the reference condition.

The unit is the donor: per-event and per-cell values are first summarised per sample (by the CFSE
and imaging steps), samples of one donor and condition are averaged, and comparisons pair each
donor's value under a condition with the same donor's value under the reference. With two or more
paired donors: paired t on the differences (95 % CI of the mean difference from the t
distribution); with six or more, the exact Wilcoxon signed-rank p is reported too (below six
donors its smallest two-sided p is 2/2^n > 0.03 and cannot reach significance). With one donor the
comparison is descriptive only. p-values are Holm-adjusted across every comparison in the table.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd
from scipy import stats as st

__all__ = ["CFSE_READOUTS", "COLUMNS", "IMAGING_READOUTS", "LABEL_COLUMNS", "READOUTS", "compare_conditions", "donor_values",
           "holm", "readout_columns", "usable_samples"]

CFSE_READOUTS = ("pct_divided", "fraction_diluted", "division_index", "proliferation_index", "expansion_index",
                 "replication_index")
IMAGING_READOUTS = ("median_baseline_zn_nM", "median_peak_zn_nM", "median_delta_zn_nM", "fraction_responding")
MIN_DONORS_WILCOXON = 6


def holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (NaN entries are left out and stay NaN)."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if not len(ok):
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    running = 0.0
    for i, idx in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[idx]))
        out[idx] = running
    return out


def donor_values(table: pd.DataFrame, readout: str) -> pd.DataFrame:
    """Donor x condition matrix of ``readout`` (mean over a donor's samples in a condition)."""
    t = table[["donor", "condition", readout]].dropna()
    return t.groupby(["donor", "condition"])[readout].mean().unstack("condition")


def _compare_one(values: pd.DataFrame, readout: str, assay: str, conditions: list[str], reference: str) -> list[dict]:
    rows = []
    for cond in conditions:
        col = values[cond].dropna() if cond in values else pd.Series(dtype=float)
        row = {"assay": assay, "readout": readout, "condition": cond, "reference": reference,
               "n_donors": len(col), "mean": col.mean() if len(col) else np.nan,
               "sd": col.std(ddof=1) if len(col) > 1 else np.nan}
        row.update(difference=np.nan, ratio=np.nan, ci_low=np.nan, ci_high=np.nan, p_value=np.nan,
                   p_wilcoxon=np.nan, test="", n_paired=0)
        if cond == reference:
            row["test"] = "reference" if len(conditions) > 1 else "reference (no other condition to compare)"
        elif reference not in values or values[reference].dropna().empty:
            row["test"] = f"not compared: no sample of the reference condition {reference!r}"
        else:
            pair = values.reindex(columns=[cond, reference]).dropna()  # a condition may have no value (<LLOQ)
            d = (pair[cond] - pair[reference]).to_numpy()
            n = len(d)
            row["n_paired"] = n
            if n:
                row["difference"] = d.mean()
                ref_mean = pair[reference].mean()
                row["ratio"] = pair[cond].mean() / ref_mean if ref_mean else np.nan
            if n == 1:
                row["test"] = "descriptive only (1 donor)"
            elif n >= 2:
                sd = d.std(ddof=1)
                half = st.t.ppf(0.975, n - 1) * sd / np.sqrt(n)
                row["ci_low"], row["ci_high"] = d.mean() - half, d.mean() + half
                if sd > 1e-12 * max(abs(d.mean()), 1e-300):
                    row["p_value"] = float(st.ttest_1samp(d, 0.0).pvalue)
                else:
                    row["p_value"] = 1.0 if d.mean() == 0 else 0.0
                row["test"] = f"paired t over donors (n={n})"
                if n >= MIN_DONORS_WILCOXON and np.any(d != 0):
                    row["p_wilcoxon"] = float(st.wilcoxon(d, method="exact" if n <= 25 else "auto").pvalue)
                    row["test"] += "; Wilcoxon signed-rank in p_wilcoxon"
            else:
                row["test"] = "not compared: no donor has samples in both conditions"
        rows.append(row)
    return rows


#: Columns of ``conditions.tsv``, in order.
COLUMNS = ["assay", "readout", "condition", "reference", "n_donors", "mean", "sd", "n_paired", "difference",
           "ratio", "ci_low", "ci_high", "p_value", "p_holm", "p_wilcoxon", "test"]


def usable_samples(table: pd.DataFrame) -> pd.DataFrame:
    """The rows that enter the comparison: samples that succeeded and pass QC (CFSE ``qc_pass``,
    imaging at least one QC-passing cell)."""
    t = table.copy()
    if "donor" in t:
        t["donor"] = t["donor"].astype(str)
    if "status" in t:
        t = t[t["status"].astype(str) == "ok"]
    if "qc_pass" in t:
        t = t[t["qc_pass"].astype(str).str.lower() == "true"]
    if "n_pass" in t:
        t = t[t["n_pass"] > 0]
    return t


#: The readouts compared for each assay's per-sample table (None: every numeric column that is not
#: a label, for tables whose readouts are named by the data, e.g. one per subset or analyte).
READOUTS: dict[str, tuple[str, ...] | None] = {"cfse": CFSE_READOUTS, "imaging": IMAGING_READOUTS}
#: Columns of a per-sample table that are never readouts.
LABEL_COLUMNS = frozenset({"sample_id", "condition", "donor", "batch", "status", "failure", "qc_pass", "qc_flags",
                           "n_pass", "n_cells", "events_total", "events_gated", "n_wells"})


def readout_columns(table: pd.DataFrame, readouts: tuple[str, ...] | None, exclude: Collection[str] = ()) -> list[str]:
    """The readouts of ``table`` to compare: the listed ones it has, or every numeric column that is
    not a label, a flag (bool) or in ``exclude`` (the sample sheet's columns: metadata carried along,
    such as a dose, are never readouts)."""
    if readouts is not None:
        return [r for r in readouts if r in table]
    return [c for c in table.columns if c not in LABEL_COLUMNS and c not in exclude
            and pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c])]


def compare_conditions(tables: dict[str, pd.DataFrame | None], order: list[str], reference: str,
                       readouts: dict[str, tuple[str, ...] | None] | None = None,
                       exclude: Collection[str] = ()) -> pd.DataFrame:
    """``results/summary/conditions.tsv``: every assay x readout x condition (columns :data:`COLUMNS`).

    Parameters
    ----------
    tables : dict of assay to DataFrame or None
        Each assay's per-sample table (one row per sample with ``sample_id, condition, donor`` and its
        readouts, e.g. ``results/cfse/indices.tsv``, ``results/imaging/summary.tsv``); failed and
        QC-failing samples are left out (:func:`usable_samples`).
    order : list of str
        Conditions in display order; any others found are appended sorted.
    reference : str
        The condition every other one is compared with.
    readouts : dict, optional
        The readouts per assay (default :data:`READOUTS`; an assay not listed: every numeric
        non-label column).
    exclude : collection of str
        Columns never compared (the sample sheet's own columns), for assays not listed.

    Returns
    -------
    DataFrame
        One row per assay x readout x condition with usable samples; ``test`` says what was done,
        or why nothing could be (one condition, no reference samples, no paired donor, one donor).
        Empty (with the columns) when no sample is usable.
    """
    readouts = READOUTS if readouts is None else readouts
    rows: list[dict] = []
    for assay, table in tables.items():
        if table is None or table.empty:
            continue
        t = usable_samples(table)
        if t.empty:
            continue
        conds = [c for c in order if c in set(t["condition"])]
        conds += sorted(set(t["condition"].dropna()) - set(conds))
        for readout in readout_columns(t, readouts.get(assay), exclude):
            rows += _compare_one(donor_values(t, readout), readout, assay, conds, reference)
    out = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "p_holm"])
    out["p_holm"] = holm(out["p_value"].to_numpy()) if len(out) else np.array([], dtype=float)
    return out[COLUMNS]
