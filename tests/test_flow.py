"""The flow-level model (netsim.flow) against closed forms of max-min fair sharing."""

from __future__ import annotations

import networkx as nx
import pytest

from collectives import build, make_backend, run
from collectives.api import run_collective
from netsim.analytical import AnalyticalNetwork
from netsim.backend import Backend
from netsim.errors import ConfigError
from netsim.flow import FlowNetwork
from topologies._build import add_chip, add_link, finish
from topologies.registry import build as build_topo
from topologies.torus import torus

GB = 1e9
LAT = 100e-9


def line(bws, inj=1e12):
    """Chips 0 - 1 - ... in a line; link i has bandwidth bws[i] and latency LAT."""
    G = nx.Graph()
    for i in range(len(bws) + 1):
        add_chip(G, i, (i, 0), injection_bandwidth=inj)
    for i, bw in enumerate(bws):
        add_link(G, i, i + 1, link="ib", bandwidth=bw, latency=LAT)
    return finish(G, "line", {})


def arrivals(net, sends):
    """Run ``sends`` = [(t, src, dst, nbytes)] and return each message's arrival time."""
    out = {}

    def go(arg):
        i, (_, s, d, n) = arg
        net.send(s, d, n).callbacks.append(lambda _: out.setdefault(i, net.env.now))

    for i, item in enumerate(sends):
        net.call_at(item[0], go, (i, item))
    net.run()
    return [out[i] for i in range(len(sends))]


def test_a_message_alone_takes_the_alpha_beta_time():
    G = torus((4, 4))
    for s, d, n in [(0, 5, 0), (0, 10, 1), (3, 12, 10**6), (7, 7, 100)]:
        flow, ana = FlowNetwork(G), AnalyticalNetwork(G)
        assert arrivals(flow, [(0.0, s, d, n)])[0] == pytest.approx(
            ana.message_time(s, d, n), rel=1e-12, abs=1e-18
        )


def test_equal_flows_on_one_link_share_it():
    net = FlowNetwork(line([GB]), header=0)
    n = 10**6
    assert arrivals(net, [(0.0, 0, 1, n)] * 3) == pytest.approx([3 * n / GB + LAT] * 3, rel=1e-12)


def test_a_late_flow_shares_from_when_it_starts():
    # A alone until t1 (B*t1 bytes), then both at B/2: A ends at 2n/B - t1, B at 2n/B.
    net = FlowNetwork(line([GB]), header=0)
    n, t1 = 10**6, 3e-4
    a, b = arrivals(net, [(0.0, 0, 1, n), (t1, 0, 1, n)])
    assert a == pytest.approx(2 * n / GB - t1 + LAT, rel=1e-12)
    assert b == pytest.approx(2 * n / GB + LAT, rel=1e-12)


def test_max_min_fair_rates_with_two_bottlenecks():
    # Link 0->1 (1 GB/s) carries f1 and f2, link 1->2 (10 GB/s) f2 and f3: max-min gives
    # f1 = f2 = 0.5 GB/s and f3 = 9.5 GB/s. f3 ends first, then f1 and f2 stay at 0.5
    # (their bottleneck is unchanged).
    net = FlowNetwork(line([GB, 10 * GB]), header=0)
    n = 10**6
    f1, f2, f3 = arrivals(net, [(0.0, 0, 1, n), (0.0, 0, 2, n), (0.0, 1, 2, n)])
    assert f3 == pytest.approx(n / (9.5 * GB) + LAT, rel=1e-12)
    assert f1 == pytest.approx(n / (0.5 * GB) + LAT, rel=1e-12)
    assert f2 == pytest.approx(n / (0.5 * GB) + 2 * LAT, rel=1e-12)


def test_injection_interface_is_shared_like_a_link():
    # Two flows leaving chip 1 by different links, interface 1 GB/s: 0.5 GB/s each.
    net = FlowNetwork(line([10 * GB, 10 * GB], inj=GB), header=0)
    n = 10**6
    assert arrivals(net, [(0.0, 1, 0, n), (0.0, 1, 2, n)]) == pytest.approx(
        [2 * n / GB + LAT] * 2, rel=1e-12
    )


def test_bytes_conserved_deterministic_and_a_backend():
    def go():
        net = FlowNetwork(build_topo("dgx-h100"))
        r = run(net, build("allreduce", "oneshot", ranks=range(8), count=2**18, itemsize=4))
        return r.time_s, net.stats()

    (t1, st1), (t2, st2) = go(), go()
    assert t1 == t2 and st1 == st2
    assert st1["bytes_injected"] == st1["bytes_delivered"] > 0
    assert st1["model"] == "flow/max-min"
    assert isinstance(FlowNetwork(torus((4,))), Backend)


def test_contention_lands_between_alpha_beta_and_packets():
    # One-shot all-reduce of 16 MiB on a 4x4 torus: every rank sends its whole buffer to
    # all others over shared links. The contention-free alpha-beta model is far below the
    # packet engine; the flow model sees the sharing. A ring (no link shared by two
    # transfers of a step) is the same in all three.
    G = torus((4, 4))
    t = {}
    for algo in ("oneshot", "ring"):
        s = build("allreduce", algo, ranks=range(16), count=2**22, itemsize=4)
        for be in ("analytical", "flow", "packet"):
            t[algo, be] = run(make_backend(G, be), s).time_s
    assert t["oneshot", "analytical"] < 0.1 * t["oneshot", "packet"]
    assert t["oneshot", "flow"] == pytest.approx(t["oneshot", "packet"], rel=0.35)
    assert t["ring", "flow"] == pytest.approx(t["ring", "packet"], rel=1e-6)
    assert t["ring", "analytical"] == pytest.approx(t["ring", "packet"], rel=1e-6)


def test_run_collective_on_the_flow_backend_checks_data_and_refuses_packet_options():
    r = run_collective("torus:dims=4x4", "allreduce", "ring", "64KiB", backend="flow", check=True)
    assert r["model"] == "flow/max-min" and r["check"] is True
    with pytest.raises(ConfigError, match="forwarding: applies to the packet backend only"):
        run_collective(
            "torus:dims=4", "allreduce", "ring", "1KiB", backend="flow", forwarding="cut-through"
        )
    with pytest.raises(ConfigError, match="buffer: the flow backend has no buffers"):
        make_backend(torus((4,)), "flow", buffer=4096)


def test_flows_that_start_together_cost_one_allocation():
    # 64 neighbour sends at t=0 on a ring: one reallocation, one completion timer and one
    # arrival event per message (not an allocation and a timer per flow).
    net = FlowNetwork(torus((64,)))
    for c in range(64):
        net.send(c, (c + 1) % 64, 4096)
    net.run()
    assert net.stats()["events"] == 1 + 1 + 64


@pytest.mark.parametrize("backend", ["packet", "analytical", "flow"])
def test_every_backend_checks_messages_at_the_seam(backend):
    net = make_backend(torus((4,)), backend)
    with pytest.raises(ConfigError, match="send: node 9 is not in the topology"):
        net.send(0, 9, 10)
    with pytest.raises(ConfigError, match="nbytes: must be >= 0, got -1"):
        net.send(0, 1, -1)
    with pytest.raises(ConfigError, match="multicast: node 9 is not in the topology"):
        net.multicast(0, [1, 9], 10)
    with pytest.raises(ConfigError, match="nbytes: must be >= 0, got -5"):
        net.multicast(0, [1, 2], -5)
