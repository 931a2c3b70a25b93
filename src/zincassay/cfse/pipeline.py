"""One CFSE file end to end: read, compensate, gate, then a control summary or a deconvolved sample.

File in, typed result out: :func:`load_gated` reads and gates a file, :func:`summarise_control`
turns a control into a :class:`ControlSummary` (saved as ``control.json`` and read back by
:meth:`ControlSummary.from_dict`), and :func:`analyse_sample` deconvolves a sample into a
:class:`CFSEResult`. :mod:`zincassay.cfse.tables` turns results into rows; nothing here writes files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from zincassay.cfse.deconvolve import GenerationFit, ParentPeak, fit_generations, fit_parent
from zincassay.cfse.intervals import bootstrap_indices
from zincassay.cfse.phenotype import fluorescence_channels, phenotype_by_generation, positivity_threshold
from zincassay.cfse.posterior import (
    component_probabilities,
    generation_boundaries,
    generation_gate_shapes,
    mixing_matrix,
)
from zincassay.cfse.settings import CFSESettings
from zincassay.errors import ZincassayError
from zincassay.flow.compensation import apply_compensation, check_finite
from zincassay.flow.gates_io import GateShape, ImportedGating, gate_as_configured
from zincassay.flow.gating import GatingResult
from zincassay.io.fcs import FCSData, SpillMatrix, read_fcs

__all__ = ["SEVERE_FLAGS", "Autofluorescence", "CFSEResult", "ControlSummary", "GatedFile", "analyse_sample",
           "gate_shapes", "load_gated", "marker_channels", "phenotype", "summarise_control"]

AF_QUANTILES = 400
#: QC flags that make a sample fail (others are reported but keep qc_pass true).
SEVERE_FLAGS = ("too_few_events", "at_bound", "poor_fit", "off_scale", "unstimulated_control_off_scale",
                "unstained_control_off_scale", "unstained_control_stained")
#: Gate variants the bootstrap draws from (each replicate resamples one; see cfse.intervals).
GATE_VARIANTS = 20
#: Share of gated events piled up at the channel's top value above which the channel is off scale.
MAX_OFF_SCALE_SHARE = 0.05
#: An "unstained" control whose autofluorescence median comes within this many decades of the
#: unstimulated parent peak carries dye (a mislabelled tube): its samples fail QC.
MIN_DYE_OVER_AF_LOG10 = 1.0


@dataclass
class GatedFile:
    """A read, compensated and gated FCS file.

    ``data.events`` are the (compensated) events, shape (n_events, n_channels), linear units;
    ``cfse`` the gated CFSE values (linear), shape (n_gated,).
    """

    data: FCSData
    gating: GatingResult
    cfse: np.ndarray
    flags: list[str]
    #: The file as read (uncompensated), for gates and exported events in the file's own terms.
    raw: FCSData | None = None
    #: The imported gates (``cfse.gates_from``), or None for the automatic gates.
    imported: ImportedGating | None = None
    #: The spill matrix ``data`` was compensated with (None when uncompensated).
    spill: SpillMatrix | None = None

    @property
    def events(self) -> np.ndarray:
        return self.data.events

    @property
    def compensation(self) -> str:
        return self.data.compensation


def load_gated(path: str | Path, settings: CFSESettings) -> GatedFile:
    """Read an FCS file, compensate as configured and gate it.

    Raises :class:`zincassay.io.fcs.FCSError` / :class:`CompensationError` for expected problems.
    """
    raw = read_fcs(path)
    check_finite(raw, [settings.channel, settings.viability_channel])
    data, flags, spill = apply_compensation(raw, settings.compensate, settings.on_bad_spill)
    cfse_idx = data.channel_index(settings.channel)
    gating, imported, gate_flags = gate_as_configured(
        raw, data, gates_from=settings.gates_from,
        csv_spill=spill if settings.compensate not in ("auto", "off") else None, gating=settings.gating,
        scatter=settings.scatter, singlet_ratio=settings.gates.singlet_ratio,
        viability_channel=settings.viability_channel, viability_threshold=settings.gates.viability_threshold,
        scatter_populations="all")
    flags += gate_flags
    cfse = data.events[gating.mask, cfse_idx]
    if off_scale_share(cfse) > MAX_OFF_SCALE_SHARE:
        flags.append("off_scale")
    return GatedFile(data, gating, cfse, flags, raw=raw, imported=imported, spill=spill)


def off_scale_share(values: np.ndarray) -> float:
    """Share of ``values`` piled up at their maximum (events clipped at the top of the scale)."""
    if values.size == 0:
        return 0.0
    top = float(np.max(values))
    return float(np.mean(values >= top - 1e-6 * abs(top)))


@dataclass(frozen=True)
class Autofluorescence:
    """CFSE-channel autofluorescence of an unstained control (linear units).

    ``quantiles``: the gated values' quantiles at ``AF_QUANTILES`` evenly spaced levels 0..1.
    """

    median: float
    quantiles: tuple[float, ...]


@dataclass
class ControlSummary:
    """What a sample needs from a control: the parent peak (unstimulated) or the
    autofluorescence (unstained), plus what was done to get it."""

    sample_id: str
    role: str
    file: str
    events_total: int
    events_gated: int
    compensation: str
    flags: list[str]
    gates: list[dict]
    parent: ParentPeak | None = None
    autofluorescence: Autofluorescence | None = None
    #: Unstained control: positivity threshold (99.5th percentile, linear) of each marker channel ($PnN).
    marker_thresholds: dict[str, float] | None = None

    def to_dict(self) -> dict:
        """JSON-able form (``control.json``); absent parts are left out."""
        out = asdict(self)
        for key in ("parent", "autofluorescence", "marker_thresholds"):
            if out[key] is None:
                del out[key]
        if self.autofluorescence is not None:
            out["autofluorescence"]["quantiles"] = list(self.autofluorescence.quantiles)
        return out

    @classmethod
    def from_dict(cls, d: dict, role: str = "") -> ControlSummary:
        """Inverse of :meth:`to_dict`. A failed control's record raises :class:`ZincassayError`
        naming the control and its reason, so its samples fail with it."""
        d = dict(d)
        if d.get("status") == "failed":
            raise ZincassayError(f"its {role or 'matched'} control {d.get('sample_id', '')} failed: {d.get('reason', '')}")
        parent = ParentPeak(**d.pop("parent")) if "parent" in d else None
        af = d.pop("autofluorescence", None)
        auto = Autofluorescence(float(af["median"]), tuple(map(float, af["quantiles"]))) if af else None
        return cls(**d, parent=parent, autofluorescence=auto)


def marker_channels(data: FCSData, settings: CFSESettings) -> list[str]:
    """``$PnN`` of the fluorescence channels other than the dye and viability channels (the markers
    reported by generation)."""
    return fluorescence_channels(data, exclude=[settings.channel, settings.viability_channel or ""])


def summarise_control(gated: GatedFile, role: str, sample_id: str = "", *, markers: Sequence[str] = ()
                      ) -> ControlSummary:
    """Summarise a control: the parent peak (``role='unstimulated'``) or autofluorescence (``'unstained'``).

    ``markers``: ``$PnN`` of the marker channels whose positivity thresholds an unstained control
    records (its gated events' 99.5th percentile; see :func:`zincassay.cfse.phenotype.positivity_threshold`).
    """
    if gated.cfse.size < 50:
        raise ZincassayError(f"{gated.data.path}: {role} control has only {gated.cfse.size} gated events; "
                             "at least 50 are needed")
    summary = ControlSummary(
        sample_id=sample_id, role=role, file=str(gated.data.path), events_total=gated.data.n_events,
        events_gated=gated.gating.events_gated, compensation=gated.compensation, flags=gated.flags,
        gates=[g.__dict__ for g in gated.gating.gates],
    )
    if role == "unstimulated":
        summary.parent = fit_parent(gated.cfse)
    else:
        q = np.quantile(gated.cfse, np.linspace(0, 1, AF_QUANTILES))
        summary.autofluorescence = Autofluorescence(float(np.median(gated.cfse)), tuple(map(float, q)))
        if markers:
            ev = gated.data.events[gated.gating.mask]
            summary.marker_thresholds = {ch: positivity_threshold(ev[:, gated.data.channel_index(ch)])
                                         for ch in sorted(markers)}
    return summary


@dataclass
class CFSEResult:
    """A deconvolved sample: the fit, its bootstrap intervals, QC flags and the controls used.

    ``ci`` maps each index name (and ``peak_ratio``) to its 95 % interval (low, high).
    """

    gated: GatedFile
    fit: GenerationFit
    ci: dict[str, tuple[float, float]]
    flags: list[str]
    parent: ParentPeak
    bootstrap_replicates: int
    unstimulated_id: str = ""
    unstained_id: str = ""

    @property
    def qc_pass(self) -> bool:
        return not any(f in SEVERE_FLAGS for f in self.flags)

    @property
    def parent_shift_log10(self) -> float:
        return self.fit.mu0 - self.parent.mu_log10


def analyse_sample(gated: GatedFile, settings: CFSESettings, unstimulated: ControlSummary,
                   unstained: ControlSummary | None) -> CFSEResult:
    """Deconvolve one sample and compute its indices, CIs and QC flags.

    Parameters
    ----------
    gated : GatedFile
        From :func:`load_gated`.
    settings : CFSESettings
    unstimulated : ControlSummary
        The matched unstimulated control (its parent peak pins generation 0).
    unstained : ControlSummary, optional
        The matched unstained control (autofluorescence); None flags ``no_unstained_control``.
    """
    parent = unstimulated.parent
    if parent is None:
        raise ZincassayError(f"{unstimulated.file}: control {unstimulated.sample_id} has no parent peak; "
                             "it must have role 'unstimulated'")
    af = np.asarray(unstained.autofluorescence.quantiles) if unstained and unstained.autofluorescence else None
    options = settings.fit_options()
    flags = list(gated.flags)
    values = gated.cfse
    if values.size < 50:
        raise ZincassayError(f"{gated.data.path}: only {values.size} events left after gating; at least 50 are needed "
                             "to fit generations (see gating.png for where the events went)")
    fit = fit_generations(values, parent, af, options=options)
    # intervals over event sampling and the gate boundaries: each replicate resamples one gate variant
    rng = np.random.default_rng(settings.seed)
    dye = gated.events[:, gated.data.channel_index(settings.channel)]
    masks = [gated.gating.perturbed_mask(rng) for _ in range(min(settings.bootstrap_replicates, GATE_VARIANTS))]
    ci = bootstrap_indices(values, parent, af, fit, options=options, replicates=settings.bootstrap_replicates,
                           seed=settings.seed, gate_variants=(dye, masks))
    shift = fit.mu0 - parent.mu_log10
    if values.size < settings.min_events:
        flags.append("too_few_events")
    if abs(shift) > settings.max_parent_shift_log10:
        flags.append("parent_shift")
    if fit.reduced_chi2 > settings.max_reduced_chi2:
        flags.append("poor_fit")
    if fit.at_bound:
        flags.append("at_bound")
    if "off_scale" in unstimulated.flags:
        flags.append("unstimulated_control_off_scale")
    if unstained is None:
        flags.append("no_unstained_control")
    else:
        if "off_scale" in unstained.flags:
            flags.append("unstained_control_off_scale")
        af_median = unstained.autofluorescence.median if unstained.autofluorescence else 1.0
        if parent.mu_log10 - np.log10(max(af_median, 1.0)) < MIN_DYE_OVER_AF_LOG10:
            flags.append("unstained_control_stained")
        if fit.af_median_log10 is not None:
            below = fit.generation_mu < fit.af_median_log10
            if fit.cells[below].sum() > 0.01 * fit.cells.sum():
                flags.append("peaks_below_autofluorescence")
    return CFSEResult(gated=gated, fit=fit, ci=ci, flags=flags, parent=parent,
                      bootstrap_replicates=settings.bootstrap_replicates,
                      unstimulated_id=unstimulated.sample_id, unstained_id=unstained.sample_id if unstained else "")


def phenotype(r: CFSEResult, settings: CFSESettings, unstained: ControlSummary | None, sample_id: str
              ) -> pd.DataFrame:
    """Every marker channel's median and % positive per generation (``by_generation.tsv``).

    Events weigh into generations by their fitted probabilities
    (:func:`zincassay.cfse.posterior.component_probabilities`), unmixed by the fit's mixing matrix.
    Positivity thresholds: ``settings.marker_thresholds`` (source ``config``), else the unstained
    control's 99.5th percentile (``unstained q0.995``), else none (``pct_positive`` empty).
    """
    data = r.gated.data
    markers = marker_channels(data, settings)
    configured = {data.channel_names[data.channel_index(k)]: float(v) for k, v in settings.marker_thresholds.items()}
    from_control = (unstained.marker_thresholds or {}) if unstained else {}
    thresholds = {}
    for ch in markers:
        if ch in configured:
            thresholds[ch] = (configured[ch], "config")
        elif ch in from_control:
            thresholds[ch] = (float(from_control[ch]), "unstained q0.995")
    ev = data.events[r.gated.gating.mask]
    channels = {ch: ev[:, data.channel_index(ch)] for ch in markers}
    labels = {ch: str(data.channels["$PnS"].iloc[data.channel_index(ch)] or "").strip() for ch in markers}
    prob = component_probabilities(r.gated.cfse, r.fit)
    return phenotype_by_generation(channels, prob, n_generations=r.fit.cells.size, mixing=mixing_matrix(r.fit),
                                   markers=labels, thresholds=thresholds, sample_id=sample_id)


SPILL_CSV_ID = "spill_csv"


def gate_shapes(r: CFSEResult, settings: CFSESettings) -> tuple[list[GateShape], dict[str, SpillMatrix]]:
    """Every gate of the sample as GatingML shapes, outermost first, then one range gate per
    generation on the dye channel (boundaries where neighbouring fitted generations cross).

    Returns the shapes and the spill matrices they refer to by id (for
    :func:`zincassay.flow.gatingml.write_gatingml`).
    """
    from zincassay.flow.gatingml import auto_gate_shapes

    g = r.gated
    data = g.data
    matrices: dict[str, SpillMatrix] = {}
    if g.spill is None:
        ref = "uncompensated"
    elif settings.compensate not in ("auto", "off"):
        ref, matrices = SPILL_CSV_ID, {SPILL_CSV_ID: g.spill}
    else:
        ref = "FCS"
    if g.imported is not None:
        shapes = list(g.imported.gates)
        matrices.update(g.imported.comp_matrices)
    else:
        fsc_h = g.gating.channels.fsc_h
        top = float(data.events[:, data.channel_index(fsc_h)].max()) if fsc_h else 0.0
        rng = float(data.channels["$PnR"].iloc[data.channel_index(fsc_h)]) if fsc_h else 0.0
        shapes = auto_gate_shapes(g.gating, fsc_h_max=2 * max(top, rng, 1.0),
                                  compensated=g.spill.labels if g.spill else (), compensation_ref=ref,
                                  data=data)
    dye = data.channel_names[data.channel_index(settings.channel)]
    dye_ref = ref if g.spill is not None and dye in g.spill.labels else "uncompensated"
    parent = shapes[-1].population if shapes else ""
    shapes += generation_gate_shapes(generation_boundaries(r.fit), channel=dye, compensation=dye_ref, parent=parent)
    return shapes, matrices
