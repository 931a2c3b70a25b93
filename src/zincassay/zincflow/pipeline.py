"""One zinc-by-flow sample end to end: its tube and its culture's TPEN / zinc + pyrithione
(/ unstained) tubes in, a typed result out (per subset: calibration, QC, optional kinetics).

:func:`run_sample` takes file paths; :func:`analyse_sample` takes tubes already gated with
:func:`zincassay.zincflow.tubes.gate_tube` (so a culture's controls can be gated once for several
samples). :mod:`zincassay.zincflow.tables` turns the result into table rows and
:mod:`zincassay.zincflow.figures` into figures.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from zincassay.zincflow.calibrate import SubsetCalibration, calibrate_subset
from zincassay.zincflow.kinetics import Addition, KineticTrace, find_addition, kinetic_trace, time_seconds
from zincassay.zincflow.settings import Subset, ZincflowSettings
from zincassay.zincflow.tubes import GatedTube, gate_tube

__all__ = ["SubsetResult", "ZincflowResult", "analyse_sample", "run_sample"]


@dataclass
class SubsetResult:
    """One subset of one sample.

    ``calibration.flags`` holds every QC flag (subset-level and tube-level, e.g.
    ``instrument_mismatch``, ``no_valley(CD8)``, ``spill_not_applied(fmax)``). The value arrays
    (linear, compensated probe values of the subset's gated events; the sample's only before the
    addition for a kinetic tube) are kept for figures.
    """

    subset: Subset
    calibration: SubsetCalibration
    sample_values: np.ndarray
    fmin_values: np.ndarray
    fmax_values: np.ndarray
    af_values: np.ndarray | None
    kinetic: KineticTrace | None


@dataclass
class ZincflowResult:
    """A sample's analysis: its tubes, the probe and Kd in force, one :class:`SubsetResult` per
    configured subset (config order), and the stimulus addition of a kinetic tube."""

    sample: GatedTube
    fmin: GatedTube
    fmax: GatedTube
    unstained: GatedTube | None
    probe: str
    channel: str
    kd_nM: float
    bootstrap_replicates: int
    subsets: list[SubsetResult]
    addition: Addition | None

    @property
    def tubes(self) -> dict[str, GatedTube]:
        out = {"sample": self.sample, "fmin": self.fmin, "fmax": self.fmax}
        if self.unstained is not None:
            out["unstained"] = self.unstained
        return out


def _tube_flags(tubes: dict[str, GatedTube]) -> list[str]:
    flags = [f"{f}({role})" for role, t in tubes.items() for f in t.flags]
    if len({t.instrument for t in tubes.values()}) > 1:
        flags.append("instrument_mismatch")
    return flags


def analyse_sample(sample: GatedTube, fmin: GatedTube, fmax: GatedTube, unstained: GatedTube | None,
                   settings: ZincflowSettings, *, kinetic: bool = False, addition_s: float | None = None
                   ) -> ZincflowResult:
    """Calibrate every configured subset of a sample against its culture's control tubes.

    Parameters
    ----------
    sample, fmin, fmax : GatedTube
        The sample tube and its culture's TPEN and zinc + pyrithione tubes.
    unstained : GatedTube or None
        The culture's unstained (not probe-loaded) tube, for autofluorescence.
    settings : ZincflowSettings
    kinetic : bool
        The sample tube was acquired across a stimulus: the static calibration uses the events
        before the addition, and a binned trace is computed per subset.
    addition_s : float or None
        Stimulus addition on the tube's Time channel (s); None = the longest acquisition pause.

    Returns
    -------
    ZincflowResult

    Raises
    ------
    ZincassayError
        A kinetic tube without a usable Time channel or addition.
    """
    tubes = {"sample": sample, "fmin": fmin, "fmax": fmax, **({"unstained": unstained} if unstained else {})}
    common = _tube_flags(tubes)
    addition, t_sample = None, None
    sample_keep = np.ones(sample.data.n_events, dtype=bool)
    if kinetic:
        t_sample = time_seconds(sample.data, settings.kinetic.timestep_s)
        addition = find_addition(t_sample, min_gap_s=settings.kinetic.min_gap_s, addition_s=addition_s,
                                 path=str(sample.path))
        sample_keep = t_sample <= addition.addition_s if addition.source == "gap" else t_sample < addition.addition_s
    out = []
    for sub in settings.subset_list:
        masks = {role: t.subset(sub) for role, t in tubes.items()}
        flags = list(common)
        missing = [name for name, _ in sub.markers for role in ("sample", "fmin", "fmax")
                   if tubes[role].markers[name].threshold is None]
        for name in dict.fromkeys(missing):
            flags.append(f"no_valley({name})")
        af_values = None
        if unstained is not None:
            m = masks["unstained"]
            if m is None:
                flags.append("af_not_per_subset")
                m = unstained.gating.mask
            af_values = unstained.probe[m]
        rng = np.random.default_rng([settings.seed, zlib.crc32(sub.name.encode())])
        empty = np.zeros(0)
        if missing:
            vals = {"sample": empty, "fmin": empty, "fmax": empty}
            top = np.zeros(0, dtype=bool)
        else:
            vals = {"sample": sample.probe[masks["sample"] & sample_keep], "fmin": fmin.probe[masks["fmin"]],
                    "fmax": fmax.probe[masks["fmax"]]}
            top = fmax.probe_at_top[masks["fmax"]]
        cal = calibrate_subset(
            vals["sample"], vals["fmin"], vals["fmax"], kd_nM=settings.kd_in_force_nM, af=af_values, fmax_at_top=top,
            min_dynamic_range=settings.min_dynamic_range, f_low=settings.f_low, f_high=settings.f_high,
            max_saturated_fraction=settings.max_saturated_fraction, min_events=settings.min_events,
            replicates=settings.bootstrap_replicates, rng=rng)
        if missing:  # no subset, so no events: too_few_events says nothing more
            cal = _with_flags(cal, tuple(flags))
        else:
            cal = _with_flags(cal, cal.flags + tuple(flags))
        trace = None
        if kinetic and not missing and np.isfinite(cal.Fmin):
            assert t_sample is not None and addition is not None
            m = masks["sample"]
            af = cal.af if np.isfinite(cal.af) else 0.0
            trace = kinetic_trace(t_sample[m], sample.probe[m], addition=addition, bin_s=settings.kinetic.bin_s,
                                  min_events_per_bin=settings.kinetic.min_events_per_bin, fmin=cal.Fmin,
                                  fmax=cal.Fmax, af=af, kd_nM=settings.kd_in_force_nM)
        out.append(SubsetResult(sub, cal, vals["sample"], vals["fmin"], vals["fmax"], af_values, trace))
    return ZincflowResult(sample=sample, fmin=fmin, fmax=fmax, unstained=unstained, probe=settings.probe,
                          channel=settings.channel, kd_nM=settings.kd_in_force_nM,
                          bootstrap_replicates=settings.bootstrap_replicates, subsets=out, addition=addition)


def _with_flags(cal: SubsetCalibration, flags: tuple[str, ...]) -> SubsetCalibration:
    return replace(cal, flags=flags)


def run_sample(sample_path: str | Path, fmin_path: str | Path, fmax_path: str | Path,
               unstained_path: str | Path | None, settings: ZincflowSettings, *, kinetic: bool = False,
               addition_s: float | None = None) -> ZincflowResult:
    """Read and gate the tubes, then :func:`analyse_sample`.

    Parameters
    ----------
    sample_path : the sample tube (FCS).
    fmin_path, fmax_path : its culture's TPEN and zinc + pyrithione tubes.
    unstained_path : its culture's unstained tube, or None.
    settings, kinetic, addition_s : as for :func:`analyse_sample`.

    Raises
    ------
    ZincassayError
        Any expected problem with a file (unreadable, probe channel or marker absent, bad spill
        matrix, kinetic tube without Time/addition); the message names the file.
    """
    tubes = {role: gate_tube(p, role, settings) for role, p in
             (("sample", sample_path), ("fmin", fmin_path), ("fmax", fmax_path), ("unstained", unstained_path))
             if p is not None}
    return analyse_sample(tubes["sample"], tubes["fmin"], tubes["fmax"], tubes.get("unstained"), settings,
                          kinetic=kinetic, addition_s=addition_s)
