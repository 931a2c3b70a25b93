"""Writer for FCS 2.0/3.0/3.1 list-mode files (used by the simulator and the tests).

It writes what real instruments write: a 58-byte HEADER, a TEXT segment and a DATA segment,
with the flavours the reader must survive (byte orders, integer widths including 24-bit,
float/double data, the > 99,999,999-byte offset form, a chosen delimiter).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from zincassay.io.fcs import SPILL_KEYWORDS, FCSData, SpillMatrix

__all__ = ["carried_keywords", "fcs_bytes", "write_events_fcs", "write_fcs"]

# keywords the writer sets itself (layout, channels) and spill keywords (written from a SpillMatrix)
_LAYOUT = re.compile(
    r"^\$(BEGIN|END)(DATA|ANALYSIS|STEXT)$|^\$(NEXTDATA|PAR|TOT|DATATYPE|BYTEORD|MODE)$|^\$P\d+[A-Z]+$"
)


def _escape(value: str, delim: str) -> str:
    value = str(value)
    if value == "":
        value = " "
    return value.replace(delim, delim + delim)


def _data_bytes(events: np.ndarray, datatype: str, order: str, pnb: Sequence[int]) -> bytes:
    n, _p = events.shape
    if datatype == "F":
        return np.ascontiguousarray(events, dtype=np.dtype(f"{order}f4")).tobytes()
    if datatype == "D":
        return np.ascontiguousarray(events, dtype=np.dtype(f"{order}f8")).tobytes()
    widths = [(int(b) + 7) // 8 for b in pnb]
    ints = np.rint(events).astype(np.uint64)
    if len(set(widths)) == 1 and widths[0] in (1, 2, 4, 8):
        return np.ascontiguousarray(ints, dtype=np.dtype(f"{order}u{widths[0]}")).tobytes()
    out = np.zeros((n, sum(widths)), dtype=np.uint8)
    col = 0
    for j, w in enumerate(widths):
        v = ints[:, j]
        for k in range(w):  # k = significance of the byte, 0 = least
            byte = ((v >> np.uint64(8 * k)) & np.uint64(0xFF)).astype(np.uint8)
            pos = col + (w - 1 - k if order == ">" else k)
            out[:, pos] = byte
        col += w
    return out.tobytes()


def fcs_bytes(
    events: np.ndarray,
    pnn: Sequence[str],
    *,
    pns: Sequence[str] | None = None,
    datatype: str = "F",
    byteorder: str = "big",
    version: str = "3.1",
    pnb: Sequence[int] | None = None,
    pnr: Sequence[float] | None = None,
    pne: Sequence[str] | None = None,
    png: Sequence[float] | None = None,
    spill: SpillMatrix | None = None,
    spill_keyword: str = "$SPILLOVER",
    keywords: Mapping[str, str] | None = None,
    delimiter: str = "/",
    offsets_in_text_only: bool = False,
    nextdata: int = 0,
) -> bytes:
    """The bytes of one FCS data set.

    Parameters
    ----------
    events : ndarray, shape (n_events, n_channels)
        Values as stored: floats for ``datatype`` F/D; non-negative integers for I (the stored
        channel numbers; ``pne``/``png`` only describe how a reader decodes them).
    pnn, pns : channel detector names and stain names.
    datatype : "I", "F" or "D".
    byteorder : "big" (``4,3,2,1``) or "little" (``1,2,3,4``).
    version : "2.0", "3.0" or "3.1".
    pnb, pnr, pne, png : per-channel ``$PnB``, ``$PnR``, ``$PnE`` (e.g. ``"4,1"``) and ``$PnG``.
    spill : spill matrix written under ``spill_keyword``.
    keywords : extra keywords (written after the required ones).
    delimiter : TEXT delimiter; occurrences inside values are doubled.
    offsets_in_text_only : write 0 for the data offsets in the HEADER, as files over
        99,999,999 bytes do, so only ``$BEGINDATA``/``$ENDDATA`` locate the data.
    nextdata : value of ``$NEXTDATA`` (written with a fixed width of 10 digits).
    """
    events = np.asarray(events)
    if events.ndim != 2 or events.shape[1] != len(pnn):
        raise ValueError("events must be (n_events, n_channels) with one name per channel")
    n, p = events.shape
    datatype = datatype.upper()
    order = ">" if byteorder == "big" else "<"
    if pnb is None:
        pnb = [32 if datatype == "F" else 64 if datatype == "D" else 32] * p
    if pnr is None:
        if datatype == "I":
            pnr = [float(2 ** int(b)) for b in pnb]
        else:
            pnr = [float(max(262144.0, np.ceil(np.nanmax(events[:, j])) if n else 1.0)) for j in range(p)]
    pne = list(pne) if pne is not None else ["0,0"] * p
    data = _data_bytes(events, datatype, order, pnb)

    kw: dict[str, str] = {}
    kw["$BYTEORD"] = "4,3,2,1" if order == ">" else "1,2,3,4"
    kw["$DATATYPE"] = datatype
    kw["$MODE"] = "L"
    kw["$NEXTDATA"] = f"{nextdata:010d}"
    kw["$PAR"] = str(p)
    kw["$TOT"] = str(n)
    for j in range(p):
        k = j + 1
        kw[f"$P{k}N"] = pnn[j]
        if pns is not None and pns[j]:
            kw[f"$P{k}S"] = pns[j]
        kw[f"$P{k}B"] = str(int(pnb[j]))
        kw[f"$P{k}E"] = pne[j]
        kw[f"$P{k}R"] = f"{pnr[j]:.10g}"
        if png is not None:
            kw[f"$P{k}G"] = f"{png[j]:.10g}"
    if spill is not None:
        flat = ",".join(f"{v:.10g}" for v in np.asarray(spill.matrix).ravel())
        kw[spill_keyword] = f"{len(spill.labels)}," + ",".join(spill.labels) + "," + flat
    for key, value in (keywords or {}).items():
        kw[key] = str(value)

    text_start = 58
    with_offsets = version != "2.0"
    data_start = 0
    for _ in range(10):  # offsets change the TEXT length; iterate to a fixed point
        if with_offsets:
            kw["$BEGINANALYSIS"] = "0"
            kw["$ENDANALYSIS"] = "0"
            kw["$BEGINSTEXT"] = "0"
            kw["$ENDSTEXT"] = "0"
            kw["$BEGINDATA"] = str(data_start)
            kw["$ENDDATA"] = str(data_start + len(data) - 1 if data else 0)
        text = delimiter + "".join(
            f"{_escape(k, delimiter)}{delimiter}{_escape(v, delimiter)}{delimiter}" for k, v in kw.items()
        )
        text_b = text.encode("utf-8")
        new_start = text_start + len(text_b)
        if new_start == data_start:
            break
        data_start = new_start
    text_end = text_start + len(text_b) - 1
    data_end = data_start + len(data) - 1
    hdr_data = (0, 0) if offsets_in_text_only or data_end > 99_999_999 else (data_start, data_end)
    header = f"FCS{version}    " + "".join(
        f"{v:>8d}" for v in (text_start, text_end, hdr_data[0], hdr_data[1], 0, 0)
    )
    return header.encode("ascii") + text_b + data


def write_fcs(path: str | Path, events: np.ndarray, pnn: Sequence[str], **kwargs: object) -> Path:
    """Write one data set to ``path`` atomically (a temporary file renamed into place).

    Takes the same keyword arguments as :func:`fcs_bytes`. Returns the path.
    """
    path = Path(path)
    blob = fcs_bytes(events, pnn, **kwargs)  # type: ignore[arg-type]
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(blob)
    os.replace(tmp, path)
    return path


def carried_keywords(data: FCSData) -> dict[str, str]:
    """The keywords of ``data`` that describe the sample (``$FIL``, ``$TIMESTEP``, ``$CYT``, dates,
    custom keywords): all but the layout, per-channel and spill keywords a writer sets itself."""
    return {k: v for k, v in data.keywords.items() if not _LAYOUT.match(k) and k not in SPILL_KEYWORDS}


def write_events_fcs(
    path: str | Path, data: FCSData, mask: np.ndarray | None = None, *,
    extra: Mapping[str, tuple[np.ndarray, str]] | None = None, spill: SpillMatrix | None = None,
) -> Path:
    """Write selected events of a sample, with extra columns, as FCS 3.1 (float, little-endian).

    Parameters
    ----------
    path : str or Path
    data : FCSData
        The sample as read: its linear, uncompensated events, channel names (``$PnN``, ``$PnS``,
        ``$PnR``) and descriptive keywords are kept; ``$PnE``/``$PnG`` are already applied, so
        they are written as ``0,0`` and 1.
    mask : ndarray of bool (n_events,), optional
        Events to write; default all.
    extra : mapping of ``$PnN`` to (values, ``$PnS``)
        Extra columns, each of length ``mask.sum()`` (e.g. a generation and its probability).
        ``$PnR`` is the next integer above the column's maximum (at least 1).
    spill : SpillMatrix, optional
        Written as ``$SPILLOVER``; default the file's own matrix (none if it has none). When
        ``data`` is already compensated (``data.compensation != "none"``) its values are written
        as they are and no spill matrix is written (a program would compensate them twice);
        ``ZINCASSAY_COMPENSATION`` names the matrix that was applied.

    Returns
    -------
    Path
    """
    events = data.events if mask is None else data.events[np.asarray(mask, dtype=bool)]
    cols = [events]
    pnn = list(data.channels["$PnN"])
    pns = list(data.channels["$PnS"])
    pnr = [float(r) if float(r) > 0 else 262144.0 for r in data.channels["$PnR"]]
    for name, (values, stain) in (extra or {}).items():
        v = np.asarray(values).reshape(-1)
        if v.size != events.shape[0]:
            raise ValueError(f"extra column {name!r} has {v.size} values for {events.shape[0]} events")
        cols.append(v[:, None])
        pnn.append(name)
        pns.append(stain)
        pnr.append(float(max(1.0, np.floor(np.nanmax(v)) + 1.0)) if v.size else 1.0)
    dtype = np.float64 if events.dtype == np.float64 else np.float32
    table = np.hstack([np.asarray(c, dtype=dtype) for c in cols]) if cols else events
    keywords = carried_keywords(data)
    keywords["$FIL"] = Path(path).name
    keywords["ZINCASSAY_SOURCE"] = data.path.name
    compensated = getattr(data, "compensation", "none") != "none"
    if compensated:
        keywords["ZINCASSAY_COMPENSATION"] = data.compensation
    matrix = None if compensated else (spill if spill is not None else data.spill)
    return write_fcs(path, table, pnn, pns=pns, datatype="D" if dtype == np.float64 else "F", byteorder="little",
                     version="3.1", pnr=pnr, spill=matrix, keywords=keywords)
