"""The compensation policy of the flow assays: which spill matrix, and what a bad one does.

The arithmetic is :func:`zincassay.io.fcs.compensate`; this module decides what to apply from a
``compensate`` setting (``auto`` = the file's own matrix when it has one, ``off``, or a CSV path)
and an ``on_bad_spill`` setting (``error`` stops, ``warn`` continues uncompensated with the flag
``spill_not_applied``).
"""

from __future__ import annotations

import numpy as np

from zincassay.io.fcs import CompensationError, FCSData, compensate, read_spill_csv

__all__ = ["apply_compensation"]


def apply_compensation(data: FCSData, mode: str, on_bad_spill: str) -> tuple[np.ndarray, str, list[str]]:
    """Events to analyse, what was applied, and flags.

    Parameters
    ----------
    data : FCSData
    mode : "auto", "off", or the path of a CSV spill matrix.
    on_bad_spill : "error" or "warn".

    Returns
    -------
    events : ndarray (n_events, n_channels)
        Compensated (float64) or the file's values.
    applied : str
        ``"none"``, ``"file $SPILLOVER"`` (the keyword used) or the CSV path.
    flags : list of str
        ``["spill_not_applied"]`` when a matrix was present but unusable and ``on_bad_spill`` is warn.

    Raises
    ------
    CompensationError
        A malformed or non-matching matrix with ``on_bad_spill`` error.
    """
    if mode == "off":
        return data.events, "none", []
    spill = read_spill_csv(mode) if mode != "auto" else None
    if spill is None and data.spill is None and not data.spill_problem:
        return data.events, "none", []
    try:
        events = compensate(data, spill)
    except CompensationError:
        if on_bad_spill == "error":
            raise
        return data.events, "none", ["spill_not_applied"]
    applied = spill.source if spill is not None else f"file {data.spill.source}"  # type: ignore[union-attr]
    return events, applied, []
