"""Read fluorescence time-lapse stacks as a (T, Y, X) array plus the metadata calibration needs.

TIFF (multi-page, ImageJ hyperstacks, OME-TIFF) is read with tifffile and memory-mapped when the
pixel data are stored contiguously and uncompressed, so a stack larger than RAM can be analysed.
A folder of single-frame TIFFs is read as one stack, frames in file-name order. Vendor formats go
through optional extras that need no Java: ``.nd2`` (``zincassay[nd2]``), ``.czi``
(``zincassay[czi]``), ``.lif`` (``zincassay[lif]``).
"""

from __future__ import annotations

import importlib
import logging
import re
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tifffile

from zincassay.errors import ZincassayError
from zincassay.io import TIFF_SUFFIXES, VENDOR_EXTRAS

__all__ = ["ImagingError", "Stack", "read_stack", "stack_metadata"]



class ImagingError(ZincassayError):
    """An expected problem with an image stack; the message names the file and the fix."""


@dataclass
class Stack:
    """A single-channel time-lapse.

    Attributes
    ----------
    data : ndarray, shape (T, Y, X)
        Raw intensities (camera counts), possibly a read-only memory map; never copied to float.
    frame_interval_s : float or None
        Time between frames (s) from the file's metadata (ImageJ ``finterval``, OME
        ``TimeIncrement``/``DeltaT``), None when the file does not say.
    pixel_size_um : float or None
        Pixel edge length (µm) from the metadata.
    bit_depth : int or None
        Camera bit depth from the metadata (OME ``SignificantBits``, ImageJ Info
        ``camera_bit_depth=``, ``BitsPerSample`` for 8-bit); None when unknown.
    source : str
        What was read (format, axes, channel) for the provenance columns.
    """

    data: np.ndarray
    path: str
    frame_interval_s: float | None = None
    pixel_size_um: float | None = None
    bit_depth: int | None = None
    source: str = ""
    channel_names: list[str] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        return int(self.data.shape[0])


def _select_channel(arr: np.ndarray, axes: str, channel: int | str | None, names: list[str],
                    path: Path) -> tuple[np.ndarray, str]:
    """Reduce ``arr`` with ``axes`` (tifffile letters) to (T, Y, X)."""
    axes = axes.upper().replace("I", "T").replace("Q", "T")
    for ax in "CS":  # channel axis, or RGB samples
        if ax in axes and arr.shape[axes.index(ax)] > 1:
            n = arr.shape[axes.index(ax)]
            if channel is None:
                raise ImagingError(
                    f"{path}: the stack has {n} channels ({', '.join(names) or 'unnamed'}); "
                    "set imaging.channel in the config to the index (0-based) or name of the zinc-probe channel")
            if isinstance(channel, str) and not channel.lstrip("-").isdigit():
                if channel not in names:
                    raise ImagingError(f"{path}: no channel named {channel!r} (channels: "
                                       f"{', '.join(names) or 'unnamed'}); fix imaging.channel")
                idx = names.index(channel)
            else:
                idx = int(channel)
            if not 0 <= idx < n:
                raise ImagingError(f"{path}: imaging.channel = {channel} but the stack has {n} channels (0..{n - 1})")
            arr = np.take(arr, idx, axis=axes.index(ax))
            axes = axes.replace(ax, "")
        elif ax in axes:
            arr = np.take(arr, 0, axis=axes.index(ax))
            axes = axes.replace(ax, "")
    for ax in "Z":
        if ax in axes:
            if arr.shape[axes.index(ax)] > 1:
                raise ImagingError(f"{path}: the stack has {arr.shape[axes.index(ax)]} z-planes; zincassay analyses "
                                   "one plane over time: export a single plane or a projection")
            arr = np.take(arr, 0, axis=axes.index(ax))
            axes = axes.replace(ax, "")
    other = [a for a in axes if a not in "TYX"]
    for a in other:
        if arr.shape[axes.index(a)] != 1:
            raise ImagingError(f"{path}: unexpected axis {a!r} of size {arr.shape[axes.index(a)]} (axes {axes}); "
                               "save the stack as time x Y x X")
        arr = np.take(arr, 0, axis=axes.index(a))
        axes = axes.replace(a, "")
    if "T" not in axes:  # only Y and X are left
        raise ImagingError(f"{path}: a single frame; the calibration needs a time-lapse (baseline, stimulus, "
                           "pyrithione + ZnCl2, TPEN)")
    order = [axes.index(a) for a in "TYX"]
    return np.transpose(arr, order), axes


