"""Dye-dilution (CFSE / CellTrace Violet) simulator: FCS files of stimulated T cells, with ground truth.

Physics (every effect has its truth in the returned dict)
---------------------------------------------------------
- **Precursors**: a share ``1 - responder_fraction`` never responds (resting, undivided). Of
  the responders, ``activated_undivided`` are activated but have not divided at harvest; the
  rest divide ``k = 1 + Poisson(mean_divisions - 1)`` times (capped at ``max_generation``).
  A precursor that divided ``k`` times leaves ``2**k`` daughters in generation ``k``.
- **Dye**: an unstimulated control carries ``parent_cfse`` dye with a lognormal spread of
  ``cv_log10`` decades (uneven loading). In the stimulated culture the undivided peak sits
  ``parent_shift_log10`` decades from the control's (dye lost on activation and in culture;
  usually negative), and each division divides the dye by ``peak_ratio`` on average with a
  lognormal partition noise of ``cv_growth_log10`` decades, so generation ``g`` has width
  ``sqrt(cv_log10**2 + g * cv_growth_log10**2)``.
- **Blasts**: activated cells grow: FSC-A and SSC-A scale by ``1 + blast_shift * b(g)`` with
  ``b(g) = min(1, (g + 1) / 4)`` (0 for non-responders and controls). Bigger cells also have
  wider pulses (FSC-A/FSC-H grows as size**0.15), more autofluorescence (proportional to size)
  and a brighter viability-dye negative mode (proportional to size).
- **Activation marker** (CD25 on its own detector): resting level ``cd25_resting`` (lognormal,
  0.25 decades); activated cells ``cd25_resting * 10**(cd25_rise_log10 * h(g))`` with
  ``h(g) = (1 - 0.4 * 0.35**g) * 0.92**max(g - 2, 0)`` (rises over the first divisions, then
  declines slowly). Truth per generation: median true level and % above ``cd25_threshold``.
- **Other events**: debris (small, dim scatter; broad dim dye), dead cells (smaller FSC, larger
  SSC, bright viability dye, some dye lost), doublets (two cells: FSC-A summed, FSC-H ~ one
  cell's), counting beads (tight FSC/SSC cluster, bright in every fluorescence channel).
- **Detection**: autofluorescence (lognormal) on every fluorescence channel, uncompensated
  spillover between the four fluorescence detectors (written as a spill keyword), Gaussian
  electronic noise (values may go below 0).

File flavours (``fmt``): ``fcs3.1-float`` (little-endian float32, ``$SPILLOVER``),
``fcs3.0-int32`` (big-endian int32, ``SPILL``, clipped to 0..262143), ``fcs2.0-log`` (1024
channels: linear scatter, 4-decade log fluorescence at a 10x lower voltage, hardware
compensation that leaves 10 % of the spillover), ``fcs3.1-pipe`` (big-endian float32, ``|``
delimiter, Attune-style detector names ``BL1-A``/``VL1-A``..., so the dye channel is found by
its ``$PnS``).

Truth is the number of *live singlet cells* per generation written to the file (beads, debris,
dead cells and doublets excluded), and the indices computed from it by
:func:`zincassay.cfse.indices.division_indices`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from zincassay.cfse.indices import division_indices
from zincassay.io.fcs import SpillMatrix
from zincassay.io.fcs_write import write_fcs

__all__ = ["FORMATS", "SWEEP_SPACE", "CFSEFormat", "CFSEParams", "channel_names", "draw_params", "precursor_distribution",
           "simulate_cfse_events", "write_cfse_sample"]

CFSEFormat = str  # one of FORMATS
FORMATS = ("fcs3.1-float", "fcs3.0-int32", "fcs2.0-log", "fcs3.1-pipe")
#: Column order of the simulated events: 3 scatter, 4 fluorescence, time.
DYE_COL, CD4_COL, VIA_COL, CD25_COL = 3, 4, 5, 6
FL_COLS = [DYE_COL, CD4_COL, VIA_COL, CD25_COL]
_FL_NAMES = ("dye", "CD4", "viability", "CD25")
#: Older spill-key names (detector names of the default layout) accepted as aliases.
_SPILL_ALIASES = {"FITC": "dye", "BV421": "dye", "PE": "CD4", "APC": "viability", "PE-Cy7": "CD25"}
KINDS = ("live", "dead", "debris", "doublet", "bead")


def channel_names(fmt: str, dye: str = "CFSE") -> tuple[list[str], list[str]]:
    """``$PnN`` and ``$PnS`` of the simulated channels for a file flavour and dye."""
    if fmt == "fcs3.1-pipe":
        dye_det = "VL1-A" if dye == "CTV" else "BL1-A"
        pnn = ["FSC-A", "FSC-H", "SSC-A", dye_det, "YL1-A", "RL1-A", "YL4-A", "Time"]
    else:
        dye_det = "BV421-A" if dye == "CTV" else "FITC-A"
        pnn = ["FSC-A", "FSC-H", "SSC-A", dye_det, "PE-A", "APC-A", "PE-Cy7-A", "Time"]
    return pnn, ["", "", "", dye, "CD4", "LiveDead", "CD25", ""]


@dataclass
class CFSEParams:
    """Parameters of one simulated tube (linear fluorescence units unless a name says log10)."""

    n_events: int = 10000
    dye: str = "CFSE"  # "CFSE" or "CTV" (CellTrace Violet): names the channel
    parent_cfse: float = 10**4.6
    peak_ratio: float = 2.0
    cv_log10: float = 0.065  # width of the undivided peak (decades)
    cv_growth_log10: float = 0.015  # partition noise added per division (decades)
    parent_shift_log10: float = -0.04  # stimulated culture's undivided peak minus the control's
    af_median: float = 120.0
    af_sigma_log10: float = 0.18
    noise_sd: float = 25.0
    frac_debris: float = 0.06
    frac_dead: float = 0.08
    frac_doublet: float = 0.05
    frac_beads: float = 0.0
    responder_fraction: float = 0.7
    activated_undivided: float = 0.1  # share of responders still undivided at harvest
    mean_divisions: float = 2.5
    max_generation: int = 8
    blast_shift: float = 0.3  # FSC/SSC increase of fully blasted cells (0.3 = 30 %)
    cd25_resting: float = 150.0
    cd25_rise_log10: float = 1.0
    cd25_threshold: float = 1000.0
    pregated: bool = False  # keep live singlets and a small residue of the rest, as an exported gate
    spill: dict[str, float] = field(default_factory=lambda: {
        "dye->CD4": 0.15, "CD4->dye": 0.02, "CD4->CD25": 0.08, "CD25->CD4": 0.01,
        "viability->CD25": 0.04, "CD25->viability": 0.06, "dye->CD25": 0.005})


def precursor_distribution(responder_fraction: float, mean_divisions: float, max_generation: int,
                           activated_undivided: float = 0.0) -> np.ndarray:
    """Share of precursors that divided exactly ``k`` times, ``k = 0..max_generation``."""
    from scipy.stats import poisson

    k = np.arange(max_generation + 1)
    resp = np.zeros(max_generation + 1)
    lam = max(mean_divisions - 1.0, 1e-9)
    resp[1:] = poisson.pmf(k[1:] - 1, lam)
    resp[max_generation] += 1.0 - resp.sum()  # cells that would go further stop at the cap
    p = responder_fraction * (1.0 - activated_undivided) * resp
    p[0] = 1.0 - responder_fraction + responder_fraction * activated_undivided
    return p


def _lognormal(rng: np.random.Generator, median: float | np.ndarray, sigma_log10: float, n: int) -> np.ndarray:
    return median * np.power(10.0, rng.normal(0.0, sigma_log10, n))


def _blast(gen: np.ndarray, activated: np.ndarray) -> np.ndarray:
    """Blast level 0..1 of each cell: 0 when resting, growing with generation when activated."""
    return np.where(activated, np.minimum(1.0, (gen + 1) / 4.0), 0.0)


def _cd25_shape(gen: np.ndarray) -> np.ndarray:
    return (1.0 - 0.4 * 0.35 ** gen) * 0.92 ** np.maximum(gen - 2, 0)


def spill_matrix(params: CFSEParams, pnn: list[str]) -> SpillMatrix:
    """Spill matrix over the four fluorescence detectors (observed = true @ matrix)."""
    m = np.eye(4)
    for key, value in params.spill.items():
        src, dst = (_SPILL_ALIASES.get(s, s) for s in key.split("->"))
        m[_FL_NAMES.index(src), _FL_NAMES.index(dst)] = value
    return SpillMatrix(tuple(pnn[c] for c in FL_COLS), m, "$SPILLOVER")


def _simulate(rng: np.random.Generator, params: CFSEParams, role: str) -> dict[str, np.ndarray]:
    """Events and per-event truth of one tube (see the module docstring)."""
    n = params.n_events
    n_debris = round(n * params.frac_debris)
    n_dead = round(n * params.frac_dead)
    n_doublet = round(n * params.frac_doublet)
    n_bead = round(n * params.frac_beads)
    n_live = n - n_debris - n_dead - n_doublet - n_bead
    g_max = params.max_generation
    # states: 0 = resting undivided, 1 = activated undivided, 1 + k = divided k times (k >= 1)
    state_p = np.zeros(g_max + 2)
    if role == "sample":
        prec = precursor_distribution(params.responder_fraction, params.mean_divisions, g_max,
                                      params.activated_undivided)
        state_p[0] = 1.0 - params.responder_fraction
        state_p[1] = prec[0] - state_p[0]
        state_p[2:] = prec[1:] * np.power(2.0, np.arange(1, g_max + 1))
    else:
        state_p[0] = 1.0
    state_p = np.maximum(state_p, 0.0) / state_p.sum()
    stained = role != "unstained"
    shift = params.parent_shift_log10 if role == "sample" else 0.0
    delta = np.log10(params.peak_ratio)

    def cells(m: int) -> dict[str, np.ndarray]:
        state = rng.choice(state_p.size, size=m, p=state_p)
        gen = np.maximum(state - 1, 0)
        activated = state >= 1
        size = 1.0 + params.blast_shift * _blast(gen, activated)
        fsc_a = _lognormal(rng, 60000 * size, 0.05, m)
        if stained:
            width = np.sqrt(params.cv_log10**2 + gen * params.cv_growth_log10**2)
            dye = 10 ** (np.log10(params.parent_cfse) + shift - gen * delta + rng.normal(0, 1, m) * width)
        else:
            dye = np.zeros(m)
        cd25_log = np.where(activated, params.cd25_rise_log10 * _cd25_shape(gen), 0.0)
        return {
            "gen": gen, "activated": activated, "size": size,
            "fsc_a": fsc_a,
            "fsc_h": fsc_a / (rng.normal(1.12, 0.025, m) * size**0.15),
            "ssc": _lognormal(rng, 15000 * size, 0.08, m),
            "dye": dye,
            "cd4": _lognormal(rng, 3000, 0.25, m),
            "via": _lognormal(rng, 200 * size, 0.15, m),
            "cd25": params.cd25_resting * 10 ** (cd25_log + rng.normal(0, 0.25, m)),
        }

    live = cells(n_live)
    dead = cells(n_dead)
    dead["fsc_a"] *= 0.6
    dead["fsc_h"] *= 0.6
    dead["ssc"] *= 1.4
    dead["dye"] *= 0.6
    dead["via"] = _lognormal(rng, 9000, 0.2, n_dead)
    debris = {
        "fsc_a": _lognormal(rng, 9000, 0.2, n_debris),
        "ssc": _lognormal(rng, 5000, 0.25, n_debris),
        "dye": _lognormal(rng, params.parent_cfse / 40, 0.6, n_debris) if stained else np.zeros(n_debris),
        "cd4": _lognormal(rng, 400, 0.4, n_debris),
        "via": _lognormal(rng, 1500, 0.4, n_debris),
        "cd25": _lognormal(rng, 100, 0.4, n_debris),
        "size": np.full(n_debris, 0.2),
    }
    debris["fsc_h"] = debris["fsc_a"] / rng.normal(1.12, 0.06, n_debris)
    a, b = cells(n_doublet), cells(n_doublet)
    doublet = {k: a[k] + b[k] for k in ("fsc_a", "ssc", "dye", "cd4", "via", "cd25", "size")}
    doublet["fsc_h"] = np.maximum(a["fsc_h"], b["fsc_h"]) * rng.normal(1.08, 0.03, n_doublet)
    bead_fl = 10 ** rng.normal(4.9, 0.02, n_bead)
    bead = {
        "fsc_a": _lognormal(rng, 28000, 0.012, n_bead),
        "ssc": _lognormal(rng, 90000, 0.012, n_bead),
        "dye": bead_fl, "cd4": bead_fl * 0.8, "via": bead_fl * 0.6, "cd25": bead_fl * 0.7,
        "size": np.zeros(n_bead),
    }
    bead["fsc_h"] = bead["fsc_a"] / rng.normal(1.03, 0.01, n_bead)
    groups = [("live", live), ("dead", dead), ("debris", debris), ("doublet", doublet), ("bead", bead)]
    cols, kinds, gens, cd25_true, activated = [], [], [], [], []
    for kind, g in groups:
        m = g["fsc_a"].size
        af = _lognormal(rng, params.af_median, params.af_sigma_log10, m) * np.maximum(g["size"], 0.2)
        if kind == "bead":
            af = np.zeros(m)
        cols.append(np.column_stack([g["fsc_a"], g["fsc_h"], g["ssc"], g["dye"] + af, g["cd4"] + 0.5 * af,
                                     g["via"] + 0.3 * af, g["cd25"] + 0.4 * af]))
        kinds.append(np.full(m, kind))
        gens.append(g["gen"] if kind == "live" else np.full(m, -1))
        cd25_true.append(g["cd25"])
        activated.append(g["activated"] if kind == "live" else np.zeros(m, bool))
    ev = np.vstack(cols)
    kind = np.concatenate(kinds)
    generation = np.concatenate(gens).astype(int)
    cd25 = np.concatenate(cd25_true)
    act = np.concatenate(activated)
    if params.pregated:  # an exported gate: live singlets plus the residue a hand-drawn gate lets through
        keep_p = {"live": 1.0, "dead": 0.05, "debris": 0.02, "doublet": 0.1, "bead": 0.0}
        keep = rng.random(kind.size) < np.vectorize(keep_p.get)(kind)
        ev, kind, generation, cd25, act = ev[keep], kind[keep], generation[keep], cd25[keep], act[keep]
    # spillover (observed = true @ M) and electronic noise on the fluorescence detectors
    m = spill_matrix(params, channel_names("fcs3.1-float", params.dye)[0]).matrix
    fl = ev[:, 3:7] @ m
    fl += rng.normal(0.0, params.noise_sd, fl.shape)
    ev[:, 3:7] = fl
    order = rng.permutation(ev.shape[0])
    time = np.sort(rng.uniform(0, 120.0, ev.shape[0]))
    expected = np.bincount(np.maximum(np.arange(state_p.size) - 1, 0), weights=state_p, minlength=g_max + 1)
    return {"events": np.column_stack([ev[order], time]), "kind": kind[order], "generation": generation[order],
            "cd25": cd25[order], "activated": act[order], "expected_fractions": expected}


def simulate_cfse_events(
    rng: np.random.Generator, params: CFSEParams, role: str = "sample"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simulate one tube.

    Parameters
    ----------
    rng : numpy Generator
    params : CFSEParams
    role : {"sample", "unstimulated", "unstained"}

    Returns
    -------
    events : ndarray (n_events, 8), float64, observed (uncompensated) linear values: FSC-A,
        FSC-H, SSC-A, dye, CD4, viability, CD25, time (s).
    kind : ndarray (n_events,) of str: ``live``, ``dead``, ``debris``, ``doublet`` or ``bead``.
    generation : ndarray (n_events,) int: generation of live cells, -1 for other events.
    """
    sim = _simulate(rng, params, role)
    return sim["events"], sim["kind"], sim["generation"]


