"""Bead-array kit files: which bead measures which analyte, and the kit's standard series.

A kit file (YAML; examples shipped in ``zincassay/beadplex/kits/``) holds:

.. code-block:: yaml

    name: LEGENDplex Human Th Cytokine Panel (13-plex)
    units: pg/mL
    standards: {levels: [C7, C6, C5, C4, C3, C2, C1], series_factor: 4, blank: C0}
    groups:                       # bead size groups on FSC/SSC, smallest first
      A:
        - {bead: A4, position: 4, analyte: IL-5, top_standard: 10000}
        ...

``position`` places the bead on an evenly spaced ladder of log classification intensity (the bead
number for LEGENDplex); it lets a missing population be identified. ``top_standard`` is the
analyte's concentration in the top standard, in ``units``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zincassay.curves.kits import read_kit_file, shipped_kits
from zincassay.curves.standards import StandardSeries
from zincassay.errors import ZincassayError

__all__ = ["Bead", "Panel", "builtin_kits", "load_panel"]


@dataclass(frozen=True)
class Bead:
    """One bead population: its id, size group, ladder position, analyte and top standard."""

    bead_id: str
    group: str
    position: float
    analyte: str
    top_standard: float


@dataclass(frozen=True)
class Panel:
    """A kit: bead size groups (smallest first), beads, units and the standard series."""

    name: str
    units: str
    groups: tuple[str, ...]
    beads: tuple[Bead, ...]
    standards: StandardSeries
    source: str

    def beads_in(self, group: str) -> list[Bead]:
        """Beads of a size group, by ladder position (dimmest first)."""
        return sorted((b for b in self.beads if b.group == group), key=lambda b: b.position)

    def bead(self, bead_id: str) -> Bead:
        return next(b for b in self.beads if b.bead_id == bead_id)

    @property
    def analytes(self) -> list[str]:
        return [b.analyte for b in self.beads]

    def standard_concentration(self, analyte: str, relative: float) -> float:
        """Concentration of ``analyte`` in a standard at ``relative`` x the top standard."""
        return next(b.top_standard for b in self.beads if b.analyte == analyte) * relative


def builtin_kits() -> list[str]:
    """Names of the kit files shipped with zincassay (usable as ``beadplex.panel``)."""
    return shipped_kits("zincassay.beadplex")


def load_panel(path_or_name: str | Path) -> Panel:
    """Read a kit file, by path or by the name of a shipped kit.

    Raises
    ------
    ZincassayError
        The file is missing or not a valid kit (the message names the file and the entry).
    """
    spec, src = read_kit_file(path_or_name, package="zincassay.beadplex", kind="bead-array kit",
                              keys=("name", "units", "standards", "groups"))
    groups = spec["groups"]
    if not isinstance(groups, dict) or not groups:
        raise ZincassayError(f"{src}: 'groups' must map each bead size group (smallest first) to its beads")
    beads: list[Bead] = []
    for group, entries in groups.items():
        if not isinstance(entries, list) or not entries:
            raise ZincassayError(f"{src}: group {group!r} must list its beads")
        for i, e in enumerate(entries):
            where = f"{src}: group {group!r}, bead {i + 1}"
            if not isinstance(e, dict) or not {"bead", "position", "analyte", "top_standard"} <= set(e):
                raise ZincassayError(f"{where}: needs bead, position, analyte and top_standard")
            try:
                pos, top = float(e["position"]), float(e["top_standard"])
            except (TypeError, ValueError):
                raise ZincassayError(f"{where}: position and top_standard must be numbers") from None
            if top <= 0:
                raise ZincassayError(f"{where}: top_standard must be > 0")
            beads.append(Bead(str(e["bead"]), str(group), pos, str(e["analyte"]), top))
    for attr in ("bead_id", "analyte"):
        seen = [getattr(b, attr) for b in beads]
        dup = sorted({v for v in seen if seen.count(v) > 1})
        if dup:
            raise ZincassayError(f"{src}: {attr.replace('_', ' ')}s must be unique; repeated: {', '.join(dup)}")
    for group in groups:
        pos = [b.position for b in beads if b.group == group]
        if len(set(pos)) != len(pos):
            raise ZincassayError(f"{src}: group {group!r} has beads with the same position")
    standards = StandardSeries.from_dict(spec["standards"], src)
    return Panel(str(spec["name"]), str(spec["units"]), tuple(str(g) for g in groups), tuple(beads), standards, src)
