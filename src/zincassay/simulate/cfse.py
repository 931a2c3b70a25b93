"""CFSE dye-dilution simulator: FCS files of stimulated T cells, with ground truth.

Physics
-------
- Each precursor divides ``k`` times (``k = 0`` with probability ``1 - responder_fraction``;
  responders ``k = 1 + Poisson(mean_divisions - 1)``, capped at ``max_generation``), giving
  ``2**k`` daughters in generation ``k``. Harvested live cells are drawn from that distribution.
- A cell of generation ``g`` carries ``parent_cfse / peak_ratio**g`` dye, with a lognormal
  per-cell spread (``cv_log10`` decades) from uneven loading and division.
- Every event adds autofluorescence (lognormal) and electronic noise (Gaussian; may be < 0).
- Debris (small, dim scatter; broad dim CFSE), dead cells (smaller FSC, larger SSC, bright in
  the viability channel, some dye lost), doublets (two cells: FSC-A summed, FSC-H ~ one cell's).
- Uncompensated spillover between FITC (CFSE) and PE, written as a spill keyword.

Truth is the number of *live singlet lymphocytes* per generation written to the file, and the
indices computed from it by :func:`zincassay.cfse.indices.division_indices`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zincassay.cfse.indices import division_indices
from zincassay.io.fcs import SpillMatrix
from zincassay.io.fcs_write import write_fcs

__all__ = ["CFSEFormat", "CFSEParams", "precursor_distribution", "simulate_cfse_events", "write_cfse_sample"]

CHANNELS = ["FSC-A", "FSC-H", "SSC-A", "FITC-A", "PE-A", "APC-A", "Time"]
STAINS = ["", "", "", "CFSE", "CD4", "LiveDead", ""]
CFSE_COL, PE_COL, VIA_COL = 3, 4, 5
CFSEFormat = str  # "fcs3.1-float" | "fcs3.0-int32" | "fcs2.0-log"


@dataclass
class CFSEParams:
    """Parameters of one simulated tube (linear fluorescence units unless stated)."""

    n_events: int = 10000
    parent_cfse: float = 10**4.6
    peak_ratio: float = 2.0
    cv_log10: float = 0.065
    af_median: float = 120.0
    af_sigma_log10: float = 0.18
    noise_sd: float = 25.0
    frac_debris: float = 0.06
    frac_dead: float = 0.08
    frac_doublet: float = 0.05
    responder_fraction: float = 0.7
    mean_divisions: float = 2.5
    max_generation: int = 8
    spill: dict[str, float] = field(default_factory=lambda: {"FITC->PE": 0.15, "PE->FITC": 0.02})


def precursor_distribution(responder_fraction: float, mean_divisions: float, max_generation: int) -> np.ndarray:
    """Share of precursors that divided exactly ``k`` times, ``k = 0..max_generation``."""
    from scipy.stats import poisson

    k = np.arange(max_generation + 1)
    resp = np.zeros(max_generation + 1)
    lam = max(mean_divisions - 1.0, 1e-9)
    resp[1:] = poisson.pmf(k[1:] - 1, lam)
    resp[max_generation] += 1.0 - resp.sum()  # cells that would go further stop at the cap
    p = responder_fraction * resp
    p[0] = 1.0 - responder_fraction
    return p


def _lognormal(rng: np.random.Generator, median: float, sigma_log10: float, n: int) -> np.ndarray:
    return median * np.power(10.0, rng.normal(0.0, sigma_log10, n))


def simulate_cfse_events(
    rng: np.random.Generator, params: CFSEParams, role: str = "sample"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simulate one tube.

    Returns
    -------
    events : ndarray (n_events, 7), float64, true (uncompensated, observed) linear values in
        the order of ``CHANNELS``.
    kind : ndarray (n_events,) of str: ``live``, ``dead``, ``debris`` or ``doublet``.
    generation : ndarray (n_events,) int: generation of live cells, -1 for other events.
    """
    n = params.n_events
    n_debris = round(n * params.frac_debris)
    n_dead = round(n * params.frac_dead)
    n_doublet = round(n * params.frac_doublet)
    n_live = n - n_debris - n_dead - n_doublet
    if role == "sample":
        prec = precursor_distribution(params.responder_fraction, params.mean_divisions, params.max_generation)
    else:
        prec = np.zeros(params.max_generation + 1)
        prec[0] = 1.0
    harvest = prec * np.power(2.0, np.arange(prec.size))
    harvest /= harvest.sum()
    stained = role != "unstained"

    def cfse_of(gen: np.ndarray) -> np.ndarray:
        if not stained:
            return np.zeros(gen.size)
        return params.parent_cfse / np.power(params.peak_ratio, gen) * np.power(10.0, rng.normal(0, params.cv_log10, gen.size))

    def cells(m: int, gen: np.ndarray) -> dict[str, np.ndarray]:
        fsc_a = _lognormal(rng, 60000, 0.05, m)
        return {
            "fsc_a": fsc_a,
            "fsc_h": fsc_a / rng.normal(1.12, 0.025, m),
            "ssc": _lognormal(rng, 15000, 0.08, m),
            "cfse": cfse_of(gen),
            "pe": _lognormal(rng, 3000, 0.25, m),
            "via": _lognormal(rng, 200, 0.15, m),
        }

    gen_live = rng.choice(prec.size, size=n_live, p=harvest)
    live = cells(n_live, gen_live)
    gen_dead = rng.choice(prec.size, size=n_dead, p=harvest)
    dead = cells(n_dead, gen_dead)
    dead["fsc_a"] *= 0.6
    dead["fsc_h"] *= 0.6
    dead["ssc"] *= 1.4
    dead["cfse"] *= 0.6
    dead["via"] = _lognormal(rng, 9000, 0.2, n_dead)
    debris = {
        "fsc_a": _lognormal(rng, 9000, 0.2, n_debris),
        "ssc": _lognormal(rng, 5000, 0.25, n_debris),
        "cfse": _lognormal(rng, params.parent_cfse / 40, 0.6, n_debris) if stained else np.zeros(n_debris),
        "pe": _lognormal(rng, 400, 0.4, n_debris),
        "via": _lognormal(rng, 1500, 0.4, n_debris),
    }
    debris["fsc_h"] = debris["fsc_a"] / rng.normal(1.12, 0.06, n_debris)
    g1 = rng.choice(prec.size, size=n_doublet, p=harvest)
    g2 = rng.choice(prec.size, size=n_doublet, p=harvest)
    a, b = cells(n_doublet, g1), cells(n_doublet, g2)
    doublet = {
        "fsc_a": a["fsc_a"] + b["fsc_a"],
        "fsc_h": np.maximum(a["fsc_h"], b["fsc_h"]) * rng.normal(1.08, 0.03, n_doublet),
        "ssc": a["ssc"] + b["ssc"],
        "cfse": a["cfse"] + b["cfse"],
        "pe": a["pe"] + b["pe"],
        "via": a["via"] + b["via"],
    }
    groups = [("live", live, gen_live), ("dead", dead, None), ("debris", debris, None), ("doublet", doublet, None)]
    cols = []
    kinds = []
    gens = []
    for kind, g, gen in groups:
        m = g["fsc_a"].size
        af = _lognormal(rng, params.af_median, params.af_sigma_log10, m)
        fitc = g["cfse"] + af
        pe = g["pe"] + _lognormal(rng, 60, 0.2, m)
        cols.append(np.column_stack([g["fsc_a"], g["fsc_h"], g["ssc"], fitc, pe, g["via"]]))
        kinds.append(np.full(m, kind))
        gens.append(gen if gen is not None else np.full(m, -1))
    ev = np.vstack(cols)
    kind = np.concatenate(kinds)
    generation = np.concatenate(gens).astype(int)
    # spillover (observed = true @ M) and electronic noise on fluorescence channels
    m = spill_matrix(params)
    fl = ev[:, [CFSE_COL, PE_COL, VIA_COL]] @ m.matrix
    fl += rng.normal(0.0, params.noise_sd, fl.shape)
    ev[:, [CFSE_COL, PE_COL, VIA_COL]] = fl
    order = rng.permutation(ev.shape[0])
    time = np.sort(rng.uniform(0, 120.0, ev.shape[0]))
    ev = np.column_stack([ev[order], time])
    return ev, kind[order], generation[order]


