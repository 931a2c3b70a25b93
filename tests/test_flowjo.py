"""Gates in and out of FlowJo / GatingML (FlowKit), generation posterior, phenotype by generation, FCS export.

Reference counts: FlowKit's GatingML 2.0 compliance set (per-event truth in gate_ref/truth) and
FlowJo's own population counts stored in its workspaces (``count=`` of each Population).
"""

from __future__ import annotations

import dataclasses
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.path import Path as MplPath

from conftest import FCS_CORPUS
from zincassay.cfse.deconvolve import fit_generations, fit_parent
from zincassay.cfse.phenotype import (
    by_generation_figure,
    fluorescence_channels,
    phenotype_by_generation,
    positivity_threshold,
    weighted_median,
)
from zincassay.cfse.posterior import (
    assign_generations,
    component_probabilities,
    export_generations_fcs,
    generation_boundaries,
    generation_gate_shapes,
    generation_probabilities,
    mixing_matrix,
    most_probable_generation,
)
from zincassay.errors import ZincassayError
from zincassay.io.fcs import compensate, read_fcs
from zincassay.io.fcs_write import write_fcs
from zincassay.simulate.markers import MarkerParams, simulate_marker_events

flowkit = pytest.importorskip("flowkit", reason="the flowjo extra (FlowKit) is not installed")

from zincassay.flow.gates_io import (  # noqa: E402
    GatesFileError,
    PopulationNotFoundError,
    SampleNotInWorkspaceError,
    UnsupportedGateError,
    apply_gates,
    population_paths,
    require_flowkit,
)
from zincassay.flow.gatingml import auto_gate_shapes, gatingml_ids, write_gatingml  # noqa: E402

GATING = FCS_CORPUS / "gating"
needs_gating = pytest.mark.skipif(not GATING.is_dir(), reason="../shared/data/fcs-corpus/gating is absent")
# gate id -> truth file name where they differ (FlowKit's test suite pairs them the same way)
TRUTH_NAME = {"ParRectangle1": "ParQuadRect"}


def _truth(gate: str) -> np.ndarray:
    return np.loadtxt(GATING / "gate_ref" / "truth" / f"Results_{TRUTH_NAME.get(gate, gate)}.txt").astype(bool)


# --------------------------------------------------------------------------- gates in: references


@needs_gating
def test_gatingml_compliance_set_matches_per_event_truth():
    """Every population of FlowKit's GatingML 2.0 compliance set (all 51 gates: rectangles, ranges,
    polygons, ellipses, 3-D ellipsoid, quadrants, booleans, ratio/log/asinh/hyperlog/logicle
    transforms, spectrum matrices, nested parents) selects exactly the events of the truth files."""
    data = read_fcs(GATING / "FlowKit__gate_ref_data1.fcs")
    files = [GATING / "gate_ref/gml" / f for f in ("gml_all_gates.xml", "gml_parent_quadrant_rect_gate.xml",
                                                   "gml_ellipsoid3d_gate.xml")]
    checked = set()
    for f in files:
        for pop in population_paths(f):
            gate = pop.rsplit("/", 1)[1]
            if gate in checked or not (GATING / "gate_ref/truth" / f"Results_{TRUTH_NAME.get(gate, gate)}.txt").exists():
                continue
            got = apply_gates(f, pop, data)
            truth = _truth(gate)
            assert got.mask.sum() == truth.sum(), pop
            assert np.array_equal(got.mask, truth), pop
            checked.add(gate)
    assert len(checked) >= 50  # every gate with a truth file was checked


def _flowjo_counts(wsp: Path) -> dict[str, int]:
    """FlowJo's own count of each population of the (single) sample in a workspace."""
    from lxml import etree

    out = {}
    node = etree.parse(str(wsp)).getroot().find(".//SampleNode")
    for pop in node.iter("Population"):
        names = [*[p.attrib["name"] for p in pop.iterancestors("Population")][::-1], pop.attrib["name"]]
        out["/" + "/".join(names)] = int(pop.attrib["count"])
    return out


@needs_gating
@pytest.mark.parametrize("wsp", ["simple_diamond_example_quad_gate.wsp", "test_data_diamond_asinh_rect.wsp",
                                 "test_data_diamond_biex_rect.wsp"])
