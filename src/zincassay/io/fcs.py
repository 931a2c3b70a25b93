"""Reader for Flow Cytometry Standard files: FCS 2.0, 3.0, 3.1 and 3.2.

Written from the specifications (Seamer et al. 1997 for FCS 3.0; Spidlen et al.,
Cytometry A 2010;77:97-100 for FCS 3.1; ISAC FCS 3.2, 2020) and hardened on real
files from ~25 instrument models. Why our own reader and not fcsparser/flowio is in the
README ("Why our own FCS reader").

What the reader guarantees
--------------------------
- ``events`` holds *linear* values: integer data are masked to the bits of ``$PnR``,
  log-amplified integer channels are decoded with ``$PnE`` (``10**(f1*x/$PnR)*f2``, with
  ``f2 = 0`` read as 1), and linear channels are divided by ``$PnG``. ``$PnE`` on float data is
  ignored (and noted in ``warnings``), as the FCS 3.1 specification requires.
- The data segment is located from the HEADER, or from ``$BEGINDATA``/``$ENDDATA`` when the
  HEADER holds 0 (files over 99,999,999 bytes); each candidate is checked against
  ``$TOT`` x bytes-per-event, an ``$ENDDATA`` off by one is tolerated (and noted), and when no
  candidate fits an :class:`FCSError` is raised instead of guessing.
- Everything expected to go wrong raises :class:`FCSError` naming the file and the problem.

The file is memory-mapped and the data segment is decoded in a single pass over the bytes, in
blocks that stay in cache.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from zincassay.errors import ZincassayError

__all__ = [
    "CompensationError",
    "FCSData",
    "FCSError",
    "NotFCSError",
    "SpillMatrix",
    "compensate",
    "parse",
    "read_fcs",
    "read_spill_csv",
]

SPILL_KEYWORDS = ("$SPILLOVER", "SPILL", "SPILLOVER")
_HEADER_BYTES = 58
_BLOCK_ROWS = 65536  # rows decoded per block: keeps the working set in cache


class FCSError(ZincassayError):
    """An FCS file cannot be read; the message names the file and what is wrong."""


class NotFCSError(FCSError):
    """The file does not start with an FCS HEADER."""


class CompensationError(ZincassayError):
    """A spill matrix is missing, malformed, or does not match the file's channels."""


@dataclass(frozen=True)
class SpillMatrix:
    """A spillover matrix.

    Attributes
    ----------
    labels : tuple of str
        The ``$PnN`` names of the channels it covers, in matrix order (possibly a subset of
        the file's channels).
    matrix : ndarray, shape (n, n)
        ``matrix[i, j]`` is the fraction of channel ``labels[i]``'s signal seen in channel
        ``labels[j]`` (unit diagonal). Observed = true @ matrix, so true = observed @ inv(matrix).
    source : str
        Where it came from: the keyword name or the CSV path.
    """

    labels: tuple[str, ...]
    matrix: np.ndarray
    source: str = ""

    def to_dataframe(self) -> pd.DataFrame:
        return pd.DataFrame(self.matrix, index=list(self.labels), columns=list(self.labels))


