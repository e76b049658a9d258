"""DeepEP-style MoE modes: ``low-latency`` (direct, one copy per token and
expert) and ``normal`` (RDMA once per node to the rail peer, then NVLink forwarding)."""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import TINY_MOE

from netsim.core.errors import ConfigError
from workloads import moe
from workloads.decode import decode
from workloads.moe_nodes import route_node_limited
from workloads.moe_normal import token_targets

TINY = TINY_MOE.replace(
    experts=16, experts_per_token=4, dispatch_dtype="fp8/128", combine_dtype="bf16"
)
# 2 nodes x 4 GPUs, one NIC per GPU on a rail-optimised leaf-spine fabric.
TOPO = "hierarchical:nodes=2,gpus=4,switches=2,links_per_gpu=4"
KW = dict(ep=8, batch=512, context=16, landing="sram", backend="flow", seed=5)


def _targets(routes, place, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Token copies counted from the routes alone, token by token (independent of
    :func:`token_targets`): ``[s, d]`` tokens of ``s`` with an expert on rank ``d``, ``[s, m]``
    with one on node ``m`` (``size`` consecutive ranks)."""
    ranks = len(routes)
    per_rank = np.zeros((ranks, ranks), dtype=np.int64)
    per_node = np.zeros((ranks, ranks // size), dtype=np.int64)
    for s, rows in enumerate(routes):
        for row in rows:
            hit = {int(place[e]) for e in row}
            for d in hit:
                per_rank[s, d] += 1
            for m in {d // size for d in hit}:
                per_node[s, m] += 1
    return per_rank, per_node


def _routes(seed: int = 5) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return moe.route_tokens("uniform", 64, 16, 4, rng, ranks=8)


def test_token_targets_count_each_token_once_per_rank_and_per_node():
    a = _routes()
    place = moe.place_experts(16, 8)
    per_rank, per_node = token_targets(a, place, 4)
    want_rank, want_node = _targets(a, place, 4)
    assert np.array_equal(per_rank, want_rank) and np.array_equal(per_node, want_node)
    assert np.array_equal(per_rank * 3, moe.dedup_dispatch_matrix(a, place, 3.0))
    # A node is hit iff one of its ranks is: between max and sum of its ranks' counts.
    by_node = per_rank.reshape(8, 2, 4)
    assert np.all(per_node >= by_node.max(axis=2)) and np.all(per_node <= by_node.sum(axis=2))
    assert np.all(per_node <= 64)
    with pytest.raises(ConfigError, match="domain_size"):
        token_targets(a, place, 3)


def test_normal_sends_each_token_once_per_node_over_rdma():
    """Closed form on the wire: every RDMA message goes to the rail peer (chip -> leaf ->
    chip, 2 IB links), every forward crosses one NVSwitch (2 NVLink links)."""
    r = decode(TINY, "h100", TOPO, dispatch="normal", **KW)
    runs = {s.name: s.run for s in r.sites}
    a = moe.route_tokens("uniform", 64, 16, 4, np.random.default_rng(5), ranks=8)
    per_rank, per_node = _targets(a, moe.place_experts(16, 8), 4)
    node = np.arange(8) // 4
    rdma = sum(per_node[s, 1 - node[s]] for s in range(8))
    # Forwards: remote ranks other than the rail peer, plus intra-node ranks other than self.
    fwd = sum(
        per_rank[s, d]
        for s in range(8)
        for d in range(8)
        if d != s and not (node[d] != node[s] and d % 4 == s % 4)
    )
    for name, tb in (("moe_dispatch", 1024 + 8 * 4), ("moe_combine", 2048)):
        assert runs[name].algo == "normal"
        assert runs[name].link_bytes["ib"] == 2 * rdma * tb
        assert runs[name].link_bytes["nvlink"] == 2 * fwd * tb


def test_low_latency_is_direct_and_normal_moves_fewer_rdma_bytes():
    """Same transfers as direct (the flow model does not depend on their order: equal
    times without DeepEP's kernel costs), combine defaulting to the dispatch mode; normal
    deduplicates per node."""
    ll = decode(TINY, "h100", TOPO, dispatch="low-latency", moe_kernels="none", **KW)
    direct = decode(TINY, "h100", TOPO, dispatch="direct", **KW)
    t_ll = {s.name: (s.run.algo, s.time_s) for s in ll.sites}
    assert t_ll["moe_dispatch"] == ("low-latency", direct.to_dict()["moe_dispatch_s"])
    assert t_ll["moe_combine"][0] == "low-latency"  # combine defaults to the dispatch mode
    normal = decode(TINY, "h100", TOPO, dispatch="normal", **KW)
    ib = {s.name: s.run.link_bytes["ib"] for s in normal.sites}
    ib_ll = {s.name: s.run.link_bytes["ib"] for s in ll.sites}
    assert ib["moe_dispatch"] < ib_ll["moe_dispatch"]


def test_normal_needs_sampled_routes_and_nodes():
    with pytest.raises(ConfigError, match="moe_mode"):
        decode(
            TINY,
            "h100",
            TOPO,
            dispatch="normal",
            moe_mode="expected",
            **{k: v for k, v in KW.items() if k != "seed"},
        )
    with pytest.raises(ConfigError, match="node attribute"):
        decode(TINY, "h100", "tree:depth=1,radix=8", dispatch="normal", **KW)


def test_low_latency_streams_every_nic_at_line_rate_on_the_packet_engine():
    """Expected uniform counts on 2 nodes x 4 GPUs: each GPU sends 256 tokens x 4 experts x
    8/16 remote x 1056 B over its own 50 GB/s NIC and receives as much, so the dispatch takes
    that over the NIC rate plus wire headers (0.6%), latency (~0.5 us) and the share the NIC
    yields to the NVLink sends under the GPU's injection cap (< 10% together; 18 NVLink links
    per GPU keep that share small). Issued in direct's pairwise order, the four GPUs of a
    node start on the same remote GPU and queue behind it."""
    topo = "hierarchical:nodes=2,gpus=4,switches=2,links_per_gpu=18"
    kw = dict(ep=8, batch=2048, context=16, landing="sram", backend="packet")
    ll = decode(TINY, "h100", topo, dispatch="low-latency", moe_kernels="none", **kw).to_dict()
    bound = 256 * 4 * 8 / 16 * 1056 / 50e9
    assert bound < ll["moe_dispatch_s"] < 1.10 * bound
    direct = decode(TINY, "h100", topo, dispatch="direct", **kw).to_dict()
    assert direct["moe_dispatch_s"] > 1.2 * ll["moe_dispatch_s"]


def test_node_limited_routing_keeps_tokens_on_m_nodes_and_uniform_means():
    """``uniform@2`` over 8 nodes of 4 experts: no token reaches a third node, and each
    expert keeps its mean load tokens*k/E (binomial-like count, 5 standard deviations)."""
    rng = np.random.default_rng(1)
    a = route_node_limited("uniform@2", 20000, 32, 4, rng, ranks=1, nodes=8)[0]
    assert max(len(set(row // 4)) for row in a) == 2
    assert all(len(set(row)) == 4 for row in a[:500])  # distinct experts
    counts = np.bincount(a.ravel(), minlength=32)
    mean = 20000 * 4 / 32
    assert np.all(np.abs(counts - mean) < 5 * np.sqrt(mean))
    assert str(moe.parse_routing("zipf:1.2@4")) == "zipf:1.2:0@4"
    for bad in ("uniform@0", "uniform@x"):
        with pytest.raises(ConfigError, match="node limit"):
            moe.parse_routing(bad)
    with pytest.raises(ConfigError, match="fewer than top_k"):
        route_node_limited("uniform@1", 4, 32, 8, rng, ranks=1, nodes=8)


def test_node_limit_cuts_normal_rdma_copies():
    """On 2 nodes a limit of 1 keeps every token on one node: RDMA bytes only for tokens
    whose node is the other one; a limit >= nodes changes nothing."""
    r1 = decode(TINY, "h100", TOPO, dispatch="normal", moe_routing="uniform@1", **KW)
    r2 = decode(TINY, "h100", TOPO, dispatch="normal", moe_routing="uniform@2", **KW)
    r0 = decode(TINY, "h100", TOPO, dispatch="normal", **KW)
    ib = [{s.name: s.run.link_bytes["ib"] for s in r.sites}["moe_dispatch"] for r in (r1, r2, r0)]
    assert ib[1] == ib[2]
    rng = np.random.default_rng(5)
    routes = route_node_limited("uniform@1", 64, 16, 4, rng, ranks=8, nodes=2)
    _, per_node = _targets(routes, moe.place_experts(16, 8), 4)
    remote = sum(per_node[s, 1 - s // 4] for s in range(8))
    assert ib[0] == 2 * remote * (1024 + 8 * 4) < ib[1]
