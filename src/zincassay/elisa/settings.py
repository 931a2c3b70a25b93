"""ELISA settings, built once from the validated ``elisa`` config section (defaults live only in
``workflow/schemas/config.schema.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass

from zincassay.config import build_settings
from zincassay.curves.settings import CurveSettings

__all__ = ["ElisaSettings"]


@dataclass(frozen=True)
class ElisaSettings:
    """Attributes
    ----------
    kit : str or None
        Kit file (path) or shipped kit name (:func:`zincassay.elisa.kit.builtin_kits`).
    wavelength_nm : float
        Measurement wavelength.
    reference_wavelength_nm : float or None
        Reference wavelength; None = the export's other wavelength when it has exactly one in 540-700 nm.
    dual_wavelength : bool
        Subtract the reference reading well by well when there is one.
    blank_subtraction : bool
        Subtract the plate's mean blank OD.
    curve : CurveSettings
    """

    kit: str | None
    wavelength_nm: float
    reference_wavelength_nm: float | None
    dual_wavelength: bool
    blank_subtraction: bool
    curve: CurveSettings

    @classmethod
    def from_config(cls, section: dict) -> ElisaSettings:
        return build_settings(cls, section)
