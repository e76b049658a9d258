"""The network models a collective runs on: :func:`make_backend` (packet, analytical, flow)."""

from __future__ import annotations

import networkx as nx

from collectives.options import BACKENDS
from netsim.core.backend import Backend
from netsim.core.errors import ConfigError
from netsim.core.validate import require_choice

__all__ = ["make_backend"]


def make_backend(
    graph: nx.Graph,
    backend: str = "packet",
    *,
    forwarding: str = "cut-through",
    mtu: int | None = None,
    header: int | None = None,
    buffer: int | None = None,
    routing: str = "auto",
    max_segments: int | None = 256,
    seed: int = 0,
) -> Backend:
    """Return a fresh network model of ``graph``.

    ``"packet"``: the packet engine (:mod:`netsim.core.engine`); ``"analytical"``: contention-free
    alpha-beta (:mod:`netsim.core.analytical`); ``"flow"``: flows sharing links max-min fairly
    (:mod:`netsim.core.flow`). ``forwarding``, ``buffer`` and ``max_segments`` apply to the
    packet engine only (the other models refuse a ``buffer``).
    """
    require_choice("backend", backend, BACKENDS)
    if backend == "packet":
        from netsim.core.engine import PacketNetwork

        return PacketNetwork(
            graph,
            forwarding=forwarding,
            mtu=mtu,
            header=header,
            buffer=buffer,
            routing=routing,
            max_segments=max_segments,
            seed=seed,
        )
    from netsim.core.analytical import AnalyticalNetwork
    from netsim.core.flow import FlowNetwork

    if buffer is not None:
        raise ConfigError(f"buffer: the {backend} backend has no buffers, got {buffer!r}")
    model = FlowNetwork if backend == "flow" else AnalyticalNetwork
    return model(graph, mtu=mtu, header=header, routing=routing, seed=seed)
