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
from netsim.core.engine import PacketNetwork
from netsim.core.errors import ConfigError
from netsim.core.openloop import TOLERANCE, OpenLoop
from netsim.core.units import parse_size
from netsim.core.validate import require_choice, require_float, require_int

__all__ = [
    "INJECTIONS",
    "MAX_LOADS",
    "MAX_PACKETS",
    "PATTERNS",
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
    model: str
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
    if pattern == "alltoall":
        nxt = dict.fromkeys(range(n), 1)

        def alltoall(s: int) -> int:
            k = nxt[s]
            nxt[s] = k % (n - 1) + 1
            return (s + k) % n

        return alltoall
    table: list[int]
    if pattern == "shift":
        table = [(s + 1) % n for s in range(n)]
    elif pattern == "bitcomp":
        _pow2_bits(n, pattern)
        table = [(n - 1) ^ s for s in range(n)]
    elif pattern == "bitrev":
        bits = _pow2_bits(n, pattern)
        table = [int(format(s, f"0{bits}b")[::-1], 2) for s in range(n)]
    elif pattern == "transpose":
        bits = _pow2_bits(n, pattern)
        if bits % 2:
            raise ConfigError(f"pattern: 'transpose' needs N = 2**(2m) chips, got {n}")
        h = bits // 2
        mask = (1 << h) - 1
        table = [((s & mask) << h) | (s >> h) for s in range(n)]
    elif pattern == "tornado":
        coords = [G.nodes[s].get("coord") for s in range(n)]
        if all(c is not None for c in coords):
            radix = [1 + max(c[d] for c in coords) for d in range(len(coords[0]))]
            at = {tuple(c): s for s, c in enumerate(coords)}
            table = [
                at[tuple((c[d] + math.ceil(k / 2) - 1) % k for d, k in enumerate(radix))]
                for c in coords
            ]
        else:
            table = [(s + math.ceil(n / 2) - 1) % n for s in range(n)]
    elif pattern == "randperm":
        perm = list(range(n))
        while True:
            rng.shuffle(perm)
            if all(perm[s] != s for s in range(n)):
                break
        table = perm
    else:  # group-shift
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
    return table.__getitem__


def run_traffic(
    topo: nx.Graph | str,
    pattern: str = "uniform",
    load: float = 0.1,
    *,
    injection: str = "bernoulli",
    size: int | str = 256,
    routing: str = "auto",
    forwarding: str = "cut-through",
    packets: int | None = None,
    warmup: int | None = None,
    buffer: int | None = None,
    mtu: int | None = None,
    header: int | None = None,
    hotspot_fraction: float = 0.1,
    tolerance: float = TOLERANCE,
    detail: bool = False,
    seed: int = 0,
) -> TrafficResult:
    """Run one synthetic-traffic point and return its figures.

    Parameters
    ----------
    topo : networkx.Graph or str
        A topology graph or a spec string for :func:`topologies.registry.build`.
    pattern, injection : str
        See the module docstring.
    load : float
        Offered load per chip, a fraction of its ``injection_bandwidth`` in (0, 1].
    size : int or str
        Message (packet) payload bytes, e.g. ``"256B"``.
    packets : int, optional
        Measure this many labelled packets after ``warmup`` (default the same number), then
        drain them. Default: sample periods until the latency estimate converges
        (:mod:`netsim.core.sampling`).
    tolerance : float
        Relative tolerance of the sample-period tests (warm-up, convergence, backlog growth).
    detail : bool
        Also return, in ``extra``, ``latency_samples_s`` (the latency of every measured
        packet, for CDFs) and ``link_utilisation`` (``[[u, v, busy fraction], ...]`` of
        every directed link over the whole simulated time, for heatmaps).
    routing, forwarding, buffer, mtu, header
        Engine options (:class:`netsim.core.engine.PacketNetwork`).
    seed : int
        Fixes every random choice (destinations, arrival times, routing).

    Returns
    -------
    TrafficResult
        ``saturated`` is true when the run stopped because queues grew without bound; its
        accepted load is then what the network delivered in the last periods and its
        latencies those of the packets delivered by then (lower bounds).
    """
    require_choice("injection", injection, INJECTIONS)
    load = require_float("load", load, min=0.0, max=1.0, min_open=True)
    nbytes = parse_size(size, "size", allow_zero=False)
    limit = "the limit is netsim.core.traffic.MAX_PACKETS; raise it for a longer run"
    if packets is not None:
        packets = require_int("packets", packets, min=1, max=MAX_PACKETS, hint=limit)
        warmup = (
            packets if warmup is None else require_int("warmup", warmup, min=0, max=MAX_PACKETS)
        )
    tolerance = require_float("tolerance", tolerance, min=0.0, max=1.0, min_open=True)
    seed = require_int("seed", seed, min=0)
    if isinstance(topo, str):
        from topologies.registry import build

        G, name = build(topo), topo
    else:
        G, name = topo, topo.graph.get("name", "custom")
    rng = random.Random(seed)
    dest = destination_fn(G, pattern, rng, hotspot_fraction=hotspot_fraction)
    net = PacketNetwork(
        G, forwarding=forwarding, routing=routing, buffer=buffer, mtu=mtu, header=header, seed=seed
    )
    run = OpenLoop(net, dest, rng, load, nbytes, injection, tolerance)
    t0 = time.perf_counter()
    if packets is None:
        fig = run.until_converged()
    else:
        assert warmup is not None
        fig = run.fixed_count(warmup, packets)
    wall = time.perf_counter() - t0
    st = net.stats()
    extra: dict[str, Any] = {
        "sample_period_s": run.period,
        "periods": run.periods,
        "backlog_packets": run.backlog,
    }
    if detail:
        extra["latency_samples_s"] = fig.pop("samples").tolist()
        extra["link_utilisation"] = [[u, v, x] for (u, v), x in net.link_utilisation().items()]
    fig.pop("samples", None)
    chips = run.chips
    return TrafficResult(
        topo=name,
        pattern=pattern,
        injection=injection,
        offered_load=load,
        packet_hops=st["packet_hops"],
        events=st["events"],
        wall_s=wall,
        forwarding=forwarding,
        routing=net.routing,
        model=net.model,
        size=nbytes,
        chips=len(chips),
        injection_bandwidth=float(np.mean([G.nodes[c]["injection_bandwidth"] for c in chips])),
        seed=seed,
        extra=extra,
        **fig,
    )


def traffic_experiment(**params: Any) -> dict[str, Any]:
    """Sweep entry point (kind ``traffic``): keyword parameters as in :func:`run_traffic`."""
    seed = params.pop("seed", 0)
    topo = params.pop("topo")
    return run_traffic(topo, seed=seed, **params).to_dict()
