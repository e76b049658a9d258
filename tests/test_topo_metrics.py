"""Tests of topologies.metrics against closed forms, brute force and networkx."""

from __future__ import annotations

import itertools
import math

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.core.errors import ConfigError
from topologies.graph import add_chip, add_link, add_switch, finish
from topologies.metrics import bisection, closed_form_hops, hop_stats, summary, topo_experiment
from topologies.registry import build

BW = 50e9  # the ici link type's default bandwidth (netsim.core.linktypes)


def ring(n: int) -> nx.Graph:
    G = nx.Graph()
    for i in range(n):
        add_chip(G, i, (math.cos(2 * math.pi * i / n), math.sin(2 * math.pi * i / n)))
    for i in range(n):
        add_link(G, i, (i + 1) % n, link="ici")
    return finish(G, "ring", {"n": n})


def star(n: int, count: int = 1) -> nx.Graph:
    G = nx.Graph()
    for i in range(n):
        add_chip(G, i, (i, 0))
    add_switch(G, n, (n / 2, 1), latency=1e-7)
    for i in range(n):
        add_link(G, i, n, link="ib", count=count)
    return finish(G, "star", {"n": n})


def from_nx(H: nx.Graph, chips: set[int], seed: int = 0) -> nx.Graph:
    """A topology from any graph: nodes in ``chips`` are chips, the rest switches."""
    G = nx.Graph()
    for v in H:
        if v in chips:
            add_chip(G, v, (v, 0))
        else:
            add_switch(G, v, (v, 1), latency=0.0)
    for i, (u, v) in enumerate(H.edges):
        add_link(G, u, v, link="ib", bandwidth=1e9 * (1 + (i * 7 + seed) % 3))
    return finish(G, "custom", {})


def brute_bisection(G: nx.Graph) -> float:
    """Minimum over every assignment of every node with the chips split in halves."""
    nodes = list(G)
    chips = [v for v in nodes if G.nodes[v]["kind"] == "chip"]
    best = math.inf
    for sides in itertools.product((0, 1), repeat=len(nodes)):
        side = dict(zip(nodes, sides, strict=True))
        a = sum(side[c] for c in chips)
        if a not in (len(chips) // 2, (len(chips) + 1) // 2):
            continue
        cut = sum(d["bandwidth"] for u, v, d in G.edges(data=True) if side[u] != side[v])
        best = min(best, cut)
    return best


# --------------------------------------------------------------------------- hops


@given(st.integers(min_value=3, max_value=40))
def test_ring_hops_closed_form(n):
    # On a ring of n the distances from one node sum to floor(n^2 / 4).
    s = hop_stats(ring(n))
    assert s["diameter"] == n // 2
    assert s["avg_hops"] == pytest.approx((n * n // 4) / (n - 1))
    assert s["connected"] and s["hops_method"] == "exact"


def test_star_hops():
    s = hop_stats(star(7))
    assert (s["diameter"], s["avg_hops"]) == (2, 2.0)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(min_value=4, max_value=30),
    st.floats(min_value=0.1, max_value=0.6),
    st.integers(min_value=0, max_value=10**6),
)
def test_hops_match_networkx_all_pairs(n, p, seed):
    H = nx.gnp_random_graph(n, p, seed=seed)
    chips = set(range(0, n, 2)) | {1}
    G = from_nx(H, chips)
    s = hop_stats(G)
    dist = dict(nx.all_pairs_shortest_path_length(H))
    pairs = [(a, b) for a in chips for b in chips if a != b]
    if all(b in dist[a] for a, b in pairs):
        d = [dist[a][b] for a, b in pairs]
        assert s["connected"]
        assert s["diameter"] == max(d)
        assert s["avg_hops"] == pytest.approx(sum(d) / len(d))
    else:
        assert not s["connected"]
        assert s["diameter"] == math.inf


def test_many_sources_span_several_bitset_words():
    # 200 chips need four 64-bit words per node.
    s = hop_stats(ring(200))
    assert s["diameter"] == 100
    assert s["avg_hops"] == pytest.approx(10000 / 199)


def test_sampled_hops_on_large_graphs():
    G = ring(101)
    exact = hop_stats(G)
    s = hop_stats(G, max_exact_chips=50, samples=20, seed=3)
    assert s["hops_method"] == "sampled" and s["hops_sources"] == 20
    # Every chip of a ring sees the same distances: sampling is exact here.
    assert s["avg_hops"] == pytest.approx(exact["avg_hops"])
    assert s["diameter"] == exact["diameter"] == 50


# --------------------------------------------------------------------------- bisection


@given(st.integers(min_value=3, max_value=16))
def test_ring_bisection_is_two_links(n):
    b = bisection(ring(n))
    assert b["bisection_method"] == "exact"
    assert b["bisection_bandwidth"] == 2 * BW
    assert b["bisection_links"] == 2


@pytest.mark.parametrize(("n", "count"), [(5, 1), (8, 2), (9, 3)])
def test_star_bisection_counts_parallel_links(n, count):
    # The switch sides with the larger half; floor(n/2) edges of `count` links are cut.
    b = bisection(star(n, count))
    assert b["bisection_bandwidth"] == (n // 2) * count * BW
    assert b["bisection_links"] == (n // 2) * count


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=4, max_value=11), st.integers(min_value=0, max_value=10**6))
def test_exact_bisection_matches_brute_force(n, seed):
    H = nx.gnp_random_graph(n, 0.5, seed=seed)
    chips = set(range(0, n, 2)) | {1}
    G = from_nx(H, chips, seed)
    assert bisection(G)["bisection_bandwidth"] == pytest.approx(brute_bisection(G))


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=6, max_value=11), st.integers(min_value=0, max_value=10**6))
def test_heuristic_is_an_upper_bound(n, seed):
    H = nx.connected_watts_strogatz_graph(n, 4, 0.3, seed=seed)
    G = from_nx(H, set(range(0, n, 2)) | {1}, seed)
    exact = bisection(G)["bisection_bandwidth"]
    heur = bisection(G, exact_max_nodes=0, seed=seed)
    assert heur["bisection_method"] == "kernighan-lin-upper-bound"
    assert heur["bisection_bandwidth"] >= exact - 1e-6


