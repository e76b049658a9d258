"""MoE dispatch traffic against closed forms and conservation laws."""

from __future__ import annotations

import itertools
from math import comb

import numpy as np
import pytest

from netsim.core.errors import ConfigError
from workloads import moe

BPT = 7168  # bytes per token: a DeepSeek-V3 hidden state (d_model 7168) in fp8


@pytest.mark.parametrize(
    "text",
    [
        "",
        "zipf",
        "zipf:",
        "zipf:-1",
        "zipf:x",
        "zipf:1:2:3",
        "zipf:1:-2",
        "load:",
        "load:1,-1",
        "load:0,0",
        "load:a,b",
        "gauss:1",
        "uniform:2",
        3,
    ],
)
def test_parse_routing_rejects_bad_input(text):
    with pytest.raises(ConfigError, match="moe-routing"):
        moe.parse_routing(text)


def test_parse_routing_accepts_grammar():
    assert moe.parse_routing("uniform").kind == "uniform"
    z = moe.parse_routing("zipf:1.2:7")
    assert (z.kind, z.exponent, z.seed) == ("zipf", 1.2, 7)
    assert moe.parse_routing("load:1,1,2").load == (0.25, 0.25, 0.5)
    assert moe.parse_routing("loads:1,1,2") == moe.parse_routing("load:1,1,2")
    assert moe.parse_routing(str(z)) == z


def test_expert_weights_zipf_is_a_permutation_of_the_zipf_law():
    s, e = 1.2, 16
    w = moe.expert_weights("zipf:1.2:3", e)
    law = np.arange(1, e + 1) ** -s
    np.testing.assert_allclose(np.sort(w)[::-1], law / law.sum())
    np.testing.assert_allclose(moe.expert_weights("zipf:0", e), np.full(e, 1 / e))
    assert not np.array_equal(w, moe.expert_weights("zipf:1.2:4", e))  # seed moves hot experts


def test_load_vector_must_match_experts():
    with pytest.raises(ConfigError, match="one weight per expert"):
        moe.expert_weights("load:1,2,3", 4)


def test_inclusion_probabilities_sum_to_k_and_cap_at_one():
    w = np.array([0.7, 0.1, 0.1, 0.05, 0.05])
    pi = moe.inclusion_probabilities(w, 2)
    assert pi.sum() == pytest.approx(2.0)
    assert pi[0] == 1.0  # 2 * 0.7 > 1: capped
    np.testing.assert_allclose(pi[1:], w[1:] / w[1:].sum())  # the rest share 1 in proportion
    np.testing.assert_allclose(moe.inclusion_probabilities(np.ones(8), 3), np.full(8, 3 / 8))
    with pytest.raises(ConfigError, match="top_k"):
        moe.inclusion_probabilities(np.array([1.0, 0.0, 0.0]), 2)


def test_uniform_expected_matrix_matches_closed_form():
    tokens, experts, k, ep = 64, 32, 4, 8
    counts = moe.routing_counts("uniform", tokens, experts, k, ranks=ep, mode="expected")
    np.testing.assert_allclose(counts, tokens * k / experts)
    d = moe.dispatch_matrix(counts, moe.place_experts(experts, ep), BPT)
    off = d - np.diag(np.diag(d))
    closed = tokens * k * BPT * (ep - 1) / ep
    np.testing.assert_allclose(off.sum(axis=1), closed)  # sent per rank
    np.testing.assert_allclose(off.sum(axis=0), closed)  # received per rank
    np.testing.assert_allclose(np.diag(d), tokens * k * BPT / ep)  # local share
    assert moe.imbalance(d)["imbalance"] == pytest.approx(1.0)
    np.testing.assert_allclose(moe.combine_matrix(d), d.T)


def test_sampled_uniform_converges_to_expected():
    tokens, experts, k, ep = 4000, 32, 4, 4
    a = moe.route_tokens("uniform", tokens, experts, k, 11, ranks=ep)
    for rows in a:
        assert rows.shape == (tokens, k)
        assert all(len(set(r)) == k for r in rows[:500])  # k distinct experts per token
    counts = moe.counts_from_assignments(a, experts)
    np.testing.assert_array_equal(counts.sum(axis=1), tokens * k)
    mean = tokens * k / experts
    sd = np.sqrt(tokens * (k / experts) * (1 - k / experts))  # binomial per (rank, expert)
    assert np.abs(counts - mean).max() < 5 * sd
    d = moe.dispatch_matrix(counts, moe.place_experts(experts, ep), BPT)
    closed = tokens * k * BPT / ep
    np.testing.assert_allclose(d, closed, rtol=0.03)


