"""Packetisation per link type: how a message is cut into packets and what each link carries.

Model
-----
Every port (directed link) has the MTU and header bytes of its link type
(:class:`netsim.core.engine.routing.PortTable`: the edge's ``mtu``/``header`` attributes, else
:mod:`netsim.core.linktypes`). A message is cut at its route's *path MTU*, the smallest MTU of
the links it crosses (as InfiniBand's path MTU and RoCE's path-MTU discovery set a
connection's packet size), so no packet is ever fragmented on the way: on a route of one
link type (every route of the built-in topologies: NVLink inside a node, InfiniBand between
nodes) the packets are that type's, e.g. 4096 B with 26 B of header on InfiniBand even in a
system that also has 256 B NVLink packets. Each link charges **its own** header per packet:
a message of ``n`` payload bytes, ``P = max(1, ceil(n / path_mtu))`` packets, puts
``n + P * header_i`` bytes on link ``i`` (a store-and-forward NIC or bridge that
re-encapsulates packets from one link type to another, keeping their payload). The source
interface pushes the first link's wire bytes.

A graph whose links all share one MTU and header (or with ``mtu=``/``header=`` given for
the whole engine) takes a fast path with no per-message look-up. Routes whose links have
different headers use a hop handler whose per-port transmission times are scaled by
``(n + P * header_i) / (n + P * header_0)``, built once per route and message size; routes
of one header use the engine's common handler (no per-hop cost). With finite buffers
(credit flow control) every hop of such a mixed-header route carries the first link's wire
bytes (an approximation; no built-in topology has such routes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from netsim.core.engine.routing import PortTable
from netsim.core.validate import require_int

__all__ = ["Packetiser", "wire_bytes"]


def wire_bytes(nbytes: int, mtu: int, header: int) -> int:
    """Bytes on a link for ``nbytes`` of payload cut at ``mtu`` with ``header`` per packet.

    A zero-byte message still carries one header.

    Examples
    --------
    >>> wire_bytes(4096, 4096, 26), wire_bytes(4096, 256, 16), wire_bytes(0, 256, 16)
    (4122, 4352, 16)
    """
    return nbytes + max(1, -(-nbytes // mtu)) * header


class Packetiser:
    """Per-port MTU and header of a :class:`PortTable`, and per-route packet parameters.

    Parameters
    ----------
    ports : PortTable
        The topology's ports.
    mtu, header : int, optional
        Override the MTU / header of every port (the engine options ``mtu=``, ``header=``).
    """

    def __init__(self, ports: PortTable, mtu: int | None = None, header: int | None = None):
        n = len(ports)
        if mtu is not None:
            mtu = require_int("mtu", mtu, min=1)
        if header is not None:
            header = require_int("header", header, min=0)
        self.mtus = list(ports.mtu) if mtu is None else [mtu] * n
        self.headers = list(ports.header) if header is None else [header] * n
        types = set(zip(self.mtus, self.headers, strict=True)) or {(mtu or 4096, header or 0)}
        #: ``(mtu, header)`` if every port has the same, else None (routes are looked up).
        self.uniform = next(iter(types)) if len(types) == 1 else None
        self.max_packet = max(m + h for m, h in types)
        self.types = sorted(types)
        self._routes: dict[tuple[int, ...], tuple[int, int, bool]] = {}
        self._handlers: dict[tuple[Any, int], list] = {}
        self.link = ports.link

    def wire(self, nbytes: int, ports: Sequence[int] | None = None) -> int:
        """Bytes ``nbytes`` of payload put on the first of ``ports`` (a route), cut at their
        path MTU; without ``ports`` the most over the graph's ``(mtu, header)`` kinds."""
        if ports is None:
            return max(wire_bytes(nbytes, m, h) for m, h in self.types)
        mtu = self.route(ports, ports[0])[0]
        return wire_bytes(nbytes, mtu, self.headers[ports[0]])

    def per_link_type(self) -> dict[str, int]:
        """Link type -> MTU of its ports (of the first port of each type)."""
        out: dict[str, int] = {}
        for t, m in zip(self.link, self.mtus, strict=True):
            out.setdefault(t, m)
        return out

    def per_link_header(self) -> dict[str, int]:
        """Link type -> header bytes of its ports (of the first port of each type)."""
        out: dict[str, int] = {}
        for t, h in zip(self.link, self.headers, strict=True):
            out.setdefault(t, h)
        return out

    def route(self, ports: Sequence[int] | Iterable[int], first: int) -> tuple[int, int, bool]:
        """``(path MTU, header of the first port, whether headers differ)`` of a route.

        ``ports`` are the route's ports (or a multicast tree's), ``first`` the one the
        source injects into. Cached per tuple of ports.
        """
        key = tuple(ports)
        got = self._routes.get(key)
        if got is None:
            mtus, hdrs = self.mtus, self.headers
            h0 = hdrs[first]
            got = (min(mtus[p] for p in key), h0, any(hdrs[p] != h0 for p in key))
            self._routes[key] = got
        return got

    def scaled_handler(
        self,
        key: Any,
        ports: Iterable[int],
        nbytes: int,
        mtu: int,
        first: int,
        inv_bw: Sequence[float],
        make: Callable[[dict[int, float]], Callable],
    ) -> list:
        """The callback list of a mixed-header route for messages of ``nbytes``.

        ``make(inv)`` builds a hop handler timing port ``p`` with ``inv[p]`` seconds per
        first-link wire byte: ``inv_bw[p] * W_p / W_first`` with ``W_p`` the message's wire
        bytes on ``p``. Cached per ``(key, nbytes)``.
        """
        got = self._handlers.get((key, nbytes))
        if got is None:
            hdrs = self.headers
            w0 = wire_bytes(nbytes, mtu, hdrs[first]) or 1
            inv = {p: inv_bw[p] * (wire_bytes(nbytes, mtu, hdrs[p]) / w0) for p in ports}
            got = self._handlers[(key, nbytes)] = [make(inv)]
        return got
