"""Tests of topologies.torus: tori and meshes against closed forms."""

from __future__ import annotations

import math
from collections import Counter

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.core.errors import ConfigError
from topologies.limits import MAX_GRID_CHIPS
from topologies.metrics import bisection, hop_stats
from topologies.registry import build, spec_string
from topologies.torus import PRESETS, mesh, parse_dims, torus


def physical_links(G: nx.Graph) -> int:
    return sum(c for *_, c in G.edges(data="count"))


def physical_degree(G: nx.Graph, v: int) -> int:
    return sum(d["count"] for d in G.adj[v].values())


def chip_diameter(G: nx.Graph) -> int:
    return max(max(d.values()) for _, d in nx.all_pairs_shortest_path_length(G))


def ring_distance(a: int, b: int, k: int, wrapped: bool) -> int:
    d = abs(a - b)
    return min(d, k - d) if wrapped else d


# --------------------------------------------------------------------------- structure


@settings(max_examples=40, deadline=None)
@given(
    dims=st.lists(st.integers(min_value=2, max_value=5), min_size=1, max_size=3),
    wrap=st.booleans(),
)
def test_structure_matches_closed_forms(dims, wrap):
    G = torus(dims, wrap=wrap)
    n = math.prod(dims)
    assert G.graph["chips"] == G.number_of_nodes() == n
    assert nx.is_connected(G)
    # Physical links: N per wrapped dimension, N (k-1)/k per open one.
    expect = sum(n if wrap else n * (k - 1) // k for k in dims)
    assert physical_links(G) == expect
    # Rank order: row-major, last dimension fastest.
    for r in range(n):
        c = G.nodes[r]["coord"]
        assert r == sum(c[d] * math.prod(dims[d + 1 :]) for d in range(len(dims)))
    # Every edge joins neighbours along its `dim`; `wrap` marks the k-1 -> 0 link (k > 2).
    for u, v, d in G.edges(data=True):
        cu, cv = G.nodes[u]["coord"], G.nodes[v]["coord"]
        diff = [i for i in range(len(dims)) if cu[i] != cv[i]]
        assert diff == [d["dim"]]
        k = dims[d["dim"]]
        step = abs(cu[d["dim"]] - cv[d["dim"]])
        assert d["wrap"] == (wrap and k > 2 and step == k - 1)
        assert d["count"] == (2 if wrap and k == 2 else 1)
    # Diameter and the all-pairs distance in links, against the closed forms.
    diam = sum(k // 2 if wrap else k - 1 for k in dims)
    assert G.graph["diameter"] == diam == chip_diameter(G)
    dist = dict(nx.all_pairs_shortest_path_length(G))
    for u in range(0, n, max(1, n // 7)):
        for v in range(n):
            cu, cv = G.nodes[u]["coord"], G.nodes[v]["coord"]
            want = sum(ring_distance(a, b, k, wrap) for a, b, k in zip(cu, cv, dims, strict=True))
            assert dist[u][v] == want


@pytest.mark.parametrize("dims", [(4, 4), (3, 5), (2, 3, 4)])
def test_mesh_degree_histogram(dims):
    # A chip has 1 link per dimension where it sits on the boundary, else 2: the histogram
    # is the coefficient list of prod_d (2 x + (k_d - 2) x^2).
    poly = Counter({0: 1})
    for k in dims:
        nxt: Counter[int] = Counter()
        for deg, cnt in poly.items():
            nxt[deg + 1] += 2 * cnt
            nxt[deg + 2] += (k - 2) * cnt
        poly = nxt
    G = mesh(dims)
    assert Counter(physical_degree(G, v) for v in G) == +poly
    assert G.graph["family"] == "mesh"
    assert not any(w for *_, w in G.edges(data="wrap"))


@pytest.mark.parametrize("dims", [(4, 4), (2, 4), (3, 4, 2), (2, 2, 2, 2, 2, 2)])
def test_torus_chips_have_2n_physical_links(dims):
    # Radix-2 rings are one edge with count 2, so every chip has 2n physical links.
    G = torus(dims)
    assert {physical_degree(G, v) for v in G} == {2 * len(dims)}


@pytest.mark.parametrize(("dims", "wrap"), [((6,), True), ((4, 4), True), ((3, 3), False)])
def test_mean_hops_closed_form(dims, wrap):
    # Mean ring distance over all k^2 ordered pairs: k/4 (k even) or (k^2-1)/(4k) (odd);
    # mesh (k^2-1)/(3k). Over distinct chip pairs multiply by N/(N-1).
    def per_dim(k):
        if not wrap:
            return (k * k - 1) / (3 * k)
        return k / 4 if k % 2 == 0 else (k * k - 1) / (4 * k)

    n = math.prod(dims)
    s = hop_stats(torus(dims, wrap=wrap))
    assert s["avg_hops"] == pytest.approx(n * sum(per_dim(k) for k in dims) / (n - 1))


def test_attributes_and_defaults():
    G = torus("4x4", bandwidth=10e9, latency=1e-7, router_latency=2e-8)
    for _, d in G.nodes(data=True):
        assert d["kind"] == "chip"
        assert d["injection_bandwidth"] == 4 * 10e9  # the sum of a 2D torus chip's 4 links
        assert d["latency"] == 2e-8
        assert len(d["pos"]) == 2
    assert {(d["bandwidth"], d["latency"], d["link"]) for *_, d in G.edges(data=True)} == {
        (10e9, 1e-7, "ici")
    }
    H = torus("2x4")
    # The radix-2 edge aggregates two 50 GB/s ICI links.
    assert H.edges[0, 4]["count"] == 2 and H.edges[0, 4]["bandwidth"] == 100e9
    # 2 links along the radix-2 dimension + 2 along the radix-4 ring.
    assert H.nodes[0]["injection_bandwidth"] == 4 * 50e9
    M = mesh("3x3", bandwidth=10e9, injection_bandwidth=7e9)
    assert {M.nodes[v]["injection_bandwidth"] for v in M} == {7e9}  # explicit value wins
    # A mesh chip injects what its own links carry: 2 at a corner, 3 on a face, 4 inside.
    M = mesh("3x3", bandwidth=10e9)
    assert [M.nodes[v]["injection_bandwidth"] for v in (0, 1, 4)] == [20e9, 30e9, 40e9]
    assert H.nodes[0]["latency"] == 0.0  # ICI routes inside the chip: switch_latency 0
    assert len({G.nodes[v]["pos"] for v in G}) == 16
    K = torus("2x2x2x2")
    assert len({K.nodes[v]["pos"] for v in K}) == 16


# --------------------------------------------------------------------------- bisection


@pytest.mark.parametrize(
    ("dims", "wrap"),
    [
        ((4,), True),
        ((8,), True),
        ((2, 4), True),
        ((4, 4), True),
        ((3, 4), True),
        ((2, 2, 4), True),
        ((2, 2, 2, 2), True),
        ((4, 4), False),
        ((3, 4), False),
        ((2, 2, 4), False),
        ((2, 6), False),
    ],
)
def test_bisection_closed_form_equals_brute_force(dims, wrap):
    # 2N/k_max links for a torus, N/k_max for a mesh (k_max even); exact enumeration of
    # every balanced cut of these small graphs (topologies.metrics, <= 20 nodes).
    G = torus(dims, wrap=wrap, bandwidth=1e9)
    n = math.prod(dims)
    links = (2 if wrap else 1) * n // max(dims)
    assert G.graph["bisection_links"] == links
    assert G.graph["bisection_bandwidth"] == links * 1e9
    exact = bisection(G, use_closed_form=False)
    assert exact["bisection_method"] == "exact"
    assert exact["bisection_bandwidth"] == pytest.approx(links * 1e9)
    assert exact["bisection_links"] == links


@pytest.mark.parametrize("dims", ["3x3", "5", "4x5"])
def test_no_bisection_closed_form_for_odd_largest_radix(dims):
    assert "bisection_bandwidth" not in torus(dims).graph


def test_open_dims_make_a_mixed_mesh_torus():
    G = torus("4x3x2", open_dims="2")
    assert G.graph["params"]["open_dims"] == (2,)
    assert G.graph["diameter"] == 2 + 1 + 1 == chip_diameter(G)
    assert all(not d["wrap"] for *_, d in G.edges(data=True) if d["dim"] == 2)
    assert {d["count"] for *_, d in G.edges(data=True)} == {1}
    assert "bisection_bandwidth" not in G.graph  # mixed wrap: left to metrics
    assert torus("4x4", open_dims=[0, 1]).number_of_edges() == mesh("4x4").number_of_edges()
    H = build("torus:dims=4x3x2,open_dims=2")
    assert H.graph["params"] == G.graph["params"]
    spec = spec_string("torus", {"dims": (4, 3, 2), "open_dims": (0, 2)})
    assert build(spec).graph["params"]["open_dims"] == (0, 2)


# --------------------------------------------------------------------------- presets


def test_tpu_v4_presets():
    cube = build("tpu-v4-cube")
    assert cube.graph["chips"] == 64
    # Six ICI links per TPU v4 chip (Jouppi et al., ISCA 2023).
    assert {physical_degree(cube, v) for v in cube} == {6}
    pod = build("tpu-v4-pod")
    assert pod.graph["chips"] == 4096
    # 2 * 4096 / 16 = 512 links of 50 GB/s = 25.6 TB/s; Google documents 24 TB/s per pod.
    assert pod.graph["bisection_links"] == 512
    assert abs(pod.graph["bisection_bandwidth"] - 24e12) / 24e12 < 0.07


def test_tpu_v5p_cube_matches_published_ici_bandwidth():
    G = build("tpu-v5p-cube")
    # 4800 Gbps of ICI per chip (Google Cloud TPU v5p documentation) = 600 GB/s per
    # direction over its six links.
    per_chip = {sum(d["bandwidth"] for d in G.adj[v].values()) for v in G}
    assert per_chip == {4800e9 / 8}


def test_tofu_preset_has_ten_links_per_node():
    # XYZ tori (2 links each) + a mesh of 2 (1) + b ring of 3 (2) + c mesh of 2 (1): the ten
    # inter-node links of a Tofu router (Ajima et al., IEEE Micro 2012).
    G = build("tofu-6d")
    assert G.graph["chips"] == 4 * 4 * 4 * 12
    assert {physical_degree(G, v) for v in G} == {10}
    assert {d["bandwidth"] for *_, d in G.edges(data=True)} == {5e9}


def test_presets_are_cited():
    for name, entry in PRESETS.items():
        assert entry["func"] in ("torus", "mesh"), name
        assert entry["source"] and entry["description"], name
    six = build("torus-6d")
    assert len(six.graph["params"]["dims"]) == 6 and six.graph["chips"] == 64


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda: torus("4x1"), r"^dims: each radix must be >= 2, got 1$"),
        (lambda: torus("4y4"), r"^dims: expected radices such as 4x4x8, got '4y4'$"),
        (lambda: torus([]), r"^dims: expected radices"),
        (lambda: torus(True), r"^dims: expected radices"),
        (lambda: torus("4x4", wrap="yes"), r"^wrap: must be true or false, got 'yes'$"),
        (lambda: torus("4x4", link="copper"), r"^link: must be one of .*got 'copper'$"),
        (lambda: torus("4x4", bandwidth=0), r"^bandwidth: must be a finite number > 0, got 0$"),
        (lambda: torus("4x4", latency=-1e-9), r"^latency: must be a finite number >= 0"),
        (lambda: torus("4x4", open_dims="2"), r"^open_dims: each index must be distinct"),
        (lambda: torus("4x4", open_dims="a"), r"^open_dims: expected dimension indices"),
        (lambda: torus("4x4", wrap=False, open_dims="0"), r"^open_dims: only applies"),
        (
            lambda: mesh("1024x1024x2"),
            rf"^dims: at most {MAX_GRID_CHIPS} chips .*, got 1024x1024x2",
        ),
        (lambda: parse_dims("4x4", ndim=3), r"^dims: expected 3 radices, got '4x4'$"),
    ],
)
def test_errors_are_one_line(call, pattern):
    with pytest.raises(ConfigError, match=pattern) as exc:
        call()
    assert "\n" not in str(exc.value)
