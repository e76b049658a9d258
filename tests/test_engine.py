"""The packet engine against closed forms, queueing theory and conservation laws."""

from __future__ import annotations

import random

import networkx as nx
import pytest
from topo_helpers import chain

from netsim.core.engine import PacketNetwork
from netsim.core.errors import ConfigError, DeadlockError
from netsim.core.traffic import run_traffic
from topologies.graph import add_chip, add_link, add_switch, finish


def ring(k, bw=1e9, lat=1e-7):
    """A 1-D torus of k chips with DOR attributes (coord, dim, wrap)."""
    G = nx.Graph()
    for i in range(k):
        add_chip(G, i, (i, 0), coord=(i,))
    for i in range(k):
        add_link(G, i, (i + 1) % k, link="ici", bandwidth=bw, latency=lat, dim=0, wrap=i == k - 1)
    return finish(G, "torus", {"dims": (k,)})


def torus2d(k, bw=1e9, lat=1e-7):
    G = nx.Graph()
    for x in range(k):
        for y in range(k):
            add_chip(G, x * k + y, (x, y), coord=(x, y))
    for x in range(k):
        for y in range(k):
            a = x * k + y
            add_link(
                G,
                a,
                ((x + 1) % k) * k + y,
                link="ici",
                bandwidth=bw,
                latency=lat,
                dim=0,
                wrap=x == k - 1,
            )
            add_link(
                G,
                a,
                x * k + (y + 1) % k,
                link="ici",
                bandwidth=bw,
                latency=lat,
                dim=1,
                wrap=y == k - 1,
            )
    return finish(G, "torus", {"dims": (k, k)})


def time_of(net, src, dst, nbytes):
    done = net.send(src, dst, nbytes)
    out = {}
    done.callbacks.append(lambda ev: out.setdefault("t", net.env.now))
    net.run()
    return out["t"]


BWS = [4e9, 1e9, 2e9]
LATS = [10e-9, 20e-9, 30e-9]
SW = 50e-9


@pytest.mark.parametrize("header", [0, 16])
def test_zero_load_latency_store_and_forward(header):
    G = chain(BWS, LATS, SW, inj=4e9)
    net = PacketNetwork(G, forwarding="store-and-forward", mtu=1000, header=header)
    s = 1000 + header
    expect = sum(s / b + lat for b, lat in zip(BWS, LATS, strict=True)) + 2 * SW
    assert time_of(net, 0, 1, 1000) == pytest.approx(expect, rel=1e-12)


@pytest.mark.parametrize("header", [0, 16])
def test_zero_load_latency_cut_through(header):
    G = chain(BWS, LATS, SW, inj=4e9)
    net = PacketNetwork(G, forwarding="cut-through", mtu=1000, header=header)
    s = 1000 + header
    expect = s / min(BWS) + sum(LATS) + 2 * SW
    assert time_of(net, 0, 1, 1000) == pytest.approx(expect, rel=1e-12)


def test_message_pipelines_packets_cut_through():
    # m packets over h equal links: one packet's latency plus (m-1) more serialisations.
    G = chain([1e9] * 3, [1e-7] * 3, SW)
    net = PacketNetwork(G, forwarding="cut-through", mtu=500, header=20)
    m = 8
    expect = 3 * 1e-7 + 2 * SW + m * 520 / 1e9
    assert time_of(net, 0, 1, 500 * m) == pytest.approx(expect, rel=1e-12)


def test_message_pipelines_packets_store_and_forward():
    G = chain([1e9] * 3, [1e-7] * 3, SW)
    net = PacketNetwork(G, forwarding="store-and-forward", mtu=500, header=20)
    m = 8
    expect = 3 * (520 / 1e9 + 1e-7) + 2 * SW + (m - 1) * 520 / 1e9
    assert time_of(net, 0, 1, 500 * m) == pytest.approx(expect, rel=1e-12)


def test_injection_bandwidth_limits_a_fast_link():
    G = chain([10e9], [0.0], inj=1e9)
    net = PacketNetwork(G, mtu=1000, header=0)
    assert time_of(net, 0, 1, 10_000) == pytest.approx(10_000 / 1e9, rel=1e-12)


