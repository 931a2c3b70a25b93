"""Gates from FlowJo 10 workspaces (``.wsp``) and GatingML 2.0 files, applied with FlowKit.

A core facility's gating strategy lives in a FlowJo workspace or a GatingML 2.0 file. This module
reads it with FlowKit (White et al., Bioinformatics 2021; the optional extra ``zincassay[flowjo]``),
applies the gates along one population path (e.g. ``/Lymphocytes/Single Cells/Live``) to one
sample's events with the file's own compensation and transforms, and returns

- one boolean mask per gate along the path (events in that population, parents included), and
- a :class:`GateShape` per gate: what a figure needs to draw it (type, channels, compensation,
  transform with its parameters, vertices / ellipse / ranges in the gate's transformed space)
  and what :mod:`zincassay.flow.gatingml` needs to write it back out.

Events reach FlowKit as our reader decodes them (:func:`zincassay.io.fcs.read_fcs`: linear,
``$PnE``/``$PnG`` applied, uncompensated), handed over as an in-memory FCS 3.1 file that keeps the
file's keywords (``$TIMESTEP``, ``$FIL``, the spill matrix), so FlowKit compensates ('FCS' or the
workspace's matrix) and transforms exactly as it would the original file, and files that FlowKit's
own reader refuses (24-bit integers, float data with ``$PnE``) still work.

Population paths are FlowKit's gate paths without ``root``: ``/Parent/Child``. A GatingML
quadrant is named ``/<QuadrantGate id>/<quadrant id>``, as FlowKit lists it.

Two FlowKit 1.3.0 issues are handled here (1.3.0 is the release that resolves with pandas 3; see
the README): its results table needs pandas' object strings (``future.infer_string`` off while
FlowKit builds it), and its workspace reader needs a ``spectral`` attribute that FlowJo < 10.7
does not write on ``spilloverMatrix`` (added as ``"0"``, conventional compensation).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from zincassay.errors import ZincassayError
from zincassay.flow.gating import Gate, GatingResult, ScatterChannels, gate_events
from zincassay.flow.settings import GatesFrom
from zincassay.io.fcs import FCSData, SpillMatrix, read_fcs

__all__ = [
    "GateDimension",
    "GateShape",
    "GatesFileError",
    "ImportedGating",
    "PopulationNotFoundError",
    "SampleNotInWorkspaceError",
    "UnsupportedGateError",
    "apply_gates",
    "gate_as_configured",
    "normalise_population",
    "population_paths",
    "require_flowkit",
]

#: Gate types FlowKit applies (GatingML 2.0 element names; FlowJo writes the same in a .wsp).
SUPPORTED_GATE_TYPES = ("RectangleGate", "PolygonGate", "EllipsoidGate", "QuadrantGate", "BooleanGate")
_GML_NS = "http://www.isac-net.org/std/Gating-ML/v2.0/gating"


class GatesFileError(ZincassayError):
    """A gates file (workspace or GatingML) cannot be read or applied."""


class PopulationNotFoundError(GatesFileError):
    """The population path is not in the gates file; the message lists the ones that are."""


class SampleNotInWorkspaceError(GatesFileError):
    """The sample is not in the FlowJo workspace; the message lists the samples that are."""


class UnsupportedGateError(GatesFileError):
    """A gate on the population path is of a type FlowKit (or GatingML 2.0) cannot handle."""


def require_flowkit() -> Any:
    """Import FlowKit, or raise a :class:`ZincassayError` naming the extra that installs it."""
    try:
        import flowkit
    except ImportError:
        raise ZincassayError(
            "reading FlowJo workspaces and GatingML files needs FlowKit, which is not installed: "
            "pip install -c requirements.lock -e \".[flowjo]\" (or pip install \"zincassay[flowjo]\")"
        ) from None
    return flowkit


@contextlib.contextmanager
def _flowkit_pandas() -> Iterator[None]:
    """FlowKit 1.3 tests ``None in set(column)`` on a string column; keep object strings there."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pandas 3 deprecates the option (Pandas4Warning)
        warnings.simplefilter("ignore", FutureWarning)
        try:
            ctx = pd.option_context("future.infer_string", False)
        except (KeyError, pd.errors.OptionError):  # pandas without the option: nothing to do
            ctx = contextlib.nullcontext()
        with ctx:
            yield


