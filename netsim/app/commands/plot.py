"""``netsim plot``: a figure from a results file (a layer over netsim.app.plots.plot_results)."""

from __future__ import annotations

import argparse

from netsim.app.commands._common import add_command
from netsim.app.plots import (
    AGGREGATES,
    FIGURE_KINDS,
    Layout,
    check_figure_path,
    plot_results,
)
from netsim.core.errors import ConfigError

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "plot", _run)
    p.add_argument("results", metavar="RESULTS.h5")
    p.add_argument("--x", help="column on the x axis (e.g. size)")
    p.add_argument("--y", required=True, help="column on the y axis (e.g. time_s)")
    p.add_argument("--hue", help="one line per value of this column (e.g. algo)")
    p.add_argument("--col", help="one panel per value of this column (e.g. topo)")
    p.add_argument("--row", help="one row of panels per value of this column (e.g. batch)")
    p.add_argument("--kind", default="auto", choices=FIGURE_KINDS)
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="COLUMN=VALUE",
        help="keep only rows with this value (repeatable)",
    )
    p.add_argument("--title", help="figure title")
    p.add_argument("--xlabel", help="x axis label (default: the column and its unit)")
    p.add_argument("--ylabel", help="y axis label (default: the column and its unit)")
    p.add_argument("--sharex", action="store_true", help="one x scale for all panels")
    p.add_argument("--sharey", action="store_true", help="one y scale for all panels")
    p.add_argument(
        "--aggregate",
        choices=AGGREGATES,
        default=None,
        help="reduce points that differ in a parameter on no axis/hue/col/row (default: refuse)",
    )
    p.add_argument("--out", required=True, help="figure file: .pdf, .svg or .png")


def _run(args: argparse.Namespace) -> int:
    """Draw a figure from a sweep's HDF5 results.

    Draw Y against X from a results file: one line per --hue value, one panel per --col (and
    --row) value, one legend. --kind auto picks latency-vs-size (with busbw), load-latency, CDF
    or a link heatmap from the column names. Points that differ in a swept parameter on no axis,
    hue, col or row are refused unless --aggregate says how to reduce them (seeds are always
    averaged, with min-max bars).
    """
    check_figure_path(args.out)
    where = {}
    for item in args.where:
        if "=" not in item:
            raise ConfigError(f"where: expected COLUMN=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        where[key.strip()] = value.strip()
    fig = plot_results(
        args.results,
        args.x,
        args.y,
        hue=args.hue,
        col=args.col,
        kind=args.kind,
        where=where,
        out=args.out,
        title=args.title,
        layout=Layout(args.row, args.sharex, args.sharey, args.xlabel, args.ylabel),
        aggregate=args.aggregate,
    )
    import matplotlib.pyplot as plt

    plt.close(fig)  # saved; the figure object stays valid for callers of main()
    print(args.out)
    return 0
