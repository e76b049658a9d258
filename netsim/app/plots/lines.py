"""Line figures: ``y`` against ``x``, one line per ``hue`` value, one panel per ``col`` value.

* :func:`plot_line`: the general line figure;
* :func:`plot_latency_vs_size`: latency vs message size (log-log), bus bandwidth below;
* :func:`plot_load_latency`: latency vs offered load.

Repeated points (seeds, repetitions) are averaged and their min-max range is drawn as
error bars (``_line_panel``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from netsim.app.plots._axes import (
    axis_label,
    category_ticks,
    hue_names,
    log_axis,
    pretty_name,
    short_names,
    size_axis,
    spans_decades,
    value_text,
)
from netsim.app.plots._data import (
    aggregate_points,
    checked_table,
    group_rows,
    is_size_name,
    numeric_column,
    same_value,
)
from netsim.app.plots._figure import Layout, facets, finish_figure, save_figure
from netsim.app.plots._theme import RC_STYLE, line_style
from netsim.core.errors import ConfigError

__all__ = ["plot_collective_sizes", "plot_latency_vs_size", "plot_line", "plot_load_latency"]


def _line_panel(ax, table, x, y, hue, *, logx=None, logy=None, layout=None, names=None):
    """Draw ``y`` against ``x`` in ``ax``, one line per ``hue`` value (``names``: their
    legend text), repeated points reduced by ``layout.aggregate``."""
    layout = layout or Layout()
    xv_all = numeric_column(table, x)
    yv_all = numeric_column(table, y)
    if yv_all is None:
        raise ConfigError(f"y: column {y!r} is not numeric")
    ylabel, yscale = axis_label(y, yv_all)
    categorical = xv_all is None
    cats = [v for v, _ in group_rows(table, x)] if categorical else []
    for i, (hv, sub) in enumerate(group_rows(table, hue)):
        if categorical:
            xv = np.array([next(k for k, c in enumerate(cats) if same_value(c, v)) for v in sub[x]])
            xv = xv.astype(float)
        else:
            xv = numeric_column(sub, x)
        xs, mid, lo, hi = aggregate_points(xv, numeric_column(sub, y), layout.aggregate)
        st = line_style(i)
        label = None if hue is None else (names or {}).get(value_text(hv), value_text(hv))
        ax.plot(xs, mid / yscale, label=label, **st)
        if layout.aggregate == "mean" and np.any(hi > lo):
            ax.errorbar(
                xs,
                mid / yscale,
                yerr=np.maximum([(mid - lo) / yscale, (hi - mid) / yscale], 0.0),
                fmt="none",
                ecolor=st["color"],
                elinewidth=0.8,
                capsize=2,
            )
    if categorical:
        xn = short_names([value_text(c) for c in cats])
        category_ticks(ax, [xn[value_text(c)] for c in cats])
        ax.set_xlabel(layout.xlabel or pretty_name(x))
    else:
        xlabel, _ = axis_label(x, xv_all)
        if is_size_name(x) and (logx or (logx is None and spans_decades(xv_all))):
            size_axis(ax, "x")
        elif logx or (logx is None and spans_decades(xv_all)):
            log_axis(ax, "x")
        ax.set_xlabel(layout.xlabel or xlabel)
    if logy or (logy is None and spans_decades(yv_all)):
        log_axis(ax, "y")
    ax.set_ylabel(ylabel)


def _plot_lines(
    data: Any,
    x: str,
    y: str,
    hue: str | None,
    col: str | None,
    out: str | os.PathLike[str] | None,
    title: str | None,
    layout: Layout | None,
    *,
    bw: str | None = None,
    logx: bool | None = None,
    logy: bool | None = None,
) -> Figure:
    """The line figures' one body: ``y`` against ``x`` in every panel (``logx``, ``logy``:
    None decides by the data) and, with a ``bw`` column, ``bw`` against ``x`` below it
    (linear)."""
    layout = layout or Layout()
    table = checked_table(data, (x, "x"), (y, "y"), (hue, "hue"), (col, "col"), (layout.row, "row"))
    if bw is not None and bw not in (table.dtype.names or ()):
        bw = None
    names = hue_names(table, hue)
    k = 2 if bw else 1
    with plt.rc_context(RC_STYLE):
        fig, axes, panels = facets(table, col, rows=k, layout=layout)
        for i, j, sub in panels:
            top = axes[i * k][j]
            _line_panel(top, sub, x, y, hue, logx=logx, logy=logy, layout=layout, names=names)
            if layout.ylabel:
                top.set_ylabel(layout.ylabel)
            if bw:
                _line_panel(axes[i * k + 1][j], sub, x, bw, hue, logx=logx, logy=False,
                            layout=layout, names=names)  # fmt: skip
                top.set_xlabel("")
        return finish_figure(fig, out, title, layout, None if hue is None else pretty_name(hue))


def plot_line(
    data: Any,
    x: str,
    y: str,
    *,
    hue: str | None = None,
    col: str | None = None,
    out: str | os.PathLike[str] | None = None,
    title: str | None = None,
    layout: Layout | None = None,
) -> Figure:
    """``y`` against ``x``, one line per ``hue`` value, one panel per ``col`` value (and
    per ``layout.row`` value), one legend."""
    return _plot_lines(data, x, y, hue, col, out, title, layout)


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
    layout: Layout | None = None,
) -> Figure:
    """Collective latency vs message size (log-log) and, below, bus bandwidth vs size.

    ``bw=None`` (or a table without it) draws the latency panel only.
    """
    return _plot_lines(data, x, y, hue, col, out, title, layout, bw=bw, logx=True, logy=True)


def plot_load_latency(
    data: Any,
    *,
    x: str = "offered_load",
    y: str = "latency_mean_s",
    hue: str | None = None,
    col: str | None = None,
    out: str | os.PathLike[str] | None = None,
    title: str | None = None,
    layout: Layout | None = None,
) -> Figure:
    """Latency vs offered load (linear load axis; log latency if it spans decades)."""
    return _plot_lines(data, x, y, hue, col, out, title, layout, logx=False)


def plot_collective_sizes(rows: Sequence[dict[str, Any]], path: str | Path) -> list[Path]:
    """Draw :func:`collectives.experiment.sweep_sizes` results: latency (log-log) and busbw vs
    size, one line per algorithm; return the files written.

    Writes ``path`` and, next to a raster file, the same figure as PDF (vector).
    """
    if not rows:
        raise ConfigError("rows: nothing to plot, got no results")
    # One line for auto, whichever algorithm it picked at each size.
    records = [
        {
            "point_id": str(i),
            "params": {
                "algo": "auto" if r.get("algo_requested") == "auto" else str(r["algo"]),
                "size": r["size"],
            },
            "metrics": {"time_s": r["time_s"], "busbw": r["busbw"]},
        }
        for i, r in enumerate(rows)
    ]
    r0 = rows[0]
    title = f"{r0['op']} on {r0['topo']} ({r0['group_size']} ranks, {r0['network_model']})"
    fig = plot_latency_vs_size(
        records, hue="algo", title=title, layout=Layout(xlabel="size per rank (bytes)")
    )
    path = Path(path)
    written = [save_figure(fig, path)]
    if path.suffix.lower() not in (".pdf", ".svg"):
        written.append(save_figure(fig, path.with_suffix(".pdf")))
    plt.close(fig)
    return written
