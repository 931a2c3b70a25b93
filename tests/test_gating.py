"""Flow gating (zincassay.flow.gating) against the simulator's per-event truth.

The scatter gate must keep resting cells and blasts alike and cut debris and beads by their own
populations; the singlet gate must follow the FSC-A/FSC-H trend of bigger cells; dead cells go
by the viability dye. Bars: per generation, the share of live singlets kept differs by <= 2
points between generations; >= 99 % of dead cells, debris and beads and >= 95 % of doublets cut.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from zincassay.cfse.pipeline import load_gated
from zincassay.cfse.settings import CFSESettings
from zincassay.config import resolve_config
from zincassay.flow.gating import scatter_gate, singlet_gate
from zincassay.simulate.cfse import FORMATS, CFSEParams, write_cfse_sample

HARD = CFSEParams(n_events=60000, blast_shift=1.0, frac_dead=0.3, frac_debris=0.4, frac_doublet=0.1,
                  frac_beads=0.03, responder_fraction=0.6, activated_undivided=0.3, mean_divisions=3.0)


def _cfg(**over):
    return CFSESettings.from_config(resolve_config({"cfse": {"viability_channel": "LiveDead", **over}})["cfse"])


def _retention(truth, mask):
    kind, gen = truth["event_kind"], truth["event_generation"]
    live = kind == "live"
    shares = {g: 100 * mask[live & (gen == g)].mean() for g in range(gen.max() + 1) if (live & (gen == g)).sum() >= 300}
    cut = {k: 100 * (1 - mask[kind == k].mean()) for k in ("dead", "debris", "doublet", "bead") if (kind == k).any()}
    return shares, cut


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_generation_kept_alike_and_contaminants_cut(tmp_path, fmt):
    truth = write_cfse_sample(tmp_path / "s.fcs", np.random.default_rng(3), HARD, fmt=fmt)
    g = load_gated(tmp_path / "s.fcs", _cfg())
    shares, cut = _retention(truth, g.gating.mask)
    assert max(shares.values()) - min(shares.values()) <= 2.0, shares
    assert min(shares.values()) >= 97.0, shares
    assert cut["dead"] >= 99 and cut["debris"] >= 99 and cut["bead"] >= 99 and cut["doublet"] >= 95, cut


def test_blasts_are_not_dropped_by_the_scatter_gate_without_viability(tmp_path):
    """Without a viability channel the scatter gate alone still cuts debris and beads and keeps blasts."""
    p = replace(HARD, frac_dead=0.0)
    truth = write_cfse_sample(tmp_path / "s.fcs", np.random.default_rng(4), p)
    g = load_gated(tmp_path / "s.fcs", _cfg(viability_channel=None))
    shares, cut = _retention(truth, g.gating.mask)
    assert max(shares.values()) - min(shares.values()) <= 2.0, shares
    assert cut["debris"] >= 99 and cut["bead"] >= 99, cut
    pops = {p["kind"] for p in g.gating.gates[0].params["populations"]}
    assert {"cells", "debris", "beads"} <= pops


def test_scatter_gate_is_generic():
    """Two cell clusters 0.3 decades apart (resting, blasts), debris and a bead cluster in plain arrays."""
    rng = np.random.default_rng(0)
    rest = rng.normal([4.8, 4.2], [0.05, 0.08], (20000, 2))
    blast = rng.normal([5.1, 4.45], [0.05, 0.08], (20000, 2))
    debris = rng.normal([3.9, 3.7], [0.2, 0.25], (15000, 2))
    beads = rng.normal([4.45, 4.95], [0.01, 0.01], (1000, 2))
    xy = np.vstack([rest, blast, debris, beads])
    keep, params = scatter_gate(xy[:, 0], xy[:, 1])
    assert keep[:40000].mean() >= 0.995
    assert keep[40000:55000].mean() <= 0.01 and keep[55000:].mean() == 0.0
    assert params["polygons_log10"] and params["fsc_floor_log10"] < 4.6


def test_singlet_gate_follows_bigger_cells_and_cuts_doublets():
    rng = np.random.default_rng(1)
    size = rng.uniform(1.0, 2.0, 30000)  # blasts up to 2x
    fa = 60000 * size * 10 ** rng.normal(0, 0.05, size.size)
    fh = fa / (rng.normal(1.12, 0.025, size.size) * size**0.15)
    da = fa[:3000] * 2
    dh = fh[:3000] * 1.08
    keep, params, margin = singlet_gate(np.r_[fa, da], np.r_[fh, dh], np.ones(33000, bool), None)
    assert ((margin >= 0) == keep).all()
    assert keep[:30000].mean() >= 0.995
    big, small = size > 1.8, size < 1.2
    assert abs(keep[:30000][big].mean() - keep[:30000][small].mean()) <= 0.005
    assert keep[30000:].mean() <= 0.02
    assert params["trend_slope"] > 0


def test_without_a_viability_dye_dead_cells_are_cut_by_their_scatter(tmp_path):
    """Dead cells (smaller, more granular) form their own scatter population: cut when no dye is gated."""
    p = replace(HARD, blast_shift=0.0, frac_dead=0.2)
    truth = write_cfse_sample(tmp_path / "s.fcs", np.random.default_rng(5), p)
    g = load_gated(tmp_path / "s.fcs", _cfg(viability_channel=None))
    shares, cut = _retention(truth, g.gating.mask)
    assert max(shares.values()) - min(shares.values()) <= 2.0 and min(shares.values()) >= 95.0, shares
    assert cut["dead"] >= 90 and cut["debris"] >= 99, cut
    assert "dead" in {p["kind"] for p in g.gating.gates[0].params["populations"]}