def _ome_metadata(xml: str) -> dict:
    out: dict = {"channels": []}
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return out
    pixels = next((el for el in root.iter() if el.tag.endswith("}Pixels") or el.tag == "Pixels"), None)
    if pixels is None:
        return out
    if pixels.get("TimeIncrement"):
        out["frame_interval_s"] = float(pixels.get("TimeIncrement")) * {
            "ms": 1e-3, "min": 60.0, "h": 3600.0}.get(pixels.get("TimeIncrementUnit", "s"), 1.0)
    if pixels.get("PhysicalSizeX"):
        out["pixel_size_um"] = float(pixels.get("PhysicalSizeX")) * {
            "nm": 1e-3, "mm": 1e3}.get(pixels.get("PhysicalSizeXUnit", "µm"), 1.0)
    if pixels.get("SignificantBits"):
        out["bit_depth"] = int(pixels.get("SignificantBits"))
    deltas = sorted({float(p.get("DeltaT")) for p in pixels if p.tag.endswith("Plane") and p.get("DeltaT")
                     and p.get("TheZ", "0") == "0" and p.get("TheC", "0") == "0"})
    if "frame_interval_s" not in out and len(deltas) > 1:
        out["frame_interval_s"] = float(np.median(np.diff(deltas)))
    out["channels"] = [c.get("Name", "") for c in pixels if c.tag.endswith("Channel")]
    return out


