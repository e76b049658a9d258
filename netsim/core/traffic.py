"""Synthetic traffic: the interconnect community's standard load test.

Every chip is a source that injects packets (messages of ``size`` bytes) at an offered load
given as a fraction of its ``injection_bandwidth``, to destinations drawn from a pattern.
By default a run is measured in sample periods as BookSim does (:mod:`netsim.core.sampling`):
warm-up until consecutive periods agree, then measurement until the mean latency's 95%
confidence interval is within ``tolerance`` (5%), or a stop with ``saturated: true`` as
soon as the backlog of undelivered packets grows without bound, reporting the accepted
throughput the network sustained; time and memory are bounded in every case. With
``packets=N`` it has BookSim's three fixed phases instead: ``warmup`` packets, ``N``
labelled packets, drain (bounded too) (:mod:`netsim.core.openloop`). Latency is from generation
to the last byte's arrival, so it includes waiting at the source; loads are fractions of
each chip's injection bandwidth, counting wire bytes.

Patterns (``pattern=``)
-----------------------
``uniform``      uniform random destination other than the source.
``transpose``    bit transpose of the rank: needs N = 2**(2m); i = (hi, lo) -> (lo, hi).
``bitcomp``      bit complement: needs N a power of two.
``bitrev``       bit reversal: needs N a power of two.
``tornado``      on grids, each coordinate moves ``ceil(k/2) - 1`` forward; elsewhere
                 rank + ``ceil(N/2) - 1``.
``shift``        neighbour: rank + 1 (mod N).
``hotspot``      with probability ``hotspot_fraction`` to rank 0, else uniform.
``randperm``     a random permutation (a derangement) fixed by the seed.
``alltoall``     each source cycles through all other ranks in order.
``group-shift``  dragonflies: chip j of group i sends to chip j of group i + 1.

Injection (``injection=``): ``bernoulli`` (one packet per packet-time slot with
probability ``load``) or ``poisson`` (exponential inter-arrival times with the same mean).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from netsim._version import __version__
from netsim.core.engine import FORWARDING, PacketNetwork
from netsim.core.engine.routing import ROUTERS, parse_routing
from netsim.core.errors import ConfigError
from netsim.core.openloop import TOLERANCE, OpenLoop
from netsim.core.options import Options, Parameters, option
from netsim.core.units import parse_size
from netsim.core.validate import require_choice, require_float, require_int

__all__ = [
    "INJECTIONS",
    "MAX_LOADS",
    "MAX_PACKETS",
    "PATTERNS",
    "TrafficOptions",
    "TrafficResult",
    "destination_fn",
    "run_traffic",
    "traffic_experiment",
]

PATTERNS = (
    "uniform",
    "transpose",
    "bitcomp",
    "bitrev",
    "tornado",
    "shift",
    "hotspot",
    "randperm",
    "alltoall",
    "group-shift",
)
INJECTIONS = ("bernoulli", "poisson")
#: Most packets ``packets`` (and ``warmup``) may ask for: a run that long takes minutes.
MAX_PACKETS = 10_000_000
#: Most loads one ``netsim traffic --loads`` curve may have: each load runs until its latency
#: converges or saturates (up to 50 sample periods, seconds each), so 100 loads is already
#: minutes to an hour; a sweep file runs more, in parallel and resumably.
MAX_LOADS = 100


@dataclass
class TrafficResult:
    """The figures of one synthetic-traffic run (all SI; ``injection_bandwidth`` is the mean
    over chips, in bytes/s, that the loads are fractions of)."""

    topo: str
    pattern: str
    injection: str
    offered_load: float
    accepted_load: float
    latency_mean_s: float
    latency_p50_s: float
    latency_p99_s: float
    latency_max_s: float
    packets: int
    packet_hops: int
    events: int
    wall_s: float
    forwarding: str
    routing: str
    network_model: str
    size: int
    chips: int
    injection_bandwidth: float
    seed: int
    saturated: bool = False
    converged: bool | None = None
    measurement: str = ""
    netsim_version: str = __version__
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A flat dict (``extra`` merged in)."""
        d = asdict(self)
        d.update(d.pop("extra"))
        return d


def _pow2_bits(n: int, pattern: str) -> int:
    bits = n.bit_length() - 1
    if n < 2 or (1 << bits) != n:
        raise ConfigError(f"pattern: '{pattern}' needs a power-of-two chip count, got {n} chips")
    return bits


def destination_fn(
    G: nx.Graph, pattern: str, rng: random.Random, *, hotspot_fraction: float = 0.1
) -> Callable[[int], int]:
    """Return ``dest(src) -> dst`` for ``pattern`` on the chips of ``G`` (ranks 0..N-1).

    Deterministic patterns return the same destination every time; random ones draw from
    ``rng``. A source mapped to itself does not inject (e.g. the fixed points of ``bitrev``).
    """
    require_choice("pattern", pattern, PATTERNS)
    n = sum(1 for _, k in G.nodes(data="kind") if k == "chip")
    if n < 2:
        raise ConfigError(f"pattern: needs at least 2 chips, got {n}")
    if pattern in ("uniform", "hotspot", "alltoall"):
        return _drawn(pattern, n, rng, hotspot_fraction)
    if pattern == "tornado":
        return _tornado(G, n).__getitem__
    if pattern == "randperm":
        perm = list(range(n))
        while True:
            rng.shuffle(perm)
            if all(perm[s] != s for s in range(n)):
                return perm.__getitem__
    if pattern == "group-shift":
        return _group_shift(G, n).__getitem__
    return _bit_table(pattern, n).__getitem__


