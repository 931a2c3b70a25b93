"""The sample-sheet contract: reading, validation (all problems at once) and control matching.

One row per raw file; columns documented in ``config/README.md`` and
``workflow/schemas/samples.schema.yaml``. Row numbers in messages are the line numbers of the
TSV file (the header is line 1).
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import pandas as pd

from zincassay.config import config_problems, fill_defaults, schema
from zincassay.errors import ValidationError
from zincassay.zincflow import controls as zincflow_controls

__all__ = [
    "ASSAY_COLUMNS",
    "IMAGING_TIME_COLUMNS",
    "REQUIRED_COLUMNS",
    "RESERVED_COLUMNS",
    "Inputs",
    "Sample",
    "extra_columns",
    "load_inputs",
    "load_sample",
    "load_samples",
    "match_controls",
    "prepare_sheet",
    "read_sample_sheet",
    "sample_record",
    "sheet_problems",
]

REQUIRED_COLUMNS = ("sample_id", "assay", "file", "condition", "role", "donor", "batch")
IMAGING_TIME_COLUMNS = ("frame_interval_s", "stimulus_s", "pyrithione_s", "tpen_s")
ROLES = {"cfse": {"sample", "unstimulated", "unstained"}, "imaging": {"sample"},
         "zincflow": set(zincflow_controls.ROLES), "beadplex": {"standard", "blank", "sample"}, "elisa": {"sample"}}
#: The roles of the control files matched to each assay's samples (a bead-array standard or blank is no
#: matched control: standards are used by batch).
CONTROL_ROLES = {"cfse": ("unstimulated", "unstained"), "zincflow": zincflow_controls.CONTROL_ROLES}
#: Each assay's own sheet columns (besides the imaging times; not the user's extra columns; blank where
#: not used), given to its steps as ``Sample.assay_columns``. zincflow: ``culture``, ``kinetic``,
#: ``addition_s``; beadplex: a standard well's kit level, a sample's dilution factor (``2`` or ``1:2``)
#: and, for a sample's further wells, the sample_id of its first well; elisa: the sample's dilution,
#: the plate-layout file and the sample's label in it (blank = its sample_id).
ASSAY_COLUMNS = {"zincflow": zincflow_controls.SHEET_COLUMNS,
                 "beadplex": ("standard_level", "dilution", "replicate_of"),
                 "elisa": ("dilution", "layout", "layout_label")}
#: Sheet values used in result paths (a bead-array batch, an ELISA plate) must be safe file names.
_ID = re.compile(r"^[A-Za-z0-9_-]+$")
#: Columns the workflow computes in the per-sample tables that carry the sheet's extra columns
#: (results/cfse/indices.tsv, results/imaging/cells.tsv and summary.tsv, results/zincflow/zinc.tsv and
#: kinetics.tsv). A sheet column with one of these names would be ambiguous, so it is a validation
#: error (tests/test_workflow.py keeps this list complete).
RESERVED_COLUMNS = frozenset(
    "status failure path unstimulated unstained qc_pass qc_flags qc_reason compensation reduced_chi2 "
    "peak_ratio peak_ratio_ci_low peak_ratio_ci_high parent_log10 parent_control_log10 parent_shift_log10 "
    "peak_width_log10 width_growth_log10 autofluorescence_scale at_bound n_generations events_total events_gated background_events events_at_or_below_zero "
    "bootstrap_replicates cell_id centroid_x centroid_y area_px area_um2 fmin fmax dynamic_range baseline_zn_nM "
    "peak_zn_nM delta_zn_nM time_to_peak_s auc_zn_nM_s responder saturated_px_fmax n_cells n_pass "
    "fraction_responding events_detected fmax_window_s fmin_window_s mean_drift_px max_drift_px bleaching_pct "
    "bleach_corrected kd_nM saturation_value saturation_source bit_depth_source n_frames sample_flags "
    "unregistered_frames cell_radius_px "
    "layout_path n_wells "
    .split()
    + [f"{q}_{s}" for s in ("baseline_zn_nM", "peak_zn_nM", "delta_zn_nM") for q in ("median", "q25", "q75")]
    + [f"{i}{x}" for i in ("pct_divided", "fraction_diluted", "division_index", "proliferation_index",
                           "expansion_index", "replication_index") for x in ("", "_ci_low", "_ci_high")]
    # zinc by flow: results/zincflow/zinc.tsv and kinetics.tsv
    + "subset F_median Fmin_median Fmax_median af_median af_subtracted f zn_nM zn_ci_low zn_ci_high probe channel "
      "events_sample events_fmin events_fmax events_unstained fmax_saturated_fraction instrument instrument_fmin "
      "instrument_fmax instrument_serial addition_source gap_start_s gap_end_s gaps_found baseline_events "
      "kinetic_flags".split()
)


@dataclass
class Inputs:
    """A validated config and sample sheet.

    ``sheet`` has one row per raw file, indexed by ``sample_id``, with ``path`` (absolute) added,
    ``unstimulated``/``unstained`` (matched control ids, '' when none) for cfse samples, and
    ``culture``, ``fmin``/``fmax``/``unstained`` for zincflow samples.
    """

    config: dict
    sheet: pd.DataFrame


@dataclass(frozen=True)
class Sample:
    """One row of a validated sample sheet, typed.

    Attributes
    ----------
    sample_id, assay, condition, role, donor, batch : str
        As in the sheet ('' where blank).
    path : str
        The raw file (as the workflow names it).
    controls : dict of str to str
        Matched control ids by role, the assay's control roles (cfse: ``unstimulated``,
        ``unstained``; zincflow: ``fmin``, ``fmax``, ``unstained``); '' where none.
    frame_interval_s, stimulus_s, pyrithione_s, tpen_s : float or None
        Imaging times (s); None where blank (taken from the metadata or detected).
    assay_columns : dict of str to str
        The assay's own columns (:data:`ASSAY_COLUMNS`; zincflow: ``culture`` as matched,
        ``kinetic``, ``addition_s``; beadplex: ``standard_level``...), as strings ('' where blank).
    extra : dict of str to str
        The user's own columns, in sheet order, carried into every per-sample table.
    """

    sample_id: str
    assay: str = ""
    path: str = ""
    condition: str = ""
    role: str = "sample"
    donor: str = ""
    batch: str = ""
    controls: dict[str, str] = field(default_factory=dict)
    frame_interval_s: float | None = None
    stimulus_s: float | None = None
    pyrithione_s: float | None = None
    tpen_s: float | None = None
    assay_columns: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def labels(self) -> dict[str, str]:
        """``sample_id, condition, donor, batch``: the columns every per-sample table starts with."""
        return {"sample_id": self.sample_id, "condition": self.condition, "donor": self.donor,
                "batch": self.batch}


def _seconds(value: str) -> float | None:
    return float(value) if value else None


def sample_record(sheet: pd.DataFrame, sample_id: str) -> Sample:
    """The typed :class:`Sample` of ``sample_id`` in a sheet from :func:`load_inputs`."""
    row = sheet.loc[sample_id]
    assay = row["assay"]
    return Sample(
        sample_id=sample_id, assay=assay, path=row["path"], condition=row["condition"], role=row["role"],
        donor=row["donor"], batch=row["batch"],
        controls={r: row[r] for r in sorted(CONTROL_ROLES.get(assay, ()))},
        **{c: _seconds(row[c]) for c in IMAGING_TIME_COLUMNS},
        assay_columns={c: row[c] for c in ASSAY_COLUMNS.get(assay, ())},
        extra={c: row[c] for c in extra_columns(sheet)},
    )


def read_sample_sheet(path: str | Path) -> pd.DataFrame:
    """Read the TSV as strings (blank cells are ''); raise ValidationError when unreadable.

    Column names that occur twice are listed in ``sheet.attrs["duplicate_columns"]`` (pandas
    would silently rename the second ``condition`` to ``condition.1``).
    """
    path = Path(path)
    if not path.is_file():
        raise ValidationError([f"sample sheet {path} does not exist; set 'samples' in the config "
                               "or create it with 'zincassay init RAW_DIR'"])
    try:
        sheet = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment=None)
        with path.open(encoding="utf-8-sig") as fh:
            header = [c.strip() for c in fh.readline().rstrip("\r\n").split("\t")]
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValidationError([f"sample sheet {path} cannot be read as a TSV: {exc}"]) from None
    sheet.columns = [str(c).strip() for c in sheet.columns]
    sheet = sheet.map(lambda v: v.strip() if isinstance(v, str) else v)
    sheet.attrs["duplicate_columns"] = sorted({c for c in header if header.count(c) > 1})
    sheet.attrs["comma_separated"] = len(header) == 1 and header[0].count(",") >= 2
    return sheet


def extra_columns(sheet: pd.DataFrame) -> list[str]:
    """Columns the user added beyond the contract, in sheet order."""
    known = (set(REQUIRED_COLUMNS) | set(IMAGING_TIME_COLUMNS) | {c for cs in ASSAY_COLUMNS.values() for c in cs}
             | {"path", "unstimulated", "unstained", "fmin", "fmax", "layout_path"})
    return [c for c in sheet.columns if c not in known]


def _resolve_path(value: str, sheet_dir: Path) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (sheet_dir / p)


def match_controls(sheet: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Attach matched controls to cfse samples.

    A control matches a sample of the same batch; a control that names a donor matches only that
    donor's samples, and wins over a donor-less control of the batch. Returns the sheet with
    ``unstimulated`` and ``unstained`` columns (control sample_ids or '') and the problems found
    (a batch without an unstimulated control, or two equally good controls).
    """
    sheet = sheet.copy()
    sheet["unstimulated"] = ""
    sheet["unstained"] = ""
    problems: list[str] = []
    cfse = sheet[sheet["assay"] == "cfse"]
    # controls by (role, batch, donor): one pass over the sheet, then a lookup per sample
    controls: dict[tuple[str, str, str], list[str]] = {}
    for role, batch, donor, sid in cfse.loc[cfse["role"] != "sample", ["role", "batch", "donor", "sample_id"]].itertuples(
            index=False):
        controls.setdefault((role, batch, donor), []).append(sid)
    chosen_ids: dict[str, list] = {"unstimulated": [], "unstained": []}
    samples = cfse[cfse["role"] == "sample"]
    for idx, sid, batch, donor in samples[["sample_id", "batch", "donor"]].itertuples():
        for role in ("unstimulated", "unstained"):
            same = controls.get((role, batch, donor), []) if donor else []
            chosen = same or controls.get((role, batch, ""), [])
            if len(chosen) > 1:
                problems.append(
                    f"row {idx + 2} ({sid}): {len(chosen)} {role} controls match "
                    f"(batch {batch}, donor {donor or '-'}): "
                    f"{', '.join(chosen)}; give each control a donor or keep one"
                )
            elif len(chosen) == 1:
                chosen_ids[role].append((idx, chosen[0]))
            elif role == "unstimulated":
                problems.append(
                    f"row {idx + 2} ({sid}): cfse batch {batch!r} has no "
                    f"unstimulated control{' for donor ' + donor if donor else ''}; "
                    "add a row with role 'unstimulated' for that batch (it pins the parent peak)"
                )
    for role, pairs in chosen_ids.items():
        if pairs:
            idx, ids = zip(*pairs, strict=True)
            sheet.loc[list(idx), role] = list(ids)
    return sheet, problems


