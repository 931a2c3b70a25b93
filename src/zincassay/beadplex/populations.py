"""Bead populations of one well: size groups on FSC/SSC, bead identities by classification intensity.

1. **Singlets**: FSC-A/FSC-H within median +/- 4 robust SD (:func:`zincassay.flow.gating.singlet_gate`),
   when the file has both; bead doublets have twice the area for about the same height.
2. **Size groups** (LEGENDplex A/B; one group for CBA): peaks of the smoothed 2-D histogram of
   log10 FSC/SSC start a Gaussian mixture (one component per group expected by the panel, plus a
   uniform background for debris and aggregates), fitted by EM. An event joins a group when that
   group has the highest posterior and the event lies inside the 99.9 % ellipse. Groups are named
   by the panel's order, smallest mean log FSC first.
3. **Bead identities**: within a group, peaks of the smoothed histogram of log10 classification
   intensity. The panel's ladder positions p are matched to the peaks by the monotone matching
   whose peaks lie closest to a straight line peak = alpha + beta*p (beta > 0). With every bead
   present this is the order; with one missing, the gap it leaves in the ladder says which one
   (when two matchings fit about equally well, the group is flagged ambiguous instead of guessed).
   A 1-D Gaussian mixture (one component per peak plus a uniform background), fitted by EM,
   gives each bead's centre and width; each event goes to its most probable bead, and events
   more than 4 SD from it stay unassigned.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.stats import chi2

__all__ = ["BeadPopulations", "GroupFit", "find_bead_populations"]

_EM_ITER = 300
_PEAK_SD_LOG10 = 0.03  # how far a cluster's peak may sit off the ladder line by chance (decades)
#: a size group's gate on log FSC/SSC: the Mahalanobis radius holding all but this share of its
#: Gaussian (chi2, 2 d.f.: 4.8 SD). At 1e-3 (3.7 SD) it dropped 0.1 % of every group's real beads,
#: as much as the classification overlap costs at 10 SD spacing; debris and doublets lie > 8 SD away.
GROUP_GATE_OUTSIDE = 1e-5
GROUP_GATE_CHI2 = float(chi2.ppf(1 - GROUP_GATE_OUTSIDE, 2))


@dataclass(frozen=True)
class GroupFit:
    """One size group: its name, centre and covariance in log10 (FSC, SSC), and event count."""

    name: str
    center_log10: tuple[float, float]
    cov_log10: tuple[tuple[float, float], tuple[float, float]]
    n_events: int


@dataclass
class BeadPopulations:
    """Assignment of every event of a well.

    Attributes
    ----------
    bead : ndarray (n_events,) of int
        Index into ``bead_ids`` of the event's bead, -1 when unassigned (debris, doublet, valley).
    group : ndarray (n_events,) of int
        Index into ``groups`` of the event's size group, -1 when none.
    singlet : ndarray (n_events,) of bool
    bead_ids : list of str
        The panel's beads, in panel order.
    peak_log10 : dict bead_id -> float
        Classification peak of each found bead (decades).
    sd_log10 : dict bead_id -> float
        Fitted SD of each found bead's cluster (decades).
    missing : list of str
        Beads of the panel with no population.
    ambiguous_groups : list of str
        Groups where the missing population could not be told (their beads stay unassigned).
    notes : list of str
        One sentence per problem found.
    """

    bead: np.ndarray
    group: np.ndarray
    singlet: np.ndarray
    bead_ids: list[str]
    groups: list[GroupFit]
    peak_log10: dict[str, float] = field(default_factory=dict)
    sd_log10: dict[str, float] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    ambiguous_groups: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def count(self, bead_id: str) -> int:
        return int(np.sum(self.bead == self.bead_ids.index(bead_id)))


def _peaks_2d(xy: np.ndarray, k: int) -> list[np.ndarray]:
    lo = np.quantile(xy, 0.002, axis=0)
    hi = np.quantile(xy, 0.998, axis=0)
    bins = 128
    h, xe, ye = np.histogram2d(xy[:, 0], xy[:, 1], bins=bins, range=[[lo[0], hi[0]], [lo[1], hi[1]]])
    hs = ndimage.gaussian_filter(h, 1.5)
    local = (hs == ndimage.maximum_filter(hs, size=7)) & (hs > 0.05 * hs.max())
    idx = np.argwhere(local)
    order = np.argsort(-hs[local], kind="stable")
    xc, yc = (xe[:-1] + xe[1:]) / 2, (ye[:-1] + ye[1:]) / 2
    return [np.array([xc[i], yc[j]]) for i, j in idx[order][:k]]


def _em_2d(xy: np.ndarray, means: list[np.ndarray], iters: int = _EM_ITER
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian mixture + uniform background; returns means, covs, weights, responsibilities."""
    k = len(means)
    mu = np.array(means, dtype=np.float64)
    cov = np.array([np.diag([0.03**2, 0.05**2]) for _ in range(k)])
    box = float(np.prod(np.ptp(xy, axis=0) + 1e-9))
    w = np.append(np.full(k, 0.9 / k), 0.1)  # background starts small: it only has to take debris
    resp = np.zeros((xy.shape[0], k + 1))
    for _ in range(iters):
        dens = np.empty((xy.shape[0], k + 1))
        for j in range(k):
            diff = xy - mu[j]
            inv = np.linalg.inv(cov[j])
            m2 = np.einsum("ij,jk,ik->i", diff, inv, diff)
            dens[:, j] = w[j] * np.exp(-0.5 * m2) / (2 * np.pi * np.sqrt(np.linalg.det(cov[j])))
        dens[:, k] = w[k] / box
        resp = dens / np.maximum(dens.sum(1, keepdims=True), 1e-300)
        nk = resp.sum(0)
        w = nk / nk.sum()
        previous = np.concatenate([mu.ravel(), w])
        for j in range(k):
            r = resp[:, j]
            mu[j] = (r[:, None] * xy).sum(0) / max(nk[j], 1e-9)
            diff = xy - mu[j]
            cov[j] = (r[:, None, None] * np.einsum("ij,ik->ijk", diff, diff)).sum(0) / max(nk[j], 1e-9)
            cov[j] += np.eye(2) * 1e-6
        if np.max(np.abs(np.concatenate([mu.ravel(), w]) - previous)) < 1e-5:
            break
    return mu, cov, w, resp


