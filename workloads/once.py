"""Simulate each distinct thing once: a memo of timed schedules and replicas timed once.

A decode step repeats the same collectives on every layer and on every data-parallel
replica. :func:`simulate` times a merged schedule (:func:`collectives.schedule.merge` of
one schedule per group) on a :class:`workloads.fabric.Fabric` and returns exactly what
running it whole on a fresh backend returns, doing less work in two ways.

Memo
----
Timed schedules are kept per process (at most :data:`MEMO_SIZE` entries holding
:data:`MEMO_TRANSFERS` transfers, least recently used dropped) under a key that holds every
input of the simulation, so that a hit is never wrong:

* the schedule itself: every transfer (source, destinations, buffers, element range, op,
  dependencies), the item size, op and algorithm (this is the pattern, the sizes and the
  ranks);
* the backend and its parameters: model (packet, analytical, flow), forwarding, routing,
  seed, the library costs (step and launch overheads, efficiency, multipath, or their
  per-link-type model) and the landing latency with the chips it applies to;
* the topology and link state: every node with all its attributes and every edge with all
  its attributes (link delays drawn for stragglers change edge latencies, so they miss).

Replicas timed once
-------------------
On the packet and analytical backends, groups interact only through the resources they
share: the directed links (ports) on their routes, the network interface of every node that
sends, and the reduction engine of every node that ``"sum"`` transfers go into (a FIFO
server on a reducing switch, :mod:`collectives.runner`). Groups are split into
*components* that share none (union-find over those resources). A component is simulated
alone: its events are those it has in the whole run, in the same order (the merge
interleaves groups round-robin, so the component's own merge orders its transfers as the
whole one does, and the event queue orders equal times by creation), so its arrival times
are the same floating-point numbers. Replicas on disjoint
links are thus timed apart; replicas that share links (a fat-tree spine) stay in one
component and are simulated together.

A component that is a relabelling of one already simulated is not simulated again: the
transfers match one to one (element ranges, ops, dependencies), the node and port maps
that follow from their routes are bijections, mapped ports have equal edge attributes and
virtual channels, and mapped nodes all the same attributes but those that only name their
place (:data:`LABEL_KEYS`) and the same port bandwidths (which set a default injection
bandwidth). The backends and the runner read nothing else of the topology, and never order
events by node or port number, so the arrival times are those of the component it matches.

Not split (simulated whole, as before): the flow model (its rates are one max-min
allocation over all flows, recomputed at every start and end), routing that draws random
or load-dependent routes (declared ``stateful`` in the routing registry,
:class:`netsim.core.engine.routing.RoutingInfo`: ``valiant``, ``ugal``), multipath striping, and schedules that are
not a one-level merge of groups.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from collectives.schedule import Schedule, merge

if TYPE_CHECKING:
    from workloads.fabric import Fabric

__all__ = [
    "LABEL_KEYS",
    "MEMO_SIZE",
    "MEMO_TRANSFERS",
    "components",
    "enabled",
    "graph_key",
    "memo_clear",
    "memo_info",
    "simulate",
    "whole",
]

#: Timed schedules kept per process.
MEMO_SIZE = 64
#: At most this many transfers in the memo's keys together (the key holds the schedule's
#: transfers, about 300 bytes each: a bound of about 0.6 GB); a larger schedule is not kept.
MEMO_TRANSFERS = 2_000_000
#: Node attributes that only name a node's place (drawing position, coordinates, indices):
#: all *other* attributes of mapped nodes must be equal for a relabelling. The routers read
#: some of these (``coord``, ``group``), but routes are compared themselves.
LABEL_KEYS = (
    "pos",
    "coord",
    "node",
    "local_rank",
    "rail",
    "index",
    "pod",
    "edge",
    "group",
    "router",
    "port",
    "die",
    "die_coord",
    "tile",
)

_state = {"enabled": True}
_memo: OrderedDict[Any, tuple[list[float], str, dict[str, Any]]] = OrderedDict()
_held: dict[Any, int] = {}  # transfers held per key
_counts = {"hits": 0, "misses": 0, "simulated_groups": 0, "reused_groups": 0}


def enabled() -> bool:
    """False inside :func:`whole`."""
    return _state["enabled"]


@contextmanager
def whole() -> Iterator[None]:
    """Within this block every schedule is simulated whole (no memo, no split): the
    reference the tests and ``benchmarks/scale.py`` compare against."""
    before = _state["enabled"]
    _state["enabled"] = False
    try:
        yield
    finally:
        _state["enabled"] = before


def memo_clear() -> None:
    """Forget every timed schedule and reset the counters of :func:`memo_info`."""
    _memo.clear()
    _held.clear()
    for k in _counts:
        _counts[k] = 0


def memo_info() -> dict[str, int]:
    """``hits``, ``misses``, ``simulated_groups``, ``reused_groups`` (from a relabelling)
    and ``size`` of the memo since the last :func:`memo_clear`."""
    return {**_counts, "size": len(_memo)}


def graph_key(graph: Any) -> tuple[Any, ...]:
    """Every node and edge of ``graph`` with all attributes (the topology and link state)."""
    nodes = tuple((n, repr(sorted(d.items()))) for n, d in graph.nodes(data=True))
    edges = tuple((u, v, repr(sorted(d.items()))) for u, v, d in graph.edges(data=True))
    return nodes, edges


def _key(fabric: Fabric, schedule: Schedule) -> tuple[Any, ...]:
    f = fabric
    backend = (f.backend, f.forwarding, f.routing, f.seed)
    costs = (f.step_overhead, f.launch_overhead, f.efficiency, f.multipath, repr(f.costs))
    landing = (f.landing_latency, tuple(f.chips) if f.landing_latency > 0 else ())
    pattern = (schedule.op, schedule.algo, schedule.itemsize, tuple(schedule.transfers))
    return backend, costs, landing, f.graph_key(), pattern


def simulate(fabric: Fabric, schedule: Schedule) -> tuple[list[float], str, dict[str, Any]]:
    """Arrival times, model and counters of ``schedule`` timed on ``fabric``.

    The arrival times are those of :meth:`workloads.fabric.Fabric.timed` on the whole
    schedule (see the module docstring). ``stats`` are the counters of the (first) backend
    that ran, with ``groups`` (of the schedule) and ``simulated_groups`` (the others were
    relabellings of those).
    """
    key = _key(fabric, schedule)
    got = _memo.get(key)
    if got is not None:
        _counts["hits"] += 1
        _memo.move_to_end(key)
        return got
    _counts["misses"] += 1
    groups = schedule.groups
    comps = components(fabric, groups) if _splittable(fabric, schedule) else None
    if comps is None or len(comps) == 1:
        res = fabric.timed(schedule)
        n = max(1, len(groups))
        _counts["simulated_groups"] += n
        got = (res.arrivals, res.model, {**res.stats, "groups": n, "simulated_groups": n})
    else:
        got = _split_run(fabric, schedule, comps)
    n = len(schedule.transfers)
    if n <= MEMO_TRANSFERS:
        _memo[key] = got
        _held[key] = n
        while len(_memo) > MEMO_SIZE or sum(_held.values()) > MEMO_TRANSFERS:
            old, _ = _memo.popitem(last=False)
            del _held[old]
    return got


def _splittable(fabric: Fabric, schedule: Schedule) -> bool:
    """Whether the groups of ``schedule`` may be timed apart (see the module docstring)."""
    groups = schedule.groups
    if fabric.backend not in ("packet", "analytical") or _stripes(fabric) or len(groups) < 2:
        return False
    if fabric.router().stateful:  # random or load-dependent routes (RoutingInfo.stateful)
        return False
    if any(g.groups for g in groups):
        return False
    return sum(len(g.transfers) for g in groups) == len(schedule.transfers)


def _stripes(fabric: Fabric) -> bool:
    """Whether any message may be striped over several routes (multipath)."""
    if fabric.costs is None:
        return bool(fabric.multipath)
    return any(c.multipath for c in (*fabric.costs.by_link.values(), fabric.costs.default))


def _resources(fabric: Fabric, group: Schedule) -> set[Any]:
    """Ports on the routes of ``group``, the interfaces of its sending nodes and the
    reduction engines of the nodes it sums into."""
    out: set[Any] = set()
    pairs = {(t.src, d) for t in group.transfers for d in t.dsts if d != t.src}
    for src, dst in pairs:
        out.update(fabric.route_ports(src, dst)[0])
    out.update(("nic", t.src) for t in group.transfers)
    out.update(("reduce", d) for t in group.transfers if t.op == "sum" for d in t.dsts)
    return out


def components(fabric: Fabric, groups: Sequence[Schedule]) -> list[list[int]]:
    """Groups (by index, in order) joined when they share a resource, components in order
    of their first group."""
    parent = list(range(len(groups)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[Any, int] = {}
    for g, sched in enumerate(groups):
        for r in _resources(fabric, sched):
            o = owner.setdefault(r, g)
            if o != g:
                a, b = find(o), find(g)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    comps: dict[int, list[int]] = {}
    for g in range(len(groups)):
        comps.setdefault(find(g), []).append(g)
    return list(comps.values())


def _split_run(
    fabric: Fabric, schedule: Schedule, comps: list[list[int]]
) -> tuple[list[float], str, dict[str, Any]]:
    """Time every component (or reuse a relabelled one) and place arrivals in merged order."""
    groups = schedule.groups
    done: dict[Any, list[float]] = {}
    per_comp: list[list[float]] = []
    model, stats, simulated = "", {}, 0
    for comp in comps:
        sub = merge([groups[g] for g in comp], algo=schedule.algo)
        shape = _shape(fabric, sub)
        arr = done.get(shape) if shape is not None else None
        if arr is None:
            res = fabric.timed(sub)
            arr = res.arrivals
            if not simulated:
                model, stats = res.model, dict(res.stats)
            if shape is not None:
                done[shape] = arr
            simulated += len(comp)
        else:
            _counts["reused_groups"] += len(comp)
        per_comp.append(arr)
    _counts["simulated_groups"] += simulated
    stats.update(groups=len(groups), simulated_groups=simulated)
    return _merged_order(groups, comps, per_comp), model, stats


def _merged_order(
    groups: Sequence[Schedule], comps: list[list[int]], per_comp: list[list[float]]
) -> list[float]:
    """Arrivals of the whole merge (round-robin over groups) from each component's merge."""
    comp_of = [0] * len(groups)
    for c, comp in enumerate(comps):
        for g in comp:
            comp_of[g] = c
    pos = [0] * len(comps)
    out: list[float] = []
    for i in range(max(len(g.transfers) for g in groups)):
        for g, sched in enumerate(groups):
            if i < len(sched.transfers):
                c = comp_of[g]
                out.append(per_comp[c][pos[c]])
                pos[c] += 1
    return out


