"""Standard series of a kit: level names, the serial dilution factor, the blank.

A kit file (YAML) describes its standards as

.. code-block:: yaml

    standards:
      levels: [C7, C6, C5, C4, C3, C2, C1]   # top standard first
      series_factor: 4                       # each level is the previous one / 4
      blank: C0                              # the zero standard (assay buffer); optional

and each analyte's top-standard concentration. Level ``i`` (0 = top) holds ``top / factor**i``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from zincassay.errors import ZincassayError

__all__ = ["StandardSeries", "normalise_label", "parse_dilution"]


def normalise_label(text: str) -> str:
    """Upper case without spaces, dashes or underscores: 'Std 1' and 'STD-1' both give 'STD1'."""
    return re.sub(r"[\s_\-]+", "", str(text)).upper()


def parse_dilution(value: object, where: str) -> float:
    """A dilution factor from ``10``, ``"10"``, ``"1:10"`` or ``"1/10"`` (all give 10).

    Raises :class:`ZincassayError` naming ``where`` when the value is not a factor >= 1.
    """
    text = str(value).strip()
    m = re.fullmatch(r"1\s*[:/]\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)", text)
    try:
        factor = float(m.group(1)) if m else float(text)
    except ValueError:
        factor = np.nan
    if not np.isfinite(factor) or factor < 1:
        raise ZincassayError(f"{where}: dilution {text!r} is not a factor >= 1; write e.g. 10 or 1:10")
    return factor


@dataclass(frozen=True)
class StandardSeries:
    """Level names (top first), the serial dilution factor between levels, and the blank's name."""

    levels: tuple[str, ...]
    series_factor: float
    blank: str | None

    @classmethod
    def from_dict(cls, spec: object, source: str) -> StandardSeries:
        """Build from the ``standards`` mapping of a kit file; errors name ``source``."""
        if not isinstance(spec, dict):
            raise ZincassayError(f"{source}: 'standards' must be a mapping with levels and series_factor")
        levels = spec.get("levels")
        factor = spec.get("series_factor")
        if not isinstance(levels, list) or len(levels) < 4:
            raise ZincassayError(f"{source}: standards.levels must list at least 4 level names, top first")
        if not isinstance(factor, int | float) or factor <= 1:
            raise ZincassayError(f"{source}: standards.series_factor must be a number > 1 (e.g. 2 or 4)")
        names = tuple(str(v) for v in levels)
        if len({normalise_label(v) for v in names}) != len(names):
            raise ZincassayError(f"{source}: standards.levels has repeated names: {list(names)}")
        blank = spec.get("blank")
        return cls(names, float(factor), None if blank is None else str(blank))

    def relative(self, level: str) -> float | None:
        """Concentration of ``level`` relative to the top standard (0 for the blank), or None if unknown."""
        key = normalise_label(level)
        if self.blank is not None and key == normalise_label(self.blank):
            return 0.0
        for i, name in enumerate(self.levels):
            if key == normalise_label(name):
                return float(self.series_factor ** (-i))
        return None

    def is_level(self, label: str) -> bool:
        return self.relative(label) is not None
