"""Axis labels, units and tick formats of :mod:`netsim.plots`.

Every axis names its quantity and unit (:func:`axis_label`): times in the one unit of ns,
µs, ms or s that suits the data, bandwidths in GB/s (1e9 bytes/s), sizes on a log2 axis
with ticks like ``4KiB`` (``_size_axis``); log scales where the data span more than a
decade (``_spans_decades``); column values as legend and panel text (``_text``, ``_label``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.ticker import FuncFormatter

from netsim.plots._data import _is_size
from netsim.units import format_size

__all__ = ["axis_label"]

_TIME_UNITS = (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9))


def _pretty(name: str) -> str:
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


def _time_unit(values: np.ndarray) -> tuple[str, float]:
    v = np.abs(values[np.isfinite(values) & (values != 0)])
    ref = float(np.median(v)) if len(v) else 1.0
    for unit, scale in _TIME_UNITS:
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
    pretty = _pretty(name)
    base = name.removeprefix("result.")
    if base.endswith("per_s"):
        return base.replace("_per_s", "/s").replace("_", " "), 1.0
    if base.endswith("_s") or base in ("time", "latency"):
        unit, scale = _time_unit(values if values is not None else np.array([1.0]))
        return f"{pretty} ({unit})", scale
    if base in ("busbw", "algbw") or "bandwidth" in base or base.endswith(("_bw", "_Bps")):
        return f"{pretty} (GB/s)", 1e9
    if _is_size(base):
        return f"{pretty} (bytes)", 1.0
    if "load" in base:
        return f"{pretty} (fraction of injection bandwidth)", 1.0
    if "util" in base:
        return f"{pretty} (fraction of link bandwidth)", 1.0
    return pretty, 1.0


def _spans_decades(values: np.ndarray) -> bool:
    v = values[np.isfinite(values)]
    return bool(len(v)) and v.min() > 0 and v.max() / v.min() >= 10.0


def _size_axis(ax, which: str = "x") -> None:
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log", base=2)
    axis.set_major_formatter(FuncFormatter(lambda v, _: format_size(v) if v >= 1 else ""))


def _text(value: Any) -> str:
    """A value as text; whole floats (ints stored as float64 beside NaNs) without ``.0``."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _label(key: str | None, value: Any) -> str:
    if key is None:
        return ""
    v = _text(value)
    return v if key in ("topo", "algo", "model", "pattern") else f"{key}={v}"
