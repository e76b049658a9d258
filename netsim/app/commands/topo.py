"""``netsim topo``: build a topology and print its structural figures (a layer over
:func:`topologies.metrics.summary`), draw it, or list the families and presets."""

from __future__ import annotations

import argparse
import math
from typing import Any

from netsim._version import __version__
from netsim.app.commands._common import add_command, print_json
from netsim.core.errors import ConfigError
from netsim.core.units import format_bandwidth
from netsim.core.validate import require_writable

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "topo", _run)
    p.add_argument("spec", nargs="?", help="topology spec or preset name")
    p.add_argument("--list", action="store_true", help="list families and presets, then exit")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", metavar="FILE", help="also draw the topology (.png, .pdf or .svg)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bisection heuristic")


def _list(as_json: bool) -> int:
    from topologies.registry import families, presets

    fams, pres = families(), presets()
    if as_json:
        print_json({"families": fams, "presets": pres, "netsim_version": __version__})
        return 0
    print("families (FAMILY:NAME=VALUE,...):")
    for name, info in fams.items():
        print(f"  {name:<13} {info['description']}")
        params = ", ".join(
            n if p["required"] else f"{n}={p['default']!r}" for n, p in info["parameters"].items()
        )
        print(f"  {'':<13} {params}")
    print("presets (NAME or NAME:NAME=VALUE,... to override):")
    for name, info in pres.items():
        print(f"  {name:<13} {info['family']}: {info['description']}")
        print(f"  {'':<13} source: {info['source']}")
    return 0


def _text(s: dict[str, Any]) -> None:
    def bw(x: float | None) -> str:
        return "n/a" if x is None or not math.isfinite(x) else format_bandwidth(x)

    links = ", ".join(f"{k} {t}" for t, k in s["link_types"].items())
    print(f"topology {s['name']} (family {s['family']})")
    print(f"  chips {s['chips']}, switches {s['switches']}")
    print(f"  links {s['links']} edges, {s['physical_links']} physical ({links})")
    hops = {"exact": "", "closed-form": " (closed form)"}.get(
        s["hops_method"],
        f" (sampled from {s['hops_sources']} chips, standard error {s['avg_hops_stderr']:.2g};"
        f" diameter a lower bound)",
    )
    if s["connected"]:
        print(f"  diameter {s['diameter']} links, mean {s['avg_hops']:.3f} links{hops}")
    else:
        print("  not connected: some chips cannot reach each other")
    blinks = "" if s["bisection_links"] is None else f", {s['bisection_links']} links"
    ratio = s["bisection_ratio"]
    rtext = "" if not math.isfinite(ratio) else f", {ratio:.3g}x of full bisection"
    print(
        f"  bisection {bw(s['bisection_bandwidth'])} one way ({s['bisection_method']}"
        f"{blinks}{rtext})"
    )
    if s["injection_bandwidth"] is not None:
        inj = f"{bw(s['injection_bandwidth'])} per chip"
    else:
        inj = f"{bw(s['injection_bandwidth_min'])} to {bw(s['injection_bandwidth_max'])} per chip"
    print(f"  injection {inj}, total {bw(s['total_injection_bandwidth'])}")
    if s["switches"]:
        print(
            f"  switch radix up to {s['switch_radix_max']} ports, "
            f"{s['reduction_switches']} with in-network reduction"
        )


def _run(args: argparse.Namespace) -> int:
    """Describe a topology: size, hops, bisection; draw it; list families and presets.

    Build the topology SPEC (FAMILY:NAME=VALUE,... or a preset name, e.g.
    torus:dims=8x8,bandwidth=100GB/s or dgx-h100) and print chips, switches, links, diameter,
    mean hops, bisection and injection bandwidth.
    """
    if args.list:
        if args.spec or args.plot:
            raise ConfigError("topo: --list takes no SPEC or --plot")
        return _list(args.json)
    if not args.spec:
        raise ConfigError("topo: give a topology SPEC (e.g. torus:dims=4x4) or --list")
    from topologies.draw import FORMATS
    from topologies.metrics import summary
    from topologies.registry import build

    if args.plot:  # before the work: a bad path fails in a second, not after the build
        require_writable("plot", args.plot, suffixes=FORMATS).parent.mkdir(
            parents=True, exist_ok=True
        )
    G = build(args.spec)
    if args.plot:
        from topologies.draw import draw

        draw(G, args.plot)
    s = summary(G, seed=args.seed)
    s["netsim_version"] = __version__
    if args.plot:
        s["plot"] = args.plot
    if args.json:
        print_json(s)
    else:
        _text(s)
        if args.plot:
            print(f"  drawn to {args.plot}")
    return 0
