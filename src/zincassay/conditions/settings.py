"""Settings of the across-conditions step, built once from the validated ``conditions`` section."""

from __future__ import annotations

from dataclasses import dataclass

from zincassay.config import build_settings

__all__ = ["ConditionsSettings"]


@dataclass(frozen=True)
class ConditionsSettings:
    """The ``conditions`` config section: display ``order`` and the ``reference`` condition; for dose
    series the sheet's ``dose_column`` (numeric, 0 = untreated) and ``source_column`` (None = one
    source), the ``source_reference`` (None = first sorted) and the fits' ``dose_response_weighting``."""

    order: tuple[str, ...]
    reference: str
    dose_column: str | None
    source_column: str | None
    source_reference: str | None
    dose_response_weighting: str

    @classmethod
    def from_config(cls, section: dict) -> ConditionsSettings:
        """From the resolved ``conditions`` section."""
        return build_settings(cls, section)
