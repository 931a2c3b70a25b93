"""Across samples: the donor-paired comparison, the QC table and what the report opens on.

Tables in (the collected per-assay tables and every per-sample ``status.json``), a
:class:`ConditionsResult` out; figures and the overview text are made from it. Works with any
subset of assays, donors and conditions, and with failed samples (listed, left out of statistics).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from zincassay.conditions.qc import qc_table
from zincassay.conditions.settings import ConditionsSettings
from zincassay.conditions.stats import compare_conditions, usable_samples

__all__ = ["ConditionsResult", "summarise_conditions"]


@dataclass
class ConditionsResult:
    """Everything the across-condition step reports.

    ``tables`` maps ``cfse_indices``, ``cfse_gates``, ``imaging_summary``, ``imaging_cells`` and
    ``cfse_histograms`` to the frames read (absent assays are missing); ``conditions`` lists the
    conditions present in display order; ``statuses`` are the per-sample status records.
    """

    settings: ConditionsSettings
    stats: pd.DataFrame
    qc: pd.DataFrame
    conditions: list[str]
    statuses: list[dict]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def failed(self) -> list[dict]:
        return [s for s in self.statuses if s.get("status") == "failed"]

    def usable(self, name: str) -> pd.DataFrame:
        """The rows of a collected sample table that enter the statistics (empty frame if absent)."""
        t = self.tables.get(name)
        return usable_samples(t) if t is not None and not t.empty else pd.DataFrame(
            columns=["sample_id", "condition", "donor"])


def summarise_conditions(tables: dict[str, pd.DataFrame | None], statuses: list[dict],
                         settings: ConditionsSettings) -> ConditionsResult:
    """Compare conditions donor by donor and gather QC.

    Parameters
    ----------
    tables : dict
        ``cfse_indices``, ``cfse_gates``, ``imaging_summary``, ``imaging_cells``,
        ``cfse_histograms`` (any may be None or missing).
    statuses : list of dict
        Every per-sample ``status.json`` (controls included).
    settings : ConditionsSettings
    """
    present = {k: v for k, v in tables.items() if v is not None}
    indices, summary = present.get("cfse_indices"), present.get("imaging_summary")
    stats = compare_conditions(indices, summary, list(settings.order), settings.reference)
    seen: set[str] = set()
    for t in (indices, summary):
        if t is not None and not t.empty:
            seen |= set(t["condition"].dropna().astype(str))
    conditions = [c for c in settings.order if c in seen] + sorted(seen - set(settings.order))
    qc = qc_table(indices, present.get("cfse_gates"), present.get("imaging_cells"), summary, statuses)
    return ConditionsResult(settings=settings, stats=stats, qc=qc, conditions=conditions,
                            statuses=sorted(statuses, key=lambda s: s.get("sample_id", "")), tables=present)
