"""The analytical alpha-beta network model: the same seam as the packet engine, no contention.

Model
-----
A message of ``n`` payload bytes from ``s`` to ``d`` follows the route the packet engine
would take (the same router, :mod:`netsim.core.engine.routing`, so both backends use the same
paths) and arrives after::

    T = sum_i l_i + sum_j d_j + max(W_1 / B_inj(s), max_i W_i / B_i)
    W_i = n + max(1, ceil(n / mtu)) * header_i

``l_i`` are the link latencies along the route, ``d_j`` the traversal latencies of the
nodes entered on the way (switches, or routing chips of a direct network; not a chip
destination, but a switch destination, as in in-network reduction, is charged), ``B_i``
the link bandwidths and ``B_inj(s)`` the source's injection bandwidth. ``W_i`` are the
bytes on link ``i``: the message is cut at the route's path MTU and every link charges its
own header, exactly as in the packet engine (:mod:`netsim.core.engine.packetise`); a zero-byte
message still carries one header. On a route of one link type every ``W_i`` is the same
``W`` and ``T = latency + W / min(B_inj, min_i B_i)``. Messages never wait for each other
(no contention, no queues): every estimate is a lower bound of the packet engine's time on
the same routes. For one message alone on a path of equal bandwidths the packet engine with
cut-through (or a single packet with store-and-forward) gives exactly ``T``.

A multicast arrives when the slowest destination has been reached, each by its unicast
route. ``model`` is ``"analytical/alpha-beta"``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import networkx as nx
import simpy

from netsim.core.backend import check_multicast
from netsim.core.engine.backend_base import BackendBase
from netsim.core.engine.packetise import wire_bytes
from netsim.core.engine.packets import Call, Packet
from netsim.core.engine.simpy_adapter import run_all, schedule_at, succeed_at

__all__ = ["AnalyticalNetwork"]


class AnalyticalNetwork(BackendBase):
    """Alpha-beta model of a topology implementing :class:`netsim.core.backend.Backend`.

    Parameters
    ----------
    graph : networkx.Graph
        A topology following the attribute contract of :mod:`topologies`.
    **common
        ``mtu``, ``header``, ``routing``, ``seed``, ``env``: as
        :class:`~netsim.core.engine.backend_base.BackendBase` (the route gives latencies
        and the bottleneck bandwidth).

    Examples
    --------
    >>> from topologies.torus import torus
    >>> net = AnalyticalNetwork(torus((4,)))
    >>> done = net.send(0, 1, 0)
    >>> net.run()
    >>> done.triggered
    True
    """

    forwarding = "none"  # no packets
    buffer = None

    def __init__(self, graph: nx.Graph, **common: Any) -> None:
        super().__init__(graph, **common)
        self.model = "analytical/alpha-beta"
        self._node_lat = {v: float(graph.nodes[v].get("latency", 0.0)) for v in graph.nodes}
        self._paths: dict[tuple[int, int, int], tuple[float, float, tuple[int, ...]]] = {}

    @property
    def packets(self) -> int:
        """Messages (a message is one unit here), as ``stats()["packets"]``."""
        return self.messages

    # ------------------------------------------------------------------ model
    def wire_bytes(self, nbytes: int, ports: tuple[int, ...]) -> list[int]:
        """Bytes on each of ``ports`` (a route, or a multicast tree with its first port
        first) for a message of ``nbytes`` payload: cut at their path MTU, each port with its
        own header (:mod:`netsim.core.engine.packetise`)."""
        u = self._pk.uniform
        if u is not None:
            return [wire_bytes(nbytes, *u)] * len(ports)
        mtu = self._pk.route(ports, ports[0])[0]
        hdr = self._pk.headers
        return [wire_bytes(nbytes, mtu, hdr[p]) for p in ports]

    def _transmit(self, src: int, bw: float, ports: tuple[int, ...], wires: list[int]) -> float:
        """Seconds the bottleneck of a route needs for the message: ``max(W_1 / B_inj,
        max_i W_i / B_i)`` (``W / bw`` when every link carries the same ``W``)."""
        if self._pk.uniform is not None:
            return wires[0] / bw
        b = self.ports.bandwidth
        return max(
            wires[0] / self._inj[src], *(w / b[p] for p, w in zip(ports, wires, strict=True))
        )

    def _path(self, src: int, dst: int, flow: int) -> tuple[float, float, tuple[int, ...]]:
        """``(latency, bottleneck bandwidth, ports)`` of the route ``src -> dst``."""
        key = (src, dst, flow)
        got = self._paths.get(key)
        if got is None:
            ports, _ = self.router.route(src, dst, flow)
            p = self.ports
            lat = sum(p.latency[q] for q in ports)
            lat += sum(self._node_lat[p.dst[q]] for q in ports[:-1])
            if ports and self.graph.nodes[p.dst[ports[-1]]].get("kind") == "switch":
                lat += self._node_lat[p.dst[ports[-1]]]  # a switch destination (in-network)
            bw = min([self._inj[src], *(p.bandwidth[q] for q in ports)])
            got = self._paths[key] = (lat, bw, tuple(ports))
        return got

    def message_time(self, src: int, dst: int, nbytes: int, flow: int = 0) -> float:
        """Seconds for ``nbytes`` from ``src`` to ``dst`` alone on the network (``T`` above)."""
        if src == dst:
            return 0.0
        lat, bw, ports = self._path(src, dst, flow)
        return lat + self._transmit(src, bw, ports, self.wire_bytes(nbytes, ports))

    # ------------------------------------------------------------------ public seam
    def call_at(self, t: float, fn: Callable[[Any], None], arg: Any = None) -> None:
        """Call ``fn(arg)`` at simulated time ``now + (t - now)`` (``t`` >= now), as a simpy
        ``Timeout`` of ``t - now`` seconds would (one light event)."""
        now = self.env.now
        schedule_at(self.env, now + max(0.0, t - now), Call(fn, arg))

    # ------------------------------------------------------------------ internals
    def _send(self, src, dst, nbytes, flow, event, callback) -> None:
        """Time a checked message alone on its route; deliver it (see the module docstring)."""
        t = 0.0
        if src != dst:
            lat, bw, ports = self._path(src, dst, flow)
            wires = self.wire_bytes(nbytes, ports)
            t = lat + self._transmit(src, bw, ports, wires)
            for q, w in zip(ports, wires, strict=True):
                self._busy_time[q] += w / self.ports.bandwidth[q]
            self.packet_hops += len(ports)
        self.messages += 1
        self.bytes_injected += nbytes
        self._deliver_at(self.env.now + t, nbytes, t, callback, event)

    def _multicast(self, src, dsts, nbytes, event) -> None:
        """Every link of the union of the unicast routes carries the bytes once; the message
        arrives when the slowest destination is reached."""
        dsts, nbytes = check_multicast(self._inj, src, dsts, nbytes)
        routes = [self._path(src, d, 0) for d in dsts]
        used = tuple(dict.fromkeys(q for _, _, ports in routes for q in ports))
        wire = dict(zip(used, self.wire_bytes(nbytes, used), strict=True)) if used else {}
        t = 0.0
        for lat, bw, ports in routes:
            t = max(t, lat + self._transmit(src, bw, ports, [wire[q] for q in ports]))
        for q in used:
            self._busy_time[q] += wire[q] / self.ports.bandwidth[q]
        self.packet_hops += len(used)
        self.messages += 1
        self.bytes_injected += nbytes * len(dsts)
        self._deliver_at(self.env.now + t, nbytes * len(dsts), t, None, event)

    def _deliver_at(self, t, nbytes, latency, callback, event) -> None:
        """At time ``t``: count ``nbytes`` delivered, call ``callback(latency)`` if any, then
        process ``event``, a simpy event (triggered now and processed at ``t``, as a
        ``Timeout``) or the :class:`Call` of :meth:`transfer`."""
        if type(event) is Call:
            schedule_at(self.env, t, Call(self._delivered, (nbytes, latency, callback, event)))
            return

        def delivered(_: Any) -> None:
            self.bytes_delivered += nbytes
            if callback is not None:
                callback(latency)

        event.callbacks.insert(0, delivered)
        succeed_at(self.env, t, event)

    def _delivered(self, what: tuple[int, float, Any, Call]) -> None:
        nbytes, latency, callback, call = what
        self.bytes_delivered += nbytes
        if callback is not None:
            callback(latency)
        call.fn(call.arg)

    def run(self, until: float | simpy.Event | None = None) -> None:
        """Run the clock until ``until`` or until no event is left."""
        if until is None:
            run_all(self.env, Packet, Call)
        else:
            self.env.run(until)
