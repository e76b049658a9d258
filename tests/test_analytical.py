"""The analytical alpha-beta backend against closed forms and the packet engine."""

from __future__ import annotations

import networkx as nx
import pytest
from topo_helpers import chain

from netsim.core.analytical import AnalyticalNetwork
from netsim.core.backend import Backend
from netsim.core.engine import PacketNetwork
from netsim.core.errors import ConfigError
from topologies.nvswitch import nvswitch
from topologies.torus import torus


def arrival(net, src, dst, nbytes, **kw):
    out = {}
    net.send(src, dst, nbytes, **kw).callbacks.append(lambda ev: out.setdefault("t", net.env.now))
    net.run()
    return out["t"]


def test_is_a_backend():
    assert isinstance(AnalyticalNetwork(chain([1e9], [1e-7])), Backend)


@pytest.mark.parametrize("nbytes", [0, 1, 4096, 10_000, 1 << 20])
def test_alpha_beta_closed_form(nbytes):
    """T = sum l + sum d + (n + ceil(n/M) h) / min(B_inj, min B): ib M = 4096, h = 26."""
    G = chain([4e9, 1e9, 2e9], [1e-7, 2e-7, 3e-7], switch_lat=5e-8, inj=3e9)
    wire = nbytes + max(1, -(-nbytes // 4096)) * 26
    T = 6e-7 + 2 * 5e-8 + wire / 1e9
    assert arrival(AnalyticalNetwork(G), 0, 1, nbytes) == pytest.approx(T, rel=1e-12)


def test_injection_bandwidth_bounds_the_rate():
    G = chain([4e9], [1e-7], inj=1e9)
    assert arrival(AnalyticalNetwork(G), 0, 1, 4096) == pytest.approx(1e-7 + 4122 / 1e9)


@pytest.mark.parametrize("nbytes", [100, 4096, 50_000, 3 << 20])
def test_equals_cut_through_packet_engine_on_equal_bandwidths(nbytes):
    """One message alone on a path of equal bandwidths: cut-through streams packets back to
    back, so the last byte lands after wire / B plus the latencies, as the closed form."""
    G = chain([2e9, 2e9, 2e9], [1e-7, 3e-7, 2e-7], switch_lat=1e-7)
    t_pkt = arrival(PacketNetwork(G, forwarding="cut-through"), 0, 1, nbytes)
    t_ana = arrival(AnalyticalNetwork(G), 0, 1, nbytes)
    assert t_ana == pytest.approx(t_pkt, rel=1e-6)


def test_equals_store_and_forward_where_the_closed_form_is_the_same():
    """One hop: store-and-forward gives wire / B + l for any message, as the closed form;
    over two hops it pays the serialisation twice, so the analytical time is below it."""
    one_hop = chain([1e9], [1e-7])
    for n in (4096, 64 * 4096):
        assert arrival(AnalyticalNetwork(one_hop), 0, 1, n) == pytest.approx(
            arrival(PacketNetwork(one_hop, forwarding="store-and-forward"), 0, 1, n), rel=1e-6
        )
    two_hops = chain([1e9, 2e9], [1e-7, 1e-7], switch_lat=1e-7)
    assert arrival(AnalyticalNetwork(two_hops), 0, 1, 4096) < arrival(
        PacketNetwork(two_hops, forwarding="store-and-forward"), 0, 1, 4096
    )


def test_no_contention_two_messages_do_not_wait():
    G = chain([1e9], [1e-7])
    net = AnalyticalNetwork(G)
    times = []
    for _ in range(2):
        net.send(0, 1, 10_000).callbacks.append(lambda ev: times.append(net.env.now))
    net.run()
    assert times[0] == times[1]


def test_multicast_arrives_with_the_slowest_destination_and_counts_bytes_once_per_copy():
    G = nvswitch(gpus=4, switches=1, links_per_gpu=1)
    net = AnalyticalNetwork(G)
    done = net.multicast(0, [1, 2, 3], 1000)
    net.run()
    assert done.triggered
    assert net.env.now == pytest.approx(net.message_time(0, 3, 1000))
    st = net.stats()
    assert st["bytes_delivered"] == st["bytes_injected"] == 3000
    assert st["packet_hops"] == 4  # 0->switch once, switch->1, 2, 3


def test_same_stats_keys_as_packet_engine_and_same_routes():
    G = nvswitch(gpus=8, switches=4, links_per_gpu=18)
    ana, pkt = AnalyticalNetwork(G), PacketNetwork(G)
    for net in (ana, pkt):
        net.send(0, 5, 1000, flow=3)
        net.run()
    assert set(pkt.stats()) <= set(ana.stats())
    assert ana.stats()["model"] == "analytical/alpha-beta"
    assert ana.route(0, 5, 3) == pkt.route(0, 5, 3)
    assert 0 < ana.stats()["max_link_utilisation"] <= 1


def test_refuses_bad_input():
    G = chain([1e9], [1e-7])
    net = AnalyticalNetwork(G)
    with pytest.raises(ConfigError, match="not in the topology"):
        net.send(0, 99, 1)
    with pytest.raises(ConfigError, match="nbytes"):
        net.send(0, 1, -1)
    with pytest.raises(ConfigError, match="mtu"):
        AnalyticalNetwork(G, mtu=0)
    with pytest.raises(ConfigError, match="empty"):
        AnalyticalNetwork(nx.Graph())


def test_events_are_counted_exactly_and_stats_do_not_use_any():
    # One message alone: one timeout event; reading the counters schedules nothing.
    net = AnalyticalNetwork(torus((4,)))
    net.send(0, 1, 100)
    net.run()
    assert net.stats()["events"] == 1
    assert net.stats()["events"] == 1