def _encode(ev: np.ndarray, fmt: str, params: CFSEParams, pnn: list[str]) -> dict:
    """Keyword arguments for :func:`write_fcs` that store ``ev`` in the given file flavour."""
    spill = spill_matrix(params, pnn)
    if fmt == "fcs3.1-float":
        return {"events": ev.astype(np.float32), "datatype": "F", "version": "3.1", "byteorder": "little",
                "spill": spill, "pnr": [262144] * 7 + [120]}
    if fmt == "fcs3.1-pipe":
        return {"events": ev.astype(np.float32), "datatype": "F", "version": "3.1", "byteorder": "big",
                "spill": spill, "pnr": [262144] * 7 + [120], "delimiter": "|"}
    if fmt == "fcs3.0-int32":
        stored = np.clip(np.rint(ev), 0, 262143)
        stored[:, -1] = np.rint(ev[:, -1] * 100)
        return {"events": stored, "datatype": "I", "version": "3.0", "byteorder": "big",
                "pnb": [32] * 8, "pnr": [262144] * 8, "spill": spill, "spill_keyword": "SPILL",
                "keywords": {"$TIMESTEP": "0.01"}}
    if fmt == "fcs2.0-log":
        stored = np.empty_like(ev)
        stored[:, :3] = np.clip(np.rint(ev[:, :3] / 256.0), 0, 1023)  # linear scatter, 1024 channels
        # analog hardware compensation, set by eye: 90 % of the spillover removed
        hw = np.eye(4) + 0.9 * (spill.matrix - np.eye(4))
        fl = ev[:, 3:7] @ np.linalg.inv(hw)
        # a lower PMT voltage (1/10) keeps the parent peak on the 4-decade scale, as users set it
        fl = np.maximum(fl / 10.0, 1.0)
        stored[:, 3:7] = np.clip(np.rint(256.0 * np.log10(fl)), 0, 1023)  # 4 decades over 1024 channels
        stored[:, 7] = np.clip(np.rint(ev[:, 7] * 8), 0, 1023)
        return {"events": stored, "datatype": "I", "version": "2.0", "byteorder": "big",
                "pnb": [16] * 8, "pnr": [1024] * 8, "pne": ["0,0"] * 3 + ["4,1"] * 4 + ["0,0"]}
    raise ValueError(f"unknown CFSE file format {fmt!r}; one of {FORMATS}")


