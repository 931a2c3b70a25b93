"""Per-event generation probabilities and generation boundaries from a CFSE deconvolution.

The deconvolution (:mod:`zincassay.cfse.deconvolve`) describes the histogram as a sum of
components: one expected-count curve per generation plus two background shapes (dye-negative
autofluorescence and flat debris), on bins of 0.02 decades of log10 fluorescence. Then

- **posterior**: an event at log10 value ``x`` belongs to component ``k`` with probability
  ``c_k(x) / sum_j c_j(x)``, the component's share of the expected counts at ``x``. Shares are
  computed per bin and interpolated linearly between bin centres to each event's ``x`` (a
  linear interpolation of a partition of unity is one, so the shares still add up to 1). Events at
  or below 1 (and <= 0 after compensation) sit in the lowest bin, as in the fit. A bin where
  every component is 0 (far above the parent peak) is background.
- **boundaries**: as ModFit places its generation gates, the boundary between generations ``g``
  and ``g + 1`` is where their fitted curves cross, searched between the two generations' peak
  positions and linearly interpolated between bin centres (when several crossings exist, the
  one nearest the midpoint; when one curve is above the other throughout, the peak of the
  dominated generation, so an empty generation gets an empty range; when both are empty,
  the midpoint). Boundaries are returned in linear units, and events are assigned with the
  half-open ranges ``low <= x < high`` that GatingML uses, so the hard counts here and the
  counts of the written gates are the same events.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from zincassay.cfse.deconvolve import GenerationFit
from zincassay.flow.gates_io import GateDimension, GateShape
from zincassay.flow.transforms import safe_log10
from zincassay.io.fcs import FCSData, SpillMatrix

__all__ = [
    "assign_generations",
    "component_probabilities",
    "export_generations_fcs",
    "generation_boundaries",
    "generation_gate_shapes",
    "generation_probabilities",
    "mixing_matrix",
    "most_probable_generation",
]


def _n_gen(fit: GenerationFit) -> int:
    return int(np.asarray(fit.cells).size)


def component_probabilities(values: np.ndarray, fit: GenerationFit) -> np.ndarray:
    """Probability that each event belongs to each component of the fit.

    Parameters
    ----------
    values : ndarray (n_events,)
        CFSE values (linear, compensated) of the events, e.g. the gated events the fit was made on.
    fit : GenerationFit

    Returns
    -------
    ndarray (n_events, n_components), float64
        Columns follow ``fit.components``: generations 0..G, then the background shapes. Rows add
        up to 1.
    """
    share, centers = _shares(fit)
    x = np.clip(safe_log10(values), fit.edges[0], fit.edges[-1])
    out = np.empty((x.size, share.shape[0]), dtype=np.float64)
    for k in range(share.shape[0]):
        out[:, k] = np.interp(x, centers, share[k])
    return out


def generation_probabilities(values: np.ndarray, fit: GenerationFit) -> np.ndarray:
    """P(generation g | event): the generation columns of :func:`component_probabilities`.

    Returns
    -------
    ndarray (n_events, n_generations); each row adds up to at most 1, the rest being the
    probability that the event is background (dye-negative or debris).
    """
    return component_probabilities(values, fit)[:, : _n_gen(fit)]


def _shares(fit: GenerationFit) -> tuple[np.ndarray, np.ndarray]:
    comps = np.asarray(fit.components, dtype=float)
    edges = np.asarray(fit.edges, dtype=float)
    total = comps.sum(axis=0)
    share = np.divide(comps, total, out=np.zeros_like(comps), where=total > 0)
    share[_n_gen(fit), total <= 0] = 1.0  # nothing expected: background (rows still add up to 1)
    return share, (edges[:-1] + edges[1:]) / 2


def mixing_matrix(fit: GenerationFit) -> np.ndarray:
    """Expected posterior weight of component ``g`` given by an event of component ``k``.

    ``M[g, k] = sum_b c_k(b) s_g(b) / sum_b c_k(b)`` over bins ``b``, with ``c_k`` the fitted
    curves and ``s_g`` the shares of :func:`component_probabilities`. Weighted sums over events
    mix the components' distributions through ``M``: ``S_g = sum_k M[g, k] N_k F_k``.

    Returns
    -------
    ndarray (n_components, n_components); columns add up to 1 (0 for an empty component).
    """
    comps = np.asarray(fit.components, dtype=float)
    share, _ = _shares(fit)
    mass = comps.sum(axis=1)
    return np.divide(share @ comps.T, mass[None, :], out=np.zeros((comps.shape[0],) * 2), where=mass[None, :] > 0)


def generation_boundaries(fit: GenerationFit) -> np.ndarray:
    """Linear CFSE values where neighbouring generations' fitted curves cross.

    Returns
    -------
    ndarray (n_generations - 1,), decreasing
        Element ``g`` separates generation ``g`` (above) from ``g + 1`` (below).
    """
    comps = np.asarray(fit.components, dtype=float)
    edges = np.asarray(fit.edges, dtype=float)
    centers = (edges[:-1] + edges[1:]) / 2
    mu = np.asarray(fit.generation_mu, dtype=float)
    ng = _n_gen(fit)
    out = np.empty(max(ng - 1, 0))
    for g in range(ng - 1):
        hi, lo = mu[g], mu[g + 1]
        sel = np.nonzero((centers >= lo) & (centers <= hi))[0]
        if sel.size < 2:
            out[g] = (hi + lo) / 2
            continue
        c = centers[sel]
        d = comps[g, sel] - comps[g + 1, sel]  # > 0 where the brighter generation dominates
        if not np.any(comps[g, sel] > 0) and not np.any(comps[g + 1, sel] > 0):
            out[g] = (hi + lo) / 2
            continue
        ups = np.nonzero((d[:-1] <= 0) & (d[1:] > 0))[0]
        if ups.size:
            mid = (hi + lo) / 2
            crossings = c[ups] + (c[ups + 1] - c[ups]) * (-d[ups]) / (d[ups + 1] - d[ups])
            out[g] = crossings[np.argmin(np.abs(crossings - mid))]
        elif np.all(d > 0):
            out[g] = lo
        else:
            out[g] = hi
    # curves cross inside disjoint, ordered intervals; keep the order exact in linear units
    return np.minimum.accumulate(np.power(10.0, out)) if out.size else out


def assign_generations(values: np.ndarray, boundaries: np.ndarray) -> np.ndarray:
    """Hard generation of each event from :func:`generation_boundaries`.

    Generation ``g`` holds ``boundaries[g] <= x < boundaries[g - 1]`` (generation 0 has no
    upper limit, the last no lower one). Returns an int array (n_events,).
    """
    b = np.asarray(boundaries, dtype=float)
    x = np.asarray(values, dtype=float)
    return b.size - np.searchsorted(b[::-1], x, side="right")


def generation_gate_shapes(
    boundaries: np.ndarray, *, channel: str, compensation: str = "uncompensated", parent: str = ""
) -> list[GateShape]:
    """One 1-D range gate per generation on the CFSE channel (linear units), under ``parent``.

    Parameters
    ----------
    boundaries : ndarray (n_generations - 1,)
        From :func:`generation_boundaries`.
    channel : str
        ``$PnN`` of the CFSE channel.
    compensation : str
        ``"FCS"``, ``"uncompensated"`` or a matrix id (as for :class:`GateDimension`).
    parent : str
        Population path the generations are gated in (e.g. ``/lymphocytes/singlets/live``).
    """
    b = [float(v) for v in np.asarray(boundaries, dtype=float)]
    out = []
    for g in range(len(b) + 1):
        lo = b[g] if g < len(b) else None
        hi = b[g - 1] if g > 0 else None
        dim = GateDimension(channel, compensation, None, lo, hi)
        out.append(GateShape(f"generation_{g}", f"{parent}/generation_{g}", "rectangle", (dim,)))
    return out


def most_probable_generation(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Most probable generation of each event (-1 when background is more probable than any).

    Returns
    -------
    generation : ndarray (n_events,) int
    probability : ndarray (n_events,) float64 -- of that generation (of background for -1)
    """
    p = np.asarray(probabilities, dtype=float)
    bg = np.clip(1.0 - p.sum(axis=1), 0.0, 1.0)
    best = np.argmax(p, axis=1)
    pbest = p[np.arange(p.shape[0]), best]
    is_bg = bg > pbest
    return np.where(is_bg, -1, best), np.where(is_bg, bg, pbest)


