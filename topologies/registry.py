"""Build topologies from spec strings, YAML mappings and preset names.

A *spec* names a family and its parameters, ``FAMILY:NAME=VALUE,NAME=VALUE``::

    torus:dims=8x8,bandwidth=100GB/s,latency=500ns
    fat_tree:k=8            (``fat-tree`` works too: ``-`` and ``_`` are interchangeable)
    dragonfly:a=4,p=2,h=2
    dgx-h100                (a preset: a family with fixed parameters and a cited source)
    dgx-h100:latency=20ns   (a preset with some parameters overridden)

The mapping form, for YAML files, is ``{"family": "torus", "dims": "8x8", ...}`` (``family``
may also be a preset name, or use the key ``preset``).

Every value is converted by the kind its family module declares for the parameter
(``PARAMETER_KINDS``, see :mod:`topologies.options`): ``bandwidth`` with
:func:`~netsim.core.units.parse_bandwidth`, ``time`` with :func:`~netsim.core.units.parse_time`,
``size`` with :func:`~netsim.core.units.parse_size`, then ``int``, ``float``, ``bool`` and ``str``
(``dims``-like strings such as ``4x4x8`` pass through; the generator checks them). A family
parameter without a declared kind is an error, never a guess from its name.
``none`` gives ``None`` where the default is ``None`` (the link type's default).

A generator parameter holding a :class:`~topologies.graph.LinkSpec` (a class of links, e.g.
``hierarchical``'s ``nic``) is written in specs as one key per field its module declares:
``nic_link``, ``nic_bandwidth``, ``nic_latency`` (a trailing ``_`` of the parameter is
dropped: ``global_`` -> ``global_bandwidth``). :func:`families` lists those keys, and
:func:`build` packs them into the LinkSpec.

The families live in one module each (:data:`FAMILY_MODULES`); every module's ``PRESETS``
table is collected.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from functools import cache
from typing import Any

import networkx as nx

from netsim.core.errors import ConfigError
from netsim.core.units import format_bandwidth, format_time, parse_bandwidth, parse_time
from topologies.graph import LinkSpec
from topologies.options import KINDS, convert

__all__ = [
    "FAMILY_MODULES",
    "build",
    "families",
    "parse_spec",
    "presets",
    "spec_string",
]

#: family name -> (module of :mod:`topologies`, generator function name).
FAMILY_MODULES: dict[str, tuple[str, str]] = {
    "torus": ("torus", "torus"),
    "mesh": ("torus", "mesh"),
    "fat_tree": ("trees", "fat_tree"),
    "tree": ("trees", "tree"),
    "dragonfly": ("dragonfly", "dragonfly"),
    "nvswitch": ("nvswitch", "nvswitch"),
    "hierarchical": ("hierarchical", "hierarchical"),
    "wafer": ("wafer", "wafer"),
}


# --------------------------------------------------------------------------- discovery


def _module(modname: str) -> Any:
    try:
        return importlib.import_module(f"topologies.{modname}")
    except ImportError as exc:  # pragma: no cover - only while a family is being written
        raise ConfigError(f"topology: module topologies.{modname} is unavailable ({exc})") from None


def _function(family: str) -> Callable[..., nx.Graph]:
    modname, funcname = FAMILY_MODULES[family]
    return getattr(_module(modname), funcname)


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0].strip() if (doc or "").strip() else ""


def _signature(func: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    return {
        p.name: p
        for p in inspect.signature(func).parameters.values()
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    }


@cache
def _groups(family: str) -> dict[str, dict[str, str]]:
    """The :class:`~topologies.graph.LinkSpec` parameters of ``family``'s generator:
    ``{parameter: {spec key: field}}``. A parameter ``nic`` (or ``global_``) is written in
    specs as the keys ``nic_link``, ``nic_bandwidth``, ``nic_latency`` (``global_...``) that
    its module declares in ``PARAMETER_KINDS``."""
    modname, funcname = FAMILY_MODULES[family]
    declared = _module(modname).PARAMETER_KINDS.get(funcname, {})
    out = {}
    for name, p in _signature(_function(family)).items():
        if isinstance(p.default, LinkSpec):
            prefix = name.rstrip("_")
            keys = {f"{prefix}_{f.name}": f.name for f in fields(LinkSpec)}
            out[name] = {k: f for k, f in keys.items() if k in declared}
    return out


def _parameters(family: str) -> dict[str, inspect.Parameter]:
    """The parameters of ``family`` as specs name them: a LinkSpec parameter is replaced by
    its keys (defaults from the parameter's default LinkSpec)."""
    groups = _groups(family)
    out = {}
    for name, p in _signature(_function(family)).items():
        if name not in groups:
            out[name] = p
            continue
        for key, field in groups[name].items():
            default = getattr(p.default, field)
            out[key] = inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=default)
    return out


