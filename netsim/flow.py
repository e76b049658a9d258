"""The flow-level network model: concurrent messages share link bandwidth max-min fairly.

Model
-----
Every message is one fluid flow along the route the packet engine would take (the same
router, :mod:`netsim.engine.routing`). It transmits its wire bytes (payload plus one header
per packet, cut at the route's path MTU with each link's own header as in the packet
engine, :mod:`netsim.engine.packetise`; a route whose links have different headers carries
its heaviest link's bytes everywhere, and each link is busy for its own) at a rate that changes only when a flow starts or ends: the rates are the max-min
fair allocation, by progressive filling (Bertsekas & Gallager, *Data Networks*, 2nd ed.,
sec. 6.5.2), of the capacities of the directed links on the routes and of every source's
injection interface. Once its last byte is transmitted the message arrives after its
route's latency (link latencies plus node traversal latencies, as in
:mod:`netsim.analytical`). So a message alone on the network takes exactly the alpha-beta
time ``T = latency + wire / min(B_inj, min_i B_i)``, and messages that share a link share
its bandwidth: with ``k`` equal flows from different sources on one link each gets ``B / k``.

Messages on the same route (same source, destination and path) go one after the other,
as on one connection: only the first of a route's queue is a flow, the next starts when its
last byte is transmitted. So the chunks of a pipelined broadcast do not share their link
(which would delay every chunk and stall the pipeline), while messages to different
destinations share the links and the node's injection bandwidth. A multicast is not queued.

What it leaves out: queueing delay and packet interleaving (a flow's bytes are a fluid, so
a short message behind a long one is not delayed by a whole packet), head-of-line effects
and flow control. It sits between the contention-free alpha-beta model (a lower bound) and
the packet engine, at a cost of one event per flow completion (rates are recomputed at
every start and end, ``O(flows x route length)`` per bottleneck level). A multicast is one
flow over the union of its unicast routes, arriving after the longest route latency.
``model`` is ``"flow/max-min"``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import networkx as nx
import simpy

from netsim.analytical import AnalyticalNetwork
from netsim.backend import check_multicast, check_send

__all__ = ["FlowNetwork"]

# A flow whose bytes left are below this fraction of its size has finished: rates times
# durations leave rounding residues of about 1e-16 relative.
_DONE = 1e-9


class _Flow:
    __slots__ = (
        "callback",
        "copies",
        "event",
        "lat",
        "left",
        "nbytes",
        "queue",
        "rate",
        "res",
        "t0",
        "wire",
    )

    def __init__(self, res, wire, lat, nbytes, copies, event, callback, t0) -> None:
        self.queue: deque[_Flow] | None = None  # its route's FIFO (None: not queued)
        self.res = res  # the resources (link ports, injection interface) it uses
        self.wire = wire
        self.left = float(wire)  # bytes not yet transmitted
        self.rate = 0.0
        self.lat = lat
        self.nbytes = nbytes
        self.copies = copies
        self.event = event
        self.callback = callback
        self.t0 = t0


class FlowNetwork(AnalyticalNetwork):
    """Flow-level max-min model of a topology implementing :class:`netsim.backend.Backend`.

    Parameters are those of :class:`netsim.analytical.AnalyticalNetwork`.

    Examples
    --------
    >>> from topologies.torus import torus
    >>> net = FlowNetwork(torus((4,)))
    >>> n = 1000 * net.mtu
    >>> a, b = net.send(0, 1, n), net.send(0, 1, n)  # one after the other on route 0 -> 1
    >>> net.run()
    >>> round(net.env.now / net.message_time(0, 1, 2 * n), 12)  # as one of twice the size
    1.0
    """

    def __init__(self, graph: nx.Graph, **kwargs: Any) -> None:
        super().__init__(graph, **kwargs)
        self.model = "flow/max-min"
        # Resources: every port (its bandwidth), then injection interfaces as first used.
        self._cap = [float(b) for b in self.ports.bandwidth]
        self._inj_res: dict[int, int] = {}
        self._flows: list[_Flow] = []
        self._last = self.env.now  # when the flows' bytes left were last brought up to date
        self._version = 0  # the completion timer of an older allocation is ignored
        self._pending = False  # a reallocation is scheduled for now
        self._fifo: dict[tuple[int, ...], deque[_Flow]] = {}  # route -> messages in order

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
        """Send ``nbytes`` from ``src`` to ``dst`` as one flow; see :class:`Backend`.

        ``flow`` selects among equal-cost routes as in the packet engine; ``callback(latency)``
        is called at delivery, before the event fires.
        """
        nbytes = check_send(self._inj, src, dst, nbytes)
        if src == dst:
            return self._deliver(0.0, nbytes, 1, callback)
        lat, _, ports = self._path(src, dst, flow)
        self.packet_hops += len(ports)
        return self._start(src, ports, lat, nbytes, 1, callback, fifo=True)

    def multicast(self, src: int, dsts: Sequence[int], nbytes: int) -> simpy.Event:
        """Send ``nbytes`` from ``src`` to every node of ``dsts`` as one flow over the union
        of the unicast routes; fires after the longest route latency."""
        dsts, nbytes = check_multicast(self._inj, src, dsts, nbytes)
        if not dsts:
            return self._deliver(0.0, nbytes, 0, None)
        used: dict[int, None] = {}
        lat = 0.0
        for d in dsts:
            dlat, _, ports = self._path(src, d, 0)
            lat = max(lat, dlat)
            used.update(dict.fromkeys(ports))
        self.packet_hops += len(used)
        return self._start(src, tuple(used), lat, nbytes, len(dsts), None)

    # ------------------------------------------------------------------ internals
    def _start(self, src, ports, lat, nbytes, copies, callback, fifo=False) -> simpy.Event:
        # Each link is busy for its own wire bytes; the flow's size (what every resource on
        # its route carries at the flow's rate) is its largest (routes of one link type:
        # they are all equal; mixed-header routes are charged their heaviest link's bytes).
        wires = self.wire_bytes(nbytes, ports)
        for q, w in zip(ports, wires, strict=True):
            self._busy_time[q] += w / self.ports.bandwidth[q]
        wire = max(wires)
        self.messages += 1
        self.bytes_injected += nbytes * copies
        r = self._inj_res.get(src)
        if r is None:
            r = self._inj_res[src] = len(self._cap)
            self._cap.append(self._inj[src])
        f = _Flow((*ports, r), wire, lat, nbytes, copies, self.env.event(), callback, self.env.now)
        if wire == 0:  # nothing to transmit (no payload, no header): only the latency
            self._arrive(f)
            return f.event
        if fifo:
            f.queue = q = self._fifo.setdefault(ports, deque())
            q.append(f)
            if len(q) > 1:
                return f.event  # waits for the messages ahead of it on this route
        self._activate(f)
        return f.event

    def _activate(self, f: _Flow) -> None:
        """``f`` starts transmitting now."""
        self._advance()
        self._flows.append(f)
        self._reshare_soon()

    def _reshare_soon(self) -> None:
        """Recompute the rates once all that happens at this instant has happened.

        The flows that start or end together (every rank's send of a collective step) then
        cost one allocation, not one each.
        """
        if not self._pending:
            self._pending = True
            self.env.timeout(0.0).callbacks.append(self._reshare_now)

    def _reshare_now(self, _: Any) -> None:
        self._pending = False
        self._advance()
        if self._flows:
            self._reshare()

    def _advance(self) -> None:
        """Bring every flow's bytes left up to now at its current rate."""
        now = self.env.now
        dt = now - self._last
        if dt > 0:
            for f in self._flows:
                f.left -= f.rate * dt
        self._last = now

    def _reshare(self) -> None:
        """Max-min fair rates by progressive filling; schedule the next completion."""
        flows = self._flows
        users: dict[int, int] = {}
        for f in flows:
            for r in f.res:
                users[r] = users.get(r, 0) + 1
        rem = {r: self._cap[r] for r in users}
        todo = list(flows)
        while todo:
            share = min(rem[r] / n for r, n in users.items() if n)
            tight = {r for r, n in users.items() if n and rem[r] / n <= share * (1 + 1e-12)}
            rest = []
            for f in todo:
                if tight.isdisjoint(f.res):
                    rest.append(f)
                    continue
                f.rate = share
                for r in f.res:
                    rem[r] -= share
                    users[r] -= 1
            todo = rest
        self._version += 1
        version = self._version
        wait = min(f.left / f.rate for f in flows)
        self.env.timeout(max(0.0, wait)).callbacks.append(lambda _: self._on_timer(version))

    def _on_timer(self, version: int) -> None:
        if version != self._version:
            return  # the allocation changed since this completion was scheduled
        self._advance()
        done = [f for f in self._flows if f.left <= _DONE * f.wire]
        self._flows = [f for f in self._flows if f.left > _DONE * f.wire]
        for f in done:
            self._arrive(f)
            q = f.queue
            if q is not None:
                q.popleft()
                if q:
                    self._activate(q[0])  # the next message on this route starts
        if self._flows:
            self._reshare_soon()

    def _arrive(self, f: _Flow) -> None:
        """The flow's last byte is transmitted: it arrives after its route latency."""
        event = f.event

        def delivered(_: Any) -> None:
            self.bytes_delivered += f.nbytes * f.copies
            if f.callback is not None:
                f.callback(self.env.now - f.t0)

        event.callbacks.insert(0, delivered)
        event._ok = True
        event._value = None
        self.env.schedule(event, delay=f.lat)