def test_partial_last_packet_and_zero_bytes():
    G = chain([1e9], [0.0])
    net = PacketNetwork(G, forwarding="store-and-forward", mtu=1000, header=10)
    # 2500 B -> packets of 1000, 1000, 500 payload; 30 header bytes in all.
    assert time_of(net, 0, 1, 2500) == pytest.approx(2530 / 1e9, rel=1e-12)
    net = PacketNetwork(G, forwarding="store-and-forward", mtu=1000, header=10)
    assert time_of(net, 0, 1, 0) == pytest.approx(10 / 1e9, rel=1e-12)


def test_send_to_self_is_immediate():
    net = PacketNetwork(ring(4))
    ev = net.send(2, 2, 1000)
    net.run()
    assert ev.triggered and net.env.now == 0


def md1_latency(rho, S, lat):
    """Mean latency of an M/D/1 queue at load ``rho`` with service time ``S`` plus ``lat``:
    the Pollaczek-Khinchine wait ``rho S / (2 (1 - rho))`` (Kleinrock, Queueing Systems I)."""
    return rho * S / (2 * (1 - rho)) + S + lat


@pytest.mark.parametrize("rho", [0.3, 0.6, 0.8])
def test_md1_single_link(rho):
    """Poisson arrivals of fixed-size packets on one link: M/D/1 mean sojourn time
    W = rho*S/(2(1-rho)) + S (Kleinrock, Queueing Systems vol. 1, 1975, eq. 5.73)."""
    bw, lat, size = 1e9, 50e-9, 1000
    G = chain([bw], [lat])
    r = run_traffic(
        G,
        "shift",
        rho,
        injection="poisson",
        size=size,
        packets=40_000,
        warmup=2_000,
        mtu=size,
        header=0,
        seed=3,
    )
    assert r.latency_mean_s == pytest.approx(md1_latency(rho, size / bw, lat), rel=0.04)
    assert r.accepted_load == pytest.approx(rho, rel=0.03)


def test_mg1_random_sizes():
    """Random packet sizes: Pollaczek-Khinchine W = lambda E[S^2] / (2(1-rho)) + E[S]."""
    bw, rho = 1e9, 0.7
    G = chain([bw], [0.0])
    net = PacketNetwork(G, mtu=1 << 20, header=0)
    rng = random.Random(7)
    sizes = [rng.randint(100, 3000) for _ in range(60_000)]
    mean_s = sum(sizes) / len(sizes) / bw
    es2 = sum((s / bw) ** 2 for s in sizes) / len(sizes)
    lam = rho / mean_s
    lat: list[float] = []
    t = 0.0
    for s in sizes:
        t += rng.expovariate(lam)
        net.call_at(t, lambda s: net.send(0, 1, s, callback=lat.append), s)
    net.run()
    expect = lam * es2 / (2 * (1 - rho)) + mean_s
    assert sum(lat[2000:]) / len(lat[2000:]) == pytest.approx(expect, rel=0.05)


def test_torus_saturation_below_channel_load_bound():
    """Uniform traffic on a k-ary 2-cube torus: the busiest channel carries k*lambda/8 of
    load per unit of injection (Dally & Towles 2004, sec. 3.3.1), so accepted throughput
    per chip cannot exceed 8*b/k. With injection 4b on an 8x8 torus the bound is 0.25."""
    k, b = 8, 1e9
    G = torus2d(k, bw=b)
    for c in range(k * k):
        G.nodes[c]["injection_bandwidth"] = 4 * b
    bound = (8 * b / k) / (4 * b)
    low = run_traffic(G, "uniform", 0.5 * bound, packets=3000, seed=1, mtu=256, header=0)
    assert low.accepted_load == pytest.approx(0.5 * bound, rel=0.05)
    high = run_traffic(G, "uniform", 0.5, packets=3000, seed=1, mtu=256, header=0)
    assert high.accepted_load <= bound * 1.02
    assert high.accepted_load >= 0.6 * bound
    assert high.latency_mean_s > 5 * low.latency_mean_s


