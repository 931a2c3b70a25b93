"""ELISA kit files: the analyte, its units, the top standard and the standard series.

.. code-block:: yaml

    name: Human IL-6 ELISA
    analyte: IL-6
    units: pg/mL
    top_standard: 600
    standards: {levels: [STD1, STD2, STD3, STD4, STD5, STD6, STD7], series_factor: 2, blank: BLANK}

The layout's well labels name the levels (case, spaces and dashes ignored: 'Std 1' = 'STD1').
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from zincassay.curves.standards import StandardSeries
from zincassay.errors import ZincassayError

__all__ = ["ElisaKit", "builtin_kits", "load_kit"]


@dataclass(frozen=True)
class ElisaKit:
    name: str
    analyte: str
    units: str
    top_standard: float
    standards: StandardSeries
    source: str

    def concentration(self, level: str) -> float | None:
        rel = self.standards.relative(level)
        return None if rel is None else rel * self.top_standard


def _kits_dir() -> Path:
    return Path(str(resources.files("zincassay.elisa") / "kits"))


def builtin_kits() -> list[str]:
    return sorted(p.stem for p in _kits_dir().glob("*.yaml"))


def load_kit(path_or_name: str | Path) -> ElisaKit:
    """Read an ELISA kit file by path or shipped name; :class:`ZincassayError` names the file and entry."""
    path = Path(path_or_name)
    if not path.is_file():
        shipped = _kits_dir() / f"{path_or_name}.yaml"
        if not shipped.is_file():
            raise ZincassayError(f"ELISA kit {path_or_name!r} is neither a file nor a shipped kit; "
                                 f"shipped kits: {', '.join(builtin_kits())}")
        path = shipped
    src = str(path)
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ZincassayError(f"{src} is not valid YAML: {exc}") from None
    if not isinstance(spec, dict):
        raise ZincassayError(f"{src}: an ELISA kit file is a mapping with analyte, units, top_standard, standards")
    for key in ("analyte", "units", "top_standard", "standards"):
        if key not in spec:
            raise ZincassayError(f"{src}: missing '{key}'")
    try:
        top = float(spec["top_standard"])
    except (TypeError, ValueError):
        top = -1.0
    if top <= 0:
        raise ZincassayError(f"{src}: top_standard must be a number > 0")
    return ElisaKit(str(spec.get("name", spec["analyte"])), str(spec["analyte"]), str(spec["units"]), top,
                    StandardSeries.from_dict(spec["standards"], src), src)
