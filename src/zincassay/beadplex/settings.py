"""Bead-array settings, built once from the validated ``beadplex`` config section. Fields mirror
the schema keys; defaults live only in ``workflow/schemas/config.schema.yaml``."""

from __future__ import annotations

from dataclasses import dataclass

from zincassay.config import build_settings
from zincassay.curves.settings import CurveSettings

__all__ = ["BeadScatterSettings", "BeadplexSettings"]


@dataclass(frozen=True)
class BeadScatterSettings:
    """Scatter channels by name; None = found by name in the file."""

    fsc_a: str | None
    fsc_h: str | None
    ssc: str | None


@dataclass(frozen=True)
class BeadplexSettings:
    """The ``beadplex`` config section.

    Attributes
    ----------
    panel : str or None
        Kit file (path) or the name of a shipped kit (:func:`zincassay.beadplex.panel.builtin_kits`).
    reporter_channel, classification_channel : str
        ``$PnN`` or ``$PnS`` of the reporter (PE) and classification (APC) channels.
    compensate : str
        ``auto`` (the file's spill matrix when present), ``off``, or a CSV spill matrix.
    scatter : BeadScatterSettings
    min_beads_per_population : int
        Fewer events in a bead population flag its reading (``low_bead_count``).
    curve : CurveSettings
    """

    panel: str | None
    reporter_channel: str
    classification_channel: str
    compensate: str
    scatter: BeadScatterSettings
    min_beads_per_population: int
    curve: CurveSettings

    @classmethod
    def from_config(cls, section: dict) -> BeadplexSettings:
        return build_settings(cls, section)
