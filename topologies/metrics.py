"""Structural figures of a topology: sizes, hops, bisection and injection bandwidth.

Definitions (all bandwidths bytes/s in one direction)
-----------------------------------------------------
``links``
    Full-duplex edges of the graph; ``physical_links`` sums their ``count``.
``diameter``, ``avg_hops``
    Number of links on a shortest path between two chips (switches and, in direct networks,
    other chips forward): the largest over chip pairs, and the mean over all ordered pairs
    of distinct chips. Computed exactly by a bit-parallel breadth-first search from every
    chip (64 sources per machine word; ``O(levels * E * N / 64)`` word operations). Above
    ``max_exact_chips`` chips only ``samples`` seeded random source chips are searched:
    ``hops_method`` is then ``"closed-form"`` for a generated torus, mesh or k-ary fat-tree
    (:func:`closed_form_hops`, exact, no search), else ``"sampled"``: ``avg_hops`` an
    unbiased estimate with its standard error ``avg_hops_stderr`` (spread of the sources'
    mean hops over the square root of their number, finite-population corrected; 0 when
    exact) and ``diameter`` a lower bound (the largest eccentricity seen).
``bisection_bandwidth``
    The bandwidth across the minimum cut that splits the chips into halves of
    ``floor(N/2)`` and ``ceil(N/2)`` (switches may go either side). ``bisection_method``:

    * ``"closed-form"``: the generator's ``G.graph["bisection_bandwidth"]``;
    * ``"exact"``: every balanced assignment of all nodes enumerated (graphs of at most
      ``exact_max_nodes`` nodes);
    * ``"kernighan-lin-upper-bound"``: the best of several candidate chip bisections (chip
      rank halves, halves along each ``coord`` dimension and along each ``pos`` axis, and
      seeded Kernighan-Lin bisections [1]_ of the whole graph weighted by bandwidth,
      rebalanced on the chips); for each candidate the switches are placed optimally by a
      minimum s-t cut. Any balanced cut bounds the minimum from above, so this is an upper
      bound; ``"candidate-cuts-upper-bound"`` when the graph was too large for
      Kernighan-Lin (more than ``kl_max_nodes`` nodes).

    ``bisection_ratio`` is ``bisection_bandwidth / (floor(N/2) * injection)``: 1.0 means
    "full bisection" (every chip of one half can inject at full rate into the other half).
``injection_bandwidth``
    Per chip (node attribute); ``None`` when chips differ, with ``_min``/``_max`` always.

References
----------
.. [1] B. W. Kernighan and S. Lin, "An efficient heuristic procedure for partitioning
   graphs", Bell System Technical Journal 49(2), 1970.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any

import networkx as nx
import numpy as np

from netsim import __version__
from netsim.core.errors import ConfigError
from netsim.core.options import Parameters
from netsim.core.validate import require_int

__all__ = ["bisection", "closed_form_hops", "hop_stats", "summary", "topo_experiment"]


def _chips(G: nx.Graph) -> list[Any]:
    return [n for n, k in G.nodes(data="kind") if k == "chip"]


# --------------------------------------------------------------------------- hops


def hop_stats(
    G: nx.Graph, *, max_exact_chips: int = 8192, samples: int = 1024, seed: int = 0
) -> dict[str, Any]:
    """Diameter and mean hop count between chips (see the module docstring).

    Returns
    -------
    dict
        ``diameter`` (int, or ``inf`` if some chip cannot reach another), ``avg_hops``,
        ``connected`` (bool: every chip reaches every chip), ``hops_method``
        (``"exact"``/``"sampled"``) and ``hops_sources`` (chips searched from).
    """
    chips = _chips(G)
    n = len(chips)
    if n < 2:
        return {
            "diameter": 0,
            "avg_hops": 0.0,
            "avg_hops_stderr": 0.0,
            "connected": True,
            "hops_method": "exact",
            "hops_sources": n,
        }
    if n > max_exact_chips:
        closed = closed_form_hops(G)
        if closed is not None:
            return closed
    index = {v: i for i, v in enumerate(G.nodes)}
    chip_rows = np.fromiter((index[c] for c in chips), dtype=np.int64, count=n)
    if n > max_exact_chips:
        rng = np.random.default_rng(seed)
        sources = np.sort(rng.choice(chip_rows, size=min(samples, n), replace=False))
        method = "sampled"
    else:
        sources, method = chip_rows, "exact"
    bfs = _BitBFS(G, index, chip_rows, len(sources) if method == "sampled" else 0)
    batch = 64 * 64
    for b0 in range(0, len(sources), batch):
        bfs.search(sources[b0 : b0 + batch], b0)
    pairs = len(sources) * (n - 1)
    connected = bfs.reached == pairs
    return {
        "diameter": bfs.diameter if connected else math.inf,
        "avg_hops": bfs.total / pairs if connected else math.inf,
        "avg_hops_stderr": _stderr(bfs.hops / (n - 1), n) if method == "sampled" else 0.0,
        "connected": connected,
        "hops_method": method,
        "hops_sources": len(sources),
    }


class _BitBFS:
    """Breadth-first search from up to 64*64 sources at once, one bit per source in a
    ``uint64`` frontier per node; accumulates the hop counts to the chips.

    Parameters
    ----------
    G : networkx.Graph
    index : dict
        Node -> row.
    chip_rows : numpy.ndarray
        Rows of the chips (the targets counted).
    n_sources : int
        How many sources to sum the hops of one by one (:attr:`hops`, for a sampled
        standard error); 0: none.
    """

    def __init__(
        self, G: nx.Graph, index: dict[Any, int], chip_rows: np.ndarray, n_sources: int
    ) -> None:
        src = np.fromiter((index[u] for u, _ in G.edges), dtype=np.int64)
        dst = np.fromiter((index[v] for _, v in G.edges), dtype=np.int64)
        src, dst = np.concatenate([src, dst]), np.concatenate([dst, src])
        order = np.argsort(dst, kind="stable")
        self.src, dst = src[order], dst[order]
        self.targets, self.starts = np.unique(dst, return_index=True)
        self.n_nodes = len(index)
        self.chip_rows = chip_rows
        self.hops = np.zeros(n_sources)  # hops summed per source (sampled runs only)
        self.total = 0
        self.reached = 0
        self.diameter = 0

    def search(self, srcs: np.ndarray, first: int) -> None:
        """Search from ``srcs`` (sources ``first .. first + len(srcs) - 1``)."""
        words = (len(srcs) + 63) // 64
        frontier = np.zeros((self.n_nodes, words), dtype=np.uint64)
        bit = np.arange(len(srcs))
        np.bitwise_or.at(
            frontier,
            (srcs, bit // 64),
            np.left_shift(np.uint64(1), (bit % 64).astype(np.uint64)),
        )
        visited = frontier.copy()
        level = 0
        while len(self.src):
            level += 1
            gathered = np.bitwise_or.reduceat(frontier[self.src], self.starts, axis=0)
            nxt = np.zeros_like(frontier)
            nxt[self.targets] = gathered & ~visited[self.targets]
            if not nxt.any():
                break
            visited |= nxt
            count = int(np.bitwise_count(nxt[self.chip_rows]).sum())
            if count and len(self.hops):  # bit i of word w is source 64 w + i
                bits = np.unpackbits(nxt[self.chip_rows].view(np.uint8), axis=1, bitorder="little")
                self.hops[first : first + len(srcs)] += level * bits[:, : len(srcs)].sum(axis=0)
            if count:
                self.total += level * count
                self.reached += count
                self.diameter = level
            frontier = nxt


def _stderr(means: np.ndarray, n: int) -> float:
    """Standard error of the mean of ``means`` (one per sampled source, drawn without
    replacement from ``n``: finite-population correction)."""
    m = len(means)
    if m < 2:
        return math.inf
    return float(np.std(means, ddof=1) / math.sqrt(m) * math.sqrt(max(0.0, 1 - m / n)))


def _grid_wrapped(G: nx.Graph) -> list[bool] | None:
    """Per dimension of a torus or mesh, whether it wraps (from the ``dim``/``wrap`` edge
    attributes); ``None`` if ``G`` is not one of them as generated."""
    family, params = G.graph.get("family"), G.graph.get("params", {})
    dims = params.get("dims")
    if family not in ("torus", "mesh") or dims is None or G.graph.get("chips") != math.prod(dims):
        return None
    if G.number_of_nodes() != math.prod(dims):
        return None  # not only the generator's chips (edited after generation)
    wrapped = [False] * len(dims)
    for _, _, d in G.edges(data=True):
        if d.get("wrap"):
            wrapped[d["dim"]] = True
    return wrapped


def closed_form_hops(G: nx.Graph) -> dict[str, Any] | None:
    """Diameter and mean hops of a generated torus, mesh or k-ary fat-tree in closed form.

    A torus or mesh is the Cartesian product of rings (wrapped dimensions) and paths (open
    ones): the hop count is the sum over dimensions of the coordinate distance, so the
    diameter is ``sum(k // 2 or k - 1)`` and the mean over all ordered pairs (a chip with
    itself included) is ``sum(m_k)`` with ``m_k = sum_j min(j, k - j) / k`` on a ring and
    ``(k^2 - 1) / (3 k)`` on a path; over distinct pairs it is ``N / (N - 1)`` times that.
    A k-ary fat-tree (Al-Fares et al., SIGCOMM 2008) has hosts 2 hops apart under one edge
    switch (``k/2 - 1`` others), 4 within a pod (``(k/2 - 1) k/2``) and 6 across pods.

    Parameters
    ----------
    G : networkx.Graph
        A topology.

    Returns
    -------
    dict or None
        As :func:`hop_stats` with ``hops_method="closed-form"``; ``None`` for other families.
    """
    n = G.graph.get("chips")
    if G.graph.get("family") == "fat_tree" and n == G.graph["params"]["k"] ** 3 // 4:
        h = G.graph["params"]["k"] // 2
        near, pod = h - 1, (h - 1) * h
        far = n - 1 - near - pod
        total = 2 * near + 4 * pod + 6 * far
        diameter = 6 if far else 4 if pod else 2
        return _closed(diameter, total / (n - 1))
    wrapped = _grid_wrapped(G)
    if wrapped is None:
        return None
    dims = G.graph["params"]["dims"]
    n = math.prod(dims)
    diameter = sum(k // 2 if w else k - 1 for k, w in zip(dims, wrapped, strict=True))
    mean = sum(
        sum(min(j, k - j) for j in range(k)) / k if w else (k * k - 1) / (3 * k)
        for k, w in zip(dims, wrapped, strict=True)
    )
    return _closed(diameter, mean * n / (n - 1))


def _closed(diameter: int, avg: float) -> dict[str, Any]:
    return {
        "diameter": diameter,
        "avg_hops": avg,
        "connected": True,
        "avg_hops_stderr": 0.0,
        "hops_method": "closed-form",
        "hops_sources": 0,
    }


# --------------------------------------------------------------------------- bisection


def _cut_of(G: nx.Graph, side: dict[Any, int]) -> tuple[float, int]:
    bw = 0.0
    links = 0
    for u, v, d in G.edges(data=True):
        if side[u] != side[v]:
            bw += float(d["bandwidth"])
            links += int(d.get("count", 1))
    return bw, links


def _exact(G: nx.Graph, chips: list[Any]) -> tuple[float, int]:
    nodes = list(G.nodes)
    V = len(nodes)
    idx = {v: i for i, v in enumerate(nodes)}
    eu = np.array([idx[u] for u, _ in G.edges], dtype=np.int64)
    ev = np.array([idx[v] for _, v in G.edges], dtype=np.int64)
    w = np.array([float(d["bandwidth"]) for _, _, d in G.edges(data=True)])
    cnt = np.array([int(d.get("count", 1)) for _, _, d in G.edges(data=True)])
    chip_idx = np.array([idx[c] for c in chips], dtype=np.int64)
    lo, hi = len(chips) // 2, (len(chips) + 1) // 2
    best = (math.inf, 0)
    shifts = np.arange(V - 1, dtype=np.int64)
    chunk = 1 << 15
    for m0 in range(0, 1 << (V - 1), chunk):
        masks = np.arange(m0, min(m0 + chunk, 1 << (V - 1)), dtype=np.int64)
        side = np.zeros((len(masks), V), dtype=np.int8)
        side[:, : V - 1] = (masks[:, None] >> shifts) & 1
        k = side[:, chip_idx].sum(axis=1)
        ok = (k == lo) | (k == hi)
        if not ok.any():
            continue
        side = side[ok]
        crossing = (side[:, eu] ^ side[:, ev]).astype(np.float64)
        cuts = crossing @ w
        i = int(np.argmin(cuts))
        if cuts[i] < best[0]:
            best = (float(cuts[i]), int(crossing[i] @ cnt))
    return best


def _place_switches(G: nx.Graph, a_chips: set[Any], chips: list[Any]) -> tuple[float, int]:
    """Cut of the best placement of the switches given the chip sides (min s-t cut)."""
    switches = [v for v in G.nodes if G.nodes[v].get("kind") != "chip"]
    if not switches:
        return _cut_of(G, {c: int(c in a_chips) for c in chips})
    H = nx.Graph()
    for u, v, d in G.edges(data=True):
        H.add_edge(u, v, capacity=float(d["bandwidth"]))
    s, t = ("__s__",), ("__t__",)
    for c in chips:
        H.add_edge(s if c in a_chips else t, c)  # no capacity: infinite
    _, (reach, _) = nx.minimum_cut(H, s, t)
    return _cut_of(G, {v: int(v in reach) for v in G.nodes})


def _rebalance(G: nx.Graph, side_a: set[Any], chips: list[Any]) -> set[Any]:
    """Chips of side A after moving the excess chips of the larger side to the other side.

    ``side_a`` holds every node (chips and switches) of side A; the chips with the most
    bandwidth towards the other side move first.
    """
    a = {c for c in chips if c in side_a}
    want = len(chips) // 2
    if len(a) in (want, len(chips) - want):
        return a
    big_is_a = len(a) > want
    excess = max(len(a), len(chips) - len(a)) - (len(chips) - want)
    pool = a if big_is_a else set(chips) - a

    def gain(c: Any) -> float:
        w = [(float(d["bandwidth"]), (m in side_a) == big_is_a) for m, d in G.adj[c].items()]
        return sum(b for b, same in w if not same) - sum(b for b, same in w if same)

    moved = set(sorted(pool, key=lambda c: (-gain(c), c))[:excess])
    return a - moved if big_is_a else a | moved


def _candidates(G: nx.Graph, chips: list[Any]) -> list[set[Any]]:
    half = len(chips) // 2
    out = [set(sorted(chips)[:half])]
    first = G.nodes[chips[0]]
    if isinstance(first.get("coord"), tuple | list):
        for d in range(len(first["coord"])):
            key = sorted(chips, key=lambda c, d=d: (G.nodes[c]["coord"][d], c))
            out.append(set(key[:half]))
    if "pos" in first:
        for axis in (0, 1):
            key = sorted(chips, key=lambda c, axis=axis: (G.nodes[c]["pos"][axis], c))
            out.append(set(key[:half]))
    return out


def bisection(
    G: nx.Graph,
    *,
    seed: int = 0,
    exact_max_nodes: int = 20,
    kl_max_nodes: int = 3000,
    trials: int = 4,
    use_closed_form: bool = True,
) -> dict[str, Any]:
    """Bisection bandwidth of ``G`` (see the module docstring for the methods).

    Returns
    -------
    dict
        ``bisection_bandwidth`` (bytes/s, one direction), ``bisection_links`` (physical
        links across the cut, ``None`` if the closed form does not say) and
        ``bisection_method``.
    """
    if use_closed_form and G.graph.get("bisection_bandwidth") is not None:
        links = G.graph.get("bisection_links")
        return {
            "bisection_bandwidth": float(G.graph["bisection_bandwidth"]),
            "bisection_links": None if links is None else int(links),
            "bisection_method": "closed-form",
        }
    chips = _chips(G)
    if len(chips) < 2:
        return {"bisection_bandwidth": 0.0, "bisection_links": 0, "bisection_method": "exact"}
    if G.number_of_nodes() <= exact_max_nodes:
        bw, links = _exact(G, chips)
        return {"bisection_bandwidth": bw, "bisection_links": links, "bisection_method": "exact"}
    cands = _candidates(G, chips)
    method = "candidate-cuts-upper-bound"
    if G.number_of_nodes() <= kl_max_nodes:
        method = "kernighan-lin-upper-bound"
        for t in range(trials):
            a, _ = nx.community.kernighan_lin_bisection(G, weight="bandwidth", seed=seed + t)
            cands.append(_rebalance(G, set(a), chips))
    best: tuple[float, int] = (math.inf, 0)
    seen: set[frozenset[Any]] = set()
    for a in cands:
        key = frozenset(a)
        if key in seen or frozenset(set(chips) - a) in seen:
            continue
        seen.add(key)
        best = min(best, _place_switches(G, a, chips))
    return {"bisection_bandwidth": best[0], "bisection_links": best[1], "bisection_method": method}


# --------------------------------------------------------------------------- summary


def summary(G: nx.Graph, *, seed: int = 0, max_exact_chips: int = 8192) -> dict[str, Any]:
    """Return the structural figures of ``G`` (keys described in the module docstring).

    Parameters
    ----------
    G : networkx.Graph
        A topology following the :mod:`topologies` attribute contract.
    seed : int
        Seeds the Kernighan-Lin trials and, for large graphs, the sampled sources.
    max_exact_chips : int
        Above this many chips, hop figures are estimated from sampled sources.

    Returns
    -------
    dict
        ``name``, ``family``, ``params``, ``chips``, ``switches``, ``links``,
        ``physical_links``, ``link_types`` (physical links per type), ``diameter``,
        ``avg_hops``, ``connected``, ``hops_method``, ``hops_sources``,
        ``bisection_bandwidth``, ``bisection_links``, ``bisection_method``,
        ``bisection_ratio``, ``injection_bandwidth`` (``None`` if not uniform),
        ``injection_bandwidth_min``/``_max``, ``total_injection_bandwidth``,
        ``total_link_bandwidth`` (sum over edges), ``switch_radix_max`` (physical ports),
        ``reduction_switches``.

    Examples
    --------
    >>> from topologies.registry import build
    >>> s = summary(build("torus:dims=4x4"))
    >>> s["chips"], s["diameter"], s["avg_hops"]
    (16, 4, 2.1333333333333333)
    """
    seed = require_int("seed", seed, min=0)
    chips = _chips(G)
    if not chips:
        raise ConfigError(f"topology: has no chips (nodes with kind='chip'), got {G!r}")
    switches = [v for v, k in G.nodes(data="kind") if k != "chip"]
    inj = [float(G.nodes[c].get("injection_bandwidth", 0.0)) for c in chips]
    types: Counter[str] = Counter()
    for _, _, d in G.edges(data=True):
        types[str(d.get("link", "?"))] += int(d.get("count", 1))
    ports = [sum(int(d.get("count", 1)) for d in G.adj[s].values()) for s in switches]
    out: dict[str, Any] = {
        "name": G.graph.get("name", "custom"),
        "family": G.graph.get("family", "custom"),
        "params": dict(G.graph.get("params", {})),
        "chips": len(chips),
        "switches": len(switches),
        "links": G.number_of_edges(),
        "physical_links": sum(types.values()),
        "link_types": dict(sorted(types.items())),
    }
    out.update(hop_stats(G, max_exact_chips=max_exact_chips, seed=seed))
    out.update(bisection(G, seed=seed))
    half = len(chips) // 2
    inj_min, inj_max = min(inj), max(inj)
    out["bisection_ratio"] = (
        out["bisection_bandwidth"] / (half * inj_min) if half and inj_min > 0 else math.nan
    )
    out.update(
        {
            "injection_bandwidth": inj_min if inj_min == inj_max else None,
            "injection_bandwidth_min": inj_min,
            "injection_bandwidth_max": inj_max,
            "total_injection_bandwidth": float(sum(inj)),
            "total_link_bandwidth": float(sum(d["bandwidth"] for *_, d in G.edges(data=True))),
            "switch_radix_max": max(ports, default=0),
            "reduction_switches": sum(1 for s in switches if G.nodes[s].get("reduction")),
        }
    )
    return out


def topo_experiment(topo: str, seed: int = 0) -> dict[str, Any]:
    """Sweep entry point (kind ``topo``): the :func:`summary` of a spec as one flat record.

    ``params`` is left out (the spec string in ``topo`` carries it) and ``link_types`` is
    flattened into ``links_<type>`` keys.
    """
    from topologies.registry import build

    t0 = time.perf_counter()
    s = summary(build(topo), seed=seed)
    s.pop("params")
    for lt, k in s.pop("link_types").items():
        s[f"links_{lt}"] = k
    s.update(
        kind="topo",
        topo=topo,
        seed=seed,
        wall_s=time.perf_counter() - t0,
        netsim_version=__version__,
    )
    return s


topo_experiment.parameters = Parameters(("topo",), ("seed",))  # type: ignore[attr-defined]