def test_heuristic_finds_the_torus_cut():
    # A k x k torus (k even) has bisection 2k links (two cut planes because of wraparound).
    G = build("torus:dims=8x8")
    b = bisection(G, use_closed_form=False, exact_max_nodes=0)
    assert b["bisection_links"] == 16
    assert b["bisection_bandwidth"] == pytest.approx(16 * G.edges[0, 1]["bandwidth"])
    big = bisection(G, use_closed_form=False, exact_max_nodes=0, kl_max_nodes=0)
    assert big["bisection_method"] == "candidate-cuts-upper-bound"
    assert big["bisection_links"] == 16


def test_closed_form_is_preferred():
    G = ring(6)
    G.graph["bisection_bandwidth"] = 123.0
    G.graph["bisection_links"] = 7
    assert bisection(G) == {
        "bisection_bandwidth": 123.0,
        "bisection_links": 7,
        "bisection_method": "closed-form",
    }


# --------------------------------------------------------------------------- families


@pytest.mark.parametrize("k", [4, 6])
def test_torus_summary_closed_forms(k):
    # k-ary 2-cube, k even: mean distance per dimension over all N^2 ordered pairs
    # (including a chip with itself) is k/4, so over distinct pairs N*2*(k/4)/(N-1).
    G = build(f"torus:dims={k}x{k}")
    s = summary(G)
    n = k * k
    assert s["chips"] == n and s["switches"] == 0
    assert s["links"] == 2 * n
    assert s["diameter"] == k
    assert s["avg_hops"] == pytest.approx(n * 2 * (k / 4) / (n - 1))
    bw = G.edges[0, 1]["bandwidth"]
    assert s["bisection_bandwidth"] == pytest.approx(2 * k * bw)
    assert s["injection_bandwidth"] == s["injection_bandwidth_min"] > 0


def test_mesh_summary():
    # 4 x 4 mesh: diameter 2(k-1); mean distance per dimension over all pairs (k^2-1)/(3k).
    s = summary(build("mesh:dims=4x4"))
    assert s["diameter"] == 6
    assert s["avg_hops"] == pytest.approx(16 * 2 * (15 / 12) / 15)
    assert s["links"] == 24


