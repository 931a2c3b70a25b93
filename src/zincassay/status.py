"""How a per-sample job ends: with all its outputs, whether the sample succeeded or failed.

A core facility's batch must finish: one unreadable file among 96 may not stop the summary, the
QC table or the report. So a per-sample step never fails as a Snakemake job for a problem with its
sample. :func:`run_sample_step` runs the step; if the sample fails, every output is replaced by an
unmistakable *failure record* instead of being left half-written:

- the sample's primary table (``indices.tsv``, ``summary.tsv``) holds one row with the sample's
  labels, ``status = failed`` and the one-line reason in ``failure`` (numbers empty);
- other tables are empty files; figures show the reason; a JSON record carries the reason;
- ``status.json`` records the outcome, the reason and the SHA-256 of the raw bytes read.

The reason is the one-line message of the expected problem (:class:`ZincassayError`), or, for a
bug, ``internal error: ...`` with the traceback in the job's log. Collect and summary steps then
run on every sample; failed ones are listed in ``qc.tsv``, the report and at the end of the run.
A full disk is the one problem that still stops the job (nothing can be written).
"""

from __future__ import annotations

import errno
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from zincassay.errors import ZincassayError

__all__ = ["FAILED", "OK", "StepStatus", "failure_reason", "run_sample_step"]

OK, FAILED = "ok", "failed"


@dataclass(frozen=True)
class StepStatus:
    """``status.json`` of one per-sample job."""

    sample_id: str
    assay: str
    role: str
    file: str
    status: str
    reason: str
    sha256: str
    bytes: int


def failure_reason(exc: BaseException) -> str:
    """The one-line reason recorded for a failed sample."""
    if isinstance(exc, ZincassayError):
        return " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}; check that the file exists and is readable, and that the disk is healthy"
    if isinstance(exc, MemoryError):
        return "ran out of memory; give the rule more memory (resources mem_mb) or run fewer jobs at once"
    return f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())} (a bug; the traceback is in the log)"


def _failure_figure(path: Path, sample_id: str, reason: str) -> None:
    import textwrap

    from zincassay.figures import new_figure, save_figure

    fig, ax = new_figure(figsize=(7, 2.4))
    ax.set_axis_off()
    ax.text(0.5, 0.62, f"{sample_id}: FAILED", ha="center", va="center", fontsize=12, color="#b2182b",
            transform=ax.transAxes)
    ax.text(0.5, 0.3, textwrap.fill(reason, 110), ha="center", va="center", fontsize=7, transform=ax.transAxes)
    save_figure(fig, path)


def _write_failure_records(outputs: Mapping[str, str | Path], primary: str, failure_rows: list[dict], sid: str,
                           reason: str) -> None:
    import numpy as np
    import pandas as pd

    from zincassay.tables import atomic_path, write_json, write_table, write_text

    for name, path in outputs.items():
        path = Path(path)
        if name == primary:
            write_table(pd.DataFrame(failure_rows), path)
        elif path.suffix == ".png":
            _failure_figure(path, sid, reason)
        elif path.suffix == ".json":
            write_json({"sample_id": sid, "status": FAILED, "reason": reason}, path)
        elif path.suffix in (".tif", ".tiff"):
            import tifffile

            with atomic_path(path) as tmp:
                tifffile.imwrite(tmp, np.zeros((1, 1), np.uint16), photometric="minisblack", metadata=None)
        elif path.suffix == ".gz":
            write_table(pd.DataFrame(), path)
        else:
            write_text("", path)


def run_sample_step(step: Callable[[], None], *, labels: Mapping[str, str], assay: str, role: str,
                    raw: str | Path, outputs: Mapping[str, str | Path], primary: str,
                    failed_columns: Mapping[str, object], extra: Mapping[str, str], status_path: str | Path,
                    checksum: str | Path | None = None,
                    covers: Sequence[tuple[Mapping[str, str], Mapping[str, str]]] = ()) -> int:
    """Run one sample's step so that its job always ends with every output written.

    Parameters
    ----------
    step : callable
        Does the work and writes every output in ``outputs``.
    labels : mapping
        ``sample_id, condition, donor, batch`` of the sample: the first columns of its rows.
    assay, role : str
        For ``status.json``.
    raw : path
        The raw file (or folder) the step reads; its SHA-256 is recorded.
    outputs : mapping of name to path
        Every output of the job except ``status_path``.
    primary : str
        The name (in ``outputs``) of the table that gets the failure row, or '' for none.
    failed_columns : mapping
        Columns of the failure row after ``status`` and ``failure`` (e.g. ``qc_pass = False``).
    extra : mapping
        The sheet's extra columns, last in the failure row.
    status_path : path
        Where ``status.json`` goes (written last).
    checksum : path, optional
        The raw file's checksum file (:mod:`zincassay.checksums`), read instead of hashing again;
        without it the raw bytes are hashed here.
    covers : sequence of (labels, extra), optional
        For a job over one file that holds several samples (an ELISA plate): the labels and extra
        columns of each; the primary table then gets one failure row per sample instead of one
        row with ``labels``.

    Returns
    -------
    int
        0; a full disk raises :class:`OSError` (the job fails: nothing can be written).
    """
    from zincassay.checksums import file_sha256
    from zincassay.tables import write_json

    raw = Path(raw)
    sha, size = "", 0
    if checksum is not None and Path(checksum).is_file():
        fields = Path(checksum).read_text(encoding="utf-8").split()
        sha, size = fields[0], int(fields[1])
    elif raw.exists():
        sha = file_sha256(raw)
        size = sum(p.stat().st_size for p in raw.rglob("*") if p.is_file()) if raw.is_dir() else raw.stat().st_size
    status, reason = OK, ""
    try:
        step()
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise
        status, reason = FAILED, failure_reason(exc)
    except Exception as exc:
        status, reason = FAILED, failure_reason(exc)
        if not isinstance(exc, ZincassayError | MemoryError):
            traceback.print_exc(file=sys.stderr)
    sample_id = labels["sample_id"]
    if status == FAILED:
        print(f"{sample_id}: failed: {reason}", file=sys.stderr)
        rows = [{**lab, "status": FAILED, "failure": reason, **failed_columns, **ext}
                for lab, ext in (covers or [(labels, extra)])]
        _write_failure_records(outputs, primary, rows, sample_id, reason)
    record = StepStatus(sample_id=sample_id, assay=assay, role=role, file=str(raw), status=status, reason=reason,
                        sha256=sha, bytes=size)
    write_json(asdict(record), status_path)
    return 0
