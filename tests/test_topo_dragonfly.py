"""Tests of topologies.dragonfly against the closed forms of Kim et al. (ISCA 2008)."""

from __future__ import annotations

from collections import Counter

import networkx as nx
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from netsim.core.errors import ConfigError
from netsim.core.linktypes import LINK_TYPES
from topologies.dragonfly import GLOBAL_EXTRA_LATENCY, PRESETS, dragonfly, global_links
from topologies.graph import LinkSpec
from topologies.registry import build


def role_links(G: nx.Graph, role: str) -> int:
    return sum(d["count"] for *_, d in G.edges(data=True) if d["role"] == role)


def group_pairs(G: nx.Graph) -> Counter:
    pairs: Counter[tuple[int, int]] = Counter()
    for u, v, d in G.edges(data=True):
        if d["role"] == "global":
            gu, gv = G.nodes[u]["group"], G.nodes[v]["group"]
            pairs[(min(gu, gv), max(gu, gv))] += d["count"]
    return pairs


def chip_diameter(G: nx.Graph) -> int:
    chips = [v for v, k in G.nodes(data="kind") if k == "chip"]
    return max(
        max(dist[c] for c in chips)
        for dist in (nx.single_source_shortest_path_length(G, s) for s in chips)
    )


@settings(max_examples=40, deadline=None)
@given(
    a=st.integers(1, 4),
    p=st.integers(1, 2),
    h=st.integers(1, 3),
    g_frac=st.floats(0.0, 1.0),
    arrangement=st.sampled_from(["consecutive", "palm-tree"]),
)
def test_structure_matches_closed_forms(a, p, h, g_frac, arrangement):
    g = 2 + round(g_frac * (a * h - 1))
    assume(g * a * h % 2 == 0)
    G = dragonfly(a, p, h, g, arrangement=arrangement)
    n = a * p * g
    assert G.graph["chips"] == n and G.number_of_nodes() == n + a * g
    assert nx.is_connected(G)
    assert role_links(G, "terminal") == n
    assert role_links(G, "local") == g * a * (a - 1) // 2
    assert role_links(G, "global") == g * a * h // 2
    # Every router uses p + (a - 1) + h ports, exactly h of them global.
    for s in range(n, n + a * g):
        ports = Counter()
        for d in G.adj[s].values():
            ports[d["role"]] += d["count"]
        assert ports == Counter(terminal=p, local=a - 1, **{"global": h})
    # Every pair of groups shares floor(ah/(g-1)) or one more global links.
    base = a * h // (g - 1)
    pairs = group_pairs(G)
    assert len(pairs) == g * (g - 1) // 2
    assert set(pairs.values()) <= {base, base + 1}
    # Rank order: group-major, router, port.
    for c in range(n):
        data = G.nodes[c]
        assert c == (data["group"] * a + data["router"]) * p + data["port"]
        (sw,) = G.adj[c]
        assert (G.nodes[sw]["group"], G.nodes[sw]["router"]) == (data["group"], data["router"])


@pytest.mark.parametrize(("a", "p", "h"), [(4, 2, 2), (2, 1, 1), (3, 1, 2), (1, 2, 3)])
def test_balanced_has_one_global_link_per_group_pair_and_diameter(a, p, h):
    G = dragonfly(a, p, h)
    g = a * h + 1
    assert G.graph["params"]["g"] == g
    assert group_pairs(G) == Counter({(i, j): 1 for i in range(g) for j in range(i + 1, g)})
    # terminal, local, global, local, terminal (no local hops when a = 1).
    assert G.graph["diameter"] == (5 if a >= 2 else 3) == chip_diameter(G)


def test_consecutive_arrangement_formula():
    # Balanced: router r, port j of group i -> group (i + 1 + r*h + j) mod g.
    a, h = 4, 2
    g = a * h + 1
    reached: dict[tuple[int, int], set[int]] = {}
    for i, r, j, r2 in global_links(a, h, g, "consecutive"):
        reached.setdefault((i, r), set()).add(j)
        reached.setdefault((j, r2), set()).add(i)
    for (i, r), groups in reached.items():
        assert groups == {(i + 1 + r * h + jj) % g for jj in range(h)}


