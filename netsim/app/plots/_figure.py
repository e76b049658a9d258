"""Figure layout and saving of :mod:`netsim.app.plots`.

``facets`` makes a figure with one panel per value of a column, ``finish_figure`` titles, lays
out and (optionally) saves it, and :func:`save_figure` writes PDF, SVG (vector) or PNG by
the suffix of the path, under the rc settings of :mod:`netsim.app.plots._theme`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from netsim.app.plots._axes import short_names, value_label, value_text
from netsim.app.plots._data import group_rows, same_value
from netsim.app.plots._theme import RC_STYLE
from netsim.core.errors import ConfigError

__all__ = [
    "FORMATS",
    "Layout",
    "check_figure_path",
    "facets",
    "figure_legend",
    "finish_figure",
    "save_figure",
]

FORMATS = ("pdf", "svg", "png")


@dataclass(frozen=True, slots=True)
class Layout:
    """How a faceted figure is laid out and labelled (``netsim plot`` options).

    Attributes
    ----------
    row : str, optional
        One row of panels per value of this column (``col`` gives the columns).
    sharex, sharey : bool
        One x (y) scale for all panels (y: per quantity row); inner tick labels hidden.
    xlabel, ylabel : str, optional
        Replace the automatic axis labels (``ylabel``: of the ``y`` quantity only).
    aggregate : str
        How points drawn as one are reduced: ``"mean"`` (default, with a min-max error
        bar), ``"min"`` or ``"max"``.
    """

    row: str | None = None
    sharex: bool = False
    sharey: bool = False
    xlabel: str | None = None
    ylabel: str | None = None
    aggregate: str = "mean"


def facets(
    table: np.ndarray,
    col: str | None,
    rows: int = 1,
    height: float = 2.6,
    width: float = 3.2,
    layout: Layout | None = None,
):
    """A grid of panels: a column per ``col`` value, ``rows`` subplot rows per
    ``layout.row`` value. Returns ``fig, axes, panels`` with ``panels`` a list of
    ``(i, j, rows_of_the_panel)``; panel ``(i, j)`` draws in ``axes[i * rows + k][j]``."""
    layout = layout or Layout()
    cols = group_rows(table, col)
    prow = group_rows(table, layout.row)
    if not cols or not prow or not len(table):
        raise ConfigError("data: no successful points to plot (after filtering)")
    n, m = len(cols), len(prow)
    fig, axes = plt.subplots(
        rows * m,
        n,
        figsize=(0.4 + width * n, 0.4 + height * rows * m),
        squeeze=False,
        sharex="all" if layout.sharex else "col",
        sharey="row" if layout.sharey else False,
    )
    cnames = short_names([value_text(v) for v, _ in cols])
    rnames = short_names([value_text(v) for v, _ in prow])
    panels = []
    for i, (rv, rsub) in enumerate(prow):
        for j, (cv, _) in enumerate(cols):
            sub = rsub
            if col is not None:
                sub = rsub[np.array([same_value(x, cv) for x in rsub[col]], bool)]
            parts = [value_label(layout.row, rv, rnames), value_label(col, cv, cnames)]
            axes[i * rows][j].set_title(", ".join(p for p in parts if p))
            panels.append((i, j, sub))
    return fig, axes, panels


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
    if fmt not in FORMATS:
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
        with plt.rc_context(RC_STYLE):
            fig.savefig(path, format=fmt, dpi=200)
    except OSError as exc:
        raise ConfigError(f"out: cannot write {str(out)!r} ({exc.strerror or exc})") from None
    return path


def finish_figure(
    fig: Figure,
    out: str | os.PathLike[str] | None,
    title: str | None,
    layout: Layout | None = None,
    legend: str | None = None,
) -> Figure:
    """One figure legend (titled ``legend``), shared-axis labels on the outer panels only,
    the title, tight layout; saved to ``out`` if given."""
    layout = layout or Layout()
    figure_legend(fig, legend)
    for ax in fig.axes:
        spec = ax.get_subplotspec()
        if spec is None:
            continue
        if layout.sharey and not spec.is_first_col():
            ax.set_ylabel("")
        if layout.sharex and not spec.is_last_row():
            ax.set_xlabel("")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if out is not None:
        save_figure(fig, out)
    return fig


def figure_legend(fig: Figure, title: str | None = None) -> None:
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