def test_flowjo_workspaces_give_flowjo_counts(wsp):
    """Linear quadrant rectangles, ArcSinh and FlowJo biex scales: the counts FlowJo stored."""
    counts = _flowjo_counts(GATING / wsp)
    assert counts and all(c > 0 for c in counts.values())
    assert sorted(counts) == population_paths(GATING / wsp)
    for pop, expected in counts.items():
        got = apply_gates(GATING / wsp, pop, GATING / "test_data_diamond_01.fcs")
        assert got.mask.sum() == expected, pop
        assert got.sample_id == "test_data_diamond_01.fcs"


@needs_gating
def test_flowjo_polygon_and_rectangle_workspace_recounted_independently():
    """FlowJo did not store counts for this sample (count=-1): recount each gate with numpy from
    the shape FlowKit parsed (GatingML flin: (x + A) / (T + A))."""
    wsp, fcs = GATING / "simple_poly_and_rect.wsp", GATING / "data_set_simple_line_100.fcs"
    data = read_fcs(fcs)
    for pop in ("/poly1", "/rect1"):
        got = apply_gates(wsp, pop, data)
        g = got.gates[-1]
        xy = np.column_stack([data.column(d.channel) for d in g.dimensions]).astype(float)
        for j, d in enumerate(g.dimensions):
            assert d.transform["type"] == "flin"
            xy[:, j] = (xy[:, j] + d.transform["A"]) / (d.transform["T"] + d.transform["A"])
        if g.kind == "polygon":
            inside = MplPath(g.vertices).contains_points(xy)
        else:
            inside = np.all([(xy[:, j] >= d.min) & (xy[:, j] < d.max) for j, d in enumerate(g.dimensions)], axis=0)
        assert got.mask.sum() == inside.sum()
        np.testing.assert_allclose(got.coordinates[-1], xy, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- gates in: our own workspace


def _own_sample(path: Path, seed: int = 3, n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Two scatter and two fluorescence channels with spillover; returns (true, observed)."""
    rng = np.random.default_rng(seed)
    true = np.column_stack([
        rng.lognormal(np.log(60000), 0.25, n), rng.lognormal(np.log(15000), 0.4, n),
        rng.lognormal(np.log(3000), 1.0, n), rng.lognormal(np.log(800), 1.0, n),
    ])
    spill = np.array([[1.0, 0.2], [0.05, 1.0]])
    obs = true.copy()
    obs[:, 2:] = true[:, 2:] @ spill
    from zincassay.io.fcs import SpillMatrix

    write_fcs(path, obs.astype(np.float32), ["FSC-A", "SSC-A", "FITC-A", "PE-A"], pns=["", "", "CFSE", "CD25"],
              spill=SpillMatrix(("FITC-A", "PE-A"), spill), keywords={"$FIL": path.name})
    return true, obs


def _own_workspace(path: Path, sample_name: str, *, extra_gate: str = "") -> None:
    """A FlowJo 10.6-style workspace: a spillover matrix without the 'spectral' attribute (as
    FlowJo < 10.7 writes it), FlowJo log scale on the compensated channels, a lymphocyte polygon
    on linear scatter and a CD25+ rectangle in it (vertices/ranges in linear units, as FlowJo
    stores them)."""
    text = f"""\
    <?xml version="1.0" encoding="UTF-8"?>
    <Workspace version="20.0" flowJoVersion="10.6.2"
      xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating"
      xmlns:transforms="http://www.isac-net.org/std/Gating-ML/v2.0/transformations"
      xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">
      <Groups>
        <GroupNode name="All Samples" owningGroup="All Samples" count="-1">
          <Group name="All Samples"><SampleRefs><SampleRef sampleID="1"/></SampleRefs></Group>
        </GroupNode>
      </Groups>
      <SampleList>
        <Sample>
          <DataSet uri="file:{sample_name}" sampleID="1"/>
          <transforms:spilloverMatrix prefix="Comp-" name="Acquisition-defined" suffix="" transforms:id="M1">
            <data-type:parameters>
              <data-type:parameter data-type:name="FITC-A"/><data-type:parameter data-type:name="PE-A"/>
            </data-type:parameters>
            <transforms:spillover data-type:parameter="FITC-A">
              <transforms:coefficient data-type:parameter="FITC-A" transforms:value="1"/>
              <transforms:coefficient data-type:parameter="PE-A" transforms:value="0.2"/>
            </transforms:spillover>
            <transforms:spillover data-type:parameter="PE-A">
              <transforms:coefficient data-type:parameter="FITC-A" transforms:value="0.05"/>
              <transforms:coefficient data-type:parameter="PE-A" transforms:value="1"/>
            </transforms:spillover>
          </transforms:spilloverMatrix>
          <Transformations>
            <transforms:linear transforms:minRange="0" transforms:maxRange="262144" gain="1">
              <data-type:parameter data-type:name="FSC-A"/></transforms:linear>
            <transforms:linear transforms:minRange="0" transforms:maxRange="262144" gain="1">
              <data-type:parameter data-type:name="SSC-A"/></transforms:linear>
            <transforms:log transforms:offset="1" transforms:decades="5">
              <data-type:parameter data-type:name="FITC-A"/></transforms:log>
            <transforms:log transforms:offset="1" transforms:decades="5">
              <data-type:parameter data-type:name="PE-A"/></transforms:log>
          </Transformations>
          <Keywords/>
          <SampleNode name="{sample_name}" owningGroup="" count="4000" sampleID="1">
            <Subpopulations>
              <Population name="Lymphocytes" owningGroup="" count="-1">
                <Gate gating:id="G1">
                  <gating:PolygonGate eventsInside="1" gating:id="G1">
                    <gating:dimension><data-type:fcs-dimension data-type:name="FSC-A"/></gating:dimension>
                    <gating:dimension><data-type:fcs-dimension data-type:name="SSC-A"/></gating:dimension>
                    <gating:vertex><gating:coordinate data-type:value="40000"/><gating:coordinate data-type:value="5000"/></gating:vertex>
                    <gating:vertex><gating:coordinate data-type:value="90000"/><gating:coordinate data-type:value="8000"/></gating:vertex>
                    <gating:vertex><gating:coordinate data-type:value="85000"/><gating:coordinate data-type:value="40000"/></gating:vertex>
                    <gating:vertex><gating:coordinate data-type:value="45000"/><gating:coordinate data-type:value="30000"/></gating:vertex>
                  </gating:PolygonGate>
                </Gate>
                <Subpopulations>
                  <Population name="CD25+" owningGroup="" count="-1">
                    <Gate gating:id="G2">
                      <gating:RectangleGate eventsInside="1" gating:id="G2">
                        <gating:dimension gating:min="1500"><data-type:fcs-dimension data-type:name="Comp-PE-A"/></gating:dimension>
                        <gating:dimension gating:min="10" gating:max="20000"><data-type:fcs-dimension data-type:name="Comp-FITC-A"/></gating:dimension>
                      </gating:RectangleGate>
                    </Gate>
                  </Population>
                  {extra_gate}
                </Subpopulations>
              </Population>
            </Subpopulations>
          </SampleNode>
        </Sample>
      </SampleList>
    </Workspace>
    """
    path.write_text(textwrap.dedent(text))


def test_own_workspace_compensation_log_scale_and_nesting(tmp_path):
    _true, obs = _own_sample(tmp_path / "tube_01.fcs")
    _own_workspace(tmp_path / "lab.wsp", "tube_01.fcs")
    got = apply_gates(tmp_path / "lab.wsp", "/Lymphocytes/CD25+", tmp_path / "tube_01.fcs")
    # independent count: polygon on linear scatter ([0, 262144] -> [0, 1]), FlowJo log on compensated
    scale = 262144.0
    verts = np.array([[40000, 5000], [90000, 8000], [85000, 40000], [45000, 30000]]) / scale
    lymph = MplPath(verts).contains_points(obs[:, :2].astype(np.float32).astype(float) / scale)
    comp = compensate(read_fcs(tmp_path / "tube_01.fcs"))

    def flog(x):
        return np.log10(np.maximum(x, 1.0)) / 5

    cd25 = (flog(comp[:, 3]) >= flog(1500)) & (flog(comp[:, 2]) >= flog(10)) & (flog(comp[:, 2]) < flog(20000))
    assert 300 < lymph.sum() < 3900 and 0 < (lymph & cd25).sum() < lymph.sum()  # gates that cut
    assert [int(m.sum()) for m in got.masks] == [int(lymph.sum()), int((lymph & cd25).sum())]
    assert got.gates[1].dimensions[0].compensation == "Acquisition-defined"
    assert got.gates[1].dimensions[0].transform == {"type": "flowjo_log", "offset": 1.0, "decades": 5.0}
    np.testing.assert_allclose(got.comp_matrices["Acquisition-defined"].matrix, [[1, 0.2], [0.05, 1]])
    assert got.counts() == {"/Lymphocytes": int(lymph.sum()), "/Lymphocytes/CD25+": int((lymph & cd25).sum())}


def test_errors_are_one_line_and_name_the_fix(tmp_path):
    _own_sample(tmp_path / "tube_01.fcs")
    _own_workspace(tmp_path / "lab.wsp", "tube_01.fcs")
    with pytest.raises(PopulationNotFoundError) as e:
        apply_gates(tmp_path / "lab.wsp", "/Lymphocytes/Live", tmp_path / "tube_01.fcs")
    msg = str(e.value)
    assert "/Lymphocytes/Live does not exist" in msg and "/Lymphocytes, /Lymphocytes/CD25+" in msg and "\n" not in msg
    _own_sample(tmp_path / "tube_02.fcs")
    with pytest.raises(SampleNotInWorkspaceError) as e:
        apply_gates(tmp_path / "lab.wsp", "/Lymphocytes", tmp_path / "tube_02.fcs")
    assert "'tube_02.fcs' is not in the workspace" in str(e.value) and "'tube_01.fcs'" in str(e.value)
    # naming the workspace sample explicitly works
    assert apply_gates(tmp_path / "lab.wsp", "/Lymphocytes", tmp_path / "tube_02.fcs", sample_id="tube_01.fcs").mask.any()
    (tmp_path / "notes.xml").write_text("<notes/>")
    with pytest.raises(GatesFileError, match="neither a FlowJo workspace"):
        apply_gates(tmp_path / "notes.xml", "/A", tmp_path / "tube_01.fcs")
    (tmp_path / "broken.wsp").write_text("<Workspace")
    with pytest.raises(GatesFileError, match="not an XML file"):
        apply_gates(tmp_path / "broken.wsp", "/A", tmp_path / "tube_01.fcs")


def test_unsupported_gate_refused_on_path_dropped_elsewhere(tmp_path):
    _own_sample(tmp_path / "tube_01.fcs")
    spider = """<Population name="Blasts" owningGroup="" count="-1"><Gate gating:id="G3">
        <gating:SpiderGate gating:id="G3"/></Gate></Population>"""
    _own_workspace(tmp_path / "lab.wsp", "tube_01.fcs", extra_gate=spider)
    with pytest.raises(UnsupportedGateError, match=r"/Lymphocytes/Blasts is a SpiderGate"):
        apply_gates(tmp_path / "lab.wsp", "/Lymphocytes/Blasts", tmp_path / "tube_01.fcs")
    ok = apply_gates(tmp_path / "lab.wsp", "/Lymphocytes/CD25+", tmp_path / "tube_01.fcs")
    assert ok.mask.any()


def test_missing_flowkit_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "flowkit", None)
    with pytest.raises(ZincassayError, match=r'\.\[flowjo\]'):
        require_flowkit()


# --------------------------------------------------------------------------- gates out


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """A simulated CFSE tube, gated by the automatic gates and deconvolved, for both file flavours."""
    from zincassay.cfse.pipeline import load_gated, summarise_control
    from zincassay.cfse.settings import CFSESettings
    from zincassay.config import resolve_config
    from zincassay.simulate.cfse import CFSEParams, write_cfse_sample

    tmp = tmp_path_factory.mktemp("flowjo")
    cfg = CFSESettings.from_config(resolve_config({"cfse": {"viability_channel": "LiveDead"}})["cfse"])
    out = {}
    for k, fmt in enumerate(("fcs3.1-float", "fcs3.0-int32")):
        rng = np.random.default_rng(40 + k)
        p = CFSEParams(n_events=15000)
        write_cfse_sample(tmp / f"u{k}.fcs", rng, p, role="unstimulated", fmt=fmt)
        write_cfse_sample(tmp / f"n{k}.fcs", rng, p, role="unstained", fmt=fmt)
        write_cfse_sample(tmp / f"s{k}.fcs", rng, p, role="sample", fmt=fmt)
        unstim = load_gated(tmp / f"u{k}.fcs", cfg)
        unstained = summarise_control(load_gated(tmp / f"n{k}.fcs", cfg), "unstained")
        g = load_gated(tmp / f"s{k}.fcs", cfg)
        fit = fit_generations(g.cfse, fit_parent(unstim.cfse), np.asarray(unstained.autofluorescence.quantiles))
        assert g.data.compensation != "none"  # the pipeline's events are compensated
        out[fmt] = (tmp, g, fit, read_fcs(tmp / f"s{k}.fcs"))
    return out


@pytest.mark.parametrize("fmt", ["fcs3.1-float", "fcs3.0-int32"])
def test_gatingml_round_trip_counts_per_gate_and_generation(analysed, fmt):
    tmp, g, fit, raw = analysed[fmt]
    fsc_h_max = 2 * max(float(g.data.column("FSC-H").max()), 262144.0)
    shapes = auto_gate_shapes(g.gating, fsc_h_max=fsc_h_max, compensated=g.data.spill.labels)
    assert [s.population for s in shapes] == ["/lymphocytes", "/lymphocytes/singlets", "/lymphocytes/singlets/live"]
    bounds = generation_boundaries(fit)
    hard = assign_generations(g.cfse, bounds)
    shapes += generation_gate_shapes(bounds, channel="FITC-A", compensation="FCS", parent=shapes[-1].population)
    xml = write_gatingml(tmp / f"gates_{fmt}.xml", shapes)
    kept = {x.name: x.events_kept for x in g.gating.gates}
    cumulative = np.ones(g.data.n_events, bool)
    for s in shapes:
        back = apply_gates(xml, s.population, raw)  # FlowKit compensates the events as read
        if s.name.startswith("generation_"):
            gen = int(s.name.split("_")[1])
            assert back.mask.sum() == np.sum(hard == gen), s.population
            assert np.array_equal(back.mask[g.gating.mask], hard == gen)
        else:
            assert back.mask.sum() == kept[s.name], s.population
            cumulative = back.mask
    assert np.array_equal(cumulative, g.gating.mask)  # the very same events, not just as many
    assert len({s.population for s in shapes}) == len(gatingml_ids(shapes))


@needs_gating
def test_imported_gates_written_back_select_the_same_events(tmp_path):
    data = read_fcs(GATING / "FlowKit__gate_ref_data1.fcs")
    for pop in ("/ScaleRect1/ScalePar1", "/Ellipse1", "/Polygon4", "/RatRange1a", "/Rectangle3",
                "/Quadrant2/FSCD-FL1P", "/ScaleRange4c", "/Ellipsoid3D"):
        name = "gml_ellipsoid3d_gate.xml" if pop == "/Ellipsoid3D" else "gml_all_gates.xml"
        imp = apply_gates(GATING / "gate_ref/gml" / name, pop, data)
        xml = write_gatingml(tmp_path / "gates.xml", imp.gates, matrices=imp.comp_matrices)
        again = apply_gates(xml, imp.gates[-1].population.replace("/Quadrant2", ""), data)
        assert np.array_equal(again.mask, imp.mask), pop
    biex = apply_gates(GATING / "test_data_diamond_biex_rect.wsp", "/upper_right", GATING / "test_data_diamond_01.fcs")
    with pytest.raises(UnsupportedGateError, match=r"flowjo_biex scale has no GatingML 2\.0 equivalent"):
        write_gatingml(tmp_path / "biex.xml", biex.gates)
    asinh = apply_gates(GATING / "test_data_diamond_asinh_rect.wsp", "/upper_right", GATING / "test_data_diamond_01.fcs")
    xml = write_gatingml(tmp_path / "asinh.xml", asinh.gates)
    assert apply_gates(xml, "/upper_right", GATING / "test_data_diamond_01.fcs").mask.sum() == 50559


def test_own_workspace_gates_written_back(tmp_path):
    """FlowJo's log scale becomes GatingML flog; the workspace matrix a spectrumMatrix."""
    _own_sample(tmp_path / "tube_01.fcs")
    _own_workspace(tmp_path / "lab.wsp", "tube_01.fcs")
    imp = apply_gates(tmp_path / "lab.wsp", "/Lymphocytes/CD25+", tmp_path / "tube_01.fcs")
    xml = write_gatingml(tmp_path / "gates.xml", imp.gates, matrices=imp.comp_matrices)
    ids = gatingml_ids(imp.gates)  # GatingML ids are XML names: "CD25+" is written "CD25_"
    assert ids == {"/Lymphocytes": "Lymphocytes", "/Lymphocytes/CD25+": "CD25_"}
    again = apply_gates(xml, "/Lymphocytes/CD25_", tmp_path / "tube_01.fcs")
    assert [int(m.sum()) for m in again.masks] == [int(m.sum()) for m in imp.masks]


# --------------------------------------------------------------------------- posterior and phenotype


def _tube(seed: int, **kw):
    rng = np.random.default_rng(seed)
    p = MarkerParams(**kw)
    unstim, _, _ = simulate_marker_events(rng, p, "unstimulated")
    unstained, unstained_marker, _ = simulate_marker_events(rng, p, "unstained")
    cfse, marker, gen = simulate_marker_events(rng, p)
    fit = fit_generations(cfse, fit_parent(unstim), unstained, max_generations=10)
    return cfse, marker, gen, unstained_marker, fit


@pytest.mark.parametrize(("seed", "kw"), [
    (11, {}),
    (12, {"peak_ratio": 1.8, "marker_fold": 2.0}),
    (13, {"marker_fold": 0.7, "marker_base": 5000.0, "cv_log10": 0.085}),
    (14, {"n_events": 12000, "mean_divisions": 4.0}),
])
def test_by_generation_recovers_marker_median_within_5_percent(seed, kw):
    cfse, marker, gen, unstained_marker, fit = _tube(seed, **kw)
    prob = component_probabilities(cfse, fit)
    ng = fit.cells.size
    thr = positivity_threshold(unstained_marker)
    table = phenotype_by_generation({"PE-A": marker}, prob, n_generations=ng, mixing=mixing_matrix(fit),
                                    markers={"PE-A": "CD25"}, thresholds={"PE-A": (thr, "unstained q0.995")},
                                    sample_id="s1")
    assert (table["estimate"] == "unmixed").all()
    frac = np.bincount(gen, minlength=ng) / gen.size
    checked = 0
    for g in range(ng):
        if frac[g] < 0.02:
            continue
        row = table[table["generation"] == g].iloc[0]
        truth = np.median(marker[gen == g])
        assert abs(row["median"] / truth - 1) <= 0.05, (g, row["median"], truth)
        assert abs(row["pct_positive"] - 100 * np.mean(marker[gen == g] > thr)) <= 2.0, g
        assert abs(row["cells"] - np.sum(gen == g)) <= 0.05 * np.sum(gen == g) + 20, g
        checked += 1
    assert checked >= 5
    assert list(table.columns[:9]) == ["sample_id", "generation", "channel", "marker", "median", "pct_positive",
                                       "threshold", "threshold_source", "cells"]


def test_posterior_is_consistent_with_the_fit():
    cfse, _marker, gen, _u, fit = _tube(21)
    prob = generation_probabilities(cfse, fit)
    full = component_probabilities(cfse, fit)
    np.testing.assert_allclose(full.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(prob, full[:, : fit.cells.size])
    # expected events per generation from the posterior match the fitted amplitudes
    big = fit.cells > 0.02 * fit.cells.sum()
    np.testing.assert_allclose(prob.sum(axis=0)[big], fit.cells[big], rtol=0.03)
    m = mixing_matrix(fit)
    used = fit.components.sum(axis=1) > 0
    np.testing.assert_allclose(m[:, used].sum(axis=0), 1.0, atol=1e-9)
    b = generation_boundaries(fit)
    assert np.all(np.diff(b) <= 0) and b.size == fit.cells.size - 1
    # each boundary lies between the two generations' peaks
    assert np.all((np.log10(b) <= fit.generation_mu[:-1] + 1e-9) & (np.log10(b) >= fit.generation_mu[1:] - 1e-9))
    hard = assign_generations(cfse, b)
    ok = frac_ok = np.bincount(gen, minlength=fit.cells.size) / gen.size >= 0.05
    agree = np.mean(hard[np.isin(gen, np.nonzero(ok)[0])] == gen[np.isin(gen, np.nonzero(frac_ok)[0])])
    assert agree > 0.9
    g, p = most_probable_generation(prob)
    assert np.mean(g[np.isin(gen, np.nonzero(ok)[0])] == gen[np.isin(gen, np.nonzero(ok)[0])]) > 0.9
    assert np.all((p >= 0) & (p <= 1))


def test_assign_generations_uses_half_open_ranges():
    b = np.array([100.0, 50.0, 25.0])
    x = np.array([1000, 100, 99.999, 50, 49, 25, 24.9, -5])
    np.testing.assert_array_equal(assign_generations(x, b), [0, 0, 1, 1, 2, 2, 3, 3])


def test_weighted_median_and_threshold():
    rng = np.random.default_rng(0)
    x = rng.normal(size=1001)
    assert weighted_median(x, np.ones_like(x)) == pytest.approx(np.median(x))
    assert weighted_median([1.0, 2.0, 3.0], [0.0, 0.0, 5.0]) == 3.0
    assert np.isnan(weighted_median([1.0], [0.0]))
    assert positivity_threshold(np.arange(1001.0), positive_quantile=0.9) == pytest.approx(900.0)


def test_by_generation_figure_and_fluorescence_channels(tmp_path):
    cfse, marker, _gen, _u, fit = _tube(31, n_events=8000)
    prob = component_probabilities(cfse, fit)
    table = phenotype_by_generation({"PE-A": marker, "APC-A": marker * 0.5}, prob, n_generations=fit.cells.size)
    assert (table["estimate"] == "weighted").all() and table["pct_positive"].isna().all()
    fig = by_generation_figure(table, title="s1")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    _own_sample(tmp_path / "t.fcs")
    assert fluorescence_channels(read_fcs(tmp_path / "t.fcs"), exclude=["CFSE"]) == ["PE-A"]


# --------------------------------------------------------------------------- gated events out


@pytest.mark.parametrize("fmt", ["fcs3.1-float", "fcs3.0-int32"])
@pytest.mark.parametrize("events", ["as read", "compensated"])
def test_export_fcs_round_trip(analysed, fmt, events, tmp_path):
    import flowio

    _tmp, g, fit, raw = analysed[fmt]
    data = raw if events == "as read" else g.data
    prob = generation_probabilities(g.cfse, fit)
    out = export_generations_fcs(tmp_path / "live.fcs", data, g.gating.mask, prob)
    back = read_fcs(out)
    n = int(g.gating.mask.sum())
    assert back.n_events == n and back.version == "FCS3.1"
    assert back.channel_names == [*data.channel_names, "generation", "generation_probability"]
    np.testing.assert_array_equal(back.events[:, :-2], data.events[g.gating.mask].astype(back.events.dtype))
    gen, p = most_probable_generation(prob)
    np.testing.assert_array_equal(back.column("generation"), gen)
    np.testing.assert_allclose(back.column("generation_probability"), p, rtol=1e-6)
    if events == "as read":  # the spill matrix travels, so FlowJo compensates as usual
        assert back.spill is not None and back.spill.labels == raw.spill.labels
    else:  # already compensated: no matrix, or it would be applied twice
        assert back.spill is None and back.keywords["ZINCASSAY_COMPENSATION"] == g.data.compensation
        with pytest.raises(ZincassayError, match="already compensated"):
            apply_gates(GATING / "x.xml", "/a", g.data)
    assert back.keywords["$FIL"] == "live.fcs"
    fio = flowio.FlowData(str(out))
    assert fio.event_count == n and fio.channel_count == len(back.channel_names)
    sample = flowkit.Sample(str(out))
    np.testing.assert_allclose(sample.get_channel_events("generation", source="raw"), gen)
    # the exported events re-gated with the generation gates give the same generation counts
    bounds = generation_boundaries(fit)
    shapes = generation_gate_shapes(bounds, channel="FITC-A", compensation="FCS")
    xml = write_gatingml(tmp_path / "gen.xml", shapes)
    hard = assign_generations(g.cfse, bounds)
    for k, s in enumerate(shapes):
        assert apply_gates(xml, s.population, out).mask.sum() == np.sum(hard == k)


# --------------------------------------------------------------------------- the pipeline with imported gates


def test_gates_from_config_names_missing_file_and_unknown_population(tmp_path, monkeypatch):
    from zincassay.config import resolve_config
    from zincassay.errors import ValidationError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError, match=r"cfse\.gates_from\.file: 'lab\.wsp' does not exist"):
        resolve_config({"cfse": {"gates_from": {"file": "lab.wsp", "population": "/Live"}}})
    _own_sample(tmp_path / "tube_01.fcs")
    _own_workspace(tmp_path / "lab.wsp", "tube_01.fcs")
    with pytest.raises(ValidationError, match=r"'/Lymphocytes/CD26\+' is not in lab\.wsp; its populations: "
                                              r"/Lymphocytes, /Lymphocytes/CD25\+"):
        resolve_config({"cfse": {"gates_from": {"file": "lab.wsp", "population": "/Lymphocytes/CD26+"}}})
    ok = resolve_config({"cfse": {"gates_from": {"file": "lab.wsp", "population": "root/Lymphocytes"}}})
    assert ok["cfse"]["gates_from"]["population"] == "root/Lymphocytes"


def test_pipeline_gates_out_and_back_in(analysed, tmp_path):
    """A sample's own gates, written by :func:`gate_shapes` and read back through ``cfse.gates_from``,
    select as many events; the gating figure draws each imported gate; thresholds from the config
    win over the unstained control's."""
    from zincassay.cfse.figures import gating_figure
    from zincassay.cfse.pipeline import ControlSummary, analyse_sample, gate_shapes, load_gated, phenotype
    from zincassay.cfse.settings import CFSESettings
    from zincassay.config import resolve_config
    from zincassay.flow.settings import GatesFrom

    tmp, g, _fit, _raw = analysed["fcs3.1-float"]
    cfg = CFSESettings.from_config(resolve_config({"cfse": {"viability_channel": "LiveDead",
                                                            "bootstrap_replicates": 0}})["cfse"])
    unstim = ControlSummary("u", "unstimulated", "u.fcs", 1, 1, "none", [], [], parent=fit_parent(
        load_gated(tmp / "u0.fcs", cfg).cfse))
    r = analyse_sample(g, cfg, unstim, None)
    shapes, matrices = gate_shapes(r, cfg)
    n_gen = r.fit.cells.size
    assert [s.name for s in shapes[:3]] == ["lymphocytes", "singlets", "live"]
    assert [s.name for s in shapes[3:]] == [f"generation_{k}" for k in range(n_gen)]
    assert shapes[3].dimensions[0].compensation == "FCS" and not matrices
    xml = write_gatingml(tmp_path / "gates.xml", shapes, matrices=matrices)
    imported = dataclasses.replace(cfg, gates_from=GatesFrom(str(xml), "/lymphocytes/singlets/live"),
                                   marker_thresholds={"PE-A": 1000.0})
    g2 = load_gated(tmp / "s0.fcs", imported)
    assert g2.imported is not None and g2.gating.events_gated == g.gating.events_gated
    assert [x.events_kept for x in g2.gating.gates] == [x.events_kept for x in g.gating.gates]
    fig = gating_figure(g2, "s0")
    assert len(fig.axes) == 3 and "gates from gates.xml" in fig.texts[0].get_text()
    r2 = analyse_sample(g2, imported, unstim, None)
    table = phenotype(r2, imported, None, "s0")
    pe = table[table["channel"] == "PE-A"]
    assert len(pe) == r2.fit.cells.size and (pe["threshold"] == 1000.0).all()
    assert (pe["threshold_source"] == "config").all()
    assert pe.loc[pe["cells"] > 1, "pct_positive"].between(0, 100).all()  # empty generations have none
    no_thr = table[table["channel"] != "PE-A"]
    assert (no_thr["threshold_source"] == "none").all() and no_thr["pct_positive"].isna().all()
