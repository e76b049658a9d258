"""``netsim traffic``: synthetic traffic on the packet engine (a layer over run_traffic)."""

from __future__ import annotations

import argparse

from netsim.app.commands._common import add_command, add_options, options_from_args, print_json
from netsim.core.errors import ConfigError
from netsim.core.traffic import MAX_LOADS, PATTERNS, TrafficOptions, run_traffic
from netsim.core.units import format_bandwidth, format_size, format_time, parse_float_range

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "traffic", _run)
    p.add_argument("--topo", required=True, help="topology spec or preset, e.g. torus:dims=8x8")
    p.add_argument("--pattern", default="uniform", choices=PATTERNS)
    load = p.add_mutually_exclusive_group()
    load.add_argument(
        "--load",
        type=float,
        default=0.1,
        help="offered load per chip, fraction of its injection bandwidth",
    )
    load.add_argument("--loads", help="a latency-vs-load curve: START:STOP:STEP or a,b,c")
    add_options(p, TrafficOptions)
    p.add_argument("--json", action="store_true", help="print JSON (a list with --loads)")


def _run(args: argparse.Namespace) -> int:
    """Synthetic traffic: latency vs offered load.

    Run a synthetic traffic pattern on the packet engine: warm-up and measurement in sample
    periods until the mean latency converges, or a stop reported as saturated when queues grow
    without bound (--packets N: N labelled packets, drained).
    """
    sweep = args.loads is not None  # an empty --loads '' is refused, not the default load
    loads = parse_float_range(args.loads, "loads") if sweep else [args.load]
    if len(loads) > MAX_LOADS:
        raise ConfigError(
            f"loads: at most {MAX_LOADS} loads in one curve (netsim.core.traffic.MAX_LOADS; each "
            f"runs until its latency converges), got {len(loads)}; use a sweep file for more"
        )
    options = options_from_args(args, TrafficOptions)
    results = [run_traffic(args.topo, args.pattern, load, options).to_dict() for load in loads]
    if args.json:
        print_json(results if sweep else results[0])
        return 0
    r0 = results[0]
    print(
        f"topology {r0['topo']} ({r0['chips']} chips), pattern {r0['pattern']}, "
        f"{r0['injection']} injection of {format_size(r0['size'])} packets"
    )
    print(f"model {r0['network_model']}, routing {r0['routing']}, seed {r0['seed']}")
    print(
        f"{'offered':>8} {'accepted':>9} {'mean':>10} {'p50':>10} {'p99':>10} {'hops/s':>10}  state"
    )
    for r in results:
        rate = r["packet_hops"] / r["wall_s"] if r["wall_s"] > 0 else float("nan")
        print(
            f"{r['offered_load']:8.3f} {r['accepted_load']:9.3f} "
            f"{format_time(r['latency_mean_s']):>10} {format_time(r['latency_p50_s']):>10} "
            f"{format_time(r['latency_p99_s']):>10} {rate:10.3g}  {_state(r)}"
        )
    for r in results:
        print(f"load {r['offered_load']:.3f}: {r['measurement']}")
    if any(r["saturated"] for r in results):
        print(
            "(saturated: queues grew without bound, so the run stopped; accepted is what the "
            "network sustained, latencies are those delivered by then, lower bounds)"
        )
    print(
        f"(loads are fractions of the injection bandwidth, "
        f"{format_bandwidth(r0['injection_bandwidth'])} per chip)"
    )
    return 0


def _state(r: dict) -> str:
    """``saturated`` (latencies are lower bounds), ``converged``, ``not converged`` (the
    period cap was reached) or ``drained`` (a fixed-count run)."""
    if r["saturated"]:
        return "saturated"
    if r["converged"] is None:
        return "drained"
    return "converged" if r["converged"] else "not converged"
