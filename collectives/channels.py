"""Channels and rails: the parallel rings and trees NCCL runs on a multi-node system.

NCCL does not run one ring per collective: it runs *channels*, each a ring (or a tree)
of its own that carries a slice of the data, on its own thread block. On a multi-node
system its topology search builds one ring per NIC, and every ring leaves each node
through a different NIC (*rail*), so that all NICs of a node carry inter-node traffic at
once [1]_ [2]_.

Channel layout (``channels = C`` on a system whose chips carry ``node`` and ``local_rank``)
    The ranks form a grid ``nodes x L`` (local ranks sorted by ``local_rank``). Channel
    ``c`` starts every node's segment at local index ``r = c mod L`` and visits the local
    ranks ``r, r+1, ..., r-1`` before moving to the next node; the ring leaves node ``n``
    from local rank ``r - 1`` (its NIC, rail ``r - 1``) and enters node ``n+1`` at local
    rank ``r`` (rail ``r``). So over ``L`` channels every NIC sends and receives once per
    ring. On a rail-optimised fabric a hop from rail ``r-1`` to rail ``r`` crosses
    leaf-spine-leaf. With ``pxn=True`` the exit rank first hands the data over the
    scale-up network to the local rank of rail ``r`` (its *proxy*), which sends it over
    its own rail: a rail-matched send through a single leaf, as NCCL's PXN (PCI x NVLink)
    does [3]_; the proxy holds the data in a scratch buffer ``"pxn<first rank>"``.
    A tree channel ``c`` is NCCL's: inside each node a chain ``r, r+1, ..., r-1`` headed
    by local rank ``r``, and across nodes the heads (all on rail ``r``) form NCCL's double
    binary tree over the nodes (:func:`collectives.tree.dtree_parents` of ``nodes``).

Default channel count (:func:`default_channels`)
    On a multi-node system (two or more nodes whose chips have a NIC, ``nic_bandwidth``):
    one channel per NIC of a node, i.e. ``L``. NCCL's topology search on a DGX H100 finds
    one ring per NIC (``sm90SpeedArrayInter`` starts at 48 GB/s, about one NDR NIC, and
    the search stops when ``nChannels * bw`` reaches the node's NIC total [4]_); it then
    runs each ring on two channels (``connectRings`` duplicates them), which follow the
    same links and are modelled here as pipelining, not as more channels. Elsewhere one
    channel: on one NVSwitch node every ring uses the same NVLinks, which netsim stripes
    a message over already.

References
----------
.. [1] S. Jeaugey, "Massively Scale Your Deep Learning Training with NCCL 2.4", NVIDIA
   developer blog, 2019 (rings and trees over channels, one per NIC).
.. [2] NVIDIA DGX SuperPOD reference architecture with DGX H100 (RA-11333-001, 2023):
   rail-optimised compute fabric, one NIC per GPU.
.. [3] S. Jeaugey, "Doubling all2all Performance with NVIDIA Collective Communication
   Library 2.12", NVIDIA developer blog, 2022 (PXN: send through the GPU on the
   destination's rail over NVLink).
.. [4] NVIDIA NCCL, ``src/graph/search.cc`` (``ncclTopoCompute``, ``sm90SpeedArrayInter``,
   ``ncclTopoDupChannels``) and ``src/graph/connect.cc`` (``ncclTopoPostset``: channels
   duplicated, "Duplication should be complete now").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx

from netsim.core.errors import ConfigError
from netsim.core.validate import require_int

__all__ = [
    "CHANNELED",
    "Layout",
    "default_channels",
    "layout",
    "resolve_channels",
    "ring_orders",
]

#: (op, algo) pairs that take ``channels`` (and ``pxn`` for the rings).
CHANNELED = frozenset(
    {
        ("allreduce", "ring"),
        ("reduce_scatter", "ring"),
        ("allgather", "ring"),
        ("allreduce", "tree"),
    }
)


@dataclass(frozen=True)
class Layout:
    """The ranks of a multi-node system as a grid.

    Attributes
    ----------
    nodes : tuple of tuple of int
        ``nodes[n][i]``: the chip of local index ``i`` in node ``n`` (sorted by node id, then
        ``local_rank``).
    nics : bool
        Whether every rank has a NIC (``nic_bandwidth`` attribute).
    """

    nodes: tuple[tuple[int, ...], ...]
    nics: bool

    @property
    def local(self) -> int:
        """Ranks per node."""
        return len(self.nodes[0])


def layout(ranks: Sequence[int], graph: Any) -> Layout | None:
    """The node grid of ``ranks`` on ``graph``, or None if the chips have no ``node``.

    Raises
    ------
    ConfigError
        Ranks whose nodes hold different numbers of ranks.
    """
    if not isinstance(graph, nx.Graph) or not all(r in graph for r in ranks):
        return None
    attrs = [graph.nodes[r] for r in ranks]
    if not ranks or not all("node" in a and "local_rank" in a for a in attrs):
        return None
    by_node: dict[Any, list[tuple[Any, int]]] = {}
    for r, a in zip(ranks, attrs, strict=True):
        by_node.setdefault(a["node"], []).append((a["local_rank"], int(r)))
    sizes = {len(v) for v in by_node.values()}
    if len(sizes) != 1:
        raise ConfigError(
            f"ranks: channels need the same number of ranks in every node, got "
            f"{sorted(len(v) for v in by_node.values())}"
        )
    nodes = tuple(tuple(r for _, r in sorted(by_node[n])) for n in sorted(by_node))
    return Layout(nodes, all(a.get("nic_bandwidth") for a in attrs))


def default_channels(ranks: Sequence[int], graph: Any) -> int:
    """NCCL's channel count for ``ranks`` (see the module docstring): one per NIC of a node
    on a multi-node system, else 1."""
    lay = layout(ranks, graph)
    if lay is None or len(lay.nodes) < 2 or not lay.nics:
        return 1
    return lay.local


def resolve_channels(
    op: str, algo: str, ranks: Sequence[int], graph: Any, channels: Any
) -> int | None:
    """The channel count a builder uses: ``channels`` checked, or the default; None for an
    algorithm without channels."""
    if (op, algo) not in CHANNELED:
        return None
    if channels is None:
        return default_channels(ranks, graph)
    return require_int("channels", channels, min=1)


def ring_orders(
    ranks: Sequence[int], graph: Any, channels: int, *, pxn: bool = False
) -> list[tuple[list[int], dict[int, int]]]:
    """The ring of every channel: ``[(order, proxies), ...]``.

    ``order`` lists the chips in ring order; ``proxies`` maps a ring position ``q`` whose
    send to ``q + 1`` goes through a PXN proxy to that proxy chip (empty unless ``pxn``).
    Without a node grid every channel is the rank order.
    """
    lay = layout(ranks, graph)
    if lay is None or len(lay.nodes) < 2:
        if pxn:
            raise ConfigError("pxn: needs ranks on two or more nodes (chips with 'node')")
        return [(list(ranks), {}) for _ in range(channels)]
    L = lay.local
    out = []
    for c in range(channels):
        r = c % L
        order = [node[(r + i) % L] for node in lay.nodes for i in range(L)]
        proxies = {}
        if pxn and L > 1:
            for n, node in enumerate(lay.nodes):
                proxies[n * L + L - 1] = node[r]
        out.append((order, proxies))
    return out