def _shape(fabric: Fabric, sub: Schedule) -> tuple[Any, ...] | None:
    """``sub`` with nodes and ports renumbered in order of first appearance, with the
    attributes of each (see the module docstring); None if it has a multicast (its tree is
    not compared). Two schedules with equal shapes are relabellings of each other."""
    nodes: dict[int, int] = {}
    ports: dict[int, int] = {}
    table = fabric.router().ports
    port_key, node_key, route = fabric.port_key, fabric.node_key, fabric.route_ports
    out: list[Any] = [sub.itemsize]
    for t in sub.transfers:
        if len(t.dsts) > 1:
            return None
        src, dst = t.src, t.dsts[0]
        a = nodes.setdefault(src, len(nodes))
        b = nodes.setdefault(dst, len(nodes))
        out.append((a, b, t.lo, t.hi, t.dst_lo, t.op, t.deps))
        if src == dst:
            continue
        path, vcs = route(src, dst)
        out.append(vcs)
        for p in path:
            q = ports.get(p)
            if q is None:
                q = ports[p] = len(ports)
                u = nodes.setdefault(table.src[p], len(nodes))
                v = nodes.setdefault(table.dst[p], len(nodes))
                out.append((q, u, v, port_key(p)))
            else:
                out.append(q)
    out.append(tuple(node_key(n) for n in nodes))
    return tuple(out)
