"""Axis labels, units and tick formats of :mod:`netsim.app.plots`.

Every axis names its quantity and unit (:func:`axis_label`): times in the one unit of ns,
µs, ms or s that suits the data, bandwidths in GB/s (1e9 bytes/s), sizes on a log2 axis
with ticks like ``4KiB`` (``size_axis``); log scales where the data span more than a
decade (``spans_decades``); column values as legend and panel text (``value_text``,
``value_label``).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import numpy as np
from matplotlib.ticker import FuncFormatter, Locator, LogLocator, MaxNLocator, NullFormatter

from netsim.app.plots._data import group_rows, is_size_name
from netsim.core.units import format_size

__all__ = [
    "LABELS",
    "TIME_UNITS",
    "DecadeLocator",
    "SizeLocator",
    "axis_label",
    "category_ticks",
    "hue_names",
    "log_axis",
    "pretty_name",
    "short_names",
    "size_axis",
    "spans_decades",
    "time_unit",
    "value_label",
    "value_text",
]

#: Labels the sweep spec gives values (``{value: X, label: ...}``, see
#: :func:`netsim.app.sweep_spec.spec_labels`) for the figure being drawn; :func:`short_names`
#: prefers them. Set by :func:`netsim.app.plots.plot_results` for a results file.
LABELS: ContextVar[dict[str, str]] = ContextVar("LABELS", default={})  # noqa: B039

TIME_UNITS = (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9))


def pretty_name(name: str) -> str:
    """A column name in words (``busbw`` -> ``bus bandwidth``), without its unit."""
    special = {
        "busbw": "bus bandwidth",
        "algbw": "algorithm bandwidth",
        "time_s": "time",
        "wall_s": "wall time",
        "topo": "topology",
        "algo": "algorithm",
    }
    if name in special:
        return special[name]
    base = name.split(".")[-1] if name.startswith("result.") else name
    for suffix in ("_s", "_bytes", "_Bps"):
        if base.endswith(suffix) and not base.endswith("per_s"):
            base = base[: -len(suffix)]
    return base.replace("_", " ")


def time_unit(values: np.ndarray) -> tuple[str, float]:
    """The unit (name, seconds per unit) of ns, µs, ms, s that suits the median of ``values``."""
    v = np.abs(values[np.isfinite(values) & (values != 0)])
    ref = float(np.median(v)) if len(v) else 1.0
    for unit, scale in TIME_UNITS:
        if ref >= scale:
            return unit, scale
    return "ns", 1e-9


def axis_label(name: str, values: np.ndarray | None = None) -> tuple[str, float]:
    """Label with unit for column ``name`` and the factor its values are divided by.

    Times (``*_s``) take the unit of ns/µs/ms/s that suits ``values``; bandwidths
    (``busbw``, ``algbw``, ``*bandwidth*``, ``*_Bps``) are in GB/s (1e9 bytes/s); sizes in
    bytes (ticks print binary prefixes); loads and utilisations are fractions.

    Examples
    --------
    >>> axis_label("time_s", np.array([2e-6, 5e-6]))
    ('time (µs)', 1e-06)
    >>> axis_label("busbw")
    ('bus bandwidth (GB/s)', 1000000000.0)
    """
    pretty = pretty_name(name)
    base = name.removeprefix("result.")
    if base.endswith("per_s"):
        return base.replace("_per_s", "/s").replace("_", " "), 1.0
    if base.endswith("_s") or base in ("time", "latency"):
        unit, scale = time_unit(values if values is not None else np.array([1.0]))
        return f"{pretty} ({unit})", scale
    if base in ("busbw", "algbw") or "bandwidth" in base or base.endswith(("_bw", "_Bps")):
        return f"{pretty} (GB/s)", 1e9
    if is_size_name(base):
        return f"{pretty} (bytes)", 1.0
    if "load" in base:
        return f"{pretty} (fraction of injection bandwidth)", 1.0
    if "util" in base:
        return f"{pretty} (fraction of link bandwidth)", 1.0
    return pretty, 1.0


def spans_decades(values: np.ndarray) -> bool:
    """Whether the finite ``values`` are positive and span a factor of ten or more."""
    v = values[np.isfinite(values)]
    return bool(len(v)) and v.min() > 0 and v.max() / v.min() >= 10.0


#: Exponent steps (powers of 2) between labelled size ticks, finest first: 1KiB, 1MiB, ...
#: are on every step that divides 10.
_SIZE_STEPS = (1, 2, 5, 10, 20, 30)
_MAX_SIZE_LABELS = 6


def category_ticks(ax, labels: list[str]) -> None:
    """Category labels on the x axis: level when short, vertical when long (rotated text
    at other angles needs more room than its width)."""
    long = max((len(t) for t in labels), default=0) * len(labels) > 40
    ax.set_xticks(range(len(labels)), labels, rotation=90 if long else 0, ha="center")


class SizeLocator(Locator):
    """Ticks at powers of two, every ``2**k``-th one so that at most six are labelled.

    The step is the first of 1, 2, 5, 10, 20, 30 octaves that keeps at most six ticks in
    view; a view of 20 octaves or more takes 10, 20 or 30, so the labels are 1KiB, 1MiB,
    1GiB (powers of 2^10).
    """

    def __call__(self) -> list[float]:
        vmin, vmax = self.axis.get_view_interval()
        return self.tick_values(vmin, vmax)

    def tick_values(self, vmin: float, vmax: float) -> list[float]:
        lo, hi = sorted((max(vmin, 1e-300), max(vmax, 1e-300)))
        e0, e1 = int(np.ceil(np.log2(lo) - 1e-9)), int(np.floor(np.log2(hi) + 1e-9))
        steps = _SIZE_STEPS if e1 - e0 < 20 else _SIZE_STEPS[3:]  # wide: 1KiB, 1MiB, ...
        step = next((k for k in steps if (e1 // k - -(-e0 // k) + 1) <= _MAX_SIZE_LABELS), 40)
        first = -(-e0 // step) * step
        return [2.0**e for e in range(first, e1 + 1, step)]


def size_axis(ax, which: str = "x") -> None:
    """A log2 axis with size labels (``4KiB``) on at most six powers of two, the other
    powers of two as unlabelled minor ticks."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log", base=2)
    axis.set_major_locator(SizeLocator())
    axis.set_major_formatter(FuncFormatter(lambda v, _: format_size(v) if v >= 1 else ""))
    axis.set_minor_locator(LogLocator(base=2.0, subs=(1.0,), numticks=100))
    axis.set_minor_formatter(NullFormatter())


