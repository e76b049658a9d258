"""Decode-time studies: MoE all-to-all under routing skew, multicast dispatch,
stragglers with wait/substitute, landing zones and cost per token.

Everything here times collectives on small hand-built topologies.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from model_helpers import TINY_MOE

from collectives.schedule import apply_transfer
from netsim.core.errors import ConfigError
from netsim.core.linktypes import LINK_TYPES
from topologies.graph import add_chip, add_link, add_switch, finish
from topologies.nvswitch import nvswitch
from workloads import moe
from workloads.decode import decode
from workloads.models import TransformerModel

IB = LINK_TYPES["ib"]


def star(n: int = 8, reduction: bool = True) -> nx.Graph:
    """n chips on one InfiniBand crossbar switch (no shared links between pairs); the
    switch can multicast and reduce in-network unless ``reduction=False``."""
    g = nx.Graph()
    for i in range(n):
        add_chip(g, i, (float(i), 0.0))
    add_switch(g, n, (n / 2, 1.0), latency=IB.switch_latency, reduction=reduction)
    for i in range(n):
        add_link(g, i, n, link="ib")
    return finish(g, "star", {"n": n})


MOE = TINY_MOE
DENSE = TransformerModel(
    name="tiny", layers=2, hidden=64, heads=8, kv_heads=8, head_dim=8, ffn=128, vocab=256
)
KW = dict(ep=8, batch=512, context=16, landing="sram", allreduce="ring")


def _wire(nbytes: float) -> float:
    """Bytes on the wire for a payload: plus one header per MTU-sized packet."""
    return nbytes + np.ceil(nbytes / IB.mtu) * IB.header


def _site(r, name):
    return next(s for s in r.sites if s.name == name)


def test_uniform_alltoall_matches_the_closed_form():
    """Uniform routing, expected counts: every chip sends and receives
    tokens*k*(ep-1)/ep*hidden*2 bytes = 64*2*7/8*2048 = 229,376 B through its one link, so
    the dispatch takes about that over the link bandwidth (receiver- and sender-bound)."""
    r = decode(MOE, "h100", star(), dispatch="direct", **KW)
    per_chip = 64 * 2 * 7 / 8 * 2048
    t = _site(r, "moe_dispatch").time_s
    bw_time = per_chip / IB.bandwidth
    assert bw_time <= t <= _wire(per_chip) / IB.bandwidth + 2e-6
    tails = _site(r, "moe_dispatch").run.tails.values()
    assert max(tails) == pytest.approx(min(tails), rel=1e-9)  # balanced: every chip alike
    assert r.collectives_per_token == {"moe_dispatch": 2, "moe_combine": 2}
    assert _site(r, "moe_combine").time_s == pytest.approx(t, rel=0.02)


def test_zipf_skew_slows_dispatch_in_proportion_to_the_hottest_chip():
    spec = "zipf:1.2"
    uni = decode(MOE, "h100", star(), dispatch="direct", **KW)
    skew = decode(MOE, "h100", star(), dispatch="direct", moe_routing=spec, **KW)
    counts = moe.routing_counts(spec, 64, 8, 2, ranks=8, mode="expected")
    d = moe.dispatch_matrix(counts, moe.place_experts(8, 8), 2048.0)
    hot = moe.imbalance(d)["max_received"]
    ratio = hot / (64 * 2 * 7 / 8 * 2048)
    assert ratio > 1.5
    got = _site(skew, "moe_dispatch").time_s / _site(uni, "moe_dispatch").time_s
    assert got == pytest.approx(ratio, rel=0.1)


def test_multicast_dispatch_sends_each_token_once_per_source():
    r = decode(MOE, "h100", star(), dispatch="multicast", moe_mode="sample", seed=3, **KW)
    run = _site(r, "moe_dispatch").run
    rng = np.random.default_rng(3)
    place = moe.place_experts(8, 8)
    remote = 0
    for _ in range(1):  # one EP group on 8 chips
        for s, a in enumerate(moe.route_tokens("uniform", 64, 8, 2, rng, ranks=8)):
            remote += int(sum(bool(set(place[row]) - {s}) for row in a))
    assert run.bytes == remote * 2048
    assert run.algo == "multicast"


def test_substitution_never_waits_past_the_deadline_and_never_substitutes_without_stragglers():
    g = star()
    base = dict(tp=8, batch=1, context=16, landing="sram", allreduce="ring", tokens=50)
    clean = decode(DENSE, "h100", g, **base)
    sub0 = decode(DENSE, "h100", g, straggler_policy="substitute:1us", **base)
    assert sub0.to_dict()["substituted_fraction"] == 0.0
    assert sub0.token_latency_s == pytest.approx(clean.token_latency_s, rel=1e-12)
    deadline = 5e-6
    slow = "chip:0.125:50us"
    wait = decode(DENSE, "h100", g, stragglers=slow, **base)
    sub = decode(DENSE, "h100", g, stragglers=slow, straggler_policy="substitute:5us", **base)
    calls = 4  # 2 all-reduces x 2 layers
    bound = clean.token_latency_s + calls * deadline
    d = sub.to_dict()
    assert d["token_latency_p999_s"] <= bound * (1 + 1e-12)
    assert d["substituted_fraction"] == pytest.approx(1 / 8)  # one late chip of 8, every call
    # waiting for a chip that is 50 us late costs the full delay at every call
    assert wait.to_dict()["token_latency_p50_s"] >= clean.token_latency_s + calls * 50e-6 - 1e-12
    assert wait.to_dict()["substituted_fraction"] == 0.0


def test_exponential_jitter_widens_the_tail():
    r = decode(
        DENSE,
        "h100",
        star(),
        tp=8,
        batch=1,
        context=16,
        landing="sram",
        allreduce="ring",
        stragglers="exp:2us",
        tokens=400,
        seed=1,
    )
    d = r.to_dict()
    assert d["token_latency_p999_s"] > d["token_latency_p99_s"] > d["token_latency_p50_s"]
    assert d["token_latency_p50_s"] > r.compute_s + r.memory_s + r.launch_s
    # the samples behind the percentiles are in the record (for CDF figures)
    samples = np.asarray(d["token_latency_samples_s"])
    assert samples.shape == (400,)
    assert np.percentile(samples, 99) == pytest.approx(d["token_latency_p99_s"], rel=1e-12)
    assert samples.mean() == pytest.approx(d["token_latency_s"], rel=1e-12)


# ---------------------------------------------------------------------- in-network MoE
def two_level(up_bandwidth: float = IB.bandwidth, reduction: bool = True) -> nx.Graph:
    """Two leaf switches of four chips under one spine; leaf-spine links at one chip link's
    bandwidth, so the core is oversubscribed 4:1."""
    g = nx.Graph()
    for i in range(8):
        add_chip(g, i, (float(i), 0.0))
    for sw, x in ((8, 1.5), (9, 5.5), (10, 3.5)):
        add_switch(g, sw, (x, 1.0 + (sw == 10)), latency=IB.switch_latency, reduction=reduction)
    for i in range(8):
        add_link(g, i, 8 if i < 4 else 9, link="ib")
    add_link(g, 8, 10, link="ib", bandwidth=up_bandwidth)
    add_link(g, 9, 10, link="ib", bandwidth=up_bandwidth)
    return finish(g, "two-level", {})


WIDE = TINY_MOE.replace(name="widemoe", experts=32, experts_per_token=8, expert_ffn=256)


def _execute(sched, inputs):
    """Run a schedule's transfers in order on numpy buffers (a topological order)."""
    bufs = {k: np.zeros(n) for k, n in sched.buffers.items()}
    for k, v in inputs.items():
        bufs[k][: len(v)] = v
    for t in sched.transfers:
        apply_transfer(bufs, t, bufs[(t.src, t.src_buf)][t.lo : t.hi].copy())
    return bufs


