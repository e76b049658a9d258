"""The narrow seam between collectives/workloads and the network models.

Collectives and workloads talk to a network only through :class:`Backend`: ``send`` a
message, ``multicast`` one from a node to several, wait on the returned simpy events, and
read ``stats()``. The packet engine (:class:`netsim.core.engine.PacketNetwork`) and the
analytical alpha-beta model (:class:`netsim.core.analytical.AnalyticalNetwork`) both implement
it, so any workload can be timed both ways on the same input and compared.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from typing import Any, Protocol, runtime_checkable

import networkx as nx
import simpy

from netsim.core.errors import ConfigError

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
    """

    env: simpy.Environment
    graph: nx.Graph
    model: str

    def send(self, src: int, dst: int, nbytes: int) -> simpy.Event:
        """Start sending ``nbytes`` from node ``src`` to node ``dst`` now.

        Returns an event that fires when the last byte has arrived at ``dst``. ``src`` and
        ``dst`` may be chips or switches (in-network algorithms address switches).
        ``nbytes`` may be 0 (a pure synchronisation message still costs one header).
        """
        ...

    def multicast(self, src: int, dsts: Sequence[int], nbytes: int) -> simpy.Event:
        """Send the same ``nbytes`` from ``src`` to every node of ``dsts``.

        The packet engine replicates packets where paths diverge (switch multicast); the
        event fires when the last byte has reached every destination.
        """
        ...

    def run(self, until: float | simpy.Event | None = None) -> None:
        """Run the simulation until ``until`` or until nothing is left to do."""
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
