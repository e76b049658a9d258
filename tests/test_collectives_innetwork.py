"""Tests of collectives.innetwork: SHARP / NVLink SHARP reductions in the switches.

Closed forms: one traversal up the aggregation tree and one multicast down (``depth + 1``
sequential transfers, ``2 depth`` link hops) whatever the rank count, against ``2(p-1)``
steps for the ring; each rank injects its data once and receives the result once.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from schedule_helpers import check, longest_chain

from collectives.hierarchical import allreduce_hierarchical
from collectives.innetwork import (
    aggregation_planes,
    allreduce_innetwork,
    broadcast_innetwork,
    reduce_innetwork,
)
from collectives.schedule import Schedule, merge
from netsim.core.engine import PacketNetwork
from netsim.core.errors import ConfigError
from topologies.hierarchical import hierarchical
from topologies.nvswitch import nvswitch
from topologies.trees import fat_tree, tree

BUILDERS = {
    "allreduce": allreduce_innetwork,
    "broadcast": broadcast_innetwork,
    "reduce": reduce_innetwork,
}
DGX = nvswitch()  # DGX H100: 8 GPUs, 4 NVSwitch chips with NVLink SHARP
FAT = fat_tree(4, reduction=True)  # 16 hosts, 20 switches


def hops(G: nx.Graph):
    def weight(t):
        return max(nx.shortest_path_length(G, t.src, d) for d in t.dsts)

    return weight


# --------------------------------------------------------------------------- trees


def test_dgx_h100_has_one_plane_per_nvswitch():
    planes = aggregation_planes(DGX, range(8))
    assert [p.root for p in planes] == [8, 9, 10, 11]
    assert all(p.depth == 1 and p.order == (p.root,) for p in planes)
    assert all(p.parent[g] == p.root for p in planes for g in range(8))


def test_fat_tree_planes_are_the_core_switches():
    planes = aggregation_planes(FAT, range(16))
    cores = sorted(s for s, d in FAT.nodes(data=True) if d.get("role") == "core")
    assert [p.root for p in planes] == cores
    # host -> edge -> aggregation -> core; every pod's 2 edges and 1 aggregation join in.
    assert all(p.depth == 3 and len(p.order) == 4 * 3 + 1 for p in planes)


def test_ranks_in_one_pod_use_the_pod_aggregation_switches():
    planes = aggregation_planes(FAT, range(4))
    assert all(FAT.nodes[p.root]["role"] == "aggregation" and p.depth == 2 for p in planes)
    assert len(planes) == 2


def test_tree_root_is_the_lowest_common_switch():
    G = tree(3, 2, reduction=True)  # 8 chips, 4 + 2 + 1 switches
    (plane,) = aggregation_planes(G, range(8))
    assert plane.depth == 3 and len(plane.order) == 7
    (plane,) = aggregation_planes(G, [0, 1])
    assert plane.depth == 1 and plane.order == (next(iter(G.adj[0])),)


# --------------------------------------------------------------------------- correctness


@settings(max_examples=40, deadline=None)
@given(
    op=st.sampled_from(sorted(BUILDERS)),
    topo=st.sampled_from(["dgx", "fat"]),
    count=st.integers(0, 50),
    chunks=st.one_of(st.none(), st.integers(1, 9)),
    data=st.data(),
)
def test_builders_compute_the_collective(op, topo, count, chunks, data):
    G = DGX if topo == "dgx" else FAT
    n = G.graph["chips"]
    ranks = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
    root = data.draw(st.integers(0, len(ranks) - 1))
    s = BUILDERS[op](ranks, count, graph=G, chunks=chunks, root=root)
    rng = np.random.default_rng(count)
    check(s, {r: rng.integers(-9, 9, count).astype(float) for r in ranks})


def test_concurrent_groups_share_switches():
    rng = np.random.default_rng(3)
    groups = [[0, 1, 2, 3], [4, 5, 6, 7]]  # two groups on the same four NVSwitch chips
    s = merge([allreduce_innetwork(g, 29, graph=DGX) for g in groups])
    check(s, {r: rng.integers(0, 9, 29).astype(float) for g in groups for r in g})


def test_nvlink_sharp_splits_chunks_over_the_switches():
    s = allreduce_innetwork(range(8), 80, graph=DGX, chunks=8)
    multicasts = [t for t in s.transfers if len(t.dsts) > 1]
    assert [t.src for t in multicasts] == [8, 9, 10, 11] * 2
    assert all(t.dsts == tuple(range(8)) and t.count == 10 for t in multicasts)


def test_each_rank_sends_and_receives_its_data_once():
    count = 1000
    s = allreduce_innetwork(range(16), count, graph=FAT, chunks=8)
    for r in range(16):
        assert sum(t.count for t in s.transfers if t.src == r) == count
        assert sum(t.count for t in s.transfers if r in t.dsts) == count
    # Every switch-to-switch tree edge carries each chunk once per plane: no data is lost.
    into_roots = sum(t.count for t in s.transfers if t.dsts[0] >= 16 and t.op == "sum")
    assert into_roots == count * (16 + 4 * 2 + 4)  # hosts->edge, edge->agg, agg->core


# --------------------------------------------------------------------------- latency


@pytest.mark.parametrize("depth,radix", [(1, 4), (2, 2), (2, 4), (3, 2), (3, 3)])
def test_one_traversal_up_and_one_down_whatever_p(depth, radix):
    G = tree(depth, radix, reduction=True)
    p = G.graph["chips"]
    s = allreduce_innetwork(range(p), 6 * p, graph=G, chunks=1)
    assert longest_chain(s) == depth + 1  # depth sums up, one multicast down
    assert longest_chain(s, hops(G)) == 2 * depth  # link hops: up and down once
    ring = allreduce_hierarchical(range(p), 6 * p, dims=str(p))
    assert longest_chain(ring) == 2 * (p - 1)


@pytest.mark.parametrize("chunks", [1, 2, 5])
def test_pipelined_chunks_add_one_level_each(chunks):
    G = tree(2, 3, reduction=True)
    s = allreduce_innetwork(range(9), 90, graph=G, chunks=chunks)
    assert longest_chain(s) == 3 + chunks - 1


# --------------------------------------------------------------------------- timing


def packet_time(G: nx.Graph, s: Schedule) -> float:
    """Time a schedule on the packet engine: a transfer starts when its deps have arrived.

    A minimal driver of the Backend seam (send / multicast / run), independent of the runner.
    """
    net = PacketNetwork(G)
    ts = s.transfers
    waiting = [len(t.deps) for t in ts]
    succ: list[list[int]] = [[] for _ in ts]
    for i, t in enumerate(ts):
        for d in t.deps:
            succ[d].append(i)
    arrived: list[float | None] = [None] * len(ts)

    def start(i: int) -> None:
        t = ts[i]
        nbytes = s.nbytes(t)
        if len(t.dsts) == 1:
            ev = net.send(t.src, t.dsts[0], nbytes)
        else:
            ev = net.multicast(t.src, t.dsts, nbytes)
        ev.callbacks.append(lambda _e, i=i: done(i))

    def done(i: int) -> None:
        arrived[i] = net.env.now
        for j in succ[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                start(j)

    for i, w in enumerate(waiting):
        if w == 0:
            start(i)
    net.run()
    assert None not in arrived
    return max(arrived)


def test_nvlink_sharp_beats_the_ring_on_dgx_h100():
    # NCCL maintainer S. Jeaugey, NVIDIA/nccl-tests issue #212 (2024): on 8 H100 "NCCL can
    # get an effective NVLink bandwidth of 370GB/s" with NCCL_ALGO=RING (line rate 450 GB/s),
    # while NVLink SHARP reaches "a peak busBw of ~480GB/s (algbw ~275GB/s)" at large sizes.
    size, p = 256 * 2**20, 8
    line_rate = DGX.nodes[0]["injection_bandwidth"]  # 18 x 25 GB/s per direction
    factor = 2 * (p - 1) / p  # nccl-tests busbw of all-reduce
    t_nvls = packet_time(DGX, allreduce_innetwork(range(p), size, graph=DGX, chunks=16))
    t_ring = packet_time(DGX, allreduce_hierarchical(range(p), size, dims=str(p)))
    busbw_nvls = size / t_nvls * factor
    busbw_ring = size / t_ring * factor
    assert busbw_ring <= line_rate  # a ring moves 2(p-1)/p of the data through each NIC
    assert size / t_nvls <= line_rate  # ... NVLS moves it once each way
    assert busbw_nvls > line_rate > busbw_ring
    assert 0.8 * 480e9 < busbw_nvls < 1.25 * 480e9


# --------------------------------------------------------------------------- errors


def ring_graph(n: int) -> nx.Graph:
    G = nx.cycle_graph(n)
    nx.set_node_attributes(G, "chip", "kind")
    G.graph.update(family="torus", name=f"torus:dims={n}", chips=n)
    return G


@pytest.mark.parametrize("build", list(BUILDERS.values()))
def test_switchless_topology_is_refused(build):
    with pytest.raises(ConfigError, match="topology torus:dims=4 has none"):
        build(range(4), 8, graph=ring_graph(4))


def test_switches_without_reduction_are_refused():
    with pytest.raises(ConfigError, match="has none"):
        allreduce_innetwork(range(8), 8, graph=nvswitch(8, 6, 12, reduction=False))


def test_switch_without_reduction_on_the_tree_is_named():
    G = hierarchical(2, gpus=4, switches=2, links_per_gpu=4)  # SHARP off in the IB fabric
    with pytest.raises(ConfigError, match=r"switch \d+ .*reduction=False") as e:
        allreduce_innetwork(range(8), 8, graph=G)
    assert "\n" not in str(e.value)
    # Inside one node the NVSwitch chips reduce, so the same system works there.
    s = allreduce_innetwork(range(4), 8, graph=G)
    assert {t.src for t in s.transfers if len(t.dsts) > 1} == {8, 9}


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"graph": None}, "graph"),
        ({"chunks": 0}, "chunks"),
        ({"count": -2}, "count"),
        ({"ranks": [0, 8]}, "ranks"),
        ({"ranks": [1, 1]}, "ranks"),
        ({"root": 9}, "root"),
        ({"planes": 2}, "planes"),
    ],
)
def test_bad_input_is_one_line_config_error(kwargs, match):
    args = {"ranks": list(range(8)), "count": 8, "graph": DGX} | kwargs
    with pytest.raises(ConfigError, match=match) as e:
        allreduce_innetwork(args.pop("ranks"), args.pop("count"), **args)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("backend", ["packet", "analytical"])
def test_reducing_switch_charges_its_traversal_latency(backend):
    """Star of 4 chips on one reduction switch (traversal latency d), links of latency a and
    bandwidth B, one packet per message: up = a + d + w/B (the reduction enters the switch's
    pipeline), down (multicast from the switch) = a + w/B. Total 2a + d + 2w/B."""
    from collectives import make_backend, run
    from topologies.graph import add_chip, add_link, add_switch, finish

    a, d, B = 50e-9, 300e-9, 25e9
    g = nx.Graph()
    for i in range(4):
        add_chip(g, i, (float(i), 0.0))
    add_switch(g, 4, (1.5, 1.0), latency=d, reduction=True)
    for i in range(4):
        add_link(g, i, 4, link="ib", bandwidth=B, latency=a)
    g = finish(g, "star", {})
    s = allreduce_innetwork(range(4), 16, itemsize=4, graph=g, chunks=1)  # 64 B per rank
    be = make_backend(g, backend)
    w = 64 + be.header  # one packet: payload plus one header
    r = run(be, s)
    assert r.time_s == pytest.approx(2 * a + d + 2 * w / B, rel=1e-9)


def test_small_messages_get_one_chunk_per_plane_by_default():
    """Below planes * MIN_CHUNK_BYTES a message is not pipelined (extra chunks on a tree edge
    only add latency): on DGX H100, 4 planes, each rank sends 4 chunks up and each root
    multicasts once; large messages get CHUNKS_PER_PLANE chunks per plane."""
    from collectives.innetwork import CHUNKS_PER_PLANE, MIN_CHUNK_BYTES

    small = allreduce_innetwork(range(8), 64, itemsize=4, graph=DGX)  # 256 B per rank
    assert len(small.transfers) == 4 * (8 + 1)
    big_count = CHUNKS_PER_PLANE * 4 * MIN_CHUNK_BYTES  # bytes = count with itemsize 1
    big = allreduce_innetwork(range(8), big_count, graph=DGX)
    assert len(big.transfers) == CHUNKS_PER_PLANE * 4 * (8 + 1)
    # and the small one is as fast as an 8-byte one on the packet engine (latency-bound)
    tiny = allreduce_innetwork(range(8), 2, itemsize=4, graph=DGX)
    assert packet_time(DGX, small) == pytest.approx(packet_time(DGX, tiny), rel=0.02)
