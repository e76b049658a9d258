"""The packet-level network engine on simpy.

Model
-----
Every message is cut into packets (segments) at the MTU, each carrying ``header`` extra
bytes on the wire. A packet follows a source route of directed links (ports). Each port
serialises packets FIFO at its ``bandwidth`` and delivers them after its ``latency``; a
switch adds its traversal ``latency`` (node attribute) to every packet passing through it
or ending in it (in-network reduction), and the router of a chip in a direct network (chip
``latency``, default 0) to every packet it forwards (not to those it ejects).

Network interface
    A node's interface keeps one injection queue per output port. Messages that leave by
    the same port are injected one after the other (FIFO by message, as one channel streams
    its chunks); queues of different ports inject **concurrently**, packet by packet, so a
    message never waits behind another that leaves by a different port (no head-of-line
    blocking at the interface). Together they are capped at the node's
    ``injection_bandwidth`` ``B_inj``: a port ``p`` with bandwidth ``B_p`` injects each
    packet at the rate ``B_p * min(1, B_inj / A)``, ``A`` being the sum of the bandwidths of
    the node's ports that have packets to inject (weighted max-min sharing: every port runs
    at line rate when the interface is fast enough, else all are scaled alike). The rate is
    fixed per packet when the packet starts, so sharing changes take effect at packet
    boundaries. A packet's tail cannot leave its first link before the interface has pushed
    it. Examples, a node with two ports of bandwidth ``B`` sending ``n`` bytes on each at
    once: with ``B_inj >= 2B`` both arrive after ``n/B`` plus latency; with ``B_inj = B``
    both after ``2n/B`` plus latency. A node without ``injection_bandwidth`` injects at the
    sum of its ports if it is a switch (its ports run in parallel), else at its fastest
    port (:func:`default_injection`).

Forwarding
    ``store-and-forward``: a node forwards a packet once its last byte has arrived.
    ``cut-through`` (virtual cut-through): a node forwards a packet once its head has arrived;
    the packet cannot leave a link faster than its tail arrives. Zero-load latency of one
    packet of ``s`` wire bytes over hops ``i`` with bandwidths ``B_i``, link latencies ``l_i``
    and node latencies ``d_i`` (of the nodes entered, the destination chip excluded) is::

        store-and-forward:  sum_i (s / B_i + l_i) + sum_i d_i
        cut-through:        s / min_i B_i + sum_i l_i + sum_i d_i

Buffers and flow control
    ``buffer=None`` (default) models infinite buffers: each output port is a FIFO server
    whose next free time is known, so a packet's departure is computed when it reaches the
    port and the engine spends **one simulation event per packet-hop**, none at delivery:
    once a packet starts its last link its arrival time is final, so it is *settled* then
    (booked as delivered, ``observe`` told) and its message's event is scheduled for the
    arrival time of its last packet (one event per message). The interface's event that
    starts a packet also moves it onto its first link (a single-packet message on an idle
    interface needs no event there), and a port's injection queue costs one more event when
    it drains while other ports of the node are still injecting. With ``buffer=N`` bytes,
    every input port holds ``N`` bytes per virtual channel and the upstream port sends only
    against credits (lossless credit-based flow control, as NVLink and InfiniBand); packets
    are delivered by an event at arrival (it frees the buffer), and credits return one link latency after a packet leaves the buffer. Packets
    wait in per-VC output queues (deques) served round-robin. A run whose event queue runs
    dry while packets are still in flight (every one of them waiting for credits) raises
    :class:`~netsim.errors.DeadlockError` naming the blocked links. Multicast copies use the
    port timing of the infinite-buffer model in both modes.

Large messages
    A message of ``n`` bytes is simulated as ``ceil(n / segment)`` packets with
    ``segment = max(mtu, ceil(n / max_segments))`` (``max_segments=256`` by default,
    ``None`` for always the real MTU). The wire bytes stay exact: the header overhead is that
    of ``ceil(n / mtu)`` real packets, spread over the segments. Messages up to
    ``max_segments * mtu`` bytes always use the real MTU.

Conservation
    At the end of every :meth:`PacketNetwork.run` with nothing left in flight, payload bytes
    injected must equal bytes delivered, or :class:`~netsim.errors.SimulationError` is raised.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Sequence
from heapq import heappop, heappush
from typing import Any

import networkx as nx
import simpy

from netsim.engine.routing import PortTable, make_router
from netsim.errors import ConfigError, DeadlockError, SimulationError
from netsim.linktypes import LINK_TYPES
from netsim.validate import require_choice, require_int

__all__ = ["FORWARDING", "PacketNetwork", "default_injection"]

FORWARDING = ("cut-through", "store-and-forward")
_NORMAL = 1  # simpy's NORMAL event priority
_NOPATH = (None, None, None, None, 0, 0, 0, 0)  # _Message fields of a message going nowhere


def default_injection(ports: PortTable, node: int, kind: str | None) -> float:
    """Injection bandwidth of a node without an ``injection_bandwidth`` attribute.

    A switch's ports run in parallel, so a switch that originates messages (the results of
    an in-network reduction) may feed all of them at once: the sum of its output ports. Any
    other node: its fastest output port (the contract's default for a chip's interface).
    """
    bws = [ports.bandwidth[p] for p in ports.out[node]]
    if not bws:
        return 1.0
    return float(sum(bws) if kind == "switch" else max(bws))


class _Message:
    """A message: delivery bookkeeping, and the packets its interface has still to inject."""

    __slots__ = (
        "bleft",
        "callback",
        "cbl",
        "count",
        "event",
        "k",
        "left",
        "observe",
        "path",
        "seg",
        "t0",
        "tree",
        "vcs",
        "wleft",
    )

    def __init__(
        self, left, t0, event, callback, observe, path, vcs, tree, cbl, count, seg, nbytes, wire
    ):
        self.left = left  # packet deliveries still to come
        self.t0 = t0
        self.event = event
        self.callback = callback
        self.observe = observe
        self.path = path
        self.vcs = vcs
        self.tree = tree
        self.cbl = cbl  # callback list of its packets (the hop handler)
        self.count = count  # packets in all
        self.seg = seg  # payload bytes per packet (the last one may carry less)
        self.k = 0  # packets injected so far
        self.bleft = nbytes  # payload bytes not yet injected
        self.wleft = wire  # wire bytes not yet injected


class _Nic:
    """A node's network interface: the injection bandwidth its ports share."""

    __slots__ = ("active", "active_bw", "inv_bw", "linger_bw", "linger_until")

    def __init__(self, bandwidth: float) -> None:
        self.inv_bw = 1.0 / bandwidth
        self.active = 0  # ports with packets to inject (or one still being pushed)
        self.active_bw = 0.0  # sum of their bandwidths
        # The last port to go idle while it was the only one: it still pushes its last
        # packet until `linger_until` and counts for sharing until then (no extra event).
        self.linger_bw = 0.0
        self.linger_until = -1.0