def test_palm_tree_arrangement_formula():
    # Balanced: router r port j of group i -> group (i - 1 - r*h - j) mod g, router a-1-r.
    a, h = 4, 2
    g = a * h + 1
    links = global_links(a, h, g, "palm-tree")
    assert len(links) == g * (g - 1) // 2
    for i, r, j, r2 in links:
        assert r2 == a - 1 - r
        assert (i - j - 1) % g // h == r


def test_unbalanced_aggregates_parallel_links():
    # a=2, h=2, g=2: all four global ports of a group lead to the other group.
    G = dragonfly(2, 1, 2, 2)
    assert group_pairs(G) == Counter({(0, 1): 4})
    counts = sorted(d["count"] for *_, d in G.edges(data=True) if d["role"] == "global")
    assert sum(counts) == 4 and max(counts) >= 2


def test_link_parameters_and_defaults():
    ib = LINK_TYPES["ib"]
    G = dragonfly(2, 2, 1)
    lat = {d["role"]: d["latency"] for *_, d in G.edges(data=True)}
    assert lat == {
        "terminal": ib.latency,
        "local": ib.latency,
        "global": ib.latency + GLOBAL_EXTRA_LATENCY,
    }
    H = dragonfly(
        2,
        2,
        1,
        terminal=LinkSpec(bandwidth=4e9),
        local=LinkSpec(bandwidth=2e9),
        global_=LinkSpec(bandwidth=1e9, latency=1e-6),
        switch_latency=5e-8,
    )
    bws = {(d["role"], d["bandwidth"] / d["count"]) for *_, d in H.edges(data=True)}
    assert bws == {("terminal", 4e9), ("local", 2e9), ("global", 1e9)}
    assert {d["injection_bandwidth"] for _, d in H.nodes(data=True) if d["kind"] == "chip"} == {4e9}
    assert {d["latency"] for _, d in H.nodes(data=True) if d["kind"] == "switch"} == {5e-8}
    assert max(d for *_, d in H.edges(data="latency")) == 1e-6


def test_presets():
    G = build("dragonfly-72")
    # Kim et al. (2008) example: p = h = 2, a = 4, 9 groups, 72 terminals.
    assert (G.graph["chips"], G.graph["params"]["g"]) == (72, 9)
    S = build("slingshot-8g")
    # Rosetta: 64 ports = 16 endpoint + 31 local + 17 global (De Sensi et al., SC20).
    radix = {sum(d["count"] for d in S.adj[s].values()) for s in range(4096, 4096 + 256)}
    assert radix == {64}
    assert set(group_pairs(S).values()) == {77, 78}
    for entry in PRESETS.values():
        assert entry["func"] == "dragonfly" and entry["source"] and entry["description"]


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda: dragonfly(4, 2, 2, 10), r"^g: must be an integer in \[2, 9\], got 10$"),
        (lambda: dragonfly(3, 1, 1, 3), r"^g: a\*h\*g must be even .*a=3, h=1, g=3$"),
        (lambda: dragonfly(0, 1, 1), r"^a: must be an integer >= 1, got 0$"),
        (lambda: dragonfly(2, 1, 1, arrangement="x"), r"^arrangement: must be one of"),
        (lambda: dragonfly(2, 1, 1, reduction=1), r"^reduction: must be true or false"),
        (lambda: dragonfly(2, 1, 1, global_=LinkSpec(bandwidth=0)), r"^global_bandwidth: must be"),
        (lambda: dragonfly(64, 512, 64), r"^a, p, g: at most \d+ chips"),
    ],
)
def test_errors_are_one_line(call, pattern):
    with pytest.raises(ConfigError, match=pattern) as exc:
        call()
    assert "\n" not in str(exc.value)
