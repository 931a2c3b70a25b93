"""The page the HTML report opens on (``results/summary/overview.rst``): what was run, what failed,
the main donor-paired comparisons and the QC counts, then where to look.

reStructuredText rendered by Snakemake's report; the text is wrapped in a Jinja ``raw`` block so
that nothing in a sample id or a failure reason is read as a template.
"""

from __future__ import annotations

import math

import pandas as pd

from zincassay.conditions.pipeline import ConditionsResult

__all__ = ["MAIN_READOUTS", "overview_rst"]

#: Readouts shown on the first page (every readout is in ``conditions.tsv``).
MAIN_READOUTS = ("pct_divided", "division_index", "median_baseline_zn_nM", "median_peak_zn_nM",
                 "fraction_responding")
#: ... and readouts named by the data (zinc by flow: ``zn_nM_<subset>``).
MAIN_READOUT_PREFIXES = ("zn_nM_",)


def _num(x: float, digits: int = 3) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}g}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """An rst list-table (cells may hold any text)."""
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        out.append(f"   * - {row[0] or ' '}")
        out += [f"     - {c or ' '}" for c in row[1:]]
    return [*out, ""]


def _comparisons(stats: pd.DataFrame) -> list[list[str]]:
    rows = []
    readout = stats["readout"].astype(str)
    main = stats[readout.isin(MAIN_READOUTS) | readout.str.startswith(MAIN_READOUT_PREFIXES)]
    for _, r in main.iterrows():
        ci = f"{_num(r['difference'])} [{_num(r['ci_low'])}, {_num(r['ci_high'])}]" if pd.notna(r["ci_low"]) \
            else _num(r["difference"])
        rows.append([r["assay"], f"``{r['readout']}``", r["condition"], str(int(r["n_donors"])), _num(r["mean"]),
                     ci, _num(r["p_holm"], 2), r["test"]])
    return rows


def overview_rst(result: ConditionsResult, *, sheet: str, version: str) -> str:
    """The report's first page as reStructuredText."""
    st = result.statuses
    lines = ["{% raw %}", "zincassay results", "=================", ""]
    by_assay: dict[str, list[dict]] = {}
    for s in st:
        by_assay.setdefault(s.get("assay", ""), []).append(s)
    what = "; ".join(f"{assay}: {len(v)} files ({sum(x.get('status') == 'ok' for x in v)} analysed)"
                     for assay, v in sorted(by_assay.items())) or "no files"
    lines += [f"zincassay {version} on the sample sheet ``{sheet}`` ({what}). Conditions in order: "
              f"{', '.join(result.conditions) or 'none'}; each is compared donor by donor with "
              f"``{result.settings.reference}``.", ""]
    failed = result.failed
    lines += ["Failed files", "------------", ""]
    if failed:
        lines += [f"{len(failed)} of {len(st)} files could not be analysed; they are left out of every statistic "
                  "(listed in ``results/summary/qc.tsv``):", ""]
        lines += [f"- **{s['sample_id']}** ({s.get('assay', '')} {s.get('role', '')}): {s.get('reason', '')}"
                  for s in failed]
    else:
        lines.append("None: every file was analysed.")
    lines += ["", "Main comparisons", "----------------", ""]
    rows = _comparisons(result.stats)
    if rows:
        lines += ["Difference from the reference condition, mean over paired donors, with its 95 % CI; p Holm-adjusted "
                  "across every comparison in ``results/summary/conditions.tsv`` (which has all readouts).", ""]
        lines += _table(["assay", "readout", "condition", "donors", "mean", "difference [95 % CI]", "p (Holm)",
                         "test"], rows)
    else:
        lines += ["No comparison could be computed (no usable sample).", ""]
    qc = result.qc
    n_flag = qc[(qc["level"] == "sample")]["sample_id"].nunique() if not qc.empty else 0
    n_excl = qc[(qc["level"] == "sample") & (qc["excluded"].astype(str) == "True")]["sample_id"].nunique() \
        if not qc.empty else 0
    cells = qc[(qc["level"] == "cell") & (qc["excluded"].astype(str) == "True")] if not qc.empty else qc
    lines += ["QC", "--", "", f"- samples with a QC flag: {n_flag}; left out of the comparison for QC: {n_excl}"]
    if not cells.empty:
        reasons = cells["item"].str.split(";").explode().value_counts().sort_index()
        lines.append("- imaging cells excluded: " + ", ".join(f"{k} {v}" for k, v in reasons.items()))
    assays = {"cfse": "CFSE", "imaging": "Imaging", "zincflow": "Zinc (flow)", "beadplex": "Cytokines",
              "elisa": "Cytokines"}
    per_sample = " and ".join(dict.fromkeys(f"`{assays[a]}`_" for a in assays if a in by_assay))
    lines += ["", "Where to look", "-------------", "",
              "- `Conditions`_: ``conditions.tsv`` (every readout) and each donor's values joined across conditions.",
              "- `QC`_: ``qc.tsv`` (failed files, flags, gate losses, excluded cells) and the gating and trace figures."]
    if per_sample:
        lines.append(f"- {per_sample}: every sample's figures with their captions (formulas, QC applied).")
    if result.settings.dose_column:
        lines.append(f"- `Dose response`_: every readout against ``{result.settings.dose_column}`` per donor and source "
                     "(``dose_response.tsv``, ``dose_response_sources.tsv``).")
    lines += ["- `Provenance`_: the resolved config and the sample sheet of this run; "
              "``results/provenance.json`` has versions and input checksums.", "", "{% endraw %}", ""]
    return "\n".join(lines)
