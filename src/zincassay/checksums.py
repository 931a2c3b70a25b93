"""Content fingerprints of raw inputs, so a changed file is rerun whatever its modification time.

Snakemake decides what to rerun from modification times. A raw file replaced by a copy that keeps
an older time (``cp -p``, ``rsync -a`` from the acquisition PC) would then not be rerun, and the
results would silently describe the old file. So the workflow keeps one small *checksum file* per
sample (``<dir>/<sample_id>.sha256``: the SHA-256 and size in bytes of the raw file) and makes it an input
of the sample's jobs. :func:`refresh_checksums` runs when the workflow starts: it rewrites a
checksum file only when the raw file's content changed, which gives it a new modification time
and reruns exactly that sample. Hashing is skipped while a file's size, modification and change
times and inode are those recorded at its last hashing (kept in ``<dir>/stat-cache.json``), so a start over
1,000 unchanged files costs only their ``stat``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["file_sha256", "refresh_checksums"]

_BLOCK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes; of a folder, of its files' names and bytes in sorted order."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda fh=fh: fh.read(_BLOCK), b""):
                h.update(block)
    return h.hexdigest()


def _stat_key(path: Path) -> list[int]:
    """Size, modification and change times (ns) and inode; of a folder, summed over its files (and
    their count). The change time moves with every write and every ``utime``, and cannot be set back,
    so a file rewritten in place with the same size and an old modification time still rehashes."""
    stats = [p.stat() for p in sorted(path.rglob("*")) if p.is_file()] if path.is_dir() else [path.stat()]
    return [sum(s.st_size for s in stats), sum(s.st_mtime_ns for s in stats), sum(s.st_ctime_ns for s in stats),
            sum(s.st_ino for s in stats), len(stats)]


def refresh_checksums(raw: Mapping[str, str | Path], folder: str | Path) -> dict[str, str]:
    """Bring ``<folder>/<sample_id>.sha256`` up to date for every raw file.

    Parameters
    ----------
    raw : mapping of sample_id to raw file (or folder of frames)
        Missing files are skipped (validation reports them).
    folder : str or Path
        Where the checksum files and the stat cache live (e.g. ``results/inputs``).

    Returns
    -------
    dict of sample_id to checksum-file path (as ``folder/<id>.sha256``).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cache_path = folder / "stat-cache.json"
    try:
        cache = json.loads(cache_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    new_cache: dict[str, dict] = {}
    out: dict[str, str] = {}
    for sid, path in sorted(raw.items()):
        path = Path(path)
        target = folder / f"{sid}.sha256"
        out[sid] = str(target)
        if not path.exists():
            continue
        key = _stat_key(path)
        entry = cache.get(sid)
        if entry and entry.get("stat") == key and entry.get("path") == str(path) and target.is_file():
            new_cache[sid] = entry
            continue
        digest = file_sha256(path)
        line = f"{digest}  {key[0]}\n"  # content only: renaming or moving the project reruns nothing
        if not target.is_file() or target.read_text(encoding="utf-8") != line:
            tmp = target.with_name(target.name + ".part")
            tmp.write_text(line, encoding="utf-8")
            os.replace(tmp, target)
        new_cache[sid] = {"path": str(path), "stat": key, "sha256": digest}
    if new_cache != cache:
        tmp = cache_path.with_name(cache_path.name + ".part")
        tmp.write_text(json.dumps(new_cache, indent=0, sort_keys=True), encoding="utf-8")
        os.replace(tmp, cache_path)
    return out
