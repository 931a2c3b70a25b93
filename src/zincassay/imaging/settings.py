"""Settings of the zinc-imaging assay, built once from the validated ``imaging`` config section.

Field names and meanings mirror ``workflow/schemas/config.schema.yaml`` (the only place defaults
live) and ``config/README.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from zincassay.config import KD_NM, build_settings

__all__ = ["ImagingSettings"]


@dataclass(frozen=True)
class ImagingSettings:
    """The ``imaging`` config section."""

    probe: str
    kd_nM: float | None
    channel: int | str | None
    bit_depth: int | None
    pixel_size_um: float | None
    min_dynamic_range: float
    bleach_correction: bool
    registration: bool
    cell_area_um2: tuple[float, float]
    cell_area_px: tuple[float, float]
    erode_px: int
    plateau_max_slope_pct_per_min: float
    peak_window_s: float
    responder_min_rise: float

    @classmethod
    def from_config(cls, section: dict) -> ImagingSettings:
        """From the resolved ``imaging`` section (see :func:`zincassay.config.resolve_config`)."""
        return build_settings(cls, section)

    @property
    def kd_in_force_nM(self) -> float:
        """Kd (nM) used: ``kd_nM`` when set, else the probe's literature value (:data:`KD_NM`)."""
        return float(self.kd_nM) if self.kd_nM else KD_NM[self.probe]

    def area_limits_px(self, pixel_size_um: float | None) -> tuple[float, float]:
        """Cell-area limits (px): from ``cell_area_um2`` when the pixel size (µm) is known, else
        ``cell_area_px``."""
        if pixel_size_um:
            lo, hi = self.cell_area_um2
            return lo / pixel_size_um**2, hi / pixel_size_um**2
        return self.cell_area_px
