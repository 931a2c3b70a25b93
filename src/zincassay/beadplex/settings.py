"""Bead-array settings, built once from the validated ``beadplex`` config section (defaults live
only in ``workflow/schemas/config.schema.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass

from zincassay.curves.settings import CurveSettings

__all__ = ["BeadplexSettings"]


@dataclass(frozen=True)
class BeadplexSettings:
    """Attributes
    ----------
    panel : str
        Kit file (path) or the name of a shipped kit (:func:`zincassay.beadplex.panel.builtin_kits`).
    reporter_channel, classification_channel : str
        ``$PnN`` or ``$PnS`` of the reporter (PE) and classification (APC) channels.
    compensate : str
        ``auto`` (the file's spill matrix when present), ``off``, or a CSV spill matrix.
    fsc_a, fsc_h, ssc : str or None
        Scatter channels; None = found by name.
    min_beads_per_population : int
        Fewer events in a bead population flag its reading (``low_bead_count``).
    curve : CurveSettings
    """

    panel: str | None
    reporter_channel: str
    classification_channel: str
    compensate: str
    fsc_a: str | None
    fsc_h: str | None
    ssc: str | None
    min_beads_per_population: int
    curve: CurveSettings

    @classmethod
    def from_config(cls, section: dict) -> BeadplexSettings:
        sc = section["scatter"]
        return cls(section["panel"], section["reporter_channel"], section["classification_channel"],
                   section["compensate"], sc["fsc_a"], sc["fsc_h"], sc["ssc"],
                   int(section["min_beads_per_population"]), CurveSettings.from_config(section["curve"]))