def test_sampled_marginals_match_capped_inclusion_probabilities():
    spec, tokens, experts, k = "zipf:1.5:2", 20000, 16, 4
    counts = moe.routing_counts(spec, tokens, experts, k, 5)[0]
    pi = moe.inclusion_probabilities(moe.expert_weights(spec, experts), k)
    assert (pi == 1.0).any()  # the hottest expert is capped for this skew
    np.testing.assert_array_equal(counts[pi == 1.0], tokens)  # chosen by every token
    sd = np.sqrt(tokens * pi * (1 - pi))
    assert np.all(np.abs(counts - tokens * pi) <= 5 * sd + 1e-9)


def test_zipf_hot_rank_receives_in_proportion_to_its_weights():
    spec, tokens, experts, k, ep = "zipf:0.8:1", 3000, 64, 4, 8
    w = moe.expert_weights(spec, experts)
    assert k * w.max() < 1  # no capping: pi = k * w exactly
    place = moe.place_experts(experts, ep)
    rank_w = np.bincount(place, weights=w, minlength=ep)  # share of assignments per rank
    # closed form: rank r receives tokens * k * rank_w[r] * BPT from each of the ep-1 others
    closed = (ep - 1) * tokens * k * rank_w * BPT
    counts = moe.routing_counts(spec, tokens, experts, k, 2, ranks=ep)
    m = moe.imbalance(moe.dispatch_matrix(counts, place, BPT))
    np.testing.assert_allclose(m["received"], closed, rtol=0.03)
    hot = int(np.argmax(rank_w))
    assert int(np.argmax(m["received"])) == hot
    assert m["imbalance"] == pytest.approx(rank_w.max() * ep, rel=0.03)
    assert m["imbalance"] > 1.2


def test_imbalance_grows_with_zipf_exponent():
    ratios = []
    for s in (0.0, 0.5, 1.0, 1.5):
        c = moe.routing_counts(f"zipf:{s}", 16, 64, 4, ranks=8, mode="expected")
        ratios.append(
            moe.imbalance(moe.dispatch_matrix(c, moe.place_experts(64, 8), BPT))["imbalance"]
        )
    assert ratios[0] == pytest.approx(1.0)
    assert all(b > a for a, b in itertools.pairwise(ratios))


