"""Zinc dose series with truth: readouts per donor, source and dose following a 4-parameter log-logistic.

Cytokines from stimulated T cells fall with the zinc dose, more with zinc aspartate than with zinc
oxide (a lower IC50 and a deeper maximal suppression; Guttek et al., J Trace Elem Med Biol 2018,
PMID 29895377, for aspartate on pre-activated T cells). Each donor has its own untreated level
(lognormal, ``donor_sd_log10_level``), IC50 (lognormal, ``donor_sd_log10_ec50``), steepness
(lognormal, ``donor_sd_log10_hill``) and maximal suppression (normal, ``donor_sd_suppression``,
kept within 0-1): donors share a curve's shape only roughly. Every sample carries a
multiplicative measurement error (``noise_cv``). Truth: the 4PL parameters of every donor
x source x readout.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from zincassay.curves.model import Logistic

__all__ = ["DoseSeriesParams", "simulate_dose_series"]


@dataclass
class DoseSeriesParams:
    doses_uM: tuple[float, ...] = (0.0, 0.78125, 1.5625, 3.125, 6.25, 12.5, 25.0, 50.0)
    replicates: int = 2
    n_donors: int = 6
    #: per source: IC50 (uM), maximal suppression (fraction of untreated), Hill steepness b
    sources: dict[str, dict[str, float]] = field(default_factory=lambda: {
        "zinc_aspartate": {"ec50_uM": 6.0, "max_suppression": 0.85, "hill": 1.4},
        "zinc_oxide": {"ec50_uM": 10.0, "max_suppression": 0.5, "hill": 1.2},
    })
    #: untreated level per readout (pg/mL for cytokines), and the readout's sensitivity (scales the suppression)
    readouts: dict[str, dict[str, float]] = field(default_factory=lambda: {
        "IFN-γ": {"untreated": 2500.0, "sensitivity": 1.0},
        "TNF-α": {"untreated": 900.0, "sensitivity": 0.9},
        "GM-CSF": {"untreated": 400.0, "sensitivity": 1.0},
        "IL-5": {"untreated": 150.0, "sensitivity": 0.8},
    })
    donor_sd_log10_level: float = 0.2
    donor_sd_log10_ec50: float = 0.08
    donor_sd_log10_hill: float = 0.05
    donor_sd_suppression: float = 0.04
    noise_cv: float = 0.08


def simulate_dose_series(rng: np.random.Generator, params: DoseSeriesParams) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-sample table and truth.

    Returns
    -------
    samples : DataFrame, one row per sample: ``sample_id, donor, zn_uM, zn_source`` (blank for
        untreated), one column per readout. Untreated samples are shared by both sources.
    truth : DataFrame, one row per donor x source x readout: ``donor, source, readout, ec50,
        hill_slope, response_untreated, response_saturating``.
    """
    rows, truth = [], []
    for k in range(1, params.n_donors + 1):
        donor = f"D{k}"
        level = {r: v["untreated"] * 10 ** rng.normal(0, params.donor_sd_log10_level) for r, v in params.readouts.items()}
        curves: dict[tuple[str, str], Logistic] = {}
        for source, sv in params.sources.items():
            shift = 10 ** rng.normal(0, params.donor_sd_log10_ec50)
            hill = sv["hill"] * 10 ** rng.normal(0, params.donor_sd_log10_hill)
            depth = rng.normal(0, params.donor_sd_suppression)
            for r, rv in params.readouts.items():
                a = level[r]
                d = a * (1 - float(np.clip(sv["max_suppression"] * rv["sensitivity"] + depth, 0.0, 1.0)))
                curves[(source, r)] = Logistic("4pl", a=a, d=d, c=sv["ec50_uM"] * shift, b=hill)
                truth.append({"donor": donor, "source": source, "readout": r, "ec50": sv["ec50_uM"] * shift,
                              "hill_slope": -hill, "response_untreated": a, "response_saturating": d})
        for rep in range(params.replicates):
            rows.append({"sample_id": f"{donor}_untreated_r{rep + 1}", "donor": donor, "zn_uM": 0.0, "zn_source": "",
                         **{r: level[r] * np.exp(rng.normal(0, params.noise_cv)) for r in params.readouts}})
            for source in params.sources:
                for dose in params.doses_uM:
                    if dose == 0:
                        continue
                    vals = {r: float(curves[(source, r)].response(np.array([dose]))[0]) * np.exp(rng.normal(0, params.noise_cv))
                            for r in params.readouts}
                    rows.append({"sample_id": f"{donor}_{source}_{dose:g}uM_r{rep + 1}", "donor": donor, "zn_uM": dose,
                                 "zn_source": source, **vals})
    return pd.DataFrame(rows), pd.DataFrame(truth)
