"""The declared seam between collectives/workloads and the network models.

Collectives and workloads talk to a network only through :class:`Backend`: ``send`` a
message (or ``multicast`` one from a node to several) and wait on the returned simpy
event, or ``transfer`` one and be called back (the light path of schedule runners: no
event object per message); set timers with ``call_at``; read the ``router`` and ``ports``
(routes, equal-cost alternatives, link types and bandwidths), ``link_utilisation()`` and
``stats()``. The packet engine (:class:`netsim.core.engine.PacketNetwork`), the flow model
(:class:`netsim.core.flow.FlowNetwork`) and the analytical alpha-beta model
(:class:`netsim.core.analytical.AnalyticalNetwork`) all implement every member, so any
workload can be timed each way on the same input and compared, and no caller has to ask
a backend what it can do.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import networkx as nx
import simpy

from netsim.core.errors import ConfigError

if TYPE_CHECKING:
    from netsim.core.engine.routing import PortTable, Router

__all__ = ["Backend", "check_multicast", "check_send"]


@runtime_checkable
class Backend(Protocol):
    """What a network model offers the layers above.

    Attributes
    ----------
    env : simpy.Environment
        The simulation clock; collectives schedule their own processes on it.
    graph : networkx.Graph
        The topology (see :mod:`topologies` for the attribute contract).
    model : str
        Which model runs, e.g. ``"packet/cut-through"`` or ``"analytical/alpha-beta"``;
        every result records it.
    router : netsim.core.engine.routing.Router
        The routing algorithm all messages follow: ``router.route(src, dst, flow)`` gives a
        route's ports, ``router.sprays`` whether flow labels spread over equal-cost routes.
    ports : netsim.core.engine.routing.PortTable
        The directed links: bandwidth, latency and link type of every port of a route.
    """

    env: simpy.Environment
    graph: nx.Graph
    model: str
    router: Router
    ports: PortTable

    def send(
        self,
        src: int,
        dst: int,
        nbytes: int,
        *,
        flow: int = 0,
        callback: Callable[[float], None] | None = None,
    ) -> simpy.Event:
        """Start sending ``nbytes`` from node ``src`` to node ``dst`` now.

        Returns an event that fires when the last byte has arrived at ``dst``. ``src`` and
        ``dst`` may be chips or switches (in-network algorithms address switches).
        ``nbytes`` may be 0 (a pure synchronisation message still costs one header).
        ``flow`` labels the message for equal-cost route choice (:attr:`router`);
        ``callback(latency)`` is called at delivery, before the event fires.
        """
        ...

    def multicast(self, src: int, dsts: Sequence[int], nbytes: int) -> simpy.Event:
        """Send the same ``nbytes`` from ``src`` to every node of ``dsts``.

        The packet engine replicates packets where paths diverge (switch multicast); the
        event fires when the last byte has reached every destination.
        """
        ...

    def transfer(
        self,
        src: int,
        dsts: Sequence[int],
        nbytes: int,
        done: Callable[[Any], None],
        arg: Any,
        flow: int = 0,
    ) -> None:
        """Send ``nbytes`` from ``src`` to ``dsts`` and call ``done(arg)`` on arrival.

        One destination is :meth:`send` with ``flow``, several are :meth:`multicast`
        (``flow`` ignored); ``done(arg)`` runs exactly when the event :meth:`send` or
        :meth:`multicast` returns would be processed, in the same order among all events,
        so results are those of the event path. It is the light path for code that sends
        millions of messages (:func:`collectives.runner.run`): no event object, no
        callback list per message.
        """
        ...

    def call_at(self, t: float, fn: Callable[[Any], None], arg: Any = None) -> None:
        """Call ``fn(arg)`` at simulated time ``t`` (``>= now``) with one light event."""
        ...

    def run(self, until: float | simpy.Event | None = None) -> None:
        """Run the simulation until ``until`` or until nothing is left to do."""
        ...

    def link_utilisation(self) -> dict[tuple[int, int], float]:
        """Busy fraction of every directed link ``(u, v)`` over the simulated time so far."""
        ...

    def stats(self) -> dict[str, Any]:
        """Counters of the run so far: ``packets``, ``packet_hops``, ``events``,
        ``bytes_injected``, ``bytes_delivered``, ``max_link_utilisation`` and ``model``."""
        ...


def _nbytes(nbytes: Any) -> int:
    if nbytes < 0:
        raise ConfigError(f"nbytes: must be >= 0, got {nbytes}")
    return int(nbytes)


def check_send(nodes: Container[Any], src: Any, dst: Any, nbytes: Any) -> int:
    """Check a message at a backend's public seam; return its size in whole bytes."""
    for node in (src, dst):
        if node not in nodes:
            raise ConfigError(f"send: node {node!r} is not in the topology")
    return _nbytes(nbytes)


def check_multicast(
    nodes: Container[Any], src: Any, dsts: Sequence[Any], nbytes: Any
) -> tuple[list[Any], int]:
    """Check a multicast; return its distinct destinations other than ``src`` and its size."""
    out = [d for d in dict.fromkeys(dsts) if d != src]
    for node in (src, *out):
        if node not in nodes:
            raise ConfigError(f"multicast: node {node!r} is not in the topology")
    return out, _nbytes(nbytes)
