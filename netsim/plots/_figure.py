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

__all__ = ["check_figure_path", "save_figure"]

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


def check_figure_path(out: str | os.PathLike[str]) -> Path:
    """Check, before any work, that a figure can be written to ``out``.

    Raises
    ------
    ConfigError
        A suffix other than ``.pdf``, ``.svg``, ``.png``; ``out`` is a directory; an
        existing parent is a file; or the file or its nearest existing directory is not
        writable.
    """
    path = Path(out)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in _FORMATS:
        raise ConfigError(f"out: suffix must be one of .pdf, .svg, .png, got {str(out)!r}")
    if path.is_dir():
        raise ConfigError(f"out: is a directory, got {str(out)!r}")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"out: {str(parent)!r} is a file, not a directory, got {str(out)!r}")
    target = path if path.exists() else parent
    if not os.access(target, os.W_OK):
        raise ConfigError(f"out: {str(target)!r} is not writable, got {str(out)!r}")
    return path


def save_figure(fig: Figure, out: str | os.PathLike[str]) -> Path:
    """Save ``fig`` as PDF, SVG (vector) or PNG (200 dpi) by the suffix of ``out``.

    Raises
    ------
    ConfigError
        As :func:`check_figure_path`, or the file system refused the write.
    """
    path = check_figure_path(out)
    fmt = path.suffix.lstrip(".").lower()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with plt.rc_context(_STYLE):
            fig.savefig(path, format=fmt, dpi=200)
    except OSError as exc:
        raise ConfigError(f"out: cannot write {str(out)!r} ({exc.strerror or exc})") from None
    return path


def _finish(fig: Figure, out: str | os.PathLike[str] | None, title: str | None) -> Figure:
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if out is not None:
        save_figure(fig, out)
    return fig


def _figure_legend(fig: Figure, title: str | None = None) -> None:
    """One legend for the whole figure, right of the panels: the labelled lines of every
    panel, each label once (per-panel legends are removed)."""
    handles: dict[str, object] = {}
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is not None:
            legend.remove()
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label and not label.startswith("_"):
                handles.setdefault(label, h)
    if handles:
        fig.legend(
            list(handles.values()),
            list(handles),
            title=title,
            loc="center left",
            bbox_to_anchor=(1.0, 0.5),
            frameon=False,
        )