def marker_truth(generation: np.ndarray, cd25: np.ndarray, threshold: float, n_gen: int) -> list[dict]:
    """Per generation: live singlet cells, median true CD25 level (linear) and % above ``threshold``."""
    rows = []
    for g in range(n_gen):
        v = cd25[generation == g]
        rows.append({"generation": g, "cells": int(v.size),
                     "cd25_median": float(np.median(v)) if v.size else float("nan"),
                     "cd25_pct_positive": float(100.0 * np.mean(v > threshold)) if v.size else float("nan")})
    return rows


def write_cfse_sample(
    path: str | Path, rng: np.random.Generator, params: CFSEParams, role: str = "sample",
    fmt: str = "fcs3.1-float", keywords: dict[str, str] | None = None,
) -> dict:
    """Simulate one tube and write it; return its truth.

    Returns
    -------
    dict with
        ``cells`` : live singlet cells per generation, int array (max_generation + 1,);
        ``indices`` : the six indices from those counts (samples only);
        ``population_indices`` : the six indices of the culture the cells were drawn from (the
        expected share of live cells per generation; what a repeat measurement estimates);
        ``n_events`` : events written; ``kinds`` : events per kind (live, dead, debris, doublet, bead);
        ``markers`` : per generation ``generation, cells, cd25_median, cd25_pct_positive``
        (true CD25 level before autofluorescence, spillover and noise, linear units);
        ``cd25_threshold`` : the level above which a cell counts as CD25-positive;
        ``undivided_log10`` : true log10 position of the undivided peak in this tube;
        ``event_kind``, ``event_generation``, ``event_activated`` : per-event truth, file order;
        ``params`` : the parameters, as a dict.
    """
    sim = _simulate(rng, params, role)
    ev, kind, gen = sim["events"], sim["kind"], sim["generation"]
    pnn, pns = channel_names(fmt, params.dye)
    enc = _encode(ev, fmt, params, pnn)
    events = enc.pop("events")
    kw = {"$CYT": "zincassay simulator", "$FIL": Path(path).name, **enc.pop("keywords", {}), **(keywords or {})}
    write_fcs(path, events, pnn, pns=pns, keywords=kw, **enc)
    live = kind == "live"
    counts = np.bincount(gen[live], minlength=params.max_generation + 1).astype(int)
    shift = params.parent_shift_log10 if role == "sample" else 0.0
    return {
        "cells": counts,
        "indices": division_indices(counts) if role == "sample" else {},
        "population_indices": division_indices(sim["expected_fractions"]) if role == "sample" else {},
        "n_events": int(ev.shape[0]),
        "kinds": {k: int((kind == k).sum()) for k in KINDS},
        "markers": marker_truth(gen[live], sim["cd25"][live], params.cd25_threshold, params.max_generation + 1),
        "cd25_threshold": params.cd25_threshold,
        "undivided_log10": float(np.log10(params.parent_cfse) + shift) if role != "unstained" else float("nan"),
        "event_kind": kind, "event_generation": gen, "event_activated": sim["activated"],
        "params": asdict(params),
    }


