"""One tube: read, compensate, gate (lymphocytes, singlets, live), split the markers.

The gates are the shared ones of :mod:`zincassay.flow.gating`, called through its public
:func:`~zincassay.flow.gating.gate_events`. Every tube of a culture is gated on its own (the
Fmax tube's cells are a little smaller and more of them are dead).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zincassay.errors import ZincassayError
from zincassay.flow.compensation import apply_compensation, check_finite
from zincassay.flow.gates_io import ImportedGating, gate_as_configured
from zincassay.flow.gating import GatingResult
from zincassay.io.fcs import FCSData, FCSError, read_fcs
from zincassay.zincflow.settings import Subset, ZincflowSettings
from zincassay.zincflow.subsets import subset_mask, valley_threshold

__all__ = ["GatedTube", "MarkerSplit", "gate_tube", "top_of_scale"]


@dataclass(frozen=True)
class MarkerSplit:
    """How a marker was split in one tube: its channel, threshold (linear) and where it came from."""

    marker: str
    channel: str
    threshold: float | None
    source: str  # "valley", "manual" or "no valley"


@dataclass
class GatedTube:
    """A read, compensated and gated tube.

    Attributes
    ----------
    path, role : the file and its sheet role (sample, fmin, fmax, unstained).
    data : FCSData
        Its ``events`` (n_events, n_channels) compensated when a matrix was applied
        (``data.compensation`` says which).
    flags : e.g. ``spill_not_applied``, ``singlet_gate_skipped``.
    gating : lymphocyte / singlet / live gates (``gating.mask``).
    probe_column : column of the probe channel in ``events``.
    probe_at_top : bool (n_events,), the uncompensated probe value is at the top of the scale.
    markers : marker name -> :class:`MarkerSplit`.
    marker_values : marker name -> compensated linear values (n_events,).
    instrument, instrument_serial : ``$CYT`` and ``$CYTSN`` ('' when absent).
    imported : the gates of ``zincflow.gates_from`` (None for the automatic gates).
    """

    path: Path
    role: str
    data: FCSData
    flags: list[str]
    gating: GatingResult
    probe_column: int
    probe_at_top: np.ndarray
    markers: dict[str, MarkerSplit]
    marker_values: dict[str, np.ndarray]
    instrument: str
    instrument_serial: str
    imported: ImportedGating | None = None

    @property
    def events(self) -> np.ndarray:
        return self.data.events

    @property
    def compensation(self) -> str:
        return self.data.compensation

    @property
    def probe(self) -> np.ndarray:
        """Probe values of every event (linear, compensated), (n_events,)."""
        return self.events[:, self.probe_column]

    def subset(self, subset: Subset) -> np.ndarray | None:
        """Mask of the subset's gated events, or None when one of its markers could not be split."""
        return subset_mask(self.marker_values, {k: m.threshold for k, m in self.markers.items()}, subset,
                           self.gating.mask)


def top_of_scale(raw: np.ndarray) -> np.ndarray:
    """Events piled up at the channel's largest value: the top of the scale.

    Instruments clip at the top of the scale, so saturated events share one value; a largest
    value held by a single event is an ordinary event. Uses the values as the file stores them
    (uncompensated).
    """
    raw = np.asarray(raw)
    if raw.size == 0:
        return np.zeros(0, dtype=bool)
    at = raw >= raw.max()
    return at if at.sum() >= 2 else np.zeros(raw.shape, dtype=bool)


def _suggest(name: str, names: list[str]) -> list[str]:
    """Channel names the user may have meant: those holding ``name`` as a word, else close spellings."""
    word = re.compile(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9])", re.I)
    hits = [n for n in names if word.search(n)]
    return hits or difflib.get_close_matches(name, names, n=1, cutoff=0.6)


def _channel(data: FCSData, name: str, what: str, fix: str) -> int:
    """Column of channel ``name``; else one line naming the file, what was looked up, a guess and the
    fix (``{guess}`` in ``fix`` becomes the first guess, or ``PE-A``)."""
    try:
        return data.channel_index(name)
    except FCSError:
        names = list(dict.fromkeys(n for n in list(data.channels["$PnN"]) + list(data.channels["$PnS"]) if n))
        guess = _suggest(name, names)
        hint = f"did you mean {' or '.join(repr(g) for g in guess)}? " if guess else ""
        fix = fix.replace("{guess}", guess[0] if guess else "PE-A")
        raise ZincassayError(
            f"{data.path}: {what} is not a channel of this file (no $PnN or $PnS named {name!r}); {hint}{fix}. "
            f"Channels ($PnN / $PnS): {data.describe_channels()}") from None


def gate_tube(path: str | Path, role: str, settings: ZincflowSettings) -> GatedTube:
    """Read one tube and gate it.

    Parameters
    ----------
    path : the FCS file.
    role : its sheet role (``sample``, ``fmin``, ``fmax``, ``unstained``); kept for messages.
    settings : ZincflowSettings

    Raises
    ------
    ZincassayError
        The file cannot be read, the probe channel or a subset marker is not in it, the spill
        matrix is bad (with ``on_bad_spill: error``), or too few events to gate.
    """
    raw = read_fcs(path)
    probe_column = _channel(raw, settings.channel, f"the probe channel {settings.channel!r} (zincflow.channel)",
                            "set zincflow.channel to the probe's $PnN or $PnS")
    if settings.viability_channel:
        _channel(raw, settings.viability_channel,
                 f"the viability channel {settings.viability_channel!r} (zincflow.viability_channel)",
                 "set zincflow.viability_channel to the dye's $PnN or $PnS, or null")
    check_finite(raw, [settings.channel, settings.viability_channel])
    data, flags, spill = apply_compensation(raw, settings.compensate, settings.on_bad_spill)
    g = settings.gates
    gating, imported, gate_flags = gate_as_configured(
        raw, data, gates_from=settings.gates_from,
        csv_spill=spill if settings.compensate not in ("auto", "off") else None, gating=settings.gating,
        scatter=settings.scatter, singlet_ratio=g.singlet_ratio, viability_channel=settings.viability_channel,
        viability_threshold=g.viability_threshold, scatter_populations="densest")
    flags += gate_flags
    markers: dict[str, MarkerSplit] = {}
    values: dict[str, np.ndarray] = {}
    for name in settings.markers:
        ch_name = settings.marker_channels.get(name, name)
        using = [s.name for s in settings.subset_list if any(m == name for m, _ in s.markers)]
        col = _channel(data, ch_name, f"marker {name!r} (subsets {', '.join(using)})",
                       f"map the marker to its channel with zincflow.marker_channels (e.g. {{{name}: {{guess}}}})")
        v = data.events[:, col]
        values[name] = v
        if name in settings.marker_thresholds:
            thr, source = settings.marker_thresholds[name], "manual"
        else:
            thr = valley_threshold(v[gating.mask], scale=settings.marker_scale, cofactor=settings.asinh_cofactor)
            source = "valley" if thr is not None else "no valley"
        markers[name] = MarkerSplit(name, data.channel_names[col], thr, source)
    return GatedTube(
        path=Path(path), role=role, data=data, flags=flags, gating=gating,
        probe_column=probe_column, probe_at_top=top_of_scale(raw.events[:, probe_column]), markers=markers,
        marker_values=values, instrument=data.keywords.get("$CYT", "").strip(),
        instrument_serial=data.keywords.get("$CYTSN", "").strip(), imported=imported,
    )