# --------------------------------------------------------------------------- descriptions


@dataclass(frozen=True)
class GateDimension:
    """One axis of a gate.

    Attributes
    ----------
    channel : str
        ``$PnN`` of the channel (for a ratio dimension, the ratio's id).
    compensation : str
        ``"uncompensated"``, ``"FCS"`` (the file's own spill matrix) or the id of a matrix.
    transform : dict or None
        The scale the gate is drawn on: ``{"type": ..., **parameters}`` with ``type`` one of
        ``flin`` (T, A), ``flog`` (T, M), ``fasinh`` (T, M, A), ``logicle`` (T, W, M, A),
        ``hyperlog`` (T, W, M, A), ``fratio`` (numerator, denominator, A, B, C), ``flowjo_log``
        (offset, decades), ``flowjo_biex`` (negative, width, positive, max_value); None for linear.
    min, max : float or None
        Range of a rectangle / quadrant, in transformed units; ``min <= x < max`` (GatingML 2.0).
    """

    channel: str
    compensation: str = "uncompensated"
    transform: dict | None = None
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class GateShape:
    """One gate as a figure draws it and as GatingML writes it.

    Attributes
    ----------
    name : str
        Gate (population) name.
    population : str
        Full path, ``/Parent/Name``.
    kind : str
        ``rectangle`` (any number of dimensions, a 1-D one is a range), ``polygon``, ``ellipse``
        (ellipsoid in any number of dimensions) or ``boolean``.
    dimensions : tuple of GateDimension
    vertices : ndarray (n_vertices, 2) or None
        Polygon vertices in transformed units.
    mean : ndarray (n_dims,) or None
        Ellipse centre in transformed units.
    covariance : ndarray (n_dims, n_dims) or None
        Ellipse covariance; an event is inside when its Mahalanobis distance squared is at most
        ``distance_square``.
    distance_square : float or None
    complement : bool
        The population is the outside of the shape.
    boolean : tuple (op, tuple of (population, complement)) or None
        ``("and" | "or" | "not", ((path, complement), ...))`` for boolean gates.
    """

    name: str
    population: str
    kind: str
    dimensions: tuple[GateDimension, ...] = ()
    vertices: np.ndarray | None = None
    mean: np.ndarray | None = None
    covariance: np.ndarray | None = None
    distance_square: float | None = None
    complement: bool = False
    boolean: tuple | None = None

    @property
    def parent(self) -> str:
        """Path of the parent population (``""`` for a gate on all events)."""
        return self.population.rsplit("/", 1)[0]

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(d.channel for d in self.dimensions)


@dataclass
class ImportedGating:
    """Gates along one population path, applied to one sample.

    Attributes
    ----------
    source : Path
        The workspace or GatingML file.
    sample_id : str
        The sample's name in the workspace (or the FCS file name for GatingML).
    population : str
        The path asked for, normalised (``/A/B/C``).
    gates : list of GateShape
        One per gate along the path, outermost first.
    masks : list of ndarray of bool, shape (n_events,)
        ``masks[i]``: events in ``gates[i].population`` (all its parents' gates applied).
    coordinates : list of ndarray (n_events, n_dims) or None
        Every event in ``gates[i]``'s compensated, transformed space (float32), for drawing; None
        for boolean gates.
    spill : SpillMatrix or None
        The matrix FlowKit used for ``"FCS"`` compensation (None when the file has none).
    comp_matrices : dict of str to SpillMatrix
        Matrices a gate names by id (from a workspace or GatingML file).
    """

    source: Path
    sample_id: str
    population: str
    gates: list[GateShape]
    masks: list[np.ndarray]
    coordinates: list[np.ndarray | None] = field(default_factory=list)
    spill: SpillMatrix | None = None
    comp_matrices: dict[str, SpillMatrix] = field(default_factory=dict)

    @property
    def mask(self) -> np.ndarray:
        """Events in the requested population, shape (n_events,)."""
        return self.masks[-1]

    def counts(self) -> dict[str, int]:
        """Events in each population along the path."""
        return {g.population: int(m.sum()) for g, m in zip(self.gates, self.masks, strict=True)}

    def gating_result(self) -> GatingResult:
        """These gates as a :class:`~zincassay.flow.gating.GatingResult` (what the assays' pipelines,
        tables and QC read): one :class:`~zincassay.flow.gating.Gate` per gate along the path, with
        its events in (its parent's) and kept, and a note naming the gates file."""
        gates = []
        n = self.masks[0].size
        for i, (shape, mask) in enumerate(zip(self.gates, self.masks, strict=True)):
            n_in = int(self.masks[i - 1].sum()) if i else n
            gates.append(Gate(shape.name, n_in, int(mask.sum()), {"population": shape.population, "kind": shape.kind},
                              f"imported from {self.source.name}"))
        return GatingResult(self.mask, gates, ScatterChannels(None, None, None))


