"""Settings of the zinc-by-flow assay, built once from the validated ``zincflow`` config section.

Every value comes from the section as :func:`zincassay.config.resolve_config` returns it (defaults
filled in from ``workflow/schemas/config.schema.yaml``); nothing here has a default of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from zincassay.config import KD_NM
from zincassay.errors import ZincassayError

__all__ = ["FlowGateSettings", "KineticSettings", "Subset", "ZincflowSettings", "parse_subset"]


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
        When the expression is not a run of ``name+`` / ``name-`` tokens.
    """
    text = expr.replace(" ", "")
    out: list[tuple[str, bool]] = []
    pos = 0
    names = sorted(known, key=len, reverse=True)
    while pos < len(text):
        name = next((k for k in names if text.startswith(k, pos) and text[pos + len(k): pos + len(k) + 1] in ("+", "-")
                     and len(text) > pos + len(k)), None)
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
class FlowGateSettings:
    """Lymphocyte / singlet / live gates (:mod:`zincassay.flow.gating`); same keys as ``cfse``."""

    mode: str  # "auto" | "none"
    fsc_a: str | None
    fsc_h: str | None
    ssc: str | None
    lymphocyte_coverage: float
    singlet_ratio: tuple[float, float] | None
    viability_channel: str | None
    viability_threshold: float | None
    compensate: str  # "auto" | "off" | CSV path
    on_bad_spill: str  # "error" | "warn"

    def as_flow_config(self) -> dict[str, Any]:
        """The section layout :func:`zincassay.flow.gating.gate_events` reads."""
        return {
            "gating": self.mode,
            "scatter": {"fsc_a": self.fsc_a, "fsc_h": self.fsc_h, "ssc": self.ssc},
            "gates": {"lymphocyte_coverage": self.lymphocyte_coverage,
                      "singlet_ratio": list(self.singlet_ratio) if self.singlet_ratio else None,
                      "viability_threshold": self.viability_threshold},
            "viability_channel": self.viability_channel,
        }


@dataclass(frozen=True)
class KineticSettings:
    bin_s: float
    min_events_per_bin: int
    min_gap_s: float
    timestep_s: float | None


@dataclass(frozen=True)
class ZincflowSettings:
    """Everything the zinc-by-flow analysis needs, typed.

    Attributes
    ----------
    channel : probe channel ($PnN or $PnS).
    probe : "FluoZin-3" or "Zinpyr-1".
    kd_nM : Kd in force (nM): ``kd_nM`` from the config, else the probe's literature value.
    subsets : the populations calibrated, in config order.
    marker_channels : marker name -> channel, for markers that are not channel names.
    marker_thresholds : marker name -> manual threshold (linear, compensated units).
    marker_scale : "asinh" or "log"; asinh_cofactor : linear units.
    min_dynamic_range, f_low, f_high, max_saturated_fraction, min_events : QC limits.
    bootstrap_replicates, seed : the bootstrap CI.
    pool_instruments : allow pooling across ``$CYT`` values downstream.
    """

    channel: str
    probe: str
    kd_nM: float
    gates: FlowGateSettings
    subsets: tuple[Subset, ...]
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

    @property
    def markers(self) -> tuple[str, ...]:
        """Every marker named by a subset, in first-use order."""
        seen: dict[str, None] = {}
        for s in self.subsets:
            for name, _ in s.markers:
                seen.setdefault(name, None)
        return tuple(seen)

    @classmethod
    def from_config(cls, section: dict) -> ZincflowSettings:
        """Build from the ``zincflow`` section of a resolved config (defaults already filled in).

        Raises
        ------
        ZincassayError
            For a subset expression that cannot be parsed.
        """
        s = section
        known = tuple(s["marker_channels"])
        subsets = tuple(parse_subset(e, known) for e in s["subsets"])
        g, sc = s["gates"], s["scatter"]
        gates = FlowGateSettings(
            mode=s["gating"], fsc_a=sc["fsc_a"], fsc_h=sc["fsc_h"], ssc=sc["ssc"],
            lymphocyte_coverage=float(g["lymphocyte_coverage"]),
            singlet_ratio=tuple(float(v) for v in g["singlet_ratio"]) if g["singlet_ratio"] else None,  # type: ignore[arg-type]
            viability_channel=s["viability_channel"],
            viability_threshold=None if g["viability_threshold"] is None else float(g["viability_threshold"]),
            compensate=s["compensate"], on_bad_spill=s["on_bad_spill"],
        )
        k = s["kinetic"]
        kinetic = KineticSettings(bin_s=float(k["bin_s"]), min_events_per_bin=int(k["min_events_per_bin"]),
                                  min_gap_s=float(k["min_gap_s"]),
                                  timestep_s=None if k["timestep_s"] is None else float(k["timestep_s"]))
        used = {name for sub in subsets for name, _ in sub.markers}
        for key in ("marker_channels", "marker_thresholds"):
            for name in s[key]:
                if name not in used:
                    raise ZincassayError(
                        f"config key zincflow.{key}: {name!r} is not a marker of zincflow.subsets "
                        f"({', '.join(sorted(used))}); fix the spelling or remove it")
        kd = float(s["kd_nM"]) if s["kd_nM"] is not None else KD_NM[s["probe"]]
        return cls(
            channel=s["channel"], probe=s["probe"], kd_nM=kd, gates=gates, subsets=subsets,
            marker_channels=dict(s["marker_channels"]),
            marker_thresholds={k: float(v) for k, v in s["marker_thresholds"].items()},
            marker_scale=s["marker_scale"], asinh_cofactor=float(s["asinh_cofactor"]),
            min_dynamic_range=float(s["min_dynamic_range"]), f_low=float(s["f_low"]), f_high=float(s["f_high"]),
            max_saturated_fraction=float(s["max_saturated_fraction"]), min_events=int(s["min_events"]),
            bootstrap_replicates=int(s["bootstrap_replicates"]), seed=int(s["seed"]), kinetic=kinetic,
            pool_instruments=bool(s["pool_instruments"]),
        )
