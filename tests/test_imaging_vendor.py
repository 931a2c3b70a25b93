"""Vendor formats through the optional extras (`zincassay[czi]`, `zincassay[lif]`).

No vendor sample files can be shipped, so the files are written here by an independent writer:
CZI by Zeiss's own ``pylibCZIrw``, LIF by a minimal writer that follows Leica's published layout
(XML header, then one memory block per image). They are read back through ``read_stack`` and
compared pixel for pixel, with the metadata calibration needs. ND2 has no open writer: its glue is
checked against a stand-in with the ``nd2`` package's interface.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from zincassay.io.stacks import ImagingError, read_stack

RNG = np.random.default_rng(3)
STACK = RNG.integers(0, 4096, size=(6, 2, 40, 48)).astype(np.uint16)  # T, C, Y, X; 12-bit camera


# ---------------------------------------------------------------- CZI


def _write_czi(path: Path, data: np.ndarray, channel_names: list[str], pixel_size_m: float) -> None:
    pyczi = pytest.importorskip("pylibCZIrw.czi")
    with pyczi.create_czi(str(path), exist_ok=True) as w:
        for t in range(data.shape[0]):
            for c in range(data.shape[1]):
                w.write(data=data[t, c][..., None], plane={"T": t, "C": c}, scene=0)
        w.write_metadata(document_name="zincassay test", channel_names=dict(enumerate(channel_names)),
                         scale_x=pixel_size_m, scale_y=pixel_size_m)


def test_czi_written_by_zeiss_libczi_reads_back(tmp_path):
    pytest.importorskip("czifile")
    path = tmp_path / "cells.czi"
    _write_czi(path, STACK, ["FluoZin-3", "DIC"], 0.325e-6)
    with pytest.raises(ImagingError, match=r"2 channels \(FluoZin-3, DIC\).*imaging\.channel"):
        read_stack(path)
    for channel, c in (("FluoZin-3", 0), ("DIC", 1), (1, 1), ("0", 0)):
        s = read_stack(path, channel=channel)
        assert s.data.shape == (6, 40, 48)
        np.testing.assert_array_equal(s.data, STACK[:, c])
    assert s.pixel_size_um == pytest.approx(0.325)
    assert s.channel_names == ["FluoZin-3", "DIC"]
    assert s.frame_interval_s is None  # pylibCZIrw writes no time stamps: the sheet must say
    with pytest.raises(ImagingError, match="no channel named 'Fura'"):
        read_stack(path, channel="Fura")


def test_czi_with_two_scenes_is_refused(tmp_path):
    pytest.importorskip("czifile")
    pyczi = pytest.importorskip("pylibCZIrw.czi")
    path = tmp_path / "scenes.czi"
    with pyczi.create_czi(str(path), exist_ok=True) as w:
        for scene in (0, 1):
            for t in range(3):
                w.write(data=STACK[t, 0][..., None], plane={"T": t, "C": 0}, scene=scene,
                        location=(scene * 100, 0))
    with pytest.raises(ImagingError, match=r"CZI dimension 'S' has 2 entries"):
        read_stack(path)


# ---------------------------------------------------------------- LIF


def _lif_header(xml: str) -> bytes:
    return b"\x70\x00\x00\x00" + struct.pack("<I", 0) + b"\x2a" + struct.pack("<I", len(xml)) + xml.encode("utf-16-le")


def _write_lif(path: Path, data: np.ndarray, pixel_size_um: float, frame_interval_s: float, bits: int) -> None:
    """A one-image LIF as LAS X writes it (version 2: 8-byte block lengths): XML header (UTF-16),
    then the memory blocks, the image's with X fastest, then Y, then channel, then time."""
    t, c, h, w = data.shape
    plane = h * w * 2
    dims = (f'<DimensionDescription DimID="1" NumberOfElements="{w}" Origin="0" '
            f'Length="{(w - 1) * pixel_size_um * 1e-6}" Unit="m" BitInc="0" BytesInc="2"/>'
            f'<DimensionDescription DimID="2" NumberOfElements="{h}" Origin="0" '
            f'Length="{(h - 1) * pixel_size_um * 1e-6}" Unit="m" BitInc="0" BytesInc="{2 * w}"/>'
            f'<DimensionDescription DimID="4" NumberOfElements="{t}" Origin="0" '
            f'Length="{(t - 1) * frame_interval_s}" Unit="s" BitInc="0" BytesInc="{plane * c}"/>')
    chans = "".join(f'<ChannelDescription DataType="0" ChannelTag="0" Resolution="{bits}" Min="0" '
                    f'Max="{2 ** bits - 1}" LUTName="Green" BytesInc="{i * plane}" BitInc="0"/>' for i in range(c))
    xml = ('<LMSDataContainerHeader Version="2"><Element Name="project" Visibility="1" CopyOption="1">'
           '<Data><Experiment Path="project.lif"/></Data><Memory Size="0" MemoryBlockID="MemBlock_0"/>'
           '<Children><Element Name="Series001" Visibility="1" CopyOption="1"><Data><Image><ImageDescription>'
           f'<Channels>{chans}</Channels><Dimensions>{dims}</Dimensions></ImageDescription></Image></Data>'
           f'<Memory Size="{data.nbytes}" MemoryBlockID="MemBlock_1"/><Children/></Element></Children>'
           '</Element></LMSDataContainerHeader>')
    out = _lif_header(xml)
    for block_id, payload in (("MemBlock_0", b""), ("MemBlock_1", data.astype("<u2").tobytes())):
        desc = block_id.encode("utf-16-le")
        out += (b"\x70\x00\x00\x00" + struct.pack("<I", 0) + b"\x2a" + struct.pack("<Q", len(payload))
                + b"\x2a" + struct.pack("<I", len(block_id)) + desc + payload)
    path.write_bytes(out)


