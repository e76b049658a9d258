"""The engine's records: messages, packets, network interfaces and light events.

Every record has ``__slots__`` and is built once per message, packet or port: these are the
objects of the engine's hot path (:mod:`netsim.core.engine.network`). A :class:`Packet`,
:class:`Injector` or :class:`Call` is also the simpy event that moves it, so the engine
pushes it onto simpy's event queue directly (no ``Event`` object, no process) and its run
loop dispatches it to its handler; simpy's own loop (``run(until)``) can process them too
(:mod:`netsim.core.engine.simpy_adapter` owns that contract).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from netsim.core.engine.simpy_adapter import LightEvent

__all__ = ["DISPATCH", "NOPATH", "Call", "Injector", "Message", "Nic", "Packet"]

NOPATH = (None, None, None, None, 0, 0, 0, 0)  # Message fields of a message going nowhere


class Message:
    """A message: delivery bookkeeping, and the packets its interface has still to inject."""

    __slots__ = (
        "bleft",
        "callback",
        "cbl",
        "count",
        "event",
        "k",
        "left",
        "observe",
        "path",
        "seg",
        "t0",
        "tree",
        "vcs",
        "wleft",
    )

    def __init__(
        self, left, t0, event, callback, observe, path, vcs, tree, cbl, count, seg, nbytes, wire
    ):
        self.left = left  # packet deliveries still to come
        self.t0 = t0
        self.event = event
        self.callback = callback
        self.observe = observe
        self.path = path
        self.vcs = vcs
        self.tree = tree
        self.cbl = cbl  # callback list of its packets (the hop handler)
        self.count = count  # packets in all
        self.seg = seg  # payload bytes per packet (the last one may carry less)
        self.k = 0  # packets injected so far
        self.bleft = nbytes  # payload bytes not yet injected
        self.wleft = wire  # wire bytes not yet injected


class Nic:
    """A node's network interface: the injection bandwidth its ports share."""

    __slots__ = ("active", "active_bw", "inv_bw", "linger_bw", "linger_until")

    def __init__(self, bandwidth: float) -> None:
        self.inv_bw = 1.0 / bandwidth
        self.active = 0  # ports with packets to inject (or one still being pushed)
        self.active_bw = 0.0  # sum of their bandwidths
        # The last port to go idle while it was the only one: it still pushes its last
        # packet until `linger_until` and counts for sharing until then (no extra event).
        self.linger_bw = 0.0
        self.linger_until = -1.0


class Injector(LightEvent):
    """The injection queue of one output port; also the simpy event that starts its packets."""

    __slots__ = (
        "bw",
        "callbacks",
        "cbl",
        "inv_bw",
        "nic",
        "pending",
        "queue",
        "until",
    )

    def __init__(self, nic: Nic, bandwidth: float, cbl: list) -> None:
        self.nic = nic
        self.bw = bandwidth
        self.inv_bw = 1.0 / bandwidth
        self.queue: deque[Message] = deque()
        self.pending = 0  # wire bytes queued, not yet injected
        self.until = 0.0  # when its last packet so far is fully pushed
        self.cbl = cbl
        self.callbacks = None  # not None exactly while an event of it is scheduled

    def start_idle(self, now: float, wire: int) -> float | None:
        """Push one packet of ``wire`` bytes now if the whole interface is idle.

        It goes at the port's rate (capped by the interface) and the port lingers as the
        interface's last one until the packet is pushed (what the emit handler does for a
        lone port, without an event). Returns when the packet's tail is pushed, or None if
        the interface is busy (the packet must queue).
        """
        nic = self.nic
        if nic.active or nic.linger_until > now or self.until > now:
            return None
        x = self.bw * nic.inv_bw
        self.until = tail = now + wire * self.inv_bw * (x if x > 1.0 else 1.0)
        nic.linger_bw = self.bw
        nic.linger_until = tail
        return tail


class Packet(LightEvent):
    """A packet in flight; it is also the simpy event that moves it (one per hop).

    A message of one packet injected at once is its own message: ``msg`` is None and the
    packet has the message fields ``left``, ``t0``, ``event``, ``callback`` and ``observe``
    (no reference cycle, so no work for the garbage collector).
    """

    __slots__ = (
        "callback",
        "cbl",
        "event",
        "hop",
        "left",
        "msg",
        "observe",
        "path",
        "payload",
        "prev",
        "size",
        "t0",
        "tail",
        "tree",
        "vcs",
    )

    # What simpy's own loop (``run(until)``) reads of an event: the handler as the callback
    # list (clearing it after processing is ignored).
    callbacks = property(lambda self: self.cbl, lambda self, _: None)

    def __init__(self, msg, size, payload, path, vcs, cbl) -> None:
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


class Call(LightEvent):
    """A light simpy event that calls ``fn(arg)`` when processed."""

    __slots__ = ("arg", "fn")
    callbacks = property(lambda self: DISPATCH, lambda self, _: None)

    def __init__(self, fn: Callable[[Any], None], arg: Any) -> None:
        self.fn = fn
        self.arg = arg


def _dispatch(event: Call) -> None:
    event.fn(event.arg)


DISPATCH = [_dispatch]  # shared: simpy only reads an event's callback list
