"""Sweep specs: YAML (or a dict) parsed into a :class:`SweepSpec` and expanded into points.

The format is described in :mod:`netsim.app.sweep` and ``docs/sweeps.md``. Everything here is
bounded before it is built: the spec file's size (:data:`MAX_SPEC_BYTES`), the YAML nodes it
expands to with its aliases (:data:`MAX_YAML_NODES`, so an alias bomb is refused), the values
of a range (:data:`netsim.core.units.MAX_RANGE_VALUES`) and the points of the sweep
(:data:`MAX_POINTS`, counted from the axis lengths without expanding them).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from netsim.app.experiments import check_kind, check_parameters
from netsim.core.errors import ConfigError
from netsim.core.units import check_range_count, parse_float_range, parse_size_range
from netsim.core.validate import read_text, require_choice, require_int

__all__ = [
    "MAX_POINTS",
    "MAX_SPEC_BYTES",
    "MAX_YAML_NODES",
    "Point",
    "SweepSpec",
    "expand_values",
    "load_spec",
    "load_yaml",
    "point_id",
    "spec_labels",
]

#: Most points one sweep may have (counted before they are built): a larger study is
#: refused; split it into several specs (or raise this for a machine that can hold it).
MAX_POINTS = 100_000
#: Largest spec file read, in bytes.
MAX_SPEC_BYTES = 10 * 2**20
#: Most YAML nodes (values) a document may have, aliases expanded (bounds an "alias bomb"
#: and the memory of a huge list; about 2 s of parsing).
MAX_YAML_NODES = 100_000

_TOP_KEYS = ("name", "description", "kind", "fixed", "mode", "sweep", "seeds", "repetitions")
_CASE_KEYS = ("kind", "fixed", "mode", "sweep")
_MODES = ("product", "zip")
_RANGES = ("sizes", "floats", "ints")
_LABELLED = frozenset({"value", "label"})


@dataclass(frozen=True)
class Point:
    """One point of a sweep: the experiment ``kind`` on ``params`` (``seed`` included);
    ``index`` is its position in :meth:`SweepSpec.points` (the spec order)."""

    kind: str
    params: Mapping[str, Any]
    repetition: int
    point_id: str
    index: int = 0


def point_id(kind: str, params: Mapping[str, Any], repetition: int = 0) -> str:
    """Stable identity of a point: SHA-256 (first 16 hex digits) of its canonical JSON.

    Examples
    --------
    >>> point_id("topo", {"topo": "ring:n=4", "seed": 0}) == point_id(
    ...     "topo", {"seed": 0, "topo": "ring:n=4"})
    True
    """
    text = json.dumps(
        {"kind": kind, "params": dict(params), "repetition": int(repetition)},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _ints(text: Any, name: str) -> list[int]:
    """Integers of a list, a comma list, or an arithmetic or geometric range."""
    if isinstance(text, list | tuple):
        return [require_int(name, v) for v in text]
    parts = str(text).split(":")
    if len(parts) == 1:
        return [require_int(name, v.strip()) for v in str(text).split(",") if v.strip()]
    if len(parts) != 3:
        raise ConfigError(f"{name}: expected START:STOP:STEP or START:STOP:xFACTOR, got {text!r}")
    lo, hi = require_int(name, parts[0].strip()), require_int(name, parts[1].strip())
    step = parts[2].strip()
    if step.startswith("x"):
        factor = require_int(name, step[1:], min=2)
        if lo < 1 or hi < lo:
            raise ConfigError(f"{name}: geometric range needs 1 <= START <= STOP, got {text!r}")
        out, x = [], lo
        while x <= hi:
            out.append(x)
            x *= factor
        return out
    inc = require_int(name, step.lstrip("+"), min=1)
    if hi < lo:
        raise ConfigError(f"{name}: STOP must be >= START, got {text!r}")
    check_range_count(name, (hi - lo) // inc + 1, text)
    return list(range(lo, hi + 1, inc))


def expand_values(name: str, value: Any) -> list[Any]:
    """The values of one swept parameter.

    A list gives its items; ``{sizes: "8B:1GiB:x4"}`` sizes in bytes
    (:func:`netsim.core.units.parse_size_range`); ``{floats: "0.1:0.9:0.2"}`` floats (inclusive);
    ``{ints: "1:64:x2"}`` integers; any other scalar a single value.

    Examples
    --------
    >>> expand_values("size", {"sizes": "1KiB:4KiB:x2"})
    [1024, 2048, 4096]
    >>> expand_values("ranks", {"ints": "2:16:x2"})
    [2, 4, 8, 16]
    """
    if isinstance(value, list | tuple):
        if not value:
            raise ConfigError(f"{name}: swept values must not be empty, got {value!r}")
        return [_unlabelled(name, v) for v in value]
    if isinstance(value, Mapping):
        if len(value) != 1 or next(iter(value)) not in _RANGES:
            raise ConfigError(
                f"{name}: a range must be one of {{sizes: ...}}, {{floats: ...}}, {{ints: ...}}, "
                f"got {dict(value)!r}"
            )
        rkind, text = next(iter(value.items()))
        if rkind == "sizes":
            out: list[Any] = parse_size_range(text, name)
        elif rkind == "floats":
            out = parse_float_range(text, name)
        else:
            out = _ints(text, name)
        if not out:
            raise ConfigError(f"{name}: range gives no values, got {dict(value)!r}")
        return out
    return [value]


def _unlabelled(name: str, item: Any) -> Any:
    """A list item's value: X of ``{value: X, label: "Short name"}`` (checked), else the
    item itself."""
    if not isinstance(item, Mapping) or not _LABELLED & set(item):
        return item
    if set(item) != _LABELLED:
        raise ConfigError(
            f"{name}: a labelled value has exactly the keys value and label, got {dict(item)!r}"
        )
    label = item["label"]
    if not isinstance(label, str) or not label.strip():
        raise ConfigError(f"{name}: label must be a non-empty string, got {label!r}")
    return item["value"]


def spec_labels(raw: Any) -> dict[str, str]:
    """The labels a spec gives its values: ``{str(X): "Short name"}`` for every list item
    ``{value: X, label: "Short name"}`` found in ``raw`` (a parsed spec, at any depth).

    Examples
    --------
    >>> spec_labels({"sweep": {"topo": [{"value": "ring:n=4", "label": "Ring"}, "dgx-h100"]}})
    {'ring:n=4': 'Ring'}
    """
    out: dict[str, str] = {}
    stack = [raw]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            if set(node) == _LABELLED and isinstance(node["label"], str):
                out[str(node["value"])] = node["label"]
            stack.extend(node.values())
        elif isinstance(node, list | tuple):
            stack.extend(node)
    return out


def _mapping(where: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {value!r}")
    return {str(k): v for k, v in value.items()}


@dataclass
class SweepSpec:
    """A parsed sweep spec (see the module docstring); :meth:`points` expands it."""

    cases: list[dict[str, Any]]
    seeds: list[int]
    repetitions: int = 1
    name: str = ""
    text: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    def count(self) -> int:
        """Points of the spec counted from the axis lengths (duplicates included), without
        building them."""
        per_seed = sum(_case_count(case) for case in self.cases)
        return per_seed * len(self.seeds) * self.repetitions

    def points(self) -> list[Point]:
        """Every point in order (cases, then product/zip order, then seed, repetition);
        duplicates (same point_id) appear once."""
        seen: set[str] = set()
        out: list[Point] = []
        for case in self.cases:
            for params in _combinations(case):
                for seed in self.seeds:
                    for rep in range(self.repetitions):
                        p = {**case["fixed"], **params, "seed": seed}
                        pid = point_id(case["kind"], p, rep)
                        if pid not in seen:
                            seen.add(pid)
                            out.append(Point(case["kind"], p, rep, pid, len(out)))
        return out


def _case_count(case: Mapping[str, Any]) -> int:
    lengths = {n: len(v) for n, v in case["sweep"].items()}
    if case["mode"] == "zip":
        if len(set(lengths.values())) > 1:
            raise ConfigError(f"sweep: zip mode needs lists of equal length, got {lengths}")
        return next(iter(lengths.values()), 1)
    return math.prod(lengths.values())


def _combinations(case: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    names = list(case["sweep"])
    lists = [case["sweep"][n] for n in names]
    combos: Iterable[tuple[Any, ...]]
    if case["mode"] == "zip":
        _case_count(case)  # equal lengths
        combos = zip(*lists, strict=True)
    else:
        combos = itertools.product(*lists)
    for combo in combos:
        yield dict(zip(names, combo, strict=True))


def _case(raw: Mapping[str, Any], defaults: Mapping[str, Any], where: str) -> dict[str, Any]:
    unknown = sorted(set(raw) - set(_CASE_KEYS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r}; a case has keys {', '.join(_CASE_KEYS)}"
        )
    kind = raw.get("kind", defaults.get("kind"))
    if kind is None:
        raise ConfigError(f"kind: required (an experiment kind) in {where}, got None")
    check_kind(kind)
    mode = require_choice(f"{where}.mode", raw.get("mode", defaults.get("mode", "product")), _MODES)
    fixed = {
        **_mapping("fixed", defaults.get("fixed")),
        **_mapping(f"{where}.fixed", raw.get("fixed")),
    }
    swept = {
        k: expand_values(k, v) for k, v in _mapping(f"{where}.sweep", raw.get("sweep")).items()
    }
    for name in (*fixed, *swept):
        if name == "seed":
            raise ConfigError("seed: set seeds with the top-level 'seeds' key, not as a parameter")
    both = sorted(set(fixed) & set(swept))
    if both:
        raise ConfigError(f"{both[0]}: is both fixed and swept in {where}")
    check_parameters(kind, {**fixed, **swept})
    return {"kind": kind, "mode": mode, "fixed": fixed, "sweep": swept}


def load_spec(spec: Mapping[str, Any] | str | os.PathLike[str]) -> SweepSpec:
    """Parse a sweep spec from a dict, a YAML file path, or YAML text (with a newline).

    Raises
    ------
    ConfigError
        With one line naming the bad key and value.
    """
    text = ""
    if isinstance(spec, Mapping):
        raw = dict(spec)
    else:
        text = str(spec)
        if "\n" not in text:
            path = Path(text)
            if not path.is_file():
                raise ConfigError(f"spec: no such file, got {text!r}")
            text = _read_text(path)
        raw = load_yaml(text)
        if not isinstance(raw, Mapping):
            raise ConfigError(f"spec: expected a YAML mapping at the top, got {raw!r}")
        raw = dict(raw)
    unknown = sorted(set(raw) - set(_TOP_KEYS))
    if unknown:
        raise ConfigError(f"spec: unknown key {unknown[0]!r}; keys are {', '.join(_TOP_KEYS)}")
    seeds_raw = raw.get("seeds", [0])
    if isinstance(seeds_raw, int) and not isinstance(seeds_raw, bool):
        seeds = list(range(require_int("seeds", seeds_raw, min=1, max=MAX_POINTS)))
    elif isinstance(seeds_raw, list | tuple) and seeds_raw:
        seeds = [require_int("seeds", s, min=0) for s in seeds_raw]
    else:
        raise ConfigError(f"seeds: expected a count >= 1 or a non-empty list, got {seeds_raw!r}")
    reps = require_int("repetitions", raw.get("repetitions", 1), min=1, max=MAX_POINTS)
    sweep = raw.get("sweep", {})
    if isinstance(sweep, list):
        if not sweep:
            raise ConfigError("sweep: a list of cases must not be empty, got []")
        cases = [_case(_mapping(f"sweep[{i}]", c), raw, f"sweep[{i}]") for i, c in enumerate(sweep)]
    else:
        cases = [_case({"sweep": sweep}, raw, "spec")]
    sp = SweepSpec(cases, seeds, reps, str(raw.get("name", "")), "", raw)
    n = sp.count()
    if n > MAX_POINTS:
        raise ConfigError(
            f"sweep: the spec has {n} points, more than the limit of {MAX_POINTS} "
            f"(netsim.app.sweep_spec.MAX_POINTS); split it into smaller sweeps"
        )
    sp.text = text or yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)
    return sp


def _expanded_nodes(root: yaml.Node) -> int:
    """Nodes of the document with every alias expanded, counted without expanding them
    (each distinct node once, post-order, no recursion)."""
    size: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, ready = stack.pop()
        if id(node) in size:
            continue
        kids = _children(node)
        if ready or not kids:
            size[id(node)] = min(1 + sum(size[id(k)] for k in kids), MAX_YAML_NODES + 1)
            continue
        stack.append((node, True))
        stack.extend((k, False) for k in kids if id(k) not in size)
    return size[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that stops at MAX_YAML_NODES nodes: while composing (a long document is
    not read to its end) and with every alias expanded (an alias bomb)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self._nodes += 1
        if self._nodes > MAX_YAML_NODES:
            _too_many_nodes()
        return super().compose_node(parent, index)

    def compose_document(self) -> yaml.Node | None:  # type: ignore[override]
        node = super().compose_document()
        if node is not None and _expanded_nodes(node) > MAX_YAML_NODES:
            _too_many_nodes()
        return node


def _too_many_nodes() -> None:
    raise ConfigError(
        f"spec: the YAML has more than {MAX_YAML_NODES} values, aliases expanded "
        f"(netsim.app.sweep_spec.MAX_YAML_NODES); use ranges ({{ints: ...}}) for long axes"
    )


def load_yaml(text: str, name: str = "spec") -> Any:
    """Parse YAML ``text`` safely and within bounds (see :data:`MAX_YAML_NODES`).

    Raises
    ------
    ConfigError
        If the text is not valid YAML, nests too deeply, or expands to too many nodes.
    """
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "invalid YAML"
        raise ConfigError(f"{name}: invalid YAML ({first})") from None
    except RecursionError:
        raise ConfigError(f"{name}: invalid YAML (nested too deeply)") from None


def _read_text(path: Path) -> str:
    """A spec file's text (see :func:`netsim.core.validate.read_text`)."""
    return read_text("spec", path, MAX_SPEC_BYTES)
