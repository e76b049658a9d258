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

from netsim.core.backend import check_multicast, check_send
from netsim.core.engine.interface import default_injection
from netsim.core.engine.packetise import Packetiser, wire_bytes
from netsim.core.engine.packets import Call, Packet
from netsim.core.engine.routing import PortTable, make_router
from netsim.core.engine.sending import Sends
from netsim.core.engine.simpy_adapter import events_scheduled, run_all, schedule_at, succeed_at
from netsim.core.errors import ConfigError
from netsim.core.validate import require_int

__all__ = ["AnalyticalNetwork"]


class AnalyticalNetwork(Sends):
    """Alpha-beta model of a topology implementing :class:`netsim.core.backend.Backend`.

    Parameters
    ----------
    graph : networkx.Graph
        A topology following the attribute contract of :mod:`topologies`.
    mtu, header : int, optional
        Payload and header bytes per packet of every link (default: as
        :class:`netsim.core.engine.PacketNetwork`, each link's own from its link type).
    routing : str
        Routing algorithm of :mod:`netsim.core.engine.routing` (the route gives latencies and the
        bottleneck bandwidth).
    seed : int
        Seeds the router's random choices.
    env : simpy.Environment, optional
        Share a clock with other models.

    Examples
    --------
    >>> from topologies.torus import torus
    >>> net = AnalyticalNetwork(torus((4,)))
    >>> done = net.send(0, 1, 0)
    >>> net.run()
    >>> done.triggered
    True
    """

    def __init__(
        self,
        graph: nx.Graph,
        *,
        mtu: int | None = None,
        header: int | None = None,
        routing: str = "auto",
        seed: int = 0,
        env: simpy.Environment | None = None,
    ) -> None:
        if graph.number_of_nodes() == 0:
            raise ConfigError("graph: must have at least one node, got an empty graph")
        self.seed = require_int("seed", seed, min=0)
        self.graph = graph
        self.env = env if env is not None else simpy.Environment()
        self.ports = ports = PortTable(graph)
        self._pk = Packetiser(ports, mtu, header)
        self.mtu, self.header = self._pk.uniform or (None, None)
        self.router = make_router(graph, ports, routing, seed=self.seed)
        self.routing = self.router.name
        self.model = "analytical/alpha-beta"
        self._node_lat = {v: float(graph.nodes[v].get("latency", 0.0)) for v in graph.nodes}
        self._inj: dict[int, float] = {}
        for v, data in graph.nodes(data=True):
            bw = data.get("injection_bandwidth")
            if not bw:
                bw = default_injection(ports, v, data.get("kind"))
            self._inj[v] = float(bw)
        self._nodes = self._inj
        self._busy_time = [0.0] * len(ports)
        self._paths: dict[tuple[int, int, int], tuple[float, float, tuple[int, ...]]] = {}
        self.messages = 0
        self.packet_hops = 0
        self.bytes_injected = 0
        self.bytes_delivered = 0
        self._events0 = events_scheduled(self.env)

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
    def send(
        self,
        src: int,
        dst: int,
        nbytes: int,
        *,
        flow: int = 0,
        callback: Callable[[float], None] | None = None,
    ) -> simpy.Event:
        """Send ``nbytes`` from ``src`` to ``dst``; see :class:`Backend`.

        ``flow`` selects among equal-cost routes as in the packet engine; ``callback(latency)``
        is called at delivery, before the event fires.
        """
        event = self.env.event()
        self._send(src, dst, check_send(self._inj, src, dst, nbytes), flow, event, callback)
        return event

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

    def route(self, src: int, dst: int, flow: int = 0) -> list[int]:
        """The nodes a message from ``src`` to ``dst`` visits (``src`` first)."""
        return self.router.path_nodes(src, dst, flow)

    def link_utilisation(self) -> dict[tuple[int, int], float]:
        """Busy fraction of every directed link over the simulated time so far (no queues)."""
        now = self.env.now
        p = self.ports
        return {
            (p.src[q], p.dst[q]): (min(1.0, self._busy_time[q] / now) if now > 0 else 0.0)
            for q in range(len(p))
        }

    def stats(self) -> dict[str, Any]:
        """Counters as :meth:`netsim.core.engine.PacketNetwork.stats` (``packets`` = messages)."""
        return {
            "model": self.model,
            "forwarding": "none",
            "routing": self.routing,
            "mtu": self.mtu if self.mtu is not None else self._pk.per_link_type(),
            "header": self.header if self.header is not None else self._pk.per_link_header(),
            "buffer": None,
            "messages": self.messages,
            "packets": self.messages,
            "packet_hops": self.packet_hops,
            "events": events_scheduled(self.env) - self._events0,
            "bytes_injected": self.bytes_injected,
            "bytes_delivered": self.bytes_delivered,
            "max_link_utilisation": max(self.link_utilisation().values(), default=0.0),
            "sim_time_s": self.env.now,
        }
