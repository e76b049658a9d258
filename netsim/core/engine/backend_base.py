"""What the three backends share (:class:`BackendBase`).

The packet engine (:class:`netsim.core.engine.PacketNetwork`), the flow model
(:class:`netsim.core.flow.FlowNetwork`) and the analytical model
(:class:`netsim.core.analytical.AnalyticalNetwork`) see a topology the same way: the same
directed links (:class:`~netsim.core.engine.routing.PortTable`), packetisation
(:mod:`netsim.core.engine.packetise`), router and injection bandwidths, so they can be
compared on the same input. They carry a message the same way whoever waits for it: a simpy
event (``send``, ``multicast``) or the light :class:`~netsim.core.engine.packets.Call` of
``transfer`` (:class:`netsim.core.backend.Backend`), scheduled at the same time and in the
same order; and they report the same counters (``stats``, ``link_utilisation``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import networkx as nx
import simpy

from netsim.core.backend import check_send
from netsim.core.engine.interface import default_injection
from netsim.core.engine.packetise import Packetiser
from netsim.core.engine.packets import Call
from netsim.core.engine.routing import PortTable, make_router
from netsim.core.engine.simpy_adapter import events_scheduled
from netsim.core.errors import ConfigError
from netsim.core.validate import require_int

__all__ = ["BackendBase", "injection_bandwidths"]


def injection_bandwidths(graph: nx.Graph, ports: PortTable) -> dict[int, float]:
    """Every node's injection bandwidth: its ``injection_bandwidth`` attribute, else
    :func:`~netsim.core.engine.interface.default_injection`."""
    out = {}
    for v, data in graph.nodes(data=True):
        bw = data.get("injection_bandwidth")
        if not bw:
            bw = default_injection(ports, v, data.get("kind"))
        out[v] = float(bw)
    return out


class BackendBase:
    """The part of a backend that does not depend on its model.

    Parameters
    ----------
    graph : networkx.Graph
        A topology following the attribute contract of :mod:`topologies`.
    mtu, header : int, optional
        Payload bytes per packet and header bytes per packet of every link. Default: each
        link's own, from its link type (:mod:`netsim.core.engine.packetise`). ``self.mtu``
        and ``self.header`` are the single values when all links share them, else None.
    routing : str
        Routing algorithm of :mod:`netsim.core.engine.routing`.
    seed : int
        Seeds every random choice of the router (e.g. Valiant intermediate groups).
    env : simpy.Environment, optional
        Share a clock with other models; a new one by default.

    Notes
    -----
    A backend sets ``model``, ``forwarding`` (``"none"`` without packets), ``buffer`` and
    ``packets`` (counted or derived), adds to ``messages``, ``packet_hops``,
    ``bytes_injected``, ``bytes_delivered`` and to ``_busy_time`` (seconds each port was
    busy), and defines two hooks: ``_send(src, dst, nbytes, flow, event, callback)`` (a
    checked unicast completing ``event``, a simpy event or a :class:`Call`) and
    ``_multicast(src, dsts, nbytes, event)`` (which checks its arguments). A model with
    queues gives its router their backlog through :meth:`_backlog_source`.
    """

    model: str
    forwarding: str
    buffer: int | None
    packets: int
    _send: Callable[[int, int, int, int, Any, Callable[[float], None] | None], None]
    _multicast: Callable[[int, Sequence[int], int, Any], None]

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
        self.router = make_router(
            graph, ports, routing, seed=self.seed, backlog=self._backlog_source()
        )
        self.routing = self.router.name
        self._inj = self._nodes = injection_bandwidths(graph, ports)
        self._busy_time = [0.0] * len(ports)
        self.messages = 0
        self.packet_hops = 0
        self.bytes_injected = 0
        self.bytes_delivered = 0
        self._events0 = events_scheduled(self.env)

    def _backlog_source(self) -> Callable[[int], float] | None:
        """``backlog(port)`` (seconds of work queued at a port) for adaptive routing, or
        None in a model without queues."""
        return None

    # ------------------------------------------------------------------ the seam
    def send(
        self,
        src: int,
        dst: int,
        nbytes: int,
        *,
        flow: int = 0,
        callback: Callable[[float], None] | None = None,
    ) -> simpy.Event:
        """Send ``nbytes`` from ``src`` to ``dst``; see :class:`netsim.core.backend.Backend`.

        ``flow`` selects among equal-cost routes; ``callback(latency)`` is called at
        delivery, before the event fires.
        """
        event = self.env.event()
        self._send(src, dst, check_send(self._nodes, src, dst, nbytes), flow, event, callback)
        return event

    def multicast(self, src: int, dsts: Sequence[int], nbytes: int) -> simpy.Event:
        """Send the same ``nbytes`` from ``src`` to every node of ``dsts``; the event fires
        when the last byte has reached every destination (see the backend's model)."""
        event = self.env.event()
        self._multicast(src, dsts, nbytes, event)
        return event

    def transfer(
        self,
        src: int,
        dsts: Sequence[int],
        nbytes: int,
        done: Callable[[Any], None],
        arg: Any,
        flow: int = 0,
    ) -> None:
        """Send to ``dsts`` and call ``done(arg)`` on arrival; see
        :meth:`netsim.core.backend.Backend.transfer`.

        The message carries a :class:`Call` where ``send`` puts its event: it is scheduled
        at the same time and in the same order.
        """
        call = Call(done, arg)
        if len(dsts) == 1:
            dst = dsts[0]
            nodes = self._nodes
            if not (type(nbytes) is int and nbytes >= 0 and src in nodes and dst in nodes):
                nbytes = check_send(nodes, src, dst, nbytes)  # raises, or converts nbytes
            self._send(src, dst, nbytes, flow, call, None)
        else:
            self._multicast(src, dsts, nbytes, call)

    def route(self, src: int, dst: int, flow: int = 0) -> list[int]:
        """The nodes a message from ``src`` to ``dst`` visits (``src`` first)."""
        return self.router.path_nodes(src, dst, flow)

    def link_utilisation(self) -> dict[tuple[int, int], float]:
        """Busy fraction of every directed link over the simulated time so far."""
        now = self.env.now
        p, busy = self.ports, self._busy_time
        return {
            (p.src[q], p.dst[q]): (min(1.0, busy[q] / now) if now > 0 else 0.0)
            for q in range(len(p))
        }

    def stats(self) -> dict[str, Any]:
        """Counters of the run so far (see :class:`netsim.core.backend.Backend`)."""
        return {
            "model": self.model,
            "forwarding": self.forwarding,
            "routing": self.routing,
            "mtu": self.mtu if self.mtu is not None else self._pk.per_link_type(),
            "header": self.header if self.header is not None else self._pk.per_link_header(),
            "buffer": self.buffer,
            "messages": self.messages,
            "packets": self.packets,
            "packet_hops": self.packet_hops,
            "events": events_scheduled(self.env) - self._events0,
            "bytes_injected": self.bytes_injected,
            "bytes_delivered": self.bytes_delivered,
            "max_link_utilisation": max(self.link_utilisation().values(), default=0.0),
            "sim_time_s": self.env.now,
        }