def sheet_problems(sheet: pd.DataFrame, config: dict, sheet_dir: Path) -> list[str]:
    """Every problem in the sheet, one sentence each naming the row and the fix."""
    problems: list[str] = []
    missing = [c for c in REQUIRED_COLUMNS if c not in sheet.columns]
    if missing:
        hint = ("; the file looks comma-separated: save it as tab-separated text (TSV; in Excel: "
                "'Text (Tab delimited)')" if sheet.attrs.get("comma_separated") else "")
        return [f"sample sheet lacks column(s) {', '.join(missing)}; required: {', '.join(REQUIRED_COLUMNS)}{hint}"]
    if sheet.empty:
        return ["sample sheet has no rows"]
    for col in sheet.attrs.get("duplicate_columns", []):
        problems.append(f"column {col!r} appears more than once in the header; keep one (or rename the other)")
    for col in extra_columns(sheet):
        if col in RESERVED_COLUMNS:
            problems.append(
                f"column {col!r} of the sample sheet has the name of a column zincassay computes "
                f"(results tables carry both); rename yours, e.g. to 'sheet_{col}'")
    files_seen: dict[Path, tuple[int, str]] = {}
    row_schema = schema("samples")
    validator = jsonschema.Draft202012Validator(row_schema)
    order = config["conditions"]["order"]
    seen: dict[str, int] = {}
    for idx, row in sheet.iterrows():
        line = idx + 2
        sid = row["sample_id"]
        label = f"row {line} ({sid or 'no sample_id'})"
        record = {k: v for k, v in row.items() if isinstance(v, str)}
        for err in validator.iter_errors(record):
            col = ".".join(map(str, err.absolute_path))
            if err.validator == "pattern" and col == "sample_id":
                problems.append(f"{label}: sample_id {sid!r} may hold only letters, digits, _ and -")
            elif err.validator == "pattern":
                problems.append(f"{label}: {col} {row[col]!r} is not a number of seconds (leave blank to detect it)")
            elif err.validator == "enum":
                problems.append(f"{label}: {col} {row[col]!r} is not one of {', '.join(err.validator_value)}")
            elif err.validator == "minLength":
                problems.append(f"{label}: {col} is blank; fill it in")
            else:
                problems.append(f"{label}: {err.message}")
        if sid:
            if sid in seen:
                problems.append(f"{label}: sample_id {sid!r} already used on row {seen[sid]}; ids must be unique")
            else:
                seen[sid] = line
        assay, role = row["assay"], row["role"]
        if assay in ROLES and any(role in r for r in ROLES.values()) and role not in ROLES[assay]:
            problems.append(f"{label}: role {role!r} is not valid for assay {assay}; use {', '.join(sorted(ROLES[assay]))}")
        if role == "sample" and row["condition"] not in order:
            problems.append(
                f"{label}: condition {row['condition']!r} is not in conditions.order {order}; "
                "fix the spelling or add it to conditions.order in the config"
            )
        if role == "sample" and not row["donor"]:
            problems.append(f"{label}: donor is blank; every sample needs its donor (the statistical unit)")
        if row["file"]:
            path = _resolve_path(row["file"], sheet_dir)
            folder_ok = assay == "imaging" and path.is_dir()  # a folder of single-frame TIFFs
            if not path.exists():
                problems.append(f"{label}: file {row['file']!r} not found (looked at {path}); paths are relative to the sample sheet's folder")
            elif not (path.is_file() or folder_ok) or not os.access(path, os.R_OK):
                what = "a readable file" if assay != "imaging" else "a readable file or a folder of TIFF frames"
                problems.append(f"{label}: {path} is not {what}")
            key = path.resolve()
            if key in files_seen and not (assay == "elisa" and files_seen[key][1] == "elisa"):  # a plate's samples
                problems.append(f"{label}: file {row['file']!r} is also on row {files_seen[key][0]}; each raw file "
                                "belongs on one row (only ELISA samples share their plate's export)")
            else:
                files_seen.setdefault(key, (line, assay))
        if assay == "imaging":
            times = {c: row.get(c, "") for c in IMAGING_TIME_COLUMNS}
            try:
                vals = {c: float(v) for c, v in times.items() if v}
            except ValueError:
                vals = {}
            if "frame_interval_s" in vals and vals["frame_interval_s"] <= 0:
                problems.append(f"{label}: frame_interval_s must be > 0")
            ev = [(c, vals[c]) for c in ("stimulus_s", "pyrithione_s", "tpen_s") if c in vals]
            for (c1, v1), (c2, v2) in itertools.pairwise(ev):
                if not v1 < v2:
                    problems.append(
                        f"{label}: event times out of order: {c1} = {v1:g} s must come before "
                        f"{c2} = {v2:g} s (stimulus < pyrithione < tpen)"
                    )
    _, control_problems = match_controls(sheet)  # reported with everything else, never only after fixes
    problems.extend(control_problems)
    problems.extend(_cytokine_problems(sheet, config, sheet_dir))
    problems.extend(_dose_problems(sheet, config))
    _, culture_problems = zincflow_controls.match_cultures(sheet)
    problems.extend(culture_problems)
    problems.extend(zincflow_controls.kinetic_column_problems(sheet))
    return list(dict.fromkeys(problems))  # a problem two checks find is listed once


