"""Across samples: the donor-paired comparison, the QC table and what the report opens on.

Tables in (the collected per-assay tables and every per-sample ``status.json``), a
:class:`ConditionsResult` out; figures and the overview text are made from it. Works with any
subset of assays, donors and conditions, and with failed samples (listed, left out of statistics).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import pandas as pd

from zincassay.conditions.qc import qc_table
from zincassay.conditions.settings import ConditionsSettings
from zincassay.conditions.stats import compare_conditions, usable_samples

__all__ = ["ConditionsResult", "summarise_conditions"]


@dataclass
class ConditionsResult:
    """Everything the across-condition step reports.

    ``readouts`` maps each assay to its per-sample table (the tables compared); ``extra`` holds the
    other tables read (``cfse_gates``, ``imaging_cells``, ``cfse_histograms``); ``conditions`` lists
    the conditions present in display order; ``statuses`` are the per-sample status records.
    """

    settings: ConditionsSettings
    stats: pd.DataFrame
    qc: pd.DataFrame
    conditions: list[str]
    statuses: list[dict]
    readouts: dict[str, pd.DataFrame] = field(default_factory=dict)
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)

    def assay_conditions(self, assay: str) -> list[str]:
        """The conditions of one assay's samples, in display order (for its figures)."""
        t = self.readouts.get(assay)
        seen = set(t["condition"].dropna().astype(str)) if t is not None and "condition" in t else set()
        return [c for c in self.conditions if c in seen]

    @property
    def failed(self) -> list[dict]:
        return [s for s in self.statuses if s.get("status") == "failed"]

    def usable(self, assay: str) -> pd.DataFrame:
        """An assay's rows that enter the statistics (an empty frame when the assay is absent)."""
        t = self.readouts.get(assay)
        return usable_samples(t) if t is not None and not t.empty else pd.DataFrame(
            columns=["sample_id", "condition", "donor"])


def summarise_conditions(readouts: dict[str, pd.DataFrame | None], extra: dict[str, pd.DataFrame | None],
                         statuses: list[dict], settings: ConditionsSettings,
                         sheet_columns: Collection[str] = ()) -> ConditionsResult:
    """Compare conditions donor by donor and gather QC.

    Parameters
    ----------
    readouts : dict of assay to DataFrame
        Each assay's collected per-sample table (``cfse``: ``indices.tsv``, ``imaging``:
        ``summary.tsv``, ...); None or missing for absent assays.
    extra : dict
        ``cfse_gates``, ``imaging_cells``, ``cfse_histograms`` when present (QC and figures).
    statuses : list of dict
        Every per-sample ``status.json`` (controls included).
    settings : ConditionsSettings
    sheet_columns : collection of str
        The sample sheet's columns: never readouts (a numeric one, such as a dose, is carried in the
        tables as metadata).
    """
    present = {k: v for k, v in readouts.items() if v is not None}
    extra = {k: v for k, v in extra.items() if v is not None}
    stats = compare_conditions(present, list(settings.order), settings.reference, exclude=sheet_columns)
    seen: set[str] = set()
    for t in present.values():
        if not t.empty and "condition" in t:
            seen |= set(t["condition"].dropna().astype(str))
    conditions = [c for c in settings.order if c in seen] + sorted(seen - set(settings.order))
    qc = qc_table(present, extra.get("cfse_gates"), extra.get("imaging_cells"), statuses)
    return ConditionsResult(settings=settings, stats=stats, qc=qc, conditions=conditions,
                            statuses=sorted(statuses, key=lambda s: s.get("sample_id", "")), readouts=present,
                            extra=extra)
