"""Plate layouts and plate-reader exports, read and joined well by well.

**Layout** (CSV, or the first sheet of an ``.xlsx``): a grid as labs draw it, a header row
``1 .. 12`` (or ``1 .. 24``) and rows ``A .. H`` (``A .. P``), one label per well:

- a standard level of the kit (``STD1``, ``Std 1``: case, spaces and dashes ignored),
- ``BLANK``/``BLK`` or the kit's blank name: a blank (zero standard),
- empty, ``-``, ``x``, ``empty``: an unused well,
- anything else: a sample id (replicate wells share it).

Further grids in the same file are named by their top-left cell; one named ``dilution`` gives
each sample well's dilution factor (``10`` or ``1:10``; empty = 1).

**Export** (CSV or ``.xlsx``): every plate grid in the file (BioTek Gen5, Tecan, BMG and
SoftMax exports all write grids), each with its wavelength taken from the grid's top-left cell
or the line above it (``450``, ``450 nm``, ``Read 1:450``, ``OD570``); or a list with a ``Well``
column and one column per wavelength. Readings above the reader's range (``OVRFLW``, ``Over``,
``>4.0``, ``*``) become +inf and are flagged, never dropped silently.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zincassay.curves.standards import normalise_label, parse_dilution
from zincassay.errors import ZincassayError

__all__ = ["PlateLayout", "PlateReading", "read_export", "read_layout", "read_rows", "wells_of"]

EMPTY_LABELS = {"", "-", "X", "EMPTY", "NA", "N/A", "NONE", "."}
BLANK_LABELS = {"BLANK", "BLK", "BLANKS"}
_SATURATED = re.compile(r"^(ovrflw|over(flow)?|sat(urated)?|high|hi|inf|∞|\*+|>.*)$", re.I)
_WAVELENGTH = re.compile(r"(?<!\d)([3-9]\d\d)(?:\.\d+)?\s*(?:nm)?(?!\d)", re.I)
_WELL = re.compile(r"^([A-Pa-p])0*([1-9]\d?)$")
PLATES = {12: 8, 24: 16}  # columns -> rows


def wells_of(n_cols: int) -> list[str]:
    """Well names of a plate with ``n_cols`` columns, row by row (A1, A2, ...)."""
    rows = PLATES[n_cols]
    return [f"{chr(65 + r)}{c + 1}" for r in range(rows) for c in range(n_cols)]


def read_rows(path: str | Path) -> list[list[str]]:
    """All rows of a CSV/TSV (delimiter sniffed) or of every sheet of an ``.xlsx``, as stripped strings."""
    path = Path(path)
    if not path.is_file():
        raise ZincassayError(f"{path}: file not found")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        try:
            import openpyxl

            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for a corrupt file
            raise ZincassayError(f"{path}: cannot be read as an Excel workbook ({exc})") from None
        rows = []
        for ws in wb.worksheets:
            for row in ws.iter_rows(values_only=True):
                rows.append(["" if v is None else (f"{v:.10g}" if isinstance(v, float) else str(v)).strip() for v in row])
            rows.append([])
        wb.close()
        return rows
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        text = path.read_text(encoding="latin-1")
    sample = "\n".join(text.splitlines()[:30])
    counts = {d: sample.count(d) for d in (",", ";", "\t")}
    delim = max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","
    return [[c.strip() for c in row] for row in csv.reader(io.StringIO(text), delimiter=delim)]


@dataclass
class _Grid:
    name: str
    n_cols: int
    values: dict[str, str]


def _int_run(row: list[str], j: int) -> int:
    n = 0
    while j + n < len(row) and row[j + n].strip() == str(n + 1):
        n += 1
    return n


def _find_grids(rows: list[list[str]]) -> list[_Grid]:
    """Every plate grid: a header run 1, 2, ..., N (N <= 24) and rows A, B, ... below it. A partial
    grid (fewer columns or rows than the plate) is kept; missing wells read as empty."""
    grids: list[_Grid] = []
    i = 0
    while i < len(rows):
        row = rows[i]
        found = None
        for j in range(len(row)):
            if row[j].strip() == "1":
                n = _int_run(row, j)
                if 2 <= n <= 24:
                    found = (j, n)
                    break
        if found is None:
            i += 1
            continue
        j, n = found
        values: dict[str, str] = {}
        k = 0
        while k < 16 and i + 1 + k < len(rows):
            r = rows[i + 1 + k]
            if j < 1 or len(r) < j or r[j - 1].strip().upper() != chr(65 + k):
                break
            cells = r[j : j + n] + [""] * max(0, j + n - len(r))
            for c, v in enumerate(cells):
                values[f"{chr(65 + k)}{c + 1}"] = v
            k += 1
        if k == 0:
            i += 1
            continue
        name = row[j - 1].strip() if j >= 1 else ""
        if not name or name == "<>":
            back = [" ".join(c for c in rows[b] if c) for b in range(max(0, i - 3), i)]
            back = [t for t in back if t]
            name = back[-1] if back else ""
        grids.append(_Grid(name, 12 if n <= 12 and k <= 8 else 24, values))
        i += 1 + k
    return grids


@dataclass(frozen=True)
class PlateLayout:
    """Well labels (and dilutions) of one plate."""

    path: Path
    n_cols: int
    labels: dict[str, str]
    dilution: dict[str, float] = field(default_factory=dict)

    @property
    def n_wells(self) -> int:
        return self.n_cols * PLATES[self.n_cols]

    def used_wells(self) -> list[str]:
        return [w for w in wells_of(self.n_cols) if normalise_label(self.labels.get(w, "")) not in EMPTY_LABELS]


def read_layout(path: str | Path) -> PlateLayout:
    """Read a plate layout (module docstring). Raises :class:`ZincassayError` naming the file."""
    path = Path(path)
    grids = _find_grids(read_rows(path))
    if not grids:
        raise ZincassayError(f"{path}: no plate grid found; a layout has a header row 1..12 (or 1..24) "
                             "and rows A..H (A..P) of well labels")
    layout = next((g for g in grids if "dil" not in g.name.lower()), None)
    if layout is None:
        raise ZincassayError(f"{path}: only a dilution grid found; add the grid of well labels")
    dilution: dict[str, float] = {}
    dil = next((g for g in grids if "dil" in g.name.lower()), None)
    if dil is not None:
        if dil.n_cols != layout.n_cols:
            raise ZincassayError(f"{path}: the dilution grid has {dil.n_cols} columns, the layout {layout.n_cols}")
        for w, v in dil.values.items():
            if v.strip():
                dilution[w] = parse_dilution(v, f"{path}, dilution of well {w}")
    return PlateLayout(path, layout.n_cols, dict(layout.values), dilution)


@dataclass(frozen=True)
class PlateReading:
    """Readings of one plate: wavelength (nm, None when the export does not say) -> well -> OD
    (+inf above the reader's range, NaN where the export has no number)."""

    path: Path
    n_cols: int
    readings: dict[float | None, dict[str, float]]


def _value(text: str) -> float:
    t = text.strip().replace(",", ".") if text.count(",") == 1 and "." not in text else text.strip()
    if not t:
        return np.nan
    if _SATURATED.match(t):
        return np.inf
    try:
        return float(t)
    except ValueError:
        return np.nan


def _wavelength(name: str) -> float | None:
    m = _WAVELENGTH.search(name)
    return float(m.group(1)) if m else None


def _list_format(rows: list[list[str]]) -> PlateReading | None:
    for i, row in enumerate(rows):
        low = [c.lower() for c in row]
        wcol = next((k for k, c in enumerate(low) if c in ("well", "well position", "well id", "wells")), None)
        if wcol is None:
            continue
        cols = {k: _wavelength(c) for k, c in enumerate(row) if k != wcol and _wavelength(c) is not None}
        if not cols:
            continue
        readings: dict[float | None, dict[str, float]] = {wl: {} for wl in cols.values()}
        max_col = 0
        for r in rows[i + 1 :]:
            if len(r) <= wcol or not r[wcol].strip():
                break
            m = _WELL.match(r[wcol].strip())
            if not m:
                continue
            well = f"{m.group(1).upper()}{int(m.group(2))}"
            max_col = max(max_col, int(m.group(2)))
            for k, wl in cols.items():
                readings[wl][well] = _value(r[k]) if k < len(r) else np.nan
        n_cols = 12 if max_col <= 12 else 24
        return PlateReading(Path(), n_cols, readings)
    return None


def read_export(path: str | Path) -> PlateReading:
    """Read a plate-reader export (module docstring). Raises :class:`ZincassayError` naming the file."""
    path = Path(path)
    rows = read_rows(path)
    grids = _find_grids(rows)
    if grids:
        readings: dict[float | None, dict[str, float]] = {}
        for g in grids:
            wl = _wavelength(g.name)
            if wl in readings:
                raise ZincassayError(f"{path}: two grids read at {wl if wl else 'an unnamed wavelength'}; "
                                     "keep one read per wavelength in the export")
            readings[wl] = {w: _value(v) for w, v in g.values.items()}
        sizes = {g.n_cols for g in grids}
        if len(sizes) > 1:
            raise ZincassayError(f"{path}: grids of different plate sizes in one export")
        return PlateReading(path, sizes.pop(), readings)
    listed = _list_format(rows)
    if listed is None:
        raise ZincassayError(f"{path}: no plate grid (header 1..12, rows A..H) and no list with a 'Well' "
                             "column and wavelength columns found; export the raw ODs as a plate grid")
    return PlateReading(path, listed.n_cols, listed.readings)
