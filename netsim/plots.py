"""Figures for papers from sweep results (matplotlib, Agg backend, vector output).

One function per figure kind, each taking a results table (a path, a structured array from
:func:`netsim.results.load_results`, or a list of records) and returning a
:class:`matplotlib.figure.Figure` (saved to ``out`` if given: ``.pdf``, ``.svg`` or ``.png``):

* :func:`plot_latency_vs_size`: latency vs message size (log-log), bus bandwidth below;
* :func:`plot_breakdown`: stacked compute / memory / fabric time of a token (bars);
* :func:`plot_load_latency`: latency vs offered load;
* :func:`plot_cdf`: empirical CDFs (e.g. token latency samples: stragglers);
* :func:`plot_link_heatmap`: link utilisation drawn on the topology (meshes, tori);
* :func:`plot_results`: the general entry (``netsim plot``), choosing a kind from the columns.

Style: every axis names its quantity and unit (times are shown in the one unit of ns, µs,
ms or s that suits the data and the label says which; bandwidths in GB/s = 1e9 bytes/s;
sizes on a log2 axis with ticks like ``4KiB``); log scales where the data span more than a
decade; the Okabe-Ito colour-blind-safe palette with distinct markers; TrueType fonts in
PDF (``pdf.fonttype 42``) and text kept as text in SVG. Rows whose ``error`` is not empty
are left out; repeated points (seeds, repetitions) are averaged and their min-max range is
drawn as error bars.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from netsim.errors import ConfigError
from netsim.results import build_table, load_results
from netsim.units import format_size, parse_size

__all__ = [
    "BREAKDOWN_COMPONENTS",
    "FIGURE_KINDS",
    "OKABE_ITO",
    "PALETTE_SOURCE",
    "axis_label",
    "plot_breakdown",
    "plot_cdf",
    "plot_latency_vs_size",
    "plot_line",
    "plot_link_heatmap",
    "plot_load_latency",
    "plot_results",
    "save_figure",
    "select",
]

#: Okabe-Ito colours, in the order lines get them (yellow last: weak on white).
OKABE_ITO: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow
)
PALETTE_SOURCE = (
    "Okabe M., Ito K., 'Color Universal Design (CUD): how to make figures and presentations "
    "that are friendly to colorblind people' (2002/2008), https://jfly.uni-koeln.de/color/; "
    "the same eight colours in Wong B., 'Points of view: Color blindness', Nature Methods "
    "8:441 (2011)."
)
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_STYLE = {
    "font.size": 9,
    "axes.labelsize": 9,
    "axes.titlesize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.4,
    "lines.markersize": 4,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.fonttype": "none",
    "savefig.bbox": "tight",
}
FIGURE_KINDS = ("auto", "line", "latency-size", "breakdown", "load-latency", "cdf", "heatmap")
_FORMATS = ("pdf", "svg", "png")
_TIME_UNITS = (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9))


# --------------------------------------------------------------------------- data


def _table(data: Any) -> np.ndarray:
    if isinstance(data, np.ndarray):
        table = data
    elif isinstance(data, str | os.PathLike):
        table = load_results(data)
    elif isinstance(data, Sequence):
        table, _ = build_table(list(data))
    else:
        raise ConfigError(f"data: expected a results path, table or records, got {data!r}")
    if table.dtype.names and "error" in table.dtype.names and len(table):
        table = table[table["error"] == ""]
    return table


def _need(table: np.ndarray, name: str | None, role: str) -> None:
    names = table.dtype.names or ()
    if name is not None and name not in names:
        raise ConfigError(f"{role}: no column {name!r} in the results; columns: {', '.join(names)}")


def select(table: np.ndarray, where: Mapping[str, Any] | None) -> np.ndarray:
    """Rows of ``table`` whose columns equal the values of ``where`` (compared as text).

    Examples
    --------
    >>> t = np.array([(1, "ring"), (2, "tree")], dtype=[("x", int), ("algo", object)])
    >>> select(t, {"algo": "tree"})["x"].tolist()
    [2]
    """
    if not where:
        return table
    mask = np.ones(len(table), dtype=bool)
    for key, value in where.items():
        _need(table, key, "where")
        col = table[key]
        mask &= np.array([_same(v, value) for v in col], dtype=bool)
    return table[mask]


def _same(a: Any, b: Any) -> bool:
    if str(a) == str(b):
        return True
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def _is_size(name: str) -> bool:
    return name in ("size", "nbytes", "bytes") or "size" in name or name.endswith("_bytes")


def _numeric(table: np.ndarray, name: str) -> np.ndarray | None:
    """The column as floats (sizes with units parsed), or None if it is categorical."""
    col = table[name]
    if col.dtype.kind in "biuf":
        return col.astype(float)
    parse = (lambda v: float(parse_size(v, name))) if _is_size(name) else float
    try:  # "" is a missing value (a row of another kind), not a category
        values = np.array([math.nan if _missing(v) else parse(v) for v in col], dtype=float)
    except (ConfigError, TypeError, ValueError):
        return None
    return values if np.isfinite(values).any() else None


def _missing(v: Any) -> bool:
    return (isinstance(v, float | np.floating) and np.isnan(v)) or (isinstance(v, str) and not v)


def _groups(table: np.ndarray, key: str | None) -> list[tuple[Any, np.ndarray]]:
    if key is None:
        return [(None, table)]
    values = table[key]
    order: list[Any] = []
    for v in values:
        if _missing(v):  # rows without this column (another kind, a failed point)
            continue
        if not any(_same(v, o) for o in order):
            order.append(v)
    if all(isinstance(v, int | float | np.number) for v in order):
        order.sort()
    return [(v, table[np.array([_same(x, v) for x in values], dtype=bool)]) for v in order]


def _rank(order: list[Any], v: Any) -> int:
    """Position of ``v`` in ``order`` (compared as :func:`_groups` does)."""
    return next(i for i, o in enumerate(order) if _same(v, o))


def _aggregate(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """Mean, min and max of ``y`` for each distinct ``x`` (sorted), NaNs left out."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    xs = np.unique(x)
    mean = np.array([y[x == v].mean() for v in xs])
    lo = np.array([y[x == v].min() for v in xs])
    hi = np.array([y[x == v].max() for v in xs])
    return xs, mean, lo, hi


