"""``netsim collective``: time one collective (or a size sweep) on a topology."""

from __future__ import annotations

import argparse

from collectives.api import BACKENDS, run_collective
from collectives.calibration import LIBRARIES
from collectives.experiment import plot_sizes
from collectives.schedule import OPS
from netsim.app.commands._common import arg_size, arg_time, print_json
from netsim.app.nccltests import format_nccl_tests
from netsim.core.engine import FORWARDING, ROUTINGS
from netsim.core.errors import ConfigError
from netsim.core.units import format_bandwidth, format_size, format_time, parse_size_range
from netsim.core.validate import require_writable

__all__ = ["PLOT_FORMATS", "register"]

#: File types of ``--plot`` (a raster figure also gets a PDF twin).
PLOT_FORMATS = (".png", ".pdf", ".svg")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "collective",
        help="time a collective (all-reduce, all-gather, ...) on a topology",
        description="Build a collective schedule, run it on the packet engine (or the "
        "flow-level or analytical model), and print time, algbw and busbw (nccl-tests definitions), the "
        "analytical estimate and the busiest link.",
    )
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
    p.add_argument("--ranks", default=None, help="chips taking part, e.g. 0-7 (default all)")
    p.add_argument("--groups", type=int, default=None, help="concurrent groups of this many ranks")
    p.add_argument("--chunks", type=int, default=None, help="pipeline chunks")
    p.add_argument(
        "--channels",
        type=int,
        default=None,
        help="ring/tree channels side by side (default: one per NIC of a node on multi-node "
        "systems, else 1)",
    )
    p.add_argument(
        "--pxn",
        action="store_true",
        help="ring: rail-matched inter-node sends through a proxy GPU on the receiver's rail",
    )
    p.add_argument("--root", type=int, default=0, help="root rank (broadcast, reduce)")
    p.add_argument(
        "--dims", default=None, help="rank grid of --algo hierarchical or torus, e.g. 8x4"
    )
    p.add_argument(
        "--matrix",
        default=None,
        help="alltoall per-pair element counts: rows '0,4;4,0' or a .npy/.json/.csv file "
        "(sets the size: its largest row sum)",
    )
    p.add_argument(
        "--backend",
        default="packet",
        choices=BACKENDS,
        help="packet engine, analytical (alpha-beta, no contention) or flow (links shared "
        "max-min fairly)",
    )
    p.add_argument(
        "--forwarding", default=None, choices=FORWARDING, help="packet backend (cut-through)"
    )
    p.add_argument("--routing", default="auto", choices=ROUTINGS)
    p.add_argument(
        "--library",
        default="nccl",
        choices=LIBRARIES,
        help="collective library costs: nccl = NCCL's launch, per-step cost, protocol "
        "efficiency and multipath for the topology's link types (default, as nccl-tests "
        "measures); none = hardware only",
    )
    p.add_argument(
        "--step-overhead", type=arg_time, default=None, help="per-step software cost (e.g. 1us)"
    )
    p.add_argument(
        "--launch-overhead", type=arg_time, default=None, help="cost before the first send"
    )
    p.add_argument(
        "--efficiency", type=float, default=None, help="library payload fraction in (0, 1]"
    )
    p.add_argument(
        "--multipath",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="stripe each message over all equal-cost routes (default by link type)",
    )
    p.add_argument(
        "--reduce-bandwidth",
        default=None,
        help="local reduction bandwidth (e.g. 3.35TB/s) or a chip preset (its HBM bandwidth)",
    )
    p.add_argument(
        "--max-segments",
        default="256",
        help="packet engine: simulate a message as at most N packets (default 256; 'none' = "
        "every real MTU packet)",
    )
    p.add_argument("--itemsize", type=int, default=4, help="bytes per element (default 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check", action="store_true", help="verify the result on random data")
    p.add_argument(
        "--estimate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also print the contention-free analytical estimate (default on; --no-estimate "
        "skips it)",
    )
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
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
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
    fmt = "json" if args.json else args.format
    if fmt == "nccl-tests" and len(algos) > 1:
        raise ConfigError(f"format: an nccl-tests table has one algorithm, got {algo!r}")
    if args.plot:  # before the simulation, not after it
        require_writable("plot", args.plot, suffixes=PLOT_FORMATS)
    kw = dict(
        ranks=args.ranks,
        groups=args.groups,
        chunks=args.chunks,
        root=args.root,
        backend=args.backend,
        forwarding=args.forwarding,
        routing=args.routing,
        step_overhead=args.step_overhead,
        launch_overhead=args.launch_overhead,
        reduce_bandwidth=args.reduce_bandwidth,
        itemsize=args.itemsize,
        seed=args.seed,
        check=args.check,
        estimate=args.estimate,
        efficiency=args.efficiency,
        multipath=args.multipath,
        max_segments=args.max_segments,
        library=args.library,
    )
    if args.matrix is not None:
        kw["matrix"] = args.matrix
    if args.dims is not None:
        kw["dims"] = args.dims
    if args.channels is not None:
        kw["channels"] = args.channels
    if args.pxn:
        kw["pxn"] = True
    rows = [run_collective(args.topo, args.op, a, n, **kw) for a in algos for n in sizes]
    if args.plot:
        for path in plot_sizes(rows, args.plot):
            if fmt == "text":
                print(f"wrote {path}")
    if fmt == "json":
        print_json(rows if args.sizes else rows[0])
        return 0
    if fmt == "nccl-tests":
        print(format_nccl_tests(rows), end="")
        return 0
    r0 = rows[0]
    print(
        f"{r0['op']} on {r0['topo']}: {len(r0['ranks'])} ranks in {r0['groups']} group(s) of "
        f"{r0['group_size']}; model {r0['model']}, seed {r0['seed']}"
    )
    print(f"collective library {r0['library']}")
    per_link = r0["link_costs"] if len(r0["link_costs"]) > 1 else {"": r0}
    for lt, c in per_link.items():
        print(
            f"{lt + ': ' if lt else ''}step overhead {format_time(c['step_overhead'])}, launch "
            f"{format_time(c['launch_overhead'])}, efficiency {c['efficiency']:.3g}, "
            f"multipath {'on' if c['multipath'] else 'off'}"
        )
    if not args.sizes:
        r = r0
        t = r["tuner"]
        tuned = "" if t is None else " (auto)"
        if t and t["nccl_algo"]:
            tuned = f" (auto: NCCL's tuner picks {t['nccl_algo']}/{t['protocol']})"
        print(f"algorithm   {r['algo']}{tuned}")
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
        return 0
    print(
        f"{'algo':<20} {'size':>9} {'time':>10} {'algbw':>11} {'busbw':>11} "
        f"{'analytical':>11} {'max util':>8}"
    )
    for r in rows:
        name = f"auto: {r['algo']}" if r["algo_requested"] == "auto" else r["algo"]
        print(
            f"{name:<20} {format_size(r['size']):>9} {format_time(r['time_s']):>10} "
            f"{format_bandwidth(r['algbw']):>11} {format_bandwidth(r['busbw']):>11} "
            f"{_estimate(r):>11} {100 * r['max_link_utilisation']:7.1f}%"
        )
    return 0


def _estimate(r: dict) -> str:
    """The analytical estimate of a result row, or ``skipped`` (``--no-estimate``)."""
    ana = r["analytical_time_s"]
    return "skipped" if ana is None else format_time(ana)
