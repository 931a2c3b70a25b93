"""Standard-curve settings, built once from the validated ``curve`` subsection of an assay's
config section (``beadplex.curve``, ``elisa.curve``). Fields mirror the schema keys; defaults live
only in ``workflow/schemas/config.schema.yaml``."""

from __future__ import annotations

from dataclasses import dataclass

from zincassay.config import build_settings

__all__ = ["CurveSettings"]


@dataclass(frozen=True)
class CurveSettings:
    """How standard curves are fitted and judged (one per analyte and run).

    Attributes
    ----------
    models : tuple of {"4pl", "5pl"}
        Candidate models; the one with the lowest ``criterion`` is used.
    weighting : {"power", "1/y2"}
        Variance function of the readings.
    criterion : {"aicc", "aic"}
    recovery_pct : (low, high)
        A standard level passes when its mean back-calculated concentration is within this % of nominal.
    max_cv_pct : float
        ... and the CV of its replicates' back-calculated concentrations is at most this; samples whose
        replicate readings vary more are flagged ``high_replicate_cv``.
    max_sample_cv_pct : float
        The quantifiable range also requires the precision profile (predicted CV of a concentration
        back-calculated from one reading) to be at most this.
    exclude_failed_level : bool
        Leave out (with a note) one standard level that the rest of the curve shows to be an outlier.
    blanks_as_zero_standard : bool
        Blank wells enter the fit as concentration 0.
    ci_level : float
        Coverage of the intervals on back-calculated concentrations (e.g. 0.95).
    """

    models: tuple[str, ...]
    weighting: str
    criterion: str
    recovery_pct: tuple[float, float]
    max_cv_pct: float
    max_sample_cv_pct: float
    exclude_failed_level: bool
    blanks_as_zero_standard: bool
    ci_level: float

    @classmethod
    def from_config(cls, section: dict) -> CurveSettings:
        return build_settings(cls, section)
