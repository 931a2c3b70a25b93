"""``results/summary/qc.tsv``: every excluded sample, gate loss and excluded cell, in one table."""

from __future__ import annotations

import pandas as pd

__all__ = ["qc_table"]

COLUMNS = ["assay", "level", "sample_id", "cell_id", "item", "excluded", "detail"]


def qc_table(samples: dict[str, pd.DataFrame | None], cfse_gates: pd.DataFrame | None = None,
             imaging_cells: pd.DataFrame | None = None, statuses: list[dict] | None = None) -> pd.DataFrame:
    """One row per QC event.

    ``level`` is ``file`` (a sample or control whose analysis failed: ``item`` is ``failed`` and
    ``detail`` the one-line reason), ``sample`` (a flag on a whole sample, from its ``qc_flags`` or
    ``sample_flags``; ``excluded`` says whether it left the comparison), ``gate`` (events removed by a
    CFSE gate, with the fraction kept in ``detail``) or ``cell`` (an imaging cell with its reason
    codes; flags that keep the cell are listed too).

    Parameters
    ----------
    samples : dict of assay to DataFrame
        Each assay's per-sample table (as compared by :func:`~zincassay.conditions.stats.compare_conditions`).
    cfse_gates, imaging_cells : DataFrame, optional
        ``results/cfse/gates.tsv`` and ``results/imaging/cells.tsv``.
    statuses : list of dict
        The per-sample ``status.json`` records.
    """
    from zincassay.conditions.stats import usable_samples

    rows: list[dict] = []
    failed = set()
    for st in statuses or []:
        if st.get("status") == "failed":
            failed.add(st["sample_id"])
            rows.append({"assay": st.get("assay", ""), "level": "file", "sample_id": st["sample_id"], "cell_id": "",
                         "item": "failed", "excluded": True,
                         "detail": f"{st.get('role', '')} {st.get('file', '')}: {st.get('reason', '')}".strip()})
    for assay, table in samples.items():
        if table is None or table.empty:
            continue
        used = set(usable_samples(table)["sample_id"])
        for _, r in table.iterrows():
            if r["sample_id"] in failed:
                continue
            flags = [f for col in ("qc_flags", "sample_flags") for f in str(r.get(col, "")).split(";")
                     if f and f != "nan"]
            excluded = r["sample_id"] not in used
            if "n_pass" in r and r["n_pass"] == 0:
                flags.append("no_cell_passes_qc")
            for f in flags or (["failed_qc"] if excluded else []):
                rows.append({"assay": assay, "level": "sample", "sample_id": r["sample_id"], "cell_id": "",
                             "item": f, "excluded": excluded, "detail": ""})
    if cfse_gates is not None and not cfse_gates.empty:
        for _, r in cfse_gates.iterrows():
            n_in, n_out = r.get("events_in"), r.get("events_kept")
            if pd.notna(n_in) and pd.notna(n_out) and n_in > n_out:
                rows.append({"assay": "cfse", "level": "gate", "sample_id": r["sample_id"], "cell_id": "",
                             "item": str(r.get("gate", r.get("step", ""))), "excluded": False,
                             "detail": f"kept {int(n_out)} of {int(n_in)} events ({100 * n_out / n_in:.1f} %)"})
    if imaging_cells is not None and not imaging_cells.empty:
        for _, r in imaging_cells.iterrows():
            reason = str(r.get("qc_reason", "")) if pd.notna(r.get("qc_reason")) else ""
            flags = str(r.get("qc_flags", "")) if pd.notna(r.get("qc_flags")) else ""
            for item, excluded in ((reason, True), (flags, False)):
                if item:
                    rows.append({"assay": "imaging", "level": "cell", "sample_id": r["sample_id"],
                                 "cell_id": int(r["cell_id"]), "item": item, "excluded": excluded, "detail": ""})
    out = pd.DataFrame(rows, columns=COLUMNS)
    return out.sort_values(["assay", "sample_id", "level", "cell_id", "item"], kind="stable",
                           key=lambda s: s.astype(str)).reset_index(drop=True)
