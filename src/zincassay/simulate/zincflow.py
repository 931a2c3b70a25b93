"""Free zinc by flow cytometry: FCS tubes of one probe-loaded T-cell culture, with ground truth.

A culture is loaded with FluoZin-3 (or Zinpyr-1), stained for CD3/CD4/CD8 and a viability dye,
and split into tubes: untreated (``sample``), TPEN (``fmin``), ZnSO4 + pyrithione (``fmax``),
optionally cells stained for the markers but not loaded with the probe (``unstained``), and a
``kinetic`` tube acquired across a stimulus.

Physics
-------
- Cell types (share of live lymphocytes): CD4 T, CD8 T, double-negative and double-positive T,
  B-like (CD3-CD4-CD8-) and NK-like (CD3-CD8dim) cells, see :data:`CELL_TYPES`.
- Probe per live cell: ``load * (1 + (DR - 1) * theta)`` with ``theta = Zn / (Zn + Kd)`` the
  bound fraction, ``load`` the cell's dye-only (zinc-free) signal: the culture's median
  ``fmin_median`` times a lognormal per-cell spread (``load_sigma_log10``), the same
  distribution in every tube of the culture (they are aliquots of one loaded culture).
  ``DR = Fmax/Fmin`` of the dye. Per-cell resting zinc is lognormal around each type's median
  (``zn_sigma_log10``). TPEN: ``Zn = 0``. Zinc + pyrithione: ``Zn = fmax_zn_nM`` (finite, so
  the Fmax tube is ``theta_max = fmax_zn / (fmax_zn + Kd)`` saturated, not exactly 1).
- Autofluorescence: one lognormal factor per cell scaling every channel's own level.
- Markers: lognormal intensities per type; dim CD8 on NK-like cells.
- Spillover: observed = true @ S over the five fluorescence channels (markers into the probe
  channel and the probe into PE, ...); ``$SPILLOVER`` holds S (or S with every off-diagonal
  coefficient off by ``spill_error``, as with imperfect single-stain controls).
- Detector noise: Gaussian with variance ``photon_var_per_unit * signal`` plus electronic noise;
  every channel clipped at the top of the scale (262,143), as the ADC does.
- Debris (small, dim), dead cells (smaller FSC, larger SSC, bright viability dye, keep only
  ``dead_dye_fraction`` of their dye; more of them in the TPEN and zinc/pyrithione tubes),
  doublets (two cells: FSC-A and fluorescence summed, FSC-H about one cell's).
- Ionophore + zinc shrinks cells a little (``fmax_scatter``).
- Kinetic tube: events arrive at ``rate_per_s`` for ``baseline_s``, acquisition pauses for
  ``gap_s`` (the tube is out; the stimulus is added ``delay_s`` after the pause starts), then
  resumes for ``after_s``; each cell's zinc is ``Zn_rest * (1 + rise_fold * r(t - addition))``
  with ``r`` rising with ``tau_on_s`` and decaying with ``tau_off_s``, peak 1 at
  ``tau_on * ln((tau_on + tau_off) / tau_on)``.

Truth (:func:`culture_truth`) per subset: the median per-cell resting zinc ``zn_nM`` and its
``f``; the expected (infinite-event, noise-free) medians of the probe in each tube and of the
autofluorescence, ``zn_expected_nM`` computed from them, the share of the subset's Fmax events at
the top of the scale, and the kinetic baseline, peak and time to peak.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from zincassay.io.fcs import SpillMatrix
from zincassay.io.fcs_write import write_fcs
from zincassay.tables import write_table
from zincassay.zincflow.settings import parse_subset

__all__ = [
    "CELL_TYPES",
    "CHANNELS",
    "T_CELL_CULTURE",
    "KineticParams",
    "ZincflowCulture",
    "culture_truth",
    "simulate_tube",
    "simulate_zincflow_dataset",
    "write_culture",
    "write_tube",
    "zincflow_experiment",
]

CHANNELS = ["FSC-A", "FSC-H", "SSC-A", "FITC-A", "PE-A", "APC-A", "BV421-A", "APC-Cy7-A", "Time"]
FLUOR = ["FITC-A", "PE-A", "APC-A", "BV421-A", "APC-Cy7-A"]
MARKER_CHANNEL = {"CD4": "PE-A", "CD8": "APC-A", "CD3": "BV421-A"}
TOP = 262143.0
TIMESTEP_S = 0.01

#: share of live lymphocytes, marker medians (linear; 0 = negative), zinc key
CELL_TYPES: dict[str, dict] = {
    "CD4": {"share": 0.85 * 0.62, "CD3": 8000.0, "CD4": 15000.0, "CD8": 0.0},
    "CD8": {"share": 0.85 * 0.30, "CD3": 8000.0, "CD4": 0.0, "CD8": 25000.0},
    "DN": {"share": 0.85 * 0.05, "CD3": 8000.0, "CD4": 0.0, "CD8": 0.0},
    "DP": {"share": 0.85 * 0.03, "CD3": 8000.0, "CD4": 12000.0, "CD8": 18000.0},
    "B": {"share": 0.15 * 0.65, "CD3": 0.0, "CD4": 0.0, "CD8": 0.0},
    "NK": {"share": 0.15 * 0.35, "CD3": 0.0, "CD4": 0.0, "CD8": 2500.0},
}
TYPES = list(CELL_TYPES)
#: Shares of a purified T-cell culture (CD3+ about 96 %; a few B- and NK-like cells remain), for
#: ``ZincflowCulture.type_shares``.
T_CELL_CULTURE = {"CD4": 0.58, "CD8": 0.33, "DN": 0.03, "DP": 0.02, "B": 0.02, "NK": 0.02}
_AF_LEVEL = {"FITC-A": 1.0, "PE-A": 0.5, "APC-A": 0.25, "BV421-A": 0.6, "APC-Cy7-A": 0.3}  # x af_median


@dataclass(frozen=True)
class KineticParams:
    """Acquisition across a stimulus (seconds; events per second)."""

    baseline_s: float = 60.0
    gap_s: float = 25.0
    delay_s: float = 4.0
    after_s: float = 240.0
    rate_per_s: float = 400.0
    rise_fold: float = 1.5
    tau_on_s: float = 30.0
    tau_off_s: float = 400.0

    @property
    def addition_s(self) -> float:
        return self.baseline_s + self.delay_s

    @property
    def time_to_peak_s(self) -> float:
        a, b = self.tau_on_s, self.tau_off_s
        return float(a * np.log((a + b) / a))

    def response(self, t_since_addition: np.ndarray) -> np.ndarray:
        """r(t), peak 1, 0 before the addition."""
        t = np.maximum(np.asarray(t_since_addition, dtype=np.float64), 0.0)
        a, b = self.tau_on_s, self.tau_off_s
        tp = self.time_to_peak_s
        peak = (1 - np.exp(-tp / a)) * np.exp(-tp / b)
        return (1 - np.exp(-t / a)) * np.exp(-t / b) / peak


@dataclass(frozen=True)
class ZincflowCulture:
    """One loaded culture (linear fluorescence units unless stated)."""

    zn_nM: dict[str, float] = field(default_factory=lambda: {"CD4": 1.0, "CD8": 0.8, "DN": 0.9, "DP": 1.0,
                                                             "B": 0.6, "NK": 1.2})
    zn_sigma_log10: float = 0.1
    kd_nM: float = 15.0
    probe: str = "FluoZin-3"
    dynamic_range: float = 6.0
    fmin_median: float = 2000.0
    load_sigma_log10: float = 0.2
    fmax_zn_nM: float = 10000.0
    af_median: float = 250.0
    af_sigma_log10: float = 0.15
    spill_pe_to_fitc: float = 0.02
    spill_fitc_to_pe: float = 0.18
    spill_error: float = 0.0
    photon_var_per_unit: float = 2.0
    noise_sd: float = 15.0
    n_events: int = 20000
    rate_per_s: float = 1000.0
    frac_debris: float = 0.08
    frac_dead: float = 0.06
    dead_factor: dict[str, float] = field(default_factory=lambda: {"fmin": 1.3, "fmax": 1.8, "kinetic": 1.0,
                                                                   "sample": 1.0, "unstained": 1.0})
    frac_doublet: float = 0.04
    dead_dye_fraction: float = 0.15
    fmax_scatter: tuple[float, float] = (0.96, 1.08)
    instrument: str = "zincassay simulator"
    type_shares: dict[str, float] | None = None
    stains: dict[str, str] = field(default_factory=lambda: {"PE-A": "CD4", "APC-A": "CD8", "BV421-A": "CD3",
                                                            "APC-Cy7-A": "LiveDead"})

    def shares(self) -> np.ndarray:
        """Share of each of :data:`TYPES` among live lymphocytes (``type_shares`` or the defaults)."""
        if self.type_shares is None:
            p = np.array([CELL_TYPES[t]["share"] for t in TYPES])
        else:
            p = np.array([self.type_shares.get(t, 0.0) for t in TYPES])
        return p / p.sum()

    def with_zinc(self, scale: float) -> ZincflowCulture:
        """The same culture with every type's resting zinc multiplied by ``scale``."""
        return replace(self, zn_nM={k: v * scale for k, v in self.zn_nM.items()})


