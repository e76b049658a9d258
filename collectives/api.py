"""Run a collective end to end: :func:`run_collective`.

For a topology spec and a size with units, :func:`run_collective` builds the schedule
(:func:`collectives.builder.build`), times it on the chosen backend
(:func:`collectives.backends.make_backend`) and, unless told not to, on the analytical one,
optionally checks the numbers (:mod:`collectives.verify`), and returns one flat JSON-able
dict with nccl-tests' algbw and busbw. Its options are :class:`~collectives.options.
CollectiveOptions`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

import networkx as nx
import numpy as np

from collectives import calibration
from collectives.algorithms import busbw_factor
from collectives.backends import make_backend
from collectives.builder import auto_algorithm, build
from collectives.channels import resolve_channels
from collectives.estimate import contention_free
from collectives.options import CollectiveOptions, parse_ranks
from collectives.protocols import ProtocolChoice, protocol_costs, resolve
from collectives.runner import RunResult, run
from collectives.schedule import OPS, Schedule, merge
from collectives.tuner import Choice, channel_cap
from collectives.verify import check_result, random_inputs
from netsim import __version__
from netsim.core.errors import ConfigError
from netsim.core.units import parse_size
from netsim.core.validate import require_choice

__all__ = ["REDUCING", "run_collective"]

#: The ops that add data (the only ones a reduction bandwidth applies to).
REDUCING = ("allreduce", "reduce_scatter", "reduce")


@dataclasses.dataclass(frozen=True)
class _Setup:
    """What one run is about: the graph, the rank groups and the element count."""

    graph: nx.Graph
    name: str
    chips: int
    ranks: list[int]
    groups: list[list[int]]
    count: int
    matrix: np.ndarray | None


def run_collective(
    topo: str | nx.Graph,
    op: str,
    algo: str,
    size: int | str | None,
    options: CollectiveOptions | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Build, run and measure one collective on a topology.

    Parameters
    ----------
    topo : str or networkx.Graph
        Spec string or preset (:func:`topologies.registry.build`), or a graph.
    op, algo : str
        The collective and its algorithm (:data:`collectives.algorithms.ALGORITHMS`), or
        ``"auto"`` (:func:`collectives.builder.auto_algorithm`, NCCL's tuner rule).
    size : int or str
        Bytes per rank as nccl-tests counts them (e.g. ``"1MiB"``); for alltoall with a
        ``matrix`` it may be ``None`` (the largest row sum is used).
    options : CollectiveOptions, optional
        Every other option (:class:`~collectives.options.CollectiveOptions`: ranks, groups,
        backend, library costs, check, estimate, ...); default all defaults.
    **overrides
        Options by name, applied over ``options`` (``ranks="0-7", backend="flow"``);
        checked as :meth:`CollectiveOptions.from_mapping` checks them.

    Returns
    -------
    dict
        ``time_s``, ``algbw``, ``busbw`` (nccl-tests definitions, bytes/s),
        ``analytical_time_s`` (None without ``estimate``), ``max_link_utilisation``,
        ``busiest_link``, ``ranks``, ``groups``, ``size``, ``count``, ``op``, ``algo``,
        ``topo``, ``model``, ``packets``, ``packet_hops``, ``events``, ``transfers``,
        ``wall_s``, ``seed``, ``netsim_version``, the library costs used and ``check``
        (True, or None when not checked); ``algo`` is the algorithm that ran,
        ``algo_requested`` what was asked (e.g. ``"auto"``), ``tuner`` NCCL's pick with
        ``auto`` (``rule``, ``nccl_algo``, ``protocol``, ``predicted_time_s``; None
        otherwise) and ``channels`` the ring/tree channel count (None for algorithms
        without channels). ``protocol`` is NCCL's protocol of the run (``LL``, ``LL128``,
        ``Simple``; :func:`collectives.protocols.resolve`; None where none applies), with
        ``protocol_requested`` and ``protocol_rule``. Library costs are charged per route
        (:func:`collectives.calibration.cost_model`): ``link_costs`` gives them per link
        type the collective crossed; ``step_overhead``, ``launch_overhead``, ``efficiency``
        and ``multipath`` are those of a route crossing all of these types (the costs
        themselves when there is one type). With ``detail``, also ``link_utilisation``:
        ``[[u, v, busy fraction], ...]`` of every directed link.

    Raises
    ------
    ConfigError
        An unknown op or option, or a value that breaks its rule (one line).
    SimulationError
        ``check`` found a wrong value.
    """
    o = (options or CollectiveOptions()).replace(**overrides)
    require_choice("op", op, OPS)
    if o.reduce_bandwidth is not None and op not in REDUCING:
        raise ConfigError(
            f"reduce_bandwidth: only {', '.join(REDUCING)} add data, got "
            f"{o.reduce_bandwidth!r} for {op}"
        )
    setup = _setup(topo, op, size, o)
    nbytes = setup.count * o.itemsize
    pick = None
    if algo == "auto":
        pick = auto_algorithm(
            op, setup.graph, setup.groups[0], nbytes, o.algorithm_options(), o.protocol
        )
    ran = pick.algo if pick else algo
    proto = resolve(op, ran, setup.graph, setup.groups[0], nbytes, o.protocol, o.library)
    costs = calibration.cost_model(
        o.library,
        calibration.link_types(setup.graph),
        step=o.step_overhead,
        launch=o.launch_overhead,
        efficiency=o.efficiency,
        multipath=o.multipath,
        protocol=protocol_costs(proto, setup.graph, setup.groups[0], op),
    )
    sched = _schedule(op, ran, setup, o)
    measured, util = _measure(setup, sched, o, costs, proto)
    out = {**_describe(setup, op, algo, pick, o), **_protocol(proto), **measured}
    out.update(
        library=o.library,
        reduce_bandwidth=o.reduce_bandwidth,
        seed=o.seed,
        check=True if o.check else None,
        netsim_version=__version__,
    )
    if o.detail:
        out["link_utilisation"] = [[int(u), int(v), float(x)] for (u, v), x in util.items()]
    return out