def test_fat_tree_summary():
    # k-ary fat tree (Al-Fares et al., SIGCOMM 2008): k^3/4 hosts, 5k^2/4 switches,
    # 3k^3/4 links, diameter 6 (host-edge-aggregation-core-aggregation-edge-host),
    # full bisection.
    k = 4
    s = summary(build(f"fat_tree:k={k}"))
    assert s["chips"] == k**3 // 4
    assert s["switches"] == 5 * k * k // 4
    assert s["physical_links"] == 3 * k**3 // 4
    assert s["diameter"] == 6
    # From one host: k/2-1 hosts on its edge switch at 2 links, (k/2-1)k/2 in its pod at 4,
    # (k-1)(k/2)^2 in other pods at 6.
    h = k // 2
    hops = 2 * (h - 1) + 4 * (h - 1) * h + 6 * (k - 1) * h * h
    assert s["avg_hops"] == pytest.approx(hops / (k**3 // 4 - 1))
    assert s["switch_radix_max"] == k
    assert s["bisection_ratio"] == pytest.approx(1.0)


def test_nvswitch_summary():
    s = summary(build("nvswitch:gpus=8"))
    assert s["chips"] == 8
    assert s["diameter"] == 2 and s["avg_hops"] == 2.0
    assert s["switches"] >= 1


def test_summary_errors_and_json_ready_keys():
    G = nx.Graph()
    add_switch(G, 0, (0, 0), latency=0.0)
    with pytest.raises(ConfigError, match="no chips"):
        summary(G)
    with pytest.raises(ConfigError, match="seed"):
        summary(ring(4), seed=-1)


def test_topo_experiment_is_flat():
    r = topo_experiment("torus:dims=4x4", seed=1)
    assert r["kind"] == "topo" and r["topo"] == "torus:dims=4x4" and r["seed"] == 1
    assert "netsim_version" in r
    assert all(not isinstance(v, dict | list) for v in r.values())
    assert r["links_ici"] == r["physical_links"] == 32


@pytest.mark.parametrize(
    "spec",
    ["torus:dims=4x3", "torus:dims=5", "torus:dims=2x3x4", "torus:dims=4x5x3,open_dims=1",
     "mesh:dims=4x3", "mesh:dims=2x2x3", "mesh:dims=7", "fat-tree:k=2", "fat-tree:k=4",
     "fat-tree:k=6"],
)  # fmt: skip
def test_closed_form_hops_equal_the_exact_search(spec):
    G = build(spec)
    closed, exact = closed_form_hops(G), hop_stats(G)
    assert exact["hops_method"] == "exact" and closed["hops_method"] == "closed-form"
    assert closed["diameter"] == exact["diameter"]
    assert closed["avg_hops"] == pytest.approx(exact["avg_hops"], rel=1e-12)
    # Above the exact limit the closed form replaces the search.
    assert hop_stats(G, max_exact_chips=1) == closed


def test_no_closed_form_for_other_families_or_edited_grids():
    assert closed_form_hops(build("dragonfly:a=2,p=1,h=1")) is None
    G = build("torus:dims=4x4")
    G.add_node(99, kind="chip")  # no longer the generated torus
    assert closed_form_hops(G) is None


def test_sampled_mean_hops_states_its_standard_error():
    # Chips of a dragonfly see different mean hop counts (a chip's router has its own
    # global links). The stated standard error matches the one of 16 sources drawn from
    # the 72 (networkx distances from every chip: population sd / 4, finite-population
    # corrected) to within the spread of a 16-sample sd, and the estimate lies within 4 of
    # them of the exact mean.
    G = build("dragonfly:a=4,p=2,h=2")
    chips = [v for v, k in G.nodes(data="kind") if k == "chip"]
    n = len(chips)
    per_chip = []
    for c in chips:
        d = nx.single_source_shortest_path_length(G, c)
        per_chip.append(sum(d[x] for x in chips if x != c) / (n - 1))
    mean = sum(per_chip) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in per_chip) / (n - 1))
    expected = sd / 4 * math.sqrt(1 - 16 / n)
    exact = hop_stats(G)
    assert exact["avg_hops"] == pytest.approx(mean) and exact["avg_hops_stderr"] == 0.0
    for seed in range(3):
        s = hop_stats(G, max_exact_chips=10, samples=16, seed=seed)
        assert s["hops_method"] == "sampled"
        assert expected / 1.5 <= s["avg_hops_stderr"] <= 1.5 * expected
        assert abs(s["avg_hops"] - mean) <= 4 * s["avg_hops_stderr"]
