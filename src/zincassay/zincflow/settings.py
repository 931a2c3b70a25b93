"""Settings of the zinc-by-flow assay, built once from the validated ``zincflow`` config section.

Field names and meanings mirror ``workflow/schemas/config.schema.yaml`` (the only place defaults
live) and ``config/README.md``; the gating keys are the shared flow ones
(:mod:`zincassay.flow.settings`). Units: linear fluorescence unless a name says otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from zincassay.config import KD_NM, build_settings
from zincassay.errors import ZincassayError
from zincassay.flow.settings import GateSettings, GatesFrom, ScatterSettings

__all__ = ["KineticSettings", "Subset", "ZincflowSettings", "parse_subset"]


@dataclass(frozen=True)
class Subset:
    """A population defined by marker signs, e.g. ``CD4+CD8-`` -> ``(("CD4", True), ("CD8", False))``."""

    name: str
    markers: tuple[tuple[str, bool], ...]


def parse_subset(expr: str, known: tuple[str, ...] = ()) -> Subset:
    """Parse ``"CD3+CD4+CD8-"`` into markers and signs.

    Marker names listed in ``known`` (e.g. the keys of ``marker_channels``) are matched first,
    longest first, so names holding ``+`` or ``-`` (``HLA-DR``) work when listed there. Spaces
    between markers are allowed.

    Raises
    ------
    ZincassayError
        When the expression is not a run of ``name+`` / ``name-`` tokens, or names a marker twice.
    """
    text = expr.replace(" ", "")
    out: list[tuple[str, bool]] = []
    pos = 0
    names = sorted(known, key=len, reverse=True)
    while pos < len(text):
        name = next((k for k in names if text.startswith(k, pos) and text[pos + len(k): pos + len(k) + 1] in ("+", "-")),
                    None)
        if name is None:
            m = re.match(r"[^+\-]+", text[pos:])
            if m is None or pos + m.end() >= len(text):
                raise ZincassayError(
                    f"config key zincflow.subsets: {expr!r} is not a run of markers each followed by + or - "
                    "(e.g. 'CD4+CD8-'); list a marker whose name holds + or - under zincflow.marker_channels")
            name = m.group(0)
        sign = text[pos + len(name)]
        if any(n == name for n, _ in out):
            raise ZincassayError(f"config key zincflow.subsets: {expr!r} names marker {name!r} twice")
        out.append((name, sign == "+"))
        pos += len(name) + 1
    if not out:
        raise ZincassayError(f"config key zincflow.subsets: {expr!r} names no marker")
    return Subset(expr, tuple(out))


@dataclass(frozen=True)
class KineticSettings:
    """The ``zincflow.kinetic`` keys (seconds; events)."""

    bin_s: float
    min_events_per_bin: int
    min_gap_s: float
    timestep_s: float | None


@dataclass(frozen=True)
class ZincflowSettings:
    """The ``zincflow`` config section.

    Derived: :attr:`kd_in_force_nM` (``kd_nM`` or the probe's literature value),
    :attr:`subset_list` (the parsed ``subsets``) and :attr:`markers`.
    """

    channel: str
    probe: str
    kd_nM: float | None
    viability_channel: str | None
    compensate: str
    on_bad_spill: str
    gating: str
    scatter: ScatterSettings
    gates: GateSettings
    gates_from: GatesFrom | None
    subsets: tuple[str, ...]
    marker_channels: dict[str, str]
    marker_thresholds: dict[str, float]
    marker_scale: str
    asinh_cofactor: float
    min_dynamic_range: float
    f_low: float
    f_high: float
    max_saturated_fraction: float
    min_events: int
    bootstrap_replicates: int
    seed: int
    kinetic: KineticSettings
    pool_instruments: bool

    @classmethod
    def from_config(cls, section: dict) -> ZincflowSettings:
        """From the resolved ``zincflow`` section (see :func:`zincassay.config.resolve_config`).

        Raises
        ------
        ZincassayError
            A subset that cannot be parsed, or a ``marker_channels``/``marker_thresholds`` key that
            no subset uses (a typo).
        """
        settings = build_settings(cls, section)
        used = set(settings.markers)
        for key in ("marker_channels", "marker_thresholds"):
            for name in getattr(settings, key):
                if name not in used:
                    raise ZincassayError(
                        f"config key zincflow.{key}: {name!r} is not a marker of zincflow.subsets "
                        f"({', '.join(sorted(used))}); fix the spelling or remove it")
        return settings

    @property
    def kd_in_force_nM(self) -> float:
        """Kd (nM) used: ``kd_nM`` when set, else the probe's literature value (:data:`KD_NM`)."""
        return float(self.kd_nM) if self.kd_nM else KD_NM[self.probe]

    @property
    def subset_list(self) -> tuple[Subset, ...]:
        """The subsets, parsed, in config order."""
        known = tuple(self.marker_channels)
        return tuple(parse_subset(e, known) for e in self.subsets)

    @property
    def markers(self) -> tuple[str, ...]:
        """Every marker named by a subset, in first-use order."""
        return tuple(dict.fromkeys(name for s in self.subset_list for name, _ in s.markers))