def spill_matrix(c: ZincflowCulture) -> np.ndarray:
    """True spill matrix over :data:`FLUOR` (row = dye, column = detector)."""
    m = np.eye(len(FLUOR))
    i = {ch: k for k, ch in enumerate(FLUOR)}
    m[i["FITC-A"], i["PE-A"]] = c.spill_fitc_to_pe
    m[i["FITC-A"], i["APC-Cy7-A"]] = 0.002
    m[i["PE-A"], i["FITC-A"]] = c.spill_pe_to_fitc
    m[i["PE-A"], i["APC-A"]] = 0.005
    m[i["PE-A"], i["APC-Cy7-A"]] = 0.03
    m[i["APC-A"], i["PE-A"]] = 0.002
    m[i["APC-A"], i["APC-Cy7-A"]] = 0.15
    m[i["BV421-A"], i["FITC-A"]] = 0.004
    m[i["BV421-A"], i["PE-A"]] = 0.001
    m[i["APC-Cy7-A"], i["PE-A"]] = 0.01
    m[i["APC-Cy7-A"], i["APC-A"]] = 0.04
    return m


def _logn(rng: np.random.Generator, median: float | np.ndarray, sigma_log10: float, n: int) -> np.ndarray:
    return median * np.power(10.0, rng.normal(0.0, sigma_log10, n))