@dataclass
class FCSData:
    """One data set of an FCS file.

    Attributes
    ----------
    path : Path
    version : str
        e.g. ``"FCS3.1"``.
    keywords : dict of str to str
        Every TEXT keyword, names upper-cased, values as written (primary and supplemental TEXT).
    channels : DataFrame
        One row per parameter (index 1..P), columns ``$PnN, $PnS, $PnB, $PnR, $PnE, $PnG, $PnV``.
    events : ndarray, shape (n_events, n_channels)
        Linear values. float32 for float data and for integer data of at most 24 significant
        bits (both exact); float64 otherwise.
    spill : SpillMatrix or None
        From the first of ``$SPILLOVER``, ``SPILL``, ``SPILLOVER`` present and well formed.
    spill_problem : str
        Why a spill keyword that is present could not be used ('' when fine or absent).
    warnings : list of str
        Irregularities met and how they were resolved.
    dataset : int
        Which data set of the file this is (0 = first).
    compensation : str
        What compensation ``events`` carry: ``"none"``, or the source of the spill matrix applied
        (see :meth:`compensated`).
    """

    path: Path
    version: str
    keywords: dict[str, str]
    channels: pd.DataFrame
    events: np.ndarray
    spill: SpillMatrix | None = None
    spill_problem: str = ""
    warnings: list[str] = field(default_factory=list)
    dataset: int = 0
    compensation: str = "none"

    @property
    def n_events(self) -> int:
        return int(self.events.shape[0])

    @property
    def channel_names(self) -> list[str]:
        """``$PnN`` of every channel, in file order."""
        return list(self.channels["$PnN"])

    def channel_index(self, name: str) -> int:
        """Column of ``events`` for a channel named by ``$PnN`` or ``$PnS`` (case-insensitive).

        ``$PnN`` wins over ``$PnS`` when both match. Raises :class:`FCSError` listing the
        available channels when nothing matches or the name is ambiguous.
        """
        key = str(name).strip().casefold()
        pnn = [str(v).strip().casefold() for v in self.channels["$PnN"]]
        pns = [str(v).strip().casefold() for v in self.channels["$PnS"]]
        for names in (pnn, pns):
            hits = [i for i, v in enumerate(names) if v and v == key]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise FCSError(
                    f"{self.path}: channel name {name!r} is ambiguous (columns "
                    f"{[h + 1 for h in hits]}); use the $PnN name. Available: {self.describe_channels()}"
                )
        raise FCSError(
            f"{self.path}: no channel named {name!r}. Available channels ($PnN / $PnS): "
            f"{self.describe_channels()}"
        )

    def has_channel(self, name: str) -> bool:
        try:
            self.channel_index(name)
        except FCSError:
            return False
        return True

    def describe_channels(self) -> str:
        parts = []
        for pnn, pns in zip(self.channels["$PnN"], self.channels["$PnS"], strict=True):
            parts.append(f"{pnn} / {pns}" if pns else f"{pnn}")
        return "; ".join(parts)

    def column(self, name: str) -> np.ndarray:
        """Linear values of one channel, shape (n_events,)."""
        return self.events[:, self.channel_index(name)]

    def compensated(self, spill: SpillMatrix | None = None) -> FCSData:
        """A copy whose ``events`` are compensated (see :func:`compensate`), with ``compensation``
        naming the matrix applied (``"file <keyword>"`` or the CSV path).

        Raises :class:`CompensationError` like :func:`compensate`.
        """
        events = compensate(self, spill)
        used = spill if spill is not None else self.spill
        source = used.source if spill is not None else f"file {used.source}"  # type: ignore[union-attr]
        return replace(self, events=events, compensation=source)

    def to_dataframe(self, naming: str = "$PnN") -> pd.DataFrame:
        """Events as a DataFrame with columns named by ``$PnN`` or ``$PnS`` (falling back to $PnN)."""
        names = _column_names(self.channels, naming)
        return pd.DataFrame(self.events, columns=names)


# --------------------------------------------------------------------------- HEADER


@dataclass(frozen=True)
class _Header:
    version: str
    text: tuple[int, int]
    data: tuple[int, int]
    analysis: tuple[int, int]


def _parse_header(buf: np.ndarray, base: int, path: Path) -> _Header:
    size = buf.size - base
    if size < _HEADER_BYTES:
        if base == 0 and size < 3:
            raise NotFCSError(f"{path}: not an FCS file (only {size} bytes).")
        raise FCSError(
            f"{path}: truncated: {size} bytes where an FCS HEADER alone needs {_HEADER_BYTES}."
        )
    head = bytes(buf[base : base + _HEADER_BYTES])
    if not head.startswith(b"FCS"):
        raise NotFCSError(
            f"{path}: not an FCS file: it starts with {head[:6]!r} instead of 'FCSx.y'. "
            "Export the sample as FCS 3.1 (or 3.0/2.0) from the acquisition software."
        )
    version = head[:6].decode("ascii", "replace")
    offsets = []
    for k in range(6):
        raw = head[10 + 8 * k : 18 + 8 * k].strip()
        if not raw:
            offsets.append(0)
        elif raw.isdigit():
            offsets.append(int(raw))
        else:
            raise FCSError(f"{path}: HEADER offset field {k + 1} is not a number: {raw!r}.")
    return _Header(version, (offsets[0], offsets[1]), (offsets[2], offsets[3]), (offsets[4], offsets[5]))


# --------------------------------------------------------------------------- TEXT


def _decode(token: bytes) -> str:
    try:
        return token.decode("utf-8")
    except UnicodeDecodeError:
        return token.decode("latin-1")


