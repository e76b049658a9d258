"""A library's per-channel throughput cap (``collectives.runner.run``, ``channel_rate``) and
NCCL's NVLS+tree ceiling it applies (``collectives.tuner.nvls_tree_channel_cap``)."""

from __future__ import annotations

import pytest

from collectives import run_collective
from collectives.backends import make_backend
from collectives.runner import run
from collectives.schedule import Schedule
from topologies.registry import build as topology

G = topology("hierarchical:nodes=2,gpus=4")
S = 1 << 20


def _time(channels, rate):
    """Chip 0 sends ``S`` bytes to chip 1 once per entry of ``channels`` (concurrently);
    each send is marked with that channel."""
    s = Schedule("allreduce", "test", (0, 1), len(channels) * S)
    for k, ch in enumerate(channels):
        i = s.add(0, 1, "x", k * S, (k + 1) * S, "y")
        if ch is not None:
            s.channels[i] = ch
    return run(make_backend(G, "analytical"), s, channel_rate=rate).time_s


def test_one_channel_of_s_bytes_takes_s_over_the_cap():
    free = _time([None], None)
    rate = 0.5 * S / free  # half what the NVLinks give: the cap binds
    assert _time([0], rate) == pytest.approx(S / rate, rel=1e-12)
    assert _time([0], 1e3 * S / free) == pytest.approx(free, rel=1e-12)  # link-bound
    assert _time([0], None) == free  # no rate: unpaced


def test_a_channel_is_one_stream_and_channels_are_independent():
    free = _time([None, None], None)
    rate = 0.5 * S / free
    assert _time([0, 0], rate) == pytest.approx(2 * S / rate, rel=1e-12)
    assert _time([0, 1], rate) == pytest.approx(S / rate, rel=1e-12)


@pytest.mark.parametrize("nodes, per_channel", [(2, 57.7e9), (4, 45.5e9)])
def test_nvls_tree_busbw_is_under_nccls_ceiling(nodes, per_channel):
    """NCCL's tuning model: NVLS+tree busbw <= nChannels * perChMaxNVLSTreeBw (Hopper:
    57.7 GB/s on two nodes, 45.5 on 4+; src/graph/tuning.cc), one channel per GPU of a node."""
    topo = f"hierarchical:nodes={nodes},gpus=4"
    r = run_collective(topo, "allreduce", "nvls-tree", "64MiB", backend="flow", estimate=False)
    assert r["channel_cap_busbw"] == pytest.approx(4 * per_channel)
    assert r["busbw"] <= r["channel_cap_busbw"]
    hw = run_collective(topo, "allreduce", "nvls-tree", "64MiB", backend="flow",
                        estimate=False, library="none")  # fmt: skip
    assert hw["channel_cap_busbw"] is None
    assert r["busbw"] <= hw["busbw"]  # a cap only slows
    if nodes == 2:  # NVLink-bound hardware above the ceiling: the cap binds
        assert hw["busbw"] > r["channel_cap_busbw"]


def test_no_cap_where_nccl_has_none():
    """tuning.cc has no per-channel cap for ring with Simple; netsim applies none to trees."""
    for algo in ("ring", "tree"):
        r = run_collective("hierarchical:nodes=2,gpus=4", "allreduce", algo, "1MiB",
                           backend="flow", estimate=False, protocol="Simple")  # fmt: skip
        assert r["channel_cap_busbw"] is None


@pytest.mark.parametrize(
    "topo, proto, cap",
    [
        ("dgx-h100", "LL", 141.0e9),  # llMaxBw, Hopper, one node
        ("dgx-h100", "LL128", 6 * 36.7e9),  # 6 rings of 60 GB/s x perChMaxRingLL128Bw
        ("hierarchical:nodes=2,gpus=4", "LL", 39.0e9),  # llMaxBw, two nodes
        ("hierarchical:nodes=2,gpus=4", "LL128", 4 * 36.7e9),  # one ring per NIC
    ],
)
def test_ring_ll_and_ll128_busbw_is_under_nccls_ceiling(topo, proto, cap):
    """NCCL's tuning model: ring LL busbw <= llMaxBw, ring LL128 <= nChannels *
    perChMaxRingLL128Bw (src/graph/tuning.cc); each ring channel is paced at its share, so
    the run comes within a few per cent of the ceiling where the hardware is faster."""
    kw = dict(backend="flow", estimate=False)
    r = run_collective(topo, "allreduce", "ring", "64MiB", protocol=proto, **kw)
    hw = run_collective(topo, "allreduce", "ring", "64MiB", library="none", **kw)
    assert r["protocol"] == proto and r["channel_cap_busbw"] == pytest.approx(cap)
    assert hw["busbw"] > cap  # the hardware alone is faster: the cap binds
    assert 0.85 * cap < r["busbw"] <= cap
    ag = run_collective(topo, "allgather", "ring", "64MiB", protocol=proto, **kw)
    assert ag["channel_cap_busbw"] == pytest.approx(cap) and ag["busbw"] <= cap
