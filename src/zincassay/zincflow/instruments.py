"""Instruments: free-zinc values are compared only within one instrument unless configured.

The same cells give free-zinc values that differ by up to ~165-fold between a plate reader, a
flow cytometer and a microscope (Alker & Haase 2020), and cytometers differ in lasers, filters
and detector settings. Every tube's ``$CYT`` is recorded (``instrument``, ``instrument_fmin``,
``instrument_fmax`` in ``zinc.tsv``); a sample whose own tubes disagree is flagged
``instrument_mismatch``; and the comparison across conditions refuses rows from more than one
instrument unless ``zincflow.pool_instruments`` is true.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["NO_CYT", "instrument_groups", "instrument_problems"]

#: How a file without ``$CYT`` is named.
NO_CYT = "(no $CYT)"


def instrument_groups(table: pd.DataFrame) -> dict[str, list[str]]:
    """Instrument -> sorted sample_ids, from rows of ``zinc.tsv`` (``instrument`` column)."""
    inst = table["instrument"].fillna("").astype(str).str.strip().replace("", NO_CYT)
    out: dict[str, list[str]] = {}
    for name, ids in table.groupby(inst)["sample_id"]:
        out[str(name)] = sorted(set(map(str, ids)))
    return dict(sorted(out.items()))


def instrument_problems(table: pd.DataFrame, *, pool_instruments: bool, source: str) -> list[str]:
    """Why the rows of ``table`` cannot be pooled into one comparison ([] when they can).

    Parameters
    ----------
    table : DataFrame
        Rows of ``zinc.tsv`` (at least ``sample_id`` and ``instrument``).
    pool_instruments : bool
        ``zincflow.pool_instruments``: allow pooling anyway.
    source : str
        The table's path, for the message.
    """
    if pool_instruments or table.empty:
        return []
    groups = instrument_groups(table)
    if len(groups) < 2:
        return []
    listed = "; ".join(f"{name}: {', '.join(ids[:4])}{' ...' if len(ids) > 4 else ''} ({len(ids)} samples)"
                       for name, ids in groups.items())
    return [f"{source}: free zinc was measured on {len(groups)} instruments ($CYT) -- {listed}; values differ between "
            "instruments, so they are not pooled into one comparison. Analyse each instrument's samples with its own "
            "sample sheet, or set zincflow.pool_instruments: true if the instruments are known to agree"]
