"""``results/provenance.json``: what produced the results, from which inputs, when."""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

__all__ = ["PACKAGES", "build_provenance", "sha256"]

PACKAGES = ("zincassay", "numpy", "pandas", "scipy", "scikit-image", "tifffile", "matplotlib", "snakemake",
            "jsonschema", "pyyaml")


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _git_commit(where: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=10).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


def build_provenance(config: dict, sheet_path: str | Path, statuses: list[dict], start: datetime) -> dict:
    """Everything a reviewer needs to know which code and data made the results.

    ``statuses``: the per-sample ``status.json`` records, each with the SHA-256 and size of the raw
    bytes its job read (:mod:`zincassay.status`), and whether it succeeded. ``start``: when the run
    began (the earliest job log); the end is now.
    """
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "zincassay_version": versions["zincassay"],
        "git_commit": _git_commit(Path(__file__).resolve().parent),  # the code that ran (a source checkout)
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "config": config,
        "sample_sheet": {"path": str(sheet_path), "sha256": sha256(sheet_path)},
        "inputs": [{"sample_id": st["sample_id"], "path": st["file"], "sha256": st["sha256"], "bytes": st["bytes"],
                    "status": st["status"]} for st in sorted(statuses, key=lambda x: (x["file"], x["sample_id"]))],
        "start": start.astimezone(UTC).isoformat(timespec="seconds"),
        "end": datetime.now(UTC).isoformat(timespec="seconds"),
    }
