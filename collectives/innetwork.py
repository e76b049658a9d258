"""In-network collectives: reductions and multicast inside reduction-capable switches.

Model (SHARP [1]_ on InfiniBand trees, NVLink SHARP "NVLS" on NVSwitch [2]_ [3]_)
    The *aggregation tree* of a plane is the union of the routes from the ranks up to a
    root switch. Every rank sends its chunk (op ``"sum"``) into the accumulator buffer of its
    parent switch; a switch forwards its accumulator to its parent once all its children
    have arrived; the root switch multicasts the result to every rank in ONE transfer (op
    ``"copy"`` into ``"x"``; the network replicates packets where routes diverge). The data
    crosses each link once up and once down, whatever ``p``: ``depth + 1`` sequential
    transfers per chunk instead of the ring's ``2(p-1)``.

Root and planes
    The root is the reduction-capable switch minimising the largest hop count to the ranks
    (paths may pass through switches only; chips never forward). When several switches tie,
    each is the root of one *plane* and chunk ``i`` goes through plane ``i mod S``: on an
    NVSwitch board (every GPU linked to each of ``S`` NVSwitch chips) this is NVLink SHARP
    splitting the data over the ``S`` switches, each reducing ``1/S`` of it [3]_; on a
    fat-tree the equal-height core switches share the load likewise. Inside a plane a node's
    parent is its neighbour closest to the root (ties: the smallest node id).

Reduction throughput
    A reducing switch has a reduction engine of ``reduction_bandwidth`` operand bytes/s and
    ``reduction_latency`` per reduction (node attributes, defaults per switch generation in
    :data:`netsim.core.linktypes.REDUCTION_ENGINES`), applied by :func:`collectives.runner.run`:
    a plane's root reducing ``p`` chunks of ``c`` bytes needs at least ``p c /
    reduction_bandwidth``, so on GB200 NVL72 (18 switch chips, 72 GPUs) an all-reduce of
    ``S`` per GPU takes at least ``4 S / reduction_bandwidth``.

Every switch of every tree must have ``reduction=True`` (the topology attribute stands for
SHARP capability, in-switch reduction and multicast); otherwise :class:`ConfigError` names the
switch. Successive chunks on the same tree edge (and successive multicasts of a plane)
follow one another, as the switch's reduction resources are a pipeline.

References
----------
.. [1] R. L. Graham et al., "Scalable Hierarchical Aggregation Protocol (SHArP): A Hardware
   Architecture for Efficient Data Reduction", COMHPC 2016.
.. [2] NVIDIA H100 Tensor Core GPU Architecture whitepaper (2022): third-generation NVSwitch
   with NVLink SHARP, in-switch reductions and multicast.
.. [3] A. Ishii and R. Wells, "The NVLink-Network Switch: NVIDIA's Switch Chip for High
   Communication-Bandwidth SuperPODs", Hot Chips 34 (2022): all-reduce in NVSwitch, each
   GPU's data reduced by the switches and the result multicast back.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx

from collectives._common import BuildRequest, builder, check_ranks
from collectives.schedule import Schedule, chunk_bounds
from netsim.core.errors import ConfigError
from netsim.core.validate import require_int

__all__ = [
    "CHUNKS_PER_PLANE",
    "MIN_CHUNK_BYTES",
    "Plane",
    "aggregation_planes",
    "allreduce_innetwork",
    "broadcast_innetwork",
    "plane_chunks",
    "reduce_innetwork",
    "reduce_up",
]

#: Default pipeline chunks per plane (a modelling choice: enough to overlap the up and down
#: traversals of a multi-level tree).
CHUNKS_PER_PLANE = 4
#: By default a pipeline chunk is not made smaller than this many bytes: successive chunks on
#: a tree edge follow one another, so splitting a small message only adds latency (a message
#: below ``planes * MIN_CHUNK_BYTES`` gets one chunk per plane, or fewer planes).
MIN_CHUNK_BYTES = 4096


@dataclass(frozen=True)
class Plane:
    """One aggregation tree.

    Attributes
    ----------
    root : int
        The root switch.
    parent : dict
        Node -> its parent on the tree, for every rank and every non-root switch of it.
    order : tuple of int
        The tree's switches, deepest first, root last.
    depth : int
        Hops from the farthest rank to the root.
    """

    root: int
    parent: dict[int, int]
    order: tuple[int, ...]
    depth: int


def _name(G: nx.Graph) -> str:
    return str(G.graph.get("name") or G.graph.get("family") or "custom")


def _switch_distances(G: nx.Graph, root: int) -> dict[int, int]:
    """Hop counts from ``root`` to every switch reachable through switches only."""
    dist = {root: 0}
    todo = deque([root])
    while todo:
        u = todo.popleft()
        for v in G.adj[u]:
            if v not in dist and G.nodes[v].get("kind") == "switch":
                dist[v] = dist[u] + 1
                todo.append(v)
    return dist


def _rank_hops(G: nx.Graph, ranks: Sequence[int], dist: dict[int, int]) -> int | None:
    """Largest hop count from a rank to the root (None if a rank cannot reach it)."""
    worst = 0
    for r in ranks:
        near = [dist[s] for s in G.adj[r] if s in dist]
        if not near:
            return None
        worst = max(worst, min(near) + 1)
    return worst


def _plane(G: nx.Graph, ranks: Sequence[int], root: int, dist: dict[int, int]) -> Plane:
    parent: dict[int, int] = {}
    todo = []
    for r in ranks:
        parent[r] = min((s for s in G.adj[r] if s in dist), key=lambda s: (dist[s], s))
        todo.append(parent[r])
    seen = set()
    while todo:
        s = todo.pop()
        if s in seen or s == root:
            continue
        seen.add(s)
        up = min((v for v in G.adj[s] if dist.get(v) == dist[s] - 1), key=lambda v: v)
        parent[s] = up
        todo.append(up)
    order = (*sorted(seen, key=lambda s: (-dist[s], s)), root)
    depth = max(dist[parent[r]] + 1 for r in ranks)
    return Plane(root, parent, order, depth)


def aggregation_planes(graph: nx.Graph, ranks: Sequence[int]) -> list[Plane]:
    """The aggregation trees of the in-network algorithms (see the module docstring).

    Parameters
    ----------
    graph : networkx.Graph
        Topology following the :mod:`topologies` contract.
    ranks : sequence of int
        Chips taking part.

    Returns
    -------
    list of Plane
        One per root switch tying for the smallest largest-hop-count, in node order.

    Raises
    ------
    ConfigError
        No graph, no reduction-capable switch, ranks that are not chips, ranks that switches
        cannot join, or a switch without ``reduction`` on the best tree.
    """
    if not isinstance(graph, nx.Graph):
        raise ConfigError("graph: the innetwork algorithms need the topology graph, got none")
    for r in ranks:
        if r not in graph or graph.nodes[r].get("kind") != "chip":
            raise ConfigError(f"ranks: every rank must be a chip of the topology, got {r!r}")
    switches = [n for n, d in graph.nodes(data=True) if d.get("kind") == "switch"]
    capable = [s for s in switches if graph.nodes[s].get("reduction")]
    if not capable:
        raise ConfigError(
            f"graph: innetwork needs reduction-capable switches; topology {_name(graph)} has none"
        )
    best: dict[int, tuple[int, dict[int, int]]] = {}
    for s in switches:
        dist = _switch_distances(graph, s)
        hops = _rank_hops(graph, ranks, dist)
        if hops is not None:
            best[s] = (hops, dist)
    if not best:
        raise ConfigError(
            f"ranks: no switch of topology {_name(graph)} reaches all of them through switches"
        )
    pool = [s for s in capable if s in best] or sorted(best)
    low = min(best[s][0] for s in pool)
    planes = [_plane(graph, ranks, s, best[s][1]) for s in sorted(pool) if best[s][0] == low]
    for pl in planes:
        for s in (pl.root, *pl.order):
            if not graph.nodes[s].get("reduction"):
                raise ConfigError(
                    f"graph: switch {s} on the aggregation tree rooted at {pl.root} of "
                    f"{_name(graph)} cannot reduce in-network, got reduction=False (the "
                    f"topology's reduction parameters enable it, e.g. fabric_reduction=true)"
                )
    return planes


# --------------------------------------------------------------------------- builders


def _setup(op: str, req: BuildRequest) -> tuple[Schedule, list[Plane], list[int], str]:
    ranks, graph, chunks = check_ranks(req.ranks), req.graph, req.chunks
    count = require_int("count", req.count, min=0)
    itemsize = require_int("itemsize", req.itemsize, min=1)
    root = require_int("root", req.root, min=0, max=len(ranks) - 1)
    planes = aggregation_planes(graph, ranks)
    if chunks is None:
        by_size = -(-count * itemsize // MIN_CHUNK_BYTES)
        n = max(1, min(CHUNKS_PER_PLANE * len(planes), max(len(planes), by_size)))
    else:
        n = require_int("chunks", chunks, min=1)
    s = Schedule(op, "innetwork", ranks, count, itemsize, root=root)
    # One accumulator name per group, so concurrent groups can be merged on shared switches.
    return s, planes, chunk_bounds(count, n), f"acc{ranks[0]}"


def plane_chunks(
    bounds: Sequence[int], planes: Sequence[Plane]
) -> Iterator[tuple[int, int, Plane]]:
    """The pipeline chunks ``[lo, hi)`` between consecutive ``bounds`` that hold elements,
    each with its plane: chunk ``c`` runs on ``planes[c % len(planes)]`` (round-robin)."""
    for c in range(len(bounds) - 1):
        if bounds[c] < bounds[c + 1]:
            yield bounds[c], bounds[c + 1], planes[c % len(planes)]


def reduce_up(
    s: Schedule,
    plane: Plane,
    lo: int,
    hi: int,
    acc: str,
    last: dict[Any, int],
    sources: Sequence[int] | None = None,
    buf: str = "x",
) -> list[int]:
    """Reduce ``[lo, hi)`` of buffer ``buf`` of every rank of ``sources`` (default: all of
    the schedule's ranks) into ``acc`` of the plane's root, switch by switch up the tree.

    ``last`` maps each link ``(u, v)`` to the last transfer on it (updated), so that chunks
    on the same link stay in order. Returns the transfers into the root (the result is
    complete when they have arrived).
    """
    into: dict[int, list[int]] = {}
    for r in s.ranks if sources is None else sources:
        u = plane.parent[r]
        i = s.add(r, u, buf, lo, hi, acc, op="sum", deps=[last.get((r, u))])
        last[(r, u)] = i
        into.setdefault(u, []).append(i)
    for sw in plane.order[:-1]:
        u = plane.parent[sw]
        deps = [*into.get(sw, []), last.get((sw, u))]
        i = s.add(sw, u, acc, lo, hi, op="sum", deps=deps)
        last[(sw, u)] = i
        into.setdefault(u, []).append(i)
    return into.get(plane.root, [])


def _reduce_chunks(op: str, req: BuildRequest) -> Schedule:
    """Reduce every chunk up its plane's aggregation tree, then send the root switch's sum
    down: multicast to every rank (``op="allreduce"``) or to rank index ``root`` (``"reduce"``).
    """
    s, planes, bounds, acc = _setup(op, req)
    last: dict[Any, int] = {}
    for lo, hi, pl in plane_chunks(bounds, planes):
        deps = reduce_up(s, pl, lo, hi, acc, last)
        if op == "allreduce":
            dst, key = s.ranks, ("mc", pl.root)
        else:
            dst = s.ranks[s.root]
            key = (pl.root, dst)
        last[key] = s.add(pl.root, dst, acc, lo, hi, "x", deps=[*deps, last.get(key)])
    return s


@builder("innetwork")
def allreduce_innetwork(req: BuildRequest) -> Schedule:
    """All-reduce in the switches: reduce up the aggregation tree, multicast the result down.

    Parameters
    ----------
    graph : networkx.Graph
        The topology (required).
    chunks : int, optional
        Pipeline chunks in all, spread round-robin over the planes (default
        :data:`CHUNKS_PER_PLANE` per plane, but no chunk below :data:`MIN_CHUNK_BYTES` beyond
        one per plane); chunks with no elements are skipped.

    Returns
    -------
    Schedule
        Switch accumulators are the buffer ``"acc<first rank>"``.

    Raises
    ------
    ConfigError
        See :func:`aggregation_planes`; bad ``count`` or ``chunks``; an unknown option.
    """
    return _reduce_chunks("allreduce", req)


@builder("innetwork")
def reduce_innetwork(req: BuildRequest) -> Schedule:
    """Reduce in the switches to rank index ``root``: up the tree, then root switch -> root.

    Parameters as :func:`allreduce_innetwork`, plus ``root`` (rank index of the result).
    """
    return _reduce_chunks("reduce", req)


@builder("innetwork")
def broadcast_innetwork(req: BuildRequest) -> Schedule:
    """Broadcast by switch multicast: rank ``root`` -> plane root switch -> all other ranks.

    Each chunk is sent (routed by the network) to the root switch of its plane, which
    multicasts it to every other rank in one transfer. Parameters as
    :func:`allreduce_innetwork`, plus ``root`` (rank index of the source).
    """
    s, planes, bounds, acc = _setup("broadcast", req)
    src = s.ranks[s.root]
    others = [r for r in s.ranks if r != src]
    if not others:
        return s
    last: dict[Any, int] = {}
    for lo, hi, plane in plane_chunks(bounds, planes):
        sw = plane.root
        up = s.add(src, sw, "x", lo, hi, acc, deps=[last.get((src, sw))])
        last[(src, sw)] = up
        key = ("mc", sw)
        last[key] = s.add(sw, others, acc, lo, hi, "x", deps=[up, last.get(key)])
    return s