def _split_text(raw: bytes, path: Path, what: str, warnings: list[str]) -> dict[str, str]:
    """Split a TEXT segment into keywords; a doubled delimiter is an escaped delimiter."""
    raw = raw.rstrip(b"\x00")
    if len(raw) < 2:
        raise FCSError(f"{path}: the {what} segment is empty.")
    delim = raw[:1]
    if delim.isalnum() or delim in b" $":
        raise FCSError(
            f"{path}: the {what} segment starts with {delim!r}, which cannot be a delimiter: "
            "the HEADER's TEXT offsets are wrong or the file is corrupt."
        )
    body = raw[1:]
    if not body.endswith(delim):
        stripped = body.rstrip(b" \r\n\t")
        if stripped.endswith(delim):
            body = stripped
        else:
            warnings.append(f"{what} segment does not end with its delimiter; read up to the end")
    parts = body.split(delim)
    if parts and parts[-1] == b"":
        parts.pop()
    tokens: list[bytes] = []
    if parts:
        cur = parts[0]
        i = 1
        while i < len(parts):
            p = parts[i]
            if p == b"" and i + 1 < len(parts):
                cur += delim + parts[i + 1]
                i += 2
            else:
                tokens.append(cur)
                cur = p
                i += 1
        tokens.append(cur)
    if len(tokens) < 2:
        raise FCSError(f"{path}: the {what} segment holds no keyword/value pairs.")
    if len(tokens) % 2:
        warnings.append(f"{what} segment has an odd number of fields; the last one ({_decode(tokens[-1])[:30]!r}) was ignored")
        tokens.pop()
    out: dict[str, str] = {}
    for k in range(0, len(tokens), 2):
        key = _decode(tokens[k]).strip().upper()
        if not key:
            continue
        if key in out and out[key] != _decode(tokens[k + 1]):
            warnings.append(f"keyword {key} appears twice in {what}; kept the last value")
        out[key] = _decode(tokens[k + 1])
    return out


def _read_segment(buf: np.ndarray, base: int, start: int, end: int, path: Path, what: str) -> bytes:
    size = buf.size
    if start <= 0 or end < start:
        raise FCSError(f"{path}: the {what} segment has invalid offsets {start}-{end}.")
    if base + end >= size:
        if base + end == size:  # end offset one past the last byte: a common off-by-one
            end -= 1
        else:
            raise FCSError(
                f"{path}: truncated or corrupt: the {what} segment ends at byte {base + end} "
                f"but the file has only {size} bytes."
            )
    return bytes(buf[base + start : base + end + 1])


def _int_keyword(kw: dict[str, str], key: str, path: Path, default: int | None = None) -> int:
    value = kw.get(key)
    if value is None or not value.strip():
        if default is not None:
            return default
        raise FCSError(f"{path}: required keyword {key} is missing.")
    try:
        return int(value.strip())
    except ValueError:
        try:
            as_float = float(value.strip())
        except ValueError:
            raise FCSError(f"{path}: keyword {key} is not a number: {value!r}.") from None
        if not math.isfinite(as_float) or as_float != int(as_float):
            raise FCSError(f"{path}: keyword {key} is not a whole number: {value!r}.") from None
        return int(as_float)


def _float_pair(value: str) -> tuple[float, float]:
    parts = [p for p in re.split(r"[,\s]+", value.strip()) if p]
    try:
        f1 = float(parts[0]) if parts else 0.0
        f2 = float(parts[1]) if len(parts) > 1 else 0.0
    except ValueError:
        return (math.nan, math.nan)
    return (f1, f2)


# --------------------------------------------------------------------------- channels


def _channel_table(kw: dict[str, str], n_par: int, path: Path, warnings: list[str]) -> pd.DataFrame:
    rows = []
    for n in range(1, n_par + 1):
        pnn = kw.get(f"$P{n}N", "").strip()
        if not pnn:
            pnn = f"P{n}"
            warnings.append(f"$P{n}N is missing; channel {n} named {pnn!r}")
        pnb_raw = kw.get(f"$P{n}B", "").strip()
        if not pnb_raw:
            raise FCSError(f"{path}: required keyword $P{n}B (bits of channel {n}) is missing.")
        if pnb_raw == "*":
            raise FCSError(f"{path}: $P{n}B is '*' (free-format ASCII data), which is not supported.")
        pnb = _int_keyword(kw, f"$P{n}B", path)
        pnr_raw = kw.get(f"$P{n}R", "").strip()
        try:
            pnr = float(pnr_raw) if pnr_raw else 0.0
        except ValueError:
            raise FCSError(f"{path}: $P{n}R is not a number: {pnr_raw!r}.") from None
        f1, f2 = _float_pair(kw.get(f"$P{n}E", "0,0"))
        if math.isnan(f1):
            raise FCSError(f"{path}: $P{n}E is not of the form 'f1,f2': {kw.get(f'$P{n}E')!r}.")
        try:
            png = float(kw.get(f"$P{n}G", "1").strip() or 1.0)
        except ValueError:
            warnings.append(f"$P{n}G is not a number ({kw.get(f'$P{n}G')!r}); gain 1 used")
            png = 1.0
        if png <= 0 or not math.isfinite(png):
            warnings.append(f"$P{n}G is {png}; gain 1 used")
            png = 1.0
        rows.append(
            {
                "$PnN": pnn,
                "$PnS": kw.get(f"$P{n}S", "").strip(),
                "$PnB": pnb,
                "$PnR": pnr,
                "$PnE": f"{f1:g},{f2:g}",
                "$PnG": png,
                "$PnV": kw.get(f"$P{n}V", "").strip(),
            }
        )
    table = pd.DataFrame(rows, index=pd.RangeIndex(1, n_par + 1, name="channel"))
    return table


