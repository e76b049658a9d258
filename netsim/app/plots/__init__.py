"""Figures for papers from sweep results (matplotlib, Agg backend, vector output).

One function per figure kind, each taking a results table (a path, a structured array from
:func:`netsim.app.results.load_results`, or a list of records) and returning a
:class:`matplotlib.figure.Figure` (saved to ``out`` if given: ``.pdf``, ``.svg`` or ``.png``):

* :func:`plot_latency_vs_size`: latency vs message size (log-log), bus bandwidth below;
* :func:`plot_breakdown`: stacked compute / memory / fabric time of a token (bars);
* :func:`plot_load_latency`: latency vs offered load;
* :func:`plot_cdf`: empirical CDFs (e.g. token latency samples: stragglers);
* :func:`plot_link_heatmap`: link utilisation drawn on the topology (meshes, tori);
* :func:`plot_comparison`: an nccl-tests measurement against netsim (``netsim compare``);
* :func:`plot_results`: the general entry (``netsim plot``), choosing a kind from the columns.

Style: every axis names its quantity and unit (times are shown in the one unit of ns, µs,
ms or s that suits the data and the label says which; bandwidths in GB/s = 1e9 bytes/s;
sizes on a log2 axis with ticks like ``4KiB``); log scales where the data span more than a
decade; the Okabe-Ito colour-blind-safe palette with distinct markers; TrueType fonts in
PDF (``pdf.fonttype 42``) and text kept as text in SVG. Rows whose ``error`` is not empty
are left out; repeated points (seeds, repetitions) are averaged and their min-max range is
drawn as error bars.

Layout: results-table helpers in ``_data``, axis labels and units in ``_axes``, palette
and rc settings in ``_theme``, figure layout and saving in ``_figure``, one module per
figure kind (``lines``, ``breakdown``, ``cdf``, ``heatmap``), and here the dispatch of
:func:`plot_results`. The public names are listed in ``__all__`` here: import them from
:mod:`netsim.app.plots`. The underscored modules are private to this package; their
names are public so that the figure modules share them without importing private names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import matplotlib

# This file runs before any module of the package, so Agg is chosen before pyplot loads.
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from netsim.app.plots._axes import LABELS, axis_label, short_names
from netsim.app.plots._data import (
    AGGREGATES,
    as_table,
    averaged_parameters,
    is_missing,
    is_size_name,
    need_column,
    select,
    swept_parameters,
)
from netsim.app.plots._figure import Layout, check_figure_path, save_figure
from netsim.app.plots._theme import OKABE_ITO, PALETTE_SOURCE
from netsim.app.plots.breakdown import BREAKDOWN_COMPONENTS, plot_breakdown
from netsim.app.plots.cdf import plot_cdf
from netsim.app.plots.compare import plot_comparison
from netsim.app.plots.heatmap import heatmap_panels, plot_link_heatmap
from netsim.app.plots.lines import (
    plot_collective_sizes,
    plot_latency_vs_size,
    plot_line,
    plot_load_latency,
)
from netsim.app.results import check_results_file
from netsim.app.sweep_spec import load_yaml, spec_labels
from netsim.core.errors import ConfigError

__all__ = [
    "AGGREGATES",
    "BREAKDOWN_COMPONENTS",
    "FIGURE_KINDS",
    "OKABE_ITO",
    "PALETTE_SOURCE",
    "Layout",
    "averaged_parameters",
    "axis_label",
    "check_figure_path",
    "plot_breakdown",
    "plot_cdf",
    "plot_collective_sizes",
    "plot_comparison",
    "plot_latency_vs_size",
    "plot_line",
    "plot_link_heatmap",
    "plot_load_latency",
    "plot_results",
    "save_figure",
    "select",
    "short_names",
]

FIGURE_KINDS = ("auto", "line", "latency-size", "breakdown", "load-latency", "cdf", "heatmap")


def _auto_kind(table: np.ndarray, x: str, y: str) -> str:
    names = table.dtype.names or ()
    col = table[y] if y in names else None
    first = next((str(v) for v in col if v), "") if col is not None and col.dtype == object else ""
    if first.startswith("["):
        return "heatmap" if "util" in y else "cdf"
    if is_size_name(x) and "busbw" in names and y.endswith("_s"):
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
    layout: Layout | None = None,
    aggregate: str | None = None,
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
        Column giving one line per value / one panel column per value.
    kind : str
        One of :data:`FIGURE_KINDS`; ``"auto"`` chooses from the column names.
    where : mapping, optional
        Keep rows whose columns equal these values (:func:`select`).
    out : path, optional
        Save to this ``.pdf``/``.svg``/``.png`` (checked before anything is drawn).
    title : str, optional
        Figure title.
    layout : Layout, optional
        Panel rows (``row``: one row of panels per value of a column; not for heatmaps),
        shared scales (``sharex``, ``sharey``) and axis labels replacing the automatic ones
        (``xlabel``, ``ylabel``); its ``aggregate`` is set from ``aggregate``.
    aggregate : {"mean", "min", "max"}, optional
        Reduce points that differ in a swept parameter not on an axis, ``hue``, ``col`` or
        ``row``. Without it such a figure is refused (no silent averaging); repeated
        seeds and repetitions are averaged in any case (min-max error bars).

    Raises
    ------
    ConfigError
        Unknown kind or column, no points with a value of ``y`` after filtering, a
        column of records (JSON objects) as ``y``, parameters averaged silently, or a
        bad ``out``.
    """
    if kind not in FIGURE_KINDS:
        raise ConfigError(f"kind: must be one of {', '.join(FIGURE_KINDS)}, got {kind!r}")
    if aggregate is not None and aggregate not in AGGREGATES:
        raise ConfigError(f"aggregate: must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
    if out is not None:
        check_figure_path(out)
    layout = replace(layout or Layout(), aggregate=aggregate or "mean")
    before = set(plt.get_fignums())
    token = LABELS.set(_file_labels(data))
    try:
        return _plot_kind(data, x, y, hue, col, kind, where, out, title, layout, aggregate)
    except BaseException:
        for num in set(plt.get_fignums()) - before:  # no half-drawn figure left open
            plt.close(num)
        raise
    finally:
        LABELS.reset(token)


def _file_labels(data: Any) -> dict[str, str]:
    """The labels of the spec a results file records (``{}`` for a table or records)."""
    if not isinstance(data, str | os.PathLike):
        return {}
    text = check_results_file(data)
    return spec_labels(load_yaml(text)) if text else {}


def _checked_selection(data, x, y, hue, col, where, layout, aggregate) -> np.ndarray:
    """The selected rows; refuses a ``y`` without values, records as ``y``, and silent
    averaging over swept parameters."""
    table = select(as_table(data), where)
    if y is None:
        raise ConfigError("y: required, got None")
    for name, role in ((y, "y"), (x, "x"), (hue, "hue"), (col, "col"), (layout.row, "row")):
        need_column(table, name, role)
    if not len(table):
        raise ConfigError("data: no successful points to plot (after filtering)")
    have = [v for v in table[y] if not is_missing(v)]
    if not have:
        raise ConfigError(
            f"y: column {y!r} is empty in the {len(table)} selected points (add --where "
            "kind=... or choose another column)"
        )
    first = str(have[0]).lstrip()
    if first.startswith("{") or first.startswith("[{"):
        raise ConfigError(
            f"y: column {y!r} holds records (JSON objects), not numbers or samples; plot "
            "a numeric column or a list of numbers"
        )
    params = swept_parameters(data) if aggregate is None else None
    hidden = averaged_parameters(table, y, [x, hue, col, layout.row], params or [])
    if hidden:
        raise ConfigError(
            f"aggregate: the points differ in {', '.join(hidden)}, which is on no axis, hue, "
            "col or row; put it there, fix it with --where, or give --aggregate mean|min|max"
        )
    return table


def _plot_kind(data, x, y, hue, col, kind, where, out, title, layout, aggregate) -> Figure:
    table = _checked_selection(data, x, y, hue, col, where, layout, aggregate)
    if kind == "auto":
        kind = _auto_kind(table, x or "", y)
    if kind == "cdf":
        return plot_cdf(table, y=y, hue=hue, col=col, out=out, title=title, layout=layout)
    if kind == "heatmap":
        if layout.row is not None:
            raise ConfigError(f"row: a heatmap has one row of panels, got row={layout.row!r}")
        return heatmap_panels(table, y, col, out, title)
    if x is None:
        raise ConfigError(f"x: required for kind {kind!r}, got None")
    kw = dict(col=col, out=out, title=title, layout=layout)
    if kind == "breakdown":
        return plot_breakdown(table, x=x, total=y, **kw)
    if kind == "latency-size":
        return plot_latency_vs_size(table, x=x, y=y, hue=hue, **kw)
    if kind == "load-latency":
        return plot_load_latency(table, x=x, y=y, hue=hue, **kw)
    return plot_line(table, x, y, hue=hue, **kw)