def _grouped(family: str, params: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for the generator: spec keys of a group packed into its LinkSpec."""
    out = dict(params)
    sig = _signature(_function(family))
    for name, keys in _groups(family).items():
        given = {field: out.pop(key) for key, field in keys.items() if key in out}
        if given:
            out[name] = replace(sig[name].default, **given)
    return out


def families() -> dict[str, dict[str, Any]]:
    """Describe every family: ``{name: {"description", "module", "function", "parameters"}}``.

    ``parameters`` maps each parameter name to ``{"default": value or None, "required":
    bool, "kind": "bandwidth"|"time"|"size"|"int"|"float"|"bool"|"str"}``.
    """
    out: dict[str, dict[str, Any]] = {}
    for fam, (modname, funcname) in FAMILY_MODULES.items():
        func = _function(fam)
        kinds = _kinds(fam)
        out[fam] = {
            "description": _first_line(func.__doc__),
            "module": f"topologies.{modname}",
            "function": funcname,
            "parameters": {
                name: {
                    "default": None if p.default is inspect.Parameter.empty else p.default,
                    "required": p.default is inspect.Parameter.empty,
                    "kind": kinds[name],
                }
                for name, p in _parameters(fam).items()
            },
        }
    return out


@cache
def _preset_table() -> dict[str, dict[str, Any]]:
    by_func = {v: k for k, v in FAMILY_MODULES.items()}
    table: dict[str, dict[str, Any]] = {}
    for modname in dict.fromkeys(m for m, _ in FAMILY_MODULES.values()):
        for name, entry in getattr(_module(modname), "PRESETS", {}).items():
            family = by_func.get((modname, entry["func"]))
            if family is None:
                raise ConfigError(
                    f"preset {name!r}: func {entry['func']!r} is not a family of "
                    f"topologies.{modname}"
                )
            if name in table:
                raise ConfigError(f"preset {name!r}: defined twice (topologies.{modname})")
            table[name] = {
                "family": family,
                "params": dict(entry.get("params", {})),
                "source": entry.get("source", ""),
                "description": entry.get("description", ""),
            }
    return table


def presets() -> dict[str, dict[str, Any]]:
    """Describe every preset: ``{name: {"family", "params", "source", "description"}}``."""
    return {k: {**v, "params": dict(v["params"])} for k, v in _preset_table().items()}


# --------------------------------------------------------------------------- conversion


def _kinds(family: str) -> dict[str, str]:
    """The declared kind of every parameter of ``family``'s generator.

    Raises ConfigError if the module's ``PARAMETER_KINDS`` misses a parameter, names one the
    generator does not take, or declares a kind outside :data:`topologies.options.KINDS`.
    """
    modname, funcname = FAMILY_MODULES[family]
    declared = dict(_module(modname).PARAMETER_KINDS.get(funcname, {}))
    where = f"topologies.{modname}.PARAMETER_KINDS[{funcname!r}]"
    sig = _parameters(family)
    for name in sig:
        if name not in declared:
            raise ConfigError(f"{where}: parameter {name!r} has no declared kind")
    for name, kind in declared.items():
        if name not in sig:
            raise ConfigError(f"{where}: {name!r} is not a parameter of {funcname}")
        if kind not in KINDS:
            raise ConfigError(
                f"{where}: kind of {name!r} must be one of {', '.join(KINDS)}, got {kind!r}"
            )
    return {name: declared[name] for name in sig}


def _convert(where: str, p: inspect.Parameter, kind: str, value: Any) -> Any:
    """Convert one raw value (usually a string) for parameter ``p`` of declared ``kind``."""
    name = f"{where}: {p.name}"
    if isinstance(value, str) and value.strip().lower() in ("none", "default"):
        if p.default is None:
            return None
        raise ConfigError(
            f"{name}: 'none' is only allowed where the default is None, got {value!r}"
        )
    return convert(kind, name, value)


# --------------------------------------------------------------------------- parsing


def _normalise_family(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _resolve(head: str) -> tuple[str, dict[str, Any], str | None]:
    """Return ``(family, preset params, preset name)`` for a family or preset name."""
    table = _preset_table()
    key = head.strip()
    if key in table:
        return table[key]["family"], dict(table[key]["params"]), key
    alt = key.lower().replace("_", "-")
    if alt in table:
        return table[alt]["family"], dict(table[alt]["params"]), alt
    fam = _normalise_family(key)
    if fam in FAMILY_MODULES:
        return fam, {}, None
    known = sorted(FAMILY_MODULES) + sorted(table)
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(
        f"topology: unknown family or preset {head!r}{hint}; families: "
        f"{', '.join(sorted(FAMILY_MODULES))}; presets: {', '.join(sorted(table))}"
    )


def _split_items(where: str, text: str) -> dict[str, str]:
    items: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise ConfigError(f"{where}: expected NAME=VALUE, got {item.strip()!r}")
        key, _, val = item.partition("=")
        key = key.strip()
        if key in items:
            raise ConfigError(f"{where}: parameter {key!r} given twice")
        items[key] = val.strip()
    return items


def parse_spec(spec: str | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Parse a spec into ``(family, keyword arguments)`` for the family's generator.

    Preset parameters come first and the spec's own parameters override them. Values are
    converted to SI numbers, ints, floats and bools (see the module docstring).

    Raises
    ------
    ConfigError
        Unknown family or preset, unknown parameter (the message lists the known ones),
        a value that does not convert, or a required parameter that is missing.

    Examples
    --------
    >>> parse_spec("torus:dims=4x4,bandwidth=100GB/s")
    ('torus', {'dims': '4x4', 'bandwidth': 100000000000.0})
    """
    if isinstance(spec, Mapping):
        raw = dict(spec)
        head = raw.pop("family", None) or raw.pop("preset", None)
        raw.pop("preset", None)
        if not isinstance(head, str):
            raise ConfigError(
                f"topology: a mapping needs a 'family' (or 'preset') key, got {spec!r}"
            )
    elif isinstance(spec, str):
        head, _, rest = spec.strip().partition(":")
        if not head.strip():
            raise ConfigError(f"topology: expected FAMILY:NAME=VALUE,... or a preset, got {spec!r}")
        raw = _split_items(head.strip(), rest)
    else:
        raise ConfigError(f"topology: expected a spec string or a mapping, got {spec!r}")
    family, params, _ = _resolve(head)
    where = head.strip()
    sig = _parameters(family)
    kinds = _kinds(family)
    for key, value in raw.items():
        key = str(key).strip()
        if key not in sig:
            close = difflib.get_close_matches(key, list(sig), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown parameter {key!r}{hint}; known: {', '.join(sig)}")
        params[key] = _convert(where, sig[key], kinds[key], value)
    missing = [
        n for n, p in sig.items() if p.default is inspect.Parameter.empty and n not in params
    ]
    if missing:
        raise ConfigError(
            f"{where}: missing required parameter {missing[0]!r}; e.g. {family}:{missing[0]}=..."
        )
    return family, params


def build(spec: str | Mapping[str, Any]) -> nx.Graph:
    """Build the topology a spec, preset name or mapping describes.

    Parameters
    ----------
    spec : str or Mapping
        ``"torus:dims=8x8,bandwidth=100GB/s"``, ``"dgx-h100"``, ``"dgx-h100:latency=20ns"``
        or ``{"family": "torus", "dims": "8x8"}``.

    Returns
    -------
    networkx.Graph
        Following the attribute contract of :mod:`topologies`; ``G.graph["name"]`` is the
        spec string (for a mapping, :func:`spec_string` of it).

    Raises
    ------
    ConfigError
        See :func:`parse_spec`; errors of the generator are prefixed with the preset name
        the spec starts with, else the family.

    Examples
    --------
    >>> G = build("torus:dims=4x4")
    >>> G.graph["chips"], G.graph["name"]
    (16, 'torus:dims=4x4')
    """
    family, params = parse_spec(spec)
    func = _function(family)
    try:
        G = func(**_grouped(family, params))
    except ConfigError as exc:
        # named as the spec names it: a preset's name, else the family
        where = _resolve(_head(spec))[2] or family
        raise ConfigError(f"{where}: {str(exc).removeprefix(f'{family}: ')}") from None
    if isinstance(spec, str):
        G.graph["name"] = spec.strip()
    else:
        rest = {k: v for k, v in spec.items() if k not in ("family", "preset")}
        head = _head(spec)
        G.graph["name"] = spec_string(head, rest) if rest else head
    return G


def _head(spec: str | Mapping[str, Any]) -> str:
    """The family or preset name a (parsed, valid) spec starts with."""
    if isinstance(spec, str):
        return spec.strip().partition(":")[0].strip()
    return str(spec.get("family") or spec.get("preset"))


# --------------------------------------------------------------------------- formatting


def _format_value(kind: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "x".join(str(int(v)) for v in value)
    if isinstance(value, float) and kind in ("bandwidth", "time"):
        fmt, parse = (
            (format_bandwidth, parse_bandwidth)
            if kind == "bandwidth"
            else (format_time, parse_time)
        )
        text = fmt(value)
        try:
            if parse(text) == value:
                return text
        except ConfigError:
            pass
        return repr(value)
    return str(value)


def spec_string(family: str, params: Mapping[str, Any]) -> str:
    """Return the spec string that :func:`build` turns into ``family(**params)``.

    Values are written with units where that is exact (``100GB/s``, ``500ns``), else as
    plain SI numbers; ``None`` values (the default) are left out.

    Examples
    --------
    >>> spec_string("torus", {"dims": (4, 4), "bandwidth": 1e11, "latency": None})
    'torus:dims=4x4,bandwidth=100GB/s'
    """
    fam, _, _ = _resolve(family)
    kinds = _kinds(fam)
    parts = []
    for key, value in params.items():
        if value is None:
            continue
        kind = kinds.get(key, "str")
        parts.append(f"{key}={_format_value(kind, value)}")
    return f"{family}:{','.join(parts)}" if parts else family
