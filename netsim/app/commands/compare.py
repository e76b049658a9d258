"""``netsim compare``: an nccl-tests log against a simulation of the same sizes (a layer over
:func:`netsim.app.nccltests.compare_nccl_tests` and :func:`netsim.app.plots.plot_comparison`)."""

from __future__ import annotations

import argparse
import math

from collectives.calibration import LIBRARIES
from collectives.options import BACKENDS
from collectives.schedule import OPS
from netsim.app.commands._common import add_command, print_json
from netsim.app.nccltests import NcclTestsComparison, compare_nccl_tests, read_nccl_tests
from netsim.core.units import format_bandwidth, format_size, format_time

__all__ = ["print_comparison", "register"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``compare`` subcommand."""
    p = add_command(sub, "compare", _run)
    p.add_argument("log", metavar="LOG", help="nccl-tests output (text file)")
    p.add_argument("--topo", required=True, help="topology spec or preset, e.g. dgx-h100")
    p.add_argument(
        "--op", default=None, choices=OPS, help="op of a log that does not name its test"
    )
    p.add_argument(
        "--algo",
        default=None,
        help="algorithm (default: auto, NCCL's tuner pick, as netsim collective)",
    )
    p.add_argument(
        "--ranks", default=None, help="chips simulated (default: the log's rank count, 0-N)"
    )
    p.add_argument("--backend", default="packet", choices=BACKENDS)
    p.add_argument(
        "--library",
        default="nccl",
        choices=LIBRARIES,
        help="collective library costs (default nccl: the log is NCCL's; none = hardware only)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="figure: .pdf, .svg or .png")
    p.add_argument("--title", default=None, help="figure title")
    p.add_argument("--json", action="store_true", help="print JSON")


def _run(args: argparse.Namespace) -> int:
    """Compare an nccl-tests log (all_reduce_perf, ...) with a simulation.

    Read the output of an nccl-tests program (all_reduce_perf, all_gather_perf,
    reduce_scatter_perf, alltoall_perf, broadcast_perf, reduce_perf), simulate the same sizes on
    a topology and print, per size, measured and simulated time and busbw and their ratio
    (simulated / measured). --out draws time and busbw against size.
    """
    from netsim.app.plots import check_figure_path, plot_comparison

    if args.out is not None:
        check_figure_path(args.out)
    log = read_nccl_tests(args.log, op=args.op)
    cmp = compare_nccl_tests(
        log, args.topo, op=args.op, algo=args.algo, ranks=args.ranks, backend=args.backend,
        library=args.library, seed=args.seed,
    )  # fmt: skip
    if args.out is not None:
        import matplotlib.pyplot as plt

        plt.close(plot_comparison(cmp, out=args.out, title=args.title))
    if args.json:
        print_json({"meta": cmp.meta, "rows": cmp.rows, "figure": args.out})
        return 0
    print_comparison(cmp)
    if args.out is not None:
        print(f"wrote {args.out}")
    return 0


def _ratio(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else "n/a"


def print_comparison(cmp: NcclTestsComparison) -> None:
    """Print a comparison as a table with units, ratios as simulated / measured."""
    m = cmp.meta
    print(
        f"{m['source']}: {', '.join(m['ops'])}, {len(cmp.rows)} sizes, {m['nranks']} ranks "
        f"({m['ranks_from']})"
    )
    print(
        f"netsim: {', '.join(m['algo'])} on {m['topo']}, model {m['network_model']}, library "
        f"{m['library']}, seed {m['seed']}; ratio = simulated / measured"
    )
    several, algos = len(m["ops"]) > 1, len(m["algo"]) > 1
    head = (f"{'op':<15}" if several else "") + (f"{'algo':<13}" if algos else "")
    print(
        f"{head}{'size':>9}  {'measured':>10} {'busbw':>10}  {'simulated':>10} {'busbw':>10}  "
        f"{'time ratio':>10} {'busbw ratio':>11}"
    )
    for r in cmp.rows:
        lead = (f"{r['op']:<15}" if several else "") + (f"{r['algo']:<13}" if algos else "")
        print(
            f"{lead}{format_size(r['size']):>9}  {format_time(r['measured_time_s']):>10} "
            f"{format_bandwidth(r['measured_busbw']):>10}  "
            f"{format_time(r['simulated_time_s']):>10} "
            f"{format_bandwidth(r['simulated_busbw']):>10}  {_ratio(r['time_ratio']):>10} "
            f"{_ratio(r['busbw_ratio']):>11}"
        )
    ratios = [r["time_ratio"] for r in cmp.rows if math.isfinite(r["time_ratio"])]
    if ratios:
        gm = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
        print(f"time ratio: geometric mean {gm:.3g}, range {min(ratios):.3g} to {max(ratios):.3g}")
