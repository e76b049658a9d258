"""The flow-level network model: concurrent messages share link bandwidth max-min fairly.

Model
-----
Every message is one fluid flow along the route the packet engine would take (the same
router, :mod:`netsim.core.engine.routing`). It transmits its wire bytes (payload plus one header
per packet, cut at the route's path MTU with each link's own header as in the packet
engine, :mod:`netsim.core.engine.packetise`; a route whose links have different headers carries
its heaviest link's bytes everywhere, and each link is busy for its own) at a rate that changes only when a flow starts or ends: the rates are the max-min
fair allocation, by progressive filling (Bertsekas & Gallager, *Data Networks*, 2nd ed.,
sec. 6.5.2), of the capacities of the directed links on the routes and of every source's
injection interface. Once its last byte is transmitted the message arrives after its
route's latency (link latencies plus node traversal latencies, as in
:mod:`netsim.core.analytical`). So a message alone on the network takes exactly the alpha-beta
time ``T = latency + wire / min(B_inj, min_i B_i)``, and messages that share a link share
its bandwidth: with ``k`` equal flows from different sources on one link each gets ``B / k``.

Messages on the same route (same source, destination and path) with the same flow label
go one after the other, as on one connection: only the first of a connection's queue is a
flow, the next starts when its last byte is transmitted. So the chunks of a pipelined
broadcast do not share their link (which would delay every chunk and stall the pipeline),
while messages to different destinations share the links and the node's injection
bandwidth. Messages with different flow labels on one route are different connections (an
RDMA queue pair each, as NCCL's tree channels, each tree's up and down pass, are): they
share the route's links as messages on different routes do, and none waits behind another
connection's messages. A multicast is not queued.

What it leaves out: queueing delay and packet interleaving (a flow's bytes are a fluid, so
a short message behind a long one is not delayed by a whole packet), head-of-line effects
and flow control. It sits between the contention-free alpha-beta model (a lower bound) and
the packet engine, at a cost of one event per flow completion. Rates are recomputed at
every start and end only for the flows connected to it through shared links or interfaces
(the max-min allocation splits over connected components, so the others keep theirs):
``O(component flows x route length)`` per bottleneck level, where a collective step's
neighbour sends form small components. Flows that start or end at one instant cost one
reallocation, and completions come off a heap. A multicast is one
flow over the union of its unicast routes, arriving after the longest route latency.
``model`` is ``"flow/max-min"``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from heapq import heapify, heappop, heappush
from typing import Any

import networkx as nx

from netsim.core.analytical import AnalyticalNetwork
from netsim.core.backend import check_multicast

__all__ = ["FlowNetwork", "component", "fill_rates"]

# A flow whose bytes left are below this fraction of its size has finished: rates times
# durations leave rounding residues of about 1e-16 relative.
_DONE = 1e-9


def component(users: dict[int, dict[Any, None]], r: int, seen: set[int]) -> list[Any]:
    """The flows connected to resource ``r`` through shared resources.

    Parameters
    ----------
    users : dict
        Each resource's flows (objects with a ``res`` tuple of resources), as dict keys.
    r : int
        The resource to start from.
    seen : set of int
        Every resource reached is added to it.

    Returns
    -------
    list
        The component's flows, in the order they were reached.
    """
    seen.add(r)
    todo = [r]
    flows: dict[Any, None] = {}
    while todo:
        for f in users[todo.pop()]:
            if f not in flows:
                flows[f] = None
                for q in f.res:
                    if q not in seen:
                        seen.add(q)
                        todo.append(q)
    return list(flows)


def fill_rates(flows: Sequence[Any], cap: Sequence[float]) -> None:
    """Set ``f.rate`` of every flow to its max-min fair share by progressive filling.

    Parameters
    ----------
    flows : sequence
        Objects with ``res`` (the resource indices they use) and a writable ``rate``.
    cap : sequence of float
        Capacity of every resource.

    Notes
    -----
    All unfrozen flows grow at one rate until a resource is full; the flows on it freeze
    at that share (resources within 1e-12 relative of the tightest freeze together), and
    so on (Bertsekas & Gallager, *Data Networks*, sec. 6.5.2). The resources' fair shares
    sit on a heap updated as flows freeze: ``O(sum of route lengths x log resources)``.
    """
    users: dict[int, list[Any]] = {}
    for f in flows:
        for r in f.res:
            u = users.get(r)
            if u is None:
                u = users[r] = []
            u.append(f)
    rem = {r: cap[r] for r in users}
    left = {r: len(u) for r, u in users.items()}  # unfrozen flows on each resource
    heap = [(rem[r] / left[r], r) for r in users]  # (fair share, resource), lazily updated
    heapify(heap)
    done: set[int] = set()
    while heap:
        share, r = heap[0]
        if not left[r] or share != rem[r] / left[r]:
            heappop(heap)  # an entry from before the resource's last change
            continue
        limit = share * (1 + 1e-12)
        tight = []
        while heap and heap[0][0] <= limit:
            key, q = heappop(heap)
            if left[q] and key == rem[q] / left[q]:
                tight.append(q)
        changed: dict[int, None] = {}
        for q in tight:
            for f in users[q]:
                if id(f) in done:
                    continue
                done.add(id(f))
                f.rate = share
                for x in f.res:
                    rem[x] -= share
                    left[x] -= 1
                    changed[x] = None
        for x in changed:
            if left[x]:
                heappush(heap, (rem[x] / left[x], x))


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
        "seq",
        "t",
        "t0",
        "wire",
    )

    def __init__(self, res, wire, lat, nbytes, copies, event, callback, t0) -> None:
        self.queue: deque[_Flow] | None = None  # its route's FIFO (None: not queued)
        self.res = res  # the resources (link ports, injection interface) it uses
        self.wire = wire
        self.left = float(wire)  # bytes not yet transmitted at time t
        self.rate = 0.0  # since time t
        self.t = t0
        self.seq = -1  # its current completion-heap entry (-1: none)
        self.lat = lat
        self.nbytes = nbytes
        self.copies = copies
        self.event = event
        self.callback = callback
        self.t0 = t0


class FlowNetwork(AnalyticalNetwork):
    """Flow-level max-min model of a topology implementing :class:`netsim.core.backend.Backend`.

    Parameters are those of :class:`netsim.core.analytical.AnalyticalNetwork`.

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
        self._users: dict[int, dict[_Flow, None]] = {}  # resource -> its active flows
        self._dirty: dict[int, None] = {}  # resources whose flows changed since the last fill
        # Completion heaps of (time, seq, flow); an entry is current while flow.seq == seq.
        # _ends by the time the last byte goes (the timer), _dones by when the bytes left
        # fall below _DONE of the size (which flows a timer finishes).
        self._ends: list[tuple[float, int, _Flow]] = []
        self._dones: list[tuple[float, int, _Flow]] = []
        self._seq = 0
        self._active = 0  # flows transmitting
        self._timer_at = math.inf  # when the pending completion timer fires
        self._version = 0  # the completion timer of an older schedule is ignored
        self._pending = False  # a reallocation is scheduled for now
        # (flow label, *route) -> that connection's messages in order
        self._fifo: dict[tuple[int, ...], deque[_Flow]] = {}

    # ------------------------------------------------------------------ internals
    def _send(self, src, dst, nbytes, flow, event, callback) -> None:
        """One flow on the route ``src -> dst``, queued behind the route's earlier messages."""
        if src == dst:
            super()._send(src, dst, nbytes, flow, event, callback)
            return
        lat, _, ports = self._path(src, dst, flow)
        self.packet_hops += len(ports)
        self._start(src, ports, lat, nbytes, 1, callback, event, fifo=(flow, *ports))

    def _multicast(self, src, dsts, nbytes, event) -> None:
        """One flow over the union of the unicast routes; arrives after the longest route
        latency."""
        dsts, nbytes = check_multicast(self._inj, src, dsts, nbytes)
        if not dsts:
            super()._multicast(src, dsts, nbytes, event)
            return
        used: dict[int, None] = {}
        lat = 0.0
        for d in dsts:
            dlat, _, ports = self._path(src, d, 0)
            lat = max(lat, dlat)
            used.update(dict.fromkeys(ports))
        self.packet_hops += len(used)
        self._start(src, tuple(used), lat, nbytes, len(dsts), None, event)

    def _start(self, src, ports, lat, nbytes, copies, callback, event, fifo=None) -> None:
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
        f = _Flow((*ports, r), wire, lat, nbytes, copies, event, callback, self.env.now)
        if wire == 0:  # nothing to transmit (no payload, no header): only the latency
            self._arrive(f)
            return
        if fifo is not None:  # the connection's queue: (flow label, *route)
            f.queue = q = self._fifo.setdefault(fifo, deque())
            q.append(f)
            if len(q) > 1:
                return  # waits for the messages ahead of it on this route
        self._activate(f)

    def _activate(self, f: _Flow) -> None:
        """``f`` starts transmitting now."""
        f.t = self.env.now
        self._active += 1
        users = self._users
        for r in f.res:
            u = users.get(r)
            if u is None:
                u = users[r] = {}
            u[f] = None
        self._dirty.update(dict.fromkeys(f.res))
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
        """Reallocate every connected component that holds a resource touched since the
        last allocation; the others keep their rates (they are max-min fair already)."""
        self._pending = False
        dirty, self._dirty = self._dirty, {}
        seen: set[int] = set()
        for r in dirty:
            if r not in seen and self._users.get(r):
                self._fill(component(self._users, r, seen))
        self._schedule_timer()

    def _fill(self, flows: list[_Flow]) -> None:
        """Max-min fair rates of one component's ``flows`` by progressive filling; their
        completion times go on the heaps."""
        now = self.env.now
        for f in flows:
            f.left -= f.rate * (now - f.t)  # bytes left at the old rate, up to now
            f.t = now
        fill_rates(flows, self._cap)
        ends, dones = self._ends, self._dones
        for f in flows:
            self._seq += 1
            f.seq = seq = self._seq
            heappush(ends, (now + f.left / f.rate, seq, f))
            heappush(dones, (now + (f.left - _DONE * f.wire) / f.rate, seq, f))
        if len(ends) > 4 * self._active + 256:
            self._compact()

    def _compact(self) -> None:
        """Drop the heap entries of older allocations (they are skipped anyway)."""
        self._ends = [e for e in self._ends if e[2].seq == e[1]]
        self._dones = [e for e in self._dones if e[2].seq == e[1]]
        heapify(self._ends)
        heapify(self._dones)

    def _schedule_timer(self) -> None:
        """Make sure a timer fires at the earliest completion time."""
        ends = self._ends
        while ends and ends[0][2].seq != ends[0][1]:
            heappop(ends)  # an older allocation's entry
        if not ends or ends[0][0] >= self._timer_at:
            return
        self._timer_at = t = ends[0][0]
        self._version += 1
        version = self._version
        self.env.timeout(max(0.0, t - self.env.now)).callbacks.append(
            lambda _: self._on_timer(version)
        )

    def _on_timer(self, version: int) -> None:
        if version != self._version:
            return  # an earlier completion was scheduled since
        self._timer_at = math.inf
        now = self.env.now
        dones, users, dirty = self._dones, self._users, self._dirty
        done = []
        # A flow is done when its bytes left at this instant are below _DONE of its size.
        while dones and dones[0][0] <= now:
            _, seq, f = heappop(dones)
            if f.seq == seq:
                f.seq = -1
                done.append(f)
        self._active -= len(done)
        for f in done:
            for r in f.res:
                del users[r][f]
            dirty.update(dict.fromkeys(f.res))
        for f in done:
            self._arrive(f)
            q = f.queue
            if q is not None:
                q.popleft()
                if q:
                    self._activate(q[0])  # the next message on this route starts
        if any(users.get(r) for r in dirty):
            self._reshare_soon()
        else:
            dirty.clear()
        if not self._pending:
            self._schedule_timer()

    def _arrive(self, f: _Flow) -> None:
        """The flow's last byte is transmitted: it arrives after its route latency."""
        t = self.env.now + f.lat
        self._deliver_at(t, f.nbytes * f.copies, t - f.t0, f.callback, f.event)
