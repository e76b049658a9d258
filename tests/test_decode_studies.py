"""Decode-time studies (issue 6): MoE all-to-all under routing skew, multicast dispatch,
stragglers with wait/substitute, landing zones and cost per token.

Everything here times collectives, so the module is skipped while the collectives API is
missing.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from netsim.linktypes import LINK_TYPES
from topologies._build import add_chip, add_link, add_switch, finish
from workloads import moe
from workloads.decode import decode
from workloads.models import TransformerModel

IB = LINK_TYPES["ib"]


def star(n: int = 8) -> nx.Graph:
    """n chips on one InfiniBand crossbar switch (no shared links between pairs)."""
    g = nx.Graph()
    for i in range(n):
        add_chip(g, i, (float(i), 0.0))
    add_switch(g, n, (n / 2, 1.0), latency=IB.switch_latency)
    for i in range(n):
        add_link(g, i, n, link="ib")
    return finish(g, "star", {"n": n})


MOE = TransformerModel(
    name="tinymoe",
    layers=2,
    hidden=1024,
    heads=8,
    kv_heads=8,
    head_dim=128,
    ffn=2048,
    vocab=256,
    experts=8,
    experts_per_token=2,
    expert_ffn=512,
)
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
