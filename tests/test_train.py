"""Training step (workloads.train): bucket overlap closed forms, capacity, CLI."""

from __future__ import annotations

import math

import networkx as nx
import pytest

from topologies.graph import add_chip, add_link, add_switch, finish
from workloads.chips import chip
from workloads.models import model
from workloads.train import ADAM_BYTES_PER_PARAM, bucket_timeline, train_experiment, train_step


def star(n: int = 8, bandwidth: float | None = None) -> nx.Graph:
    g = nx.Graph()
    for i in range(n):
        add_chip(g, i, (float(i), 0.0))
    add_switch(g, n, (n / 2, 1.0), latency=100e-9)
    for i in range(n):
        add_link(g, i, n, link="ib", bandwidth=bandwidth)
    return finish(g, "star", {"n": n})


def test_bucket_timeline_hidden_and_exposed():
    # communication faster than gradient production: only the last bucket sticks out
    tl = bucket_timeline(0.0, 1.0, [0.1] * 4)
    assert [round(x[2], 12) for x in tl] == [0.35, 0.6, 0.85, 1.1]
    # communication slower: buckets queue back to back after the first is ready
    tl = bucket_timeline(2.0, 1.0, [1.0] * 4)
    assert tl[0][1] == 2.25 and tl[-1][2] == pytest.approx(2.25 + 4.0)


def test_training_state_that_does_not_fit_is_reported():
    r = train_step("llama3-8b", "h100", star(), dp=8, global_batch=8, seq_len=128)
    assert r.fits is False and math.isnan(r.step_time_s)
    m = model("llama3-8b")
    assert r.memory["needed"] == pytest.approx(m.total_params() * ADAM_BYTES_PER_PARAM)
    assert r.memory["available"] == 80e9 and "16 B/param" in r.memory["summary"]


def test_bandwidth_bound_step_exposes_comm_minus_overlap():
    """Slow links (1 GB/s): every bucket's all-reduce outlasts gradient production, so
    buckets run back to back from the first one's ready time and the exposed time is
    sum(bucket times) - (1 - 1/n) * backward_of_last_microbatch (closed form)."""
    r = train_step(
        "llama3-8b",
        "h100",
        star(bandwidth=1e9),
        dp=8,
        global_batch=8,
        seq_len=128,
        bucket="1GB",
        zero=1,
        efficiency=0.5,
    )
    assert r.fits
    n = r.buckets
    assert n == math.ceil(r.grad_bytes_per_chip / 1e9)
    backward_last = r.compute_s * 2 / 3 / r.params["microbatches"]
    assert r.exposed_comm_s == pytest.approx(r.grad_comm_s - (1 - 1 / n) * backward_last, rel=1e-9)
    assert r.step_time_s == pytest.approx(r.compute_s + r.exposed_comm_s, rel=1e-12)
    peak = chip("h100").peak("bf16")
    flops = 6 * model("llama3-8b").matrix_params() * 8 * 128
    assert r.mfu == pytest.approx(flops / (r.step_time_s * 8 * peak))
    # ring all-reduce of B bytes on 8 chips moves 2*7/8*B per link direction: a lower bound
    assert r.grad_comm_s >= 2 * 7 / 8 * r.grad_bytes_per_chip / 1e9


def test_fast_fabric_hides_all_but_the_last_bucket():
    """1 TB/s links: 161 buckets of 100 MB take less than the backward pass (one
    micro-batch), so only the last bucket's all-reduce is exposed."""
    r = train_step(
        "llama3-8b",
        "h100",
        star(bandwidth=1e12),
        dp=8,
        global_batch=8,
        seq_len=2048,
        bucket="100MB",
        zero=1,
    )
    assert r.grad_comm_s < r.compute_s * 2 / 3
    last = r.runs.get("grad_allreduce_last", r.runs["grad_allreduce"])["time_s"]
    assert 0 < r.exposed_comm_s <= last * (1 + 1e-9)
    rec = train_experiment(
        model="llama3-8b",
        chip="h100",
        topo=star(),
        dp=8,
        global_batch=64,
        seq_len=2048,
        bucket="100MB",
        zero=1,
    )
    keys = ("step_time_s", "exposed_comm_s", "allreduce", "network_model", "seed", "netsim_version")
    for key in keys:
        assert key in rec


def test_cli_train_json_and_ring_bytes(capsys):
    """``netsim train --json``: the gradient is cut into ceil(G / bucket) buckets and a ring
    all-reduce of a bucket of B bytes over p chips puts 2(p-1)/p * B on the wire per chip."""
    import json

    from netsim.app.cli import main

    argv = ["train", "--model", "llama3-8b", "--chip", "h100", "--topo", "dgx-h100",
            "--global-batch", "64", "--seq-len", "2048", "--zero", "1", "--bucket", "100MB",
            "--allreduce", "ring", "--json"]  # fmt: skip
    assert main(argv) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["fits"] and d["dp"] == 8 and d["allreduce"] == "ring"
    m = model("llama3-8b")
    assert d["grad_bytes_per_chip"] == pytest.approx(m.total_params() * 2, rel=1e-3)
    assert d["buckets"] == math.ceil(d["grad_bytes_per_chip"] / 100e6)
    ring = d["runs"]["grad_allreduce"]
    assert ring["bytes"] == pytest.approx(8 * 2 * 7 / 8 * 100e6, rel=1e-6)
    assert d["step_time_s"] == pytest.approx(d["compute_s"] + d["exposed_comm_s"], rel=1e-12)
    assert 0 <= d["exposed_comm_s"] <= d["grad_comm_s"]
    assert main(argv[:-1]) == 0
    assert "GB of gradients per chip" in capsys.readouterr().out
