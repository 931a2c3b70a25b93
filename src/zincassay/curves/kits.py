"""Kit files of the standard-curve assays (bead-array panels, ELISA kits): YAML found by path or by
the name of a kit shipped in an assay's ``kits/`` folder."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from zincassay.errors import ZincassayError

__all__ = ["read_kit_file", "shipped_kits"]


def _kits_dir(package: str) -> Path:
    return Path(str(resources.files(package) / "kits"))


def shipped_kits(package: str) -> list[str]:
    """Names of the kit files shipped in ``<package>/kits`` (e.g. ``zincassay.elisa``), sorted."""
    return sorted(p.stem for p in _kits_dir(package).glob("*.yaml"))


def read_kit_file(path_or_name: str | Path, *, package: str, kind: str, keys: tuple[str, ...]) -> tuple[dict, str]:
    """A kit file's mapping and its path (for messages).

    Parameters
    ----------
    path_or_name : str or Path
        A YAML file, or the name of a kit shipped in ``<package>/kits``.
    package : str
        The assay package that ships kits (``zincassay.beadplex``, ``zincassay.elisa``).
    kind : str
        What a kit is called in messages (``bead-array kit``, ``ELISA kit``).
    keys : tuple of str
        Keys the mapping must hold.

    Raises
    ------
    ZincassayError
        Neither a file nor a shipped kit (the shipped ones listed), not valid YAML, not a mapping,
        or a key missing; the message names the file.
    """
    path = Path(path_or_name)
    if not path.is_file():
        shipped = _kits_dir(package) / f"{path_or_name}.yaml"
        if not shipped.is_file():
            raise ZincassayError(f"{kind} {path_or_name!r} is neither a file nor a shipped kit; "
                                 f"shipped kits: {', '.join(shipped_kits(package))}")
        path = shipped
    src = str(path)
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ZincassayError(f"{src} is not valid YAML: {exc}") from None
    if not isinstance(spec, dict):
        raise ZincassayError(f"{src}: a {kind} file is a mapping with {', '.join(keys)}")
    for key in keys:
        if key not in spec:
            raise ZincassayError(f"{src}: missing '{key}'")
    return spec, src
