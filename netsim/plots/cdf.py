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

from netsim.errors import ConfigError
from netsim.plots._axes import _pretty, _spans_decades, _text, axis_label
from netsim.plots._data import _groups, _need, _numeric, _table
from netsim.plots._figure import _facets, _finish
from netsim.plots._theme import _STYLE, OKABE_ITO

__all__ = ["plot_cdf"]


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
