"""FCS reader: synthetic round trips for every flavour, error handling, and fuzzing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zincassay.io.fcs import (
    CompensationError,
    FCSError,
    NotFCSError,
    SpillMatrix,
    compensate,
    parse,
    read_fcs,
    read_spill_csv,
)
from zincassay.io.fcs_write import fcs_bytes, write_fcs

RNG = np.random.default_rng(7)
NAMES = ["FSC-A", "SSC-A", "FITC-A", "PE-A"]
STAINS = ["", "", "CFSE", "CD4"]


def _floats(n: int = 500, p: int = 4) -> np.ndarray:
    return RNG.lognormal(8, 1.5, size=(n, p)).astype(np.float32)


@pytest.mark.parametrize("version", ["2.0", "3.0", "3.1"])
@pytest.mark.parametrize("byteorder", ["big", "little"])
@pytest.mark.parametrize("datatype", ["F", "D"])
def test_float_round_trip(tmp_path, version, byteorder, datatype):
    ev = _floats()
    path = write_fcs(tmp_path / "f.fcs", ev, NAMES, pns=STAINS, datatype=datatype,
                     byteorder=byteorder, version=version)
    d = read_fcs(path)
    assert d.version == f"FCS{version}"
    assert d.events.shape == ev.shape
    np.testing.assert_array_equal(d.events, ev.astype(d.events.dtype))
    assert d.events.dtype == (np.float32 if datatype == "F" else np.float64)
    assert d.warnings == []


@pytest.mark.parametrize("bits", [8, 16, 24, 32])
@pytest.mark.parametrize("byteorder", ["big", "little"])
def test_integer_round_trip(tmp_path, bits, byteorder):
    hi = 2**bits - 1
    ev = RNG.integers(0, hi, size=(300, 4), endpoint=True).astype(np.float64)
    path = write_fcs(tmp_path / "i.fcs", ev, NAMES, datatype="I", byteorder=byteorder,
                     pnb=[bits] * 4, pnr=[2.0**bits] * 4, version="3.0")
    d = read_fcs(path)
    np.testing.assert_array_equal(d.events, ev)


def test_mixed_widths_and_masks(tmp_path):
    widths = [8, 16, 24, 32]
    ranges = [256.0, 1024.0, 2.0**24, 2.0**20]  # 16-bit with 10-bit range; 32-bit with 20-bit range
    raw = np.column_stack([RNG.integers(0, 2**w, size=200, dtype=np.uint64) for w in widths]).astype(np.float64)
    path = write_fcs(tmp_path / "m.fcs", raw, NAMES, datatype="I", pnb=widths, pnr=ranges)
    d = read_fcs(path)
    expected = raw.astype(np.uint64) & np.array([255, 1023, 2**24 - 1, 2**20 - 1], dtype=np.uint64)
    np.testing.assert_array_equal(d.events, expected.astype(np.float64))


def test_mask_drops_high_bits_uniform_width(tmp_path):
    raw = np.array([[1023 + 4096, 5], [7 + 2048, 1024]], dtype=np.float64)  # extra bits above $PnR
    path = write_fcs(tmp_path / "k.fcs", raw, NAMES[:2], datatype="I", pnb=[16, 16], pnr=[1024, 1024])
    np.testing.assert_array_equal(read_fcs(path).events, [[1023, 5], [7, 0]])


def test_log_amplification_integer_only(tmp_path):
    # 1024-channel 4-decade log, as on FACSCalibur; f2 = 0 must read as 1
    ch = np.array([[0.0, 256.0], [512.0, 1023.0]])
    path = write_fcs(tmp_path / "log.fcs", ch, ["FL1-H", "FL2-H"], datatype="I", pnb=[16, 16],
                     pnr=[1024, 1024], pne=["4,1", "4,0"], version="2.0")
    d = read_fcs(path)
    np.testing.assert_allclose(d.events, 10 ** (4 * ch / 1024), rtol=1e-6)
    # the same $PnE on float data is ignored, with a warning
    path = write_fcs(tmp_path / "logf.fcs", ch, ["FL1-H", "FL2-H"], datatype="F", pne=["4,0", "4,0"])
    d = read_fcs(path)
    np.testing.assert_array_equal(d.events, ch)
    assert any("$PnE" in w for w in d.warnings)


def test_gain_divides_linear_values(tmp_path):
    ev = np.array([[100.0, 100.0]], dtype=np.float32)
    path = write_fcs(tmp_path / "g.fcs", ev, ["A", "B"], png=[2.0, 1.0])
    np.testing.assert_allclose(read_fcs(path).events, [[50.0, 100.0]])


def test_offsets_only_in_text(tmp_path):
    ev = _floats()
    path = write_fcs(tmp_path / "big.fcs", ev, NAMES, offsets_in_text_only=True)
    assert path.read_bytes()[26:42].split() == [b"0", b"0"]  # HEADER data offsets are 0
    np.testing.assert_array_equal(read_fcs(path).events, ev)


@pytest.mark.parametrize("delimiter", ["/", "|", "\\", "\x0c"])
def test_delimiters_and_escapes(tmp_path, delimiter):
    ev = _floats(20)
    kw = {"$FIL": f"a{delimiter}b", "$COM": "µ-litre"}
    path = write_fcs(tmp_path / "d.fcs", ev, NAMES, pns=["x/y", "", "CFSE", "CD4"], keywords=kw,
                     delimiter=delimiter)
    d = read_fcs(path)
    assert d.keywords["$FIL"] == f"a{delimiter}b"
    assert d.keywords["$COM"] == "µ-litre"
    assert d.channels["$PnS"].iloc[0] == "x/y"
    np.testing.assert_array_equal(d.events, ev)


def test_latin1_text_falls_back(tmp_path):
    blob = fcs_bytes(_floats(5), NAMES, keywords={"$COM": "XXXX"})
    blob = blob.replace(b"XXXX", "µl".encode("latin-1") + b"  ")
    p = tmp_path / "l1.fcs"
    p.write_bytes(blob)
    assert read_fcs(p).keywords["$COM"].startswith("µl")


def test_whitespace_and_lowercase_keywords(tmp_path):
    ev = _floats(10)
    blob = fcs_bytes(ev, NAMES, keywords={"$FIL": "x"})
    text_end = int(blob[18:26])
    text = blob[58 : text_end + 1].decode()
    text = text.replace("/$PAR/", "/   $par/").replace("/$P1N/", "/\n$p1n/")
    text = text.replace("/$DATATYPE/", "/$DATATYPE/"[:-1] + "/")
    new = text.encode()
    assert len(new) == len(blob[58 : text_end + 1]) + 4  # three spaces and a newline added
    # rebuild with shifted offsets
    data = blob[text_end + 1 :]
    rebuilt = fcs_bytes(ev, NAMES, keywords={"$FIL": "x"}, offsets_in_text_only=False)
    del rebuilt
    header = b"FCS3.1    " + b"".join(
        f"{v:>8d}".encode() for v in (58, 58 + len(new) - 1, 58 + len(new), 58 + len(new) + len(data) - 1, 0, 0)
    )
    p = tmp_path / "ws.fcs"
    p.write_bytes(header + new + data)
    d = read_fcs(p)
    assert d.channel_names[0] == "FSC-A"
    np.testing.assert_array_equal(d.events, ev)
    assert any("disagree" in w for w in d.warnings)  # $BEGINDATA in TEXT is now stale


def test_header_text_disagreement_prefers_header(tmp_path):
    ev = _floats(50)
    blob = bytearray(fcs_bytes(ev, NAMES))
    start = int(blob[26:34])
    # corrupt $BEGINDATA in TEXT to point 46 bytes earlier (as Accuri C6 files do)
    text = bytes(blob[58:start])
    new_text = text.replace(f"$BEGINDATA/{start}/".encode(), f"$BEGINDATA/{start - 46}/".encode())
    assert len(new_text) == len(text)
    blob[58:start] = new_text
    p = tmp_path / "dis.fcs"
    p.write_bytes(bytes(blob))
    d = read_fcs(p)
    np.testing.assert_array_equal(d.events, ev)
    assert any("used HEADER, which matches $TOT" in w for w in d.warnings)


def test_enddata_off_by_one_tolerated(tmp_path):
    ev = _floats(50)
    blob = bytearray(fcs_bytes(ev, NAMES))
    end = int(blob[34:42])
    blob[34:42] = f"{end + 1:>8d}".encode()
    p = tmp_path / "obo.fcs"
    p.write_bytes(bytes(blob))
    d = read_fcs(p)
    np.testing.assert_array_equal(d.events, ev)
    assert any("off by one" in w for w in d.warnings)


def test_multiple_datasets_do_not_leak_keywords(tmp_path):
    a_ev, b_ev = _floats(30), _floats(40, 2)
    first = fcs_bytes(a_ev, NAMES, keywords={"ONLYFIRST": "1"}, nextdata=0)
    first = fcs_bytes(a_ev, NAMES, keywords={"ONLYFIRST": "1"}, nextdata=len(first))
    second = fcs_bytes(b_ev, ["X", "Y"], byteorder="little", version="3.0")
    p = tmp_path / "multi.fcs"
    p.write_bytes(first + second)
    d0, d1 = read_fcs(p), read_fcs(p, dataset=1)
    np.testing.assert_array_equal(d0.events, a_ev)
    np.testing.assert_array_equal(d1.events, b_ev)
    assert "ONLYFIRST" in d0.keywords and "ONLYFIRST" not in d1.keywords
    with pytest.raises(FCSError, match="data set 2"):
        read_fcs(p, dataset=2)


def test_channel_lookup(tmp_path):
    d = read_fcs(write_fcs(tmp_path / "c.fcs", _floats(5), NAMES, pns=STAINS))
    assert d.channel_index("fitc-a") == 2
    assert d.channel_index("cfse") == 2
    np.testing.assert_array_equal(d.column("CD4"), d.events[:, 3])
    with pytest.raises(FCSError) as err:
        d.channel_index("APC-A")
    assert "FITC-A / CFSE" in str(err.value) and "APC-A" in str(err.value)


def test_spill_parsed_and_applied(tmp_path):
    true = _floats(200).astype(np.float64)
    m = np.array([[1.0, 0.15], [0.02, 1.0]])
    observed = true.copy()
    observed[:, 2:4] = true[:, 2:4] @ m
    spill = SpillMatrix(("FITC-A", "PE-A"), m)
    d = read_fcs(write_fcs(tmp_path / "s.fcs", observed, NAMES, datatype="D", spill=spill))
    assert d.spill is not None and d.spill.labels == ("FITC-A", "PE-A")
    np.testing.assert_allclose(compensate(d), true, rtol=1e-9)
    # the same matrix from a CSV
    csv = tmp_path / "spill.csv"
    d.spill.to_dataframe().to_csv(csv)
    np.testing.assert_allclose(compensate(d, read_spill_csv(csv)), true, rtol=1e-9)


def test_spill_labels_without_coefficients(tmp_path):
    p = write_fcs(tmp_path / "nos.fcs", _floats(5), NAMES, keywords={"$SPILLOVER": "2,FITC-A,PE-A"})
    d = read_fcs(p)
    assert d.spill is None and "coefficients" in d.spill_problem
    with pytest.raises(CompensationError, match="coefficients"):
        compensate(d)


def test_spill_unknown_channel(tmp_path):
    p = write_fcs(tmp_path / "u.fcs", _floats(5), NAMES, keywords={"SPILL": "2,FITC-A,APC-A,1,0,0,1"})
    d = read_fcs(p)
    assert d.spill is None and "APC-A" in d.spill_problem


def test_fcsparser_compatible_parse(tmp_path):
    ev = _floats(10)
    p = write_fcs(tmp_path / "p.fcs", ev, NAMES, pns=STAINS)
    meta, frame = parse(p, reformat_meta=True)
    assert list(frame.columns) == ["FSC-A", "SSC-A", "CFSE", "CD4"]
    assert meta["_channel_names_"] == ("FSC-A", "SSC-A", "CFSE", "CD4")
    assert list(meta["_channels_"]["$PnN"]) == NAMES
    assert meta["$TOT"] == "10"
    np.testing.assert_array_equal(frame.to_numpy(), ev)


# ----------------------------------------------------------------------------- errors


def _valid(tmp_path) -> bytes:
    return fcs_bytes(_floats(20), NAMES)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda b: b[:40], "truncated"),
        (lambda b: b[: len(b) - 30], "truncated"),
        (lambda b: b"PK\x03\x04" + b[4:], "not an FCS file"),
        (lambda b: b"", "empty"),
        (lambda b: b.replace(b"$DATATYPE/F", b"$DATATYPE/Q"), "DATATYPE"),
        (lambda b: b.replace(b"$MODE/L", b"$MODE/C"), "MODE"),
        (lambda b: b.replace(b"$TOT/20", b"$TOT/99"), "TOT"),
        (lambda b: b[:10] + b"   abcde" + b[18:], "not a number"),
        (lambda b: b[:18] + b"99999999" + b[26:], "TEXT"),
        (lambda b: b.replace(b"$BYTEORD/4,3,2,1", b"$BYTEORD/3,4,1,2"), "BYTEORD"),
    ],
)
def test_corrupt_files_raise_fcserror(tmp_path, mutate, match):
    p = tmp_path / "bad.fcs"
    p.write_bytes(mutate(_valid(tmp_path)))
    with pytest.raises(FCSError, match=match) as err:
        read_fcs(p)
    assert str(p) in str(err.value)


def test_not_fcs_subclass(tmp_path):
    p = tmp_path / "x.tif"
    p.write_bytes(b"II*\x00" + bytes(100))
    with pytest.raises(NotFCSError):
        read_fcs(p)


def test_missing_file_message(tmp_path):
    with pytest.raises(FCSError, match="file not found"):
        read_fcs(tmp_path / "nope.fcs")


_BASE = fcs_bytes(RNG.lognormal(5, 1, size=(30, 3)).astype(np.float32), ["A", "B", "C"],
                  spill=SpillMatrix(("A", "B"), np.eye(2)))


@settings(max_examples=300, deadline=1000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pos=st.integers(0, len(_BASE) - 1),
    payload=st.binary(min_size=1, max_size=12),
    cut=st.one_of(st.none(), st.integers(0, len(_BASE))),
)
def test_fuzz_only_fcserror_escapes(tmp_path, pos, payload, cut):
    blob = bytearray(_BASE)
    blob[pos : pos + len(payload)] = payload
    if cut is not None:
        blob = blob[:cut]
    p = tmp_path / "fuzz.fcs"
    p.write_bytes(bytes(blob))
    try:
        d = read_fcs(p)
    except FCSError:
        return
    assert d.events.ndim == 2
