"""Simulate each distinct thing once (workloads.once): the memo and replicas timed once give
exactly the numbers of simulating every schedule whole."""

from __future__ import annotations

import dataclasses

import pytest

from workloads.decode import decode
from workloads.fabric import Fabric, run_groups
from workloads.once import components, memo_clear, memo_info, whole
from workloads.rank_layout import resolve_topology, topology_chips


def fabric(topo: str, backend: str = "packet", once: bool = True, **kw) -> Fabric:
    g = resolve_topology(topo)
    chips = topology_chips(g)
    args = dict(
        backend=backend,
        forwarding="cut-through",
        routing="auto",
        seed=0,
        step_overhead=0.0,
        landing_latency=0.0,
        instance=frozenset(chips[:4]),
    )
    args.update(kw)
    return Fabric(g, chips, simulate_once=once, **args)


def timed(f: Fabric, groups, algo="ring", count=4096, op="allreduce"):
    return run_groups(f, "x", op, algo, groups, count, 2)


def same(a, b) -> None:
    """Every field of two CollectiveRuns but the backend counters is equal, exactly."""
    da, db = dataclasses.asdict(a), dataclasses.asdict(b)
    da.pop("stats"), db.pop("stats")
    assert da == db


ROWS_4X4 = [[4 * r + c for c in range(4)] for r in range(4)]


@pytest.mark.parametrize("backend", ["packet", "analytical"])
@pytest.mark.parametrize(
    ("topo", "groups", "algo"),
    [
        ("torus:dims=4x4", ROWS_4X4, "ring"),  # rows on disjoint rings: one simulated
        ("torus:dims=4x4", [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]], "tree"),
        ("fat-tree-k4", [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]], "ring"),
        ("fat-tree-k4", [[0, 4, 8, 12], [1, 5, 9, 13], [2, 6, 10, 14], [3, 7, 11, 15]], "ring"),
        ("hierarchical:nodes=2", [list(range(8)), list(range(8, 16))], "oneshot"),
        ("dgx-h100", [[0, 1, 2, 3], [4, 5, 6, 7]], "innetwork"),
    ],
)
def test_once_equals_simulating_whole(backend, topo, groups, algo):
    memo_clear()
    got = timed(fabric(topo, backend), groups, algo)
    want = timed(fabric(topo, backend, once=False), groups, algo)
    same(got, want)


def test_disjoint_replicas_are_simulated_once():
    memo_clear()
    r = timed(fabric("torus:dims=4x4"), ROWS_4X4)
    assert r.stats["groups"] == 4 and r.stats["simulated_groups"] == 1
    assert memo_info()["reused_groups"] == 3


def test_replicas_sharing_links_are_simulated_together():
    """Columns of a k=4 fat-tree: every group spans the four pods, so they share the core
    links and form one component (simulated together)."""
    f = fabric("fat-tree-k4")
    cols = [[0, 4, 8, 12], [1, 5, 9, 13], [2, 6, 10, 14], [3, 7, 11, 15]]
    sched = timed(f, cols)
    assert sched.stats["simulated_groups"] == 4
    from collectives import build

    scheds = [build("allreduce", "ring", g, 64, itemsize=2, graph=f.graph) for g in cols]
    assert components(f, scheds) == [[0, 1, 2, 3]]


def test_groups_summing_into_one_switch_share_its_reduction_engine():
    """Two in-network groups of a DGX H100 reduce on the same four NVSwitches: one component,
    although their links are disjoint."""
    from collectives import build

    f = fabric("dgx-h100")
    groups = [[0, 1, 2, 3], [4, 5, 6, 7]]
    scheds = [build("allreduce", "innetwork", g, 64, itemsize=2, graph=f.graph) for g in groups]
    assert components(f, scheds) == [[0, 1]]
    rings = [build("allreduce", "ring", g, 64, itemsize=2, graph=f.graph) for g in groups]
    assert components(f, rings) == [[0], [1]]


def test_random_routing_is_never_split():
    memo_clear()
    f = fabric("dragonfly:a=4,p=2,h=1", routing="ugal")
    r = timed(f, [[0, 1, 2, 3], [8, 9, 10, 11]])
    assert r.stats["simulated_groups"] == 2 and memo_info()["reused_groups"] == 0


# --------------------------------------------------------------------------- the memo key

BASE = {"topo": "torus:dims=4x4", "groups": ROWS_4X4[:2], "algo": "ring", "count": 4096}


def _with_latency(topo: str):
    g = resolve_topology(topo).copy()
    u, v = next(iter(g.edges))
    g.edges[u, v]["latency"] = 2 * g.edges[u, v]["latency"]
    return g


@pytest.mark.parametrize(
    "change",
    [
        {"count": 4097},  # size
        {"groups": [[0, 1, 2, 3], [12, 13, 14, 15]]},  # ranks
        {"algo": "tree"},  # algorithm
        {"fabric": {"backend": "analytical"}},
        {"fabric": {"forwarding": "store-and-forward"}},
        {"fabric": {"routing": "shortest"}},
        {"fabric": {"seed": 1}},
        {"fabric": {"step_overhead": 1e-6}},
        {"fabric": {"launch_overhead": 1e-6}},
        {"fabric": {"efficiency": 0.9}},
        {"fabric": {"multipath": True}},
        {"fabric": {"landing_latency": 5e-7}},
        {"graph": "latency"},  # link state
    ],
    ids=lambda c: next(iter(c.values())) if "fabric" not in c else next(iter(c["fabric"])),
)
def test_a_change_of_any_input_misses(change):
    memo_clear()
    first = timed(fabric(BASE["topo"]), BASE["groups"], BASE["algo"], BASE["count"])
    again = timed(fabric(BASE["topo"]), BASE["groups"], BASE["algo"], BASE["count"])
    assert memo_info()["hits"] == 1
    same(first, again)
    f = fabric(BASE["topo"], **change.get("fabric", {}))
    if change.get("graph") == "latency":
        f.graph = _with_latency(BASE["topo"])
    args = {k: change.get(k, BASE[k]) for k in ("groups", "algo", "count")}
    got = timed(f, args["groups"], args["algo"], args["count"])
    assert memo_info()["hits"] == 1  # a miss
    same(got, timed(dataclasses.replace(f, simulate_once=False), **args))


def test_decode_is_unchanged_by_simulating_once():
    """A decode step on 4 data-parallel replicas of a 4x4 torus and an MoE model: identical
    records with and without the memo and replica split."""
    kw = dict(model="deepseek-v3", chip="h200", topo="torus:dims=4x4x4", ep=16, batch=64)
    memo_clear()
    got = decode(**kw).to_dict()
    assert memo_info()["reused_groups"] > 0
    with whole():
        want = decode(**kw).to_dict()
    assert got == want


def test_the_memo_holds_a_bounded_number_of_transfers(monkeypatch):
    """A schedule larger than MEMO_TRANSFERS is timed but not kept; smaller ones evict the
    least recently used until the bound holds."""
    from workloads import once

    memo_clear()
    f = fabric("torus:dims=4x4")
    small = timed(f, ROWS_4X4[:1], count=64)  # 24 transfers (ring on 4 ranks)
    monkeypatch.setattr(once, "MEMO_TRANSFERS", small.transfers)
    assert memo_info()["size"] == 1
    timed(f, ROWS_4X4[:2], count=64)  # 48 transfers: not kept
    assert memo_info()["size"] == 1
    timed(f, ROWS_4X4[1:2], count=64)  # 24 more: the first is dropped
    timed(f, ROWS_4X4[:1], count=64)
    assert memo_info()["size"] == 1 and memo_info()["hits"] == 0
