"""Settings of the CFSE assay, built once from the validated ``cfse`` config section.

Field names and meanings mirror ``workflow/schemas/config.schema.yaml`` (the only place defaults
live) and ``config/README.md``. Units: linear fluorescence unless a name says ``log10``.
"""

from __future__ import annotations

from dataclasses import dataclass

from zincassay.config import build_settings
from zincassay.flow.settings import GateSettings, GatesFrom, ScatterSettings

__all__ = ["CFSESettings", "GateSettings", "GatesFrom", "ScatterSettings"]


@dataclass(frozen=True)
class CFSESettings:
    """The ``cfse`` config section."""

    channel: str
    viability_channel: str | None
    compensate: str
    on_bad_spill: str
    gating: str
    scatter: ScatterSettings
    gates: GateSettings
    gates_from: GatesFrom | None
    export_fcs: bool
    marker_thresholds: dict[str, float]
    max_generations: int
    peak_ratio_bounds: tuple[float, float]
    bootstrap_replicates: int
    seed: int
    min_events: int
    max_parent_shift_log10: float
    max_reduced_chi2: float

    @classmethod
    def from_config(cls, section: dict) -> CFSESettings:
        """From the resolved ``cfse`` section (see :func:`zincassay.config.resolve_config`)."""
        return build_settings(cls, section)