def export_generations_fcs(
    path: str | Path, data: FCSData, mask: np.ndarray, probabilities: np.ndarray, *,
    spill: SpillMatrix | None = None,
) -> Path:
    """FCS 3.1 file of the selected events with ``generation`` and ``generation_probability``.

    Parameters
    ----------
    path : str or Path
    data : FCSData
        The sample: as read (uncompensated events, written with ``spill`` as ``$SPILLOVER`` so
        FlowJo / FCS Express compensate as usual) or compensated (written as they are, without a
        spill matrix); see :func:`zincassay.io.fcs_write.write_events_fcs`.
    mask : ndarray of bool (n_events,)
        Events to write (e.g. the live singlets the fit was made on).
    probabilities : ndarray (mask.sum(), n_generations)
        From :func:`generation_probabilities` for those events.
    spill : SpillMatrix, optional
        Matrix used in the analysis; default the file's own.
    """
    from zincassay.io.fcs_write import write_events_fcs

    gen, prob = most_probable_generation(probabilities)
    extra: Mapping[str, tuple[np.ndarray, str]] = {
        "generation": (gen.astype(np.float32), "most probable CFSE generation (-1 background)"),
        "generation_probability": (prob.astype(np.float32), "posterior probability of that generation"),
    }
    return write_events_fcs(path, data, mask, extra=extra, spill=spill)