class _Complaints(logging.Handler):
    """Collects tifffile's log messages (it reports damaged files there, not by raising)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _check_truncated(tf: tifffile.TiffFile, series, path: Path, complaints: list[str]) -> None:
    """A cut-off multi-frame TIFF often reads as one frame: the index of the later frames is gone.
    Say so when the first page's description announces more frames (OME ``SizeT``), when
    tifffile found offsets beyond the end of the file, or when the file is much larger than the
    frames that could be read."""
    frames = int(np.prod(series.shape[:-2])) if len(series.shape) > 2 else 1
    page = tf.pages[0]
    desc = page.description or ""
    m = re.search(r'SizeT="(\d+)"', desc)  # (ImageJ's images= is checked by the caller)
    claimed = int(m.group(1)) if m else None
    end = max((o + c for o, c in zip(page.dataoffsets, page.databytecounts, strict=False)), default=0)
    size = tf.filehandle.size
    beyond = any("offset" in m and "invalid" in m for m in complaints)
    if frames == 1 and ((claimed is not None and claimed > 1) or beyond or size > 2 * end + 65536):
        said = f"its header announces {claimed} frames" if claimed else f"it holds {size:,} bytes"
        raise ImagingError(f"{path}: the file is truncated: {said} but only one frame can be read; "
                           "copy it again from the acquisition computer")


def _tiff_metadata(tf: tifffile.TiffFile) -> tuple[str, dict]:
    """The kind of TIFF and what its metadata say: ``frame_interval_s`` (s), ``pixel_size_um`` (µm),
    ``bit_depth``, ``channels`` (names), each only when present; units are converted."""
    meta: dict = {"channels": []}
    if tf.is_ome and tf.ome_metadata:
        meta.update(_ome_metadata(tf.ome_metadata))
        return "OME-TIFF", meta
    if not tf.is_imagej:
        return "TIFF", meta
    ij = tf.imagej_metadata or {}
    if ij.get("finterval"):
        meta["frame_interval_s"] = float(ij["finterval"]) * {"ms": 1e-3, "min": 60.0}.get(str(ij.get("tunit", "s")), 1.0)
    labels = ij.get("Labels")
    if isinstance(labels, list):
        meta["channels"] = [str(x) for x in labels]
    m = re.search(r"camera_bit_depth\s*=\s*(\d+)", str(ij.get("Info", "")))
    if m:
        meta["bit_depth"] = int(m.group(1))
    xres = tf.pages[0].tags.get("XResolution")
    if xres is not None and ij.get("unit") in ("um", "micron", "µm", "\\u00B5m"):
        num, den = xres.value
        if num:
            meta["pixel_size_um"] = den / num
    return "ImageJ TIFF", meta


def stack_metadata(path: str | Path) -> dict:
    """What a TIFF's metadata say, without reading pixels (see :func:`_tiff_metadata`); ``{}`` for
    other formats or an unreadable file. Used by ``zincassay init`` to draft the sample sheet."""
    path = Path(path)
    if path.suffix.lower() not in TIFF_SUFFIXES and not path.name.lower().endswith(TIFF_SUFFIXES):
        return {}
    logging.getLogger("tifffile").setLevel(logging.CRITICAL)
    try:
        with tifffile.TiffFile(path) as tf:
            return _tiff_metadata(tf)[1]
    except (tifffile.TiffFileError, ValueError, OSError, IndexError, KeyError):
        return {}


def _read_tiff(path: Path, channel: int | str | None) -> Stack:
    # tifffile logs its own warnings about damaged files; the ImagingError below says it once
    log = logging.getLogger("tifffile")
    complaints = _Complaints()
    saved = log.level, log.propagate
    log.setLevel(logging.WARNING)
    log.propagate = False  # collected here, not printed
    log.addHandler(complaints)
    try:
        return _read_tiff_logged(path, channel, complaints.messages)
    finally:
        log.removeHandler(complaints)
        log.setLevel(saved[0])
        log.propagate = saved[1]


def _read_tiff_logged(path: Path, channel: int | str | None, complaints: list[str]) -> Stack:
    try:
        tf = tifffile.TiffFile(path)
    except (tifffile.TiffFileError, ValueError, OSError, IndexError) as exc:
        raise ImagingError(f"{path}: not a readable TIFF ({exc}); re-export it from the acquisition software") from None
    with tf:
        if not tf.series:
            raise ImagingError(f"{path}: the TIFF holds no image data")
        series = tf.series[0]
        axes = series.axes
        kind, meta = _tiff_metadata(tf)
        announced = int((tf.imagej_metadata or {}).get("images", 0) or 0) if tf.is_imagej else 0
        planes = int(np.prod([n for a, n in zip(axes, series.shape, strict=True) if a not in "YXS"]))
        if announced > planes:
            raise ImagingError(f"{path}: the file is truncated: its header announces {announced} images but only "
                               f"{planes} can be read; copy it again from the acquisition computer")
        if "bit_depth" not in meta and series.dtype == np.uint8:
            meta["bit_depth"] = 8
        _check_truncated(tf, series, path, complaints)
        try:
            arr = tifffile.memmap(path, mode="r", series=0)
        except (ValueError, OSError, tifffile.TiffFileError):
            arr = None
        if arr is None or arr.shape != series.shape:
            try:
                arr = series.asarray()
            except Exception as exc:
                if "failed to read" in str(exc) or isinstance(exc, EOFError):
                    raise ImagingError(f"{path}: the file is truncated ({exc}); copy it again from the "
                                       "acquisition computer") from None
                raise ImagingError(f"{path}: pixel data cannot be decoded ({type(exc).__name__}: {exc}); "
                                   "re-export the stack uncompressed or install 'imagecodecs'") from None
    data, _ = _select_channel(arr, axes, channel, meta["channels"], path)
    return Stack(data=data, path=str(path), frame_interval_s=meta.get("frame_interval_s"),
                 pixel_size_um=meta.get("pixel_size_um"), bit_depth=meta.get("bit_depth"),
                 source=f"{kind} axes={axes}" + (f" channel={channel}" if channel is not None else ""),
                 channel_names=meta["channels"])


def _read_folder(path: Path, channel: int | str | None) -> Stack:
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in TIFF_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise ImagingError(f"{path}: folder holds no .tif files; point the sample sheet at a stack or a folder of frames")
    frames = []
    shape = None
    for f in files:
        try:
            img = tifffile.imread(f)
        except (tifffile.TiffFileError, ValueError, OSError) as exc:
            raise ImagingError(f"{f}: not a readable TIFF ({exc})") from None
        if img.ndim == 3 and img.shape[-1] in (3, 4):
            img, _ = _select_channel(img[None], "TYXS", channel, [], f)
            img = img[0]
        if img.ndim != 2:
            raise ImagingError(f"{f}: expected one 2-D frame per file in a frame folder, got shape {img.shape}")
        if shape is not None and img.shape != shape:
            raise ImagingError(f"{f}: frame size {img.shape} differs from {shape} of {files[0].name}; "
                               "all frames of a sequence must have the same size")
        shape = img.shape
        frames.append(img)
    if len(frames) < 2:
        raise ImagingError(f"{path}: a single frame; the calibration needs a time-lapse")
    data = np.stack(frames)
    return Stack(data=data, path=str(path), bit_depth=8 if data.dtype == np.uint8 else None,
                 source=f"folder of {len(files)} TIFF frames")


def _nd2(mod, path: Path) -> tuple[np.ndarray, str, list[str], dict]:
    with mod.ND2File(path) as f:
        arr = f.asarray()
        axes = "".join(f.sizes)
        vs = f.voxel_size()
        channels = (f.metadata.channels or []) if f.metadata else []
        names = [c.channel.name for c in channels]
        bits = [c.volume.bitsPerComponentSignificant for c in channels if c.volume]
        periods = [p.parameters.periodMs for p in f.experiment if p.type == "TimeLoop"]
    meta = {"pixel_size_um": float(vs.x) if vs else None,
            "frame_interval_s": periods[0] / 1e3 if periods and periods[0] else None,
            "bit_depth": int(bits[0]) if bits and bits[0] else None}
    return arr, axes, names, meta


def _czi(mod, path: Path) -> tuple[np.ndarray, str, list[str], dict]:
    """czifile's array has every CZI dimension (e.g. ``BTCZYX0``); the XML metadata gives the
    channel names, the pixel size (``Scaling/Items/Distance[@Id='X']``, metres) and the bit depth
    (``ComponentBitCount``); the ``CZTIMS`` attachment holds each frame's time (s)."""
    with mod.CziFile(path) as f:
        arr = f.asarray()
        axes = f.axes
        xml = f.metadata() or ""
        stamps = []
        with warnings.catch_warnings():  # czifile warns when a file has no attachments
            warnings.simplefilter("ignore")
            attachments = list(f.attachments()) if f.attachment_directory else []
        for att in attachments:
            if str(att.attachment_entry.content_file_type) == "CZTIMS":
                stamps = list(att.data())
    meta: dict = {}
    names: list[str] = []
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        root = None
    if root is not None:
        names = [c.get("Name", "") for c in root.iterfind(".//Information/Image/Dimensions/Channels/Channel")]
        x = root.findtext(".//Scaling/Items/Distance[@Id='X']/Value")
        if x and float(x) > 0:
            meta["pixel_size_um"] = float(x) * 1e6
        bits = root.findtext(".//Information/Image/ComponentBitCount")
        if bits and int(bits) > 0:
            meta["bit_depth"] = int(bits)
    if len(stamps) > 1:
        meta["frame_interval_s"] = float(np.median(np.diff(stamps)))
    # CZI letters differ from tifffile's: S is the scene, 0 the RGB sample, I the illumination
    for a in axes:
        if a not in "TCZYX0":
            if arr.shape[axes.index(a)] != 1:
                raise ImagingError(f"{path}: CZI dimension {a!r} has {arr.shape[axes.index(a)]} entries (scenes, "
                                   "tiles, ...); zincassay reads one time-lapse per file: split it in ZEN")
            arr = np.take(arr, 0, axis=axes.index(a))
            axes = axes.replace(a, "")
    return arr, axes.replace("0", "S"), names, meta