def _number(v: float, _pos: Any = None) -> str:
    """A tick label: plain for 0.001 to 99,999 (``20``, ``0.5``), else ``1e6`` style."""
    if v <= 0:
        return ""
    if 1e-3 <= v < 1e5:
        return f"{v:g}"
    exp = int(np.floor(np.log10(v) + 1e-9))
    mant = v / 10.0**exp
    return f"1e{exp}" if abs(mant - 1) < 1e-9 else f"{mant:g}e{exp}"


class DecadeLocator(Locator):
    """Log10 major ticks that are never too many: 1, 2, 5 x 10^k when the view spans less
    than two decades (so a narrow axis still has labels), powers of ten otherwise, at most
    six of them (every other decade, ..., when the view spans more)."""

    def __call__(self) -> list[float]:
        vmin, vmax = self.axis.get_view_interval()
        return self.tick_values(vmin, vmax)

    def tick_values(self, vmin: float, vmax: float) -> list[float]:
        lo, hi = sorted((max(vmin, 1e-300), max(vmax, 1e-300)))
        e0, e1 = int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi)))
        subs = (1.0, 2.0, 5.0) if hi / lo < 100 else (1.0,)
        every = max(1, int(np.ceil((e1 - e0 + 1) / 6)))
        ticks = [m * 10.0**e for e in range(e0, e1 + 1) if e % every == 0 for m in subs]
        inside = [t for t in ticks if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]
        if len(inside) >= 2:
            return inside
        return [t for t in MaxNLocator(nbins=4).tick_values(lo, hi) if t > 0]


def log_axis(ax, which: str = "y") -> None:
    """A log10 axis whose labels never collide (:class:`DecadeLocator`, plain numbers);
    unlabelled minor ticks between."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis.set_major_locator(DecadeLocator())
    axis.set_major_formatter(FuncFormatter(_number))
    axis.set_minor_locator(LogLocator(base=10.0, subs=tuple(range(1, 10)), numticks=100))
    axis.set_minor_formatter(NullFormatter())


def value_text(value: Any) -> str:
    """A value as text; whole floats (ints stored as float64 beside NaNs) without ``.0``."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def value_label(key: str | None, value: Any, names: dict[str, str] | None = None) -> str:
    """A legend or panel label for ``key=value`` (the bare value for names like ``topo``)."""
    if key is None:
        return ""
    v = value_text(value)
    v = (names or {}).get(v, v)
    return (
        v if key in ("topo", "algo", "model", "network_model", "pattern", "label") else f"{key}={v}"
    )


def _spec_parts(text: str) -> tuple[str, list[str]] | None:
    if ":" not in text or " " in text:
        return None
    head, _, rest = text.partition(":")
    return head, [p for p in rest.split(",") if p]


def short_names(values: list[str]) -> dict[str, str]:
    """Short panel and legend names for spec strings: the parameters every value shares
    (with the same setting) are left out, a preset name stays as it is.

    Names that would become equal keep their full spec. A label the sweep spec gives a
    value (:data:`LABELS`) replaces its name.

    Examples
    --------
    >>> short_names(["fat_tree:k=4,bandwidth=400Gbps", "torus:dims=4x4,bandwidth=400Gbps"])
    {'fat_tree:k=4,bandwidth=400Gbps': 'fat_tree:k=4', 'torus:dims=4x4,bandwidth=400Gbps': 'torus:dims=4x4'}
    >>> short_names(["dgx-h100", "torus:dims=4x4"])
    {'dgx-h100': 'dgx-h100', 'torus:dims=4x4': 'torus:dims=4x4'}
    """
    parts = {v: _spec_parts(v) for v in values}
    specs = [p for p in parts.values() if p is not None]
    common = set.intersection(*(set(p[1]) for p in specs)) if len(specs) > 1 else set()
    out = {}
    for v, p in parts.items():
        if p is None or not common:
            out[v] = v
            continue
        kept = [x for x in p[1] if x not in common]
        out[v] = f"{p[0]}:{','.join(kept)}" if kept else p[0]
    if len(set(out.values())) < len(out):
        out = {v: v for v in values}
    labels = LABELS.get()
    return {v: labels.get(v, name) for v, name in out.items()}


def hue_names(table: np.ndarray, hue: str | None) -> dict[str, str]:
    """Legend names of the ``hue`` values of ``table`` (:func:`short_names`; none without
    a ``hue``)."""
    return {} if hue is None else short_names([value_text(v) for v, _ in group_rows(table, hue)])
