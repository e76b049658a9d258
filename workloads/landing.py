"""Landing zone of network writes: where bytes arriving at a chip land, and what it costs.

Bytes arriving from the network land in the chip's ``landing_zone``; landing in HBM costs
``chip.landing_latency`` per message. :class:`LandingBackend` wraps a backend and adds that
latency to the arrival of every message to a chip; ``landing_zone`` resolves the
``landing=`` option (:data:`LANDINGS`) of :func:`workloads.decode.decode` to a zone and its
latency.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from netsim.core.units import format_time
from netsim.core.validate import require_choice, require_float
from workloads.chips import Chip

__all__ = ["LANDINGS", "LandingBackend", "landing_zone"]


#: Landing zones: ``chip`` = the chip's own ``landing_zone``.
LANDINGS = ("chip", "sram", "hbm")


class LandingBackend:
    """A backend wrapper that delays every message to a chip by ``latency`` seconds.

    Models the extra latency of landing network writes in HBM instead of SRAM
    (:attr:`workloads.chips.Chip.landing_latency`). Messages to switches are not delayed.
    Every other member of :class:`netsim.core.backend.Backend` is the wrapped backend's.
    """

    def __init__(self, inner: Any, latency: float, chips: Sequence[int]) -> None:
        self.inner = inner
        self.env = inner.env
        self.graph = inner.graph
        self.router = inner.router
        self.ports = inner.ports
        self.latency = require_float("landing_latency", latency, min=0.0)
        self._chips = frozenset(chips)
        self.model = f"{inner.model}+landing-{format_time(self.latency)}"

    def _delayed(self, inner_event: Any, delay: float, callback: Any, t0: float) -> Any:
        out = self.env.event()

        def fire(_: Any) -> None:
            if callback is not None:
                callback(self.env.now - t0)
            out.succeed()

        def arrived(_: Any) -> None:
            if delay > 0:
                self.env.timeout(delay).callbacks.append(fire)
            else:
                fire(None)

        inner_event.callbacks.append(arrived)
        return out

    def send(self, src: int, dst: int, nbytes: int, **kwargs: Any) -> Any:
        """Send as the wrapped backend; the event fires ``latency`` later for a chip."""
        callback = kwargs.pop("callback", None)
        t0 = self.env.now
        ev = self.inner.send(src, dst, nbytes, **kwargs)
        return self._delayed(ev, self.latency if dst in self._chips else 0.0, callback, t0)

    def multicast(self, src: int, dsts: Sequence[int], nbytes: int) -> Any:
        """Multicast as the wrapped backend, delayed if any destination is a chip."""
        t0 = self.env.now
        ev = self.inner.multicast(src, dsts, nbytes)
        delay = self.latency if any(d in self._chips for d in dsts) else 0.0
        return self._delayed(ev, delay, None, t0)

    def transfer(
        self, src: int, dsts: Sequence[int], nbytes: int, done: Any, arg: Any, flow: int = 0
    ) -> None:
        """:meth:`send` (with ``flow``) or :meth:`multicast`; ``done(arg)`` when its event
        fires (the wrapped backend's light path would skip the landing delay)."""
        if len(dsts) == 1:
            ev = self.send(src, dsts[0], nbytes, flow=flow)
        else:
            ev = self.multicast(src, dsts, nbytes)
        ev.callbacks.append(lambda _: done(arg))

    def run(self, until: Any = None) -> None:
        """Run the wrapped backend."""
        self.inner.run(until)

    def stats(self) -> dict[str, Any]:
        """The wrapped backend's counters, with this wrapper's ``model``."""
        return {**self.inner.stats(), "model": self.model}

    def call_at(self, t: float, fn: Any, arg: Any = None) -> None:
        """The wrapped backend's timer."""
        self.inner.call_at(t, fn, arg)

    def link_utilisation(self) -> dict[tuple[int, int], float]:
        """The wrapped backend's link utilisation."""
        return self.inner.link_utilisation()


def landing_zone(landing: str, c: Chip) -> tuple[str, float]:
    """The zone of ``landing`` on chip ``c`` (``chip``: the chip's own) and the latency it
    adds per message (``landing_latency`` in HBM, else 0).

    Raises
    ------
    ConfigError
        ``landing`` is not one of :data:`LANDINGS`.
    """
    require_choice("landing", landing, LANDINGS)
    zone = c.landing_zone if landing == "chip" else landing
    return zone, (c.landing_latency if zone == "hbm" else 0.0)