# --------------------------------------------------------------------------- validation space

#: The documented parameter space of the CFSE validation sweep (``validation/cfse_sweep.py``):
#: name -> (low, high) of a uniform draw (``n_events``: log-uniform).
SWEEP_SPACE: dict[str, tuple[float, float]] = {
    "n_events": (5_000, 1_000_000),
    "peak_ratio": (1.7, 2.2),
    "cv_log10": (0.04, 0.09),  # undivided width; per-division growth keeps generation 6 <= 0.12
    "blast_shift": (0.0, 1.0),
    "frac_dead": (0.0, 0.30),
    "frac_debris": (0.0, 0.40),
    "frac_doublet": (0.0, 0.10),
    "frac_beads": (0.0, 0.03),
    "undivided_share": (0.02, 0.90),  # precursors that did not divide (non-responders + activated)
    "mean_divisions": (1.5, 4.5),
    "parent_shift_log10": (-0.30, 0.0),  # 1 in 8 draws shifts upward instead, by 0-0.05
    "parent_log10": (4.3, 4.9),
    "dye_range_log10": (2.3, 3.2),  # parent peak / autofluorescence median (a dye titrated for >= 7 generations)
    "noise_sd": (10.0, 60.0),
}


def draw_params(rng: np.random.Generator, **fixed: float | str) -> tuple[CFSEParams, str, dict]:
    """One experiment drawn from :data:`SWEEP_SPACE`.

    Parameters
    ----------
    rng : numpy Generator
    **fixed
        Values that override the draw: any key of :data:`SWEEP_SPACE`, ``fmt`` or ``dye``.

    Returns
    -------
    params : CFSEParams of the stimulated sample (controls use the same tube parameters).
    fmt : file flavour, one of :data:`FORMATS`.
    drawn : every drawn value by name (the row of the sweep's table).
    """
    d: dict = {}
    for key, (lo, hi) in SWEEP_SPACE.items():
        d[key] = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if key == "n_events" else float(rng.uniform(lo, hi))
    if rng.random() < 1 / 8:
        d["parent_shift_log10"] = float(rng.uniform(0.0, 0.05))
    d["fmt"] = str(rng.choice(FORMATS))
    d["dye"] = str(rng.choice(["CFSE", "CTV"]))
    growth_max = np.sqrt(max(0.12**2 - d["cv_log10"] ** 2, 0.0) / 6)
    d["cv_growth_log10"] = float(rng.uniform(0.0, growth_max))
    d["activated_share"] = float(rng.uniform(0.0, 0.3))  # of responders, still undivided
    spill = {"dye->CD4": rng.uniform(0.02, 0.3), "CD4->dye": rng.uniform(0.0, 0.05),
             "CD4->CD25": rng.uniform(0.02, 0.15), "CD25->CD4": rng.uniform(0.0, 0.03),
             "viability->CD25": rng.uniform(0.0, 0.1), "CD25->viability": rng.uniform(0.0, 0.1),
             "dye->CD25": rng.uniform(0.0, 0.02)}
    d.update(fixed)
    d["n_events"] = round(d["n_events"])
    # undivided share p0 = (1 - r) + r * a  ->  r = (1 - p0) / (1 - a), with a <= p0
    a = min(d["activated_share"], d["undivided_share"])
    responders = (1.0 - d["undivided_share"]) / (1.0 - a)
    params = CFSEParams(
        n_events=d["n_events"], dye=d["dye"], parent_cfse=10 ** d["parent_log10"], peak_ratio=d["peak_ratio"],
        cv_log10=d["cv_log10"], cv_growth_log10=d["cv_growth_log10"], parent_shift_log10=d["parent_shift_log10"],
        af_median=10 ** (d["parent_log10"] - d["dye_range_log10"]), noise_sd=d["noise_sd"], frac_debris=d["frac_debris"], frac_dead=d["frac_dead"],
        frac_doublet=d["frac_doublet"], frac_beads=d["frac_beads"], responder_fraction=responders,
        activated_undivided=a, mean_divisions=d["mean_divisions"], blast_shift=d["blast_shift"],
        cd25_rise_log10=float(rng.uniform(0.5, 1.5)), spill={k: float(v) for k, v in spill.items()},
    )
    return params, d["fmt"], d
