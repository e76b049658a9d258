"""What every backend's ``multicast`` and ``transfer`` share (:class:`Sends`).

The three backends (:class:`netsim.core.engine.PacketNetwork`,
:class:`netsim.core.flow.FlowNetwork`, :class:`netsim.core.analytical.AnalyticalNetwork`)
carry a message the same way whoever waits for it: a simpy event (``send``,
``multicast``) or the light :class:`~netsim.core.engine.packets.Call` of ``transfer``
(:class:`netsim.core.backend.Backend`), scheduled at the same time and in the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from typing import Any

import simpy

from netsim.core.backend import check_send
from netsim.core.engine.packets import Call

__all__ = ["Sends"]


class Sends:
    """``multicast`` and ``transfer`` of a backend, over two hooks it defines.

    A backend sets ``env`` and ``_nodes`` (its nodes, for argument checks) and defines
    ``_send(src, dst, nbytes, flow, event, callback)`` (a checked unicast completing
    ``event``, a simpy event or a :class:`Call`) and ``_multicast(src, dsts, nbytes,
    event)`` (which checks its arguments).
    """

    env: simpy.Environment
    _nodes: Container[int]

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