def _graph(topo: Any) -> tuple[nx.Graph, str]:
    if isinstance(topo, nx.Graph):
        return topo, str(topo.graph.get("name", "custom"))
    if isinstance(topo, str | Mapping):
        from topologies.registry import build as build_topology

        G = build_topology(topo)
        return G, str(G.graph.get("name", topo))
    raise ConfigError(f"topo: expected a spec string or a networkx graph, got {topo!r}")


def _setup(topo: Any, op: str, size: Any, o: CollectiveOptions) -> _Setup:
    """The graph, the rank groups, the element count and the alltoall matrix of a run."""
    G, name = _graph(topo)
    nchips = sum(1 for _, k in G.nodes(data="kind") if k == "chip")
    if o.ranks is None:
        ranks = [0, nchips - 1] if op == "sendrecv" else list(range(nchips))
    else:
        ranks = parse_ranks(o.ranks, nchips)
    k = len(ranks) if o.groups is None else o.groups
    if len(ranks) % k:
        raise ConfigError(
            f"groups: must divide the {len(ranks)} ranks into equal groups, got {o.groups}"
        )
    matrix = None
    if o.matrix is not None:
        if op != "alltoall":
            raise ConfigError(f"matrix: only alltoall takes a per-pair matrix, got one for {op}")
        matrix = np.asarray(o.matrix)
    count = _count(size, matrix, o.itemsize)
    if op == "alltoall" and matrix is None:
        matrix = np.full((k, k), count // k, dtype=np.int64)
        np.fill_diagonal(matrix, 0)
    groups = [ranks[i : i + k] for i in range(0, len(ranks), k)]
    return _Setup(G, name, nchips, ranks, groups, count, matrix)


def _count(size: Any, matrix: np.ndarray | None, itemsize: int) -> int:
    """Elements per rank: ``size / itemsize``, or the largest row sum of ``matrix``."""
    if matrix is not None:
        rows = matrix.astype(float).sum(axis=1)
        if size is None:
            return int(matrix.sum(axis=1).max()) if matrix.size else 0
        want = int(rows.max()) * itemsize if rows.size else 0
        if parse_size(size, "size") != want:
            raise ConfigError(
                f"size: with a matrix the size is its largest row sum ({want} bytes at "
                f"itemsize {itemsize}); leave it out, got {size!r}"
            )
    if size is None:
        raise ConfigError("size: required (bytes per rank), got None")
    nbytes = parse_size(size, "size")
    if nbytes % itemsize:
        raise ConfigError(
            f"size: must be a multiple of itemsize={itemsize} bytes, got {nbytes} bytes"
        )
    return nbytes // itemsize


def _schedule(op: str, algo: str, setup: _Setup, o: CollectiveOptions) -> Schedule:
    """One schedule per rank group, merged when there are several."""
    scheds = [
        build(
            op, algo, g, setup.count, itemsize=o.itemsize, graph=setup.graph, chunks=o.chunks,
            root=o.root, matrix=setup.matrix, **o.algorithm_options(),
        )
        for g in setup.groups
    ]  # fmt: skip
    return scheds[0] if len(scheds) == 1 else merge(scheds, algo=algo)


def _measure(
    setup: _Setup,
    sched: Schedule,
    o: CollectiveOptions,
    costs: calibration.CostModel,
    proto: ProtocolChoice,
) -> tuple[dict[str, Any], dict[Any, float]]:
    """Run ``sched`` (and its analytical estimate): the timing, model and traffic fields,
    and the busy fraction of every link."""
    G, net = setup.graph, dict(routing=o.routing, seed=o.seed, mtu=o.mtu, header=o.header)
    inputs = random_inputs(sched, o.seed) if o.check else None
    cap = _channel_cap(setup, sched, o, proto)
    rate = None if cap is None or not setup.count else _channel_rate(sched, cap, setup.count)
    kw = dict(costs=costs, reduce_bandwidth=o.reduce_bandwidth, channel_rate=rate)
    ana: float | None = None
    if o.estimate and o.backend != "analytical":  # first: its memory is freed before the run
        ana = max(contention_free(make_backend(G, "analytical", **net), sched, **kw), default=0.0)
    be = make_backend(
        G, o.backend, forwarding=o.forwarding or "cut-through", buffer=o.buffer,
        max_segments=o.max_segments, **net,
    )  # fmt: skip
    t0 = time.perf_counter()
    res: RunResult = run(be, sched, data=inputs, **kw)
    wall = time.perf_counter() - t0
    if o.check:
        assert inputs is not None and res.buffers is not None
        check_result(sched, inputs, res.buffers)
    util = be.link_utilisation()
    busiest = max(util, key=util.get) if util else None
    size_b = setup.count * o.itemsize
    # Nothing moved at size 0: bandwidth 0, as nccl-tests prints.
    algbw = size_b / res.time_s if res.time_s > 0 else (0.0 if size_b == 0 else float("nan"))
    st = res.stats
    out = {
        "time_s": res.time_s,
        "algbw": algbw,
        "busbw": algbw * busbw_factor(sched.op, len(setup.groups[0])),
        "analytical_time_s": res.time_s if o.backend == "analytical" else ana,
        "max_link_utilisation": float(util[busiest]) if busiest else 0.0,
        "busiest_link": f"{busiest[0]}->{busiest[1]}" if busiest else None,
        "backend": o.backend,
        "network_model": res.model,
        "forwarding": (o.forwarding or "cut-through") if o.backend == "packet" else None,
        "max_segments": o.max_segments if o.backend == "packet" else None,
        "routing": st.get("routing", o.routing),
        "packets": st.get("packets", 0),
        "packet_hops": st.get("packet_hops", 0),
        "events": st.get("events", 0),
        "transfers": res.transfers,
        "bytes": res.bytes,
        "wall_s": wall,
        **_costs_used(costs, res.link_types),
        "channel_cap_busbw": cap,
    }
    return out, util


def _channel_cap(
    setup: _Setup, sched: Schedule, o: CollectiveOptions, proto: ProtocolChoice
) -> float | None:
    """NCCL's busbw ceiling from its per-channel throughput for the run's algorithm and
    protocol (``nccl`` library only, where NCCL's tuning tables have one:
    :func:`collectives.tuner.channel_cap`), bytes/s; None otherwise."""
    if o.library != "nccl" or not sched.channels or proto.protocol is None:
        return None
    return channel_cap(setup.graph, sched.ranks, proto.nccl_algo, proto.protocol)


def _channel_rate(sched: Schedule, cap: float, count: int) -> float:
    """Payload bytes/s of one ``(channel, source)`` stream for a busbw ceiling ``cap``: the
    largest stream's bytes over the shortest time the ceiling allows, ``size * busbw_factor
    / cap`` (ring: ``cap / channels``; NVLS+tree: ``cap / channels / busbw_factor``)."""
    per: dict[tuple[int, int], int] = {}
    for i, c in sched.channels.items():
        t = sched.transfers[i]
        per[c, t.src] = per.get((c, t.src), 0) + t.count
    fastest = count * sched.itemsize * busbw_factor(sched.op, len(sched.ranks)) / cap
    return max(per.values()) * sched.itemsize / fastest


def _costs_used(costs: calibration.CostModel, link_types: Any) -> dict[str, Any]:
    """The library costs charged: per link type the collective crossed (``link_costs``);
    the single values are those of a route crossing all of them (CostModel.for_links),
    i.e. the costs when it is one."""
    used = costs.for_links(link_types)
    return {
        "step_overhead": used.step,
        "launch_overhead": used.launch,
        "efficiency": used.efficiency,
        "multipath": used.multipath,
        "link_costs": {
            t: {
                "step_overhead": c.step,
                "launch_overhead": c.launch,
                "efficiency": c.efficiency,
                "multipath": c.multipath,
            }
            for t in link_types
            for c in [costs.for_links([t])]
        },
    }


def _protocol(proto: ProtocolChoice) -> dict[str, Any]:
    """The protocol fields: ``protocol`` (None where no NCCL protocol applies),
    ``protocol_requested`` and ``protocol_rule``."""
    return {
        "protocol": proto.protocol,
        "protocol_requested": proto.requested,
        "protocol_rule": proto.rule,
    }


def _describe(
    setup: _Setup, op: str, requested: str, pick: Choice | None, o: CollectiveOptions
) -> dict[str, Any]:
    """The fields that say what ran: topology, op, algorithm, sizes and ranks."""
    algo = pick.algo if pick else requested
    tuner = None
    if pick is not None:
        tuner = {
            "rule": pick.rule,
            "nccl_algo": pick.nccl_algo,
            "protocol": pick.protocol,
            "predicted_time_s": pick.predicted_s,
        }
    group = setup.groups[0]
    return {
        "topo": setup.name,
        "chips": setup.chips,
        "op": op,
        "algo": algo,
        "algo_requested": requested,
        "tuner": tuner,
        "size": setup.count * o.itemsize,
        "count": setup.count,
        "itemsize": o.itemsize,
        "ranks": setup.ranks,
        "groups": len(setup.groups),
        "group_size": len(group),
        "chunks": o.chunks,
        "channels": resolve_channels(op, algo, group, setup.graph, o.channels),
        "root": o.root,
    }