def test_conservation_and_determinism():
    G = torus2d(4)
    a = run_traffic(G, "uniform", 0.4, packets=3000, seed=11).to_dict()
    b = run_traffic(G, "uniform", 0.4, packets=3000, seed=11).to_dict()
    c = run_traffic(G, "uniform", 0.4, packets=3000, seed=12).to_dict()
    for d in (a, b, c):
        d.pop("wall_s")
    assert a == b
    assert a["latency_mean_s"] != c["latency_mean_s"]


def test_bytes_conserved_with_finite_buffers():
    G = torus2d(4)
    net = PacketNetwork(G, buffer=1024, mtu=256, header=16)
    rng = random.Random(0)
    for _ in range(400):
        s, d = rng.randrange(16), rng.randrange(16)
        net.send(s, d, rng.randrange(0, 5000))
    net.run()
    st = net.stats()
    assert st["bytes_injected"] == st["bytes_delivered"] > 0
    assert net.in_flight == 0


def test_backpressure_stalls_sender():
    """A slow last link with small buffers: the sender is held back by credits instead of
    losing packets, so its first link finishes late; with infinite buffers it does not."""
    fast, slow, n, mtu = 10e9, 1e9, 100_000, 1000
    G = chain([fast, slow], [10e-9, 10e-9], inj=fast)
    infinite = PacketNetwork(G, mtu=mtu, header=0)
    t_inf = time_of(infinite, 0, 1, n)
    credit = PacketNetwork(G, mtu=mtu, header=0, buffer=2 * mtu)
    t_fc = time_of(credit, 0, 1, n)
    assert credit.stats()["bytes_delivered"] == n
    # Both are limited by the slow link.
    assert t_fc == pytest.approx(n / slow, rel=0.01)
    assert t_inf == pytest.approx(n / slow, rel=0.01)
    # The sender's link (port 0 -> switch) is busy only while it can send: with credits
    # its last packet leaves near the end; with infinite buffers after n / fast.
    p_first = credit.ports.port[(0, 2)]
    assert infinite._busy[p_first] == pytest.approx(n / fast, rel=0.01)
    assert credit._busy[p_first] > 0.9 * n / slow


def test_deadlock_is_detected_and_dateline_avoids_it():
    k = 4
    G = ring(k, bw=1e9, lat=1e-8)

    def load(net):
        for s in range(k):
            net.send(s, (s + 2) % k, 50_000)

    net = PacketNetwork(G, buffer=272, mtu=256, header=16, routing="dor-nodateline")
    load(net)
    with pytest.raises(DeadlockError, match=r"blocked links.*->"):
        net.run()
    net = PacketNetwork(G, buffer=272, mtu=256, header=16, routing="dor")
    load(net)
    net.run()
    assert net.stats()["bytes_delivered"] == 4 * 50_000


def test_large_messages_coarse_segments_within_2_percent():
    G = torus2d(4, bw=50e9, lat=500e-9)
    size = 2 << 20

    def alltoall(max_segments):
        net = PacketNetwork(G, mtu=256, header=16, max_segments=max_segments)
        for s in range(0, 16, 3):
            net.send(s, (s + 5) % 16, size)
            net.send(s, (s + 6) % 16, size)
        net.run()
        return net.env.now, net.stats()["packets"]

    coarse, n_coarse = alltoall(32)
    fine, n_fine = alltoall(None)
    assert n_coarse < n_fine / 100 * 4
    assert coarse == pytest.approx(fine, rel=0.02)


