"""The compensation policy of the flow assays: which spill matrix, and what a bad one does.

The arithmetic is :meth:`zincassay.io.fcs.FCSData.compensated`; this module decides what to apply
from a ``compensate`` setting (``auto`` = the file's own matrix when it has one, ``off``, or a CSV
path) and an ``on_bad_spill`` setting (``error`` stops, ``warn`` continues uncompensated with the
flag ``spill_not_applied``).
"""

from __future__ import annotations

import numpy as np

from zincassay.errors import ZincassayError
from zincassay.io.fcs import CompensationError, FCSData, SpillMatrix, read_spill_csv

__all__ = ["apply_compensation", "check_finite"]


def apply_compensation(data: FCSData, mode: str, on_bad_spill: str) -> tuple[FCSData, list[str], SpillMatrix | None]:
    """The data to analyse, flags, and the matrix applied.

    Parameters
    ----------
    data : FCSData
        As read.
    mode : "auto", "off", or the path of a CSV spill matrix.
    on_bad_spill : "error" or "warn".

    Returns
    -------
    data : FCSData
        Compensated (``data.compensation`` names the matrix) or ``data`` itself.
    flags : list of str
        ``["spill_not_applied"]`` when a matrix was present but unusable and ``on_bad_spill`` is warn.
    matrix : SpillMatrix or None
        The matrix applied (the CSV's or the file's own); None when the events are uncompensated.

    Raises
    ------
    CompensationError
        A malformed or non-matching matrix with ``on_bad_spill`` error.
    """
    if mode == "off":
        return data, [], None
    spill = read_spill_csv(mode) if mode != "auto" else None
    if spill is None and data.spill is None and not data.spill_problem:
        return data, [], None
    try:
        return data.compensated(spill), [], spill or data.spill
    except CompensationError:
        if on_bad_spill == "error":
            raise
        return data, ["spill_not_applied"], None


def check_finite(data: FCSData, channels: list[str | None]) -> None:
    """Refuse events holding NaN or infinite values in the channels an assay uses, the scatter channels or
    the channels the spill matrix covers (a damaged export): one :class:`ZincassayError` naming the file.

    Channels that do not exist are skipped here (the assay reports them with the list of channels).
    """
    from zincassay.flow.gating import find_scatter_channels

    used = [data.channel_index(c) for c in channels if c and data.has_channel(c)]  # missing ones: said later
    sc = find_scatter_channels(data)
    used += [data.channel_index(c) for c in (sc.fsc_a, sc.fsc_h, sc.ssc) if c]
    if data.spill is not None:
        used += [data.channel_index(c) for c in data.spill.labels if data.has_channel(c)]
    bad = ~np.isfinite(data.events[:, sorted(set(used))]).all(axis=1)
    if bad.any():
        raise ZincassayError(f"{data.path}: {int(bad.sum())} of {data.n_events} events hold NaN or infinite values "
                             "in the channels used; the file is damaged or was exported wrongly: export it again "
                             "from the acquisition software")