@pytest.mark.parametrize("graph", [star(), two_level()], ids=["star", "two-level"])
def test_innetwork_combine_returns_one_reduced_vector_per_token(graph):
    """Every source chip receives exactly one hidden vector per token that had a remote
    expert (not one per contributing chip), and it is the sum of the contributors' partial
    outputs: executed on numbers, the schedule adds them up."""
    from workloads.moe_collectives import innetwork_combine_schedule

    hidden = 16
    place = moe.place_experts(32, 8)
    assign = moe.route_tokens("zipf:1.0", 6, 32, 8, rng=5, ranks=8)
    sets = moe.contributor_sets(assign, place, ranks=8)
    sched = innetwork_combine_schedule(graph, [list(range(8))], [sets], hidden, 2)
    rng = np.random.default_rng(0)
    inputs, want = {}, {}
    for dst, by_set in enumerate(sets):
        at = 0
        for k, (members, ntok) in enumerate(by_set.items()):
            total = np.zeros(ntok * hidden)
            for c in members:
                x = rng.integers(-5, 6, ntok * hidden).astype(float)
                inputs[(c, f"cmb{dst}.{k}")] = x
                total += x
            want[dst, at] = total
            at += ntok * hidden
        remote_tokens = sum(by_set.values())
        into = sum(t.count for t in sched.transfers if dst in t.dsts)
        assert into == remote_tokens * hidden
    bufs = _execute(sched, inputs)
    for (dst, at), total in want.items():
        assert np.array_equal(bufs[(dst, "recv")][at : at + len(total)], total)


