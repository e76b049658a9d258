"""Routing for the packet engine: source routes computed once per flow.

A router turns ``(src, dst, flow)`` into a route: a tuple of port ids (directed links, see
:class:`PortTable`) and a tuple of virtual channels, one per hop. Routes are deterministic
functions of the flow, the topology and the seed, and are cached.

Algorithms (``routing=`` of :class:`~netsim.core.engine.PacketNetwork`)
----------------------------------------------------------------
``shortest`` (alias ``ecmp``)
    Shortest paths in hops with deterministic ECMP: at every node the next hop is chosen
    among the neighbours one hop closer to the destination by a hash of
    ``(src, dst, flow, node)``. In networks with switches, chips never forward transit
    traffic. On trees, fat-trees, NVSwitch nodes and rail-optimised fabrics every shortest
    path goes up, then down (up*/down*), so this *is* up/down routing (alias ``updown``),
    deadlock-free with one virtual channel. In direct networks (no switches) the virtual
    channel is the hop index (distance classes), deadlock-free with finite buffers on any
    topology (Gunther 1981; Dally & Towles, *Principles and Practices of Interconnection
    Networks*, 2004, sec. 14.1).
``dor``
    Dimension-order routing on tori, meshes and wafers (nodes carry ``coord``): correct
    dimension 0 first, then 1, ...; in a ring the shorter direction (ties go the + way).
    Deadlock freedom with finite buffers uses two virtual channels and a *dateline* per
    dimension: a packet moves on VC 0 and switches to VC 1 after crossing the wraparound link
    of the dimension it travels in (Dally & Seitz 1987). ``dor-nodateline`` keeps VC 0 and
    can deadlock; it exists to demonstrate deadlock detection.
``minimal``, ``valiant``, ``ugal``
    Dragonfly routing (Kim, Dally, Scott & Abts, ISCA 2008): minimal goes local-global-local;
    Valiant routes minimally to a random intermediate group first; UGAL-L chooses per packet
    between the minimal and one random Valiant path by comparing queue backlog times hop
    count at the source router's output ports. VC = number of global links crossed so far.
``auto``
    ``dor`` for tori/meshes/wafers, ``minimal`` for dragonflies, ``shortest`` otherwise.

Registry
--------
Every algorithm is a :class:`RoutingInfo` in :data:`ROUTERS`: its name, how to build it,
the topology families it applies to (any if none), the families it is the automatic
choice for, whether it *sprays* (spreads flows over equal-cost paths by their flow
label, so a collective may stripe a message over them: ``multipath``) and whether it is
*stateful* (random or load-dependent routes: :mod:`workloads.once` then never splits a
schedule). :func:`make_router`,
:func:`auto_routing` and the collectives runner (through ``router.sprays``) read it;
:func:`register_routing` adds an algorithm.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

from netsim.core.errors import ConfigError
from netsim.core.linktypes import LINK_TYPES
from netsim.core.validate import require_choice

__all__ = [
    "ROUTERS",
    "ROUTINGS",
    "PortTable",
    "Router",
    "RoutingInfo",
    "auto_routing",
    "make_router",
    "parse_routing",
    "register_routing",
]


class PortTable:
    """Directed links of a topology as integer port ids.

    Port ``i`` goes from ``src[i]`` to ``dst[i]``; both directions of an undirected edge are
    two ports with the edge's bandwidth and latency. ``port[(u, v)]`` maps back. ``link[i]``
    is the edge's link type (``"unknown"`` without a ``link`` attribute), ``mtu[i]`` and
    ``header[i]`` its packet payload and header bytes: the edge's ``mtu``/``header``
    attributes if given, else those of its link type (:mod:`netsim.core.linktypes`; InfiniBand's
    for an unknown type).
    """

    __slots__ = (
        "bandwidth",
        "dst",
        "header",
        "latency",
        "link",
        "mtu",
        "node_index",
        "nodes",
        "out",
        "port",
        "src",
    )

    def __init__(self, G: nx.Graph) -> None:
        self.nodes = list(G.nodes)
        self.node_index = {n: i for i, n in enumerate(self.nodes)}
        self.src: list[int] = []
        self.dst: list[int] = []
        self.bandwidth: list[float] = []
        self.latency: list[float] = []
        self.port: dict[tuple[int, int], int] = {}
        self.out: dict[int, list[int]] = {n: [] for n in G.nodes}
        self.link: list[str] = []
        self.mtu: list[int] = []
        self.header: list[int] = []
        for u, v, data in G.edges(data=True):
            name = str(data.get("link") or "unknown")
            lt = LINK_TYPES.get(name, LINK_TYPES["ib"])
            mtu = int(data.get("mtu", lt.mtu))
            header = int(data.get("header", lt.header))
            for a, b in ((u, v), (v, u)):
                pid = len(self.src)
                self.src.append(a)
                self.dst.append(b)
                self.bandwidth.append(float(data["bandwidth"]))
                self.latency.append(float(data["latency"]))
                self.link.append(name)
                self.mtu.append(mtu)
                self.header.append(header)
                self.port[(a, b)] = pid
                self.out[a].append(pid)

    def __len__(self) -> int:
        return len(self.src)


def _mix(*xs: int) -> int:
    """A small deterministic integer hash (splitmix64 over the inputs)."""
    h = 0x9E3779B97F4A7C15
    for x in xs:
        h = (h ^ (x & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h


class Router:
    """Base of every routing algorithm: caches routes per (src, dst, flow).

    ``name``, ``sprays`` and ``stateful`` are set from the algorithm's
    :class:`RoutingInfo` by :func:`make_router`; ``nvcs`` is the number of virtual
    channels its routes use.
    """

    name = "base"
    nvcs = 1
    sprays = False  # set from the registry by make_router
    stateful = False  # set from the registry by make_router

    def __init__(self, G: nx.Graph, ports: PortTable, seed: int) -> None:
        self.G = G
        self.ports = ports
        self.seed = seed
        self._cache: dict[tuple[int, int, int], tuple[tuple[int, ...], tuple[int, ...]]] = {}

    def route(self, src: int, dst: int, flow: int = 0) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``(ports, virtual channels)`` of the route of flow ``flow`` from ``src`` to ``dst``."""
        key = (src, dst, flow)
        r = self._cache.get(key)
        if r is None:
            r = self._cache[key] = self._route(src, dst, flow)
        return r

    def _route(self, src: int, dst: int, flow: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        raise NotImplementedError

    def path_nodes(self, src: int, dst: int, flow: int = 0) -> list[int]:
        """The nodes a flow visits, ``src`` first."""
        ports, _ = self.route(src, dst, flow)
        return [src] + [self.ports.dst[p] for p in ports]

    def _ports_of(self, nodes: list[int]) -> tuple[int, ...]:
        port = self.ports.port
        return tuple(port[(a, b)] for a, b in itertools.pairwise(nodes))


class ShortestPathRouter(Router):
    """Shortest paths with deterministic ECMP; VC = hop index (distance classes)."""

    name = "shortest"
    #: Most bytes of per-destination distance arrays kept (each is 4 bytes per node).
    dist_cache_bytes = 256 << 20

    def __init__(self, G: nx.Graph, ports: PortTable, seed: int) -> None:
        super().__init__(G, ports, seed)
        n = len(ports.nodes)
        idx = ports.node_index
        kinds = [G.nodes[v].get("kind") for v in ports.nodes]
        switched = any(k == "switch" for k in kinds)
        # Chips forward transit traffic only in direct networks (no switches at all).
        self._transit = np.array([not switched or k != "chip" for k in kinds], dtype=bool)
        nbrs = [[idx[m] for m in G.adj[v]] for v in ports.nodes]
        self._nbrs = nbrs
        indptr = np.zeros(n + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(a) for a in nbrs])
        self._indptr = indptr
        self._indices = np.array([m for a in nbrs for m in a], dtype=np.int64)
        self._dist: dict[int, np.ndarray] = {}
        self._switched = switched
        if switched:
            self.nvcs = 1
        else:
            # Distance classes: as many VCs as the longest shortest path (<= 2 eccentricities).
            far = self.distances_to(ports.nodes[0])
            self.nvcs = max(1, 2 * int(far.max()))

    def distances_to(self, dst: int) -> np.ndarray:
        """Hop distances of every node (by index) to node ``dst`` (transit rules applied)."""
        d = self._dist.get(dst)
        if d is not None:
            return d
        n = len(self.ports.nodes)
        di = self.ports.node_index[dst]
        dist = np.full(n, -1, dtype=np.int32)
        dist[di] = 0
        frontier = np.array([di])
        level = 0
        indptr, indices, transit = self._indptr, self._indices, self._transit
        while frontier.size:
            level += 1
            # Expand only from nodes that may forward (the destination itself always may).
            expand = frontier[(frontier == di) | transit[frontier]]
            if expand.size == 0:
                break
            starts, ends = indptr[expand], indptr[expand + 1]
            cand = np.concatenate([indices[s:e] for s, e in zip(starts, ends, strict=True)])
            cand = np.unique(cand[dist[cand] < 0])
            dist[cand] = level
            frontier = cand
        cache = self._dist
        cache[dst] = dist
        # Computed lazily per destination used; the oldest are dropped past a memory bound
        # (routes already computed stay in the route cache).
        while len(cache) > 1 and len(cache) * n * dist.itemsize > self.dist_cache_bytes:
            del cache[next(iter(cache))]
        return dist

    def _route(self, src: int, dst: int, flow: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        if src == dst:
            return (), ()
        idx = self.ports.node_index
        nodes = self.ports.nodes
        dist = self.distances_to(dst)
        cur = idx[src]
        if dist[cur] < 0:
            raise ConfigError(f"routing: no path from node {src} to node {dst}")
        path = [src]
        while dist[cur] > 0:
            want = dist[cur] - 1
            # A chip at the right distance is no hop unless it is the destination.
            choices = [m for m in self._nbrs[cur] if dist[m] == want and self._transit[m]]
            if want == 0:
                choices = [idx[dst]]
            cur = choices[_mix(src, dst, flow, cur, self.seed) % len(choices)]
            path.append(nodes[cur])
        ports = self._ports_of(path)
        return ports, (0,) * len(ports) if self._switched else tuple(range(len(ports)))


class DimensionOrderRouter(Router):
    """Dimension-order routing on grids with ``coord`` node attributes."""

    name = "dor"

    def __init__(self, G: nx.Graph, ports: PortTable, seed: int, *, dateline: bool = True) -> None:
        super().__init__(G, ports, seed)
        coords = {n: tuple(c) for n, c in G.nodes(data="coord") if c is not None}
        if len(coords) != G.number_of_nodes():
            raise ConfigError("routing: 'dor' needs a 'coord' on every node (torus, mesh, wafer)")
        self._at = {c: n for n, c in coords.items()}
        self._coord = coords
        ndim = len(next(iter(coords.values())))
        self._radix = [1 + max(c[d] for c in coords.values()) for d in range(ndim)]
        # A dimension wraps if an edge marked wrap=True runs along it.
        self._wrap = [False] * ndim
        for u, v, w in G.edges(data="wrap"):
            if w:
                cu, cv = coords[u], coords[v]
                for d in range(ndim):
                    if cu[d] != cv[d]:
                        self._wrap[d] = True
        self.dateline = dateline
        self.nvcs = 2 if dateline and any(self._wrap) else 1
        self.name = "dor" if dateline else "dor-nodateline"

    def _route(self, src: int, dst: int, flow: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        cur = list(self._coord[src])
        target = self._coord[dst]
        path = [src]
        vcs: list[int] = []
        for d, k in enumerate(self._radix):
            delta = (target[d] - cur[d]) % k if self._wrap[d] else target[d] - cur[d]
            if self._wrap[d]:
                step = 1 if delta <= k - delta else -1
                count = delta if step == 1 else k - delta
            else:
                step = 1 if delta > 0 else -1
                count = abs(delta)
            vc = 0
            for _ in range(count):
                nxt = (cur[d] + step) % k
                crossed = self._wrap[d] and abs(nxt - cur[d]) != 1 and k > 2
                cur[d] = nxt
                path.append(self._at[tuple(cur)])
                vcs.append(vc)
                if crossed and self.dateline:
                    # The hop that crosses the wraparound link already sits past the dateline.
                    vcs[-1] = vc = 1
        return self._ports_of(path), tuple(vcs)


class DragonflyRouter(Router):
    """Minimal, Valiant and UGAL-L routing on a dragonfly (routers carry ``group``)."""

    def __init__(
        self,
        G: nx.Graph,
        ports: PortTable,
        seed: int,
        mode: str,
        backlog: Callable[[int], float] | None = None,
    ) -> None:
        super().__init__(G, ports, seed)
        self.name = mode
        self.mode = mode
        self.backlog = backlog
        self.nvcs = 2 if mode == "minimal" else 3
        self._router_of: dict[int, int] = {}
        self._group: dict[int, int] = {}
        for n, data in G.nodes(data=True):
            if data.get("kind") == "switch":
                if "group" not in data:
                    raise ConfigError(f"routing: '{mode}' needs a dragonfly (routers with 'group')")
                self._group[n] = data["group"]
        for n, data in G.nodes(data=True):
            if data.get("kind") == "chip":
                (r,) = (m for m in G.adj[n] if m in self._group)
                self._router_of[n] = r
        self._globals: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for u, v in G.edges:
            if u in self._group and v in self._group and self._group[u] != self._group[v]:
                gu, gv = self._group[u], self._group[v]
                self._globals.setdefault((gu, gv), []).append((u, v))
                self._globals.setdefault((gv, gu), []).append((v, u))
        for links in self._globals.values():
            links.sort()
        self.groups = sorted(set(self._group.values()))
        self._rng = random.Random(seed)

    def _minimal_routers(self, ra: int, rb: int, h: int) -> list[int]:
        ga, gb = self._group[ra], self._group[rb]
        if ra == rb:
            return [ra]
        if ga == gb:
            return [ra, rb]
        links = self._globals.get((ga, gb))
        if not links:
            raise ConfigError(f"routing: no global link from group {ga} to group {gb}")
        u, v = links[h % len(links)]
        out = [ra]
        if u != ra:
            out.append(u)
        out.append(v)
        if v != rb:
            out.append(rb)
        return out

    def _assemble(
        self, src: int, dst: int, routers: list[int]
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        nodes = ([src] if src not in self._group else []) + routers
        if dst not in self._group:
            nodes.append(dst)
        ports = self._ports_of(nodes)
        vcs, vc = [], 0
        for a, b in itertools.pairwise(nodes):
            vcs.append(vc)
            if a in self._group and b in self._group and self._group[a] != self._group[b]:
                vc += 1
        return ports, tuple(vcs)

    def _valiant_routers(self, ra: int, rb: int, h: int) -> list[int]:
        ga, gb = self._group[ra], self._group[rb]
        others = [g for g in self.groups if g not in (ga, gb)]
        if not others:
            return self._minimal_routers(ra, rb, h)
        gi = others[self._rng.randrange(len(others))]
        # Enter the intermediate group through a global link from the source group.
        links = self._globals[(ga, gi)]
        u, v = links[h % len(links)]
        first = [*self._minimal_routers(ra, u, h), v]
        return first + self._minimal_routers(v, rb, h)[1:]

    def route(self, src: int, dst: int, flow: int = 0) -> tuple[tuple[int, ...], tuple[int, ...]]:
        if self.mode == "minimal":
            return super().route(src, dst, flow)
        return self._route(src, dst, flow)  # randomised per packet: not cached

    def _route(self, src: int, dst: int, flow: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        if src == dst:
            return (), ()
        ra = self._router_of.get(src, src)
        rb = self._router_of.get(dst, dst)
        h = _mix(src, dst, flow, self.seed)
        minimal = self._assemble(src, dst, self._minimal_routers(ra, rb, h))
        if self.mode == "minimal" or self._group[ra] == self._group[rb]:
            return minimal
        valiant = self._assemble(src, dst, self._valiant_routers(ra, rb, h))
        if self.mode == "valiant":
            return valiant

        # UGAL-L: compare (queue backlog at the first router output) x hops.
        def cost(r: tuple[tuple[int, ...], tuple[int, ...]]) -> float:
            first = r[0][1] if src not in self._group and len(r[0]) > 1 else r[0][0]
            return (self.backlog(first) if self.backlog else 0.0) * len(r[0]) + len(r[0]) * 1e-15

        return minimal if cost(minimal) <= cost(valiant) else valiant


def _shortest(G, ports, seed, backlog):
    return ShortestPathRouter(G, ports, seed)


def _dor(G, ports, seed, backlog):
    return DimensionOrderRouter(G, ports, seed, dateline=True)


def _dor_nodateline(G, ports, seed, backlog):
    return DimensionOrderRouter(G, ports, seed, dateline=False)


def _dragonfly(mode: str) -> Callable[..., Router]:
    def build(G, ports, seed, backlog):
        return DragonflyRouter(G, ports, seed, mode, backlog)

    return build


@dataclass(frozen=True)
class RoutingInfo:
    """A routing algorithm as the registry declares it.

    Attributes
    ----------
    name : str
        The ``routing=`` value that selects it.
    build : callable
        ``build(G, ports, seed, backlog) -> router``; ``backlog(port)`` (seconds of work
        queued at a port, or None) is for adaptive routing.
    families : tuple of str
        The topology families (``G.graph["family"]``) it applies to; empty: any topology.
    auto_for : tuple of str
        The families for which ``routing="auto"`` picks it.
    sprays : bool
        Whether it spreads flows over equal-cost paths by their flow label.
    stateful : bool
        Whether its routes are drawn at random or depend on the load (so the same message
        may take another route in another run or another replica): schedules on it are
        never timed in parts (:mod:`workloads.once`).
    """

    name: str
    build: Callable[[nx.Graph, PortTable, int, Callable[[int], float] | None], Router]
    families: tuple[str, ...] = ()
    auto_for: tuple[str, ...] = ()
    sprays: bool = False
    stateful: bool = False


#: The registry: routing name -> its declaration (``"auto"`` is not an algorithm).
ROUTERS: dict[str, RoutingInfo] = {}
#: What ``routing="auto"`` picks on a family no algorithm declares in ``auto_for``.
AUTO_DEFAULT = "shortest"


def register_routing(info: RoutingInfo) -> None:
    """Add ``info`` to :data:`ROUTERS`; a name or an automatic family may be taken once."""
    if info.name in ROUTERS or info.name == "auto":
        raise ConfigError(f"routing: name {info.name!r} is already registered")
    for fam in info.auto_for:
        taken = [r.name for r in ROUTERS.values() if fam in r.auto_for]
        if taken:
            raise ConfigError(
                f"routing: {info.name!r} auto_for {fam!r}, already {taken[0]!r}'s family"
            )
    ROUTERS[info.name] = info


for _info in (
    RoutingInfo("shortest", _shortest, sprays=True),
    RoutingInfo("ecmp", _shortest, sprays=True),
    RoutingInfo("updown", _shortest, sprays=True),
    RoutingInfo("dor", _dor, auto_for=("torus", "mesh", "wafer")),
    RoutingInfo("dor-nodateline", _dor_nodateline),
    RoutingInfo("minimal", _dragonfly("minimal"), ("dragonfly",), ("dragonfly",)),
    RoutingInfo("valiant", _dragonfly("valiant"), ("dragonfly",), stateful=True),
    RoutingInfo("ugal", _dragonfly("ugal"), ("dragonfly",), stateful=True),
):
    register_routing(_info)

#: The ``routing=`` values built in (command-line choices): ``auto`` and the registry's.
ROUTINGS = ("auto", *ROUTERS)


def parse_routing(value: Any, name: str = "routing") -> str:
    """``"auto"`` or a routing of the registry :data:`ROUTERS` as it is now (one registered
    after import is accepted), else ConfigError listing them."""
    return require_choice(name, value, ("auto", *ROUTERS))


def auto_routing(family: str) -> str:
    """The routing ``routing="auto"`` picks for a topology of ``family``."""
    for info in ROUTERS.values():
        if family in info.auto_for:
            return info.name
    return AUTO_DEFAULT


def make_router(
    G: nx.Graph,
    ports: PortTable,
    routing: str = "auto",
    *,
    seed: int = 0,
    backlog: Callable[[int], float] | None = None,
) -> Router:
    """Return the router named ``routing`` for ``G`` (see the module docstring).

    The router's ``name``, ``sprays`` and ``stateful`` are those of its :class:`RoutingInfo`.
    """
    family = G.graph.get("family", "")
    if routing != "auto" and routing not in ROUTERS:
        raise ConfigError(f"routing: must be one of auto, {', '.join(ROUTERS)}, got {routing!r}")
    info = ROUTERS[auto_routing(family) if routing == "auto" else routing]
    if info.families and family not in info.families:
        raise ConfigError(
            f"routing: '{info.name}' applies to {' or '.join(info.families)} topologies "
            f"only, got a {family or 'custom'} topology"
        )
    router = info.build(G, ports, seed, backlog)
    router.name = info.name
    router.sprays = info.sprays
    router.stateful = info.stateful
    return router