def test_lif_reads_back_with_its_calibration_metadata(tmp_path):
    pytest.importorskip("readlif")
    path = tmp_path / "cells.lif"
    _write_lif(path, STACK, pixel_size_um=0.2, frame_interval_s=5.0, bits=12)
    with pytest.raises(ImagingError, match=r"2 channels.*imaging\.channel"):
        read_stack(path)
    for channel in (0, 1, "1"):
        s = read_stack(path, channel=channel)
        np.testing.assert_array_equal(s.data, STACK[:, int(channel)])
    assert s.frame_interval_s == pytest.approx(5.0)
    assert s.pixel_size_um == pytest.approx(0.2)
    assert s.bit_depth == 12
    with pytest.raises(ImagingError, match="by index"):
        read_stack(path, channel="FluoZin-3")
    with pytest.raises(ImagingError, match=r"imaging\.channel = 2 but the image has 2 channels"):
        read_stack(path, channel=2)


def test_truncated_lif_gives_one_clear_message(tmp_path):
    pytest.importorskip("readlif")
    path = tmp_path / "cells.lif"
    _write_lif(path, STACK[:, :1], pixel_size_um=0.2, frame_interval_s=5.0, bits=12)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ImagingError, match=r"cells\.lif: cannot be read by readlif"):
        read_stack(path)


# ---------------------------------------------------------------- ND2


def test_nd2_glue_against_the_nd2_package_interface(tmp_path, monkeypatch):
    """No open ND2 writer exists, so a stand-in with the ``nd2`` package's interface (``ND2File``:
    ``asarray``, ``sizes``, ``voxel_size``, ``metadata.channels[i].channel.name`` and
    ``.volume.bitsPerComponentSignificant``, ``experiment`` loops with ``TimeLoop.parameters.periodMs``;
    checked against nd2 0.12) checks the axes and metadata handling."""
    from types import SimpleNamespace as NS

    class ND2File:
        def __init__(self, path):
            self.sizes = {"T": 6, "C": 2, "Y": 40, "X": 48}
            self.metadata = NS(channels=[NS(channel=NS(name=n), volume=NS(bitsPerComponentSignificant=14))
                                         for n in ("FluoZin-3", "BF")])
            self.experiment = [NS(type="TimeLoop", parameters=NS(periodMs=2500.0))]

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def asarray(self):
            return STACK

        def voxel_size(self):
            return NS(x=0.11, y=0.11, z=1.0)

    monkeypatch.setitem(sys.modules, "nd2", NS(ND2File=ND2File))
    path = tmp_path / "cells.nd2"
    path.write_bytes(b"")
    s = read_stack(path, channel="FluoZin-3")
    np.testing.assert_array_equal(s.data, STACK[:, 0])
    assert (s.frame_interval_s, s.pixel_size_um, s.bit_depth) == (2.5, 0.11, 14)
    with pytest.raises(ImagingError, match=r"2 channels \(FluoZin-3, BF\)"):
        read_stack(path)