def _drawn(
    pattern: str, n: int, rng: random.Random, hotspot_fraction: float
) -> Callable[[int], int]:
    """The patterns that pick a destination per packet: uniform, hotspot, alltoall."""
    draw = rng.random  # int(draw() * m) is uniform on 0..m-1 to within m / 2**53
    if pattern == "uniform":

        def uniform(s: int) -> int:
            d = int(draw() * (n - 1))
            return d + 1 if d >= s else d

        return uniform
    if pattern == "hotspot":

        def hotspot(s: int) -> int:
            if draw() < hotspot_fraction and s != 0:
                return 0
            d = int(draw() * (n - 1))
            return d + 1 if d >= s else d

        return hotspot
    nxt = dict.fromkeys(range(n), 1)

    def alltoall(s: int) -> int:
        k = nxt[s]
        nxt[s] = k % (n - 1) + 1
        return (s + k) % n

    return alltoall


def _bit_table(pattern: str, n: int) -> list[int]:
    """Destinations of shift, bitcomp, bitrev and transpose, by source."""
    if pattern == "shift":
        return [(s + 1) % n for s in range(n)]
    bits = _pow2_bits(n, pattern)
    if pattern == "bitcomp":
        return [(n - 1) ^ s for s in range(n)]
    if pattern == "bitrev":
        return [int(format(s, f"0{bits}b")[::-1], 2) for s in range(n)]
    if bits % 2:  # transpose
        raise ConfigError(f"pattern: 'transpose' needs N = 2**(2m) chips, got {n}")
    h = bits // 2
    mask = (1 << h) - 1
    return [((s & mask) << h) | (s >> h) for s in range(n)]


def _tornado(G: nx.Graph, n: int) -> list[int]:
    """Tornado: on grids each coordinate moves ``ceil(k/2) - 1`` forward, else the rank."""
    coords = [G.nodes[s].get("coord") for s in range(n)]
    if any(c is None for c in coords):
        return [(s + math.ceil(n / 2) - 1) % n for s in range(n)]
    radix = [1 + max(c[d] for c in coords) for d in range(len(coords[0]))]
    at = {tuple(c): s for s, c in enumerate(coords)}
    return [
        at[tuple((c[d] + math.ceil(k / 2) - 1) % k for d, k in enumerate(radix))] for c in coords
    ]


def _group_shift(G: nx.Graph, n: int) -> list[int]:
    """Chip j of dragonfly group i sends to chip j of group i + 1."""
    groups = [G.nodes[s].get("group") for s in range(n)]
    if any(g is None for g in groups):
        raise ConfigError("pattern: 'group-shift' needs a dragonfly (chips with 'group')")
    members: dict[int, list[int]] = {}
    for s, g in enumerate(groups):
        members.setdefault(g, []).append(s)
    order = sorted(members)
    table = []
    for s, g in enumerate(groups):
        nxt_group = members[order[(order.index(g) + 1) % len(order)]]
        table.append(nxt_group[members[g].index(s) % len(nxt_group)])
    return table


def _payload(value: Any, name: str) -> int:
    return parse_size(value, name, allow_zero=False)


def _packets(value: Any, name: str) -> int:
    limit = "the limit is netsim.core.traffic.MAX_PACKETS; raise it for a longer run"
    return require_int(name, value, min=1, max=MAX_PACKETS, hint=limit)


def _warmup(value: Any, name: str) -> int:
    return require_int(name, value, min=0, max=MAX_PACKETS)


def _tolerance(value: Any, name: str) -> float:
    return require_float(name, value, min=0.0, max=1.0, min_open=True)


@dataclass(frozen=True, kw_only=True)
class TrafficOptions(Options):
    """Every option of a synthetic-traffic run (:func:`run_traffic`), ``netsim traffic``'s
    flags and the ``traffic`` sweep kind's parameters (:mod:`netsim.core.options`)."""

    injection: str = option(
        "bernoulli", choices=INJECTIONS, help="arrivals: bernoulli slots or poisson"
    )
    size: int = option(256, kind=_payload, help="packet payload, e.g. 256B")
    routing: str = option(
        "auto",
        kind=parse_routing,
        help=f"route choice: auto (by topology family) or a registered routing "
        f"({', '.join(ROUTERS)})",
    )
    forwarding: str = option("cut-through", choices=FORWARDING, help="switch forwarding")
    buffer: int | None = option(
        None, kind="size", help="input buffer per port and VC (default: infinite)"
    )
    packets: int | None = option(
        None,
        kind=_packets,
        help="measure this many labelled packets (after as many warm-up ones); default: "
        "sample periods until the mean latency converges or the run saturates",
    )
    warmup: int | None = option(
        None, kind=_warmup, cli=False, help="warm-up packets before the labelled ones"
    )
    hotspot_fraction: float = option(
        0.1, kind="float", cli=False, help="hotspot pattern: share of packets to rank 0"
    )
    tolerance: float = option(
        TOLERANCE,
        kind=_tolerance,
        help="relative tolerance of warm-up, convergence and saturation tests",
    )
    mtu: int | None = option(None, kind="size", cli=False, help="packet payload bytes")
    header: int | None = option(None, kind="size", cli=False, help="header bytes per packet")
    detail: bool = option(
        False, kind="bool", cli=False, help="also return latency samples and link utilisation"
    )
    seed: int = option(0, kind="int", min=0, help="fixes every random choice")