def _lif(mod, path: Path, channel: int | str | None) -> tuple[np.ndarray, str, list[str], dict]:
    """The first image of a Leica project; frames come one at a time through readlif."""
    with open(path, "rb") as fh:  # readlif leaves its own handle open when a file is damaged
        img = mod.LifFile(fh).get_image(0)
        if img.channels > 1 and channel is None:
            raise ImagingError(f"{path}: the image has {img.channels} channels; set imaging.channel in the config "
                               "to the index (0-based) of the zinc-probe channel")
        if isinstance(channel, str) and not channel.isdigit():
            raise ImagingError(f"{path}: LIF channels are chosen by index (0..{img.channels - 1}), "
                               f"not by name ({channel!r}); fix imaging.channel")
        c = int(channel or 0)
        if not 0 <= c < img.channels:
            raise ImagingError(f"{path}: imaging.channel = {channel} but the image has {img.channels} channels "
                               f"(0..{img.channels - 1})")
        if img.nz > 1:
            raise ImagingError(f"{path}: the image has {img.nz} z-planes; zincassay analyses one plane over time: "
                               "export a single plane or a projection")
        arr = np.stack([np.asarray(img.get_frame(z=0, t=t, c=c)) for t in range(img.nt)])
    scale = img.scale  # (x px/µm, y px/µm, z px/µm, t frames/s)
    meta = {"pixel_size_um": 1 / scale[0] if scale[0] else None,
            "frame_interval_s": 1 / scale[3] if scale[3] else None,
            "bit_depth": int(img.bit_depth[c]) if img.bit_depth else None}
    return arr, "TYX", [], meta


