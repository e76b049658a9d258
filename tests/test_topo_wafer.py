"""Tests of topologies.wafer: wafer-scale meshes of dies of tiles."""

from __future__ import annotations

import math

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.core.errors import ConfigError
from netsim.core.linktypes import LINK_TYPES
from topologies.metrics import bisection
from topologies.registry import build
from topologies.wafer import PRESETS, wafer


def counts(G: nx.Graph) -> tuple[int, int]:
    cross = sum(1 for *_, c in G.edges(data="cross") if c)
    return G.number_of_edges() - cross, cross


@settings(max_examples=30, deadline=None)
@given(
    dies=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    tiles=st.tuples(st.integers(1, 3), st.integers(1, 3)),
)
def test_structure_matches_closed_forms(dies, tiles):
    X, Y = dies[0] * tiles[0], dies[1] * tiles[1]
    if X * Y < 2:
        return
    G = wafer(dies, tiles, die_bandwidth=8e9, cross_bandwidth=3e9)
    assert G.graph["chips"] == X * Y and nx.is_connected(G)
    # Mesh links X(Y-1) + Y(X-1); (Dx-1) Y + (Dy-1) X of them cross a die boundary.
    intra, cross = counts(G)
    assert cross == (dies[0] - 1) * Y + (dies[1] - 1) * X
    assert intra + cross == X * (Y - 1) + Y * (X - 1)
    for u, v, d in G.edges(data=True):
        same_die = G.nodes[u]["die"] == G.nodes[v]["die"]
        assert d["cross"] == (not same_die)
        assert (d["link"], d["bandwidth"]) == (("wafer", 8e9) if same_die else ("wafer-die", 3e9))
        cu, cv = G.nodes[u]["coord"], G.nodes[v]["coord"]
        assert abs(cu[0] - cv[0]) + abs(cu[1] - cv[1]) == 1
        assert cu[d["dim"]] != cv[d["dim"]] and d["wrap"] is False
    for r, data in G.nodes(data=True):
        x, y = data["coord"]
        assert r == x * Y + y
        dx, dy = data["die_coord"]
        assert (dx, dy) == (x // tiles[0], y // tiles[1])
        assert data["die"] == dx * dies[1] + dy
        assert data["tile"] == (x % tiles[0], y % tiles[1])
    diam = max(max(d.values()) for _, d in nx.all_pairs_shortest_path_length(G))
    assert G.graph["diameter"] == X + Y - 2 == diam


def test_link_defaults_come_from_link_types():
    G = wafer("2x2", "4x4")
    wafer_lt, die_lt = LINK_TYPES["wafer"], LINK_TYPES["wafer-die"]
    kinds = {(d["link"], d["bandwidth"], d["latency"]) for *_, d in G.edges(data=True)}
    assert kinds == {
        ("wafer", wafer_lt.bandwidth, wafer_lt.latency),
        ("wafer-die", die_lt.bandwidth, die_lt.latency),
    }
    assert {d["latency"] for _, d in G.nodes(data=True)} == {wafer_lt.switch_latency}
    # Injection: the sum of a tile's links. Tile (1, 1) of die (0, 0) has four die links;
    # tile (1, 3) is at the die's edge: three die links and one crossing to die (0, 1).
    inj = {d["coord"]: d["injection_bandwidth"] for _, d in G.nodes(data=True)}
    assert inj[(1, 1)] == pytest.approx(4 * wafer_lt.bandwidth)
    assert inj[(1, 3)] == pytest.approx(3 * wafer_lt.bandwidth + die_lt.bandwidth)
    assert inj[(0, 0)] == pytest.approx(2 * wafer_lt.bandwidth)  # wafer corner
    # With one tile per die every link crosses a die.
    H = wafer("4x4")
    assert counts(H) == (0, 24)
    assert {d["injection_bandwidth"] for _, d in H.nodes(data=True)} == {
        2 * die_lt.bandwidth,
        3 * die_lt.bandwidth,
        4 * die_lt.bandwidth,
    }


@pytest.mark.parametrize(
    ("dies", "tiles", "b_die", "b_cross", "expect"),
    [
        # Middle of x=4 falls on the die boundary and cross links are slower: 4 x 1.
        ((2, 2), (2, 2), 4.0, 1.0, 4.0),
        # Same cut, cross links faster: the straight cut is not the cheapest kind -> unset.
        ((2, 2), (2, 2), 1.0, 4.0, None),
        # Equal bandwidths: a plain 4x4 mesh, 4 links.
        ((2, 2), (2, 2), 2.0, 2.0, 8.0),
        # 2x4 tiles of one die across: the 4-long side's middle is inside the die.
        ((1, 1), (2, 4), 3.0, 9.0, 6.0),
        # 3x1 dies of 1x2 tiles: X = 3 (odd), Y = 2: the longest side is odd -> unset.
        ((3, 1), (1, 2), 1.0, 1.0, None),
        # 4 dies in a row of 1x1 tiles (all cross links), 2 x 4 mesh: 2 links.
        ((2, 4), (1, 1), 5.0, 1.0, 2.0),
    ],
)
def test_bisection_closed_form_against_brute_force(dies, tiles, b_die, b_cross, expect):
    G = wafer(dies, tiles, die_bandwidth=b_die, cross_bandwidth=b_cross)
    exact = bisection(G, use_closed_form=False)
    assert exact["bisection_method"] == "exact"
    if expect is None:
        assert "bisection_bandwidth" not in G.graph
    else:
        assert G.graph["bisection_bandwidth"] == pytest.approx(expect)
        assert exact["bisection_bandwidth"] == pytest.approx(expect)
        assert G.graph["bisection_links"] == exact["bisection_links"]
    # The closed form, where set, is never above the true minimum (it is a min cut).
    if "bisection_bandwidth" in G.graph:
        assert G.graph["bisection_bandwidth"] <= exact["bisection_bandwidth"] * (1 + 1e-12)


def test_spec_and_registry_round_trip():
    G = build("wafer:dies=2x2,tiles=4x4,cross_bandwidth=25GB/s")
    assert G.graph["chips"] == 64
    assert G.graph["params"]["dies"] == (2, 2) and G.graph["params"]["tiles"] == (4, 4)
    assert {d["bandwidth"] for *_, d in G.edges(data=True) if d["cross"]} == {25e9}


def test_cerebras_preset_matches_published_fabric_bandwidth():
    """Against the published figures, not the preset's constant: 900,000 cores and 214 Pb/s
    of fabric bandwidth (Cerebras WSE-3 announcement, 2024), 84 dies as 7 x 12 (Hot Chips
    31, 2019). Read as a 2D mesh of 900,000 cores with 2 links per core and 2 directions per
    link (the preset's stated reading), one core link carries 214e15 / 8 / (900e3 x 4) B/s;
    laid out in the 7:12 shape of the die array, the short-side cut crosses
    sqrt(900e3 x 7/12) = 724.6 core links. The model's bisection (its closed form, checked
    against brute force above) must carry as much. Band: the model's 336 tiles of 52 x 52
    cores hold 908,544 cores (0.95% more), so its cut is sqrt(908544/900000) = 1.0047 times
    longer; 0.5% allows that and nothing more."""
    G = build("cerebras-wse3-like")
    assert G.graph["chips"] == 7 * 12 * 4
    assert len({d for _, d in G.nodes(data="die")}) == 84
    assert G.graph["chips"] * 52**2 == pytest.approx(900e3, rel=0.01)
    core_link = 214e15 / 8 / (900e3 * 2 * 2)
    published_cut = math.sqrt(900e3 * 7 / 12) * core_link
    assert G.graph["bisection_bandwidth"] / published_cut == pytest.approx(1.0, abs=0.005)
    # Die-crossing links run at the on-die rate (the mesh is extended across scribe lines).
    assert {d["bandwidth"] for *_, d in G.edges(data=True)} == {G.edges[0, 1]["bandwidth"]}


def test_dojo_preset_matches_published_d1_bandwidths():
    G = build("dojo-tile-like")
    assert G.graph["chips"] == 100 and len({d for _, d in G.nodes(data="die")}) == 25
    # A die edge: 2 cross links x 2 TB/s = 4 TB/s per edge (Talpes et al., Hot Chips 2022).
    edge = [
        d["bandwidth"]
        for u, v, d in G.edges(data=True)
        if d["cross"] and {G.nodes[u]["die"], G.nodes[v]["die"]} == {0, 1}
    ]
    assert sum(edge) == 4e12
    # D1 on-chip 10 TB/s per direction: the die's middle cut crosses 2 links of 5 TB/s.
    inner = [
        d["bandwidth"]
        for u, v, d in G.edges(data=True)
        if not d["cross"] and G.nodes[u]["die"] == 0 and d["dim"] == 0
    ]
    assert sum(inner) == 10e12


def test_presets_are_cited():
    for name, entry in PRESETS.items():
        assert entry["func"] == "wafer" and entry["source"] and entry["description"], name


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda: wafer("1x1"), r"^dies, tiles: the wafer must have 2 to \d+ tiles, got 1x1"),
        (lambda: wafer("2x2x2"), r"^dies: expected 2 radices, got '2x2x2'$"),
        (lambda: wafer("2x0"), r"^dies: each radix must be >= 1, got 0$"),
        (lambda: wafer("2x2", "3"), r"^tiles: expected 2 radices, got '3'$"),
        (lambda: wafer("2x2", cross_link="x"), r"^cross_link: must be one of .*got 'x'$"),
        (lambda: wafer("2x2", die_bandwidth=-5), r"^die_bandwidth: must be a finite number > 0"),
        (lambda: wafer("2x2", cross_latency="soon"), r"^cross_latency: must be a finite"),
    ],
)
def test_errors_are_one_line(call, pattern):
    with pytest.raises(ConfigError, match=pattern) as exc:
        call()
    assert "\n" not in str(exc.value)