def _cytokine_problems(sheet: pd.DataFrame, config: dict, sheet_dir: Path) -> list[str]:
    """Bead-array and ELISA rows: the kit is configured; batch names fit a folder name; dilutions
    parse; bead-array standards carry their level and every batch with samples has standards (they
    are matched by batch); replicate wells name their first well; ELISA rows name an existing layout,
    and rows sharing an export are one plate (one layout, one batch, distinct labels)."""
    from zincassay.curves.standards import parse_dilution
    from zincassay.errors import ZincassayError

    problems: list[str] = []
    cols = set(sheet.columns)

    def cell(row: pd.Series, col: str) -> str:
        return str(row[col]) if col in cols else ""

    def where(idx: int) -> str:
        return f"row {idx + 2} ({sheet.at[idx, 'sample_id']})"

    def factor(text: str) -> float | None:
        try:
            return parse_dilution(text, "") if text else 1.0
        except ZincassayError:
            return None

    for assay, key, what in (("beadplex", "panel", "bead-array kit"), ("elisa", "kit", "ELISA kit")):
        rows = sheet[sheet["assay"] == assay]
        if len(rows) and not config.get(assay, {}).get(key):
            problems.append(f"the sheet has {len(rows)} {assay} row(s) but the config sets no {assay}.{key}; name the "
                            f"{what} (a YAML file or a shipped kit, see config/README.md)")
        for idx, row in rows.iterrows():
            if row["batch"] and not _ID.match(row["batch"]):
                problems.append(f"{where(idx)}: batch {row['batch']!r} names a results folder; use only letters, "
                                "digits, _ and -")
            if cell(row, "dilution"):
                try:
                    parse_dilution(cell(row, "dilution"), where(idx))
                except ZincassayError as exc:
                    problems.append(str(exc))
    bp = sheet[sheet["assay"] == "beadplex"]
    first_wells = {row["sample_id"]: (row["batch"], row["role"], cell(row, "replicate_of"), cell(row, "dilution"))
                   for _, row in bp.iterrows()}
    for idx, row in bp.iterrows():
        level, rep = cell(row, "standard_level"), cell(row, "replicate_of")
        if row["role"] == "standard" and not level:
            problems.append(f"{where(idx)}: a standard well needs its standard_level (the kit's level name, e.g. C7)")
        elif row["role"] != "standard" and level:
            problems.append(f"{where(idx)}: standard_level {level!r} is set but the role is {row['role']!r}; make the "
                            "role 'standard' or clear the level")
        if rep:
            target = first_wells.get(rep)
            if row["role"] != "sample":
                problems.append(f"{where(idx)}: replicate_of is for further wells of a sample; clear it on a {row['role']} well")
            elif target is None or target[:2] != (row["batch"], "sample") or target[2]:
                problems.append(f"{where(idx)}: replicate_of {rep!r} must name the first well (a bead-array sample "
                                f"without replicate_of) of batch {row['batch']!r}")
            elif factor(cell(row, "dilution")) != factor(target[3]):
                problems.append(f"{where(idx)}: dilution {cell(row, 'dilution')!r} differs from that of its first well "
                                f"{rep} ({target[3]!r}); replicate wells share the sample's dilution")
    for batch, grp in bp.groupby("batch", sort=True):
        if (grp["role"] == "sample").any() and not (grp["role"] == "standard").any():
            problems.append(f"bead-array batch {batch!r} has samples but no standard wells; standards are matched to "
                            "samples by batch: add the kit's standards (role standard, with standard_level) to it")
    el = sheet[sheet["assay"] == "elisa"]
    plates: dict[tuple[Path, Path], dict[str, list]] = {}
    layouts_of_batch: dict[str, set] = {}
    for idx, row in el.iterrows():
        layout = cell(row, "layout")
        if not layout:
            problems.append(f"{where(idx)}: an ELISA sample needs its plate layout (column layout: a CSV or Excel grid "
                            "of well labels)")
            continue
        lpath = _resolve_path(layout, sheet_dir)
        if not lpath.is_file():
            problems.append(f"{where(idx)}: layout {layout!r} not found (looked at {lpath}); paths are relative to "
                            "the sample sheet's folder")
        key = (_resolve_path(row["file"], sheet_dir).resolve(), lpath.resolve())
        plate = plates.setdefault(key, {"batch": [], "labels": []})
        plate["batch"].append(row["batch"])
        plate["labels"].append((idx, cell(row, "layout_label") or row["sample_id"]))
        layouts_of_batch.setdefault(row["batch"], set()).add(key)
    for (export, _), plate in plates.items():
        if len(set(plate["batch"])) > 1:
            problems.append(f"ELISA export {export.name} is given batches {', '.join(sorted(set(plate['batch'])))}; "
                            "the samples of one plate share its batch (the plate's name)")
        seen: dict[str, int] = {}
        for idx, lab in plate["labels"]:
            if lab in seen:
                problems.append(f"{where(idx)}: layout label {lab!r} is also used on row {seen[lab] + 2} of the same "
                                "plate; each sample has its own label in the layout")
            seen.setdefault(lab, idx)
    for batch, keys in sorted(layouts_of_batch.items()):
        if len(keys) > 1:
            problems.append(f"ELISA batch {batch!r} is used by {len(keys)} different export/layout pairs; give each "
                            "plate its own batch")
    return problems