def test_placement_schemes():
    np.testing.assert_array_equal(moe.place_experts(8, 4), [0, 0, 1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(moe.place_experts(8, 4, "round-robin"), [0, 1, 2, 3] * 2)
    with pytest.raises(ConfigError, match="multiple"):
        moe.place_experts(10, 4)
    with pytest.raises(ConfigError, match="placement"):
        moe.place_experts(8, 4, "random")


def test_dispatch_rejects_mismatched_shapes():
    c = np.ones((3, 8))
    with pytest.raises(ConfigError, match="one row per EP rank"):
        moe.dispatch_matrix(c, moe.place_experts(8, 4), BPT)
    with pytest.raises(ConfigError, match="placement"):
        moe.dispatch_matrix(np.ones((4, 8)), moe.place_experts(4, 4), BPT)


def _cross_domain(m, size):
    dom = np.arange(len(m)) // size
    return m[dom[:, None] != dom[None, :]].sum()


@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_hierarchical_stages_conserve_bytes(size):
    c = moe.routing_counts("zipf:1.0:4", 50, 32, 4, 3, ranks=8)
    d = moe.dispatch_matrix(c, moe.place_experts(32, 8), BPT)
    s1, s2 = moe.hierarchical_stages(d, size)
    dom = np.arange(8) // size
    same = dom[:, None] == dom[None, :]
    assert s1.sum() == pytest.approx(_cross_domain(d, size))
    assert np.all(s1[same] == 0)  # stage 1 only crosses domains
    assert np.all(s2[~same] == 0)  # stage 2 stays inside a domain
    np.testing.assert_allclose(s2.sum(axis=0), d.sum(axis=0))  # every byte lands
    # each stage-1 message leaves from the sender to its same-local-index peer
    src, dst = np.nonzero(s1)
    np.testing.assert_array_equal(src % size, dst % size)
    if size == 8:
        np.testing.assert_allclose(s2, d)
    if size == 1:
        np.testing.assert_allclose(s1, d - np.diag(np.diag(d)))


def test_dedup_uniform_matches_closed_form():
    tokens, experts, k, ep = 3000, 32, 4, 8
    m = experts // ep
    a = moe.route_tokens("uniform", tokens, experts, k, 9, ranks=ep)
    place = moe.place_experts(experts, ep)
    flat = moe.dispatch_matrix(moe.counts_from_assignments(a, experts), place, BPT)
    dd = moe.dedup_dispatch_matrix(a, place, BPT)
    assert np.all(dd <= flat + 1e-9)
    # P(a token needs rank r) = 1 - C(E - m, k) / C(E, k) for a uniform k-subset
    p = 1 - comb(experts - m, k) / comb(experts, k)
    sd = np.sqrt(tokens * p * (1 - p)) * BPT  # binomial: tokens independent
    assert np.abs(dd - tokens * p * BPT).max() < 5 * sd
    a1 = moe.route_tokens("uniform", tokens, experts, 1, 9, ranks=ep)  # k = 1: nothing to merge
    np.testing.assert_allclose(
        moe.dedup_dispatch_matrix(a1, place, BPT),
        moe.dispatch_matrix(moe.counts_from_assignments(a1, experts), place, BPT),
    )


def test_dedup_hierarchical_stages():
    tokens, experts, k, ep, size = 2000, 64, 8, 16, 4
    a = moe.route_tokens("uniform", tokens, experts, k, 4, ranks=ep)
    place = moe.place_experts(experts, ep)
    s1, s2 = moe.dedup_hierarchical_stages(a, place, BPT, size)
    flat = moe.dedup_dispatch_matrix(a, place, BPT)
    np.testing.assert_allclose(s2.sum(axis=0), flat.sum(axis=0))  # one copy per needed rank
    # stage 1: a token crosses to another domain iff one of its k experts lives there
    per_domain = experts // (ep // size)
    p = 1 - comb(experts - per_domain, k) / comb(experts, k)
    src, dst = np.nonzero(s1)
    np.testing.assert_array_equal(src % size, dst % size)
    assert len(src) == ep * (ep // size - 1)  # one peer in every other domain
    sd = np.sqrt(tokens * p * (1 - p)) * BPT
    assert np.abs(s1[src, dst] - tokens * p * BPT).max() < 5 * sd
    assert s1.sum() < _cross_domain(flat, size)  # dedup saves scale-out bytes


def test_seeded_and_deterministic():
    a = moe.routing_counts("zipf:1.1", 100, 16, 2, 42, ranks=4)
    b = moe.routing_counts("zipf:1.1", 100, 16, 2, 42, ranks=4)
    c = moe.routing_counts("zipf:1.1", 100, 16, 2, 43, ranks=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_per_rank_token_counts():
    c = moe.routing_counts("uniform", [10, 0, 5], 6, 2, 1, ranks=3)
    np.testing.assert_array_equal(c.sum(axis=1), [20, 0, 10])
    with pytest.raises(ConfigError, match="one count per rank"):
        moe.routing_counts("uniform", [1, 2], 6, 2, ranks=3)


def test_contributor_sets_agree_with_the_dedup_matrix():
    """Grouping tokens by their set of remote expert ranks conserves the deduplicated
    traffic: sum over sets of |set| x tokens is the dedup matrix's row (in tokens), and each
    rank r's share is its column entry; tokens with only local experts are left out."""
    place = moe.place_experts(32, 8)
    a = moe.route_tokens("zipf:1.1", 40, 32, 4, rng=3, ranks=8)
    sets = moe.contributor_sets(a, place, ranks=8)
    d = moe.dedup_dispatch_matrix(a, place, 1.0, ranks=8)
    for s, by_set in enumerate(sets):
        assert all(s not in members and members == tuple(sorted(members)) for members in by_set)
        per_rank = np.zeros(8)
        for members, n in by_set.items():
            per_rank[list(members)] += n
        want = d[s].copy()
        want[s] = 0.0
        assert np.array_equal(per_rank, want)
        local_only = sum(set(place[row]) == {s} for row in a[s])
        assert sum(by_set.values()) == 40 - local_only
    with pytest.raises(ConfigError, match="assignments"):
        moe.contributor_sets(a[:3], place, ranks=8)
