"""CFSE results as table rows (``results/cfse/...``); column meanings are in the README's output contract."""

from __future__ import annotations

import numpy as np
import pandas as pd

from zincassay.cfse.indices import INDEX_NAMES, precursor_fractions
from zincassay.cfse.pipeline import CFSEResult
from zincassay.samplesheet import Sample

__all__ = ["gates_table", "generations_table", "histogram_table", "indices_table"]


def indices_table(r: CFSEResult, sample: Sample) -> pd.DataFrame:
    """One row (``indices.tsv``): the sample's labels, the six indices with their 95 % CIs, the fit,
    event counts, QC and the sheet's extra columns."""
    fit = r.fit
    row: dict = {**sample.labels, "status": "ok", "failure": ""}
    for k in INDEX_NAMES:
        row[k] = fit.indices[k]
        row[f"{k}_ci_low"], row[f"{k}_ci_high"] = r.ci.get(k, (np.nan, np.nan))
    row["peak_ratio"] = fit.peak_ratio
    row["peak_ratio_ci_low"], row["peak_ratio_ci_high"] = r.ci.get("peak_ratio", (np.nan, np.nan))
    values = r.gated.cfse
    row.update(
        parent_log10=fit.mu0, parent_control_log10=r.parent.mu_log10, parent_shift_log10=r.parent_shift_log10,
        peak_width_log10=fit.sigma, n_generations=fit.n_generations, events_total=r.gated.data.n_events,
        events_gated=int(values.size), background_events=fit.background_events,
        events_at_or_below_zero=int(np.sum(values <= 0)), reduced_chi2=fit.reduced_chi2,
        bootstrap_replicates=r.bootstrap_replicates, qc_pass=r.qc_pass, qc_flags=";".join(r.flags),
        compensation=r.gated.compensation, unstimulated=r.unstimulated_id, unstained=r.unstained_id,
    )
    row.update(sample.extra)
    return pd.DataFrame([row])


def generations_table(r: CFSEResult, sample_id: str) -> pd.DataFrame:
    """One row per fitted generation (``generations.tsv``): cells, fractions, precursors, position (log10)."""
    cells = r.fit.cells
    g = np.arange(cells.size)
    return pd.DataFrame({
        "sample_id": sample_id, "generation": g, "cells": cells, "fraction": r.fit.fractions,
        "precursors": cells / np.power(2.0, g), "precursor_fraction": precursor_fractions(cells),
        "mean_log10": r.fit.generation_mu,
    })


def gates_table(r: CFSEResult, sample_id: str) -> pd.DataFrame:
    """One row per gate, in order (``gates.tsv``): events in, kept, the fraction kept and a note."""
    return pd.DataFrame([
        {"sample_id": sample_id, "step": i + 1, "gate": g.name, "events_in": g.events_in,
         "events_kept": g.events_kept, "fraction_kept": g.events_kept / g.events_in if g.events_in else np.nan,
         "note": g.note}
        for i, g in enumerate(r.gated.gating.gates)
    ])


def histogram_table(r: CFSEResult, sample_id: str) -> pd.DataFrame:
    """The gated CFSE histogram and the fitted sum per bin (log10 edges; ``histogram.tsv``)."""
    fit = r.fit
    return pd.DataFrame({"sample_id": sample_id, "bin_low_log10": fit.edges[:-1], "bin_high_log10": fit.edges[1:],
                         "events": fit.counts, "fitted": fit.components.sum(axis=0)})
