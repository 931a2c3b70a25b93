"""GatingML 2.0 writer: the gates zincassay used, in the form FlowJo and FlowKit load.

Written from the specification (Spidlen et al., Cytometry A 2015;87:683-687, "Gating-ML 2.0")
with the standard library, so writing needs no FlowKit. A gate is written from its
:class:`zincassay.flow.gates_io.GateShape`, whether it was imported from a workspace or drawn by
:mod:`zincassay.flow.gating`; :func:`auto_gate_shapes` describes the automatic gates exactly:

- lymphocytes: an ``EllipsoidGate`` on ``flog(T=10, M=1)`` of FSC and SSC, which is ``log10``
  (``(1/M) log10(x/T) + 1``), with our mean, covariance and Mahalanobis radius squared; both
  include the boundary.
- singlets: the band ``low <= FSC-A/FSC-H <= high`` is the wedge between the lines
  ``FSC-A = low * FSC-H`` and ``FSC-A = high * FSC-H``, written as a linear ``PolygonGate``
  (apex at the origin, closed beyond the largest FSC-H). A polygon loads everywhere, where a
  GatingML ``fratio`` dimension is not read by every program.
- live: a 1-D ``RectangleGate`` on the viability channel. GatingML ranges are ``min <= x < max``
  and ours is ``x <= threshold``, so ``max`` is the next float above the threshold.

Gates are nested by their population paths (the parent of ``/a/b`` is ``/a`` when that is among
the gates written). Ids are the population names made XML names (other characters become ``_``);
each gate's full path is kept in its ``custom_info``. A shape with ``complement`` is written as
the shape plus a ``not`` BooleanGate holding the population.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from zincassay.flow.gates_io import GateDimension, GateShape, UnsupportedGateError
from zincassay.flow.gating import GatingResult
from zincassay.io.fcs import FCSData, SpillMatrix

__all__ = ["NS", "auto_gate_shapes", "gatingml_bytes", "gatingml_ids", "write_gatingml"]

NS = {
    "gating": "http://www.isac-net.org/std/Gating-ML/v2.0/gating",
    "transforms": "http://www.isac-net.org/std/Gating-ML/v2.0/transformations",
    "data-type": "http://www.isac-net.org/std/Gating-ML/v2.0/datatypes",
}
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)

#: log10 as GatingML's flog: (1/M) log10(x/T) + 1 with T = 10, M = 1.
LOG10 = {"type": "flog", "T": 10.0, "M": 1.0}


def _q(prefix: str, name: str) -> str:
    return f"{{{NS[prefix]}}}{name}"


def _num(x: float) -> str:
    return repr(float(x))  # shortest string that reads back as the same float


def _ncname(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.\-]", "_", name.strip()) or "gate"
    return s if re.match(r"[A-Za-z_]", s) else "_" + s


def gatingml_ids(gates: Sequence[GateShape]) -> dict[str, str]:
    """GatingML id of every gate, by population path (unique, XML names)."""
    ids: dict[str, str] = {}
    used: set[str] = set()
    for g in gates:
        base = _ncname(g.name)
        gid, k = base, 1
        while gid in used:
            k += 1
            gid = f"{base}_{k}"
        used.add(gid)
        ids[g.population] = gid
    return ids


def _transform_el(tid: str, spec: dict, population: str) -> ET.Element:
    el = ET.Element(_q("transforms", "transformation"), {_q("transforms", "id"): tid})
    kind = spec["type"]
    if kind == "flowjo_log":  # FlowJo: log10(max(x, offset)/offset)/decades == flog below the clamp
        spec = {"type": "flog", "T": spec["offset"] * 10 ** spec["decades"], "M": spec["decades"]}
        kind = "flog"
    params = {"flin": "TA", "flog": "TM", "fasinh": "TMA", "logicle": "TWMA", "hyperlog": "TWMA", "fratio": "ABC"}
    if kind not in params:
        raise UnsupportedGateError(
            f"gate {population}: its {kind} scale has no GatingML 2.0 equivalent, so it cannot be written; "
            "set the channel's transform to logicle, arcsinh or log in FlowJo"
        )
    t = ET.SubElement(el, _q("transforms", kind), {_q("transforms", p): _num(spec[p]) for p in params[kind]})
    if kind == "fratio":
        for ch in (spec["numerator"], spec["denominator"]):
            ET.SubElement(t, _q("data-type", "fcs-dimension"), {_q("data-type", "name"): ch})
    return el


class _Writer:
    def __init__(self, matrices: Mapping[str, SpillMatrix]) -> None:
        self.root = ET.Element(_q("gating", "Gating-ML"))
        self.transforms: dict[str, str] = {}
        self.matrix_ids: dict[str, str] = {}
        for name, m in sorted(matrices.items()):
            mid = _ncname(name)
            self.matrix_ids[name] = mid
            el = ET.SubElement(self.root, _q("transforms", "spectrumMatrix"), {_q("transforms", "id"): mid})
            for tag in ("fluorochromes", "detectors"):
                sub = ET.SubElement(el, _q("transforms", tag))
                for lbl in m.labels:
                    ET.SubElement(sub, _q("data-type", "fcs-dimension"), {_q("data-type", "name"): lbl})
            for row in np.asarray(m.matrix, dtype=float):
                spec = ET.SubElement(el, _q("transforms", "spectrum"))
                for v in row:
                    ET.SubElement(spec, _q("transforms", "coefficient"), {_q("transforms", "value"): _num(v)})

    def transform(self, spec: dict, population: str) -> str:
        key = repr(sorted((k, v) for k, v in spec.items() if k != "then"))
        if key not in self.transforms:
            tid = f"T{len(self.transforms) + 1}_{spec['type']}"
            self.root.append(_transform_el(tid, spec, population))
            self.transforms[key] = tid
        return self.transforms[key]

    def comp(self, ref: str, population: str) -> str:
        if ref in ("uncompensated", "FCS"):
            return ref
        if ref not in self.matrix_ids:
            raise UnsupportedGateError(
                f"gate {population}: compensation matrix {ref!r} was not given to the GatingML writer"
            )
        return self.matrix_ids[ref]

    def dimension(self, parent: ET.Element, d: GateDimension, population: str, ranged: bool) -> None:
        attrs = {_q("gating", "compensation-ref"): self.comp(d.compensation, population)}
        spec = d.transform
        ratio = spec is not None and spec["type"] == "fratio"
        scale = spec.get("then") if ratio else spec
        if scale:
            attrs[_q("gating", "transformation-ref")] = self.transform(scale, population)
        if ranged and d.min is not None:
            attrs[_q("gating", "min")] = _num(d.min)
        if ranged and d.max is not None:
            attrs[_q("gating", "max")] = _num(d.max)
        el = ET.SubElement(parent, _q("gating", "dimension"), attrs)
        if ratio:
            ET.SubElement(el, _q("data-type", "new-dimension"),
                          {_q("data-type", "transformation-ref"): self.transform(spec, population)})
        else:
            ET.SubElement(el, _q("data-type", "fcs-dimension"), {_q("data-type", "name"): d.channel})

    def gate(self, g: GateShape, gid: str, parent_id: str | None, ids: Mapping[str, str]) -> None:
        shape_id = f"{gid}_shape" if g.complement else gid
        attrs = {_q("gating", "id"): shape_id}
        if parent_id:
            attrs[_q("gating", "parent_id")] = parent_id
        if g.kind == "boolean":
            op, refs = g.boolean
            el = ET.SubElement(self.root, _q("gating", "BooleanGate"), attrs)
            _info(el, g.population)
            body = ET.SubElement(el, _q("gating", op))
            for ref, complement in refs:
                if ref not in ids:
                    raise UnsupportedGateError(
                        f"gate {g.population}: boolean gate refers to {ref}, which is not among the gates written"
                    )
                ra = {_q("gating", "ref"): ids[ref]}
                if complement:
                    ra[_q("gating", "use-as-complement")] = "true"
                ET.SubElement(body, _q("gating", "gateReference"), ra)
            return
        tag = {"rectangle": "RectangleGate", "polygon": "PolygonGate", "ellipse": "EllipsoidGate"}.get(g.kind)
        if tag is None:
            raise UnsupportedGateError(f"gate {g.population}: kind {g.kind!r} cannot be written as GatingML 2.0")
        el = ET.SubElement(self.root, _q("gating", tag), attrs)
        _info(el, g.population)
        for d in g.dimensions:
            self.dimension(el, d, g.population, ranged=(g.kind == "rectangle"))
        if g.kind == "polygon":
            for v in np.asarray(g.vertices, dtype=float):
                vx = ET.SubElement(el, _q("gating", "vertex"))
                for c in v:
                    ET.SubElement(vx, _q("gating", "coordinate"), {_q("data-type", "value"): _num(c)})
        elif g.kind == "ellipse":
            mean = ET.SubElement(el, _q("gating", "mean"))
            for c in np.asarray(g.mean, dtype=float):
                ET.SubElement(mean, _q("gating", "coordinate"), {_q("data-type", "value"): _num(c)})
            cov = ET.SubElement(el, _q("gating", "covarianceMatrix"))
            for row in np.asarray(g.covariance, dtype=float):
                r = ET.SubElement(cov, _q("gating", "row"))
                for v in row:
                    ET.SubElement(r, _q("gating", "entry"), {_q("data-type", "value"): _num(v)})
            ET.SubElement(el, _q("gating", "distanceSquare"), {_q("data-type", "value"): _num(g.distance_square)})
        if g.complement:
            battrs = {_q("gating", "id"): gid}
            if parent_id:
                battrs[_q("gating", "parent_id")] = parent_id
            b = ET.SubElement(self.root, _q("gating", "BooleanGate"), battrs)
            _info(b, g.population)
            ET.SubElement(ET.SubElement(b, _q("gating", "not")), _q("gating", "gateReference"),
                          {_q("gating", "ref"): shape_id})


def _info(el: ET.Element, population: str) -> None:
    info = ET.SubElement(el, _q("data-type", "custom_info"))
    ET.SubElement(info, "zincassay_population").text = population


def _parent(population: str, known: Iterable[str]) -> str | None:
    best = None
    for p in known:
        if p != population and population.startswith(p + "/") and (best is None or len(p) > len(best)):
            best = p
    return best


def gatingml_bytes(gates: Sequence[GateShape], *, matrices: Mapping[str, SpillMatrix] | None = None) -> bytes:
    """GatingML 2.0 document (UTF-8 bytes) holding ``gates``.

    Parameters
    ----------
    gates : sequence of GateShape
        Parents before children is not required; nesting follows the population paths.
    matrices : mapping of str to SpillMatrix, optional
        Matrices that dimensions name in ``compensation`` (besides ``"FCS"`` and ``"uncompensated"``).

    Raises
    ------
    UnsupportedGateError
        A gate uses a scale GatingML cannot express (FlowJo's biex) or refers to a gate not given.
    """
    w = _Writer(matrices or {})
    ids = gatingml_ids(gates)
    pops = [g.population for g in gates]
    for g in gates:
        parent = _parent(g.population, pops)
        w.gate(g, ids[g.population], ids[parent] if parent else None, ids)
    ET.indent(w.root, space="  ")
    return ET.tostring(w.root, encoding="UTF-8", xml_declaration=True) + b"\n"


def write_gatingml(path: str | Path, gates: Sequence[GateShape], *,
                   matrices: Mapping[str, SpillMatrix] | None = None) -> Path:
    """Write :func:`gatingml_bytes` to ``path`` atomically (``.part`` then rename). Returns the path."""
    from zincassay.tables import atomic_path

    blob = gatingml_bytes(gates, matrices=matrices)
    with atomic_path(path) as tmp:
        tmp.write_bytes(blob)
    return Path(path)


def auto_gate_shapes(
    gating: GatingResult, *, fsc_h_max: float, compensated: Iterable[str] = (), compensation_ref: str = "FCS",
    root: str = "", data: FCSData | None = None,
) -> list[GateShape]:
    """Shapes of the automatic gates of :func:`zincassay.flow.gating.gate_events` that were applied.

    Parameters
    ----------
    gating : GatingResult
    fsc_h_max : float
        Linear FSC-H beyond every event (e.g. twice the larger of ``$PnR`` and the data maximum):
        where the singlet wedge is closed.
    compensated : iterable of str
        Channels (``$PnN``) the gated events were compensated in (the spill matrix's labels).
    compensation_ref : str
        ``"FCS"`` when the file's own matrix was used, else the id under which the matrix is given
        to :func:`write_gatingml`.
    root : str
        Path the gates hang under (``""`` = all events).
    data : FCSData, optional
        The gated file: channels the gates name by ``$PnS`` (e.g. a viability channel configured as
        ``LiveDead``) are written by their ``$PnN``, as GatingML and FlowKit name them.

    Returns
    -------
    list of GateShape, outermost first: ``/lymphocytes``, ``/lymphocytes/singlets``,
    ``/lymphocytes/singlets/live`` (skipped gates are left out of the chain).
    """
    comp = set(compensated)

    def pnn(ch: str) -> str:
        return data.channel_names[data.channel_index(ch)] if data is not None else ch

    def ref(ch: str) -> str:
        return compensation_ref if ch in comp else "uncompensated"

    out: list[GateShape] = []
    path = root
    for g in gating.gates:
        p = g.params
        if g.name == "lymphocytes" and "center_log10" in p:
            path = f"{path}/lymphocytes"
            dims = (GateDimension(p["fsc"], ref(p["fsc"]), dict(LOG10)), GateDimension(p["ssc"], ref(p["ssc"]), dict(LOG10)))
            out.append(GateShape("lymphocytes", path, "ellipse", dims, mean=np.asarray(p["center_log10"], float),
                                 covariance=np.asarray(p["cov_log10"], float),
                                 distance_square=float(p["mahalanobis2_max"])))
        elif g.name == "singlets" and "ratio_low" in p:
            path = f"{path}/singlets"
            h = float(fsc_h_max)
            verts = np.array([[0.0, 0.0], [h, p["ratio_low"] * h], [h, p["ratio_high"] * h]])
            dims = (GateDimension(p["fsc_h"], ref(p["fsc_h"])), GateDimension(p["fsc_a"], ref(p["fsc_a"])))
            out.append(GateShape("singlets", path, "polygon", dims, vertices=verts))
        elif g.name == "live" and "threshold" in p:
            path = f"{path}/live"
            upper = float(np.nextafter(float(p["threshold"]), np.inf))
            ch = pnn(p["channel"])
            out.append(GateShape("live", path, "rectangle", (GateDimension(ch, ref(ch), max=upper),)))
    return out
