"""Line figures: ``y`` against ``x``, one line per ``hue`` value, one panel per ``col`` value.

* :func:`plot_line`: the general line figure;
* :func:`plot_latency_vs_size`: latency vs message size (log-log), bus bandwidth below;
* :func:`plot_load_latency`: latency vs offered load.

Repeated points (seeds, repetitions) are averaged and their min-max range is drawn as
error bars (``_line_panel``).
"""

from __future__ import annotations

import os
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from netsim.errors import ConfigError
from netsim.plots._axes import _pretty, _size_axis, _spans_decades, _text, axis_label
from netsim.plots._data import _aggregate, _groups, _is_size, _need, _numeric, _same, _table
from netsim.plots._figure import _facets, _finish
from netsim.plots._theme import _STYLE, _style

__all__ = ["plot_latency_vs_size", "plot_line", "plot_load_latency"]


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
