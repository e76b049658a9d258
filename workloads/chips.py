"""Accelerator chips: peak compute, memory tiers, network interface, power and price.

A :class:`Chip` is a frozen description of one accelerator; :func:`chip` returns a preset by
name (data and sources in :mod:`workloads.chip_presets`). Everything is SI: FLOP/s, bytes,
bytes/s, seconds, watts, US dollars. Peak FLOP/s are **dense** (no structured sparsity).

To explore a variant, derive a new chip with :meth:`Chip.replace` (validated, like
:func:`dataclasses.replace`)::

    >>> fast = chip("h100").replace(name="h100-graphs", kernel_launch=0.0)
    >>> fast.kernel_launch
    0.0
    >>> big = chip("h100").with_tier("hbm", capacity=160e9)
    >>> big.tier("hbm").capacity
    160000000000.0
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from netsim.core.errors import ConfigError
from netsim.core.units import parse_bandwidth, parse_rate, parse_size, parse_time
from netsim.core.validate import replace_fields
from workloads.chip_presets import CHIP_DATA

__all__ = [
    "CHIPS",
    "DTYPES",
    "SPEC_ALIASES",
    "TIER_NAMES",
    "Chip",
    "MemoryTier",
    "chip",
    "chip_names",
]

#: Memory tier names a chip may have.
TIER_NAMES: tuple[str, ...] = ("sram", "hbm", "hbf", "ddr")
#: Data types with a peak FLOP/s entry (dense). ``bf16`` and ``fp16`` stand in for each
#: other when a chip lists only one of them (both are 16-bit floats on the same units).
DTYPES: tuple[str, ...] = ("fp8", "bf16", "fp16", "fp32", "int8")
_ALIAS = {"bf16": "fp16", "fp16": "bf16"}
_LANDING = ("sram", "hbm")


def _positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    try:
        x = float(value)
        ok = not isinstance(value, bool) and math.isfinite(x) and (x > 0 or (allow_zero and x == 0))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        rule = "must be a finite number >= 0" if allow_zero else "must be a finite number > 0"
        raise ConfigError(f"{name}: {rule}, got {value!r}")
    return x


@dataclass(frozen=True, slots=True)
class MemoryTier:
    """One level of a chip's memory.

    Attributes
    ----------
    name : str
        One of :data:`TIER_NAMES`: ``"sram"`` (on-die), ``"hbm"`` (stacked DRAM in
        package), ``"hbf"`` (High Bandwidth Flash: stacked NAND, read-mostly), ``"ddr"``.
    capacity : float
        Bytes.
    bandwidth : float
        Bytes/s between the tier and the compute units.
    latency : float
        Access latency in seconds (first byte). The roofline does not charge it per
        operator (weight and KV streams are sequential and prefetched).
    """

    name: str
    capacity: float
    bandwidth: float
    latency: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in TIER_NAMES:
            raise ConfigError(
                f"tier: name must be one of {', '.join(TIER_NAMES)}, got {self.name!r}"
            )
        object.__setattr__(self, "capacity", _positive(f"{self.name}.capacity", self.capacity))
        object.__setattr__(self, "bandwidth", _positive(f"{self.name}.bandwidth", self.bandwidth))
        object.__setattr__(
            self, "latency", _positive(f"{self.name}.latency", self.latency, allow_zero=True)
        )


@dataclass(frozen=True)
class Chip:
    """An accelerator chip.

    Attributes
    ----------
    name : str
        Preset name or a user label.
    peak_flops : Mapping[str, float]
        Dense peak FLOP/s (OP/s for ``int8``) per data type in :data:`DTYPES`; a chip lists
        only the types its vendor publishes.
    tiers : tuple[MemoryTier, ...]
        Memory tiers, sorted fastest (highest bandwidth) first, ties in :data:`TIER_NAMES`
        order; names are unique.
    kernel_launch : float
        Seconds added to every operator (kernel launch / dispatch); not a collective
        library's per-call launch (``collective_launch`` of the workload options).
    injection_bandwidth : float
        Bytes/s per direction the chip's network interface can inject (all scale-up ports).
    landing_zone : str
        Where bytes arriving from the network land: ``"sram"`` or ``"hbm"``; that tier
        must exist on the chip.
    landing_latency : float
        Extra seconds per message when landing in HBM (0 when landing in SRAM).
    idle_power, peak_power : float or None
        Watts; ``None`` when not published.
    price : float or None
        US dollars per chip (per system for wafer-scale parts); ``None`` when unknown.
    price_is_estimate : bool
        True when the price is an estimate rather than a list price.
    sources : Mapping[str, str]
        Field name -> citation (``peak_flops``, ``tiers.<name>``, ``kernel_launch``,
        ``injection_bandwidth``, ``landing_latency``, ``power``, ``price``).
    description : str
        Human-readable name.

    Notes
    -----
    Instances are immutable but not hashable (they hold mappings). Derive variants with
    :meth:`replace` or :meth:`with_tier`.
    """

    name: str
    peak_flops: Mapping[str, float]
    tiers: tuple[MemoryTier, ...]
    kernel_launch: float
    injection_bandwidth: float
    landing_zone: str
    landing_latency: float = 0.0
    idle_power: float | None = None
    peak_power: float | None = None
    price: float | None = None
    price_is_estimate: bool = True
    sources: Mapping[str, str] = field(default_factory=dict)
    description: str = ""

    __hash__ = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"name: must be a non-empty string, got {self.name!r}")
        flops = dict(self.peak_flops)
        if not flops:
            raise ConfigError("peak_flops: must list at least one data type, got {}")
        for dtype, value in flops.items():
            if dtype not in DTYPES:
                raise ConfigError(
                    f"peak_flops: data type must be one of {', '.join(DTYPES)}, got {dtype!r}"
                )
            flops[dtype] = _positive(f"peak_flops.{dtype}", value)
        object.__setattr__(self, "peak_flops", MappingProxyType(flops))
        tiers = tuple(t if isinstance(t, MemoryTier) else MemoryTier(*t) for t in self.tiers)
        if not tiers:
            raise ConfigError("tiers: a chip needs at least one memory tier, got none")
        names = [t.name for t in tiers]
        if len(set(names)) != len(names):
            raise ConfigError(f"tiers: names must be unique, got {names}")
        tiers = tuple(sorted(tiers, key=lambda t: (-t.bandwidth, TIER_NAMES.index(t.name))))
        object.__setattr__(self, "tiers", tiers)
        for attr in ("kernel_launch", "landing_latency"):
            object.__setattr__(self, attr, _positive(attr, getattr(self, attr), allow_zero=True))
        object.__setattr__(
            self, "injection_bandwidth", _positive("injection_bandwidth", self.injection_bandwidth)
        )
        if self.landing_zone not in _LANDING or self.landing_zone not in names:
            raise ConfigError(
                f"landing_zone: must be 'sram' or 'hbm' and a tier of the chip "
                f"({', '.join(names)}), got {self.landing_zone!r}"
            )
        for attr in ("idle_power", "peak_power", "price"):
            value = getattr(self, attr)
            if value is not None:
                object.__setattr__(self, attr, _positive(attr, value, allow_zero=True))
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))

    # ------------------------------------------------------------------ queries
    def peak(self, dtype: str) -> float:
        """Return the dense peak FLOP/s for ``dtype``.

        ``bf16`` falls back to ``fp16`` and vice versa when only one is listed.

        Raises
        ------
        ConfigError
            If the chip publishes no peak for that data type.
        """
        if dtype in self.peak_flops:
            return self.peak_flops[dtype]
        alias = _ALIAS.get(dtype)
        if alias in self.peak_flops:
            return self.peak_flops[alias]
        known = ", ".join(self.peak_flops)
        raise ConfigError(f"dtype: chip {self.name!r} lists peak FLOP/s for {known}, got {dtype!r}")

    def tier(self, name: str) -> MemoryTier:
        """Return the memory tier called ``name``.

        Raises
        ------
        ConfigError
            If the chip has no such tier.
        """
        for t in self.tiers:
            if t.name == name:
                return t
        known = ", ".join(t.name for t in self.tiers)
        raise ConfigError(f"tier: chip {self.name!r} has tiers {known}, got {name!r}")

    def has_tier(self, name: str) -> bool:
        """Whether the chip has a tier called ``name``."""
        return any(t.name == name for t in self.tiers)

    @property
    def memory_capacity(self) -> float:
        """Total bytes over all tiers."""
        return sum(t.capacity for t in self.tiers)

    def ridge_point(self, dtype: str, tier: str | None = None) -> float:
        """Arithmetic intensity (FLOP/byte) where compute and memory time are equal.

        ``tier`` defaults to the fastest tier.
        """
        t = self.tier(tier) if tier is not None else self.tiers[0]
        return self.peak(dtype) / t.bandwidth

    # ------------------------------------------------------------------ variants
    def replace(self, **overrides: Any) -> Chip:
        """Return a copy with ``overrides`` applied (validated like a new chip).

        Equivalent to :func:`dataclasses.replace`. ``tiers`` may be given as
        :class:`MemoryTier` objects or ``(name, capacity, bandwidth, latency)`` tuples.

        Raises
        ------
        ConfigError
            If a field name is unknown or a value is invalid.
        """
        return replace_fields(self, overrides)

    def with_tier(self, name: str, **overrides: float) -> Chip:
        """Return a copy whose tier ``name`` has ``capacity``/``bandwidth``/``latency`` changed."""
        old = self.tier(name)
        bad = sorted(set(overrides) - {"capacity", "bandwidth", "latency"})
        if bad:
            raise ConfigError(
                f"with_tier: unknown tier field {bad[0]!r}; use capacity, bandwidth, latency"
            )
        new = dataclasses.replace(old, **overrides)
        return self.replace(tiers=tuple(new if t.name == name else t for t in self.tiers))

    def to_dict(self) -> dict[str, Any]:
        """Plain-data view (JSON-friendly) of the chip."""
        return {
            "name": self.name,
            "description": self.description,
            "peak_flops": dict(self.peak_flops),
            "tiers": [dataclasses.asdict(t) for t in self.tiers],
            "kernel_launch": self.kernel_launch,
            "injection_bandwidth": self.injection_bandwidth,
            "landing_zone": self.landing_zone,
            "landing_latency": self.landing_latency,
            "idle_power": self.idle_power,
            "peak_power": self.peak_power,
            "price": self.price,
            "price_is_estimate": self.price_is_estimate,
            "sources": dict(self.sources),
        }


#: Preset chips by name, built from :data:`workloads.chip_presets.CHIP_DATA` (whose keys are
#: :class:`Chip` fields).
CHIPS: Mapping[str, Chip] = MappingProxyType({n: Chip(name=n, **d) for n, d in CHIP_DATA.items()})


def chip_names() -> list[str]:
    """Names of the preset chips, sorted."""
    return sorted(CHIPS)


#: Fields a chip spec may override, and how their values are read.
_SPEC_FIELDS: Mapping[str, Callable[[str, str], Any]] = MappingProxyType(
    {
        "kernel_launch": parse_time,
        "landing_latency": parse_time,
        "injection_bandwidth": parse_bandwidth,
        "landing_zone": lambda v, _: v,
        "idle_power": lambda v, n: _positive(n, v, allow_zero=True),
        "peak_power": lambda v, n: _positive(n, v, allow_zero=True),
        "price": lambda v, n: _positive(n, v, allow_zero=True),
    }
)
#: Former names a chip spec still accepts (specs live in users' YAML files and scripts).
SPEC_ALIASES: Mapping[str, str] = MappingProxyType({"launch_overhead": "kernel_launch"})
_TIER_SPEC: Mapping[str, Callable[[str, str], Any]] = MappingProxyType(
    {"capacity": parse_size, "bandwidth": parse_bandwidth, "latency": parse_time}
)


def chip(name: str | Chip) -> Chip:
    """Return the chip ``name``: a preset, or a preset with overrides (a chip spec).

    A spec is ``PRESET:key=value,key=value...`` with keys ``<tier>.capacity``,
    ``<tier>.bandwidth``, ``<tier>.latency`` (tiers in :data:`TIER_NAMES`),
    ``peak.<dtype>`` (dtypes in :data:`DTYPES`), ``kernel_launch`` (former name
    ``launch_overhead``, still accepted: :data:`SPEC_ALIASES`), ``landing_latency``,
    ``injection_bandwidth``, ``landing_zone``, ``idle_power``, ``peak_power`` and ``price``.
    Values take units (``3.35TB/s``, ``80GB``, ``2us``, ``989TFLOPS``). The chip is named by
    its spec, so results record the variant. A :class:`Chip` passes through unchanged.

    Raises
    ------
    ConfigError
        If the preset is unknown (the message lists the known names), or an override names
        an unknown field or has a bad value.

    Examples
    --------
    >>> chip("h100").tier("hbm").bandwidth
    3350000000000.0
    >>> fast = chip("h100:hbm.bandwidth=6.7TB/s,kernel_launch=0")
    >>> fast.tier("hbm").bandwidth, fast.kernel_launch, fast.name
    (6700000000000.0, 0.0, 'h100:hbm.bandwidth=6.7TB/s,kernel_launch=0')
    """
    if isinstance(name, Chip):
        return name
    if isinstance(name, str) and ":" in name:
        return _from_spec(name)
    try:
        return CHIPS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"chip: must be one of {', '.join(chip_names())}, got {name!r}") from None


def _from_spec(spec: str) -> Chip:
    preset, _, overrides = spec.partition(":")
    c = chip(preset.strip())
    keys = [*_SPEC_FIELDS, *(f"<tier>.{k}" for k in _TIER_SPEC), "peak.<dtype>"]
    sources = dict(c.sources)
    seen: dict[str, str] = {}
    for item in overrides.split(","):
        key, eq, value = (x.strip() for x in item.partition("="))
        if not eq or not key or not value:
            raise ConfigError(f"chip: overrides are key=value, got {item.strip()!r} in {spec!r}")
        given, key = key, SPEC_ALIASES.get(key, key)
        what = f"chip {key}"
        if key in seen:
            raise ConfigError(
                f"{what}: must be given once, got {seen[key]}= and {given}= in {spec!r}"
            )
        seen[key] = given
        head, dot, attr = key.partition(".")
        source = {"peak": "peak_flops", "idle_power": "power", "peak_power": "power"}.get(head, key)
        sources[f"tiers.{head}" if head in TIER_NAMES else source] = f"overridden: {spec.strip()}"
        if key in _SPEC_FIELDS:
            c = c.replace(**{key: _SPEC_FIELDS[key](value, what)})
        elif dot and head == "peak" and attr in DTYPES:
            c = c.replace(peak_flops={**c.peak_flops, attr: parse_rate(value, what)})
        elif dot and head in TIER_NAMES and attr in _TIER_SPEC:
            if not c.has_tier(head):
                have = ", ".join(t.name for t in c.tiers)
                raise ConfigError(f"{what}: {c.name} has no {head} tier (it has {have})")
            c = c.with_tier(head, **{attr: _TIER_SPEC[attr](value, what)})
        else:
            raise ConfigError(
                f"chip: unknown override {key!r} in {spec!r}; keys: {', '.join(keys)}"
            )
    return c.replace(name=spec.strip(), sources=sources)
