"""The closed-form contention-free estimate equals the event-driven analytical run exactly."""

from __future__ import annotations

import numpy as np
import pytest

from collectives import build, make_backend, run, run_collective
from collectives.algorithms import ALGORITHMS
from collectives.calibration import cost_model, link_types
from collectives.estimate import contention_free
from topologies.registry import build as build_topology
from topologies.torus import torus

FAT = build_topology("fat-tree-k4:reduction=true")
RANKS = list(range(8))
# NCCL's multi-node algorithms need nodes with NVSwitches (and SHARP for collnet).
HIER = build_topology("hierarchical:nodes=2,gpus=4,fabric_reduction=true")
ON_NODES = {"nvls": [0, 1, 2, 3], "nvls-tree": RANKS, "collnet": RANKS, "collnet-chain": RANKS}


def _schedule(op: str, algo: str, count: int):
    if algo in ON_NODES:
        return HIER, build(op, algo, ON_NODES[algo], count, itemsize=4, graph=HIER)
    return FAT, _fat_schedule(op, algo, count)


def _fat_schedule(op: str, algo: str, count: int):
    kw = {}
    if algo in ("hierarchical", "torus"):  # rank grids: the fat-tree's chips have no coord
        kw["dims"] = "2x4"
    if op == "alltoall":
        m = np.full((8, 8), count // 8, dtype=np.int64)
        np.fill_diagonal(m, 0)
        kw["matrix"] = m
    if op == "sendrecv":
        return build(op, algo, [0, 7], count, itemsize=4, graph=FAT)
    return build(op, algo, RANKS, count, itemsize=4, graph=FAT, **kw)


@pytest.mark.parametrize(("op", "algo"), sorted(ALGORITHMS))
@pytest.mark.parametrize(
    "costs",
    [
        {},
        {"step_overhead": 1.3e-6, "launch_overhead": 2.1e-6},
        {"efficiency": 0.8, "multipath": True, "reduce_bandwidth": 3.35e12},
        {"costs": cost_model("nccl", link_types(FAT), step=0.7e-6)},
    ],
    ids=["hardware", "step-launch", "eff-multipath-reduce", "nccl-per-link"],
)
def test_estimate_equals_the_event_driven_run_exactly(op, algo, costs):
    G, s = _schedule(op, algo, 3000)
    ran = run(make_backend(G, "analytical"), s, **costs)
    est = contention_free(make_backend(G, "analytical"), s, **costs)
    assert est == ran.arrivals  # bit for bit, every transfer


def test_switch_reduction_engines_are_served_in_arrival_order():
    """NVL72's NVLink switches reduce at 1.70 TB/s (netsim.core.linktypes.REDUCTION_ENGINES): with
    all 72 GPUs the engines bind (the run takes 1.76x its time without them, measured), and
    the estimate still equals the event-driven run."""
    G = build_topology("nvl72")
    s = build("allreduce", "innetwork", list(range(72)), 1 << 22, itemsize=4, graph=G)
    ran = run(make_backend(G, "analytical"), s)
    assert contention_free(make_backend(G, "analytical"), s) == ran.arrivals


def test_ring_estimate_is_the_alpha_beta_closed_form():
    """Ring all-reduce on a ring of p chips: T = 2 (p - 1) (a + (m + ceil(m/M) h) / B)
    (collectives.ring docstring), with the ici link type's MTU M = 512 B and h = 32 B."""
    p, n = 8, 8 * 1000
    G = torus((p,), bandwidth=50e9, latency=1e-6)
    s = build("allreduce", "ring", list(range(p)), n, itemsize=1, graph=G)
    t = max(contention_free(make_backend(G, "analytical"), s))
    m = n // p
    assert t == pytest.approx(2 * (p - 1) * (1e-6 + (m + 2 * 32) / 50e9), rel=1e-12)


def test_run_collective_skips_the_estimate_when_not_asked():
    kw = {"backend": "packet", "seed": 1}
    with_est = run_collective("torus:dims=4x4", "allreduce", "ring", "64KiB", **kw)
    without = run_collective("torus:dims=4x4", "allreduce", "ring", "64KiB", estimate=False, **kw)
    assert without["analytical_time_s"] is None
    assert without["time_s"] == with_est["time_s"]
    ana = run_collective("torus:dims=4x4", "allreduce", "ring", "64KiB", backend="analytical")
    assert with_est["analytical_time_s"] == ana["time_s"]
