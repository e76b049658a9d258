"""Tests of collectives.tree: NCCL's double binary tree all-reduce and binomial trees.

Tree shapes are checked against the figures in NCCL's ``src/graph/trees.cc`` and the
properties of Sanders, Speck & Träff, "Two-tree algorithms" (Parallel Computing 2009);
results against :func:`collectives.schedule.expected`, in list order and random orders.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from schedule_helpers import check, longest_chain

from collectives.schedule import Schedule, merge
from collectives.tree import (
    allreduce_tree,
    binomial_parents,
    broadcast_tree,
    btree_parents,
    depths,
    dtree_parents,
    reduce_tree,
    tree_depth,
)
from netsim.core.errors import ConfigError

BUILDERS = {"allreduce": allreduce_tree, "broadcast": broadcast_tree, "reduce": reduce_tree}


def sent(s: Schedule) -> Counter:
    out: Counter = Counter()
    for t in s.transfers:
        out[t.src] += t.count
    return out


# --------------------------------------------------------------------------- shapes


def test_btree_matches_nccl_figure_for_14_ranks():
    # trees.cc: 0-8; 8 -> 4, 12; 4 -> 2, 6; 12 -> 10, 13; 2 -> 1, 3; 6 -> 5, 7; 10 -> 9, 11
    want = {1: 2, 2: 4, 3: 2, 4: 8, 5: 6, 6: 4, 7: 6, 8: 0, 9: 10, 10: 12, 11: 10, 12: 8, 13: 12}
    parents = btree_parents(14)
    assert parents[0] == -1
    assert {r: parents[r] for r in range(1, 14)} == want


def test_dtree_mirror_and_shift_match_nccl_figures():
    # trees.cc: for 12 ranks the second tree is the mirror, rooted at 11 with child 3 ...
    _, t1 = dtree_parents(12)
    assert t1[11] == -1 and t1[3] == 11 and t1[7] == 3 and t1[1] == 3
    # ... for 13 ranks the shift by one, rooted at 1 with child 9 and 9 -> 5, 0.
    _, t1 = dtree_parents(13)
    assert t1[1] == -1 and t1[9] == 1 and t1[5] == 9 and t1[0] == 9


@pytest.mark.parametrize("p", range(2, 130))
def test_both_trees_have_depth_ceil_log2_p(p):
    for parents in dtree_parents(p):
        assert tree_depth(parents) == math.ceil(math.log2(p))
        assert sorted(parents).count(-1) == 1


@pytest.mark.parametrize("p", range(2, 70))
def test_interior_ranks_of_one_tree_are_leaves_of_the_other(p):
    t0, t1 = dtree_parents(p)
    inner0 = {u for u in t0 if u >= 0}
    inner1 = {u for u in t1 if u >= 0}
    both = inner0 & inner1
    # Even p (mirror): disjoint. Odd p (shift): only rank 0, the single-child root of tree 0.
    assert both == (set() if p % 2 == 0 else {0})
    assert Counter(t0)[0] == 1
    assert max(Counter(u for u in t0 + t1 if u >= 0).values()) <= 2


@pytest.mark.parametrize("p,root", [(1, 0), (2, 1), (7, 3), (16, 0), (13, 12)])
def test_binomial_tree_depth(p, root):
    parents = binomial_parents(p, root)
    assert parents[root] == -1
    # Relative rank v sits popcount(v) edges below the root.
    assert tree_depth(parents) == max(bin(v).count("1") for v in range(p))
    assert depths(parents) == [bin((r - root) % p).count("1") for r in range(p)]


def test_a_parent_list_with_a_cycle_is_refused():
    with pytest.raises(ConfigError, match="not a tree"):
        depths([-1, 2, 1])


# --------------------------------------------------------------------------- correctness


@settings(max_examples=60, deadline=None)
@given(
    op=st.sampled_from(sorted(BUILDERS)),
    p=st.integers(1, 19),
    count=st.integers(0, 60),
    chunks=st.integers(1, 5),
    data=st.data(),
)
def test_builders_compute_the_collective(op, p, count, chunks, data):
    rng = np.random.default_rng(p * 1000 + count)
    ranks = [int(r) for r in rng.permutation(64)[:p]]
    root = data.draw(st.integers(0, p - 1))
    s = BUILDERS[op](ranks, count, chunks=chunks, root=root)
    inputs = {r: rng.integers(-50, 50, count).astype(float) for r in ranks}
    check(s, inputs)


def test_concurrent_groups_merge():
    rng = np.random.default_rng(5)
    groups = [list(range(g * 6, g * 6 + 6)) for g in range(3)]
    s = merge([allreduce_tree(g, 31, chunks=3) for g in groups])
    inputs = {r: rng.integers(0, 9, 31).astype(float) for g in groups for r in g}
    check(s, inputs)


# --------------------------------------------------------------------------- cost


@pytest.mark.parametrize("p", [2, 3, 8, 13, 32])
@pytest.mark.parametrize("count", [64, 1001])
def test_double_tree_sends_at_most_twice_the_data_per_rank(p, count):
    s = allreduce_tree(list(range(p)), count, chunks=4)
    per_rank = sent(s)
    # Interior in one tree (up + 2 children = 3 halves), a leaf in the other (1 half).
    assert max(per_rank.values()) <= 4 * math.ceil(count / 2)
    # Conservation: every rank but the two roots sends each half up once.
    ups = sum(t.count for t in s.transfers if t.op == "sum")
    assert ups == (p - 1) * count


@pytest.mark.parametrize("p", [4, 16, 64])
def test_double_tree_latency_grows_as_log_p(p):
    s = allreduce_tree(list(range(p)), 4 * p, chunks=1)
    # Up the deeper tree and down again: 2 ceil(log2 p) sequential transfers (ring: 2(p-1)).
    assert longest_chain(s) == 2 * math.ceil(math.log2(p))


@pytest.mark.parametrize("chunks", [1, 2, 6])
def test_pipelining_adds_one_level_per_extra_chunk(chunks):
    p = 16
    s = allreduce_tree(list(range(p)), 600, chunks=chunks)
    assert longest_chain(s) == 2 * math.ceil(math.log2(p)) + chunks - 1


@pytest.mark.parametrize("p", [2, 5, 8, 16])
def test_binomial_broadcast_and_reduce_take_log_p_rounds(p):
    # One message per rank per round: ceil(log2 p) rounds (Thakur et al. 2005).
    assert longest_chain(broadcast_tree(list(range(p)), 10, root=p - 1)) == math.ceil(math.log2(p))
    assert longest_chain(reduce_tree(list(range(p)), 10, root=1)) == math.ceil(math.log2(p))
    assert len(broadcast_tree(list(range(p)), 10).transfers) == p - 1


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"chunks": 0}, "chunks"),
        ({"count": -1}, "count"),
        ({"ranks": [1, 1]}, "ranks"),
        ({"ranks": []}, "ranks"),
        ({"bogus": 3}, "bogus"),
    ],
)
def test_bad_input_is_one_line_config_error(kwargs, match):
    args = {"ranks": [0, 1, 2], "count": 8} | kwargs
    with pytest.raises(ConfigError, match=match) as e:
        allreduce_tree(args.pop("ranks"), args.pop("count"), **args)
    assert "\n" not in str(e.value)


def test_root_out_of_range():
    with pytest.raises(ConfigError, match="root"):
        broadcast_tree([0, 1, 2], 4, root=3)