def test_innetwork_combine_beats_point_to_point_on_an_oversubscribed_core():
    """32 experts, top-8, 8 chips in two pods with a 4:1 oversubscribed core. A token's
    partial outputs from chips of the same pod are added in their leaf switch, so fewer
    bytes cross the core than when each chip returns its partial point to point; the
    combine is faster and spends less network energy. The JSON says which ran."""
    kw = dict(ep=8, batch=512, context=16, landing="sram", dispatch="multicast", seed=1)
    p2p = decode(WIDE, "h100", two_level(), combine="direct", **kw)
    inc = decode(WIDE, "h100", two_level(), combine="innetwork", **kw)
    assert _site(inc, "moe_combine").run.algo == "innetwork"
    assert _site(p2p, "moe_combine").run.algo == "direct"
    d = inc.to_dict()
    assert d["combine"] == "innetwork" and d["dispatch"] == "multicast"
    assert d["moe_mode"] == "sample"
    assert [s["algo"] for s in d["collective_sites"]] == ["multicast", "innetwork"]
    assert _site(inc, "moe_combine").time_s < 0.9 * _site(p2p, "moe_combine").time_s
    assert inc.cost["energy_parts_j"]["network"] < p2p.cost["energy_parts_j"]["network"]
    # dispatch is the same draw in both runs
    assert _site(inc, "moe_dispatch").time_s == _site(p2p, "moe_dispatch").time_s


def test_token_level_options_need_capable_switches_and_sampled_routes():
    """Multicast dispatch and in-network combine are refused where the switches cannot
    multicast/reduce (reduction=False), naming the option and the switch; both follow
    individual tokens, so mean (expected) routing counts are refused too."""
    kw = dict(ep=8, batch=64, context=16, landing="sram")
    with pytest.raises(ConfigError, match=r"^dispatch: switch 8 .*reduction=False"):
        decode(MOE, "h100", star(reduction=False), dispatch="multicast", **kw)
    with pytest.raises(ConfigError, match=r"^combine: innetwork .*reduction"):
        decode(MOE, "h100", star(reduction=False), combine="innetwork", **kw)
    with pytest.raises(ConfigError, match=r"^moe_mode: .*sample.*'expected'"):
        decode(MOE, "h100", star(), combine="innetwork", moe_mode="expected", **kw)
    with pytest.raises(ConfigError, match=r"^combine: must be one of"):
        decode(MOE, "h100", star(), combine="multicast", **kw)
    # the dense all-to-all algorithms run on the same switch without the capability
    r = decode(MOE, "h100", star(reduction=False), dispatch="direct", **kw)
    assert r.to_dict()["combine"] == "direct" and r.to_dict()["moe_mode"] == "expected"


def test_innetwork_allreduce_critical_chain_does_not_grow_with_p():
    """TP all-reduce of a tiny activation on a one-level NVSwitch board: the ring's chain
    is 2(p-1) dependent messages, each crossing two links, so adding dL to every link adds
    calls * 2(p-1) * 2 * dL; the in-network all-reduce goes up to the switch and comes down
    once (plus its pipelined chunks), the same chain whatever p."""
    dl = 1e-6

    def shift(tp, algo):
        kw = dict(tp=tp, batch=1, context=16, allreduce=algo, landing="sram")
        r0 = decode(DENSE, "h100", nvswitch(8, 4, 18, latency=10e-9), **kw)
        r1 = decode(DENSE, "h100", nvswitch(8, 4, 18, latency=10e-9 + dl), **kw)
        assert r1.allreduce == algo
        return r1.token_latency_s - r0.token_latency_s, r1.sites[0].run.critical_messages

    calls = 4  # 2 all-reduces x 2 layers
    for p in (4, 8):
        d_ring, n_ring = shift(p, "ring")
        assert n_ring == 2 * (p - 1)
        assert d_ring == pytest.approx(calls * 2 * (p - 1) * 2 * dl, rel=1e-6)
    d4, n4 = shift(4, "innetwork")
    d8, n8 = shift(8, "innetwork")
    assert n4 == n8 < 2 * (4 - 1)
    # every in-network message crosses one link (chip<->switch)
    assert d4 == pytest.approx(d8, rel=1e-9)
    assert d8 == pytest.approx(calls * n8 * dl, rel=1e-6)
