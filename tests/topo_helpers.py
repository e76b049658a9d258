"""Reference computations shared by the topology tests (test_topo_*.py): chip-to-chip link
distances by breadth-first search, the bisection by brute force over every chip split, and
a two-chip chain of switches."""

from __future__ import annotations

import itertools

import networkx as nx

from topologies.graph import add_chip, add_link, add_switch, finish

__all__ = ["brute_bisection", "chain", "chip_distances", "chips_of", "cut_of", "flow_graph"]


def chips_of(G: nx.Graph) -> list[int]:
    """The chip nodes of ``G``, in node order."""
    return [v for v, k in G.nodes(data="kind") if k == "chip"]


def chip_distances(G: nx.Graph) -> dict[tuple[int, int], int]:
    """Links between every ordered chip pair; chips do not forward (switched network)."""
    chips = chips_of(G)
    out = {}
    for s in chips:
        dist = {s: 0}
        frontier = [s]
        while frontier:
            nxt = []
            for u in frontier:
                if u != s and G.nodes[u]["kind"] == "chip":
                    continue
                for v in G.adj[u]:
                    if v not in dist:
                        dist[v] = dist[u] + 1
                        nxt.append(v)
            frontier = nxt
        out.update({(s, t): dist[t] for t in chips if t != s})
    return out


def flow_graph(G: nx.Graph) -> nx.DiGraph:
    """``G`` as a flow network: each link one arc per direction with its bandwidth as capacity."""
    H = nx.DiGraph()
    for u, v, d in G.edges(data=True):
        H.add_edge(u, v, capacity=d["bandwidth"])
        H.add_edge(v, u, capacity=d["bandwidth"])
    return H


def cut_of(H: nx.DiGraph, chips: list[int], side: set[int]) -> float:
    """Min cut separating chip set ``side`` from the other chips (switches placed freely)."""
    K = H.copy()
    for c in chips:
        if c in side:
            K.add_edge("s", c)  # no capacity attribute: infinite
        else:
            K.add_edge(c, "t")
    return nx.minimum_cut_value(K, "s", "t")


def brute_bisection(G: nx.Graph) -> float:
    """Minimum over every floor(N/2) | ceil(N/2) split of the chips of the min cut with the
    switches placed optimally (a min s-t cut per split)."""
    chips = chips_of(G)
    H = flow_graph(G)
    return min(
        cut_of(H, chips, set(side)) for side in itertools.combinations(chips, len(chips) // 2)
    )


def chain(bws, lats, switch_lat=0.0, inj=None):
    """chip 0 - switches - chip 1: len(bws) links; interior nodes are switches (ib links)."""
    G = nx.Graph()
    n = len(bws)
    add_chip(G, 0, (0, 0))
    add_chip(G, 1, (n, 0))
    nodes = [0] + [2 + i for i in range(n - 1)] + [1]
    for i in range(n - 1):
        add_switch(G, 2 + i, (i + 1, 0), latency=switch_lat)
    for i, (bw, lat) in enumerate(zip(bws, lats, strict=True)):
        add_link(G, nodes[i], nodes[i + 1], link="ib", bandwidth=bw, latency=lat)
    G = finish(G, "chain", {})
    if inj is not None:
        for c in (0, 1):
            G.nodes[c]["injection_bandwidth"] = inj
    return G
