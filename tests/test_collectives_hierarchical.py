"""Tests of collectives.hierarchical: multi-dimensional all-reduce and PXN-style all-to-all.

Closed forms: a ring all-reduce of ``c`` elements over ``n`` ranks moves ``2(n-1)c``
elements in all; in the 2-D algorithm the inner rings carry the full vector and the outer
rings ``1/g`` of it each (Ueno & Yokota, CCGRID 2019). All-to-all conserves every element
and crosses nodes only between matching local ranks (rails).
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from schedule_helpers import check, longest_chain

from collectives.builder import build
from collectives.hierarchical import (
    allgather_ring_line,
    allreduce_hierarchical,
    alltoall_hierarchical,
    rank_grid,
    reduce_scatter_ring_line,
)
from collectives.schedule import merge
from netsim.core.errors import ConfigError
from topologies.hierarchical import hierarchical

SP = hierarchical(3, gpus=4, switches=2, links_per_gpu=4)  # 3 nodes x 4 GPUs


def grid_graph(shape: tuple[int, ...]) -> nx.Graph:
    """Switchless grid with chip ``coord`` attributes (as the torus family sets them)."""
    G = nx.grid_graph(dim=list(shape)[::-1], periodic=True)
    G = nx.convert_node_labels_to_integers(G, ordering="sorted", label_attribute="coord")
    nx.set_node_attributes(G, "chip", "kind")
    G.graph.update(family="torus", name="grid", chips=G.number_of_nodes())
    return G


# --------------------------------------------------------------------------- grid


def test_rank_grid_from_dims_is_row_major():
    shape, coords = rank_grid([5, 6, 7, 8, 9, 10], dims="2x3")
    assert shape == (2, 3) and coords[4] == (1, 1)
    assert rank_grid(range(8), dims=[2, 2, 2])[1][-1] == (1, 1, 1)


def test_rank_grid_from_hierarchical_nodes():
    shape, coords = rank_grid(range(12), SP)
    assert shape == (3, 4)
    assert coords[9] == (2, 1)  # chip 9 = node 2, local rank 1


def test_rank_grid_from_coords_renumbers_a_subgrid():
    G = grid_graph((4, 4))
    sub = [c for c in G if G.nodes[c]["coord"][0] in (1, 3)]
    shape, coords = rank_grid(sub, G)
    assert shape == (2, 4) and max(coords) == (1, 3)


@pytest.mark.parametrize(
    "ranks,graph,dims,match",
    [
        (range(6), None, "4x2", "must hold the 6 ranks"),
        (range(6), None, "2xa", "dims"),
        (range(6), None, None, "need a rank grid"),
        ([0, 1, 2, 4], SP, None, "full grid"),
    ],
)
def test_rank_grid_errors(ranks, graph, dims, match):
    with pytest.raises(ConfigError, match=match) as e:
        rank_grid(list(ranks), graph, dims)
    assert "\n" not in str(e.value)


# --------------------------------------------------------------------------- all-reduce


@settings(max_examples=50, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    count=st.integers(0, 60),
    chunks=st.integers(1, 4),
)
def test_allreduce_computes_the_sum(shape, count, chunks):
    p = math.prod(shape)
    rng = np.random.default_rng(count + 7 * p)
    ranks = [int(r) for r in rng.permutation(100)[:p]]
    s = allreduce_hierarchical(ranks, count, dims="x".join(map(str, shape)), chunks=chunks)
    check(s, {r: rng.integers(-20, 20, count).astype(float) for r in ranks})


def test_allreduce_on_graphs_and_concurrent_groups():
    rng = np.random.default_rng(1)
    s = allreduce_hierarchical(range(12), 50, graph=SP)
    check(s, {r: rng.integers(0, 9, 50).astype(float) for r in range(12)})
    G = grid_graph((2, 3))
    s = allreduce_hierarchical(range(6), 17, graph=G, chunks=2)
    check(s, {r: rng.integers(0, 9, 17).astype(float) for r in range(6)})
    groups = [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]
    s = merge([allreduce_hierarchical(g, 24, dims="2x3") for g in groups])
    check(s, {r: rng.integers(0, 9, 24).astype(float) for g in groups for r in g})


def test_traffic_per_level_matches_the_closed_form():
    nodes, g, count = 3, 4, 1200  # count divisible by g * nodes: exact chunking
    s = allreduce_hierarchical(range(12), count, graph=SP)
    node = {c: SP.nodes[c]["node"] for c in range(12)}
    inter = sum(t.count for t in s.transfers if node[t.src] != node[t.dsts[0]])
    intra = sum(t.count for t in s.transfers if node[t.src] == node[t.dsts[0]])
    assert intra == nodes * 2 * (g - 1) * count  # a full ring all-reduce in every node
    assert inter == g * 2 * (nodes - 1) * (count // g)  # g rings over 1/g of the data
    # The flat ring would move 2(p-1) c elements, 2(p-1)/p c of them per rank.
    flat = allreduce_hierarchical(range(12), count, dims="12")
    assert sum(t.count for t in flat.transfers) == 2 * 11 * count


@pytest.mark.parametrize("p", [2, 5, 9])
def test_one_dimension_is_the_ring(p):
    s = allreduce_hierarchical(range(p), 10 * p, dims=str(p))
    assert len(s.transfers) == 2 * p * (p - 1)
    assert longest_chain(s) == 2 * (p - 1)


def test_two_dimensions_shorten_the_chain():
    # 2(a-1) + 2(b-1) steps instead of 2(ab-1).
    s = allreduce_hierarchical(range(12), 120, dims="3x4")
    assert longest_chain(s) == 2 * 2 + 2 * 3


def test_ring_line_helpers_leave_chunk_k_on_rank_k():
    line = [10, 11, 12]
    rs = reduce_scatter_ring_line(line, 0, 9)
    ag = allgather_ring_line(line, 0, 9)
    assert len(rs) == len(ag) == 2 * 3
    assert {(op[1], op[3]) for op in rs[-3:]} == {(10, 0), (11, 3), (12, 6)}
    assert {(op[0], op[3]) for op in ag[:3]} == {(10, 0), (11, 3), (12, 6)}


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"chunks": 0}, "chunks"),
        ({"dims": "5"}, "must hold"),
        ({"graph": None}, "rank grid"),
        ({"tile": 3}, "tile"),
    ],
)
def test_allreduce_errors(kwargs, match):
    args = {"graph": SP} | kwargs
    with pytest.raises(ConfigError, match=match) as e:
        allreduce_hierarchical(range(12), 24, **args)
    assert "\n" not in str(e.value)


# --------------------------------------------------------------------------- all-to-all


def random_matrix(rng: np.random.Generator, p: int, high: int = 5) -> np.ndarray:
    m = rng.integers(0, high, (p, p))
    np.fill_diagonal(m, 0)
    return m


@settings(max_examples=40, deadline=None)
@given(nodes=st.integers(1, 4), g=st.integers(1, 4), seed=st.integers(0, 10**6))
def test_alltoall_delivers_every_segment(nodes, g, seed):
    rng = np.random.default_rng(seed)
    p = nodes * g
    m = random_matrix(rng, p)
    ranks = [int(r) for r in rng.permutation(50)[:p]]
    s = alltoall_hierarchical(ranks, 0, dims=f"{nodes}x{g}", matrix=m)
    check(s, {r: rng.integers(0, 99, int(m[i].sum())).astype(float) for i, r in enumerate(ranks)})


def test_alltoall_crosses_nodes_on_rails_only_and_conserves_data():
    rng = np.random.default_rng(4)
    m = random_matrix(rng, 12, high=9) + 1
    np.fill_diagonal(m, 0)
    s = alltoall_hierarchical(range(12), 0, graph=SP, matrix=m)
    check(s, {r: rng.integers(0, 99, int(m[r].sum())).astype(float) for r in range(12)})
    node = {c: c // 4 for c in range(12)}
    cross = [t for t in s.transfers if node[t.src] != node[t.dsts[0]]]
    assert all(t.src % 4 == t.dsts[0] % 4 for t in cross)  # matching local ranks
    inter_elems = sum(int(m[i, j]) for i in range(12) for j in range(12) if node[i] != node[j])
    assert sum(t.count for t in cross) == inter_elems  # every element crosses once
    # Aggregation: per rail pair at most 3 messages (others before / own / others after),
    # instead of one per source GPU (4) without PXN.
    pairs = {(t.src, t.dsts[0]) for t in cross}
    assert len(pairs) == 12 * 2
    assert len(cross) <= 3 * len(pairs)
    assert len(cross) == sum(2 if c % 4 in (0, 3) else 3 for c, _ in pairs)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"matrix": None}, "matrix"),
        ({"matrix": np.ones((12, 12), int)}, "diagonal"),
        ({"matrix": np.zeros((3, 3), int)}, "12x12"),
        ({"matrix": -np.ones((12, 12), int)}, "integers >= 0"),
        ({"dims": "2x2x3"}, "2-D grid"),
        ({"chunks": 2}, "chunks"),
    ],
)
def test_alltoall_errors(kwargs, match):
    args = {"graph": SP, "matrix": np.zeros((12, 12), int)} | kwargs
    with pytest.raises(ConfigError, match=match) as e:
        alltoall_hierarchical(range(12), 0, **args)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("matrix", "needle"),
    [
        (None, "got none"),
        ([[0, 1], [1, 0]], "got shape (2, 2)"),
        ([[0, -1, 0, 0]] * 4, "integers >= 0"),
        ([[1, 0, 0, 0]] + [[0] * 4] * 3, "diagonal entries must be 0"),
    ],
)
def test_alltoall_matrix_is_refused_as_the_direct_algorithm_refuses_it(matrix, needle):
    """One check of the per-pair matrix (collectives.direct.alltoall_matrix) for both."""
    msgs = []
    for algo, kw in (("hierarchical", {"dims": "2x2"}), ("direct", {})):
        with pytest.raises(ConfigError) as exc:
            build("alltoall", algo, range(4), 4, matrix=matrix, **kw)
        msgs.append(str(exc.value))
    assert msgs[0] == msgs[1] and needle in msgs[0]
