"""The packet-level network engine on simpy.

Model
-----
Every message is cut into packets (segments) at its route's path MTU, and every link
carries each packet with its own link type's header (:mod:`netsim.core.engine.packetise`:
InfiniBand routes use 4096 B packets with 26 B headers, NVLink routes 256 B with 16 B, in
one system). A packet follows a source route of directed links (ports), each a FIFO server
with its bandwidth and latency; nodes add their traversal latency, and forward packets
cut-through or store-and-forward (:mod:`netsim.core.engine.forwarding`, with the
zero-load latency of each).

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
    port (:func:`~netsim.core.engine.interface.default_injection`).

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
    are delivered by an event at arrival (it frees the buffer), and credits return one link
    latency after a packet leaves the buffer. Packets wait in per-VC output queues (deques)
    served round-robin. A run whose event queue runs
    dry while packets are still in flight (every one of them waiting for credits) raises
    :class:`~netsim.core.errors.DeadlockError` naming the blocked links. Multicast copies use the
    port timing of the infinite-buffer model in both modes.

Large messages
    A message of ``n`` bytes is simulated as ``ceil(n / segment)`` packets with
    ``segment = max(mtu, ceil(n / max_segments))`` (``mtu`` the route's path MTU;
    ``max_segments=256`` by default, ``None`` for always the real MTU). The wire bytes stay
    exact: the header overhead is that of ``ceil(n / mtu)`` real packets, spread over the
    segments. Messages up to ``max_segments * mtu`` bytes always use the real MTU.

Conservation
    At the end of every :meth:`PacketNetwork.run` with nothing left in flight, payload bytes
    injected must equal bytes delivered, or :class:`~netsim.core.errors.SimulationError` is raised.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from heapq import heappush
from typing import Any

import networkx as nx
import simpy

from netsim.core.backend import check_multicast
from netsim.core.engine.backend_base import BackendBase
from netsim.core.engine.flowcontrol import CreditFlowControl
from netsim.core.engine.forwarding import make_hop, port_timing
from netsim.core.engine.interface import make_emit
from netsim.core.engine.multicast import make_hop_mc, multicast_tree
from netsim.core.engine.packets import NOPATH, Call, Injector, Message, Nic, Packet
from netsim.core.engine.simpy_adapter import (
    NORMAL,
    event_counter,
    event_queue,
    pending,
    run_all,
    schedule_at,
    succeed_at,
)
from netsim.core.errors import ConfigError, DeadlockError, SimulationError
from netsim.core.validate import require_choice, require_int

__all__ = [
    "DEFAULT_MAX_SEGMENTS",
    "FORWARDING",
    "MAX_MESSAGE_PACKETS",
    "PacketNetwork",
]

FORWARDING = ("cut-through", "store-and-forward")
#: The ``max_segments`` a :class:`PacketNetwork` has unless told (see "Large messages").
DEFAULT_MAX_SEGMENTS = 256
#: Most packets one message may be cut into (with ``max_segments=None``, every real MTU
#: packet): a larger message is refused when it is sent rather than simulated for hours.
MAX_MESSAGE_PACKETS = 1 << 20


class PacketNetwork(BackendBase):
    """A packet-level model of a topology, implementing :class:`netsim.core.backend.Backend`.

    ``multicast`` replicates packets where the unicast routes diverge (a multicast tree, as
    NVLink SHARP and InfiniBand multicast do).

    Parameters
    ----------
    graph : networkx.Graph
        A topology following the attribute contract of :mod:`topologies`.
    forwarding : {"cut-through", "store-and-forward"}
        How nodes forward packets (:mod:`netsim.core.engine.forwarding`).
    buffer : int, optional
        Input buffer bytes per port and virtual channel; ``None`` for infinite buffers.
        Must hold at least one full packet of the largest link type.
    max_segments : int or None
        Largest number of packets one message is simulated with (see module docstring).
    **common
        ``mtu``, ``header``, ``routing`` (:mod:`netsim.core.engine.routing`), ``seed``
        (every random choice of the engine, e.g. Valiant intermediate groups) and ``env``:
        as :class:`~netsim.core.engine.backend_base.BackendBase`.

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
        buffer: int | None = None,
        max_segments: int | None = DEFAULT_MAX_SEGMENTS,
        **common: Any,
    ) -> None:
        require_choice("forwarding", forwarding, FORWARDING)
        super().__init__(graph, **common)
        self.forwarding = forwarding
        self.cut_through = forwarding == "cut-through"
        if max_segments is not None:
            max_segments = require_int("max_segments", max_segments, min=1)
        self.max_segments = max_segments
        # Messages up to this many MTUs are cut at the MTU (see _segments).
        self._real_mtu_limit = min(max_segments or MAX_MESSAGE_PACKETS, MAX_MESSAGE_PACKETS)
        if buffer is not None:
            buffer = require_int("buffer", buffer, min=self._pk.max_packet)
        self.buffer = buffer
        self.model = f"packet/{forwarding}" + ("" if buffer is None else f"/credit-{buffer}B")
        self._route = self.router.route
        self.nvcs = self.router.nvcs
        self._inv_bw, self._delay, self._lat = port_timing(graph, self.ports)
        self._wire = self.ports.latency  # credits travel back over the link only
        self._busy = [0.0] * len(self.ports)
        self._nics = {v: Nic(bw) for v, bw in self._inj.items()}
        self._injectors: list[Injector | None] = [None] * len(self.ports)
        self._heap = event_queue(self.env)  # bound once for the hot paths (simpy_adapter)
        self._seq = event_counter(self.env)
        self._fc = None if buffer is None else CreditFlowControl(self, buffer)
        self._make_handlers()
        self.packets = 0
        self.in_flight = 0

    def _backlog_source(self) -> Callable[[int], float]:
        return self.backlog  # adaptive routing reads the ports' queues

    def _make_handlers(self) -> None:
        """The callback lists of packets (hop, multicast hop) and of injection queues."""
        self._hop = make_hop(self) if self._fc is None else self._fc.hop
        self._hop_mc = make_hop_mc(self)
        self._cb_hop = [self._hop]
        self._cb_mc = [self._hop_mc]
        uniform = self._pk.uniform
        self._uniform = None if uniform is None else (*uniform, self._cb_hop)
        self._cb_emit = [make_emit(self)]

    # ------------------------------------------------------------------ public seam
    def run(self, until: float | simpy.Event | None = None) -> None:
        """Run until ``until`` or until no event is left; check conservation at the end."""
        try:
            if until is None:
                run_all(self.env, Packet, Call, Injector)
            else:
                self.env.run(until)
        except RuntimeError as exc:
            # simpy: "No scheduled events left but "until" event was not triggered".
            if pending(self.env) or not self.in_flight:
                raise
            raise DeadlockError(self._deadlock_message()) from exc
        if not pending(self.env):
            if self.in_flight:
                raise DeadlockError(self._deadlock_message())
            if self.bytes_injected != self.bytes_delivered:
                raise SimulationError(
                    f"conservation: {self.bytes_injected} bytes injected but "
                    f"{self.bytes_delivered} delivered"
                )

    def wire_bytes(self, nbytes: int, ports: Sequence[int] | None = None) -> int:
        """Wire bytes of a message of ``nbytes`` payload on the first link of ``ports`` (a
        route), cut at the route's path MTU; without ``ports`` the most any link type of
        the graph puts on the wire (:mod:`netsim.core.engine.packetise`)."""
        return self._pk.wire(nbytes, ports)

    def backlog(self, port: int) -> float:
        """Seconds of work queued at ``port`` (its next free time minus now)."""
        b = self._busy[port] - self.env._now
        inj = self._injectors[port]
        if inj is not None and inj.pending:
            b = (b if b > 0 else 0.0) + inj.pending * self._inv_bw[port]
        if self._fc is not None:
            b += self._fc.queued_bytes(port) * self._inv_bw[port]
        return b if b > 0 else 0.0

    def call_at(self, t: float, fn: Callable[[Any], None], arg: Any = None) -> None:
        """Call ``fn(arg)`` at simulated time ``t`` (>= now) with one light event."""
        schedule_at(self.env, t, Call(fn, arg))

    def timer(self, fn: Callable[[Any], None], arg: Any = None) -> Callable[[float], None]:
        """Return ``at(t)``: call ``fn(arg)`` at simulated time ``t`` (>= now).

        One light event object serves every call, so a timer is armed at most once at a
        time (re-arm it from ``fn``, as a traffic source does for its next packet).
        """
        call = Call(fn, arg)
        queue, eid = self._heap, self._seq

        def at(t: float) -> None:
            heappush(queue, (t, NORMAL, next(eid), call))

        return at

    # ------------------------------------------------------------------ internals
    def _multicast(self, src: int, dsts: Sequence[int], nbytes: int, event: Any) -> None:
        """Multicast completing ``event`` (a simpy event or a :class:`Call`)."""
        dsts, nbytes = check_multicast(self._nodes, src, dsts, nbytes)
        if not dsts:
            self._fire(event, self.env._now)
            return
        tree = multicast_tree(self.router, self.ports, src, dsts)
        first = tree[0][-1][0]
        tports = tuple(p for kids in tree[0].values() for p in kids)
        mtu, header, mixed = self._pk.route(tports, first)
        cbl = self._cb_mc
        if mixed:
            cbl = self._pk.scaled_handler(
                tports, tports, nbytes, mtu, first, self._inv_bw, lambda inv: make_hop_mc(self, inv)
            )
        self._inject(src, nbytes, None, None, event, None, None, tree, mtu, header, cbl)

    def _fire(self, event: Any, t: float) -> None:
        """Process ``event`` (a simpy event, succeeded now, or a :class:`Call`) at ``t``."""
        if type(event) is Call:
            heappush(self._heap, (t, NORMAL, next(self._seq), event))
        elif t <= self.env._now:
            event.succeed()
        else:
            succeed_at(self.env, t, event)

    def launch(
        self,
        src: int,
        dst: int,
        nbytes: int,
        flow: int,
        event: simpy.Event | Call | None,
        callback: Callable[[float], None] | None,
        observe: Callable[[float, float], None] | None = None,
    ) -> None:
        """Start a message whose arguments are already checked (the hot path of :meth:`send`
        and of open-loop sources, :mod:`netsim.core.openloop`).

        ``src`` and ``dst`` must be nodes and ``nbytes`` a whole number >= 0; ``event`` is
        a simpy event, a :class:`Call` or None, completed at arrival; ``flow`` and
        ``callback`` as in :meth:`send` (``flow`` labels the message for ECMP hashing: all
        its packets take one path). ``observe(t_sent, t_arrived)`` is called as soon as the
        message's arrival time is final: with infinite buffers when its last packet starts
        its last link (simulated time has not reached ``t_arrived`` yet), with finite
        buffers at arrival. It is for open-loop measurement (nothing the simulation does
        may depend on it) and costs no event.
        """
        if src == dst:
            self.messages += 1
            self.bytes_injected += nbytes
            self.bytes_delivered += nbytes
            now = self.env._now
            self._complete(Message(0, now, event, callback, observe, *NOPATH), now)
            return
        path, vcs = self._route(src, dst, flow)
        mtu, header, cbl = self._uniform or self._unicast(path, nbytes)
        if nbytes <= mtu:
            port = path[0]
            inj = self._injectors[port]
            if inj is None:
                inj = self._new_injector(src, port)
            now = self.env._now
            wire = nbytes + header
            tail = inj.start_idle(now, wire)
            if tail is not None:
                # Fast path, one packet on an idle interface: it goes onto its first link
                # now (no event of its own) and is its own message.
                pkt = Packet(None, wire, nbytes, path, vcs, cbl)
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
                cbl[0](pkt)
                return
        self._inject(src, nbytes, path, vcs, event, callback, observe, None, mtu, header, cbl)

    _send = launch  # the hook of BackendBase

    def _unicast(self, path: tuple[int, ...], nbytes: int) -> tuple[int, int, list]:
        """``(path MTU, first link's header, hop callback list)`` of a message on ``path``."""
        mtu, header, mixed = self._pk.route(path, path[0])
        if not mixed or self._fc is not None:
            return mtu, header, self._cb_hop
        cbl = self._pk.scaled_handler(
            path, path, nbytes, mtu, path[0], self._inv_bw, lambda inv: make_hop(self, inv)
        )  # fmt: skip
        return mtu, header, cbl

    def _segments(self, nbytes: int, mtu: int, header: int) -> tuple[int, int, int]:
        """Return (segments, payload per segment, wire bytes in all) for a message."""
        real = max(1, -(-nbytes // mtu))
        seg = mtu
        if self.max_segments is not None and real > self.max_segments:
            seg = -(-nbytes // self.max_segments)
        count = max(1, -(-nbytes // seg))
        if count > MAX_MESSAGE_PACKETS:
            raise ConfigError(
                f"max_segments: a message of {nbytes} bytes is {count} packets, more than the "
                f"limit of {MAX_MESSAGE_PACKETS} (netsim.core.engine.network.MAX_MESSAGE_PACKETS); "
                f"give max_segments (e.g. 256), got {self.max_segments!r}"
            )
        return count, seg, nbytes + real * header

    def _inject(self, src, nbytes, path, vcs, event, callback, observe, tree, mtu, header, cbl):
        """Queue a message at the injection queue of its first port."""
        if nbytes <= mtu:  # one packet (the common small-message case, inlined)
            count, seg, wire = 1, mtu, nbytes + header
        elif nbytes <= self._real_mtu_limit * mtu:  # real MTU packets (_segments, inlined)
            count = -(-nbytes // mtu)
            seg, wire = mtu, nbytes + count * header
        else:
            count, seg, wire = self._segments(nbytes, mtu, header)
        copies = 1
        if tree is None:
            port = path[0]
            if self.buffer is None:
                self.packet_hops += count * len(path)  # counted up front on this fast path
        else:
            port = tree[0][-1][0]
            copies = tree[2]
        now = self.env._now
        msg = Message(
            count * copies, now, event, callback, observe, path, vcs, tree, cbl, count, seg,
            nbytes, wire,
        )  # fmt: skip
        self.messages += 1
        self.packets += count
        self.in_flight += count
        self.bytes_injected += nbytes * copies
        inj = self._injectors[port]
        if inj is None:
            inj = self._new_injector(src, port)
        if tree is not None and count == 1:
            tail = inj.start_idle(now, wire)
            if tail is not None:  # one multicast packet on an idle interface: start it now
                msg.k = 1
                pkt = Packet(msg, wire, nbytes, path, vcs, cbl)
                pkt.tail = tail
                pkt.tree = tree
                cbl[0](pkt)
                return
        nic = inj.nic
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
            heappush(self._heap, (t, NORMAL, next(self._seq), inj))

    def _new_injector(self, src: int, port: int) -> Injector:
        inj = Injector(self._nics[src], self.ports.bandwidth[port], self._cb_emit)
        self._injectors[port] = inj
        return inj

    def _deliver(self, pkt: Packet) -> None:
        """The packet has arrived (finite buffers, multicast): book it now."""
        msg = pkt.msg
        if msg is None:
            msg = pkt
        self.in_flight -= 1
        self.bytes_delivered += pkt.payload
        msg.left -= 1
        if msg.left == 0:
            self._complete(msg, self.env._now)

    def _complete(self, msg: Message, t: float) -> None:
        """Every packet of ``msg`` has arrived or will arrive by ``t`` (its last arrival).

        ``observe`` is told at once; ``callback`` and the event act at ``t``: now if ``t``
        is now, else the event is scheduled for ``t`` already triggered, as a simpy
        ``Timeout`` is (one event per message, none per packet). The event of
        :meth:`transfer` is a :class:`Call` (no callback), scheduled the same way.
        """
        t0 = msg.t0
        if msg.observe is not None:
            msg.observe(t0, t)
        event, callback = msg.event, msg.callback
        if callback is None:
            if event is not None:
                now = self.env._now
                self._fire(event, t if t > now else now)
        elif t <= self.env._now:
            callback(t - t0)
            if event is not None:
                event.succeed()
        elif event is not None:
            event.callbacks.insert(0, lambda _: callback(t - t0))
            succeed_at(self.env, t, event)
        else:
            schedule_at(self.env, t, Call(callback, t - t0))

    def _deadlock_message(self) -> str:
        stuck = self._fc.blocked() if self._fc is not None else []
        shown = ", ".join(stuck[:8]) + (f" and {len(stuck) - 8} more" if len(stuck) > 8 else "")
        return (
            f"deadlock at t={self.env.now:.9g}s: {self.in_flight} packets in flight, no progress; "
            f"blocked links waiting for credits: {shown or 'none'} (routing {self.routing})"
        )
