"""Breakdown figure: stacked compute / memory / launch / fabric time of a token (bars).

:func:`plot_breakdown` stacks the columns of :data:`BREAKDOWN_COMPONENTS` (those the
results have) for each category, means over seeds, and marks the total latency.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from netsim.app.plots._axes import axis_label, category_ticks, pretty_name, short_names, value_text
from netsim.app.plots._data import as_table, group_rows, need_column, numeric_column, order_rank
from netsim.app.plots._figure import Layout, facets, finish_figure
from netsim.app.plots._theme import OKABE_ITO, RC_STYLE
from netsim.core.errors import ConfigError

__all__ = ["BREAKDOWN_COMPONENTS", "plot_breakdown"]

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
    layout: Layout | None = None,
) -> Figure:
    """Stacked bars of the time components of a token for each ``x`` value (means over
    seeds); ``total`` (if present) is marked with a black bar-wide line.

    ``components=None`` stacks those of :data:`BREAKDOWN_COMPONENTS` that the results
    have (``compute_s``, ``memory_s``, ``launch_s``, ``fabric_s``: for the decode kind
    they add up to ``token_latency_s``).
    """
    layout = layout or Layout()
    reduce = {"mean": np.nanmean, "min": np.nanmin, "max": np.nanmax}[layout.aggregate]
    table = as_table(data)
    if components is None:
        names = table.dtype.names or ()
        components = [c for c in BREAKDOWN_COMPONENTS if c in names]
        if not components:
            raise ConfigError(
                f"components: the results have none of {', '.join(BREAKDOWN_COMPONENTS)}; "
                f"columns: {', '.join(names)}"
            )
    pairs = ((x, "x"), (col, "col"), (layout.row, "row"), *((c, "components") for c in components))
    for name, role in pairs:
        need_column(table, name, role)
    if total is not None and total not in (table.dtype.names or ()):
        total = None
    allv = np.concatenate([numeric_column(table, c) for c in components])
    label, scale = axis_label(components[0], allv)
    unit = label[label.rindex("(") :]
    with plt.rc_context(RC_STYLE):
        ncat = max(len(group_rows(sub, x)) for _, sub in group_rows(table, col))
        order = [v for v, _ in group_rows(table, x)]
        xn = short_names([value_text(v) for v in order])
        fig, axes, panels = facets(
            table, col, height=2.8, width=max(3.2, 0.9 + 0.42 * ncat), layout=layout
        )
        for i, j, sub in panels:
            ax = axes[i][j]
            # the same category order in every panel: first appearance in the whole table
            cats = sorted(group_rows(sub, x), key=lambda c: order_rank(order, c[0]))
            pos = np.arange(len(cats))
            bottom = np.zeros(len(cats))
            for k, comp in enumerate(components):
                h = np.array([reduce(numeric_column(g, comp)) for _, g in cats]) / scale
                ax.bar(pos, h, 0.7, bottom=bottom, color=OKABE_ITO[k], label=pretty_name(comp))
                bottom += np.nan_to_num(h)
            if total is not None:
                t = np.array([reduce(numeric_column(g, total)) for _, g in cats]) / scale
                ax.hlines(
                    t,
                    pos - 0.4,
                    pos + 0.4,
                    colors="black",
                    linewidths=1.5,
                    label=f"{pretty_name(total)} (total)",
                )
            category_ticks(ax, [xn[value_text(v)] for v, _ in cats])
            ax.set_xlabel(layout.xlabel or pretty_name(x))
            ax.set_ylabel(layout.ylabel or f"time per token {unit}")
            ax.grid(axis="x", visible=False)
        return finish_figure(fig, out, title, layout)