def test_multicast_tree_delivers_everywhere():
    k = 8
    G = ring(k, bw=1e9, lat=1e-7)
    net = PacketNetwork(G, forwarding="store-and-forward", mtu=1000, header=0)
    ev = net.multicast(0, [1, 2, 3, 7], 1000)
    net.run()
    assert ev.triggered
    # Farthest destination is 3 hops away; store-and-forward: 3 * (S + lat).
    assert net.env.now == pytest.approx(3 * (1e-6 + 1e-7), rel=1e-12)
    # Replication: links 0->1, 1->2, 2->3, 0->7 each carry the packet once.
    assert net.stats()["packet_hops"] == 4
    assert net.stats()["bytes_delivered"] == 4 * 1000


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"forwarding": "wormhole"}, "forwarding: must be one of"),
        ({"routing": "magic"}, "routing: must be one of"),
        ({"buffer": 10, "mtu": 256}, "buffer: must be an integer >= 272"),
        ({"routing": "valiant"}, "routing: 'valiant' applies to dragonfly topologies only"),
    ],
)
def test_bad_options(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        PacketNetwork(ring(4), **({"header": 16} | kw))


# --------------------------------------------------------------------------- network interface


def star(bws, inj, lat=1e-7):
    """Chip 0 linked directly to chips 1..k (a direct network: no switch), bandwidths ``bws``."""
    G = nx.Graph()
    add_chip(G, 0, (0, 0), injection_bandwidth=inj)
    for i, bw in enumerate(bws, 1):
        add_chip(G, i, (i, 1))
        add_link(G, 0, i, link="ib", bandwidth=bw, latency=lat)
    return finish(G, "star", {})


def arrivals(net, sends):
    """Send ``(src, dst, nbytes)`` all at t=0; return each message's arrival time."""
    out = [None] * len(sends)
    for i, (s, d, n) in enumerate(sends):
        net.send(s, d, n, callback=lambda lat, i=i: out.__setitem__(i, lat))
    net.run()
    return out


B, LAT, MTU = 1e9, 1e-7, 1000


def test_concurrent_messages_on_two_ports_are_not_serialised():
    """injection >= the sum of the links: each message runs at its link's rate."""
    n = 100 * MTU
    for inj in (2 * B, 5 * B):
        net = PacketNetwork(star([B, B], inj), mtu=MTU, header=0)
        t = arrivals(net, [(0, 1, n), (0, 2, n)])
        assert t == pytest.approx([n / B + LAT] * 2, rel=1e-12)


def test_concurrent_messages_share_a_slow_interface():
    """injection = one link: the two messages share it and both end at 2n/B."""
    n = 100 * MTU
    net = PacketNetwork(star([B, B], B), mtu=MTU, header=16)
    wire = n + 100 * 16
    assert arrivals(net, [(0, 1, n), (0, 2, n)]) == pytest.approx([2 * wire / B + LAT] * 2)
    # Unequal links and an interface at 1.5x the slower: shares scale with link bandwidth
    # (weighted max-min): rates 1.5B * (1/3, 2/3) = (B/2, B).
    net = PacketNetwork(star([B, 2 * B], 1.5 * B), mtu=MTU, header=0)
    t = arrivals(net, [(0, 1, n // 2), (0, 2, n)])
    assert t == pytest.approx([n / B + LAT] * 2, rel=1e-12)


def test_shares_are_work_conserving_when_one_message_ends():
    """injection = B, messages of n and n/2 on two ports: the short one ends at n/B (half
    rate), the long one takes the whole interface afterwards and ends at 1.5 n / B."""
    n = 200 * MTU
    net = PacketNetwork(star([B, B], B), mtu=MTU, header=0)
    t = arrivals(net, [(0, 1, n), (0, 2, n // 2)])
    assert t[1] == pytest.approx(n / B + LAT, rel=1e-12)
    assert t[0] == pytest.approx(1.5 * n / B + LAT, rel=0.01)


def test_total_injection_is_capped_and_bytes_conserved():
    """Four ports of B, injection 2B, many concurrent messages: the last byte leaves no
    earlier than all wire bytes / 2B, and not much later (the interface never idles)."""
    rng = random.Random(5)
    net = PacketNetwork(star([B] * 4, 2 * B, lat=0.0), mtu=MTU, header=16)
    sends = [(0, rng.randrange(1, 5), rng.randrange(1, 40) * MTU) for _ in range(40)]
    t = arrivals(net, sends)
    wire = sum(n + n // MTU * 16 for _, _, n in sends)
    per_port = {d: 0 for d in range(1, 5)}
    for _, d, n in sends:
        per_port[d] += n + n // MTU * 16
    bound = max(wire / (2 * B), max(per_port.values()) / B)
    assert bound <= max(t) <= bound * 1.05
    st = net.stats()
    assert st["bytes_injected"] == st["bytes_delivered"] == sum(n for _, _, n in sends)
    assert net.in_flight == 0


def test_messages_on_one_port_keep_their_order():
    """Same port: FIFO by message, so the first is not slowed by the second (pipelines of
    chunks depend on it); single-packet messages on a slow interface queue behind each other."""
    n = 50 * MTU
    net = PacketNetwork(star([B], 4 * B), mtu=MTU, header=0)
    assert arrivals(net, [(0, 1, n), (0, 1, n)]) == pytest.approx(
        [n / B + LAT, 2 * n / B + LAT], rel=1e-12
    )
    net = PacketNetwork(star([B], B / 2), mtu=MTU, header=0)
    t = arrivals(net, [(0, 1, MTU)] * 3)
    assert t == pytest.approx([(k + 1) * 2 * MTU / B + LAT for k in range(3)], rel=1e-12)


def test_a_late_message_on_another_port_starts_at_once():
    """No head-of-line blocking: a message to a free port does not wait for a long one."""
    net = PacketNetwork(star([B, B], 2 * B), mtu=MTU, header=0)
    out = {}
    net.send(0, 1, 1000 * MTU, callback=lambda lat: out.setdefault("long", lat))
    net.call_at(1e-5, lambda _: net.send(0, 2, MTU, callback=lambda lat: out.setdefault("x", lat)))
    net.run()
    assert out["x"] == pytest.approx(MTU / B + LAT, rel=1e-12)
    assert out["long"] == pytest.approx(1000 * MTU / B + LAT, rel=1e-12)


@pytest.mark.parametrize("buffer", [None, 4 * (MTU + 16)])
def test_interface_is_deterministic(buffer):
    def once():
        rng = random.Random(9)
        net = PacketNetwork(torus2d(3), mtu=256, header=16, buffer=buffer, seed=4)
        sends = [(rng.randrange(9), rng.randrange(9), rng.randrange(0, 20_000)) for _ in range(60)]
        t = arrivals(net, sends)
        st = net.stats()
        assert st["bytes_injected"] == st["bytes_delivered"]
        return t, st

    assert once() == once()


def test_a_switch_feeds_its_ports_in_parallel_by_default():
    """A switch without injection_bandwidth (it originates in-network results) injects at
    the sum of its ports, so replies to two chips do not share one port's rate."""
    G = nx.Graph()
    add_switch(G, 2, (1, 1), latency=0.0)
    for c in (0, 1):
        add_chip(G, c, (c, 0))
        add_link(G, 2, c, link="ib", bandwidth=B, latency=LAT)
    G = finish(G, "star", {})
    n = 100 * MTU
    net = PacketNetwork(G, mtu=MTU, header=0)
    assert arrivals(net, [(2, 0, n), (2, 1, n)]) == pytest.approx([n / B + LAT] * 2, rel=1e-12)
    # Given one port's rate explicitly, the two replies share it.
    G.nodes[2]["injection_bandwidth"] = B
    net = PacketNetwork(G, mtu=MTU, header=0)
    assert arrivals(net, [(2, 0, n), (2, 1, n)]) == pytest.approx([2 * n / B + LAT] * 2)


def test_coarse_segments_match_fine_grained_ring_allreduce_within_two_percent():
    """Issue 3: growing the simulated segment with message size stays within 2% of the
    fine-grained (real MTU) result on a bandwidth-bound collective (ring all-reduce, 1 MiB
    per rank on a 4x4 torus: 64 KiB messages of many MTUs, simulated as 2 segments)."""
    from collectives import build, make_backend, run
    from topologies.torus import torus

    g = torus((4, 4))
    s = build("allreduce", "ring", ranks=range(16), count=1 << 18, itemsize=4)
    fine_be = make_backend(g, "packet", max_segments=None)
    coarse_be = make_backend(g, "packet", max_segments=2)
    fine, coarse = run(fine_be, s).time_s, run(coarse_be, s).time_s
    assert coarse == pytest.approx(fine, rel=0.02)
    mtu = fine_be.mtu
    assert fine_be.stats()["packets"] == coarse_be.stats()["packets"] // 2 * (65536 // mtu)


# -- settlement: with infinite buffers a packet's arrival is final once it starts its last
# link, so it is booked then and a message's event is scheduled for its arrival.


@pytest.mark.parametrize("nbytes", [300, 5000])
def test_observe_reports_the_arrival_before_it_happens(nbytes):
    G = chain(BWS, LATS, SW, inj=4e9)
    net = PacketNetwork(G, forwarding="store-and-forward", mtu=1000, header=16)
    seen, fired = [], {}
    ev = net.env.event()
    net.launch(0, 1, nbytes, 0, ev, None, lambda t0, t1: seen.append((t0, t1, net.env.now)))
    ev.callbacks.append(lambda _: fired.setdefault("t", net.env.now))
    net.run()
    ((t0, t1, told_at),) = seen
    assert t0 == 0.0 and t1 == fired["t"]  # the event fires at the observed arrival
    assert told_at < t1  # told while the last packet was still on its last link
    assert net.stats()["bytes_delivered"] == nbytes


def test_observe_with_finite_buffers_is_told_at_arrival():
    G = chain(BWS, LATS, SW, inj=4e9)
    net = PacketNetwork(G, mtu=1000, header=16, buffer=4096)
    seen = []
    net.launch(0, 1, 5000, 0, None, None, lambda t0, t1: seen.append((t1, net.env.now)))
    net.run()
    ((t1, told_at),) = seen
    assert told_at == t1 > 0


def test_one_event_per_packet_hop_and_one_per_message():
    # A message of m packets over h links of one path: the interface starts each packet
    # with one event (the first needs none on an idle interface), each packet spends one
    # event per hop but the last, and the message one event at its arrival.
    h, m = 3, 5
    net = PacketNetwork(chain([1e9] * h, [1e-7] * h, SW), mtu=500, header=0)
    assert time_of(net, 0, 1, 500) > 0
    assert net.stats()["events"] == (h - 1) + 1
    net = PacketNetwork(chain([1e9] * h, [1e-7] * h, SW), mtu=500, header=0)
    time_of(net, 0, 1, 500 * m)
    st = net.stats()
    assert st["packet_hops"] == h * m
    assert st["events"] == m * (h - 1) + m + 1  # hops + emits + the message


def test_uniform_traffic_costs_one_event_per_packet_hop():
    # Each generated packet costs its source's timer event and one event per hop but the
    # last: as many events as link traversals (at most about two per traversal).
    r = run_traffic(torus2d(4), "uniform", 0.3, packets=500, seed=3)
    assert r.packet_hops <= r.events <= r.packet_hops * 1.05


def test_run_until_in_steps_matches_one_run():
    def go(step):
        net = PacketNetwork(torus2d(4))
        out = {}
        for s in range(16):
            for d in range(16):
                if s != d:
                    ev = net.send(s, d, 3000 if (s + d) % 3 else 100)
                    ev.callbacks.append(lambda _, k=(s, d): out.setdefault(k, net.env.now))
        late = net.timer(lambda _: net.send(0, 5, 300, callback=lambda x: out.setdefault("x", x)))
        late(1e-6)
        if step:
            for k in range(1, 300):
                net.run(until=k * 1e-7)
        net.run()
        return out, net.stats()["bytes_delivered"]

    assert go(False) == go(True)


def test_timer_rearms_itself():
    net = PacketNetwork(ring(4))
    ticks = []

    def tick(step):
        ticks.append(net.env.now)
        if len(ticks) < 4:
            at(net.env.now + step)

    at = net.timer(tick, 2e-9)
    at(1e-9)
    net.run()
    assert ticks == pytest.approx([1e-9, 3e-9, 5e-9, 7e-9], rel=1e-12)
