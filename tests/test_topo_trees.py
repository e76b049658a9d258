"""Tests of topologies.trees: the k-ary fat-tree (Al-Fares et al., SIGCOMM 2008) and the
generic tapered tree, against closed forms."""

from __future__ import annotations

import math
import random
from collections import Counter

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from topo_helpers import brute_bisection, chip_distances, chips_of, cut_of, flow_graph

from netsim.core.errors import ConfigError
from netsim.core.linktypes import LINK_TYPES
from topologies.trees import MAX_TREE_CHIPS, PRESETS, fat_tree, tree

IB = LINK_TYPES["ib"].bandwidth


# --------------------------------------------------------------------------- fat-tree


@pytest.mark.parametrize("k", [2, 4, 6, 8])
def test_fat_tree_counts_and_degrees(k):
    # Al-Fares et al. 2008: k^3/4 hosts, k^2/2 edge + k^2/2 aggregation + k^2/4 core
    # switches, every switch uses its k ports; 3 k^3/4 links.
    G = fat_tree(k)
    h = k // 2
    hosts = k**3 // 4
    assert G.graph["chips"] == hosts and chips_of(G) == list(range(hosts))
    assert G.number_of_nodes() - hosts == 5 * k * k // 4
    assert G.number_of_edges() == 3 * k**3 // 4
    assert Counter(dict(G.degree(range(hosts))).values()) == {1: hosts}
    switches = range(hosts, G.number_of_nodes())
    assert Counter(dict(G.degree(switches)).values()) == {k: 5 * k * k // 4}
    levels = Counter(G.nodes[s]["level"] for s in switches)
    assert levels == {0: k * h, 1: k * h, 2: h * h}
    roles = Counter((G.nodes[s]["role"], G.nodes[s]["level"]) for s in switches)
    assert roles == {("edge", 0): k * h, ("aggregation", 1): k * h, ("core", 2): h * h}
    assert nx.is_connected(G)


def test_fat_tree_rank_order():
    k, h = 6, 3
    G = fat_tree(k)
    for c in range(k**3 // 4):
        (edge,) = G.adj[c]
        pod, rest = divmod(c, h * h)
        assert G.nodes[c]["pod"] == G.nodes[edge]["pod"] == pod
        assert G.nodes[c]["edge"] == G.nodes[edge]["index"] == rest // h
        assert G.nodes[edge]["role"] == "edge"
    # Aggregation switch a of every pod reaches core switches a*h .. a*h + h - 1.
    for s, d in G.nodes(data=True):
        if d.get("role") == "aggregation":
            cores = sorted(G.nodes[v]["index"] for v in G.adj[s] if G.nodes[v]["level"] == 2)
            assert cores == list(range(d["index"] * h, d["index"] * h + h))


@pytest.mark.parametrize("k", [2, 4, 6])
def test_fat_tree_distances(k):
    # From a host: k/2-1 hosts at 2 links, (k/2-1)k/2 at 4, (k-1)(k/2)^2 at 6; diameter 6.
    G = fat_tree(k)
    h = k // 2
    d = chip_distances(G)
    assert max(d.values()) == 6
    hist = Counter(d[0, t] for t in range(1, k**3 // 4))
    expect = Counter({2: h - 1, 4: (h - 1) * h, 6: (k - 1) * h * h})
    assert hist == +expect


def test_fat_tree_bisection_k2_brute_force():
    G = fat_tree(2)
    assert G.graph["bisection_bandwidth"] == pytest.approx(IB)
    assert brute_bisection(G) == pytest.approx(IB)


def test_fat_tree_bisection_k4():
    # Full bisection: k^3/8 = 8 links. The split by pods attains it, and no sampled
    # balanced split of the hosts does better (exhaustive search is 12870 min cuts).
    G = fat_tree(4)
    assert G.graph["bisection_bandwidth"] == pytest.approx(8 * IB)
    assert G.graph["bisection_links"] == 8
    H = flow_graph(G)
    chips = chips_of(G)
    assert cut_of(H, chips, set(range(8))) == pytest.approx(8 * IB)
    rng = random.Random(1)
    for _ in range(60):
        side = set(rng.sample(chips, 8))
        assert cut_of(H, chips, side) >= 8 * IB * (1 - 1e-12)


def test_fat_tree_options():
    G = fat_tree(
        4, link="ethernet", bandwidth=1e9, latency=2e-9, switch_latency=3e-9, reduction=True
    )
    assert {
        (d["link"], d["bandwidth"], d["latency"], d["count"]) for *_, d in G.edges(data=True)
    } == {("ethernet", 1e9, 2e-9, 1)}
    sw = [d for _, d in G.nodes(data=True) if d["kind"] == "switch"]
    assert all(d["latency"] == 3e-9 and d["reduction"] for d in sw)
    assert all(G.nodes[c]["injection_bandwidth"] == 1e9 for c in range(16))
    assert G.graph["bisection_bandwidth"] == pytest.approx(8e9)


def test_fat_tree_preset():
    entry = PRESETS["fat-tree-k4"]
    assert entry["func"] == "fat_tree" and entry["source"] and entry["description"]
    assert fat_tree(**entry["params"]).graph["chips"] == 16


# --------------------------------------------------------------------------- tree


@pytest.mark.parametrize(("depth", "radix"), [(1, 2), (1, 5), (2, 3), (3, 2), (2, 4)])
def test_tree_counts_and_distances(depth, radix):
    G = tree(depth, radix)
    n = radix**depth
    switches = (n - 1) // (radix - 1)
    assert G.graph["chips"] == n and chips_of(G) == list(range(n))
    assert G.number_of_nodes() == n + switches
    assert G.number_of_edges() == n + switches - 1  # a tree
    # taper 1: each level-l uplink bundles radix^(l+1) links, so every level carries n.
    assert sum(d["count"] for *_, d in G.edges(data=True)) == n * depth
    levels = Counter(d["level"] for _, d in G.nodes(data=True) if d["kind"] == "switch")
    assert levels == {lvl: radix ** (depth - 1 - lvl) for lvl in range(depth)}
    d = chip_distances(G)
    assert max(d.values()) == 2 * depth
    # Chips under the same leaf switch are 2 links apart.
    assert all(d[0, c] == 2 for c in range(1, radix))
    for c in range(n):
        (leaf,) = G.adj[c]
        assert G.nodes[leaf]["level"] == 0 and G.nodes[leaf]["index"] == c // radix


def test_tree_taper_bandwidths():
    # B_l = b * (radix/taper)^(l+1) on the uplink of a level-l switch.
    G = tree(3, 4, taper=2, bandwidth=10e9)
    for u, v, d in G.edges(data=True):
        lo = min(u, v, key=lambda x: G.nodes[x].get("level", -1))
        lvl = G.nodes[lo].get("level", -1)
        assert d["bandwidth"] == pytest.approx(10e9 * 2 ** (lvl + 1))
        assert d["count"] == 2 ** (lvl + 1)


@pytest.mark.parametrize(
    ("depth", "radix", "taper"),
    [(1, 3, 1.0), (1, 4, 3.0), (2, 2, 1.0), (2, 2, 3.0), (3, 2, 2.0), (2, 3, 1.0), (2, 4, 1.5)],
)
def test_tree_bisection_matches_brute_force(depth, radix, taper):
    G = tree(depth, radix, taper=taper)
    n = radix**depth
    expect = (n // 2) * IB / taper ** (depth - 1 if radix % 2 == 0 else 0)
    assert G.graph["bisection_bandwidth"] == pytest.approx(expect)
    if n <= 9:
        assert brute_bisection(G) == pytest.approx(expect)
    else:  # 16 chips: the closed-form cut is attained and sampled splits do no better
        H = flow_graph(G)
        chips = chips_of(G)
        assert cut_of(H, chips, set(range(n // 2))) == pytest.approx(expect)
        rng = random.Random(2)
        for _ in range(40):
            assert cut_of(H, chips, set(rng.sample(chips, n // 2))) >= expect * (1 - 1e-12)


def test_tree_odd_radix_tapered_has_no_closed_form():
    G = tree(2, 3, taper=2)
    assert "bisection_bandwidth" not in G.graph
    # The brute force optimum lies between the lower bound and the digit cut:
    # 4 chips = one subtree (3 chips, 3b/2) + one chip link (b).
    assert brute_bisection(G) == pytest.approx(1.5 * IB + IB)


@settings(max_examples=30, deadline=None)
@given(
    depth=st.integers(1, 3),
    radix=st.integers(2, 4),
    taper=st.sampled_from([1.0, 1.5, 2.0, 3.0, 4.0]),
)
def test_tree_conservation(depth, radix, taper):
    G = tree(depth, radix, taper=taper)
    assert nx.is_connected(G) and nx.is_tree(G)
    # Every non-top switch: uplink bandwidth * taper == sum of its downlinks.
    for s, d in G.nodes(data=True):
        if d["kind"] != "switch" or d["level"] == depth - 1:
            continue
        up = [v for v in G.adj[s] if G.nodes[v].get("level", -1) > d["level"]]
        down = [v for v in G.adj[s] if G.nodes[v].get("level", -1) < d["level"]]
        assert len(up) == 1 and len(down) == radix
        total_down = sum(G.edges[s, v]["bandwidth"] for v in down)
        assert G.edges[s, up[0]]["bandwidth"] * taper == pytest.approx(total_down)
    if "bisection_bandwidth" in G.graph:
        b = G.nodes[0]["injection_bandwidth"]
        n = radix**depth
        assert G.graph["bisection_bandwidth"] <= (n // 2) * b * (1 + 1e-12)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("func", "args", "kwargs", "pattern"),
    [
        (fat_tree, (3,), {}, r"^k: must be an even integer >= 2, got 3$"),
        (fat_tree, (0,), {}, r"^k: must be an even integer >= 2, got 0$"),
        (fat_tree, (4,), {"link": "x"}, r"^link: must be one of .*ib.*, got 'x'$"),
        (fat_tree, (4,), {"bandwidth": -1}, r"^bandwidth: must be a finite number > 0, got -1$"),
        (fat_tree, (4,), {"reduction": 1}, r"^reduction: must be true or false, got 1$"),
        (tree, (0, 2), {}, r"^depth: must be an integer >= 1, got 0$"),
        (tree, (2, 1), {}, r"^radix: must be an integer >= 2, got 1$"),
        (tree, (2, 2), {"taper": 0.5}, r"^taper: must be a finite number >= 1, got 0.5$"),
        (tree, (2, 2), {"latency": -1}, r"^latency: must be a finite number >= 0, got -1$"),
        (tree, (17, 2), {}, rf"^depth, radix: radix\*\*depth chips must be <= {MAX_TREE_CHIPS}"),
        (fat_tree, (66,), {}, rf"^k: at most {MAX_TREE_CHIPS} chips .*k=66"),
    ],
)
def test_errors_name_the_parameter(func, args, kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern) as exc:
        func(*args, **kwargs)
    assert "\n" not in str(exc.value)


def test_tree_size_guard():
    assert math.log2(MAX_TREE_CHIPS) == 16  # topologies.limits.MAX_CHIPS
    with pytest.raises(ConfigError, match="radix=4, depth=9"):
        tree(9, 4)  # 4^9 = 2^18 chips