# --------------------------------------------------------------------------- axes


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


def _style(i: int) -> dict[str, Any]:
    return {"color": OKABE_ITO[i % len(OKABE_ITO)], "marker": _MARKERS[i % len(_MARKERS)]}


def _facets(
    table: np.ndarray, col: str | None, rows: int = 1, height: float = 2.6, width: float = 3.2
):
    groups = _groups(table, col)
    if not groups or not len(table):
        raise ConfigError("data: no successful points to plot (after filtering)")
    n = len(groups)
    fig, axes = plt.subplots(
        rows, n, figsize=(0.4 + width * n, 0.4 + height * rows), squeeze=False, sharex="col"
    )
    for j, (value, _) in enumerate(groups):
        if col is not None:
            axes[0][j].set_title(_label(col, value))
    return fig, axes, groups


def _line_panel(ax, table, x, y, hue, *, logx=None, logy=None, yscale=None) -> None:
    xv_all = _numeric(table, x)
    yv_all = _numeric(table, y)
    if yv_all is None:
        raise ConfigError(f"y: column {y!r} is not numeric")
    ylabel, yscale_ = axis_label(y, yv_all)
    yscale = yscale or yscale_
    categorical = xv_all is None
    cats = [v for v, _ in _groups(table, x)] if categorical else []
    for i, (hv, sub) in enumerate(_groups(table, hue)):
        if categorical:
            xv = np.array([next(k for k, c in enumerate(cats) if _same(c, v)) for v in sub[x]])
            xv = xv.astype(float)
        else:
            xv = _numeric(sub, x)
        xs, mean, lo, hi = _aggregate(xv, _numeric(sub, y))
        st = _style(i)
        ax.plot(xs, mean / yscale, label=None if hue is None else _text(hv), **st)
        if np.any(hi > lo):
            ax.errorbar(
                xs,
                mean / yscale,
                yerr=np.maximum([(mean - lo) / yscale, (hi - mean) / yscale], 0.0),
                fmt="none",
                ecolor=st["color"],
                elinewidth=0.8,
                capsize=2,
            )
    if categorical:
        ax.set_xticks(range(len(cats)), [_text(c) for c in cats], rotation=30, ha="right")
        ax.set_xlabel(_pretty(x))
    else:
        xlabel, _ = axis_label(x, xv_all)
        if _is_size(x) and (logx or (logx is None and _spans_decades(xv_all))):
            _size_axis(ax, "x")
        elif logx or (logx is None and _spans_decades(xv_all)):
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
    if logy or (logy is None and _spans_decades(yv_all)):
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    if hue is not None:
        ax.legend(title=_pretty(hue), frameon=False)