def _column_names(channels: pd.DataFrame, naming: str) -> list[str]:
    if naming.upper() in ("$PNS", "PNS"):
        names = [s if s else n for n, s in zip(channels["$PnN"], channels["$PnS"], strict=True)]
    else:
        names = list(channels["$PnN"])
    seen: dict[str, int] = {}
    out = []
    for nm in names:  # make names unique, as a DataFrame needs
        if nm in seen:
            seen[nm] += 1
            out.append(f"{nm}_{seen[nm]}")
        else:
            seen[nm] = 0
            out.append(nm)
    return out


# --------------------------------------------------------------------------- spill


def _parse_spill(kw: dict[str, str], channels: pd.DataFrame) -> tuple[SpillMatrix | None, str]:
    for key in SPILL_KEYWORDS:
        if key not in kw:
            continue
        value = kw[key].strip()
        fields = [f.strip() for f in value.split(",")]
        try:
            n = int(float(fields[0]))
        except ValueError:
            return None, f"{key} does not start with the channel count: {value[:40]!r}"
        if n == 0:
            return None, ""
        labels = fields[1 : 1 + n]
        coeffs = fields[1 + n :]
        if len(labels) < n:
            return None, f"{key} announces {n} channels but lists {len(labels)} labels"
        if len(coeffs) != n * n:
            return None, (
                f"{key} lists {n} channels but {len(coeffs)} coefficients "
                f"(a {n}x{n} matrix needs {n * n})"
            )
        try:
            matrix = np.array([float(c) for c in coeffs], dtype=np.float64).reshape(n, n)
        except ValueError:
            return None, f"{key} has a coefficient that is not a number"
        resolved = []
        pnn = [str(v) for v in channels["$PnN"]]
        pns = [str(v) for v in channels["$PnS"]]
        for label in labels:
            if label in pnn:
                resolved.append(label)
            elif label in pns:
                resolved.append(pnn[pns.index(label)])
            elif label.isdigit() and 1 <= int(label) <= len(pnn):
                resolved.append(pnn[int(label) - 1])
            else:
                return None, f"{key} names channel {label!r}, which the file does not have"
        if len(set(resolved)) != len(resolved):
            return None, f"{key} names a channel twice"
        return SpillMatrix(tuple(resolved), matrix, key), ""
    return None, ""


