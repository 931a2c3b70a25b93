"""The FCS reader on real files from ~25 instruments (../shared/data/fcs-corpus; skipped if absent)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from conftest import FCS_CORPUS, corpus_files
from zincassay.io.fcs import FCSError, compensate, read_fcs

FILES = corpus_files()
pytestmark = pytest.mark.skipif(not FILES, reason="../shared/data/fcs-corpus is absent")


def _readme_facts() -> dict[str, dict[str, str]]:
    """events/params per file, from the corpus README's table."""
    facts: dict[str, dict[str, str]] = {}
    readme = FCS_CORPUS / "README.md"
    if not readme.is_file():
        return facts
    for line in readme.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 12 and cells[0] not in ("file", "---") and not set(cells[0]) <= {"-"}:
            facts[cells[0].split("/")[-1]] = {"events": cells[3], "params": cells[4]}
    return facts


FACTS = _readme_facts()


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_corpus_file_reads_with_documented_shape(path):
    try:
        d = read_fcs(path)
    except FCSError as exc:  # a refusal must name the file
        assert str(path) in str(exc)
        return
    fact = FACTS.get(path.name)
    if fact and fact["events"].isdigit():
        assert d.n_events == int(fact["events"])
    if fact and fact["params"].isdigit():
        assert d.events.shape[1] == int(fact["params"])
    assert np.isfinite(d.events).all()
    # integer channels without log amplification stay inside their $PnR
    if d.keywords["$DATATYPE"].strip() == "I":
        for j, row in enumerate(d.channels.itertuples(index=False)):
            if row[4].startswith("0") and row[5] == 1.0 and row[3] > 0:
                assert d.events[:, j].max() < row[3], f"channel {j + 1} exceeds $PnR"


def test_documented_quirks():
    by_name = {p.name: p for p in FILES}
    if "cytoflow__Accuri_-_C6.fcs" in by_name:
        d = read_fcs(by_name["cytoflow__Accuri_-_C6.fcs"])
        assert any("used HEADER, which matches $TOT" in w for w in d.warnings)
    if "cytoflow__itn_02.fcs" in by_name:  # float data with $PnE 4,0: not exponentiated
        d = read_fcs(by_name["cytoflow__itn_02.fcs"])
        assert d.events.max() < 1e5
    if "fcsparser__EY_2013-07-19_PBS_FCS_3.1_Well_A1.001.fcs" in by_name:
        d = read_fcs(by_name["fcsparser__EY_2013-07-19_PBS_FCS_3.1_Well_A1.001.fcs"])
        assert d.spill is None and "coefficients" in d.spill_problem
    if "FlowIO__B01_KC-A-W---91-US.fcs" in by_name:  # spill covers a subset of channels
        d = read_fcs(by_name["FlowIO__B01_KC-A-W---91-US.fcs"])
        assert d.spill is not None and len(d.spill.labels) < d.events.shape[1]
        comp = compensate(d)
        untouched = [i for i, n in enumerate(d.channel_names) if n not in d.spill.labels]
        np.testing.assert_array_equal(comp[:, untouched], d.events[:, untouched])
    if "cytoflow__Beckman_Coulter_-_Cytomics_FC500.LMD" in by_name:  # $PnB=10 in 16-bit words
        p = by_name["cytoflow__Beckman_Coulter_-_Cytomics_FC500.LMD"]
        d0 = read_fcs(p)
        assert d0.events[:, 0].max() <= 1023
        d1 = read_fcs(p, dataset=1)
        assert d1.version != d0.version or d1.keywords != d0.keywords
    if "fcsparser__Sample_Well_A02.fcs" in by_name:  # 4-decade log: values span 1..10^4
        d = read_fcs(by_name["fcsparser__Sample_Well_A02.fcs"])
        j = next(i for i, e in enumerate(d.channels["$PnE"]) if e.startswith("4"))
        assert 0.9 < d.events[:, j].min() and d.events[:, j].max() <= 1e4


def _flowio_array(path):
    flowio = pytest.importorskip("flowio")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fd = flowio.FlowData(str(path))
            return fd.as_array(preprocess=False), fd.as_array(preprocess=True)
        except Exception:  # flowio refuses many real files; that is its business
            return None


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_values_agree_with_flowio(path):
    arrays = _flowio_array(path)
    if arrays is None:
        pytest.skip("flowio cannot read this file")
    raw, pre = arrays
    d = read_fcs(path)
    if any("disagree" in w for w in d.warnings):
        pytest.skip("HEADER/TEXT offsets disagree; flowio reads the TEXT offsets")
    assert raw.shape == d.events.shape
    # flowio divides the time channel by $TIMESTEP; compare the others
    keep = [i for i, n in enumerate(d.channel_names) if not re.search("time", n, re.I)]
    ours = d.events[:, keep].astype(np.float64)
    if d.keywords["$DATATYPE"].strip() == "I":
        ref = pre[:, keep]  # flowio's $PnE/$PnG decoding is right for integer data
    else:  # flowio applies $PnE to floats too (wrong); compare with its raw values / gain
        ref = raw[:, keep] / d.channels["$PnG"].to_numpy()[keep]
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_cfse_gating_path_on_real_files(path):
    """Read, compensate and gate every real file with scatter channels: it finishes or stops
    with one clear message (ZincassayError naming the file)."""
    from zincassay.config import resolve_config
    from zincassay.errors import ZincassayError
    from zincassay.flow.gating import find_scatter_channels, gate_events
    from zincassay.io.fcs import CompensationError

    cfg = resolve_config({})["cfse"]["gates"]
    try:
        d = read_fcs(path)
    except FCSError:
        pytest.skip("not readable (covered above)")
    scatter = find_scatter_channels(d)
    if not (scatter.fsc and scatter.ssc):
        pytest.skip("no scatter channels")
    try:
        data = d.compensated() if d.spill is not None else d
    except CompensationError as exc:
        assert str(d.path) in str(exc) or "spill" in str(exc)
        data = d
    try:
        result = gate_events(data, lymphocyte_coverage=cfg["lymphocyte_coverage"])
    except ZincassayError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        return
    assert 0 < result.events_gated <= d.n_events
    assert [g.name for g in result.gates][:2] == ["lymphocytes", "singlets"]
