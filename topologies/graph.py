"""Building blocks of topology graphs: the generators' helpers, public for custom graphs.

Every generator (and any hand-built topology, e.g. in a test or notebook) builds an undirected :class:`networkx.Graph` following the attribute
contract documented in :mod:`topologies`:

* nodes are ints; chips are ``0..N-1`` in the family's documented rank order, switches
  follow as ``N..N+S-1``;
* node ``kind`` is ``"chip"`` or ``"switch"``, ``pos`` an ``(x, y)`` tuple for drawing;
  chips carry ``injection_bandwidth`` (bytes/s); switches carry ``latency`` (traversal
  seconds) and ``reduction`` (bool, in-network reduction capable), reducing switches also
  ``reduction_bandwidth`` and ``reduction_latency`` (defaults of their link type's switch
  generation, :data:`netsim.core.linktypes.REDUCTION_ENGINES`);
* edge ``bandwidth`` (bytes/s per direction), ``latency`` (s), ``link`` (a
  :mod:`netsim.core.linktypes` name) and ``count`` (physical links aggregated into the edge);
* graph attributes ``family``, ``params`` (the parameters used, SI) and ``name``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx

from netsim.core.linktypes import REDUCTION_ENGINES, link_type

__all__ = [
    "DEFAULT_LINK",
    "LinkSpec",
    "add_chip",
    "add_link",
    "add_switch",
    "finish",
    "set_injection",
]


@dataclass(frozen=True)
class LinkSpec:
    """One class of links of a generator (a dragonfly's global links, a node's NICs).

    Generators take one per link class instead of three loose parameters; spec strings keep
    the flat names (``nic_bandwidth=25GB/s`` sets ``nic.bandwidth``, see
    :mod:`topologies.registry`).

    Attributes
    ----------
    link : str or None
        Link type of :mod:`netsim.core.linktypes` (None: the generator's, where it has one
        link type for all classes, as the dragonfly's ``link``).
    bandwidth : float or None
        Bytes/s per direction of one physical link (None: the link type's).
    latency : float or None
        Seconds (None: the link type's).

    Examples
    --------
    >>> LinkSpec("ib", bandwidth=25e9).link_bandwidth()
    25000000000.0
    """

    link: str | None = None
    bandwidth: float | None = None
    latency: float | None = None

    def link_bandwidth(self) -> float:
        """Bytes/s per direction of one physical link (the link type's if not given)."""
        if self.bandwidth is not None:
            return float(self.bandwidth)
        return link_type(str(self.link)).bandwidth

    def add(self, G: nx.Graph, u: int, v: int, count: int = 1, **attrs: Any) -> None:
        """:func:`add_link` of ``count`` links of this class between ``u`` and ``v``."""
        add_link(
            G,
            u,
            v,
            link=str(self.link),
            bandwidth=self.bandwidth,
            latency=self.latency,
            count=count,
            **attrs,
        )


#: A link class with every value left to its generator's defaults.
DEFAULT_LINK = LinkSpec()


def add_chip(G: nx.Graph, n: int, pos: tuple[float, float], **attrs: Any) -> None:
    """Add chip ``n`` (injection bandwidth is filled in by :func:`finish` if not given)."""
    G.add_node(n, kind="chip", pos=(float(pos[0]), float(pos[1])), **attrs)


def add_switch(
    G: nx.Graph,
    n: int,
    pos: tuple[float, float],
    *,
    latency: float,
    reduction: bool = False,
    **attrs: Any,
) -> None:
    """Add switch ``n`` with traversal ``latency`` seconds."""
    G.add_node(
        n,
        kind="switch",
        pos=(float(pos[0]), float(pos[1])),
        latency=float(latency),
        reduction=bool(reduction),
        **attrs,
    )


def add_link(
    G: nx.Graph,
    u: int,
    v: int,
    *,
    link: str,
    bandwidth: float | None = None,
    latency: float | None = None,
    count: int = 1,
    **attrs: Any,
) -> None:
    """Add a full-duplex edge of ``count`` aggregated physical links of type ``link``.

    ``bandwidth`` is per physical link and per direction (default: the link type's); the
    edge's ``bandwidth`` attribute is ``count * bandwidth``.
    """
    lt = link_type(link)
    bw = lt.bandwidth if bandwidth is None else float(bandwidth)
    lat = lt.latency if latency is None else float(latency)
    G.add_edge(u, v, bandwidth=count * bw, latency=lat, link=link, count=int(count), **attrs)


def set_injection(G: nx.Graph, value: float | None = None) -> None:
    """Set every chip's ``injection_bandwidth``: ``value``, or the sum of its links.

    The default of a direct network (torus, mesh, wafer), where a chip drives all its
    links at once: a TPU's DMA engines feed its six ICI links concurrently, so a chip can
    inject as much as its links carry out of it (``sum`` of the attached edges'
    ``bandwidth``, which already counts an edge's ``count`` links).
    """
    for n, data in G.nodes(data=True):
        if data["kind"] == "chip":
            bw = value if value is not None else sum(G.edges[n, m]["bandwidth"] for m in G.adj[n])
            data["injection_bandwidth"] = float(bw)


def _reduction_defaults(G: nx.Graph, n: int, data: dict[str, Any]) -> None:
    """Give a reducing switch the reduction bandwidth and latency of its generation (the
    link type of most of its links), unless set; no known engine: no limit (no attribute)."""
    links = [str(G.edges[n, m].get("link")) for m in G.adj[n]]
    if not links:
        return
    engine = REDUCTION_ENGINES.get(max(sorted(set(links)), key=links.count))
    if engine is not None:
        data.setdefault("reduction_bandwidth", engine.bandwidth)
        data.setdefault("reduction_latency", engine.latency)


def finish(G: nx.Graph, family: str, params: dict[str, Any], name: str | None = None) -> nx.Graph:
    """Fill defaults and graph attributes; return ``G``.

    Chips without ``injection_bandwidth`` get the largest bandwidth among their attached
    edges (a chip's link to its first switch; the direct-network generators set the sum of
    a chip's links with :func:`set_injection` instead).
    """
    for n, data in G.nodes(data=True):
        if data["kind"] == "chip" and "injection_bandwidth" not in data:
            bws = [G.edges[n, m]["bandwidth"] for m in G.adj[n]]
            data["injection_bandwidth"] = float(max(bws)) if bws else 0.0
        if data["kind"] == "switch" and data.get("reduction"):
            _reduction_defaults(G, n, data)
    G.graph["family"] = family
    G.graph["params"] = dict(params)
    G.graph["name"] = name or family
    G.graph["chips"] = sum(1 for _, k in G.nodes(data="kind") if k == "chip")
    return G