class _Injector:
    """The injection queue of one output port; also the simpy event that starts its packets."""

    __slots__ = (
        "_ok",
        "_value",
        "bw",
        "callbacks",
        "cbl",
        "inv_bw",
        "nic",
        "pending",
        "queue",
        "until",
    )

    def __init__(self, nic: _Nic, bandwidth: float, cbl: list) -> None:
        self._ok = True
        self._value = None
        self.nic = nic
        self.bw = bandwidth
        self.inv_bw = 1.0 / bandwidth
        self.queue: deque[_Message] = deque()
        self.pending = 0  # wire bytes queued, not yet injected
        self.until = 0.0  # when its last packet so far is fully pushed
        self.cbl = cbl
        self.callbacks = None  # not None exactly while an event of it is scheduled


class _Packet:
    """A packet in flight; it is also the simpy event that moves it (one per hop).

    A message of one packet injected at once is its own message: ``msg`` is None and the
    packet has the message fields ``left``, ``t0``, ``event``, ``callback`` and ``observe``
    (no reference cycle, so no work for the garbage collector).
    """

    __slots__ = (
        "callback",
        "cbl",
        "event",
        "hop",
        "left",
        "msg",
        "observe",
        "path",
        "payload",
        "prev",
        "size",
        "t0",
        "tail",
        "tree",
        "vcs",
    )

    # What simpy's own loop (``run(until)``) reads of an event: always ok, no value, and
    # the handler as the callback list (clearing it after processing is ignored).
    _ok = True
    _value = None
    callbacks = property(lambda self: self.cbl, lambda self, _: None)

    def __init__(self, msg, size, payload, path, vcs, cbl) -> None:
        self.msg = msg
        self.size = size
        self.payload = payload
        self.path = path
        self.vcs = vcs
        self.hop = 0
        self.tail = 0.0
        self.prev = -1
        self.tree = None
        self.cbl = cbl


