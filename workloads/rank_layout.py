"""The topology a workload runs on and the layout of its ranks onto the chips.

:func:`resolve_topology` turns a topology spec, preset or graph into a graph;
:func:`topology_chips` lists its chips in rank order (rank ``r`` runs on chip ``r``);
:func:`layout` maps tensor, pipeline, expert and data parallelism onto that many chips
(:class:`workloads.sharding.Parallelism`). Used by :mod:`workloads.decode` and
:mod:`workloads.train`.
"""

from __future__ import annotations

import networkx as nx

from netsim.core.errors import ConfigError
from netsim.core.validate import require_int
from workloads.sharding import Parallelism

__all__ = ["layout", "resolve_topology", "topology_chips"]


def resolve_topology(topo: str | nx.Graph) -> nx.Graph:
    """Return the graph of ``topo`` (a graph passes through; a string is a spec or preset).

    Raises
    ------
    ConfigError
        If the spec is invalid.
    """
    if isinstance(topo, nx.Graph):
        return topo
    if not isinstance(topo, str) or not topo.strip():
        raise ConfigError(f"topo: expected a topology spec string or a graph, got {topo!r}")
    from topologies.registry import build

    return build(topo)


def topology_chips(graph: nx.Graph) -> list[int]:
    """The chip nodes of ``graph`` in rank order.

    Raises
    ------
    ConfigError
        If the graph has no chips.
    """
    chips = sorted(n for n, k in graph.nodes(data="kind") if k == "chip")
    if not chips:
        raise ConfigError("topo: the topology has no chips (nodes with kind='chip')")
    return chips


def layout(
    chips: int, *, tp: int = 1, pp: int = 1, ep: int = 1, dp: int | None = None
) -> Parallelism:
    """Map TP/PP/EP/DP onto ``chips`` chip ranks (rank ``r`` is chip ``r``).

    ``dp=None`` uses as many replicas as fit: ``floor(chips / (tp*pp))`` rounded down to a
    multiple of ``ep``.

    Raises
    ------
    ConfigError
        If the layout needs more chips than the topology has.
    """
    chips = require_int("chips", chips, min=1)
    tp = require_int("tp", tp, min=1)
    pp = require_int("pp", pp, min=1)
    ep = require_int("ep", ep, min=1)
    if dp is None:
        dp = (chips // (tp * pp)) // ep * ep
        if dp < 1:
            raise ConfigError(
                f"tp*pp*ep: must be <= the chips of the topology ({chips}), got {tp * pp * ep}"
            )
    par = Parallelism(tp=tp, pp=pp, ep=ep, dp=require_int("dp", dp, min=1))
    if par.world_size > chips:
        raise ConfigError(
            f"dp: tp*pp*dp ({par.world_size}) must be <= the chips of the topology ({chips}), "
            f"got dp={dp}"
        )
    return par