def save_figure(fig: Figure, out: str | os.PathLike[str]) -> Path:
    """Save ``fig`` as PDF, SVG (vector) or PNG (200 dpi) by the suffix of ``out``."""
    path = Path(out)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in _FORMATS:
        raise ConfigError(f"out: suffix must be one of .pdf, .svg, .png, got {str(out)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with plt.rc_context(_STYLE):
        fig.savefig(path, format=fmt, dpi=200)
    return path


def _finish(fig: Figure, out: str | os.PathLike[str] | None, title: str | None) -> Figure:
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if out is not None:
        save_figure(fig, out)
    return fig


# --------------------------------------------------------------------------- figures


def plot_line(
    data: Any,
    x: str,
    y: str,
    *,
    hue: str | None = None,
    col: str | None = None,
    out: str | os.PathLike[str] | None = None,
    title: str | None = None,
) -> Figure:
    """``y`` against ``x``, one line per ``hue`` value, one panel per ``col`` value."""
    table = _table(data)
    for name, role in ((x, "x"), (y, "y"), (hue, "hue"), (col, "col")):
        _need(table, name, role)
    with plt.rc_context(_STYLE):
        fig, axes, groups = _facets(table, col)
        for j, (_, sub) in enumerate(groups):
            _line_panel(axes[0][j], sub, x, y, hue)
        return _finish(fig, out, title)


def plot_latency_vs_size(
    data: Any,
    *,
    x: str = "size",
    y: str = "time_s",
    bw: str | None = "busbw",
    hue: str | None = "algo",
    col: str | None = None,
    out: str | os.PathLike[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Collective latency vs message size (log-log) and, below, bus bandwidth vs size.

    ``bw=None`` (or a table without it) draws the latency panel only.
    """
    table = _table(data)
    for name, role in ((x, "x"), (y, "y"), (hue, "hue"), (col, "col")):
        _need(table, name, role)
    if bw is not None and bw not in (table.dtype.names or ()):
        bw = None
    with plt.rc_context(_STYLE):
        fig, axes, groups = _facets(table, col, rows=2 if bw else 1)
        for j, (_, sub) in enumerate(groups):
            _line_panel(axes[0][j], sub, x, y, hue, logx=True, logy=True)
            if bw:
                _line_panel(axes[1][j], sub, x, bw, hue, logx=True, logy=False)
                legend = axes[1][j].get_legend()
                if legend is not None:
                    legend.remove()
                axes[0][j].set_xlabel("")
        return _finish(fig, out, title)


def plot_load_latency(
    data: Any,
    *,
    x: str = "offered_load",
    y: str = "latency_mean_s",
    hue: str | None = None,
    col: str | None = None,
    out: str | os.PathLike[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Latency vs offered load (linear load axis; log latency if it spans decades)."""
    table = _table(data)
    for name, role in ((x, "x"), (y, "y"), (hue, "hue"), (col, "col")):
        _need(table, name, role)
    with plt.rc_context(_STYLE):
        fig, axes, groups = _facets(table, col)
        for j, (_, sub) in enumerate(groups):
            _line_panel(axes[0][j], sub, x, y, hue, logx=False)
        return _finish(fig, out, title)


#: The parts of a decode token's latency (``workloads.decode``), stacked in this order.
BREAKDOWN_COMPONENTS = ("compute_s", "memory_s", "launch_s", "fabric_s")


def plot_breakdown(
    data: Any,
    *,
    x: str = "topo",
    components: Sequence[str] | None = None,
    total: str | None = "token_latency_s",
    col: str | None = None,
    out: str | os.PathLike[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Stacked bars of the time components of a token for each ``x`` value (means over
    seeds); ``total`` (if present) is marked with a black bar-wide line.

    ``components=None`` stacks those of :data:`BREAKDOWN_COMPONENTS` that the results
    have (``compute_s``, ``memory_s``, ``launch_s``, ``fabric_s``: for the decode kind
    they add up to ``token_latency_s``).
    """
    table = _table(data)
    if components is None:
        names = table.dtype.names or ()
        components = [c for c in BREAKDOWN_COMPONENTS if c in names]
        if not components:
            raise ConfigError(
                f"components: the results have none of {', '.join(BREAKDOWN_COMPONENTS)}; "
                f"columns: {', '.join(names)}"
            )
    for name, role in ((x, "x"), (col, "col"), *((c, "components") for c in components)):
        _need(table, name, role)
    if total is not None and total not in (table.dtype.names or ()):
        total = None
    allv = np.concatenate([_numeric(table, c) for c in components])
    label, scale = axis_label(components[0], allv)
    unit = label[label.rindex("(") :]
    with plt.rc_context(_STYLE):
        ncat = max(len(_groups(sub, x)) for _, sub in _groups(table, col))
        order = [v for v, _ in _groups(table, x)]
        fig, axes, groups = _facets(table, col, height=2.8, width=max(3.2, 0.9 + 0.42 * ncat))
        for j, (_, sub) in enumerate(groups):
            ax = axes[0][j]
            # the same category order in every panel: first appearance in the whole table
            cats = sorted(_groups(sub, x), key=lambda c: _rank(order, c[0]))
            pos = np.arange(len(cats))
            bottom = np.zeros(len(cats))
            for i, comp in enumerate(components):
                h = np.array([np.nanmean(_numeric(g, comp)) for _, g in cats]) / scale
                ax.bar(pos, h, 0.7, bottom=bottom, color=OKABE_ITO[i], label=_pretty(comp))
                bottom += np.nan_to_num(h)
            if total is not None:
                t = np.array([np.nanmean(_numeric(g, total)) for _, g in cats]) / scale
                ax.hlines(
                    t,
                    pos - 0.4,
                    pos + 0.4,
                    colors="black",
                    linewidths=1.5,
                    label=f"{_pretty(total)} (total)",
                )
            ax.set_xticks(pos, [_text(v) for v, _ in cats], rotation=30, ha="right")
            ax.set_xlabel(_pretty(x))
            ax.set_ylabel(f"time per token {unit}")
            ax.grid(axis="x", visible=False)
        axes[0][-1].legend(frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        return _finish(fig, out, title)


def plot_cdf(
    data: Any,
    *,
    y: str = "samples",
    hue: str | None = None,
    col: str | None = None,
    out: str | os.PathLike[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Empirical CDF of ``y``: a JSON list column (samples of every point of a group are
    pooled, e.g. per-token latencies) or a numeric column (one value per point)."""
    table = _table(data)
    for name, role in ((y, "y"), (hue, "hue"), (col, "col")):
        _need(table, name, role)

    def values(sub: np.ndarray) -> np.ndarray:
        num = _numeric(sub, y) if table[y].dtype.kind in "biuf" else None
        if num is not None:
            return num[np.isfinite(num)]
        try:
            parts = [json.loads(t) for t in sub[y] if t]
        except (TypeError, ValueError):
            parts = [None]
        if not all(isinstance(p, list) for p in parts):
            raise ConfigError(f"y: column {y!r} holds neither numbers nor lists of samples")
        v = np.asarray([s for p in parts for s in p if s is not None], dtype=float)
        return v[np.isfinite(v)]

    allv = values(table)
    label, scale = axis_label(y, allv)
    with plt.rc_context(_STYLE):
        fig, axes, groups = _facets(table, col)
        for j, (_, sub) in enumerate(groups):
            ax = axes[0][j]
            for i, (hv, g) in enumerate(_groups(sub, hue)):
                v = np.sort(values(g)) / scale
                frac = np.arange(1, len(v) + 1) / len(v)
                ax.step(
                    v,
                    frac,
                    where="post",
                    color=OKABE_ITO[i % 8],
                    label=None if hue is None else _text(hv),
                )
            if _spans_decades(allv / scale) and allv.min() > 0 and allv.max() / allv.min() >= 100:
                ax.set_xscale("log")
            ax.set_xlabel(label)
            ax.set_ylabel("fraction of samples ≤ x (CDF)")
            ax.set_ylim(0, 1.02)
            if hue is not None:
                ax.legend(title=_pretty(hue), frameon=False)
        return _finish(fig, out, title)


def _util_items(utilisation: Any) -> list[tuple[Any, Any, float]]:
    try:
        if isinstance(utilisation, str):
            utilisation = json.loads(utilisation)
        if isinstance(utilisation, Mapping):
            items = []
            for k, v in utilisation.items():
                u, w = k if isinstance(k, tuple) else str(k).split("-", 1)
                items.append((u, w, float(v)))
            return items
        return [(u, w, float(v)) for u, w, v in utilisation]
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"utilisation: expected [[u, v, value], ...] or {{(u, v): value}}, got "
            f"{str(utilisation)[:60]!r} ({exc})"
        ) from None


def plot_link_heatmap(
    graph: Any,
    utilisation: Any,
    *,
    ax: Any = None,
    out: str | os.PathLike[str] | None = None,
    title: str | None = None,
    vmax: float | None = 1.0,
) -> Figure:
    """Links of ``graph`` drawn at the nodes' ``pos``, coloured by utilisation (viridis).

    Wraparound links of tori (edge attribute ``wrap``) are drawn as two short stubs pointing
    outward from their ends, as in :func:`topologies.draw.draw`, not as lines across the grid.

    Parameters
    ----------
    graph : networkx.Graph or str
        The topology (or a spec for :func:`topologies.registry.build`); nodes need ``pos``.
    utilisation : mapping, list or JSON text
        ``{(u, v): value}``, ``{"u-v": value}`` or ``[[u, v, value], ...]``, fractions of
        the link bandwidth. Both directions of a link: the larger one is drawn.
    ax : matplotlib Axes, optional
        Draw into it (no colour bar, no title, not saved) instead of a new figure.
    vmax : float or None
        Top of the colour scale (``None``: the largest value).
    """
    if isinstance(graph, str):
        from topologies.registry import build

        graph = build(graph)
    best: dict[frozenset, float] = {}
    for u, w, v in _util_items(utilisation):
        key = frozenset((_node(graph, u), _node(graph, w)))
        best[key] = max(best.get(key, 0.0), v)
    pos = {n: graph.nodes[n].get("pos") for n in graph.nodes}
    if any(p is None for p in pos.values()):
        raise ConfigError("graph: every node needs a 'pos' attribute to draw a heatmap")
    plain = [
        np.hypot(*np.subtract(pos[u], pos[w]))
        for u, w, d in graph.edges(data=True)
        if not d.get("wrap") and pos[u] != pos[w]
    ]
    stub = 0.35 * (float(np.median(plain)) if plain else 1.0)
    segs, vals = [], []
    for u, w, d in graph.edges(data=True):
        value = best.get(frozenset((u, w)), 0.0)
        pu, pw = np.asarray(pos[u], dtype=float), np.asarray(pos[w], dtype=float)
        if d.get("wrap"):
            vec = pw - pu
            out_vec = vec / (float(np.hypot(*vec)) or 1.0) * stub
            segs += [[tuple(pu), tuple(pu - out_vec)], [tuple(pw), tuple(pw + out_vec)]]
            vals += [value, value]
        else:
            segs.append([tuple(pu), tuple(pw)])
            vals.append(value)
    with plt.rc_context(_STYLE):
        own = ax is None
        if own:
            fig, ax = plt.subplots(figsize=(3.6, 3.2))
        else:
            fig = ax.figure
        lc = LineCollection(segs, cmap="viridis", linewidths=3.0)
        lc.set_array(np.array(vals))
        lc.set_clim(0.0, vmax if vmax is not None else max(vals, default=1.0) or 1.0)
        ax.add_collection(lc)
        chips = [n for n, k in graph.nodes(data="kind") if k == "chip"]
        other = [n for n in graph.nodes if n not in set(chips)]
        for nodes, marker in ((chips, "s"), (other, "o")):
            if nodes:
                xy = np.array([pos[n] for n in nodes], dtype=float)
                ax.scatter(xy[:, 0], xy[:, 1], s=12, marker=marker, color="0.3", zorder=3)
        ax.autoscale()
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        if not own:
            return fig
        cb = fig.colorbar(lc, ax=ax, fraction=0.046, pad=0.04)
        cb.set_label("link utilisation (fraction of bandwidth)")
        return _finish(fig, out, title)


def _mean_utilisation(cells: Sequence[Any]) -> dict[tuple[Any, Any], float]:
    """Per directed link, the mean over rows (seeds, repetitions) of its utilisation."""
    total: dict[tuple[Any, Any], float] = {}
    for cell in cells:
        for u, w, v in _util_items(cell):
            total[(u, w)] = total.get((u, w), 0.0) + v
    return {k: v / len(cells) for k, v in total.items()}


def _heatmap_panels(
    table: np.ndarray, y: str, col: str | None, out: Any, title: str | None
) -> Figure:
    """``--kind heatmap``: one panel per ``col`` value, each the mean link utilisation of
    its rows drawn on their (single) topology, one colour bar for all panels."""
    _need(table, "topo", "heatmap")
    _need(table, col, "col")
    if table[y].dtype != object or not any(str(v).startswith("[") for v in table[y]):
        raise ConfigError(
            f"y: a heatmap needs a column of [[u, v, utilisation], ...] lists, got {y!r}"
        )
    groups = _groups(table, col)
    if not groups or not len(table):
        raise ConfigError("data: no successful points to plot (after filtering)")
    with plt.rc_context(_STYLE):
        n = len(groups)
        fig, axes = plt.subplots(1, n, figsize=(0.6 + 3.4 * n, 3.2), squeeze=False)
        for ax, (value, sub) in zip(axes[0], groups, strict=True):
            topos = sorted({str(t) for t in sub["topo"]})
            if len(topos) != 1:
                raise ConfigError(
                    f"heatmap: a panel needs one topology, got {len(topos)} "
                    f"({', '.join(topos)}); add --where topo=... or --col topo"
                )
            cells = [c for c in sub[y] if c]
            if not cells:
                raise ConfigError(f"y: column {y!r} is empty in the rows to plot")
            plot_link_heatmap(topos[0], _mean_utilisation(cells), ax=ax)
            ax.set_title(_label(col, value) if col is not None else topos[0])
        sm = plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(0.0, 1.0))
        cb = fig.colorbar(sm, ax=list(axes[0]), fraction=0.046, pad=0.04)
        cb.set_label("link utilisation (fraction of bandwidth)")
        if title:
            fig.suptitle(title)
        if out is not None:
            save_figure(fig, out)
        return fig


def _node(graph: Any, name: Any) -> Any:
    if name in graph.nodes:
        return name
    try:
        n = int(name)
    except (TypeError, ValueError):
        n = None
    if n in graph.nodes:
        return n
    raise ConfigError(f"utilisation: node {name!r} is not in the graph")


def _auto_kind(table: np.ndarray, x: str, y: str) -> str:
    names = table.dtype.names or ()
    col = table[y] if y in names else None
    first = next((str(v) for v in col if v), "") if col is not None and col.dtype == object else ""
    if first.startswith("["):
        return "heatmap" if "util" in y else "cdf"
    if _is_size(x) and "busbw" in names and y.endswith("_s"):
        return "latency-size"
    if "load" in x:
        return "load-latency"
    return "line"


def plot_results(
    data: Any,
    x: str | None = None,
    y: str | None = None,
    *,
    hue: str | None = None,
    col: str | None = None,
    kind: str = "auto",
    where: Mapping[str, Any] | None = None,
    out: str | os.PathLike[str] | None = None,
    title: str | None = None,
) -> Figure:
    """The general figure of ``netsim plot``: pick a kind (or ``kind=...``) and draw it.

    Parameters
    ----------
    data : path, structured array or records
        Results (failed points are left out).
    x, y : str
        Columns. ``kind="breakdown"`` takes ``y`` as the total and draws ``compute_s``,
        ``memory_s``, ``launch_s``, ``fabric_s`` (those present); ``"cdf"`` uses ``y``
        only; ``"heatmap"`` draws ``y`` (``[[u, v, value], ...]``), averaged over the rows
        of a panel, on the topology of their ``topo`` column (one per panel).
    hue, col : str, optional
        Column giving one line per value / one panel per value.
    kind : str
        One of :data:`FIGURE_KINDS`; ``"auto"`` chooses from the column names.
    where : mapping, optional
        Keep rows whose columns equal these values (:func:`select`).
    out : path, optional
        Save to this ``.pdf``/``.svg``/``.png``.
    """
    if kind not in FIGURE_KINDS:
        raise ConfigError(f"kind: must be one of {', '.join(FIGURE_KINDS)}, got {kind!r}")
    before = set(plt.get_fignums())
    try:
        return _plot_kind(data, x, y, hue, col, kind, where, out, title)
    except BaseException:
        for num in set(plt.get_fignums()) - before:  # no half-drawn figure left open
            plt.close(num)
        raise


def _plot_kind(data, x, y, hue, col, kind, where, out, title) -> Figure:
    table = select(_table(data), where)
    if y is None:
        raise ConfigError("y: required, got None")
    _need(table, y, "y")
    if kind == "auto":
        kind = _auto_kind(table, x or "", y)
    if kind == "cdf":
        return plot_cdf(table, y=y, hue=hue, col=col, out=out, title=title)
    if kind == "heatmap":
        return _heatmap_panels(table, y, col, out, title)
    if x is None:
        raise ConfigError(f"x: required for kind {kind!r}, got None")
    if kind == "breakdown":
        return plot_breakdown(table, x=x, total=y, col=col, out=out, title=title)
    if kind == "latency-size":
        return plot_latency_vs_size(table, x=x, y=y, hue=hue, col=col, out=out, title=title)
    if kind == "load-latency":
        return plot_load_latency(table, x=x, y=y, hue=hue, col=col, out=out, title=title)
    return plot_line(table, x, y, hue=hue, col=col, out=out, title=title)
