"""Packets per link type (netsim.core.engine.packetise): a message is cut at its route's path MTU
and every link charges its own header; packet, analytical and flow backends agree.

Issue 12 item 1: InfiniBand inside a NVLink system used to carry 256 B NVLink packets with
the largest header of the graph.
"""

import math

import networkx as nx
import pytest

from collectives import run_collective
from collectives.backends import make_backend
from collectives.calibration import LIBRARY_COSTS
from netsim.core.engine.packetise import wire_bytes
from netsim.core.linktypes import LINK_TYPES

IB, NVL = LINK_TYPES["ib"], LINK_TYPES["nvlink"]
BACKENDS = ("packet", "analytical", "flow")


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_ndr_link_inside_a_nvlink_system_moves_64mib_as_fast_as_alone(backend):
    """GPU 0 -> GPU 8 of two DGX H100 nodes crosses NIC, rail leaf, NIC (all NDR); the same
    route shape alone on InfiniBand is two hosts of one fat-tree edge switch. Both must give
    the alpha-beta closed form with InfiniBand packets (4096 B, 26 B header) of the message
    NCCL puts on the wire, ``ceil(n / efficiency)`` bytes (InfiniBand's library efficiency,
    collectives.calibration)."""
    n = 64 * 2**20
    kw = dict(backend=backend, ranks="0,8")
    inside = run_collective("hierarchical:nodes=2", "sendrecv", "direct", n, **kw)
    alone = run_collective("fat-tree-k4", "sendrecv", "direct", n, **{**kw, "ranks": "0,1"})
    ib = LIBRARY_COSTS["ib"]
    wire = wire_bytes(math.ceil(n / ib.efficiency), 4096, 26)
    # NCCL's p2p protocol above 16 KiB is Simple (full payload, NCCL's efficiency as
    # calibrated); its per-call cost is NCCL's Simple baseLat plus one network step
    # (collectives.protocols.protocol_costs)
    assert inside["protocol"] == alone["protocol"] == "Simple"
    assert inside["launch_overhead"] == alone["launch_overhead"] == pytest.approx(22.4e-6)
    closed = inside["launch_overhead"] + 2 * IB.latency + IB.switch_latency + wire / IB.bandwidth
    assert inside["time_s"] == pytest.approx(closed, rel=1e-9)
    assert alone["time_s"] == pytest.approx(closed, rel=1e-9)
    # 49.4 GB/s of wire payload; 47 GB/s after NCCL's efficiency (was 45 with NVLink packets)
    assert 46e9 < inside["busbw"] < 48e9


def test_nvlink_inside_a_superpod_keeps_nvlink_packets():
    """Ring all-reduce on the 8 GPUs of one node of a 2-node SuperPOD takes what it takes on
    a lone DGX H100 (NVLink packets and costs; 369 GB/s busbw at 1 GiB)."""
    kw = dict(backend="analytical", ranks="0-7")
    pod = run_collective("hierarchical:nodes=2", "allreduce", "ring", "64MiB", **kw)
    dgx = run_collective("dgx-h100", "allreduce", "ring", "64MiB", **kw)
    assert pod["time_s"] == pytest.approx(dgx["time_s"], rel=1e-12)


def _mixed_chain() -> nx.Graph:
    """chip 0 -(nvlink)- switch 2 -(ib)- chip 1, both links 50 GB/s."""
    G = nx.Graph()
    G.add_node(0, kind="chip", injection_bandwidth=50e9)
    G.add_node(1, kind="chip", injection_bandwidth=50e9)
    G.add_node(2, kind="switch", latency=100e-9, reduction=False)
    G.add_edge(0, 2, bandwidth=50e9, latency=10e-9, link="nvlink", count=1)
    G.add_edge(2, 1, bandwidth=50e9, latency=25e-9, link="ib", count=1)
    return G


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n", [100, 256 * 1000 + 7])
def test_each_link_carries_its_own_header_at_the_path_mtu(backend, n):
    """A route crossing NVLink then InfiniBand: packets of the path MTU (256 B), 16 B of
    header on the NVLink hop and 26 B on the InfiniBand hop. Every backend keeps each link
    busy for exactly its own wire bytes."""
    be = make_backend(_mixed_chain(), backend)
    be.send(0, 1, n)
    be.run()
    p = be.ports
    busy = {p.link[q]: t * be.env.now for (u, v), t in be.link_utilisation().items()
            for q in [p.port[(u, v)]] if (u, v) in ((0, 2), (2, 1))}  # fmt: skip
    assert busy["nvlink"] == pytest.approx(wire_bytes(n, 256, 16) / 50e9, rel=1e-9)
    assert busy["ib"] == pytest.approx(wire_bytes(n, 256, 26) / 50e9, rel=1e-9)


def test_mixed_route_time_is_bounded_by_its_heaviest_link():
    """Analytical: latency plus the heaviest link's wire time; the packet engine (which
    pipelines packets of different sizes per hop) is within one packet of it."""
    n = 256 * 1000
    lat = 10e-9 + 100e-9 + 25e-9
    times = {}
    for backend in ("packet", "analytical"):
        be = make_backend(_mixed_chain(), backend)
        ev = be.send(0, 1, n)
        be.run()
        assert ev.triggered
        times[backend] = be.env.now
    assert times["analytical"] == pytest.approx(lat + wire_bytes(n, 256, 26) / 50e9, rel=1e-12)
    assert times["analytical"] <= times["packet"] <= times["analytical"] + 300 / 50e9


def test_stats_report_the_packets_of_every_link_type():
    be = make_backend(_mixed_chain(), "packet")
    st = be.stats()
    assert st["mtu"] == {"nvlink": NVL.mtu, "ib": IB.mtu}
    assert st["header"] == {"nvlink": NVL.header, "ib": IB.header}
    forced = make_backend(_mixed_chain(), "packet", mtu=1024, header=8).stats()
    assert (forced["mtu"], forced["header"]) == (1024, 8)
