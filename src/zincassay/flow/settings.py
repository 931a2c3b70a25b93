"""Settings shared by the flow assays (the ``scatter`` and ``gates`` keys of ``cfse`` and
``zincflow``, one schema definition for both), built by :func:`zincassay.config.build_settings`."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GateSettings", "GatesFrom", "ScatterSettings"]


@dataclass(frozen=True)
class ScatterSettings:
    """Scatter channels by name; None = found by name in the file."""

    fsc_a: str | None
    fsc_h: str | None
    ssc: str | None


@dataclass(frozen=True)
class GateSettings:
    """Manual gate settings; None = chosen from the data."""

    lymphocyte_coverage: float
    singlet_ratio: tuple[float, float] | None
    viability_threshold: float | None


@dataclass(frozen=True)
class GatesFrom:
    """Gates imported from a FlowJo workspace or GatingML 2.0 file (``gates_from``)."""

    file: str
    population: str
