"""Figure layout and saving of :mod:`netsim.plots`.

``_facets`` makes a figure with one panel per value of a column, ``_finish`` titles, lays
out and (optionally) saves it, and :func:`save_figure` writes PDF, SVG (vector) or PNG by
the suffix of the path, under the rc settings of :mod:`netsim.plots._theme`.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from netsim.errors import ConfigError
from netsim.plots._axes import _label
from netsim.plots._data import _groups
from netsim.plots._theme import _STYLE

__all__ = ["save_figure"]

_FORMATS = ("pdf", "svg", "png")


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
