"""Per-file CFSE analysis: read, compensate, gate, then control summaries or sample deconvolution.

These functions return plain dicts and DataFrames; :mod:`zincassay.cfse.cli` writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from zincassay.cfse.deconvolve import FitOptions, GenerationFit, ParentPeak, fit_generations, fit_parent
from zincassay.cfse.indices import INDEX_NAMES, precursor_fractions
from zincassay.cfse.intervals import bootstrap_indices
from zincassay.errors import ZincassayError
from zincassay.flow.gating import GatingResult, gate_events
from zincassay.io.fcs import CompensationError, FCSData, compensate, read_fcs, read_spill_csv

__all__ = ["SEVERE_FLAGS", "GatedFile", "analyse_sample", "load_gated", "summarise_control"]

AF_QUANTILES = 400
#: Gate variants the bootstrap draws from (each replicate resamples one; see cfse.intervals).
GATE_VARIANTS = 20
#: QC flags that make a sample fail (others are reported but keep qc_pass true).
SEVERE_FLAGS = ("too_few_events", "at_bound", "poor_fit")


@dataclass
class GatedFile:
    data: FCSData
    events: np.ndarray  # compensated (or raw) events, (n_events, n_channels)
    gating: GatingResult
    cfse: np.ndarray  # gated CFSE values (linear)
    compensation: str  # what was applied
    flags: list[str]


def load_gated(path: str | Path, cfse_cfg: dict, use_viability: bool = True) -> GatedFile:
    """Read an FCS file, compensate as configured and gate it.

    Raises :class:`zincassay.io.fcs.FCSError` / :class:`CompensationError` for expected problems.
    """
    data = read_fcs(path)
    flags: list[str] = []
    mode = cfse_cfg.get("compensate", "auto")
    events, applied = data.events, "none"
    if mode != "off":
        spill = None
        if mode != "auto":
            spill = read_spill_csv(mode)
        if spill is not None or data.spill is not None or data.spill_problem:
            try:
                events = compensate(data, spill)
                applied = spill.source if spill is not None else f"file {data.spill.source}"  # type: ignore[union-attr]
            except CompensationError:
                if cfse_cfg.get("on_bad_spill", "error") == "error":
                    raise
                flags.append("spill_not_applied")
    cfse_idx = data.channel_index(cfse_cfg["channel"])
    viability = cfse_cfg.get("viability_channel") if use_viability else None
    gating = gate_events(data, events, cfse_cfg, viability)
    if any(g.name == "singlets" and g.note.startswith("skipped") for g in gating.gates):
        flags.append("singlet_gate_skipped")
    return GatedFile(data, events, gating, events[gating.mask, cfse_idx], applied, flags)


def summarise_control(gated: GatedFile, role: str) -> dict:
    """JSON-able summary of a control: the parent peak (unstimulated) or autofluorescence (unstained)."""
    out: dict = {
        "role": role,
        "file": str(gated.data.path),
        "events_total": gated.data.n_events,
        "events_gated": gated.gating.events_gated,
        "compensation": gated.compensation,
        "flags": gated.flags,
        "gates": [g.__dict__ for g in gated.gating.gates],
    }
    if gated.cfse.size < 50:
        raise ZincassayError(f"{gated.data.path}: {role} control has only {gated.cfse.size} gated events; at least 50 are needed")
    if role == "unstimulated":
        peak = fit_parent(gated.cfse)
        out["parent"] = {"mu_log10": peak.mu_log10, "sigma_log10": peak.sigma_log10, "n_events": peak.n_events}
    else:
        q = np.quantile(gated.cfse, np.linspace(0, 1, AF_QUANTILES))
        out["autofluorescence"] = {"median": float(np.median(gated.cfse)), "quantiles": q.tolist()}
    return out


def analyse_sample(
    gated: GatedFile, cfse_cfg: dict, unstimulated: dict, unstained: dict | None, meta: dict,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, GenerationFit]:
    """Deconvolve one sample and compute its indices, CIs and QC.

    Parameters
    ----------
    gated : GatedFile
    cfse_cfg : the ``cfse`` config section.
    unstimulated, unstained : control summaries from :func:`summarise_control` (unstained may be None).
    meta : sample-sheet fields to carry (sample_id, condition, donor, batch and extra columns).

    Returns
    -------
    indices : one-row DataFrame; generations : one row per generation; gates : one row per gate;
    fit : the GenerationFit (for figures).
    """
    p = unstimulated["parent"]
    parent = ParentPeak(p["mu_log10"], p["sigma_log10"], p["n_events"])
    af = np.asarray(unstained["autofluorescence"]["quantiles"]) if unstained else None
    options = FitOptions.from_config(cfse_cfg)
    flags = list(gated.flags)
    values = gated.cfse
    if values.size < 50:
        raise ZincassayError(f"{gated.data.path}: only {values.size} events left after gating; cannot fit generations")
    fit = fit_generations(values, parent, af, options=options)
    replicates = cfse_cfg["bootstrap_replicates"]
    rng = np.random.default_rng(cfse_cfg["seed"])
    dye = gated.events[:, gated.data.channel_index(cfse_cfg["channel"])]
    variants = [dye[gated.gating.perturbed_mask(rng)] for _ in range(min(replicates, GATE_VARIANTS))]
    ci = bootstrap_indices(values, parent, af, fit, options=options, replicates=replicates, seed=cfse_cfg["seed"],
                           variants=variants)
    shift = fit.mu0 - parent.mu_log10
    if values.size < cfse_cfg["min_events"]:
        flags.append("too_few_events")
    if abs(shift) > cfse_cfg["max_parent_shift_log10"]:
        flags.append("parent_shift")
    if fit.reduced_chi2 > cfse_cfg["max_reduced_chi2"]:
        flags.append("poor_fit")
    if fit.at_bound:
        flags.append("at_bound")
    if unstained is None:
        flags.append("no_unstained_control")
    elif fit.af_median_log10 is not None:
        below = fit.generation_mu < fit.af_median_log10
        if fit.cells[below].sum() > 0.01 * fit.cells.sum():
            flags.append("peaks_below_autofluorescence")
    row: dict = {k: meta.get(k, "") for k in ("sample_id", "condition", "donor", "batch")}
    for k in INDEX_NAMES:
        row[k] = fit.indices[k]
        row[f"{k}_ci_low"], row[f"{k}_ci_high"] = ci.get(k, (np.nan, np.nan))
    row["peak_ratio"] = fit.peak_ratio
    row["peak_ratio_ci_low"], row["peak_ratio_ci_high"] = ci.get("peak_ratio", (np.nan, np.nan))
    row.update(
        parent_log10=fit.mu0, parent_control_log10=parent.mu_log10, parent_shift_log10=shift,
        peak_width_log10=fit.sigma, width_growth_log10=fit.tau, at_bound=";".join(fit.at_bound),
        n_generations=fit.n_generations, events_total=gated.data.n_events,
        events_gated=int(values.size), background_events=fit.background_events,
        events_at_or_below_zero=int(np.sum(values <= 0)), reduced_chi2=fit.reduced_chi2,
        bootstrap_replicates=cfse_cfg["bootstrap_replicates"],
        qc_pass=not any(f in SEVERE_FLAGS for f in flags), qc_flags=";".join(flags),
        compensation=gated.compensation, unstimulated=meta.get("unstimulated", ""), unstained=meta.get("unstained", ""),
    )
    for k, v in meta.items():
        row.setdefault(k, v)
    cells = fit.cells
    gens = pd.DataFrame({
        "sample_id": meta.get("sample_id", ""),
        "generation": np.arange(cells.size),
        "cells": cells,
        "fraction": fit.fractions,
        "precursors": cells / np.power(2.0, np.arange(cells.size)),
        "precursor_fraction": precursor_fractions(cells),
        "mean_log10": fit.generation_mu,
    })
    gates = pd.DataFrame([
        {"sample_id": meta.get("sample_id", ""), "step": i + 1, "gate": g.name, "events_in": g.events_in,
         "events_kept": g.events_kept, "fraction_kept": g.events_kept / g.events_in if g.events_in else np.nan,
         "note": g.note}
        for i, g in enumerate(gated.gating.gates)
    ])
    return pd.DataFrame([row]), gens, gates, fit