# --------------------------------------------------------------------------- file kinds


def _split_path(population: str) -> tuple[str, ...]:
    parts = tuple(p for p in str(population).strip().strip("/").split("/") if p)
    if parts and parts[0].lower() == "root":
        parts = parts[1:]
    return parts


def _fmt(parts: tuple[str, ...]) -> str:
    return "/" + "/".join(parts)


def _read_xml(path: Path) -> Any:
    from lxml import etree

    try:
        return etree.parse(str(path), etree.XMLParser(huge_tree=True))
    except OSError:
        raise GatesFileError(f"{path}: gates file not found or unreadable; check cfse.gates_from.") from None
    except etree.XMLSyntaxError as exc:
        raise GatesFileError(
            f"{path}: not an XML file ({exc}); give a FlowJo 10 workspace (.wsp) or a GatingML 2.0 file."
        ) from None


def _kind(tree: Any, path: Path) -> str:
    root = tree.getroot()
    tag = root.tag.partition("}")[-1] if "}" in root.tag else root.tag
    if tag == "Workspace":
        return "wsp"
    if tag == "Gating-ML":
        return "gml"
    raise GatesFileError(
        f"{path}: root element <{tag}> is neither a FlowJo workspace (<Workspace>) nor GatingML 2.0 "
        "(<gating:Gating-ML>); export the gates from FlowJo as a workspace or GatingML 2.0."
    )


def _local(tag: Any) -> str:
    return str(tag).partition("}")[-1] if "}" in str(tag) else str(tag)


def _wsp_population_path(pop_el: Any) -> tuple[str, ...]:
    names = []
    el = pop_el
    while el is not None:
        if _local(el.tag) in ("Population", "AndNode", "OrNode", "NotNode"):
            names.append(el.attrib.get("name", ""))
        if _local(el.tag) in ("SampleNode", "Group", "GroupNode"):
            break
        el = el.getparent()
    return tuple(reversed(names))


def _prepare_wsp(tree: Any, path: Path, target: tuple[str, ...] | None) -> bytes:
    """Workspace bytes FlowKit can parse: ``spectral`` added where missing; gates FlowKit cannot
    parse removed when off the target path, refused with :class:`UnsupportedGateError` on it."""
    from lxml import etree

    root = tree.getroot()
    for el in root.iter():
        if _local(el.tag) == "spilloverMatrix" and "spectral" not in el.attrib:
            el.set("spectral", "0")
    for pop in list(root.iter("Population")):
        gate_el = pop.find("Gate")
        if gate_el is None:
            continue
        kids = [k for k in gate_el if isinstance(k.tag, str)]
        kind = _local(kids[0].tag) if len(kids) == 1 else f"{len(kids)} shapes"
        if kind in SUPPORTED_GATE_TYPES:
            continue
        pop_path = _wsp_population_path(pop)
        if target is not None and target[: len(pop_path)] == pop_path:
            raise UnsupportedGateError(
                f"{path}: gate {_fmt(pop_path)} is a {kind}, which FlowKit cannot apply (supported: "
                f"{', '.join(SUPPORTED_GATE_TYPES)}); redraw it in FlowJo as a polygon or rectangle."
            )
        pop.getparent().remove(pop)
    return etree.tostring(root)