def _dose_problems(sheet: pd.DataFrame, config: dict) -> list[str]:
    """The configured dose and source columns exist; doses are numbers >= 0 (blank = not in the series)."""
    cond = config["conditions"]
    problems = []
    for key in ("dose_column", "source_column"):
        col = cond.get(key)
        if col and col not in sheet.columns:
            problems.append(f"conditions.{key} is {col!r} but the sample sheet has no such column; add it or fix the config")
    col = cond.get("dose_column")
    if col and col in sheet.columns:
        for idx, value in sheet[col].items():
            try:
                ok = value == "" or float(value) >= 0
            except ValueError:
                ok = False
            if not ok:
                problems.append(f"row {idx + 2} ({sheet.at[idx, 'sample_id']}): {col} {value!r} is not a dose "
                                "(a number >= 0; blank = not in the dose series)")
    return problems


def prepare_sheet(sheet: pd.DataFrame, sheet_path: Path) -> pd.DataFrame:
    """Add the derived columns to a (validated) sheet: blank imaging times and assay columns, matched
    controls (cfse) and cultures (zincflow), ``path`` (and ``layout_path`` when the sheet has ELISA
    layouts); index by ``sample_id``."""
    sheet = sheet.copy()
    for col in (*IMAGING_TIME_COLUMNS, *(c for cs in ASSAY_COLUMNS.values() for c in cs)):
        if col not in sheet.columns:
            sheet[col] = ""
    sheet, _ = match_controls(sheet)
    sheet, _ = zincflow_controls.match_cultures(sheet)  # after match_controls, which blanks 'unstained'
    sheet["path"] = [_workflow_path(_resolve_path(f, sheet_path.parent)) for f in sheet["file"]]
    if "layout" in sheet.columns:  # ELISA plate layouts
        sheet["layout_path"] = [_workflow_path(_resolve_path(f, sheet_path.parent)) if f else "" for f in sheet["layout"]]
    return sheet.set_index("sample_id", drop=False)


