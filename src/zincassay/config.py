"""The config contract: JSON-schema validation with defaults filled in.

The schemas live in ``workflow/schemas/`` (Snakemake Workflow Catalog layout) and are shipped
inside the wheel as ``zincassay/schemas``. Unknown keys are errors, each reported with the
closest valid key.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from zincassay.errors import ValidationError

__all__ = ["KD_NM", "build_settings", "config_problems", "fill_defaults", "load_config_file", "resolve_config", "schema"]

#: Dissociation constants (nM) of the supported probes; see docs/science.md §2.
KD_NM = {"FluoZin-3": 15.0, "Zinpyr-1": 0.7}


def _schema_dir() -> Path:
    packaged = resources.files("zincassay") / "schemas"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "workflow" / "schemas"


@cache
def schema(name: str) -> dict:
    """Load ``workflow/schemas/<name>.schema.yaml``."""
    path = _schema_dir() / f"{name}.schema.yaml"
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def fill_defaults(instance: Any, sch: dict) -> Any:
    """Return a copy of ``instance`` with every missing key that has a schema default filled in."""
    if not isinstance(instance, dict) or sch.get("type") != "object":
        return instance
    out = copy.deepcopy(instance)
    for key, sub in sch.get("properties", {}).items():
        if key not in out and "default" in sub:
            out[key] = copy.deepcopy(sub["default"])
        if key in out:
            out[key] = fill_defaults(out[key], sub)
    return out


def _where(path: Any) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def config_problems(cfg: dict) -> list[str]:
    """Every schema problem in a config, one sentence each naming the key and the fix."""
    sch = schema("config")
    validator = jsonschema.Draft202012Validator(sch)
    problems = []
    for err in sorted(validator.iter_errors(cfg), key=lambda e: list(map(str, e.absolute_path))):
        where = _where(err.absolute_path)
        if err.validator == "additionalProperties":
            allowed = sorted(err.schema.get("properties", {}))
            extra = sorted(set(err.instance) - set(allowed))
            for key in extra:
                guess = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean {guess[0]!r}?" if guess else f"allowed keys: {', '.join(allowed)}"
                full = f"{where}.{key}" if err.absolute_path else key
                problems.append(f"config key {full!r} is unknown; {hint}")
        elif err.validator == "enum":
            problems.append(f"config key {where}: {err.instance!r} is not one of {err.validator_value}")
        elif err.validator == "type":
            problems.append(f"config key {where}: {err.instance!r} should be of type {err.validator_value}")
        elif err.validator in ("maximum", "minimum", "exclusiveMinimum", "exclusiveMaximum"):
            word = {"maximum": "at most", "minimum": "at least", "exclusiveMinimum": "above",
                    "exclusiveMaximum": "below"}[err.validator]
            problems.append(f"config key {where}: {err.instance!r} is out of range; it must be {word} "
                            f"{err.validator_value:g}")
        else:
            problems.append(f"config key {where}: {err.message}")
    if not problems:
        problems.extend(_unordered_pairs(cfg, sch))
        cond = cfg.get("conditions", {})
        order = cond.get("order", [])
        ref = cond.get("reference")
        if ref is not None and order and ref not in order:
            problems.append(
                f"config key conditions.reference: {ref!r} is not in conditions.order {order}; "
                "add it to the order or pick one of those"
            )
        for section in ("cfse", "zincflow"):
            comp = cfg.get(section, {}).get("compensate", "auto")
            if comp not in ("auto", "off") and not Path(comp).is_file():
                problems.append(
                    f"config key {section}.compensate: {comp!r} is neither auto, off, nor an existing CSV file"
                )
            elif comp not in ("auto", "off"):
                from zincassay.io.fcs import CompensationError, read_spill_csv

                try:
                    read_spill_csv(comp)
                except CompensationError as exc:
                    problems.append(f"config key {section}.compensate: {exc}")
        problems.extend(_gates_from_problems(cfg))
        if "zincflow" in cfg:  # subsets and marker keys: a typo surfaces before any job runs
            from zincassay.errors import ZincassayError
            from zincassay.zincflow.settings import ZincflowSettings

            try:
                ZincflowSettings.from_config(cfg["zincflow"])
            except ZincassayError as exc:
                problems.append(str(exc))
    return problems


def _gates_from_problems(cfg: dict) -> list[str]:
    """A ``gates_from`` file that does not exist, or a population it does not hold (listing those it does)."""
    out = []
    for section in ("cfse", "zincflow"):
        spec = cfg.get(section, {}).get("gates_from")
        if not spec:
            continue
        path = Path(spec["file"])
        if not path.is_file():
            out.append(f"config key {section}.gates_from.file: {str(path)!r} does not exist; give the path of a "
                       "FlowJo workspace (.wsp) or GatingML 2.0 file, relative to the working directory")
            continue
        from zincassay.errors import ZincassayError
        from zincassay.flow.gates_io import normalise_population, population_paths

        try:
            known = population_paths(path)
        except ZincassayError as exc:
            out.append(f"config key {section}.gates_from: {exc}")
            continue
        want = normalise_population(spec["population"])
        if known and want not in known:
            out.append(f"config key {section}.gates_from.population: {spec['population']!r} is not in {path.name}; "
                       f"its populations: {', '.join(known)}")
    return out


def _unordered_pairs(instance: Any, sch: dict, path: tuple = ()) -> list[str]:
    """Problems with ``[low, high]`` pairs (schema keyword ``x-ordered: true``) whose low is not below high."""
    out = []
    if sch.get("x-ordered") and isinstance(instance, list) and len(instance) == 2 and not instance[0] < instance[1]:
        out.append(f"config key {'.'.join(path)}: {instance} must be [low, high] with low < high; swap the values")
    if isinstance(instance, dict):
        for key, sub in sch.get("properties", {}).items():
            if key in instance:
                out.extend(_unordered_pairs(instance[key], sub, (*path, key)))
    return out


def resolve_config(cfg: dict | None) -> dict:
    """Validate a config and fill in defaults; raise :class:`ValidationError` listing all problems."""
    cfg = dict(cfg or {})
    filled = fill_defaults(cfg, schema("config"))
    problems = config_problems(filled)
    if problems:
        raise ValidationError(problems, "the config")
    return filled


def load_config_file(path: str | Path) -> dict:
    """Read a YAML config file; a YAML syntax error becomes a :class:`ValidationError`."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except FileNotFoundError:
        raise ValidationError([f"config file {path} does not exist"]) from None
    except yaml.YAMLError as exc:
        raise ValidationError([f"{path} is not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise ValidationError([f"{path} must hold a mapping of keys (e.g. 'samples: ...')"])
    return data


T = typing.TypeVar("T")


def build_settings(cls: type[T], section: dict) -> T:
    """Build a settings dataclass from a validated config section (defaults already filled in).

    Every field must be present in ``section``: the schema is the only place defaults live, so a
    missing key is a bug in the schema, not something to paper over here. Nested dataclass
    fields are built recursively; lists become tuples (settings are immutable).

    Parameters
    ----------
    cls : dataclass type
        The settings class (its fields mirror the schema section's keys).
    section : dict
        The config section, as returned by :func:`resolve_config` (or its JSON round trip).
    """
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in section:
            raise KeyError(f"config section lacks {f.name!r}; the schema must give it a default")
        v = section[f.name]
        kind = hints[f.name]
        if v is not None and typing.get_origin(kind) in (typing.Union, types.UnionType):
            kind = next((a for a in typing.get_args(kind) if dataclasses.is_dataclass(a)), kind)
        if dataclasses.is_dataclass(kind) and v is not None:
            v = build_settings(kind, v)  # type: ignore[arg-type]
        elif isinstance(v, list):
            v = tuple(v)
        values[f.name] = v
    return cls(**values)