def spill_matrix(params: CFSEParams) -> SpillMatrix:
    m = np.eye(3)
    m[0, 1] = params.spill["FITC->PE"]
    m[1, 0] = params.spill["PE->FITC"]
    return SpillMatrix(("FITC-A", "PE-A", "APC-A"), m, "$SPILLOVER")


def _encode(ev: np.ndarray, fmt: str, params: CFSEParams) -> dict:
    """Keyword arguments for :func:`write_fcs` that store ``ev`` in the given file flavour."""
    if fmt == "fcs3.1-float":
        return {"events": ev.astype(np.float32), "datatype": "F", "version": "3.1", "byteorder": "little",
                "spill": spill_matrix(params), "pnr": [262144] * 6 + [120]}
    if fmt == "fcs3.0-int32":
        stored = np.clip(np.rint(ev), 0, 262143)
        stored[:, -1] = np.rint(ev[:, -1] * 100)
        return {"events": stored, "datatype": "I", "version": "3.0", "byteorder": "big",
                "pnb": [32] * 7, "pnr": [262144] * 7, "spill": spill_matrix(params), "spill_keyword": "SPILL",
                "keywords": {"$TIMESTEP": "0.01"}}
    if fmt == "fcs2.0-log":
        stored = np.empty_like(ev)
        stored[:, :3] = np.clip(np.rint(ev[:, :3] / 256.0), 0, 1023)  # linear scatter, 1024 channels
        # a lower PMT voltage (1/10) keeps the parent peak on the 4-decade scale, as users set it
        fl = np.maximum(ev[:, 3:6] / 10.0, 1.0)
        stored[:, 3:6] = np.clip(np.rint(256.0 * np.log10(fl)), 0, 1023)  # 4 decades over 1024 channels
        stored[:, 6] = np.clip(np.rint(ev[:, 6] * 8), 0, 1023)
        return {"events": stored, "datatype": "I", "version": "2.0", "byteorder": "big",
                "pnb": [16] * 7, "pnr": [1024] * 7, "pne": ["0,0"] * 3 + ["4,1"] * 3 + ["0,0"]}
    raise ValueError(f"unknown CFSE file format {fmt!r}")


def write_cfse_sample(
    path: str | Path, rng: np.random.Generator, params: CFSEParams, role: str = "sample",
    fmt: str = "fcs3.1-float", keywords: dict[str, str] | None = None,
) -> dict:
    """Simulate one tube and write it; return its truth.

    Returns
    -------
    dict with ``cells`` (live singlet lymphocytes per generation, array of length
    ``max_generation + 1``), ``indices`` (from those counts), ``n_events`` and the ``kind``
    counts.
    """
    ev, kind, gen = simulate_cfse_events(rng, params, role)
    enc = _encode(ev, fmt, params)
    events = enc.pop("events")
    kw = {"$CYT": "zincassay simulator", "$FIL": Path(path).name, **enc.pop("keywords", {}), **(keywords or {})}
    write_fcs(path, events, CHANNELS, pns=STAINS, keywords=kw, **enc)
    counts = np.bincount(gen[kind == "live"], minlength=params.max_generation + 1).astype(int)
    return {
        "cells": counts,
        "indices": division_indices(counts) if role == "sample" else {},
        "n_events": int(ev.shape[0]),
        "kinds": {k: int((kind == k).sum()) for k in ("live", "dead", "debris", "doublet")},
    }
