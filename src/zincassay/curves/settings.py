"""Standard-curve settings, built once from the validated ``curve`` subsection of an assay's config.

Defaults live only in ``workflow/schemas/config.schema.yaml``; this module reads every key.
"""

from __future__ import annotations

from dataclasses import dataclass

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
        ... and the CV of its replicates' back-calculated concentrations is at most this.
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
        lo, hi = section["recovery_pct"]
        return cls(tuple(section["models"]), section["weighting"], section["criterion"], (float(lo), float(hi)),
                   float(section["max_cv_pct"]), float(section["max_sample_cv_pct"]),
                   bool(section["exclude_failed_level"]),
                   bool(section["blanks_as_zero_standard"]), float(section["ci_level"]))