def _check_gml_types(tree: Any, path: Path, target: tuple[str, ...] | None) -> None:
    root = tree.getroot()
    for el in root:
        if not isinstance(el.tag, str) or not el.tag.startswith("{" + _GML_NS):
            continue
        kind = _local(el.tag)
        if kind.endswith("Gate") and kind not in SUPPORTED_GATE_TYPES:
            gid = el.attrib.get(f"{{{_GML_NS}}}id", "?")
            if target is None or gid in target:
                raise UnsupportedGateError(
                    f"{path}: gate {gid!r} is a {kind}, which GatingML 2.0 / FlowKit cannot apply "
                    f"(supported: {', '.join(SUPPORTED_GATE_TYPES)})."
                )


def _load_strategy(path: Path, sample_names: list[str], target: tuple[str, ...] | None) -> tuple[Any, str, str]:
    """FlowKit GatingStrategy for the sample, the matched sample id, and the file kind."""
    fk = require_flowkit()
    tree = _read_xml(path)
    kind = _kind(tree, path)
    if kind == "gml":
        _check_gml_types(tree, path, target)
        try:
            with _flowkit_pandas():
                gs = fk.parse_gating_xml(str(path))
        except Exception as exc:  # FlowKit raises bare ValueError/KeyError for bad GatingML
            raise GatesFileError(f"{path}: FlowKit cannot read this GatingML 2.0 file: {exc}") from None
        return gs, sample_names[0], kind
    blob = _prepare_wsp(tree, path, target)
    try:
        with _flowkit_pandas(), _quiet():
            ws = fk.Workspace(io.BytesIO(blob), load_missing_file_data=True)
    except Exception as exc:
        raise GatesFileError(f"{path}: FlowKit cannot read this FlowJo workspace: {exc}") from None
    known = list(ws.get_sample_ids(loaded_only=False))
    sid = next((s for s in sample_names if s in known), None)
    if sid is None:
        raise SampleNotInWorkspaceError(
            f"{path}: sample {sample_names[0]!r} is not in the workspace; it has "
            f"{', '.join(repr(s) for s in sorted(known)) or 'no samples'}. Add the FCS file to the "
            "workspace in FlowJo, or give its workspace name as the sample id."
        )
    return ws.get_gating_strategy(sid), sid, kind


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _all_populations(gs: Any) -> list[tuple[tuple[str, ...], str, tuple[str, ...]]]:
    """(population path, gate name, FlowKit gate path) of every population, sorted."""
    fk = require_flowkit()
    out = []
    for name, gpath in gs.get_gate_ids():
        try:
            gate = gs.get_gate(name, gpath)
        except fk.exceptions.QuadrantReferenceError:
            gate = None  # a quadrant of a QuadrantGate: a population
        if gate is not None and isinstance(gate, fk.gates.QuadrantGate):
            continue  # the container is not a population; its quadrants are
        out.append(((*tuple(gpath[1:]), name), name, tuple(gpath)))
    return sorted(out)


def normalise_population(population: str) -> str:
    """A population path as :func:`population_paths` lists it (``/A/B``; a leading ``root`` dropped)."""
    return _fmt(_split_path(population))


def population_paths(gates_file: str | Path, sample_id: str | None = None) -> list[str]:
    """Every population path in a workspace (for one sample) or GatingML file, sorted.

    Parameters
    ----------
    gates_file : str or Path
        FlowJo 10 workspace (``.wsp``) or GatingML 2.0 file.
    sample_id : str, optional
        Workspace sample name; defaults to the first sample of the workspace.
    """
    path = Path(gates_file)
    names = [sample_id] if sample_id else []
    if not names:
        tree = _read_xml(path)
        if _kind(tree, path) == "wsp":
            names = [el.attrib.get("name", "") for el in tree.getroot().iter("SampleNode")][:1]
    gs, _, _ = _load_strategy(path, names or [""], None)
    return [_fmt(p) for p, _, _ in _all_populations(gs)]


# --------------------------------------------------------------------------- FlowKit objects -> shapes


