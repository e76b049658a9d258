"""CDF figure: empirical CDFs of samples (e.g. per-token latencies: stragglers).

:func:`plot_cdf` pools a JSON list column over the rows of a group (or takes a numeric
column, one value per point) and draws one step curve per ``hue`` value.
"""

from __future__ import annotations

import json
import os
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from netsim.app.plots._axes import axis_label, hue_names, log_axis, pretty_name, value_text
from netsim.app.plots._data import checked_table, group_rows, numeric_column
from netsim.app.plots._figure import Layout, facets, finish_figure
from netsim.app.plots._theme import OKABE_ITO, RC_STYLE
from netsim.core.errors import ConfigError

__all__ = ["plot_cdf"]


def _samples(table: np.ndarray, sub: np.ndarray, y: str) -> np.ndarray:
    """The finite values of ``y`` in ``sub``: numbers, or the pooled JSON lists."""
    num = numeric_column(sub, y) if table[y].dtype.kind in "biuf" else None
    if num is not None:
        return num[np.isfinite(num)]
    try:
        parts = [json.loads(t) for t in sub[y] if t]
    except (TypeError, ValueError):
        parts = [None]
    flat = [s for p in parts if isinstance(p, list) for s in p]
    if not all(isinstance(p, list) for p in parts) or not all(
        s is None or (isinstance(s, int | float) and not isinstance(s, bool)) for s in flat
    ):
        raise ConfigError(f"y: column {y!r} holds neither numbers nor lists of samples")
    v = np.asarray([s for s in flat if s is not None], dtype=float)
    return v[np.isfinite(v)]


def plot_cdf(
    data: Any,
    *,
    y: str = "samples",
    hue: str | None = None,
    col: str | None = None,
    out: str | os.PathLike[str] | None = None,
    title: str | None = None,
    layout: Layout | None = None,
) -> Figure:
    """Empirical CDF of ``y``: a JSON list column (samples of every point of a group are
    pooled, e.g. per-token latencies) or a numeric column (one value per point)."""
    layout = layout or Layout()
    table = checked_table(data, (y, "y"), (hue, "hue"), (col, "col"), (layout.row, "row"))
    allv = _samples(table, table, y)
    if not len(allv):
        raise ConfigError(f"y: column {y!r} has no samples in the points to plot")
    label, scale = axis_label(y, allv)
    names = hue_names(table, hue)
    with plt.rc_context(RC_STYLE):
        fig, axes, panels = facets(table, col, layout=layout)
        for i, j, sub in panels:
            ax = axes[i][j]
            for k, (hv, g) in enumerate(group_rows(sub, hue)):
                v = np.sort(_samples(table, g, y)) / scale
                frac = np.arange(1, len(v) + 1) / max(1, len(v))
                text = None if hue is None else names.get(value_text(hv), value_text(hv))
                ax.step(v, frac, where="post", color=OKABE_ITO[k % 8], label=text)
            if allv.min() > 0 and allv.max() / allv.min() >= 100:
                log_axis(ax, "x")
            ax.set_xlabel(layout.xlabel or label)
            ax.set_ylabel(layout.ylabel or "fraction of samples ≤ x (CDF)")
            ax.set_ylim(0, 1.02)
        return finish_figure(fig, out, title, layout, None if hue is None else pretty_name(hue))
