"""ELISA plate simulator: a plate layout and the reader's export (CSV grid, CSV list or .xlsx), with truth.

Physics
-------
- **Signal**: the OD at 450 nm above the plate follows a 4PL/5PL of the concentration in the well
  (``curve``; zero standard ``a`` from non-specific binding, plateau ``d`` from substrate exhaustion).
- **Well-to-well error**: multiplicative (lognormal, ``od_cv``: pipetting, washing) plus additive
  reader noise (``od_sd``); readings are written with 3 decimals, as readers do.
- **Plate background**: each well adds an optical background (plastic, scratches, condensation;
  ``plate_bg_od`` +/- ``plate_bg_sd``) seen at both the measurement and the reference wavelength
  (``ref_ratio`` x at 570 nm), which dual-wavelength correction removes.
- **Edge effect**: outer wells read ``edge_effect`` x higher (evaporation), not corrected by the method.
- **Reader range**: ODs above ``reader_max_od`` are written as ``OVRFLW``.
- **A failed standard level** (``failed_level``): its wells get ``failed_factor`` x the intended
  concentration.

Layout: standards (top first) and the blank down columns 1-2 in duplicate; samples in duplicate side
by side in columns 3-12 (40 per 96-well plate), their dilutions in a second ``dilution`` grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zincassay.curves.model import Logistic
from zincassay.elisa.kit import ElisaKit

__all__ = ["ElisaParams", "write_elisa_plate"]

EXPORT_FORMATS = ("grid-csv", "list-csv", "xlsx")


@dataclass
class ElisaParams:
    a_od: float = 0.03
    d_od: float = 3.2
    c_rel: float = 0.45  # inflection as a fraction of the top standard
    b: float = 1.3
    g: float = 0.8
    od_cv: float = 0.03
    od_sd: float = 0.004
    plate_bg_od: float = 0.045
    plate_bg_sd: float = 0.006
    ref_ratio: float = 0.95
    reader_max_od: float = 4.0
    edge_effect: float = 0.0
    wavelength_nm: int = 450
    reference_nm: int | None = 570

    def curve(self, kit: ElisaKit) -> Logistic:
        model = "4pl" if self.g == 1.0 else "5pl"
        return Logistic(model, a=self.a_od, d=self.d_od, c=self.c_rel * kit.top_standard, b=self.b, g=self.g)


def _layout(kit: ElisaKit, samples: list[dict]) -> tuple[dict[str, str], dict[str, float]]:
    rows = "ABCDEFGH"
    labels = {f"{r}{c}": "" for r in rows for c in range(1, 13)}
    dil: dict[str, float] = {}
    levels = [*kit.standards.levels, kit.standards.blank or "BLANK"]
    if len(levels) > 8:
        raise ValueError("the simulated layout holds at most 7 standards and a blank")
    for i, lv in enumerate(levels):
        labels[f"{rows[i]}1"] = labels[f"{rows[i]}2"] = lv
    slots = [(r, c) for c in range(3, 13, 2) for r in rows]
    if len(samples) > len(slots):
        raise ValueError(f"at most {len(slots)} samples (in duplicate) fit on the simulated plate")
    for s, (r, c) in zip(samples, slots, strict=False):
        for cc in (c, c + 1):
            labels[f"{r}{cc}"] = s["sample_id"]
            dil[f"{r}{cc}"] = float(s.get("dilution", 1.0))
    return labels, dil


def _grid_lines(title: str, values: dict[str, str]) -> list[list[str]]:
    out = [[title, *[str(c) for c in range(1, 13)]]]
    for r in "ABCDEFGH":
        out.append([r, *[values[f"{r}{c}"] for c in range(1, 13)]])
    return out


def _write_csv(path: Path, lines: list[list[str]]) -> None:
    import csv

    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(lines)
    tmp.replace(path)


def write_elisa_plate(
    outdir: str | Path,
    rng: np.random.Generator,
    kit: ElisaKit,
    samples: list[dict],
    params: ElisaParams,
    *,
    plate_id: str = "plate1",
    export_format: str = "grid-csv",
    failed_level: str | None = None,
    failed_factor: float = 0.4,
) -> tuple[Path, Path, dict]:
    """Write ``<plate_id>_layout.csv`` and ``<plate_id>_export.(csv|xlsx)``.

    Parameters
    ----------
    samples : list of dict with ``sample_id``, ``concentration`` (undiluted, kit units),
        optional ``dilution`` (>= 1).
    export_format : "grid-csv" (a grid per wavelength, Gen5-like), "list-csv" (Well + one column per
        wavelength) or "xlsx" (grids in an Excel sheet).

    Returns
    -------
    export path, layout path, truth (``curve``: Logistic of OD vs in-well concentration;
    ``samples``: sample_id -> undiluted concentration; ``wells``: well -> dict of truth).
    """
    if export_format not in EXPORT_FORMATS:
        raise ValueError(f"export_format must be one of {EXPORT_FORMATS}")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    labels, dil = _layout(kit, samples)
    curve = params.curve(kit)
    conc_of = {s["sample_id"]: float(s["concentration"]) for s in samples}
    main: dict[str, str] = {}
    ref: dict[str, str] = {}
    truth_wells = {}
    for w, lab in labels.items():
        r, c = w[0], int(w[1:])
        bg = params.plate_bg_od + rng.normal(0, params.plate_bg_sd)
        if not lab:
            x = np.nan
            signal = 0.0
        else:
            rel = kit.concentration(lab)
            if rel is not None:
                x = rel * (failed_factor if failed_level == lab else 1.0)
            elif lab == (kit.standards.blank or "BLANK"):
                x = 0.0
            else:
                x = conc_of[lab] / dil[w]
            signal = float(curve.response(np.array([x]))[0]) * np.exp(rng.normal(0, params.od_cv))
        edge = 1.0 + (params.edge_effect if r in "AH" or c in (1, 12) else 0.0)
        od = signal * edge + bg + rng.normal(0, params.od_sd)
        od_ref = params.ref_ratio * bg + rng.normal(0, params.od_sd)
        main[w] = "OVRFLW" if od > params.reader_max_od else f"{od:.3f}"
        ref[w] = f"{od_ref:.3f}"
        truth_wells[w] = {"label": lab, "concentration_in_well": x, "od_true": signal + bg}
    lay_path = outdir / f"{plate_id}_layout.csv"
    lay_lines = _grid_lines("layout", labels)
    if any(v != 1.0 for v in dil.values()):
        lay_lines += [[], *_grid_lines("dilution", {w: (f"{dil[w]:g}" if w in dil else "") for w in labels})]
    _write_csv(lay_path, lay_lines)
    wl, rl = params.wavelength_nm, params.reference_nm
    if export_format == "list-csv":
        path = outdir / f"{plate_id}_export.csv"
        head = ["Well", f"OD {wl} nm"] + ([f"OD {rl} nm"] if rl else [])
        lines = [["Plate", plate_id], [], head]
        for w in labels:
            lines.append([w, main[w]] + ([ref[w]] if rl else []))
        _write_csv(path, lines)
    else:
        blocks = [["Software Version", "3.11"], ["Plate Number", plate_id], [], [f"Read 1:{wl}"],
                  *[["", *row[1:]] if i == 0 else row for i, row in enumerate(_grid_lines("", main))]]
        if rl:
            blocks += [[], [f"Read 2:{rl}"], *[["", *row[1:]] if i == 0 else row for i, row in enumerate(_grid_lines("", ref))]]
        if export_format == "grid-csv":
            path = outdir / f"{plate_id}_export.csv"
            _write_csv(path, blocks)
        else:
            import openpyxl

            path = outdir / f"{plate_id}_export.xlsx"
            wb = openpyxl.Workbook()
            ws = wb.active
            ws.title = "Results"
            for row in blocks:
                ws.append([_cell(v) for v in row] if row else [])
            tmp = path.with_name(path.name + ".part")
            wb.save(tmp)
            tmp.replace(path)
    truth = {"curve": curve, "samples": conc_of, "wells": truth_wells, "failed_level": failed_level}
    return path, lay_path, truth


def _cell(v: str) -> object:
    try:
        return float(v) if v not in ("", "OVRFLW") and not v.isalpha() else v
    except ValueError:
        return v
