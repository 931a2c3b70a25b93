"""Reading and writing the workflow's TSV tables reproducibly.

Tables are written with fixed float formatting, gzip without a timestamp (``.gz``), and
atomically (``.part`` then rename), so a rerun gives identical bytes and a killed job never
leaves a table that looks complete.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

__all__ = ["FLOAT_FORMAT", "collect_tables", "read_table", "write_table"]

FLOAT_FORMAT = "%.6g"


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a TSV reproducibly (fixed float format; gzip without timestamp) and atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    compression = {"method": "gzip", "mtime": 0} if path.suffix == ".gz" else None
    frame.to_csv(tmp, sep="\t", index=False, float_format=FLOAT_FORMAT, compression=compression,
                 lineterminator="\n")
    os.replace(tmp, path)
    return path


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a table written by :func:`write_table`; donor and batch stay text, only blanks and
    'nan' are missing (a donor called 'NA' stays 'NA')."""
    return pd.read_csv(path, sep="\t", dtype={"donor": str, "batch": str}, keep_default_na=False,
                       na_values=["", "nan", "NaN"])


def collect_tables(sample_dirs: list[str | Path], filename: str, out: str | Path,
                   sort_keys: tuple[str, ...]) -> Path:
    """Concatenate ``<dir>/<filename>`` of every sample, sort by the ``sort_keys`` present, write ``out``."""
    frames = [read_table(Path(d) / filename) for d in sample_dirs]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    keys = [k for k in sort_keys if k in table.columns]
    if keys:
        table = table.sort_values(keys, kind="stable")
    return write_table(table, out)
