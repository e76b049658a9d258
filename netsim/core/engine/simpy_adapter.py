"""The one place where netsim touches simpy's internals.

The engine schedules its own light events (packets, injection queues, calls) on a
:class:`simpy.Environment` without simpy's ``Event`` objects or processes, and runs simpy's
loop inlined: that is most of its per-event speed. Both need four things simpy does not
expose publicly; this module owns them, and every other module goes through its functions.

Contract with simpy 4 (``pyproject.toml`` pins ``simpy>=4.1,<5``)
    - ``env._queue`` is a heap (:mod:`heapq`) of tuples ``(time, priority, seq, event)``;
      ``env._eid`` is the :func:`itertools.count` that numbers them (``seq``), so ties at
      one time and priority break first-in-first-out; ``env._now`` is the current time.
    - An object on the queue is processed by ``Environment.step`` as an event: it reads
      ``callbacks`` (a list of ``f(event)``, then sets it to None), ``_ok`` and ``_value``
      (a failed event, ``_ok`` false, raises ``_value`` unless it has ``_defused``).
      :class:`LightEvent` gives a record the ``_ok``/``_value`` of a succeeded event.
    - An ``Event`` whose ``_ok`` is true and ``_value`` set is *triggered*; pushing it on the
      queue is what ``Event.succeed`` and ``Timeout`` do (:func:`succeed_at`).
    - ``repr(env._eid)`` is ``count(N)``, ``N`` the next sequence number
      (:func:`events_scheduled` reads it without using a number up).

    A simpy release that changes any of these must change only this module (the engine's
    tests, which compare event counts and timings with closed forms, tell).

Hot paths
    The per-packet-hop handlers (:mod:`netsim.core.engine.forwarding`, :mod:`~.network`,
    :mod:`~.interface`, :mod:`~.multicast`) bind the heap and the counter once, ``queue = event_queue(env)``
    and ``seq = event_counter(env)``, and push ``heappush(queue, (t, NORMAL, next(seq),
    ev))`` themselves: a call through :func:`schedule_at` per packet-hop costs speed.
    Per-packet code reads the time as ``env._now``: simpy's public ``env.now`` is a
    property, about 25 ns more per read: with it the chain of ``benchmarks/engine.py`` ran
    about 8% fewer packet-hops per second (median of 5 alternating runs). The modules allowed to do so
    are :data:`HOT_NOW_READERS`; everything else uses ``env.now`` and the functions here
    (``tests/test_simpy_adapter.py`` checks both rules).
"""

from __future__ import annotations

from collections.abc import Iterator
from heapq import heappop, heappush
from typing import Any

import simpy

__all__ = [
    "HOT_NOW_READERS",
    "NORMAL",
    "LightEvent",
    "event_counter",
    "event_queue",
    "events_scheduled",
    "pending",
    "run_all",
    "schedule_at",
    "succeed_at",
]

NORMAL = 1  # simpy's NORMAL event priority (simpy.events.NORMAL)

#: The modules whose per-packet code reads ``env._now`` (see "Hot paths" above).
HOT_NOW_READERS = (
    "netsim.core.engine.flowcontrol",
    "netsim.core.engine.forwarding",
    "netsim.core.engine.interface",
    "netsim.core.engine.multicast",
    "netsim.core.engine.network",
    "netsim.core.openloop",
)


class LightEvent:
    """Base of the engine's records that are also their own simpy event.

    A subclass defines ``callbacks`` (the list of handlers simpy's loop calls with the
    event) and is always a succeeded event with no value, as simpy's loop reads it.
    """

    __slots__ = ()
    _ok = True
    _value = None


def event_queue(env: simpy.Environment) -> list[tuple[float, int, int, Any]]:
    """The heap of ``(time, priority, seq, event)`` that ``env`` processes (bind it once)."""
    return env._queue


def event_counter(env: simpy.Environment) -> Iterator[int]:
    """The counter whose ``next()`` numbers the events pushed on ``env`` (bind it once)."""
    return env._eid


def schedule_at(env: simpy.Environment, t: float, event: Any, priority: int = NORMAL) -> None:
    """Schedule ``event`` (a simpy event or a :class:`LightEvent`) at absolute time ``t``.

    ``t`` must not be before ``env.now``. Unlike ``env.schedule(event, delay=t - now)``,
    the time is exactly ``t`` (no rounding of ``now + (t - now)``).
    """
    heappush(env._queue, (t, priority, next(env._eid), event))


def succeed_at(env: simpy.Environment, t: float, event: simpy.Event) -> None:
    """Trigger ``event`` (succeeded, value None) now and process it at time ``t``, as a
    ``Timeout`` is: one event, its callbacks run at ``t``."""
    event._ok = True
    event._value = None
    heappush(env._queue, (t, NORMAL, next(env._eid), event))


def pending(env: simpy.Environment) -> bool:
    """Whether any event is still scheduled on ``env``."""
    return bool(env._queue)


def events_scheduled(env: simpy.Environment) -> int:
    """How many events ``env`` has scheduled so far, without using a sequence number up.

    Differences of it count the events a run scheduled.
    """
    return int(repr(env._eid)[6:-1].split(",")[0])


def run_all(env: simpy.Environment, packet: type, call: type, injector: type | None = None) -> None:
    """simpy's ``Environment.run()`` until no event is left, inlined: same semantics and
    order, less overhead per event.

    Events of type ``packet`` are dispatched straight to ``event.cbl[0](event)``, events
    of type ``call`` to ``event.fn(event.arg)``, events of type ``injector`` to
    ``event.cbl[0](event)`` after their ``callbacks`` are cleared as simpy's ``step``
    clears them (the engine's own records: one known handler, never failed); any other
    event as simpy's ``step`` does.
    """
    queue = env._queue
    while queue:
        env._now, _, _, event = heappop(queue)
        kind = type(event)
        if kind is packet:
            event.cbl[0](event)
            continue
        if kind is injector:
            event.callbacks = None
            event.cbl[0](event)
            continue
        if kind is call:
            event.fn(event.arg)
            continue
        callbacks, event.callbacks = event.callbacks, None
        for callback in callbacks:
            callback(event)
        if not event._ok and not hasattr(event, "_defused"):
            exc = type(event._value)(*event._value.args)
            exc.__cause__ = event._value
            raise exc