def _transform_dict(xf: Any) -> dict | None:
    if xf is None:
        return None
    cls = type(xf).__name__
    if cls == "LinearTransform":
        return {"type": "flin", "T": float(xf.param_t), "A": float(xf.param_a)}
    if cls == "LogTransform":
        return {"type": "flog", "T": float(xf.param_t), "M": float(xf.param_m)}
    if cls == "AsinhTransform":
        return {"type": "fasinh", "T": float(xf.param_t), "M": float(xf.param_m), "A": float(xf.param_a)}
    if cls in ("LogicleTransform", "HyperlogTransform"):
        return {"type": "logicle" if cls == "LogicleTransform" else "hyperlog", "T": float(xf.param_t),
                "W": float(xf.param_w), "M": float(xf.param_m), "A": float(xf.param_a)}
    if cls == "RatioTransform":
        return {"type": "fratio", "numerator": xf.dimensions[0], "denominator": xf.dimensions[1],
                "A": float(xf.param_a), "B": float(xf.param_b), "C": float(xf.param_c)}
    if cls == "WSPLogTransform":
        return {"type": "flowjo_log", "offset": float(xf.offset), "decades": float(xf.decades)}
    if cls == "WSPBiexTransform":
        return {"type": "flowjo_biex", "negative": float(xf.negative), "width": float(xf.width),
                "positive": float(xf.positive), "max_value": float(xf.max_value)}
    return {"type": cls}


def _dimension(gs: Any, dim: Any, lo: float | None = None, hi: float | None = None, use_range: bool = True
               ) -> GateDimension:
    fk = require_flowkit()
    comp = dim.compensation_ref or "uncompensated"
    xf = gs.transformations.get(dim.transformation_ref) if dim.transformation_ref else None
    if isinstance(dim, fk.RatioDimension):
        ratio = _transform_dict(gs.transformations[dim.ratio_ref])
        channel = dim.ratio_ref
        outer = _transform_dict(xf)
        transform = dict(ratio, then=outer) if outer else ratio
    else:
        channel = dim.dimension_ref if isinstance(dim, fk.QuadrantDivider) else dim.id
        transform = _transform_dict(xf)
        matrix = gs.comp_matrices.get(comp)
        fluor = list(getattr(matrix, "fluorochromes", []) or [])
        if matrix is not None and channel in fluor and channel not in list(matrix.detectors):
            channel = str(matrix.detectors[fluor.index(channel)])  # a fluorochrome name: its detector
    if use_range:
        lo, hi = getattr(dim, "min", None), getattr(dim, "max", None)
    return GateDimension(channel, comp, transform, None if lo is None else float(lo),
                         None if hi is None else float(hi))


def _fk_key(dim: Any) -> str:
    """Column FlowKit gives a dimension in its preprocessed events."""
    fk = require_flowkit()
    if isinstance(dim, fk.RatioDimension):
        return dim.ratio_ref
    return dim.dimension_ref if isinstance(dim, fk.QuadrantDivider) else dim.id


def _shape_keys(gate: Any, quadrant: str | None) -> list[str]:
    dims = gate.dimensions
    if quadrant is not None:
        dims = [d for d in dims if d.id in gate.quadrants[quadrant].divider_refs]
    return [_fk_key(d) for d in dims]


def _shape(gs: Any, gate: Any, population: tuple[str, ...], quadrant: str | None) -> GateShape:
    fk = require_flowkit()
    name, pop = population[-1], _fmt(population)
    comp = bool(getattr(gate, "use_complement", False))
    if isinstance(gate, fk.gates.QuadrantGate):
        q = gate.quadrants[quadrant]
        dims = []
        for div in gate.dimensions:
            if div.id not in q.divider_refs:
                continue  # this quadrant does not use that divider
            lo, hi = q.get_divider_range(div.id)
            dims.append(_dimension(gs, div, lo, hi, use_range=False))
        return GateShape(name, pop, "rectangle", tuple(dims))
    if isinstance(gate, fk.gates.RectangleGate):
        return GateShape(name, pop, "rectangle", tuple(_dimension(gs, d) for d in gate.dimensions), complement=comp)
    if isinstance(gate, fk.gates.PolygonGate):
        dims = tuple(_dimension(gs, d, use_range=False) for d in gate.dimensions)
        return GateShape(name, pop, "polygon", dims, vertices=np.asarray(gate.vertices, dtype=float), complement=comp)
    if isinstance(gate, fk.gates.EllipsoidGate):
        dims = tuple(_dimension(gs, d, use_range=False) for d in gate.dimensions)
        return GateShape(name, pop, "ellipse", dims, mean=np.asarray(gate.coordinates, dtype=float),
                         covariance=np.asarray(gate.covariance_matrix, dtype=float),
                         distance_square=float(gate.distance_square), complement=comp)
    if isinstance(gate, fk.gates.BooleanGate):
        refs = tuple((_fmt((*tuple(r["path"][1:]), r["ref"])), bool(r.get("complement", False)))
                     for r in gate.gate_refs)
        return GateShape(name, pop, "boolean", boolean=(str(gate.type).lower(), refs))
    raise UnsupportedGateError(f"gate {pop} is a {type(gate).__name__}, which zincassay cannot describe")


