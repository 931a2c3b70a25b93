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
from pathlib import Path

from zincassay.curves.kits import read_kit_file, shipped_kits
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


def builtin_kits() -> list[str]:
    """Names of the ELISA kit files shipped with zincassay (usable as ``elisa.kit``)."""
    return shipped_kits("zincassay.elisa")


def load_kit(path_or_name: str | Path) -> ElisaKit:
    """Read an ELISA kit file by path or shipped name; :class:`ZincassayError` names the file and entry."""
    spec, src = read_kit_file(path_or_name, package="zincassay.elisa", kind="ELISA kit",
                              keys=("analyte", "units", "top_standard", "standards"))
    try:
        top = float(spec["top_standard"])
    except (TypeError, ValueError):
        top = -1.0
    if top <= 0:
        raise ZincassayError(f"{src}: top_standard must be a number > 0")
    return ElisaKit(str(spec.get("name", spec["analyte"])), str(spec["analyte"]), str(spec["units"]), top,
                    StandardSeries.from_dict(spec["standards"], src), src)
