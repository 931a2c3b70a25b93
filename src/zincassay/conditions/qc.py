"""``results/summary/qc.tsv``: every excluded sample, gate loss and excluded cell, in one table."""

from __future__ import annotations

import pandas as pd

__all__ = ["qc_table"]

COLUMNS = ["assay", "level", "sample_id", "cell_id", "item", "excluded", "detail"]


def qc_table(cfse_indices: pd.DataFrame | None, cfse_gates: pd.DataFrame | None, imaging_cells: pd.DataFrame | None,
             imaging_summary: pd.DataFrame | None, statuses: list[dict] | None = None) -> pd.DataFrame:
    """One row per QC event.

    ``level`` is ``file`` (a sample or control whose analysis failed: ``item`` is ``failed`` and
    ``detail`` the one-line reason), ``sample`` (a flag on a whole sample; ``excluded`` says whether
    it left the comparison), ``gate`` (events removed by a CFSE gate, with the fraction kept in
    ``detail``) or ``cell`` (an imaging cell with its reason codes; flags that keep the cell are
    listed too). ``statuses`` are the per-sample ``status.json`` records.
    """
    rows: list[dict] = []
    failed = set()
    for st in statuses or []:
        if st.get("status") == "failed":
            failed.add(st["sample_id"])
            rows.append({"assay": st.get("assay", ""), "level": "file", "sample_id": st["sample_id"], "cell_id": "",
                         "item": "failed", "excluded": True,
                         "detail": f"{st.get('role', '')} {st.get('file', '')}: {st.get('reason', '')}".strip()})
    if cfse_indices is not None and not cfse_indices.empty:
        for _, r in cfse_indices.iterrows():
            if r["sample_id"] in failed:
                continue
            flags = [f for f in str(r.get("qc_flags", "")).split(";") if f and f != "nan"]
            passed = str(r.get("qc_pass", "True")).lower() == "true"
            for f in flags or ([] if passed else ["failed"]):
                rows.append({"assay": "cfse", "level": "sample", "sample_id": r["sample_id"], "cell_id": "",
                             "item": f, "excluded": not passed, "detail": ""})
    if cfse_gates is not None and not cfse_gates.empty:
        for _, r in cfse_gates.iterrows():
            n_in, n_out = r.get("events_in"), r.get("events_kept")
            if pd.notna(n_in) and pd.notna(n_out) and n_in > n_out:
                rows.append({"assay": "cfse", "level": "gate", "sample_id": r["sample_id"], "cell_id": "",
                             "item": str(r.get("gate", r.get("step", ""))), "excluded": False,
                             "detail": f"kept {int(n_out)} of {int(n_in)} events ({100 * n_out / n_in:.1f} %)"})
    if imaging_summary is not None and not imaging_summary.empty:
        for _, r in imaging_summary.iterrows():
            if r["sample_id"] in failed:
                continue
            for f in [f for f in str(r.get("sample_flags", "")).split(";") if f and f != "nan"]:
                rows.append({"assay": "imaging", "level": "sample", "sample_id": r["sample_id"], "cell_id": "",
                             "item": f, "excluded": False, "detail": ""})
            if r.get("n_pass", 1) == 0:
                rows.append({"assay": "imaging", "level": "sample", "sample_id": r["sample_id"], "cell_id": "",
                             "item": "no_cell_passes_qc", "excluded": True, "detail": ""})
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
