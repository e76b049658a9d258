"""The fabric collectives run on: running merged schedules and analysing the timed run.

:class:`Fabric` holds the graph, the backend options and the collective library's costs;
:meth:`Fabric.run` times a schedule on a fresh backend and returns a :class:`CollectiveRun`
with the per-chip tails of :func:`chip_tails` (the dependency-DAG analysis stragglers are
applied to). :func:`run_groups` builds one collective for every group of the system, merges
them and times the merged schedule; ``run_allreduce`` picks the all-reduce algorithm (``auto``:
the fastest of :data:`AUTO_CANDIDATES`). :func:`library_record` is the flat record of the
collective library costs applied. Shared by :mod:`workloads.decode` and
:mod:`workloads.train`.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from collectives import RunResult, build, make_backend, run
from collectives.calibration import CostModel, LibraryCosts
from collectives.options import BACKENDS as COLLECTIVE_BACKENDS
from collectives.schedule import merge
from netsim.core.errors import ConfigError
from workloads import once
from workloads.landing import LandingBackend

__all__ = [
    "ALLREDUCE_ALGOS",
    "AUTO_CANDIDATES",
    "BACKENDS",
    "CollectiveRun",
    "Fabric",
    "chip_tails",
    "elements",
    "library_notes",
    "library_record",
    "retag",
    "run_allreduce",
    "run_groups",
]


#: All-reduce algorithms accepted by ``allreduce=`` (``auto`` tries :data:`AUTO_CANDIDATES`).
ALLREDUCE_ALGOS = (
    "auto",
    "ring",
    "ring-bidir",
    "tree",
    "recursive-doubling",
    "rabenseifner",
    "oneshot",
    "twoshot",
    "hierarchical",
    "torus",
    "innetwork",
)
#: Algorithms ``allreduce="auto"`` simulates; the fastest applicable one is used.
AUTO_CANDIDATES = (
    "ring",
    "tree",
    "recursive-doubling",
    "oneshot",
    "twoshot",
    "torus",
    "innetwork",
)
#: Network models (:func:`collectives.make_backend`): packet, analytical or flow.
BACKENDS = COLLECTIVE_BACKENDS


#: Accumulator buffers of in-network schedules are named after a chip of their group.
_ACC_OWNER = re.compile(r"^acc(\d+)")


# ---------------------------------------------------------------------- DAG analysis
def chip_tails(
    schedule: Any, arrivals: Sequence[float], *, step_overhead: float = 0.0
) -> tuple[dict[int, float], int]:
    """Per-chip tails of a timed schedule and the messages on its critical chain.

    Durations come from the run: transfer ``i`` starts at 0 (no deps) or at the last
    arrival of its deps plus ``step_overhead``, and lasts ``arrivals[i] - start``. The tail
    of a transfer is its duration plus the longest ``step_overhead + tail`` of the transfers
    that depend on it; the tail ``L_c`` of node ``c`` is the largest tail of its
    dependency-free transfers. Delaying node ``c``'s start by ``d_c`` finishes the schedule
    at ``max_c (d_c + L_c)`` if durations do not change.

    Returns
    -------
    tails : dict
        Node -> ``L_c`` seconds, for nodes that own dependency-free transfers.
    critical_messages : int
        Transfers on the chain that attains the largest tail.
    """
    ts = schedule.transfers
    arr = [float(a) for a in arrivals]
    n = len(ts)
    if n == 0:
        return {}, 0
    dur = arr[:]
    succ: list[Any] = [()] * n  # transfers that depend on each (a list once there is one)
    for i, t in enumerate(ts):
        if t.deps:
            dur[i] = arr[i] - (max([arr[d] for d in t.deps]) + step_overhead)
            for d in t.deps:
                if succ[d]:
                    succ[d].append(i)
                else:
                    succ[d] = [i]
    tail = [0.0] * n
    nxt = [-1] * n
    for i in range(n - 1, -1, -1):
        best, arg = 0.0, -1
        for j in succ[i]:
            v = step_overhead + tail[j]
            if v > best:
                best, arg = v, j
        tail[i] = dur[i] + best
        nxt[i] = arg
    tails: dict[int, float] = {}
    root = -1
    for i, t in enumerate(ts):
        if not t.deps:
            if tail[i] > tails.get(t.src, -math.inf):
                tails[t.src] = float(tail[i])
            if root < 0 or tail[i] > tail[root]:
                root = i
    count, i = 0, root
    while i >= 0:
        count += 1
        i = nxt[i]
    return tails, count


# ---------------------------------------------------------------------- results
@dataclass(frozen=True)
class CollectiveRun:
    """One merged schedule (every group of the system) timed on a backend.

    Attributes
    ----------
    name, op, algo : str
        What it is for, the collective and the algorithm that ran.
    time_s : float
        Last arrival of the merged schedule (all groups).
    tails : Mapping[int, float]
        Chip -> tail ``L_c`` (see :func:`chip_tails`).
    critical_messages : int
        Transfers on the longest chain.
    transfers, bytes : int
        Transfers and payload bytes of the merged schedule.
    link_bytes : Mapping[str, float]
        Bytes times links traversed, per link type, of the transfers of instance 0.
    model : str
        Backend model that ran.
    stats : Mapping[str, Any]
        The backend's counters.
    candidates : Mapping[str, float | None]
        For ``allreduce="auto"``: time of every candidate (None: not applicable).
    """

    name: str
    op: str
    algo: str
    time_s: float
    tails: Mapping[int, float]
    critical_messages: int
    transfers: int
    bytes: int
    link_bytes: Mapping[str, float]
    model: str
    stats: Mapping[str, Any]
    candidates: Mapping[str, float | None] = field(default_factory=dict)


# ---------------------------------------------------------------------- running schedules
def retag(schedule: Any, tag: str) -> Any:
    """A copy of ``schedule`` with every buffer name suffixed ``@tag`` (merge-safe)."""
    from collectives.schedule import Schedule, Transfer

    out = Schedule(
        op=schedule.op,
        algo=schedule.algo,
        ranks=tuple(schedule.ranks),
        count=schedule.count,
        itemsize=schedule.itemsize,
        buffers={},
        root=schedule.root,
        matrix=schedule.matrix,
    )
    out.buffers.clear()
    out.transfers = [
        Transfer(
            t.src,
            t.dsts,
            f"{t.src_buf}@{tag}",
            t.lo,
            t.hi,
            f"{t.dst_buf}@{tag}",
            t.dst_lo,
            t.op,
            t.deps,
        )
        for t in schedule.transfers
    ]
    out.buffers = {(n, f"{b}@{tag}"): size for (n, b), size in schedule.buffers.items()}
    return out


@dataclass
class Fabric:
    """Everything needed to run schedules: graph, backend options, routing for link bytes.

    ``instance`` is the set of chips whose traffic counts in :meth:`link_bytes` (energy).
    ``step_overhead``, ``launch_overhead``, ``efficiency`` and ``multipath`` are the
    collective library's costs (:func:`collectives.runner.run`; see :meth:`with_costs`);
    with ``costs`` (a :class:`collectives.calibration.CostModel`) schedules are charged
    per route instead (an intra-node transfer of a SuperPOD NVLink's costs, an inter-node
    one InfiniBand's), the single values serving the critical-path analysis and
    :meth:`link_bytes`. ``simulate_once`` (default) lets :meth:`run` take timings from the
    memo and time replicas once (:mod:`workloads.once`; the same numbers); ``False`` (or
    the :func:`workloads.once.whole` block) simulates every schedule whole.
    """

    graph: nx.Graph
    chips: list[int]
    backend: str
    forwarding: str
    routing: str
    seed: int
    step_overhead: float
    landing_latency: float
    instance: frozenset[int]
    launch_overhead: float = 0.0
    efficiency: float = 1.0
    multipath: bool = False
    costs: CostModel | None = None
    simulate_once: bool = True
    _net: Any = None
    _paths: dict[tuple[int, int], list[tuple[int, int, str]]] = field(default_factory=dict)
    _keys: dict[Any, Any] = field(default_factory=dict)
    _routes: dict[tuple[int, int], Any] = field(default_factory=dict)

    def with_costs(self, costs: LibraryCosts, model: CostModel | None = None) -> Fabric:
        """Take the step, launch, efficiency and multipath of ``costs``
        (:func:`collectives.calibration.library_costs`) and the per-route ``model``
        (:func:`collectives.calibration.cost_model`) if given; returns ``self``."""
        self.costs = model
        self.step_overhead = costs.step
        self.launch_overhead = costs.launch
        self.efficiency = costs.efficiency
        self.multipath = costs.multipath
        return self

    def make(self) -> Any:
        """A fresh backend (clock at 0) on :attr:`graph`, wrapped for the landing zone."""
        be = make_backend(
            self.graph,
            self.backend,
            forwarding=self.forwarding,
            routing=self.routing,
            seed=self.seed,
        )
        if self.landing_latency > 0:
            be = LandingBackend(be, self.landing_latency, self.chips)
        return be

    def router(self) -> Any:
        """The router of :attr:`graph` (that of the packet engine and the analytical model)."""
        if self._net is None:
            from netsim.core.engine import PacketNetwork

            self._net = PacketNetwork(self.graph, routing=self.routing, seed=self.seed)
        return self._net.router

    def route_ports(self, src: int, dst: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Ports (directed links of :attr:`router`'s table) and virtual channels of a route."""
        key = (src, dst)
        got = self._routes.get(key)
        if got is None:
            got = self._routes[key] = self.router().route(src, dst, 0)
        return got

    def graph_key(self) -> Any:
        """The topology and link state: every node and edge with all its attributes."""
        if "graph" not in self._keys:
            self._keys["graph"] = once.graph_key(self.graph)
        return self._keys["graph"]

    def port_key(self, port: int) -> str:
        """All attributes of the edge of ``port`` (what the backends read of a link)."""
        key = ("port", port)
        if key not in self._keys:
            table = self.router().ports
            data = self.graph.edges[table.src[port], table.dst[port]]
            self._keys[key] = repr(sorted(data.items()))
        return self._keys[key]

    def node_key(self, node: int) -> tuple[Any, ...]:
        """A node's attributes but its place (:data:`workloads.once.LABEL_KEYS`) and the
        bandwidths of its ports (they set the default injection bandwidth)."""
        key = ("node", node)
        if key not in self._keys:
            table = self.router().ports
            data = sorted(
                (k, v) for k, v in self.graph.nodes[node].items() if k not in once.LABEL_KEYS
            )
            bws = tuple(sorted(table.bandwidth[p] for p in table.out[node]))
            self._keys[key] = (repr(data), bws)
        return self._keys[key]

    def edges(self, src: int, dst: int) -> list[tuple[int, int, str]]:
        """Directed edges ``(a, b, link type)`` a message from ``src`` to ``dst`` crosses."""
        key = (src, dst)
        if key not in self._paths:
            self.router()
            nodes = self._net.route(src, dst)
            self._paths[key] = [
                (a, b, str(self.graph.edges[a, b].get("link", "unknown")))
                for a, b in itertools.pairwise(nodes)
            ]
        return self._paths[key]

    def link_bytes(self, schedule: Any) -> dict[str, float]:
        """Bytes x links per link type of the transfers that touch model instance 0.

        Bytes are those on the wire, ``ceil(payload / efficiency)`` as
        :func:`collectives.runner.run` sends them. A multicast counts every edge of the
        union of its unicast routes once. A transfer between two switches (in-network
        reductions on multi-level trees) belongs to the group whose accumulator it carries:
        buffers ``acc<chip>...`` are named after a chip of their group
        (:mod:`collectives.innetwork`,
        :func:`workloads.moe_collectives.innetwork_combine_schedule`).
        """
        out: dict[str, float] = {}
        inst = self.instance
        for t in schedule.transfers:
            if t.src not in inst and not any(d in inst for d in t.dsts):
                owner = _ACC_OWNER.match(t.src_buf)
                if owner is None or int(owner[1]) not in inst:
                    continue
            nbytes = float(schedule.nbytes(t))
            if self.efficiency < 1.0:
                nbytes = float(math.ceil(nbytes / self.efficiency))
            used = {e for d in t.dsts for e in self.edges(t.src, d)}
            for _, _, lt in used:
                out[lt] = out.get(lt, 0.0) + nbytes
        return out

    def timed(self, schedule: Any) -> RunResult:
        """Run ``schedule`` whole on a fresh backend (:meth:`make`) with the library costs."""
        if self.costs is not None:
            return run(self.make(), schedule, costs=self.costs)
        return run(
            self.make(),
            schedule,
            step_overhead=self.step_overhead,
            launch_overhead=self.launch_overhead,
            efficiency=self.efficiency,
            multipath=self.multipath,
        )

    def run(
        self, name: str, schedule: Any, candidates: Mapping[str, float | None] | None = None
    ) -> CollectiveRun:
        """Time ``schedule`` and analyse it (:func:`chip_tails`).

        With :attr:`simulate_once` the timing comes from :func:`workloads.once.simulate`
        (memo, replicas timed once: the same arrival times), else from :meth:`timed`.
        """
        if self.simulate_once and once.enabled():
            arrivals, model, stats = once.simulate(self, schedule)
        else:
            res = self.timed(schedule)
            arrivals, model, stats = res.arrivals, res.model, res.stats
        tails, crit = chip_tails(schedule, arrivals, step_overhead=self.step_overhead)
        return CollectiveRun(
            name=name,
            op=schedule.op,
            algo=schedule.algo,
            time_s=float(max(arrivals, default=0.0)),
            tails=tails,
            critical_messages=crit,
            transfers=len(schedule.transfers),
            bytes=int(sum(schedule.nbytes(t) for t in schedule.transfers)),
            link_bytes=self.link_bytes(schedule),
            model=str(model),
            stats=dict(stats or {}),
            candidates=dict(candidates or {}),
        )


def elements(nbytes: float, itemsize: float) -> tuple[int, int]:
    """``(count, itemsize)`` integers for a buffer of ``nbytes`` of ``itemsize``-byte items."""
    if float(itemsize).is_integer() and itemsize >= 1:
        size = int(itemsize)
        return max(1, round(nbytes / size)), size
    return max(1, round(nbytes)), 1


def run_groups(
    fabric: Fabric,
    name: str,
    op: str,
    algo: str,
    groups: Sequence[Sequence[int]],
    count: int,
    itemsize: int,
    **opts: Any,
) -> CollectiveRun:
    """Build ``op``/``algo`` for every group, merge them, and time the merged schedule."""
    scheds = [
        retag(
            build(op, algo, list(g), count, itemsize=itemsize, graph=fabric.graph, **opts), str(i)
        )
        for i, g in enumerate(groups)
    ]
    return fabric.run(name, merge(scheds, algo=algo))


def run_allreduce(
    fabric: Fabric,
    groups: Sequence[Sequence[int]],
    count: int,
    itemsize: int,
    algo: str,
    *,
    name: str = "tp_allreduce",
    option: str = "allreduce",
) -> CollectiveRun:
    """Time the all-reduce ``algo`` of every group at once (:func:`run_groups`); ``auto``
    runs every one of :data:`AUTO_CANDIDATES` that applies and keeps the fastest (their
    times in ``candidates``).

    Raises
    ------
    ConfigError
        ``algo`` cannot run on these groups (named by ``option``, the option that chose
        it), or no candidate of ``auto`` applies.
    """
    if algo != "auto":
        try:
            return run_groups(fabric, name, "allreduce", algo, groups, count, itemsize)
        except ConfigError as exc:
            if str(exc).startswith(f"{option}:"):
                raise
            raise ConfigError(f"{option}: {algo} cannot run here; {exc}") from None
    best: CollectiveRun | None = None
    times: dict[str, float | None] = {}
    for cand in AUTO_CANDIDATES:
        try:
            r = run_groups(fabric, name, "allreduce", cand, groups, count, itemsize)
        except ConfigError:
            times[cand] = None
            continue
        times[cand] = r.time_s
        if best is None or r.time_s < best.time_s:
            best = r
    if best is None:
        raise ConfigError(f"{option}: no algorithm of {', '.join(AUTO_CANDIDATES)} applies")
    return CollectiveRun(**{**best.__dict__, "candidates": times})


# ---------------------------------------------------------------------- library
def library_record(library: str, costs: LibraryCosts) -> dict[str, Any]:
    """The flat result keys that say which collective library costs were applied.

    ``library``; ``library_links``: the link types the costs were taken for (None for
    ``none``); the values applied: ``collective_launch`` (seconds per call),
    ``step_overhead`` (seconds per dependent step), ``collective_efficiency`` (payload
    fraction) and ``multipath``.
    """
    return {
        "library": library,
        "library_links": None if library == "none" or costs.link == "none" else costs.link,
        "collective_launch": costs.launch,
        "step_overhead": costs.step,
        "collective_efficiency": costs.efficiency,
        "multipath": costs.multipath,
    }


def library_notes(library: str, costs: LibraryCosts) -> list[str]:
    """A caveat when ``library`` adds nothing on this fabric (its links have no costs), or
    when the fabric mixes link types (its costs are charged per route)."""
    if "+" in costs.link:
        return [
            f"library: link types {costs.link}: every collective transfer is charged the costs "
            "of its own route's link types (collectives.calibration.cost_model); the values "
            "recorded are those of a route crossing all of them"
        ]
    zero = costs.launch == costs.step == 0.0 and costs.efficiency == 1.0 and not costs.multipath
    if library != "none" and zero:
        links = "no known link types" if costs.link == "none" else f"link types {costs.link}"
        return [
            f"library: {library} has no software costs on {links} "
            "(collectives.calibration): collectives are timed on the hardware alone"
        ]
    return []
