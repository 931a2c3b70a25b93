"""Settings of the CFSE assay, built once from the validated ``cfse`` config section.

Field names and meanings mirror ``workflow/schemas/config.schema.yaml`` (the only place defaults
live) and ``config/README.md``. Units: linear fluorescence unless a name says ``log10``.
"""

from __future__ import annotations

from dataclasses import dataclass

from zincassay.cfse.deconvolve import FitOptions
from zincassay.config import build_settings
from zincassay.flow.settings import GateSettings, GatesFrom, ScatterSettings

__all__ = ["CFSESettings", "FitSettings", "GateSettings", "GatesFrom", "ScatterSettings"]


@dataclass(frozen=True)
class FitSettings:
    """How generations are fitted (``cfse.fit``); see :class:`zincassay.cfse.deconvolve.FitOptions`."""

    undivided: str | float
    undivided_shift_bounds_log10: tuple[float, float]
    peak_ratio: float | None
    cv: str | float
    max_cv_log10: float


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
    fit: FitSettings

    @classmethod
    def from_config(cls, section: dict) -> CFSESettings:
        """From the resolved ``cfse`` section (see :func:`zincassay.config.resolve_config`)."""
        return build_settings(cls, section)

    def fit_options(self) -> FitOptions:
        """The fit's options (``cfse.fit`` with ``peak_ratio_bounds`` and ``max_generations``); checks them."""
        f = self.fit
        return FitOptions(undivided=f.undivided, undivided_shift_bounds_log10=f.undivided_shift_bounds_log10,
                          peak_ratio=f.peak_ratio, peak_ratio_bounds=self.peak_ratio_bounds, cv=f.cv,
                          max_cv_log10=f.max_cv_log10, max_generations=self.max_generations)
