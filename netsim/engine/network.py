"""The packet-level network engine on simpy.

Model
-----
Every message is cut into packets (segments) at the MTU, each carrying ``header`` extra
bytes on the wire. A packet follows a source route of directed links (ports). Each port
serialises packets FIFO at its ``bandwidth`` and delivers them after its ``latency``; a
switch adds its traversal ``latency`` (node attribute) to every packet passing through it,
and so does the router of a chip in a direct network (chip ``latency``, default 0). A chip's
network interface injects at its ``injection_bandwidth``: packet *k* of a message cannot
start on its first link before the interface has pushed packets *0..k-1*.

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
    port and the engine spends **one simulation event per packet-hop**. With ``buffer=N``
    bytes, every input port holds ``N`` bytes per virtual channel and the upstream port
    sends only against credits (lossless credit-based flow control, as NVLink and
    InfiniBand); credits return one link latency after a packet leaves the buffer. Packets
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

__all__ = ["FORWARDING", "PacketNetwork"]

FORWARDING = ("cut-through", "store-and-forward")
_NORMAL = 1  # simpy's NORMAL event priority


class _Message:
    __slots__ = ("callback", "delivered", "dst", "event", "left", "nbytes", "src", "t0")

    def __init__(self, src, dst, nbytes, left, t0, event, callback) -> None:
        self.src = src
        self.dst = dst
        self.nbytes = nbytes
        self.left = left
        self.t0 = t0
        self.event = event
        self.callback = callback
        self.delivered = 0


class _Packet:
    """A packet in flight; it is also the simpy event that moves it (one per hop)."""

    __slots__ = (
        "_ok",
        "_value",
        "callbacks",
        "cbl",
        "hop",
        "msg",
        "path",
        "payload",
        "prev",
        "size",
        "tail",
        "tree",
        "vcs",
    )

    def __init__(self, msg, size, payload, path, vcs, cbl) -> None:
        self._ok = True
        self._value = None
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
        self.callbacks = cbl


class _Call:
    """A light simpy event that calls ``fn(arg)`` when processed."""

    __slots__ = ("_ok", "_value", "arg", "callbacks", "fn")

    def __init__(self, fn: Callable[[Any], None], arg: Any) -> None:
        self._ok = True
        self._value = None
        self.fn = fn
        self.arg = arg
        self.callbacks = _DISPATCH


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
        self._lat = ports.latency
        self._busy = [0.0] * n
        self._busy_time = [0.0] * n
        self._inj_busy: dict[int, float] = {}
        self._inj_inv_bw: dict[int, float] = {}
        for v, data in graph.nodes(data=True):
            bw = data.get("injection_bandwidth")
            if not bw:
                out = ports.out[v]
                bw = max((ports.bandwidth[p] for p in out), default=1.0)
            self._inj_inv_bw[v] = 1.0 / float(bw)
            self._inj_busy[v] = 0.0
        self._queue = self.env._queue
        self._eid = self.env._eid
        self._eid0 = self._peek_eid()
        if buffer is None:
            self._cb_hop = [self._make_hop()]
        else:
            self._cb_hop = [self._hop_fc]
            self._credits = [[buffer] * self.nvcs for _ in range(n)]
            self._vcq: list[list[deque]] = [[deque() for _ in range(self.nvcs)] for _ in range(n)]
            self._rr = [0] * n
            self._kick_at = [-1.0] * n
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
    ) -> simpy.Event:
        """Send ``nbytes`` from node ``src`` to node ``dst``; see :class:`Backend`.

        ``flow`` labels the flow for ECMP hashing (all packets of a message take one path).
        ``callback(latency)`` is called at delivery, before the event fires.
        """
        if src not in self._inj_busy or dst not in self._inj_busy:
            bad = src if src not in self._inj_busy else dst
            raise ConfigError(f"send: node {bad!r} is not in the topology")
        if nbytes < 0:
            raise ConfigError(f"nbytes: must be >= 0, got {nbytes}")
        event = self.env.event()
        self._send(src, dst, int(nbytes), flow, event, callback)
        return event

    def multicast(self, src: int, dsts: Sequence[int], nbytes: int) -> simpy.Event:
        """Send the same ``nbytes`` from ``src`` to every node of ``dsts``.

        Packets follow the union of the unicast routes, replicated where they diverge (a
        multicast tree, as NVLink SHARP and InfiniBand multicast do). Fires when every
        destination has every byte.
        """
        dsts = [d for d in dict.fromkeys(dsts) if d != src]
        for d in [src, *dsts]:
            if d not in self._inj_busy:
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
        while queue:
            env._now, _, _, event = heappop(queue)
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
        if self.buffer is not None:
            b += sum(q.size for dq in self._vcq[port] for q in dq) * self._inv_bw[port]
        return b if b > 0 else 0.0

    def call_at(self, t: float, fn: Callable[[Any], None], arg: Any = None) -> None:
        """Call ``fn(arg)`` at simulated time ``t`` (>= now) with one light event."""
        call = _Call(fn, arg)
        heappush(self._queue, (t, _NORMAL, next(self._eid), call))

    def route(self, src: int, dst: int, flow: int = 0) -> list[int]:
        """The nodes a message from ``src`` to ``dst`` visits (``src`` first)."""
        return self.router.path_nodes(src, dst, flow)

    # ------------------------------------------------------------------ internals
    def _peek_eid(self) -> int:
        # simpy numbers every scheduled event from one counter; reading it costs one number.
        return next(self._eid)

    def _send(self, src, dst, nbytes, flow, event, callback) -> None:
        if src == dst:
            self.messages += 1
            self.bytes_injected += nbytes
            self.bytes_delivered += nbytes
            if callback is not None:
                callback(0.0)
            if event is not None:
                event.succeed()
            return
        path, vcs = self.router.route(src, dst, flow)
        self._inject(src, nbytes, path, vcs, event, callback=callback)

    def _segments(self, nbytes: int) -> tuple[int, int, int]:
        """Return (segments, payload per segment, wire bytes in all) for a message."""
        mtu = self.mtu
        real = max(1, -(-nbytes // mtu))
        seg = mtu
        if self.max_segments is not None and real > self.max_segments:
            seg = -(-nbytes // self.max_segments)
        count = max(1, -(-nbytes // seg))
        return count, seg, nbytes + real * self.header

    def _inject(self, src, nbytes, path, vcs, event, *, callback=None, tree=None) -> None:
        env = self.env
        now = env._now
        count, seg, wire = self._segments(nbytes)
        msg = _Message(src, None, nbytes, count * (tree[2] if tree else 1), now, event, callback)
        self.messages += 1
        self.packets += count
        self.in_flight += count
        if tree is None and self.buffer is None:
            self.packet_hops += count * len(path)  # counted up front on this fast path
        self.bytes_injected += nbytes * (tree[2] if tree else 1)
        inv = self._inj_inv_bw[src]
        t = self._inj_busy[src]
        if t < now:
            t = now
        queue, eid = self._queue, self._eid
        left, wleft = nbytes, wire
        for k in range(count):
            payload = seg if left > seg else left
            size = wleft // (count - k)
            left -= payload
            wleft -= size
            pkt = _Packet(
                msg, size, payload, path, vcs, self._cb_hop if tree is None else [self._hop_mc]
            )
            if tree is not None:
                pkt.tree = tree
            # The interface streams packet k from t; its tail is in by t + size/B_inj.
            pkt.tail = t + size * inv
            heappush(queue, (t, _NORMAL, next(eid), pkt))
            t = pkt.tail
        self._inj_busy[src] = t

    def _deliver(self, pkt: _Packet) -> None:
        msg = pkt.msg
        self.in_flight -= 1
        self.bytes_delivered += pkt.payload
        msg.left -= 1
        if msg.left == 0:
            if msg.callback is not None:
                msg.callback(self.env._now - msg.t0)
            if msg.event is not None:
                msg.event.succeed()

    def _make_hop(self) -> Callable[[_Packet], None]:
        """Build the infinite-buffer hop handler: one event per packet-hop.

        Each output port is a FIFO server whose next free time is known, so a packet's
        departure is fixed the moment it reaches the port. A closure over local lists keeps
        attribute look-ups off the hot path.
        """
        busy, busy_time, inv_bw = self._busy, self._busy_time, self._inv_bw
        delay, lat, queue, eid = self._delay, self._lat, self._queue, self._eid
        env, deliver, cut_through = self.env, self._deliver, self.cut_through

        def hop(pkt: _Packet) -> None:
            now = env._now
            i = pkt.hop
            path = pkt.path
            n = len(path)
            if i == n:
                deliver(pkt)
                return
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
            pkt.hop = i
            if i == n:
                pkt.tail = t = end + lat[port]
            else:
                d = delay[port]
                pkt.tail = end + d
                t = start + d if cut_through else end + d
            pkt.callbacks = pkt.cbl
            heappush(queue, (t, 1, next(eid), pkt))

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
            cp = _Packet(pkt.msg, pkt.size, pkt.payload, None, None, [self._hop_mc])
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
            heappush(self._queue, (self.env._now + self._lat[prev], _NORMAL, next(self._eid), call))

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
            heappush(self._queue, (end + self._lat[pkt.prev], _NORMAL, next(self._eid), call))
        pkt.prev = port
        pkt.hop = i = pkt.hop + 1
        if i == len(pkt.path):
            pkt.tail = t = end + self._lat[port]
        else:
            d = self._delay[port]
            pkt.tail = end + d
            t = now + d if self.cut_through else end + d
        pkt.callbacks = pkt.cbl
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
