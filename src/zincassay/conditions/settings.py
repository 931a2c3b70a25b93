"""Settings of the across-conditions step, built once from the validated ``conditions`` section."""

from __future__ import annotations

from dataclasses import dataclass

from zincassay.config import build_settings

__all__ = ["ConditionsSettings"]


@dataclass(frozen=True)
class ConditionsSettings:
    """The ``conditions`` config section: display ``order`` and the ``reference`` condition."""

    order: tuple[str, ...]
    reference: str

    @classmethod
    def from_config(cls, section: dict) -> ConditionsSettings:
        """From the resolved ``conditions`` section."""
        return build_settings(cls, section)