def _matrix(m: Any, name: str) -> SpillMatrix:
    det = tuple(str(d) for d in m.detectors)
    return SpillMatrix(det, np.asarray(m.matrix, dtype=float), name)


# --------------------------------------------------------------------------- FlowKit sample

_FLOWKIT_NOT_FLUORESCENT = ("FSC-A", "FSC-H", "FSC-W", "SSC-A", "SSC-H", "SSC-W", "Time")


def _flowkit_sample(data: FCSData, sample_id: str, spill: SpillMatrix | None, flowjo_labels: bool) -> Any:
    """A FlowKit Sample holding our decoded (linear, uncompensated) events and the file's keywords."""
    from zincassay.io.fcs_write import carried_keywords, fcs_bytes

    fk = require_flowkit()
    keep = carried_keywords(data)
    events = data.events
    datatype = "F" if events.dtype == np.float32 else "D"
    pnr = [float(r) if float(r) > 0 else 262144.0 for r in data.channels["$PnR"]]
    blob = fcs_bytes(events, list(data.channels["$PnN"]), pns=list(data.channels["$PnS"]), datatype=datatype,
                     byteorder="little", pnr=pnr, spill=spill, keywords=keep)
    # FlowKit's "FCS" compensation needs the matrix to cover every channel it deems fluorescent
    # (all but FSC/SSC-A/H/W and Time); channels the matrix leaves out are declared null for it
    null = None
    if spill is not None:
        null = [c for c in data.channel_names if c not in spill.labels and c not in _FLOWKIT_NOT_FLUORESCENT] or None
    with _quiet():
        return fk.Sample(io.BytesIO(blob), sample_id=sample_id, use_flowjo_labels=flowjo_labels, subsample=0,
                         null_channel_list=null)


# --------------------------------------------------------------------------- public