def _theta(zn_nM: np.ndarray | float, kd_nM: float) -> np.ndarray:
    zn = np.asarray(zn_nM, dtype=np.float64)
    return zn / (zn + kd_nM)


def _tube_theta(c: ZincflowCulture, tube: str, zn_rest: np.ndarray, t_s: np.ndarray | None,
                kinetic: KineticParams | None) -> np.ndarray:
    if tube == "fmin":
        return np.zeros(zn_rest.size)
    if tube == "fmax":
        return np.full(zn_rest.size, float(_theta(c.fmax_zn_nM, c.kd_nM)))
    if tube == "kinetic":
        assert kinetic is not None and t_s is not None
        return _theta(zn_rest * (1.0 + kinetic.rise_fold * kinetic.response(t_s - kinetic.addition_s)), c.kd_nM)
    return _theta(zn_rest, c.kd_nM)


def _cells(rng: np.random.Generator, c: ZincflowCulture, n: int, tube: str, t_s: np.ndarray | None,
           kinetic: KineticParams | None) -> dict[str, np.ndarray]:
    """Live cells: scatter, dye-only probe signal, markers, viability, type and resting zinc."""
    kind = rng.choice(len(TYPES), size=n, p=c.shares())
    zn_med = np.array([c.zn_nM[t] for t in TYPES])[kind]
    zn_rest = _logn(rng, zn_med, c.zn_sigma_log10, n)
    load = _logn(rng, c.fmin_median, c.load_sigma_log10, n)
    theta = _tube_theta(c, tube, zn_rest, t_s, kinetic)
    probe = load * (1.0 + (c.dynamic_range - 1.0) * theta) if tube != "unstained" else np.zeros(n)
    out = {"fsc_a": _logn(rng, 60000.0, 0.05, n), "ssc": _logn(rng, 15000.0, 0.08, n), "FITC-A": probe,
           "APC-Cy7-A": _logn(rng, 150.0, 0.15, n), "type": kind, "zn_rest": zn_rest}
    out["fsc_h"] = out["fsc_a"] / rng.normal(1.12, 0.025, n)
    for marker, ch in MARKER_CHANNEL.items():
        med = np.array([CELL_TYPES[t][marker] for t in TYPES])[kind]
        sig = 0.2 if marker == "CD8" else 0.13
        out[ch] = np.where(med > 0, _logn(rng, np.maximum(med, 1.0), sig, n), 0.0)
    return out


