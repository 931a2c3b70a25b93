"""Sample-sheet rules of the zinc-by-flow assay: culture matching and the kinetic columns.

Dye loading differs between cultures, so a sample is calibrated only against the TPEN (``fmin``)
and zinc + pyrithione (``fmax``) tubes of its own culture. A culture is the ``culture`` column
when the sheet has one and the row fills it, else donor / condition / batch. An ``unstained``
tube is matched to its culture, or else to a row of the same donor and batch with blank
condition (and culture): one autofluorescence tube per donor and session.

Functions take the sample sheet as :func:`zincassay.samplesheet.read_sample_sheet` returns it
(strings, blanks ''); row numbers in messages are TSV line numbers (header = line 1).
"""

from __future__ import annotations

import pandas as pd

__all__ = ["ASSAY", "CONTROL_ROLES", "ROLES", "SHEET_COLUMNS", "culture_of", "kinetic_column_problems",
           "match_cultures", "parse_kinetic"]

ASSAY = "zincflow"
ROLES = ("sample", "fmin", "fmax", "unstained")
CONTROL_ROLES = ("fmin", "fmax", "unstained")
#: Optional sheet columns of this assay.
SHEET_COLUMNS = ("culture", "kinetic", "addition_s")
_TRUE = ("yes", "true", "1", "y")
_FALSE = ("", "no", "false", "0", "n")


def parse_kinetic(value: str) -> bool:
    """The ``kinetic`` cell as a bool (yes/true/1/y; blank/no/false/0/n). Raises ValueError otherwise."""
    v = str(value).strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError(value)


def culture_of(row: pd.Series) -> str:
    """The culture of a row: its ``culture`` cell, else ``donor/condition/batch``."""
    c = str(row.get("culture", "") or "").strip()
    return c or f"{row['donor']}/{row['condition']}/{row['batch']}"


def match_cultures(sheet: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Attach each zincflow sample's culture and control tubes; list every matching problem.

    Returns
    -------
    sheet : DataFrame
        A copy with ``culture``, ``fmin``, ``fmax`` and ``unstained`` filled for zincflow
        samples (control sample_ids; '' for no unstained tube). Other rows are untouched
        (``culture``/``fmin``/``fmax`` are added as '' when absent).
    problems : list of str
        One sentence per problem: a culture without its fmin or fmax tube (named), a culture
        with two of a control, controls whose culture has no sample, two equally good
        unstained tubes, a zincflow role that does not exist.
    """
    sheet = sheet.copy()
    for col in ("culture", "fmin", "fmax", "unstained"):
        if col not in sheet.columns:
            sheet[col] = ""
    problems: list[str] = []
    zf = sheet[sheet["assay"] == ASSAY]
    keys = {idx: culture_of(row) for idx, row in zf.iterrows()}
    for idx, row in zf.iterrows():
        if row["role"] not in ROLES:
            problems.append(f"row {idx + 2} ({row['sample_id']}): role {row['role']!r} is not valid for assay "
                            f"{ASSAY}; use {', '.join(sorted(ROLES))}")
    by_culture: dict[tuple[str, str], list[int]] = {}
    for idx, row in zf.iterrows():
        by_culture.setdefault((keys[idx], row["role"]), []).append(idx)
    shared_af: dict[tuple[str, str], list[int]] = {}
    for idx, row in zf[(zf["role"] == "unstained") & (zf["condition"] == "")].iterrows():
        if not str(row.get("culture", "") or "").strip():
            shared_af.setdefault((row["donor"], row["batch"]), []).append(idx)

    def ids(idxs: list[int]) -> str:
        return ", ".join(sheet.loc[i, "sample_id"] for i in idxs)

    cultures = sorted({k for k, _ in by_culture})
    for culture in cultures:
        samples = by_culture.get((culture, "sample"), [])
        rows_named = ", ".join(str(i + 2) for i in sorted(i for (c, _), v in by_culture.items() if c == culture for i in v))
        if not samples:
            ctl = [i for r in CONTROL_ROLES for i in by_culture.get((culture, r), [])]
            shared = [i for i in ctl if i in {j for v in shared_af.values() for j in v}]
            if len(shared) < len(ctl):
                problems.append(
                    f"culture {culture} (rows {rows_named}) has control tubes ({ids([i for i in ctl if i not in shared])}) "
                    "but no sample; check the spelling of its donor, condition and batch (or culture)")
            continue
        chosen: dict[str, str] = {}
        for role, what in (("fmin", "TPEN"), ("fmax", "zinc + pyrithione")):
            found = by_culture.get((culture, role), [])
            if not found:
                problems.append(
                    f"culture {culture} (rows {rows_named}: {ids(samples)}) has no {role} tube; add a row with role "
                    f"{role!r} (the {what} tube) and the same donor, condition and batch (or culture)")
            elif len(found) > 1:
                problems.append(f"culture {culture} has {len(found)} {role} tubes ({ids(found)}); keep one, or give "
                                "them different values in a culture column")
            else:
                chosen[role] = sheet.loc[found[0], "sample_id"]
        af = by_culture.get((culture, "unstained"), [])
        if not af:
            r0 = sheet.loc[samples[0]]
            af = shared_af.get((r0["donor"], r0["batch"]), [])
        if len(af) > 1:
            problems.append(f"culture {culture}: {len(af)} unstained tubes match ({ids(af)}); keep one")
        elif af:
            chosen["unstained"] = sheet.loc[af[0], "sample_id"]
        for i in samples:
            sheet.loc[i, "culture"] = culture
            for role in ("fmin", "fmax", "unstained"):
                sheet.loc[i, role] = chosen.get(role, "")
    return sheet, problems


def kinetic_column_problems(sheet: pd.DataFrame) -> list[str]:
    """Problems with the ``kinetic`` and ``addition_s`` cells of zincflow rows."""
    problems: list[str] = []
    zf = sheet[sheet["assay"] == ASSAY]
    for idx, row in zf.iterrows():
        label = f"row {idx + 2} ({row['sample_id']})"
        kin = False
        if "kinetic" in sheet.columns:
            try:
                kin = parse_kinetic(row["kinetic"])
            except ValueError:
                problems.append(f"{label}: kinetic {row['kinetic']!r} is not yes or no (blank = no)")
        if kin and row["role"] != "sample":
            problems.append(f"{label}: only a sample tube can be kinetic (role is {row['role']!r})")
        add = str(row.get("addition_s", "") or "").strip() if "addition_s" in sheet.columns else ""
        if add:
            try:
                ok = float(add) >= 0
            except ValueError:
                ok = False
            if not ok:
                problems.append(f"{label}: addition_s {add!r} is not a number of seconds >= 0 "
                                "(leave blank to find it as the pause in acquisition)")
            elif not kin:
                problems.append(f"{label}: addition_s is set but the tube is not marked kinetic; set kinetic to yes")
    return problems