def read_spill_csv(path: str | Path) -> SpillMatrix:
    """Read a spill matrix from a CSV: a header row of channel names, then one row per channel.

    An optional first column holding the row labels (matching the header) is allowed.
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise CompensationError(f"{path}: cannot read the spill-matrix CSV: {exc}") from None
    layout = ("write it as a header row of channel names ($PnN) and one row of coefficients per channel, "
              "optionally led by that channel's name")
    first = frame.columns[0] if frame.shape[1] else None
    if first is not None and not pd.api.types.is_numeric_dtype(frame[first]):
        frame = frame.set_index(first)
        rows = [str(r).strip() for r in frame.index]
        if rows != [str(c).strip() for c in frame.columns] and frame.shape[0] == frame.shape[1]:
            raise CompensationError(f"{path}: the row labels {rows} do not match the header "
                                    f"{[str(c).strip() for c in frame.columns]}; {layout}")
    labels = [str(c).strip() for c in frame.columns]
    if frame.shape[0] == 0 or frame.shape[0] != frame.shape[1]:
        raise CompensationError(
            f"{path}: not a spill matrix: it must be square with a header of channel names, got "
            f"{frame.shape[0]} rows x {frame.shape[1]} columns; {layout}"
        )
    try:
        matrix = frame.to_numpy(dtype=np.float64)
    except ValueError:
        raise CompensationError(f"{path}: the spill matrix has a value that is not a number; {layout}") from None
    if not np.all(np.isfinite(matrix)) or np.any(np.diag(matrix) <= 0):
        raise CompensationError(f"{path}: the spill matrix has an empty or non-positive diagonal or a missing value; "
                                "each channel's own coefficient is 1")
    return SpillMatrix(tuple(labels), matrix, str(path))


def compensate(data: FCSData, spill: SpillMatrix | None = None) -> np.ndarray:
    """Compensated copy of ``data.events``.

    Parameters
    ----------
    data : FCSData
    spill : SpillMatrix, optional
        Defaults to the file's own matrix. It may cover a subset of the channels; only those
        columns change: ``true = observed @ inv(spill)``.

    Returns
    -------
    ndarray, shape (n_events, n_channels), float64

    Raises
    ------
    CompensationError
        No matrix, a malformed one, a singular one, or labels the file does not have.
    """
    if spill is None:
        spill = data.spill
    if spill is None:
        reason = data.spill_problem or "the file has no spill keyword ($SPILLOVER/SPILL/SPILLOVER)"
        raise CompensationError(
            f"{data.path}: cannot compensate: {reason}. Give a matrix as a CSV with the assay's compensate "
            "key (e.g. cfse.compensate or zincflow.compensate: path/to/spill.csv) or set it to off."
        )
    n = len(spill.labels)
    if spill.matrix.shape != (n, n):
        raise CompensationError(
            f"{spill.source}: spill matrix is {spill.matrix.shape} for {n} labels."
        )
    try:
        idx = [data.channel_index(lbl) for lbl in spill.labels]
    except FCSError as exc:
        raise CompensationError(f"spill matrix from {spill.source}: {exc}") from None
    try:
        inverse = np.linalg.inv(spill.matrix)
    except np.linalg.LinAlgError:
        raise CompensationError(f"{spill.source}: the spill matrix is singular.") from None
    out = data.events.astype(np.float64, copy=True)
    out[:, idx] = out[:, idx] @ inverse
    return out


# --------------------------------------------------------------------------- DATA


def _byte_order(kw: dict[str, str], path: Path) -> str:
    value = kw.get("$BYTEORD", "").strip()
    if not value:
        raise FCSError(f"{path}: required keyword $BYTEORD is missing.")
    try:
        order = [int(p) for p in re.split(r"[,\s]+", value) if p]
    except ValueError:
        raise FCSError(f"{path}: $BYTEORD is not a list of numbers: {value!r}.") from None
    if order == sorted(order) and order == list(range(1, len(order) + 1)):
        return "<"
    if order == sorted(order, reverse=True) and sorted(order) == list(range(1, len(order) + 1)):
        return ">"
    raise FCSError(f"{path}: $BYTEORD {value!r} (mixed byte order) is not supported.")


def _locate_data(
    hdr: _Header, kw: dict[str, str], bytes_per_event: int, size: int, base: int, path: Path,
    warnings: list[str],
) -> tuple[int, int]:
    """Return (absolute start, n_events) of the data segment."""
    candidates: list[tuple[str, int, int]] = []
    if hdr.data[0] > 0:
        candidates.append(("HEADER", hdr.data[0], hdr.data[1]))
    begin = _int_keyword(kw, "$BEGINDATA", path, default=0) if kw.get("$BEGINDATA", "").strip() else 0
    end = _int_keyword(kw, "$ENDDATA", path, default=0) if kw.get("$ENDDATA", "").strip() else 0
    if begin > 0 and (begin, end) != (hdr.data if hdr.data[0] > 0 else (-1, -1)):
        candidates.append(("TEXT", begin, end))
    if not candidates:
        raise FCSError(f"{path}: neither the HEADER nor $BEGINDATA/$ENDDATA give the data offsets.")
    tot_raw = kw.get("$TOT", "").strip()
    tot = _int_keyword(kw, "$TOT", path) if tot_raw else None
    if tot is not None and tot < 0:
        raise FCSError(f"{path}: $TOT is negative ({tot}).")

    tried = []
    for label, start, stop in candidates:
        length = stop - start + 1
        avail = size - (base + start)
        if start <= 0 or (avail <= 0 and not (tot == 0)):
            tried.append(f"{label} {start}-{stop} (starts past the end of the file)")
            continue
        n = tot
        if n is None:
            usable = min(length, avail)
            if usable % bytes_per_event not in (0, 1):
                tried.append(f"{label} {start}-{stop} ({length} bytes, not a multiple of {bytes_per_event} bytes per event)")
                continue
            n = usable // bytes_per_event
        need = n * bytes_per_event
        if abs(length - need) <= 1 and need <= avail:
            if length != need:
                warnings.append(
                    f"{label} data segment {start}-{stop} is {length} bytes where $TOT x "
                    f"{bytes_per_event} bytes per event = {need}; read {need} (end offset off by one)"
                )
            if len(candidates) > 1 and label == candidates[0][0]:
                other = candidates[1]
                warnings.append(
                    f"HEADER and TEXT data offsets disagree (HEADER {start}-{stop}, TEXT "
                    f"{other[1]}-{other[2]}); used HEADER, which matches $TOT"
                )
            elif len(candidates) > 1:
                first = candidates[0]
                warnings.append(
                    f"HEADER and TEXT data offsets disagree (HEADER {first[1]}-{first[2]}, TEXT "
                    f"{start}-{stop}); used TEXT, which matches $TOT"
                )
            return base + start, n
        if need > avail and abs(length - need) <= 1:
            tried.append(f"{label} {start}-{stop} (needs {need} bytes, the file has {max(avail, 0)} from there: truncated)")
        else:
            tried.append(f"{label} {start}-{stop} ({length} bytes, but $TOT {n} x {bytes_per_event} = {need})")
    raise FCSError(
        f"{path}: no data segment matches $TOT x bytes per event: tried " + "; ".join(tried)
        + ". The file is truncated or its offsets are corrupt; re-export it."
    )


def _effective_mask(pnr: float, storage_bits: int) -> int:
    """Bit mask for an integer channel: the bits needed for $PnR, capped by the storage width."""
    full = (1 << storage_bits) - 1
    if pnr <= 1:
        return full
    bits = math.ceil(math.log2(pnr))
    return full if bits >= storage_bits else (1 << bits) - 1


def _decode_data(
    buf: np.ndarray, start: int, n_events: int, channels: pd.DataFrame, datatype: str,
    order: str, path: Path, warnings: list[str],
) -> np.ndarray:
    n_par = len(channels)
    pnb = [int(b) for b in channels["$PnB"]]
    if datatype in ("F", "D"):
        width = 4 if datatype == "F" else 8
        bad = [i + 1 for i, b in enumerate(pnb) if b != width * 8]
        if bad:
            warnings.append(f"$PnB of channels {bad} is not {width * 8} for $DATATYPE {datatype}; read as {width * 8}-bit floats")
        dtype = np.dtype(f"{order}f{width}")
        raw = np.ndarray((n_events, n_par), dtype=dtype, buffer=buf, offset=start)
        out_dtype = np.float32 if datatype == "F" else np.float64
        out = np.empty((n_events, n_par), dtype=out_dtype)
        for r in range(0, n_events, _BLOCK_ROWS):
            out[r : r + _BLOCK_ROWS] = raw[r : r + _BLOCK_ROWS]
        pne = [_float_pair(v) for v in channels["$PnE"]]
        logged = [i + 1 for i, (f1, _) in enumerate(pne) if f1 != 0]
        if logged:
            warnings.append(
                f"$PnE declares log amplification on float channels {logged}; ignored, as the "
                "FCS 3.1 specification requires for $DATATYPE F/D"
            )
        gains = channels["$PnG"].to_numpy(dtype=np.float64)
        for j in np.nonzero(gains != 1.0)[0]:
            out[:, j] /= out_dtype(gains[j])
        return out

    if datatype != "I":
        raise FCSError(f"{path}: $DATATYPE {datatype!r} is not supported (only I, F, D).")
    nbytes = [(b + 7) // 8 for b in pnb]
    if any(b <= 0 or b > 64 for b in pnb):
        raise FCSError(f"{path}: $PnB values {sorted(set(pnb))} are not valid integer widths.")
    storage_bits = [8 * w for w in nbytes]
    masks = [_effective_mask(float(r), s) for r, s in zip(channels["$PnR"], storage_bits, strict=True)]
    eff_bits = [m.bit_length() for m in masks]
    pne = [_float_pair(v) for v in channels["$PnE"]]
    gains = channels["$PnG"].to_numpy(dtype=np.float64)
    log_cols = [j for j, (f1, _) in enumerate(pne) if f1 > 0]
    gain_cols = [j for j in range(n_par) if gains[j] != 1.0 and j not in log_cols]
    exact32 = max(eff_bits) <= 24
    out_dtype = np.float32 if exact32 else np.float64
    out = np.empty((n_events, n_par), dtype=out_dtype)
    bpe = sum(nbytes)
    uniform = len(set(nbytes)) == 1 and nbytes[0] in (1, 2, 4, 8)
    if uniform:
        w = nbytes[0]
        udt = np.dtype(f"u{w}")
        raw = np.ndarray((n_events, n_par), dtype=np.dtype(f"{order}u{w}"), buffer=buf, offset=start)
        mask_row = np.array(masks, dtype=udt)
        need_mask = any(m != (1 << (8 * w)) - 1 for m in masks)
        tmp = np.empty((min(_BLOCK_ROWS, max(n_events, 1)), n_par), dtype=udt)
        for r in range(0, n_events, _BLOCK_ROWS):
            block = raw[r : r + _BLOCK_ROWS]
            t = tmp[: block.shape[0]]
            if need_mask:
                np.bitwise_and(block, mask_row, out=t)
            else:
                t[...] = block
            out[r : r + _BLOCK_ROWS] = t
    else:
        offset = 0
        for j, w in enumerate(nbytes):
            if w in (1, 2, 4, 8):
                col = np.ndarray(
                    (n_events,), dtype=np.dtype(f"{order}u{w}"), buffer=buf,
                    offset=start + offset, strides=(bpe,),
                )
                vals = col.astype(np.uint64)
            else:  # 3, 5, 6, 7 bytes: assemble from single bytes
                vals = np.zeros(n_events, dtype=np.uint64)
                byte_idx = range(w) if order == ">" else range(w - 1, -1, -1)
                for k in byte_idx:
                    b = np.ndarray(
                        (n_events,), dtype=np.uint8, buffer=buf, offset=start + offset + k, strides=(bpe,)
                    )
                    vals = (vals << np.uint64(8)) | b
            vals &= np.uint64(masks[j])
            out[:, j] = vals
            offset += w
    for j in log_cols:
        f1, f2 = pne[j]
        pnr = float(channels["$PnR"].iloc[j])
        if pnr <= 0:
            raise FCSError(f"{path}: channel {j + 1} is log-amplified ($PnE {f1:g},{f2:g}) but $PnR is {pnr:g}.")
        scale = f2 if f2 > 0 else 1.0  # f2 = 0 is written by older instruments and means 1
        col = out[:, j].astype(np.float64)
        out[:, j] = scale * np.power(10.0, f1 * col / pnr)
    for j in gain_cols:
        out[:, j] /= out.dtype.type(gains[j])
    return out


# --------------------------------------------------------------------------- public


def _open(path: Path) -> np.ndarray:
    try:
        if path.is_dir():
            raise FCSError(f"{path}: is a folder, not an FCS file.")
        if path.stat().st_size == 0:
            raise NotFCSError(f"{path}: not an FCS file (the file is empty).")
        return np.memmap(path, dtype=np.uint8, mode="r")
    except FileNotFoundError:
        raise FCSError(f"{path}: file not found.") from None
    except PermissionError:
        raise FCSError(f"{path}: permission denied; check the file's read permissions.") from None
    except OSError as exc:
        raise FCSError(f"{path}: cannot open: {exc.strerror or exc}.") from None


def read_fcs(path: str | Path, dataset: int = 0) -> FCSData:
    """Read one data set of an FCS file.

    Parameters
    ----------
    path : str or Path
    dataset : int
        Which data set to read for files with ``$NEXTDATA`` (0 = the first).

    Returns
    -------
    FCSData

    Raises
    ------
    FCSError
        For every problem with the file; the message names the file and the problem.
    """
    path = Path(path)
    buf = _open(path)
    size = buf.size
    base = 0
    warnings: list[str] = []
    for index in range(dataset + 1):
        hdr = _parse_header(buf, base, path)
        warnings = []
        text = _read_segment(buf, base, hdr.text[0], hdr.text[1], path, "TEXT")
        kw = _split_text(text, path, "TEXT", warnings)
        if index < dataset:
            nxt = _int_keyword(kw, "$NEXTDATA", path, default=0) if kw.get("$NEXTDATA", "").strip() else 0
            if nxt <= 0:
                raise FCSError(f"{path}: has {index + 1} data set(s); data set {dataset} was asked for.")
            base += nxt
            if base >= size:
                raise FCSError(f"{path}: $NEXTDATA points past the end of the file (byte {base} of {size}).")
    version = hdr.version
    if version not in ("FCS2.0", "FCS3.0", "FCS3.1", "FCS3.2"):
        warnings.append(f"version {version!r} is not one of FCS2.0/3.0/3.1/3.2; read as FCS3.1")
    s_begin = kw.get("$BEGINSTEXT", "0").strip() or "0"
    s_end = kw.get("$ENDSTEXT", "0").strip() or "0"
    if s_begin.isdigit() and s_end.isdigit() and int(s_begin) > 0 and int(s_end) > int(s_begin):
        if (int(s_begin), int(s_end)) != hdr.text:
            try:
                stext = _read_segment(buf, base, int(s_begin), int(s_end), path, "supplemental TEXT")
                for k, v in _split_text(stext, path, "supplemental TEXT", warnings).items():
                    kw.setdefault(k, v)
            except FCSError as exc:
                warnings.append(f"supplemental TEXT ignored: {exc}")

    mode = kw.get("$MODE", "L").strip().upper() or "L"
    if mode != "L":
        raise FCSError(f"{path}: $MODE {mode} (histogram data) is not supported; only list mode (L) is.")
    datatype = kw.get("$DATATYPE", "").strip().upper()
    if not datatype:
        raise FCSError(f"{path}: required keyword $DATATYPE is missing.")
    if datatype not in ("I", "F", "D"):
        raise FCSError(f"{path}: $DATATYPE {datatype!r} is not supported (only I, F and D).")
    n_par = _int_keyword(kw, "$PAR", path)
    if n_par <= 0 or n_par > 10000:
        raise FCSError(f"{path}: $PAR is {n_par}, which cannot be right.")
    order = _byte_order(kw, path)
    channels = _channel_table(kw, n_par, path, warnings)
    if datatype == "I":
        bpe = int(sum((int(b) + 7) // 8 for b in channels["$PnB"]))
        if any(int(b) % 8 for b in channels["$PnB"]):
            odd = sorted({int(b) for b in channels["$PnB"] if int(b) % 8})
            warnings.append(f"$PnB {odd} is not a whole number of bytes; each value read from {8 * ((odd[0] + 7) // 8)}-bit words and masked to $PnR")
    else:
        bpe = n_par * (4 if datatype == "F" else 8)
    start, n_events = _locate_data(hdr, kw, bpe, size, base, path, warnings)
    events = _decode_data(buf, start, n_events, channels, datatype, order, path, warnings)
    spill, problem = _parse_spill(kw, channels)
    if problem:
        warnings.append(f"spill matrix unusable: {problem}")
    return FCSData(
        path=path, version=version, keywords=kw, channels=channels, events=events,
        spill=spill, spill_problem=problem, warnings=warnings, dataset=dataset,
    )


def parse(
    path: str | Path,
    meta_data_only: bool = False,
    compensate: bool = False,
    channel_naming: str = "$PnS",
    reformat_meta: bool = False,
    data_set: int = 0,
    dtype: str = "float32",
) -> tuple[dict, pd.DataFrame] | dict:
    """Drop-in for ``fcsparser.parse``: returns ``(meta, data)`` (or ``meta`` alone).

    ``meta`` holds every keyword (upper-cased) plus ``__header__``; with ``reformat_meta`` also
    ``_channels_`` (the channel table) and ``_channel_names_``. ``data`` has one column per
    channel named by ``channel_naming`` (``$PnS``, falling back to ``$PnN``, or ``$PnN``).
    Values are linear (``$PnE``/``$PnG`` applied), unlike fcsparser's raw values. The frame
    wraps the decoded events without copying them (when ``dtype`` is their own, float32 for
    float data), so it costs what :func:`read_fcs` costs.
    """
    data = read_fcs(path, dataset=data_set)
    meta: dict = dict(data.keywords)
    meta["__header__"] = {"FCS format": data.version.encode("ascii", "replace")}
    names = _column_names(data.channels, channel_naming)
    if reformat_meta:
        meta["_channels_"] = data.channels.copy()
        meta["_channel_names_"] = tuple(names)
    if meta_data_only:
        return meta
    events = globals()["compensate"](data) if compensate else data.events
    # the decoded array is fresh and owned here: the frame wraps it (one 2-D block, no copy)
    return meta, pd.DataFrame(events.astype(dtype, copy=False), columns=names, copy=False)
