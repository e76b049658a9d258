"""``netsim collective``: time one collective (or a size sweep) on a topology."""

from __future__ import annotations

import argparse
from typing import Any

from collectives.api import run_collective
from collectives.options import CollectiveOptions
from collectives.schedule import OPS
from netsim.app.commands._common import (
    add_command,
    add_options,
    arg_size,
    options_from_args,
    print_json,
)
from netsim.app.nccltests import format_nccl_tests
from netsim.app.plots import plot_collective_sizes
from netsim.core.errors import ConfigError
from netsim.core.units import format_bandwidth, format_size, format_time, parse_size_range
from netsim.core.validate import require_writable

__all__ = ["PLOT_FORMATS", "register"]

#: File types of ``--plot`` (a raster figure also gets a PDF twin).
PLOT_FORMATS = (".png", ".pdf", ".svg")


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "collective", _run)
    p.add_argument("--topo", required=True, help="topology spec or preset, e.g. dgx-h100")
    p.add_argument("--op", default="allreduce", choices=OPS)
    p.add_argument(
        "--algo",
        default=None,
        help="algorithm, or a comma list with --sizes (default: auto, the one NCCL's tuner "
        "picks for the size and system)",
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--size", type=arg_size, default=None, help="bytes per rank (e.g. 1MiB)")
    size.add_argument("--sizes", help="a size sweep: START:STOP:xFACTOR or a,b,c")
    add_options(p, CollectiveOptions)
    p.add_argument(
        "--plot", default=None, help="with --sizes: write latency/busbw figure (.png, .pdf or .svg)"
    )
    p.add_argument(
        "--format",
        default="text",
        choices=("text", "json", "nccl-tests"),
        help="output: text (default), json (a list with --sizes) or the table nccl-tests' "
        "*_perf programs print (read back by netsim compare)",
    )
    p.add_argument("--json", action="store_true", help="same as --format json")


def _run(args: argparse.Namespace) -> int:
    """Time a collective (all-reduce, all-gather, ...) on a topology.

    Build a collective schedule, run it on the packet engine (or the flow-level or analytical
    model), and print time, algbw and busbw (nccl-tests definitions), the analytical estimate
    and the busiest link.
    """
    algos, sizes = _algos_and_sizes(args)
    fmt = "json" if args.json else args.format
    if fmt == "nccl-tests" and len(algos) > 1:
        raise ConfigError(f"format: an nccl-tests table has one algorithm, got {args.algo!r}")
    if args.plot:  # before the simulation, not after it
        require_writable("plot", args.plot, suffixes=PLOT_FORMATS)
    options = options_from_args(args, CollectiveOptions)
    rows = [run_collective(args.topo, args.op, a, n, options) for a in algos for n in sizes]
    if args.plot:
        for path in plot_collective_sizes(rows, args.plot):
            if fmt == "text":
                print(f"wrote {path}")
    if fmt == "json":
        print_json(rows if args.sizes else rows[0])
    elif fmt == "nccl-tests":
        print(format_nccl_tests(rows), end="")
    else:
        _print_header(rows[0])
        _print_table(rows) if args.sizes else _print_one(rows[0])
    return 0


def _algos_and_sizes(args: argparse.Namespace) -> tuple[list[str], list[Any]]:
    """The algorithms (``--algo``, a comma list) and sizes (``--size`` or ``--sizes``)."""
    algo = args.algo if args.algo is not None else "auto"
    algos = [a.strip() for a in algo.split(",") if a.strip()]
    if not algos:
        raise ConfigError(f"algo: expected a name or a comma list of names, got {algo!r}")
    if args.sizes:
        sizes = parse_size_range(args.sizes, "sizes")
    elif args.size is not None or args.matrix is not None:
        if len(algos) > 1:
            raise ConfigError(f"algo: several algorithms need --sizes, got {algo!r}")
        sizes = [args.size]
    else:
        raise ConfigError("size: give --size or --sizes")
    if args.matrix is not None and args.sizes:
        raise ConfigError(f"sizes: a --matrix fixes the size, got --sizes {args.sizes!r}")
    if args.plot and not args.sizes:
        raise ConfigError("plot: needs a size sweep (--sizes)")
    return algos, sizes


def _print_header(r0: dict) -> None:
    """What ran: the op, topology, ranks, model, seed and library costs."""
    print(
        f"{r0['op']} on {r0['topo']}: {len(r0['ranks'])} ranks in {r0['groups']} group(s) of "
        f"{r0['group_size']}; model {r0['network_model']}, seed {r0['seed']}"
    )
    proto = f", protocol {r0['protocol']}" if r0["protocol"] else ""
    print(f"collective library {r0['library']}{proto}")
    per_link = r0["link_costs"] if len(r0["link_costs"]) > 1 else {"": r0}
    for lt, c in per_link.items():
        print(
            f"{lt + ': ' if lt else ''}step overhead {format_time(c['step_overhead'])}, launch "
            f"{format_time(c['launch_overhead'])}, efficiency {c['efficiency']:.3g}, "
            f"multipath {'on' if c['multipath'] else 'off'}"
        )
    if r0.get("channel_cap_busbw"):
        print(f"per-channel cap: busbw at most {format_bandwidth(r0['channel_cap_busbw'])} (NCCL)")


def _print_one(r: dict) -> None:
    """One result, a line per quantity."""
    t = r["tuner"]
    tuned = "" if t is None else " (auto)"
    if t and t["nccl_algo"]:
        tuned = f" (auto: NCCL's tuner picks {t['nccl_algo']}/{t['protocol']})"
    print(f"algorithm   {r['algo']}{tuned}")
    if r["protocol"] is not None:
        print(f"protocol    {r['protocol']} ({r['protocol_rule']})")
    if r["channels"] is not None:
        print(f"channels    {r['channels']}")
    print(f"size        {format_size(r['size'])} per rank")
    print(f"time        {format_time(r['time_s'])}")
    print(f"algbw       {format_bandwidth(r['algbw'])}")
    print(f"busbw       {format_bandwidth(r['busbw'])}")
    print(f"analytical  {_estimate(r)}")
    if r["busiest_link"] is None:
        print("busiest     none (no link carried data)")
    else:
        print(f"busiest     {r['busiest_link']} at {100 * r['max_link_utilisation']:.1f}% busy")
    if r["check"]:
        print("check       ok")


def _print_table(rows: list[dict]) -> None:
    """A size sweep, a row per (algorithm, size)."""
    print(
        f"{'algo':<20} {'size':>9} {'time':>10} {'algbw':>11} {'busbw':>11} "
        f"{'analytical':>11} {'max util':>8}"
    )
    for r in rows:
        name = f"auto: {r['algo']}" if r["algo_requested"] == "auto" else r["algo"]
        name += f"/{r['protocol']}" if r["protocol"] else ""
        print(
            f"{name:<20} {format_size(r['size']):>9} {format_time(r['time_s']):>10} "
            f"{format_bandwidth(r['algbw']):>11} {format_bandwidth(r['busbw']):>11} "
            f"{_estimate(r):>11} {100 * r['max_link_utilisation']:7.1f}%"
        )


def _estimate(r: dict) -> str:
    """The analytical estimate of a result row, or ``skipped`` (``--no-estimate``)."""
    ana = r["analytical_time_s"]
    return "skipped" if ana is None else format_time(ana)