def simulate_tube(rng: np.random.Generator, c: ZincflowCulture, tube: str,
                  kinetic: KineticParams | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Simulate one tube of a culture.

    Parameters
    ----------
    tube : "sample", "fmin", "fmax", "unstained" or "kinetic".

    Returns
    -------
    events : ndarray (n_events, 9) float64, observed linear values in :data:`CHANNELS` order
        (Time in seconds).
    info : per event ``kind`` (live, dead, debris, doublet), ``type`` (index into
        :data:`TYPES`, -1 for non-live), ``zn_rest`` (nM, NaN for non-live).
    """
    if tube == "kinetic":
        if kinetic is None:
            raise ValueError("a kinetic tube needs KineticParams")
        n = round(kinetic.rate_per_s * (kinetic.baseline_s + kinetic.after_s))
        # events are a Poisson stream over the two acquisition windows
        u = rng.uniform(0.0, kinetic.baseline_s + kinetic.after_s, n)
        t_all = np.where(u < kinetic.baseline_s, u, u + kinetic.gap_s)
    else:
        n = c.n_events
        t_all = rng.uniform(0.0, n / c.rate_per_s, n)
    n_debris = round(n * c.frac_debris)
    n_dead = round(n * c.frac_dead * c.dead_factor[tube])
    n_doublet = round(n * c.frac_doublet)
    n_live = n - n_debris - n_dead - n_doublet
    # times per group: the first n_live events are live cells, then dead, debris, doublets
    t_live, t_dead = t_all[:n_live], t_all[n_live:n_live + n_dead]
    t_dbl = t_all[n - n_doublet:]
    live = _cells(rng, c, n_live, tube, t_live, kinetic)
    dead = _cells(rng, c, n_dead, tube, t_dead, kinetic)
    dead["fsc_a"] *= 0.6
    dead["fsc_h"] *= 0.6
    dead["ssc"] *= 1.4
    dead["FITC-A"] *= c.dead_dye_fraction
    dead["APC-Cy7-A"] = _logn(rng, 9000.0, 0.2, n_dead)
    debris = {"fsc_a": _logn(rng, 9000.0, 0.2, n_debris), "ssc": _logn(rng, 5000.0, 0.25, n_debris),
              "FITC-A": _logn(rng, c.fmin_median / 8, 0.5, n_debris) if tube != "unstained" else np.zeros(n_debris),
              "PE-A": _logn(rng, 300.0, 0.5, n_debris), "APC-A": _logn(rng, 200.0, 0.5, n_debris),
              "BV421-A": _logn(rng, 300.0, 0.5, n_debris), "APC-Cy7-A": _logn(rng, 1500.0, 0.4, n_debris)}
    debris["fsc_h"] = debris["fsc_a"] / rng.normal(1.12, 0.06, n_debris)
    a = _cells(rng, c, n_doublet, tube, t_dbl, kinetic)
    b = _cells(rng, c, n_doublet, tube, t_dbl, kinetic)
    doublet = {k: a[k] + b[k] for k in ("fsc_a", "ssc", *FLUOR)}
    doublet["fsc_h"] = np.maximum(a["fsc_h"], b["fsc_h"]) * rng.normal(1.08, 0.03, n_doublet)
    groups = [("live", live), ("dead", dead), ("debris", debris), ("doublet", doublet)]
    rows, kinds, types, zns = [], [], [], []
    for kind, g in groups:
        m = g["fsc_a"].size
        af = _logn(rng, c.af_median, c.af_sigma_log10, m) * (2.0 if kind == "doublet" else 1.0)
        fl = np.column_stack([g[ch] + af * _AF_LEVEL[ch] for ch in FLUOR])
        rows.append(np.column_stack([g["fsc_a"], g["fsc_h"], g["ssc"], fl]))
        kinds.append(np.full(m, kind))
        types.append(g["type"] if kind == "live" else np.full(m, -1))
        zns.append(g["zn_rest"] if kind == "live" else np.full(m, np.nan))
    ev = np.vstack(rows)
    if tube == "fmax":
        ev[:, 0:2] *= c.fmax_scatter[0]
        ev[:, 2] *= c.fmax_scatter[1]
    fl = ev[:, 3:8] @ spill_matrix(c)
    fl += rng.normal(0.0, 1.0, fl.shape) * np.sqrt(c.photon_var_per_unit * np.maximum(fl, 0.0) + c.noise_sd**2)
    ev[:, 3:8] = fl
    ev[:, 0:3] *= rng.normal(1.0, 0.01, (ev.shape[0], 3))
    ev[:, :8] = np.minimum(ev[:, :8], TOP)
    ev = np.column_stack([ev, t_all])
    order = np.argsort(t_all, kind="stable")
    info = {"kind": np.concatenate(kinds)[order], "type": np.concatenate(types)[order].astype(int),
            "zn_rest": np.concatenate(zns)[order]}
    return ev[order], info


def _write(path: Path, ev: np.ndarray, c: ZincflowCulture, *, instrument: str, write_timestep: bool = True,
           storage: str = "float32") -> Path:
    """``storage``: ``float32`` (FCS 3.1 ``F``) or ``int24`` (``I``: 18-bit ADC values 0..262143 in
    3 bytes, the ADC's floor at 0, Time in 16 or 32 bits), a quarter smaller on disk."""
    stored = ev.astype(np.float64, copy=True)
    stored[:, -1] = np.rint(ev[:, -1] / TIMESTEP_S)
    true = spill_matrix(c)
    written = true + c.spill_error * (true - np.eye(len(FLUOR)))
    pns = ["", "", "", c.probe, *(c.stains.get(ch, "") for ch in FLUOR[1:]), ""]
    kw = {"$CYT": instrument, "$FIL": path.name}
    if write_timestep:
        kw["$TIMESTEP"] = f"{TIMESTEP_S:g}"
    time_bits = int(np.ceil(np.log2(max(stored[:, -1].max(), 2) + 1)))
    pnr = [262144] * 8 + [float(2**time_bits)]
    spill = SpillMatrix(tuple(FLUOR), written, "$SPILLOVER")
    if storage == "int24":
        stored[:, :8] = np.clip(np.rint(stored[:, :8]), 0, TOP)
        return write_fcs(path, stored, CHANNELS, pns=pns, datatype="I", version="3.1", byteorder="little",
                         pnb=[24] * 8 + [16 if time_bits <= 16 else 32], pnr=pnr, spill=spill, keywords=kw)
    if storage != "float32":
        raise ValueError(f"storage {storage!r}: use float32 or int24")
    return write_fcs(path, stored.astype(np.float32), CHANNELS, pns=pns, datatype="F", version="3.1",
                     byteorder="little", pnr=pnr, spill=spill, keywords=kw)


def culture_truth(c: ZincflowCulture, subsets: list[str], kinetic: KineticParams | None = None,
                  n_draw: int = 400_000, seed: int = 12345) -> pd.DataFrame:
    """Ground truth per subset of one culture (see the module docstring).

    ``zn_nM`` is the median per-cell resting zinc of the subset's live cells and ``f`` its bound
    fraction; ``*_expected`` values are medians over ``n_draw`` noise-free cells of the subset
    (probe dye + autofluorescence, compensated), i.e. what infinitely many events would give.
    """
    rng = np.random.default_rng(seed)
    shares = c.shares()
    rows = []
    for expr in subsets:
        sub = parse_subset(expr)
        member = np.array([all((CELL_TYPES[t][m] > 0) == pos for m, pos in sub.markers) for t in TYPES])
        p = np.where(member, shares, 0.0)
        if not p.sum() > 0:
            raise ValueError(f"subset {expr!r} matches no simulated cell type")
        kind = rng.choice(len(TYPES), size=n_draw, p=p / p.sum())
        zn = _logn(rng, np.array([c.zn_nM[t] for t in TYPES])[kind], c.zn_sigma_log10, n_draw)
        load = _logn(rng, c.fmin_median, c.load_sigma_log10, n_draw)
        af = _logn(rng, c.af_median, c.af_sigma_log10, n_draw)
        th_max = float(_theta(c.fmax_zn_nM, c.kd_nM))
        tubes = {"sample": load * (1 + (c.dynamic_range - 1) * _theta(zn, c.kd_nM)) + af,
                 "fmin": load + af, "fmax": load * (1 + (c.dynamic_range - 1) * th_max) + af}
        med = {k: float(np.median(v)) for k, v in tubes.items()}
        zn_med = float(np.median(zn))
        row = {"subset": expr, "zn_nM": zn_med, "f": zn_med / (zn_med + c.kd_nM),
               "F_expected": med["sample"], "Fmin_expected": med["fmin"], "Fmax_expected": med["fmax"],
               "af_expected": float(np.median(af)),
               "zn_expected_nM": c.kd_nM * (med["sample"] - med["fmin"]) / (med["fmax"] - med["sample"]),
               "fmax_top_fraction": float(np.mean(tubes["fmax"] >= TOP)),
               "live_fraction_of_lymphocytes": float(p.sum() / shares.sum()),
               "kd_nM": c.kd_nM, "dynamic_range": c.dynamic_range, "fmax_theta": th_max,
               "fmin_median": c.fmin_median, "load_sigma_log10": c.load_sigma_log10,
               "zn_sigma_log10": c.zn_sigma_log10, "af_median": c.af_median,
               "spill_pe_to_fitc": c.spill_pe_to_fitc, "instrument": c.instrument}
        if kinetic is not None:
            # Zn(t) = Zn_rest (1 + rise r(t)) for every cell: the median scales with it
            row.update(kinetic_baseline_zn_nM=zn_med, kinetic_peak_zn_nM=zn_med * (1 + kinetic.rise_fold),
                       kinetic_delta_zn_nM=zn_med * kinetic.rise_fold,
                       kinetic_time_to_peak_s=kinetic.time_to_peak_s, kinetic_addition_s=kinetic.addition_s,
                       kinetic_gap_start_s=kinetic.baseline_s, kinetic_gap_end_s=kinetic.baseline_s + kinetic.gap_s)
        rows.append(row)
    return pd.DataFrame(rows)


def write_tube(path: str | Path, rng: np.random.Generator, c: ZincflowCulture, tube: str, *,
               kinetic: KineticParams | None = None, instrument: str | None = None, write_timestep: bool = True,
               storage: str = "float32") -> Path:
    """Simulate one tube (:func:`simulate_tube`) and write it as FCS 3.1 (see ``_write`` for ``storage``)."""
    ev, _ = simulate_tube(rng, c, tube, kinetic)
    return _write(Path(path), ev, c, instrument=c.instrument if instrument is None else instrument,
                  write_timestep=write_timestep, storage=storage)


def write_culture(outdir: str | Path, stem: str, rng: np.random.Generator, c: ZincflowCulture, *,
                  unstained: bool = True, kinetic: KineticParams | None = None,
                  write_timestep: bool = True, instruments: dict[str, str] | None = None,
                  storage: str = "float32") -> dict[str, Path]:
    """Write a culture's tubes as ``<stem>_<role>.fcs``; return role -> path.

    Roles: ``sample``, ``fmin``, ``fmax``, and ``unstained`` / ``kinetic`` when asked for.
    ``instruments`` overrides ``$CYT`` per role (default: the culture's ``instrument``).
    """
    instruments = instruments or {}
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    roles = ["sample", "fmin", "fmax"] + (["unstained"] if unstained else []) + (["kinetic"] if kinetic else [])
    return {role: write_tube(outdir / f"{stem}_{role}.fcs", rng, c, role, kinetic=kinetic,
                             instrument=instruments.get(role), write_timestep=write_timestep, storage=storage)
            for role in roles}


def zincflow_experiment(
    outdir: str | Path, rng: np.random.Generator, *, conditions: dict[str, float], n_donors: int = 2,
    n_events: int = 20000, subsets: tuple[str, ...] = ("CD3+", "CD3+CD4+CD8-", "CD3+CD4-CD8+"),
    kinetic: dict[tuple[str, str], KineticParams] | None = None, unstained: str = "culture",
    type_shares: dict[str, float] | None = None, donor_zinc: tuple[float, ...] = (),
    storage: str = "float32", extra: dict[str, dict[str, object]] | None = None,
) -> tuple[list[dict], pd.DataFrame]:
    """Write ``n_donors`` x conditions cultures as FCS tubes in ``outdir``; return sheet rows and truth.

    Parameters
    ----------
    conditions : condition -> factor on every cell type's resting zinc (e.g. deficient 0.5).
    kinetic : (donor, condition) -> kinetic parameters of that culture's extra kinetic tube.
    unstained : ``"culture"`` (one unstained tube per culture), ``"donor"`` (one per donor and batch,
        condition blank, shared by the donor's cultures) or ``"none"``.
    type_shares : cell-type shares (e.g. :data:`T_CELL_CULTURE`); None = PBMC-like defaults.
    donor_zinc : per-donor factor on resting zinc (donor d uses ``donor_zinc[d - 1]``; default 1).
    storage : ``float32`` or ``int24`` (see ``_write``).
    extra : condition -> extra sheet columns of that condition's rows (e.g. ``zn_supplement_uM``).

    Donors differ in dynamic range (uniform 4-10); each culture's loading differs (lognormal,
    0.15 decades). Sample ids ``zf_<donor>_<cond[:3]>`` (+ ``_fmin``, ``_fmax``, ``_unstained``,
    ``_kinetic``); files ``<id>_<batch>.fcs``. Rows: ``sample_id, assay, file`` (absolute),
    ``condition, role, donor, batch, kinetic`` and the ``extra`` columns.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    kinetic = kinetic or {}
    extra = extra or {}
    rows, truths = [], []

    def add(sid: str, path: Path, cond: str, role: str, donor: str, batch: str, kin: bool = False) -> None:
        rows.append({"sample_id": sid, "assay": "zincflow", "file": path, "condition": cond, "role": role,
                     "donor": donor, "batch": batch, "kinetic": "yes" if kin else "", **extra.get(cond, {})})

    for d in range(1, n_donors + 1):
        donor, batch = f"D{d}", f"B{d}"
        base = ZincflowCulture(n_events=n_events, dynamic_range=float(rng.uniform(4, 10)), type_shares=type_shares)
        base = base.with_zinc(donor_zinc[d - 1] if d <= len(donor_zinc) else 1.0)
        if unstained == "donor":
            sid = f"zf_{donor}_unstained"
            add(sid, write_tube(outdir / f"{sid}_{batch}.fcs", rng, base, "unstained", storage=storage), "",
                "unstained", donor, batch)
        for cond, scale in conditions.items():
            c = replace(base.with_zinc(scale), fmin_median=float(base.fmin_median * 10 ** rng.normal(0, 0.15)))
            stem = f"zf_{donor}_{cond[:3]}"
            kin = kinetic.get((donor, cond))
            roles = ["sample", "fmin", "fmax"] + (["unstained"] if unstained == "culture" else [])
            for role in [*roles, *(["kinetic"] if kin else [])]:
                sid = stem if role == "sample" else f"{stem}_{role}"
                path = write_tube(outdir / f"{sid}_{batch}.fcs", rng, c, role, kinetic=kin, storage=storage)
                add(sid, path, cond, "sample" if role == "kinetic" else role, donor, batch, role == "kinetic")
            t = culture_truth(c, list(subsets), kin)
            t.insert(0, "culture", f"{donor}/{cond}/{batch}")
            t.insert(1, "condition", cond)
            t.insert(2, "donor", donor)
            truths.append(t)
    return rows, pd.concat(truths).sort_values(["culture", "subset"])


def simulate_zincflow_dataset(
    outdir: str | Path, seed: int = 1, conditions: dict[str, float] | None = None, n_donors: int = 2,
    n_events: int = 20000, subsets: tuple[str, ...] = ("CD3+", "CD3+CD4+CD8-", "CD3+CD4-CD8+"),
    kinetic_condition: str | None = "replete", sheet_path: str | Path | None = None,
) -> Path:
    """Write ``n_donors`` x conditions cultures, their sample sheet and truth; return the sheet's path.

    ``conditions`` maps a condition to the factor on every cell type's resting zinc (default:
    deficient 0.5, replete 1, supplemented 2). One culture per donor (``kinetic_condition``) also
    gets a kinetic tube; every culture an unstained tube (:func:`zincflow_experiment`). Layout:
    ``zincflow/*.fcs``, ``truth/zincflow_truth.tsv`` and the sheet (``zincflow_samples.tsv`` in
    ``outdir`` unless ``sheet_path``), file paths relative to it.
    """
    outdir = Path(outdir)
    conditions = conditions or {"deficient": 0.5, "replete": 1.0, "supplemented": 2.0}
    sheet_path = Path(sheet_path) if sheet_path else outdir / "zincflow_samples.tsv"
    kinetic = {(f"D{d}", kinetic_condition): KineticParams() for d in range(1, n_donors + 1)} if kinetic_condition \
        else {}
    rows, truth = zincflow_experiment(outdir / "zincflow", np.random.default_rng(seed), conditions=conditions,
                                      n_donors=n_donors, n_events=n_events, subsets=subsets, kinetic=kinetic)
    sheet = pd.DataFrame(rows)
    sheet["file"] = [os.path.relpath(Path(f).resolve(), sheet_path.parent.resolve()) for f in sheet["file"]]
    write_table(sheet.sort_values("sample_id"), sheet_path)
    write_table(truth, outdir / "truth" / "zincflow_truth.tsv")
    return sheet_path