def run_traffic(
    topo: nx.Graph | str,
    pattern: str = "uniform",
    load: float = 0.1,
    options: TrafficOptions | None = None,
    **overrides: Any,
) -> TrafficResult:
    """Run one synthetic-traffic point and return its figures.

    Parameters
    ----------
    topo : networkx.Graph or str
        A topology graph or a spec string for :func:`topologies.registry.build`.
    pattern : str
        See the module docstring.
    load : float
        Offered load per chip, a fraction of its ``injection_bandwidth`` in (0, 1].
    options : TrafficOptions, optional
        Every other option (:class:`TrafficOptions`): ``injection`` (module docstring),
        ``size`` (packet payload bytes, e.g. ``"256B"``), ``packets`` (measure this many
        labelled packets after ``warmup``, default the same number, then drain them;
        default: sample periods until the latency estimate converges,
        :mod:`netsim.core.sampling`), ``tolerance`` (of the sample-period tests), ``detail``
        (also return, in ``extra``, ``latency_samples_s``, the latency of every measured
        packet, and ``link_utilisation``, ``[[u, v, busy fraction], ...]`` of every
        directed link), the engine's ``routing``, ``forwarding``, ``buffer``, ``mtu``,
        ``header`` (:class:`netsim.core.engine.PacketNetwork`) and ``seed`` (fixes every
        random choice: destinations, arrival times, routing).
    **overrides
        Options by name over ``options`` (checked as :meth:`TrafficOptions.from_mapping`).

    Returns
    -------
    TrafficResult
        ``saturated`` is true when the run stopped because queues grew without bound; its
        accepted load is then what the network delivered in the last periods and its
        latencies those of the packets delivered by then (lower bounds).
    """
    o = (options or TrafficOptions()).replace(**overrides)
    load = require_float("load", load, min=0.0, max=1.0, min_open=True)
    if isinstance(topo, str):
        from topologies.registry import build

        G, name = build(topo), topo
    else:
        G, name = topo, topo.graph.get("name", "custom")
    rng = random.Random(o.seed)
    dest = destination_fn(G, pattern, rng, hotspot_fraction=o.hotspot_fraction)
    net = PacketNetwork(
        G, forwarding=o.forwarding, routing=o.routing, buffer=o.buffer, mtu=o.mtu,
        header=o.header, seed=o.seed,
    )  # fmt: skip
    run = OpenLoop(net, dest, rng, load, o.size, o.injection, o.tolerance)
    t0 = time.perf_counter()
    if o.packets is None:
        fig = run.until_converged()
    else:
        fig = run.fixed_count(o.packets if o.warmup is None else o.warmup, o.packets)
    wall = time.perf_counter() - t0
    st = net.stats()
    extra: dict[str, Any] = {
        "sample_period_s": run.period,
        "periods": run.periods,
        "backlog_packets": run.backlog,
    }
    if o.detail:
        extra["latency_samples_s"] = fig.pop("samples").tolist()
        extra["link_utilisation"] = [[u, v, x] for (u, v), x in net.link_utilisation().items()]
    fig.pop("samples", None)
    chips = run.chips
    return TrafficResult(
        topo=name,
        pattern=pattern,
        injection=o.injection,
        offered_load=load,
        packet_hops=st["packet_hops"],
        events=st["events"],
        wall_s=wall,
        forwarding=o.forwarding,
        routing=net.routing,
        network_model=net.model,
        size=o.size,
        chips=len(chips),
        injection_bandwidth=float(np.mean([G.nodes[c]["injection_bandwidth"] for c in chips])),
        seed=o.seed,
        extra=extra,
        **fig,
    )


def traffic_experiment(**params: Any) -> dict[str, Any]:
    """Sweep entry point (kind ``traffic``): ``topo``, ``pattern`` (default ``uniform``),
    ``load`` (default 0.1) and the options of :class:`TrafficOptions` by name."""
    p = dict(params)
    try:
        topo = p.pop("topo")
    except KeyError:
        raise ConfigError("topo: the traffic experiment needs a topology, got none") from None
    pattern, load = p.pop("pattern", "uniform"), p.pop("load", 0.1)
    return run_traffic(topo, pattern, load, TrafficOptions.from_mapping(p)).to_dict()


traffic_experiment.parameters = Parameters(  # type: ignore[attr-defined]
    ("topo",), ("pattern", "load"), TrafficOptions
)