def _workflow_path(path: Path) -> str:
    """The path as the workflow names it: relative to the working folder when inside it (so moving
    the project reruns nothing), else absolute."""
    full = path.resolve()
    try:
        return str(full.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(full)


def load_sample(sheet_path: str | Path, sample_id: str) -> Sample:
    """One sample of a sheet the workflow has already validated (no validation is repeated, so a
    job over a 1,000-row sheet stays fast).

    Raises
    ------
    ValidationError
        The sheet is unreadable or lacks ``sample_id``.
    """
    sheet_path = Path(sheet_path)
    sheet = read_sample_sheet(sheet_path)
    if "sample_id" not in sheet.columns or sample_id not in set(sheet["sample_id"]):
        raise ValidationError([f"sample sheet {sheet_path} has no sample {sample_id!r}; rerun the workflow, "
                               "which validates the sheet first"])
    return sample_record(prepare_sheet(sheet, sheet_path), sample_id)


def load_samples(sheet_path: str | Path, *, assay: str, batch: str | None = None) -> list[Sample]:
    """Every sample (any role) of ``assay`` in a validated sheet, optionally of one ``batch``, sorted by
    sample_id: the wells of a bead-array batch, the samples of an ELISA plate. No validation is
    repeated (see :func:`load_sample`)."""
    sheet_path = Path(sheet_path)
    sheet = prepare_sheet(read_sample_sheet(sheet_path), sheet_path)
    sel = sheet[(sheet["assay"] == assay) & ((sheet["batch"] == batch) if batch is not None else True)]
    return [sample_record(sheet, sid) for sid in sorted(sel.index)]


def load_inputs(config: dict, base_dir: str | Path = ".") -> Inputs:
    """Validate config and sample sheet together, reporting all problems at once.

    ``base_dir`` is the working directory against which ``config['samples']`` is resolved.
    """
    cfg = fill_defaults(dict(config or {}), schema("config"))
    problems = config_problems(cfg)
    sheet = None
    sheet_path = _resolve_path(str(cfg.get("samples", "config/samples.tsv")), Path(base_dir))
    if not problems:
        try:
            sheet = read_sample_sheet(sheet_path)
        except ValidationError as exc:
            problems.extend(exc.problems)
        else:
            problems.extend(f"{sheet_path}: {p}" for p in sheet_problems(sheet, cfg, sheet_path.parent))
    if problems:
        raise ValidationError(problems, "the config and sample sheet")
    assert sheet is not None
    return Inputs(config=cfg, sheet=prepare_sheet(sheet, sheet_path))