def apply_gates(
    gates_file: str | Path,
    population: str,
    sample: FCSData | str | Path,
    *,
    sample_id: str | None = None,
    spill: SpillMatrix | None = None,
) -> ImportedGating:
    """Apply the gates along ``population`` from a FlowJo workspace or GatingML file to one sample.

    Parameters
    ----------
    gates_file : str or Path
        FlowJo 10 workspace (``.wsp``) or GatingML 2.0 file.
    population : str
        Population path, e.g. ``/Lymphocytes/Single Cells/Live`` (a leading ``root`` is allowed).
    sample : FCSData, str or Path
        The sample's events as :func:`zincassay.io.fcs.read_fcs` reads them (linear,
        uncompensated: ``compensation == "none"``) or its FCS file.
    sample_id : str, optional
        The sample's name in the workspace. Default: the FCS file name, then its ``$FIL``.
        Ignored for GatingML (which holds one gating for every sample).
    spill : SpillMatrix, optional
        The matrix GatingML's ``compensation-ref="FCS"`` means. Default: the file's own.
        Workspace gates use the workspace's matrix.

    Returns
    -------
    ImportedGating

    Raises
    ------
    GatesFileError, PopulationNotFoundError, SampleNotInWorkspaceError, UnsupportedGateError
        One line naming the file, the problem and the fix. ``ZincassayError`` when FlowKit is not
        installed.
    """
    path = Path(gates_file)
    data = sample if isinstance(sample, FCSData) else read_fcs(sample)
    if data.compensation != "none":
        raise ZincassayError(
            f"{data.path}: gates from {path.name} are applied to the events as read, and these are already "
            f"compensated ({data.compensation}); pass read_fcs(path) or the file path: FlowKit compensates "
            "with the gates' own matrices"
        )
    target = _split_path(population)
    if not target:
        raise PopulationNotFoundError(f"{path}: population path {population!r} is empty; give e.g. /Lymphocytes/Live")
    names = [n for n in (sample_id, data.path.name, data.keywords.get("$FIL", "").strip()) if n]
    gs, sid, kind = _load_strategy(path, names or ["sample"], target)
    pops = _all_populations(gs)
    by_path = {p: (name, gpath) for p, name, gpath in pops}
    if target not in by_path:
        listing = ", ".join(_fmt(p) for p, _, _ in pops) or "none"
        raise PopulationNotFoundError(
            f"{path}: population {_fmt(target)} does not exist; populations: {listing}. "
            "Set the population path (cfse.gates_from) to one of them."
        )
    used_spill = spill if spill is not None else data.spill
    fk_sample = _flowkit_sample(data, sid, used_spill, flowjo_labels=(kind == "wsp"))
    fk = require_flowkit()
    try:
        with _flowkit_pandas(), _quiet():
            results = gs.gate_sample(fk_sample)
    except Exception as exc:  # FlowKit: LookupError for a missing channel, ValueError for bad matrices
        raise GatesFileError(
            f"{path}: FlowKit cannot apply the gates to {data.path.name} ({type(exc).__name__}: {exc}); "
            f"the sample's channels are {data.describe_channels()}."
        ) from None
    gates: list[GateShape] = []
    masks: list[np.ndarray] = []
    coords: list[np.ndarray | None] = []
    for depth in range(1, len(target) + 1):
        sub = target[:depth]
        if sub not in by_path:
            continue  # a QuadrantGate's id: its quadrants are the populations
        name, gpath = by_path[sub]
        try:
            gate = gs.get_gate(name, gpath, sample_id=sid)
            quadrant = None
        except fk.exceptions.QuadrantReferenceError:
            gate = gs.get_gate(gpath[-1], gpath[:-1], sample_id=sid)
            quadrant = name
        shape = _shape(gs, gate, sub, quadrant)
        rpath = gpath[:-1] if quadrant else gpath  # FlowKit files a quadrant under its gate's parent
        with _flowkit_pandas():
            mask = np.asarray(results.get_gate_membership(name, tuple(rpath)), dtype=bool)
        gates.append(shape)
        masks.append(mask)
        if shape.kind == "boolean":
            coords.append(None)
        else:
            with _quiet():
                frame = gs._preprocess_sample_events(fk_sample, gate)  # FlowKit's own gate-space values
            coords.append(np.asarray(frame[_shape_keys(gate, quadrant)].to_numpy(), dtype=np.float32))
    matrices = {k: _matrix(m, k) for k, m in getattr(gs, "comp_matrices", {}).items() if hasattr(m, "detectors")}
    return ImportedGating(path, sid, _fmt(target), gates, masks, coords, used_spill, matrices)


def gate_as_configured(
    raw: FCSData, data: FCSData, *, gates_from: GatesFrom | None, csv_spill: SpillMatrix | None,
    gating: str, scatter: Any, singlet_ratio: tuple[float, float] | None, viability_channel: str | None,
    viability_threshold: float | None, scatter_populations: str,
) -> tuple[GatingResult, ImportedGating | None, list[str]]:
    """Gate a flow file the way its assay is configured: a facility's gates (``gates_from``, applied
    by FlowKit to the events as read, ``raw``) or the automatic gates of
    :func:`zincassay.flow.gating.gate_events` on the compensated ``data``.

    ``csv_spill`` is the matrix of a ``compensate: <csv>`` setting (what GatingML's ``FCS``
    compensation then means), None otherwise. The other keywords are :func:`gate_events`'.

    Returns
    -------
    gating : GatingResult
    imported : ImportedGating or None
    flags : list of str -- ``singlet_gate_skipped`` when the file has no FSC-A/FSC-H pair.
    """
    imported = None
    if gates_from is not None:
        imported = apply_gates(gates_from.file, gates_from.population, raw, spill=csv_spill)
        result = imported.gating_result()
    else:
        result = gate_events(data, gating=gating, scatter=scatter, singlet_ratio=singlet_ratio,
                             viability_channel=viability_channel, viability_threshold=viability_threshold,
                             scatter_populations=scatter_populations)
    skipped = any(g.name == "singlets" and g.note.startswith("skipped") for g in result.gates)
    return result, imported, ["singlet_gate_skipped"] if skipped else []