def _peaks_1d(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Peaks of the smoothed histogram (0.01-decade bins, 0.02-decade kernel) of log intensities.

    A peak must reach 2 % of the tallest, hold >= 10 events within +/- 0.05 decades, and be
    separated from its taller neighbour by a valley below 80 % of its own height (a noisy wide
    cluster otherwise splits into two maxima).
    """
    lo, hi = np.quantile(v, [0.001, 0.999])
    edges = np.arange(lo - 0.05, hi + 0.06, 0.01)
    h, _ = np.histogram(v, bins=edges)
    hs = ndimage.gaussian_filter1d(h.astype(float), 2.0)
    centers = (edges[:-1] + edges[1:]) / 2
    local = (hs >= np.roll(hs, 1)) & (hs > np.roll(hs, -1)) & (hs > 0.02 * hs.max())
    local[[0, -1]] = False
    idx = [i for i in np.flatnonzero(local) if np.sum(np.abs(v - centers[i]) <= 0.05) >= 10]
    merged = True
    while merged and len(idx) > 1:
        merged = False
        for a, b in itertools.pairwise(list(idx)):
            valley = hs[a : b + 1].min()
            if valley > 0.8 * min(hs[a], hs[b]):
                idx.remove(a if hs[a] < hs[b] else b)
                merged = True
                break
    return centers[idx], hs[idx]


def _line_ss(pos: np.ndarray, peaks: np.ndarray) -> float:
    """Residual sum of squares of peaks on a straight line through the positions (slope > 0)."""
    if len(pos) < 3:
        return 0.0
    A = np.column_stack([np.ones_like(pos), pos])
    coef, *_ = np.linalg.lstsq(A, peaks, rcond=None)
    if coef[1] <= 0:
        return np.inf
    return float(np.sum((peaks - A @ coef) ** 2))


def _match(positions: np.ndarray, peaks: np.ndarray, heights: np.ndarray
           ) -> tuple[list[tuple[int, int]], bool]:
    """Monotone matching of ladder positions to peaks: list of (bead index, peak index), ambiguous?"""
    n_b, n_p = len(positions), len(peaks)
    m = min(n_b, n_p)
    if m == 0:
        return [], False
    scored = []
    for bsub in itertools.combinations(range(n_b), m):
        for psub in itertools.combinations(range(n_p), m):
            ss = _line_ss(positions[list(bsub)], peaks[list(psub)])
            # prefer dropping small spurious peaks: penalise the height left unmatched
            left = heights.sum() - heights[list(psub)].sum()
            scored.append((ss, left, bsub, psub))
    scored.sort(key=lambda s: (s[0], s[1]))
    best = scored[0]
    tol = m * _PEAK_SD_LOG10**2
    ambiguous = m >= 2 and m < n_b and len(scored) > 1 and any(
        s[2] != best[2] and s[0] - best[0] < tol for s in scored[1:])
    if m < 3 and m < n_b:
        ambiguous = True  # two peaks cannot say which bead is missing
    return list(zip(best[2], best[3], strict=True)), ambiguous


def _em_1d(v: np.ndarray, means: np.ndarray, iters: int = _EM_ITER) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1-D Gaussian mixture + uniform background; returns means, sds, responsibilities."""
    k = len(means)
    mu = means.astype(np.float64).copy()
    sd = np.full(k, 0.04)
    span = float(np.ptp(v) + 1e-9)
    w = np.append(np.full(k, 0.98 / k), 0.02)
    resp = np.zeros((v.size, k + 1))
    for _ in range(iters):
        dens = np.empty((v.size, k + 1))
        dens[:, :k] = w[:k] * np.exp(-0.5 * ((v[:, None] - mu) / sd) ** 2) / (np.sqrt(2 * np.pi) * sd)
        dens[:, k] = w[k] / span
        resp = dens / np.maximum(dens.sum(1, keepdims=True), 1e-300)
        nk = resp.sum(0)
        w = nk / nk.sum()
        previous = np.concatenate([mu, sd, w])
        mu = (resp[:, :k] * v[:, None]).sum(0) / np.maximum(nk[:k], 1e-9)
        sd = np.sqrt((resp[:, :k] * (v[:, None] - mu) ** 2).sum(0) / np.maximum(nk[:k], 1e-9))
        sd = np.maximum(sd, 0.003)
        if np.max(np.abs(np.concatenate([mu, sd, w]) - previous)) < 1e-5:
            break
    return mu, sd, resp


def find_bead_populations(
    fsc: np.ndarray,
    ssc: np.ndarray,
    classification: np.ndarray,
    *,
    groups: list[str],
    beads: list[list[tuple[str, float]]],
    fsc_a: np.ndarray | None = None,
    fsc_h: np.ndarray | None = None,
) -> BeadPopulations:
    """Find the bead size groups and bead populations of one well.

    Parameters
    ----------
    fsc, ssc, classification : ndarray (n_events,)
        Linear forward scatter, side scatter and (compensated) classification-channel values.
    groups : list of str
        Size-group names, smallest first (the panel's order).
    beads : list (one per group) of list of (bead_id, ladder position)
    fsc_a, fsc_h : ndarray (n_events,), optional
        FSC area and height; with both, doublets are removed first.

    Returns
    -------
    BeadPopulations
        Never raises for a missing population or group: those are listed in ``missing`` with a note.
    """
    from zincassay.flow.gating import singlet_gate

    n = len(fsc)
    ok = np.isfinite(fsc) & np.isfinite(ssc) & np.isfinite(classification) & (fsc > 0) & (ssc > 0)
    singlet = ok.copy()
    notes: list[str] = []
    if fsc_a is not None and fsc_h is not None:
        keep, _, _ = singlet_gate(fsc_a, fsc_h, ok, None)
        singlet &= keep
    bead_ids = [b for g in beads for b, _ in g]
    bead = np.full(n, -1)
    group = np.full(n, -1)
    out = BeadPopulations(bead, group, singlet, bead_ids, [])
    idx = np.flatnonzero(singlet)
    if idx.size < 50:
        out.missing = list(bead_ids)
        out.notes.append(f"only {idx.size} singlet events; no bead population can be found")
        return out
    xy = np.column_stack([np.log10(fsc[idx]), np.log10(ssc[idx])])
    k = len(groups)
    starts = _peaks_2d(xy, k)
    if len(starts) < k:
        out.missing = list(bead_ids)
        notes.append(f"{len(starts)} bead size group(s) on FSC/SSC where the panel expects {k} "
                     f"({', '.join(groups)}); check the scatter settings")
        out.notes = notes
        return out
    mu, cov, _w, resp = _em_2d(xy, starts)
    order = np.lexsort((mu[:, 1], mu[:, 0]))  # by FSC, then SSC
    cut = GROUP_GATE_CHI2
    best = np.argmax(resp, axis=1)
    for rank, j in enumerate(order):
        diff = xy - mu[j]
        m2 = np.einsum("ij,jk,ik->i", diff, np.linalg.inv(cov[j]), diff)
        member = (best == j) & (m2 <= cut)
        group[idx[member]] = rank
        out.groups.append(GroupFit(groups[rank], (float(mu[j, 0]), float(mu[j, 1])),
                                   ((float(cov[j, 0, 0]), float(cov[j, 0, 1])), (float(cov[j, 1, 0]), float(cov[j, 1, 1]))),
                                   int(member.sum())))
    offset = 0
    for rank, gname in enumerate(groups):
        members = np.flatnonzero(group == rank)
        ids = [b for b, _ in beads[rank]]
        positions = np.array([p for _, p in beads[rank]], dtype=np.float64)
        v = np.log10(np.maximum(classification[members], 1.0))
        peaks, heights = _peaks_1d(v) if members.size >= 20 else (np.array([]), np.array([]))
        if len(peaks) > len(ids) + 3:  # keep the tallest; the matching is combinatorial
            top = np.sort(np.argsort(-heights, kind="stable")[: len(ids) + 3])
            peaks, heights = peaks[top], heights[top]
        pairs, ambiguous = _match(positions, peaks, heights)
        found = {i for i, _ in pairs}
        if ambiguous:
            out.ambiguous_groups.append(gname)
            notes.append(f"group {gname}: {len(peaks)} classification peaks for {len(ids)} beads and the gap "
                         "does not say which bead is missing; the group's beads are left unassigned")
            out.missing += ids
            offset += len(ids)
            continue
        lost = [ids[i] for i in range(len(ids)) if i not in found]
        if lost:
            out.missing += lost
            notes.append(f"group {gname}: {len(pairs)} of {len(ids)} bead populations found; missing "
                         f"{', '.join(lost)}")
        if len(peaks) > len(ids):
            notes.append(f"group {gname}: {len(peaks) - len(ids)} classification peak(s) beyond the panel "
                         "left unassigned (aggregates or another kit's beads?)")
        if len(peaks):
            m_fit, sd_fit, r = _em_1d(v, peaks)
            # the background component makes the means and widths robust; the assignment itself is
            # between beads only (Bayes between Gaussians), with events beyond 4 SD left out
            win = np.argmax(r[:, : len(peaks)], axis=1)
            comp_to_bead = {p: i for i, p in pairs}
            for comp in range(len(peaks)):
                sel = (win == comp) & (np.abs(v - m_fit[comp]) <= 4.0 * sd_fit[comp])
                if comp in comp_to_bead:
                    b = comp_to_bead[comp]
                    bead[members[sel]] = offset + b
                    out.peak_log10[ids[b]] = float(m_fit[comp])
                    out.sd_log10[ids[b]] = float(sd_fit[comp])
        offset += len(ids)
    out.notes = notes
    return out