class _Call:
    """A light simpy event that calls ``fn(arg)`` when processed."""

    __slots__ = ("arg", "fn")
    _ok = True  # as _Packet
    _value = None
    callbacks = property(lambda self: _DISPATCH, lambda self, _: None)

    def __init__(self, fn: Callable[[Any], None], arg: Any) -> None:
        self.fn = fn
        self.arg = arg


def _dispatch(event: _Call) -> None:
    event.fn(event.arg)


_DISPATCH = [_dispatch]  # shared: simpy only reads an event's callback list


class PacketNetwork:
    """A packet-level model of a topology, implementing :class:`netsim.backend.Backend`.

    Parameters
    ----------
    graph : networkx.Graph
        A topology following the attribute contract of :mod:`topologies`.
    forwarding : {"cut-through", "store-and-forward"}
        How nodes forward packets (see the module docstring).
    mtu, header : int, optional
        Payload bytes per packet and header bytes per packet. Default: the smallest MTU and
        largest header among the link types of the graph (:mod:`netsim.linktypes`).
    buffer : int, optional
        Input buffer bytes per port and virtual channel; ``None`` for infinite buffers.
        Must hold at least one full packet.
    routing : str
        See :mod:`netsim.engine.routing`.
    max_segments : int or None
        Largest number of packets one message is simulated with (see module docstring).
    seed : int
        Seeds every random choice of the engine (Valiant intermediate groups).
    env : simpy.Environment, optional
        Share a clock with other models; a new one by default.

    Examples
    --------
    >>> from topologies.torus import torus
    >>> net = PacketNetwork(torus((4,)), forwarding="store-and-forward")
    >>> done = net.send(0, 2, 4096)
    >>> net.run()
    >>> done.triggered
    True
    """

    def __init__(
        self,
        graph: nx.Graph,
        *,
        forwarding: str = "cut-through",
        mtu: int | None = None,
        header: int | None = None,
        buffer: int | None = None,
        routing: str = "auto",
        max_segments: int | None = 256,
        seed: int = 0,
        env: simpy.Environment | None = None,
    ) -> None:
        require_choice("forwarding", forwarding, FORWARDING)
        if graph.number_of_nodes() == 0:
            raise ConfigError("graph: must have at least one node, got an empty graph")
        types = {lt for _, _, lt in graph.edges(data="link") if lt in LINK_TYPES}
        lts = [LINK_TYPES[t] for t in types] or [LINK_TYPES["ib"]]
        self.mtu = require_int("mtu", min(lt.mtu for lt in lts) if mtu is None else mtu, min=1)
        self.header = require_int(
            "header", max(lt.header for lt in lts) if header is None else header, min=0
        )
        if max_segments is not None:
            max_segments = require_int("max_segments", max_segments, min=1)
        self.max_segments = max_segments
        self.seed = require_int("seed", seed, min=0)
        self.forwarding = forwarding
        self.cut_through = forwarding == "cut-through"
        self.graph = graph
        self.env = env if env is not None else simpy.Environment()
        self.ports = ports = PortTable(graph)
        self.router = make_router(graph, ports, routing, seed=self.seed, backlog=self.backlog)
        self.routing = self.router.name
        self._route = self.router.route
        self.nvcs = self.router.nvcs
        if buffer is not None:
            buffer = require_int("buffer", buffer, min=self.mtu + self.header)
        self.buffer = buffer
        self.model = f"packet/{forwarding}" + ("" if buffer is None else f"/credit-{buffer}B")

        n = len(ports)
        self._inv_bw = [1.0 / b for b in ports.bandwidth]
        node_lat = {v: float(graph.nodes[v].get("latency", 0.0)) for v in graph.nodes}
        # Delay from a port's departure to readiness at its far end: link + node latency.
        self._delay = [ports.latency[p] + node_lat[ports.dst[p]] for p in range(n)]
        self._wire = ports.latency  # credits travel back over the link only
        # Delay from the last departure to delivery: link latency, plus the traversal latency
        # of a switch that is itself the destination (in-network reduction enters the switch's
        # pipeline); a chip's router latency is not charged on ejection.
        self._lat = [
            ports.latency[p]
            + (node_lat[ports.dst[p]] if graph.nodes[ports.dst[p]].get("kind") == "switch" else 0.0)
            for p in range(n)
        ]
        self._busy = [0.0] * n
        self._busy_time = [0.0] * n
        self._nics: dict[int, _Nic] = {}
        for v, data in graph.nodes(data=True):
            bw = data.get("injection_bandwidth")
            if not bw:
                bw = default_injection(ports, v, data.get("kind"))
            self._nics[v] = _Nic(float(bw))
        self._injectors: list[_Injector | None] = [None] * n
        self._queue = self.env._queue
        self._eid = self.env._eid
        self._eid0 = self._peek_eid()
        if buffer is None:
            self._hop = self._make_hop()
        else:
            self._hop = self._hop_fc
            self._credits = [[buffer] * self.nvcs for _ in range(n)]
            self._vcq: list[list[deque]] = [[deque() for _ in range(self.nvcs)] for _ in range(n)]
            self._rr = [0] * n
            self._kick_at = [-1.0] * n
        self._cb_hop = [self._hop]
        self._cb_mc = [self._hop_mc]
        self._cb_emit = [self._make_emit()]
        self.packets = 0
        self.packet_hops = 0
        self.bytes_injected = 0
        self.bytes_delivered = 0
        self.messages = 0
        self.in_flight = 0
        self._flow = itertools.count()

    # ------------------------------------------------------------------ public seam
    def send(
        self,
        src: int,
        dst: int,
        nbytes: int,
        *,
        flow: int = 0,
        callback: Callable[[float], None] | None = None,
        observe: Callable[[float, float], None] | None = None,
    ) -> simpy.Event:
        """Send ``nbytes`` from node ``src`` to node ``dst``; see :class:`Backend`.

        ``flow`` labels the flow for ECMP hashing (all packets of a message take one path).
        ``callback(latency)`` is called at delivery, before the event fires.
        ``observe(t_sent, t_arrived)`` is called as soon as the message's arrival time is
        final: with infinite buffers when its last packet starts its last link (simulated
        time has not reached ``t_arrived`` yet), with finite buffers at arrival. It is for
        open-loop measurement (nothing the simulation does may depend on it) and costs no
        event.
        """
        if src not in self._nics or dst not in self._nics:
            bad = src if src not in self._nics else dst
            raise ConfigError(f"send: node {bad!r} is not in the topology")
        if nbytes < 0:
            raise ConfigError(f"nbytes: must be >= 0, got {nbytes}")
        event = self.env.event()
        self._send(src, dst, int(nbytes), flow, event, callback, observe)
        return event

    def multicast(self, src: int, dsts: Sequence[int], nbytes: int) -> simpy.Event:
        """Send the same ``nbytes`` from ``src`` to every node of ``dsts``.

        Packets follow the union of the unicast routes, replicated where they diverge (a
        multicast tree, as NVLink SHARP and InfiniBand multicast do). Fires when every
        destination has every byte.
        """
        dsts = [d for d in dict.fromkeys(dsts) if d != src]
        for d in [src, *dsts]:
            if d not in self._nics:
                raise ConfigError(f"multicast: node {d!r} is not in the topology")
        event = self.env.event()
        if not dsts:
            event.succeed()
            return event
        # children[port] lists the ports a packet arriving on `port` is copied to; -1: source.
        children: dict[int, list[int]] = {}
        ends: set[int] = set()
        entered: dict[int, int] = {}  # node -> the port the tree enters it by
        for d in dsts:
            path, _ = self.router.route(src, d, 0)
            parent = -1
            for p in path:
                node = self.ports.dst[p]
                if node in entered and entered[node] != p:
                    # Already reached by another branch: graft there.
                    parent = entered[node]
                    continue
                if p not in children.setdefault(parent, []):
                    children[parent].append(p)
                entered[node] = p
                parent = p
            ends.add(entered[d])
        tree = {k: tuple(v) for k, v in children.items()}
        self._inject(src, nbytes, None, None, event, tree=(tree, frozenset(ends), len(dsts)))
        return event

    def run(self, until: float | simpy.Event | None = None) -> None:
        """Run until ``until`` or until no event is left; check conservation at the end."""
        try:
            if until is None:
                self._run_all()
            else:
                self.env.run(until)
        except RuntimeError as exc:
            # simpy: "No scheduled events left but "until" event was not triggered".
            if self._queue or not self.in_flight:
                raise
            raise DeadlockError(self._deadlock_message()) from exc
        if not self._queue:
            if self.in_flight:
                raise DeadlockError(self._deadlock_message())
            if self.bytes_injected != self.bytes_delivered:
                raise SimulationError(
                    f"conservation: {self.bytes_injected} bytes injected but "
                    f"{self.bytes_delivered} delivered"
                )

    def _run_all(self) -> None:
        """simpy's ``Environment.run()`` loop, inlined: same semantics, less overhead."""
        env, queue = self.env, self._queue
        packet, call = _Packet, _Call
        while queue:
            env._now, _, _, event = heappop(queue)
            kind = type(event)
            if kind is packet:  # the engine's own events: one known handler, never failed
                event.cbl[0](event)
                continue
            if kind is call:
                event.fn(event.arg)
                continue
            callbacks, event.callbacks = event.callbacks, None
            for callback in callbacks:
                callback(event)
            if not event._ok and not hasattr(event, "_defused"):
                exc = type(event._value)(*event._value.args)
                exc.__cause__ = event._value
                raise exc

    def stats(self) -> dict[str, Any]:
        """Counters of the run so far (see :class:`netsim.backend.Backend`)."""
        return {
            "model": self.model,
            "forwarding": self.forwarding,
            "routing": self.routing,
            "mtu": self.mtu,
            "header": self.header,
            "buffer": self.buffer,
            "messages": self.messages,
            "packets": self.packets,
            "packet_hops": self.packet_hops,
            "events": self._peek_eid() - self._eid0,
            "bytes_injected": self.bytes_injected,
            "bytes_delivered": self.bytes_delivered,
            "max_link_utilisation": max(self.link_utilisation().values(), default=0.0),
            "sim_time_s": self.env.now,
        }

    def link_utilisation(self) -> dict[tuple[int, int], float]:
        """Busy fraction of every directed link over the simulated time so far."""
        now = self.env.now
        if now <= 0:
            return {(self.ports.src[p], self.ports.dst[p]): 0.0 for p in range(len(self.ports))}
        return {
            (self.ports.src[p], self.ports.dst[p]): min(1.0, self._busy_time[p] / now)
            for p in range(len(self.ports))
        }

    def backlog(self, port: int) -> float:
        """Seconds of work queued at ``port`` (its next free time minus now)."""
        b = self._busy[port] - self.env._now
        inj = self._injectors[port]
        if inj is not None and inj.pending:
            b = (b if b > 0 else 0.0) + inj.pending * self._inv_bw[port]
        if self.buffer is not None:
            b += sum(q.size for dq in self._vcq[port] for q in dq) * self._inv_bw[port]
        return b if b > 0 else 0.0

    def call_at(self, t: float, fn: Callable[[Any], None], arg: Any = None) -> None:
        """Call ``fn(arg)`` at simulated time ``t`` (>= now) with one light event."""
        call = _Call(fn, arg)
        heappush(self._queue, (t, _NORMAL, next(self._eid), call))

    def timer(self, fn: Callable[[Any], None], arg: Any = None) -> Callable[[float], None]:
        """Return ``at(t)``: call ``fn(arg)`` at simulated time ``t`` (>= now).

        One light event object serves every call, so a timer is armed at most once at a
        time (re-arm it from ``fn``, as a traffic source does for its next packet).
        """
        call = _Call(fn, arg)
        queue, eid = self._queue, self._eid

        def at(t: float) -> None:
            heappush(queue, (t, _NORMAL, next(eid), call))

        return at

    def route(self, src: int, dst: int, flow: int = 0) -> list[int]:
        """The nodes a message from ``src`` to ``dst`` visits (``src`` first)."""
        return self.router.path_nodes(src, dst, flow)

    # ------------------------------------------------------------------ internals
    def _peek_eid(self) -> int:
        # simpy numbers every scheduled event from one itertools.count; its repr,
        # "count(N)", tells the next number without using it up.
        return int(repr(self._eid)[6:-1].split(",")[0])

    def _send(self, src, dst, nbytes, flow, event, callback, observe=None) -> None:
        if src == dst:
            self.messages += 1
            self.bytes_injected += nbytes
            self.bytes_delivered += nbytes
            now = self.env._now
            self._complete(_Message(0, now, event, callback, observe, *_NOPATH), now)
            return
        path, vcs = self._route(src, dst, flow)
        if nbytes <= self.mtu:
            port = path[0]
            inj = self._injectors[port]
            if inj is None:
                inj = self._new_injector(src, port)
            nic = inj.nic
            now = self.env._now
            if not nic.active and nic.linger_until <= now and inj.until <= now:
                # Fast path, one packet and an idle interface: it starts now at the port's
                # rate and lingers as the interface's last port (what `emit` would do,
                # inlined), and goes onto its first link now (no event of its own).
                wire = nbytes + self.header
                x = inj.bw * nic.inv_bw
                inj.until = tail = now + wire * inj.inv_bw * (x if x > 1.0 else 1.0)
                nic.linger_bw = inj.bw
                nic.linger_until = tail
                pkt = _Packet(None, wire, nbytes, path, vcs, self._cb_hop)
                pkt.left = 1
                pkt.t0 = now
                pkt.event = event
                pkt.callback = callback
                pkt.observe = observe
                pkt.tail = tail
                self.messages += 1
                self.packets += 1
                self.in_flight += 1
                self.bytes_injected += nbytes
                if self.buffer is None:
                    self.packet_hops += len(path)
                self._hop(pkt)
                return
        self._inject(src, nbytes, path, vcs, event, callback, observe)

    def _segments(self, nbytes: int) -> tuple[int, int, int]:
        """Return (segments, payload per segment, wire bytes in all) for a message."""
        mtu = self.mtu
        real = max(1, -(-nbytes // mtu))
        seg = mtu
        if self.max_segments is not None and real > self.max_segments:
            seg = -(-nbytes // self.max_segments)
        count = max(1, -(-nbytes // seg))
        return count, seg, nbytes + real * self.header

    def _inject(self, src, nbytes, path, vcs, event, callback=None, observe=None, tree=None):
        """Queue a message at the injection queue of its first port."""
        if nbytes <= self.mtu:  # one packet (the common small-message case, inlined)
            count, seg, wire = 1, self.mtu, nbytes + self.header
        else:
            count, seg, wire = self._segments(nbytes)
        copies = 1
        if tree is None:
            port = path[0]
            cbl = self._cb_hop
            if self.buffer is None:
                self.packet_hops += count * len(path)  # counted up front on this fast path
        else:
            port = tree[0][-1][0]
            cbl = self._cb_mc
            copies = tree[2]
        msg = _Message(
            count * copies, self.env._now, event, callback, observe, path, vcs, tree, cbl, count,
            seg, nbytes, wire,
        )  # fmt: skip
        self.messages += 1
        self.packets += count
        self.in_flight += count
        self.bytes_injected += nbytes * copies
        inj = self._injectors[port]
        if inj is None:
            inj = self._new_injector(src, port)
        now = self.env._now
        nic = inj.nic
        if (
            tree is not None
            and count == 1
            and not nic.active
            and nic.linger_until <= now
            and inj.until <= now
        ):  # one multicast packet on an idle interface: start it now, as `_send` does
            x = inj.bw * nic.inv_bw
            inj.until = tail = now + wire * inj.inv_bw * (x if x > 1.0 else 1.0)
            nic.linger_bw = inj.bw
            nic.linger_until = tail
            msg.k = 1
            pkt = _Packet(msg, wire, nbytes, path, vcs, cbl)
            pkt.tail = tail
            pkt.tree = tree
            self._hop_mc(pkt)
            return
        inj.queue.append(msg)
        inj.pending += wire
        if inj.callbacks is None:  # idle: start injecting now
            nic.active += 1
            nic.active_bw += inj.bw
            inj.callbacks = inj.cbl
            t = now
            if inj.until > t:  # still pushing its last packet: it was lingering
                t = inj.until
                if nic.linger_until == t:
                    nic.linger_until = -1.0  # counted as active now
            heappush(self._queue, (t, _NORMAL, next(self._eid), inj))

    def _new_injector(self, src: int, port: int) -> _Injector:
        inj = _Injector(self._nics[src], self.ports.bandwidth[port], self._cb_emit)
        self._injectors[port] = inj
        return inj

    def _make_emit(self) -> Callable[[_Injector], None]:
        """Build the handler that starts the next packet of a port's injection queue.

        The packet is pushed at the port's share of the interface (see the module
        docstring) and moved onto its first link at once (no event of its own for that).
        """
        env, queue, eid, hop, hop_mc = self.env, self._queue, self._eid, self._hop, self._hop_mc

        def emit(inj: _Injector) -> None:
            now = env._now
            q = inj.queue
            nic = inj.nic
            if not q:  # the last packet of a burst has been pushed: stop sharing
                nic.active -= 1
                nic.active_bw = nic.active_bw - inj.bw if nic.active else 0.0
                return
            msg = q[0]
            k = msg.k
            left = msg.bleft
            seg = msg.seg
            payload = seg if left > seg else left
            size = msg.wleft // (msg.count - k)
            msg.bleft = left - payload
            msg.wleft -= size
            k += 1
            msg.k = k
            inj.pending -= size
            a = nic.active_bw
            if nic.linger_until > now:
                a += nic.linger_bw
            x = a * nic.inv_bw  # > 1: the ports together would outrun the interface
            tail = now + size * inj.inv_bw * (x if x > 1.0 else 1.0)
            inj.until = tail
            if k == msg.count:
                q.popleft()
            if q or nic.active > 1:
                inj.callbacks = inj.cbl
                heappush(queue, (tail, 1, next(eid), inj))
            else:  # the only active port goes idle: let it linger instead of an event
                nic.active = 0
                nic.active_bw = 0.0
                nic.linger_bw = inj.bw
                nic.linger_until = tail
            pkt = _Packet(msg, size, payload, msg.path, msg.vcs, msg.cbl)
            pkt.tail = tail
            tree = msg.tree
            if tree is None:
                hop(pkt)
            else:
                pkt.tree = tree
                hop_mc(pkt)

        return emit

    def _deliver(self, pkt: _Packet) -> None:
        """The packet has arrived (finite buffers, multicast): book it now."""
        msg = pkt.msg
        if msg is None:
            msg = pkt
        self.in_flight -= 1
        self.bytes_delivered += pkt.payload
        msg.left -= 1
        if msg.left == 0:
            self._complete(msg, self.env._now)

    def _complete(self, msg: _Message, t: float) -> None:
        """Every packet of ``msg`` has arrived or will arrive by ``t`` (its last arrival).

        ``observe`` is told at once; ``callback`` and ``event`` act at ``t``: now if ``t``
        is now, else the event is scheduled for ``t`` already triggered, as a simpy
        ``Timeout`` is (one event per message, none per packet).
        """
        t0 = msg.t0
        if msg.observe is not None:
            msg.observe(t0, t)
        event, callback = msg.event, msg.callback
        if t <= self.env._now:
            if callback is not None:
                callback(t - t0)
            if event is not None:
                event.succeed()
        elif event is not None:
            if callback is not None:
                event.callbacks.insert(0, lambda _: callback(t - t0))
            event._ok = True
            event._value = None
            heappush(self._queue, (t, _NORMAL, next(self._eid), event))
        elif callback is not None:
            heappush(self._queue, (t, _NORMAL, next(self._eid), _Call(callback, t - t0)))

    def _make_hop(self) -> Callable[[_Packet], None]:
        """Build the infinite-buffer hop handler: one event per packet-hop.

        Each output port is a FIFO server whose next free time is known, so a packet's
        departure is fixed the moment it reaches the port. So is its arrival once it starts
        its last link: the packet is then settled (booked as delivered, its message completed
        for the arrival time) without an event of its own. A closure over local lists keeps
        attribute look-ups off the hot path.
        """
        busy, busy_time, inv_bw = self._busy, self._busy_time, self._inv_bw
        delay, lat, queue, eid = self._delay, self._lat, self._queue, self._eid
        env, complete, cut_through = self.env, self._complete, self.cut_through

        def hop(pkt: _Packet) -> None:
            now = env._now
            i = pkt.hop
            path = pkt.path
            port = path[i]
            start = busy[port]
            if start < now:
                start = now
            end = start + pkt.size * inv_bw[port]
            if end < pkt.tail:
                end = pkt.tail
            busy[port] = end
            busy_time[port] += end - start
            i += 1
            if i == len(path):  # its last link: the arrival time is final, settle it
                self.in_flight -= 1
                self.bytes_delivered += pkt.payload
                msg = pkt.msg
                if msg is None:  # a message of its own
                    complete(pkt, end + lat[port])
                    return
                msg.left -= 1
                if msg.left == 0:
                    complete(msg, end + lat[port])
                return
            pkt.hop = i
            d = delay[port]
            pkt.tail = end + d
            heappush(queue, (start + d if cut_through else end + d, 1, next(eid), pkt))

        return hop

    # -- multicast (both buffer modes use the infinite-buffer port model for copies)
    def _hop_mc(self, pkt: _Packet) -> None:
        tree, ends, _ = pkt.tree
        port = pkt.prev
        if port != -1 and port in ends:
            self._deliver(pkt)
        kids = tree.get(port, ())
        if not kids:
            return
        now = self.env._now
        self.in_flight += len(kids) - (0 if port != -1 and port in ends else 1)
        for child in kids:
            start = self._busy[child]
            if start < now:
                start = now
            end = start + pkt.size * self._inv_bw[child]
            if end < pkt.tail:
                end = pkt.tail
            self._busy[child] = end
            self._busy_time[child] += end - start
            self.packet_hops += 1
            cp = _Packet(pkt.msg, pkt.size, pkt.payload, None, None, self._cb_mc)
            cp.tree = pkt.tree
            cp.prev = child
            d = self._delay[child] if tree.get(child) else self._lat[child]
            cp.tail = end + d
            t = start + d if self.cut_through and tree.get(child) else end + d
            heappush(self._queue, (t, _NORMAL, next(self._eid), cp))

    # -- finite buffers, credit-based flow control
    def _hop_fc(self, pkt: _Packet) -> None:
        i = pkt.hop
        if i == len(pkt.path):
            self._free(pkt)
            self._deliver(pkt)
            return
        port = pkt.path[i]
        self._vcq[port][pkt.vcs[i]].append(pkt)
        self._try_send(port)

    def _free(self, pkt: _Packet) -> None:
        """The packet leaves the input buffer it occupies: return credits upstream."""
        prev = pkt.prev
        if prev >= 0:
            call = _Call(self._credit, (prev, pkt.vcs[pkt.hop - 1], pkt.size))
            heappush(
                self._queue, (self.env._now + self._wire[prev], _NORMAL, next(self._eid), call)
            )

    def _credit(self, arg: tuple[int, int, int]) -> None:
        port, vc, size = arg
        self._credits[port][vc] += size
        self._try_send(port)

    def _kick(self, port: int) -> None:
        self._kick_at[port] = -1.0
        self._try_send(port)

    def _try_send(self, port: int) -> None:
        now = self.env._now
        busy = self._busy[port]
        if busy > now:
            if self._kick_at[port] != busy:
                self._kick_at[port] = busy
                heappush(self._queue, (busy, _NORMAL, next(self._eid), _Call(self._kick, port)))
            return
        queues = self._vcq[port]
        credits = self._credits[port]
        nv = len(queues)
        r = self._rr[port]
        for k in range(nv):
            vc = (r + k) % nv
            q = queues[vc]
            if q and q[0].size <= credits[vc]:
                break
        else:
            return
        pkt = q.popleft()
        self._rr[port] = (vc + 1) % nv
        credits[vc] -= pkt.size
        end = now + pkt.size * self._inv_bw[port]
        if end < pkt.tail:
            end = pkt.tail
        self._busy[port] = end
        self._busy_time[port] += end - now
        self.packet_hops += 1
        # The tail leaves this node's input buffer at `end`: credits go back upstream then.
        if pkt.prev >= 0:
            call = _Call(self._credit, (pkt.prev, pkt.vcs[pkt.hop - 1], pkt.size))
            heappush(self._queue, (end + self._wire[pkt.prev], _NORMAL, next(self._eid), call))
        pkt.prev = port
        pkt.hop = i = pkt.hop + 1
        if i == len(pkt.path):
            pkt.tail = t = end + self._lat[port]
        else:
            d = self._delay[port]
            pkt.tail = end + d
            t = now + d if self.cut_through else end + d
        heappush(self._queue, (t, _NORMAL, next(self._eid), pkt))
        if any(queues):
            self._kick_at[port] = end
            heappush(self._queue, (end, _NORMAL, next(self._eid), _Call(self._kick, port)))

    def _deadlock_message(self) -> str:
        stuck = []
        if self.buffer is not None:
            for p, queues in enumerate(self._vcq):
                for vc, q in enumerate(queues):
                    if q and q[0].size > self._credits[p][vc]:
                        stuck.append(f"{self.ports.src[p]}->{self.ports.dst[p]} (vc {vc})")
        shown = ", ".join(stuck[:8]) + (f" and {len(stuck) - 8} more" if len(stuck) > 8 else "")
        return (
            f"deadlock at t={self.env.now:.9g}s: {self.in_flight} packets in flight, no progress; "
            f"blocked links waiting for credits: {shown or 'none'} (routing {self.routing})"
        )
