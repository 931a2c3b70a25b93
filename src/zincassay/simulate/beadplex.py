"""Bead-array (LEGENDplex/CBA-like) simulator: FCS files of standards, blanks and samples, with truth.

Physics
-------
- **Bead size groups**: each group a 2-D lognormal cloud in (FSC, SSC) with correlated spread;
  FSC-H = FSC-A / ratio with the singlet pulse-shape ratio ~ N(1.15, 0.01).
- **Classification**: log10 intensity = ``cls_base_log10 + cls_step_log10 * position`` of the bead's
  ladder position plus a per-bead Gaussian spread (``cls_sd_log10``) from uneven dye loading. The
  ladder step of 0.30 decades is an assumption (kits spread their 6-7 beads over about two decades);
  how much the clusters overlap is set by ``cls_sd_log10`` relative to it.
- **Reporter**: the bead's median follows a 5PL of the analyte concentration in the well
  (per-analyte parameters in the truth), times a well factor (pipetting, incubation; lognormal
  ``well_cv``); single beads scatter around it lognormally (``bead_sd_log10``), plus electronic
  noise (Gaussian, ``noise_sd``, may go below zero).
- **Spillover** between the reporter (PE) and classification (APC) channels, written as the file's
  ``$SPILLOVER`` so that compensation is needed to read both right.
- **Debris** (small, broad scatter and fluorescence) and **doublets** (two beads: FSC-A, SSC and
  fluorescence summed, FSC-H about that of the larger one).
- A bead population can be dropped (``drop_beads``) to test what a missing population gives.

Truth: per event (kind ``bead``/``doublet``/``debris`` and bead id), per well (true median
reporter of each bead, concentration in the well) and per analyte (5PL parameters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zincassay.beadplex.panel import Panel
from zincassay.curves.model import Logistic
from zincassay.io.fcs import SpillMatrix
from zincassay.io.fcs_write import write_fcs

__all__ = ["CHANNELS", "BeadplexParams", "analyte_curves", "simulate_bead_well", "write_bead_well"]

CHANNELS = ["FSC-A", "FSC-H", "SSC-A", "PE-A", "APC-A", "Time"]
STAINS = ["", "", "", "Reporter", "Classification", ""]
PE, APC = 3, 4


@dataclass
class BeadplexParams:
    """Parameters of one simulated well (linear units unless stated)."""

    beads_per_population: int = 350
    frac_debris: float = 0.08
    frac_doublet: float = 0.04
    group_fsc_log10: tuple[float, ...] = (4.50, 4.72)
    group_ssc_log10: tuple[float, ...] = (3.95, 4.30)
    scatter_sd_log10: float = 0.025
    cls_base_log10: float = 2.0
    cls_step_log10: float = 0.30
    cls_sd_log10: float = 0.035
    bead_sd_log10: float = 0.11
    well_cv: float = 0.04
    noise_sd: float = 12.0
    spill: dict[str, float] = field(default_factory=lambda: {"PE->APC": 0.005, "APC->PE": 0.001})


def analyte_curves(panel: Panel, rng: np.random.Generator) -> dict[str, Logistic]:
    """Per-analyte 5PL (reporter median vs concentration in the well), drawn in realistic ranges:
    background 30-80, maximum 2e4-6e4, inflection 0.15-0.6 x the top standard, slope 0.9-1.3,
    asymmetry 0.6-1.4."""
    out = {}
    for b in panel.beads:
        out[b.analyte] = Logistic("5pl", a=float(rng.uniform(30, 80)), d=float(rng.uniform(2e4, 6e4)),
                                  c=float(b.top_standard * rng.uniform(0.15, 0.6)), b=float(rng.uniform(0.9, 1.3)),
                                  g=float(rng.uniform(0.6, 1.4)))
    return out


def spill_matrix(params: BeadplexParams) -> SpillMatrix:
    m = np.eye(2)
    m[0, 1] = params.spill["PE->APC"]
    m[1, 0] = params.spill["APC->PE"]
    return SpillMatrix(("PE-A", "APC-A"), m, "$SPILLOVER")


def simulate_bead_well(
    rng: np.random.Generator,
    panel: Panel,
    curves: dict[str, Logistic],
    concentration: dict[str, float],
    params: BeadplexParams,
    drop_beads: tuple[str, ...] = (),
) -> tuple[np.ndarray, dict]:
    """Events of one well and its truth.

    Parameters
    ----------
    concentration : dict analyte -> concentration in the well (the kit's units; 0 = blank)
    drop_beads : bead ids left out of the well (a missing population)

    Returns
    -------
    events : ndarray (n_events, 6) in the order of :data:`CHANNELS` (observed, uncompensated)
    truth : dict with ``kind`` (n_events,) str, ``bead_id`` (n_events,) str ('' for non-beads),
        ``median`` dict bead_id -> true reporter median of the well, ``well_factor``.
    """
    group_index = {g: i for i, g in enumerate(panel.groups)}
    well_factor = float(np.exp(rng.normal(0.0, params.well_cv)))
    beads = [b for b in panel.beads if b.bead_id not in drop_beads]
    medians = {b.bead_id: float(curves[b.analyte].response(np.array([concentration.get(b.analyte, 0.0)]))[0])
               * well_factor for b in panel.beads}
    rows, kinds, ids = [], [], []

    def one_bead_cloud(b, m: int) -> np.ndarray:
        g = group_index[b.group]
        cov = np.array([[1.0, 0.6], [0.6, 1.0]]) * params.scatter_sd_log10**2
        sc = rng.multivariate_normal([params.group_fsc_log10[g], params.group_ssc_log10[g]], cov, m)
        fsc_a = 10 ** sc[:, 0]
        fsc_h = fsc_a / rng.normal(1.15, 0.01, m)
        ssc = 10 ** sc[:, 1]
        cls = 10 ** (params.cls_base_log10 + params.cls_step_log10 * b.position + rng.normal(0, params.cls_sd_log10, m))
        rep = medians[b.bead_id] * 10 ** rng.normal(0.0, params.bead_sd_log10, m)
        return np.column_stack([fsc_a, fsc_h, ssc, rep, cls])

    singles = []
    for b in beads:
        m = int(rng.poisson(params.beads_per_population))
        ev = one_bead_cloud(b, m)
        singles.append((b, ev))
        rows.append(ev)
        kinds += ["bead"] * m
        ids += [b.bead_id] * m
    n_beads = sum(len(e) for _, e in singles)
    n_doublet = round(n_beads * params.frac_doublet)
    if n_doublet and beads:
        pick = [(beads[i], beads[j]) for i, j in rng.integers(0, len(beads), (n_doublet, 2))]
        a = np.vstack([one_bead_cloud(p, 1) for p, _ in pick])
        b2 = np.vstack([one_bead_cloud(q, 1) for _, q in pick])
        dbl = a + b2
        dbl[:, 1] = np.maximum(a[:, 1], b2[:, 1]) * rng.normal(1.05, 0.02, n_doublet)
        rows.append(dbl)
        kinds += ["doublet"] * n_doublet
        ids += [""] * n_doublet
    n_debris = round(n_beads * params.frac_debris)
    if n_debris:
        fsc_a = 10 ** rng.normal(params.group_fsc_log10[0] - 0.8, 0.25, n_debris)
        deb = np.column_stack([fsc_a, fsc_a / rng.normal(1.15, 0.05, n_debris),
                               10 ** rng.normal(params.group_ssc_log10[0] - 0.7, 0.3, n_debris),
                               10 ** rng.normal(1.8, 0.5, n_debris), 10 ** rng.normal(2.5, 0.6, n_debris)])
        rows.append(deb)
        kinds += ["debris"] * n_debris
        ids += [""] * n_debris
    ev = np.vstack(rows) if rows else np.zeros((0, 5))
    fl = ev[:, [PE, APC]] @ spill_matrix(params).matrix
    fl += rng.normal(0.0, params.noise_sd, fl.shape)
    ev[:, [PE, APC]] = fl
    order = rng.permutation(ev.shape[0])
    time = np.sort(rng.uniform(0, 60.0, ev.shape[0]))
    events = np.column_stack([ev[order], time])
    truth = {"kind": np.asarray(kinds)[order], "bead_id": np.asarray(ids)[order], "median": medians,
             "well_factor": well_factor, "concentration": dict(concentration)}
    return events, truth


def write_bead_well(path: str | Path, events: np.ndarray, params: BeadplexParams) -> Path:
    """Write a simulated well as FCS 3.1 float (little-endian) with its spill matrix."""
    return write_fcs(path, events.astype(np.float32), CHANNELS, pns=STAINS, datatype="F", version="3.1",
                     byteorder="little", spill=spill_matrix(params), pnr=[262144] * 5 + [60])


def simulate_beadplex_run(
    outdir: str | Path,
    rng: np.random.Generator,
    panel: Panel,
    samples: list[dict],
    params: BeadplexParams,
    *,
    curves: dict[str, Logistic] | None = None,
    standard_replicates: int = 2,
    prefix: str = "bp",
    failed_level: str | None = None,
    failed_factor: float = 0.4,
) -> tuple[list[dict], dict]:
    """Write one batch: the kit's standards and blanks in replicate, then the samples.

    Parameters
    ----------
    samples : list of dict
        Each: ``sample_id``, ``concentration`` (analyte -> concentration of the *undiluted*
        sample), ``dilution`` (>= 1), optional ``replicates`` (wells, default 1), optional
        ``drop_beads`` and any metadata (copied to the well rows).
    curves : per-analyte 5PL; drawn with :func:`analyte_curves` when None.
    failed_level : a standard level whose wells get ``failed_factor`` x the intended concentration
        (a spoiled dilution), for every analyte.

    Returns
    -------
    wells : list of dict, one per FCS file: ``sample_id, file, role, standard_level, dilution,
        replicate_of`` plus the sample's metadata.
    truth : dict with ``curves`` (analyte -> Logistic), ``events`` (sample_id -> (kind, bead_id)
        arrays), ``medians`` (sample_id -> bead_id -> true median), ``samples`` (sample_id ->
        analyte -> true undiluted concentration), ``failed_level``.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    curves = curves if curves is not None else analyte_curves(panel, rng)
    wells: list[dict] = []
    truth: dict = {"curves": curves, "events": {}, "medians": {}, "samples": {}, "failed_level": failed_level}

    def emit(sid: str, conc: dict[str, float], row: dict, drop: tuple[str, ...] = ()) -> None:
        ev, t = simulate_bead_well(rng, panel, curves, conc, params, drop_beads=drop)
        path = write_bead_well(outdir / f"{sid}.fcs", ev, params)
        truth["events"][sid] = (t["kind"], t["bead_id"])
        truth["medians"][sid] = t["median"]
        wells.append({"sample_id": sid, "file": str(path), **row})

    levels = [*panel.standards.levels]
    for i, level in enumerate(levels):
        rel = panel.standards.series_factor ** (-i)
        spoil = failed_factor if failed_level == level else 1.0
        for r in range(standard_replicates):
            conc = {b.analyte: b.top_standard * rel * spoil for b in panel.beads}
            emit(f"{prefix}_std_{level}_{r + 1}".replace(":", "-"), conc,
                 {"role": "standard", "standard_level": level, "dilution": "", "replicate_of": ""})
    for r in range(standard_replicates):
        emit(f"{prefix}_blank_{r + 1}", {b.analyte: 0.0 for b in panel.beads},
             {"role": "blank", "standard_level": "", "dilution": "", "replicate_of": ""})
    for s in samples:
        sid, dil = s["sample_id"], float(s.get("dilution", 1.0))
        meta = {k: v for k, v in s.items() if k not in ("sample_id", "concentration", "dilution", "replicates",
                                                         "drop_beads")}
        truth["samples"][sid] = dict(s["concentration"])
        in_well = {a: c / dil for a, c in s["concentration"].items()}
        for r in range(int(s.get("replicates", 1))):
            wid = sid if r == 0 else f"{sid}_r{r + 1}"
            emit(wid, in_well, {"role": "sample", "standard_level": "", "dilution": f"{dil:g}",
                                "replicate_of": "" if r == 0 else sid, **meta}, tuple(s.get("drop_beads", ())))
    return wells, truth
