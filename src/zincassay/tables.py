"""Reading and writing the workflow's tables (TSV) and records (JSON), reproducibly and atomically.

Tables are written with fixed float formatting, gzip without a timestamp (``.gz``); JSON with
sorted keys. Every file is written to ``<name>.part`` and then renamed, so a rerun gives
identical bytes and a killed job never leaves a file that looks complete.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["FLOAT_FORMAT", "atomic_path", "collect_tables", "read_json", "read_table", "write_json", "write_table",
           "write_text"]

FLOAT_FORMAT = "%.6g"


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield ``<path>.part`` to write to; on success rename it to ``path``, on failure remove it.

    The parent folder is created. Used by every writer in zincassay.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno == errno.ENOSPC and not exc.filename:  # name the file the disk had no room for
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a TSV reproducibly (fixed float format; gzip without timestamp) and atomically."""
    compression = {"method": "gzip", "mtime": 0} if Path(path).suffix == ".gz" else None
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False, float_format=FLOAT_FORMAT, compression=compression,
                     lineterminator="\n")
    return Path(path)


def write_text(text: str, path: str | Path) -> Path:
    """Write UTF-8 text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(obj: Any, path: str | Path) -> Path:
    """Write a JSON record (sorted keys, one-space indent; numpy scalars as numbers) atomically."""
    return write_text(json.dumps(obj, indent=1, sort_keys=True, default=float) + "\n", path)


def read_json(path: str | Path) -> Any:
    """Read a JSON record written by :func:`write_json`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a table written by :func:`write_table`; donor and batch stay text, only blanks and
    'nan' are missing (a donor called 'NA' stays 'NA'). An empty file (a failed sample's table)
    reads as an empty frame."""
    try:
        return pd.read_csv(path, sep="\t", dtype={"donor": str, "batch": str}, keep_default_na=False,
                           na_values=["", "nan", "NaN"])
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def collect_tables(paths: list[str | Path], out: str | Path, sort_keys: tuple[str, ...]) -> Path:
    """Concatenate the tables at ``paths``, sort by the ``sort_keys`` present (stable), write ``out``.

    Columns follow the table with the most columns (a failed sample's short record must not reorder
    the columns of the others); columns only some tables have come after, in order of appearance.
    Integer columns stay integers (blank where a table lacks them). Empty tables (failed samples'
    secondary tables) add no rows.
    """
    frames = [read_table(p) for p in paths]
    frames = [f for f in frames if not f.empty] or frames[:1]
    integer = {c for f in frames for c in f.columns if pd.api.types.is_integer_dtype(f[c])}
    integer -= {c for f in frames for c in f.columns if not pd.api.types.is_integer_dtype(f[c])}
    # integer columns stay integers where a failed sample's record leaves them empty
    frames = [f.astype({c: "Int64" for c in integer if c in f.columns}) for f in frames]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if frames:
        widest = max(frames, key=lambda f: f.shape[1])
        table = table[[*widest.columns, *(c for c in table.columns if c not in set(widest.columns))]]
    keys = [k for k in sort_keys if k in table.columns]
    if keys:
        table = table.sort_values(keys, kind="stable")
    return write_table(table, out)
