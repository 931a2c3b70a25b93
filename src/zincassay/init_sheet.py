"""Draft a sample sheet from a folder of raw files (``zincassay init RAW_DIR``).

Assay from the file type (an FCS file with a zinc-by-flow token, e.g. ``zf``, ``fmin``, ``tpen``, is
``zincflow``); condition, role, donor and batch from file-name tokens; frame interval from image
metadata. Cells that could not be filled are left blank and listed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from zincassay.io import FCS_SUFFIXES, IMAGE_SUFFIXES

__all__ = ["draft_sample_sheet"]

CONDITION_TOKENS = {
    "def": "deficient", "deficient": "deficient", "zndef": "deficient",
    "rep": "replete", "replete": "replete", "ctrl": "replete",
    "sup": "supplemented", "supp": "supplemented", "supplemented": "supplemented",
}
ROLE_TOKENS = {"unstim": "unstimulated", "unstimulated": "unstimulated", "us": "unstimulated",
               "unstained": "unstained", "unst": "unstained", "nostain": "unstained", "blank": "unstained"}
#: zinc by flow: tokens that mark an FCS file as a zincflow tube, and its roles (TPEN = Fmin, zinc + pyrithione = Fmax)
ZINCFLOW_TOKENS = {"zf", "zincflow", "fluozin", "fluozin3", "zinpyr", "fmin", "fmax", "tpen", "pyr", "pyrithione",
                   "znpyr"}
ZINCFLOW_ROLE_TOKENS = {"fmin": "fmin", "tpen": "fmin", "fmax": "fmax", "pyr": "fmax", "pyrithione": "fmax",
                        "znpyr": "fmax", **{t: r for t, r in ROLE_TOKENS.items() if r == "unstained"}}


def _tokens(name: str) -> list[str]:
    return [t for t in re.split(r"[^A-Za-z0-9]+", name.lower()) if t]


def _frame_interval_s(path: Path) -> str:
    """The frame interval (s) the file's metadata give, as the sheet writes it; '' when unknown."""
    from zincassay.io.stacks import stack_metadata

    interval = stack_metadata(path).get("frame_interval_s")
    return f"{interval:g}" if interval else ""


def _is_raw(path: Path, root: Path) -> bool:
    """A raw file of a known type; hidden files and folders (``.x``, macOS ``._x`` resource forks) are not."""
    rel = path.relative_to(root)
    return (path.is_file() and path.suffix.lower() in FCS_SUFFIXES + IMAGE_SUFFIXES
            and not any(part.startswith(".") for part in rel.parts))


def draft_sample_sheet(raw_dir: str | Path, sheet_path: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """Build a draft sheet for every raw file under ``raw_dir``.

    Returns the sheet (file paths relative to ``sheet_path``'s folder) and a list of the cells
    left blank, one message each.
    """
    raw_dir, sheet_path = Path(raw_dir), Path(sheet_path)
    files = sorted(p for p in raw_dir.rglob("*") if _is_raw(p, raw_dir))
    rows, unfilled = [], []
    used: set[str] = set()
    for f in files:
        toks = _tokens(f.stem)
        assay = "cfse" if f.suffix.lower() in FCS_SUFFIXES else "imaging"
        if assay == "cfse" and ZINCFLOW_TOKENS & set(toks):
            assay = "zincflow"
        roles = ZINCFLOW_ROLE_TOKENS if assay == "zincflow" else ROLE_TOKENS
        role = next((roles[t] for t in toks if t in roles), "sample")
        condition = next((CONDITION_TOKENS[t] for t in toks if t in CONDITION_TOKENS), "")
        donor = next((t.upper() for t in toks if re.fullmatch(r"(d|donor)\d+", t)), "")
        donor = re.sub(r"^DONOR", "D", donor)
        batch = next((t.upper() for t in toks if re.fullmatch(r"(b|batch)\d+", t)), "")
        batch = re.sub(r"^BATCH", "B", batch)
        sid = re.sub(r"[^A-Za-z0-9_-]+", "_", f.stem).strip("_") or "sample"
        base, k = sid, 2
        while sid in used:
            sid, k = f"{base}_{k}", k + 1
        used.add(sid)
        interval = _frame_interval_s(f) if assay == "imaging" else ""
        # a zinc-by-flow tube keeps its condition: it names the culture the tube was split from
        keep_condition = role == "sample" or assay == "zincflow"
        row = {"sample_id": sid, "assay": assay, "file": str(Path(_rel(f, sheet_path.parent))),
               "condition": condition if keep_condition else "", "role": role, "donor": donor,
               "batch": batch or "B1", "frame_interval_s": interval, "stimulus_s": "", "pyrithione_s": "",
               "tpen_s": ""}
        if assay == "zincflow":
            row["kinetic"] = "yes" if role == "sample" and {"kinetic", "kin"} & set(toks) else ""
        rows.append(row)
        if role == "sample" and not condition:
            unfilled.append(f"{sid}: condition (no def/rep/sup token in {f.name!r})")
        if role == "sample" and not donor:
            unfilled.append(f"{sid}: donor (no D1/donor1 token in {f.name!r})")
        if not batch:
            unfilled.append(f"{sid}: batch set to B1 (no B1/batch1 token in {f.name!r}); check it")
        if assay == "imaging" and not interval:
            unfilled.append(f"{sid}: frame_interval_s (not in the file's metadata)")
        if assay == "imaging":
            unfilled.append(f"{sid}: stimulus_s, pyrithione_s, tpen_s blank: they will be detected and flagged")
    return pd.DataFrame(rows), unfilled


def _rel(path: Path, start: Path) -> str:
    import os

    return os.path.relpath(path.resolve(), start.resolve())