def _read_vendor(path: Path, channel: int | str | None) -> Stack:
    module, extra = VENDOR_EXTRAS[path.suffix.lower()]
    try:
        mod = importlib.import_module(module)
    except ImportError:
        raise ImagingError(f"{path}: reading {path.suffix} files needs an optional extra; install it with "
                           f"pip install 'zincassay[{extra}]' (or convert the file to OME-TIFF with Fiji/bfconvert)"
                           ) from None
    try:
        if module == "nd2":
            arr, axes, names, meta = _nd2(mod, path)
        elif module == "czifile":
            arr, axes, names, meta = _czi(mod, path)
        else:
            arr, axes, names, meta = _lif(mod, path, channel)
            channel = None  # already chosen
    except ImagingError:
        raise
    except Exception as exc:
        raise ImagingError(f"{path}: cannot be read by {module} ({type(exc).__name__}: {exc}); check that the "
                           "file copied completely, or export it as OME-TIFF") from None
    data, _ = _select_channel(np.asarray(arr), axes, channel, names, path)
    return Stack(data=data, path=str(path), frame_interval_s=meta.get("frame_interval_s"),
                 pixel_size_um=meta.get("pixel_size_um"), bit_depth=meta.get("bit_depth"),
                 source=f"{path.suffix} via {module} axes={axes}" + (f" channel={channel}" if channel is not None else ""),
                 channel_names=names)


def read_stack(path: str | Path, channel: int | str | None = None) -> Stack:
    """Read a time-lapse as a (T, Y, X) :class:`Stack`.

    Parameters
    ----------
    path : str or Path
        A TIFF / OME-TIFF / ImageJ stack, a folder of single-frame TIFFs, or ``.nd2``/``.czi``/``.lif``.
    channel : int or str, optional
        The zinc-probe channel (0-based index or name) of a multi-channel stack.

    Raises
    ------
    ImagingError
        Unreadable file, single frame, z-stack, ambiguous channel, too small frames, missing extra.
    """
    path = Path(path)
    if path.is_dir():
        stack = _read_folder(path, channel)
    elif not path.exists():
        raise ImagingError(f"{path}: no such file; check the sample sheet's 'file' column")
    elif path.suffix.lower() in VENDOR_EXTRAS:
        stack = _read_vendor(path, channel)
    else:
        stack = _read_tiff(path, channel)
    t, h, w = stack.data.shape
    if t < 2:
        raise ImagingError(f"{path}: a single frame; the calibration needs a time-lapse")
    if h < 16 or w < 16:
        raise ImagingError(f"{path}: frames are {h} x {w} px; too small to segment cells (need at least 16 x 16); "
                           "check that the axes are time, Y, X")
    if not (np.issubdtype(stack.data.dtype, np.integer) or np.issubdtype(stack.data.dtype, np.floating)):
        raise ImagingError(f"{path}: pixel type {stack.data.dtype} is not supported; save as uint8, uint16 or float")
    return stack
