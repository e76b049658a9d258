"""Switched trees: the k-ary fat-tree of Al-Fares et al. and a generic (tapered) tree.

Both put chips at the leaves only (one link each, to a level-0 switch); switches carry
``level`` (0 = leaf/edge, increasing upward). Every shortest path between two chips goes up
to their lowest common ancestor level and down again.

References
----------
.. [1] M. Al-Fares, A. Loukissas and A. Vahdat, "A Scalable, Commodity Data Center Network
   Architecture", SIGCOMM 2008: the three-tier k-ary fat-tree (k pods of k/2 edge and k/2
   aggregation switches, (k/2)^2 core switches, k^3/4 hosts, full bisection bandwidth).
.. [2] C. E. Leiserson, "Fat-Trees: Universal Networks for Hardware-Efficient
   Supercomputing", IEEE Trans. Computers C-34(10), 1985: trees whose links get fatter
   toward the root; the taper of this module thins them instead (oversubscription).
.. [3] R. L. Graham et al., "Scalable Hierarchical Aggregation Protocol (SHArP): A Hardware
   Architecture for Efficient Data Reduction", COMHPC 2016: in-network reductions on the
   switches of such a tree (``reduction=True``).
"""

from __future__ import annotations

import math
from typing import Any

import networkx as nx

from netsim.core.errors import ConfigError
from netsim.core.linktypes import link_type
from netsim.core.validate import require_float, require_int
from topologies.graph import add_chip, add_link, add_switch, finish
from topologies.limits import MAX_CHIPS, check_chips
from topologies.options import opt_bandwidth, opt_time, require_bool, require_link

__all__ = ["PARAMETER_KINDS", "PRESETS", "fat_tree", "tree"]

#: Kind of every generator parameter (:data:`topologies.options.KINDS`): how the
#: registry converts a spec value for it.
PARAMETER_KINDS: dict[str, dict[str, str]] = {
    "fat_tree": {
        "k": "int",
        "link": "str",
        "bandwidth": "bandwidth",
        "latency": "time",
        "switch_latency": "time",
        "reduction": "bool",
    },
    "tree": {
        "depth": "int",
        "radix": "int",
        "taper": "float",
        "link": "str",
        "bandwidth": "bandwidth",
        "latency": "time",
        "switch_latency": "time",
        "reduction": "bool",
    },
}

#: Largest number of chips :func:`tree` and :func:`fat_tree` build (the common limit).
MAX_TREE_CHIPS = MAX_CHIPS

PRESETS: dict[str, dict[str, Any]] = {
    "fat-tree-k4": {
        "func": "fat_tree",
        "params": {"k": 4},
        "source": (
            "the k = 4 example fat-tree of Al-Fares, Loukissas & Vahdat, 'A Scalable, Commodity "
            "Data Center Network Architecture', SIGCOMM 2008, Fig. 3: 16 hosts, 20 four-port "
            "switches; link defaults are InfiniBand NDR (netsim.core.linktypes)"
        ),
        "description": "the 16-host, 4-port-switch fat-tree of Al-Fares et al. (2008)",
    },
}


# --------------------------------------------------------------------------- validation


def _common(
    link: Any, bandwidth: Any, latency: Any, switch_latency: Any, reduction: Any
) -> tuple[dict[str, Any], float, float]:
    """Check the link options both trees share; return them (as given, for ``params``)
    with the resolved link bandwidth and switch latency (the link type's by default)."""
    opts = {
        "link": require_link("link", link),
        "bandwidth": opt_bandwidth("bandwidth", bandwidth),
        "latency": opt_time("latency", latency),
        "switch_latency": opt_time("switch_latency", switch_latency),
        "reduction": require_bool("reduction", reduction),
    }
    lt = link_type(opts["link"])
    bw = lt.bandwidth if opts["bandwidth"] is None else opts["bandwidth"]
    sw_lat = lt.switch_latency if opts["switch_latency"] is None else opts["switch_latency"]
    return opts, bw, sw_lat


# --------------------------------------------------------------------------- fat-tree


def fat_tree(
    k: int,
    *,
    link: str = "ib",
    bandwidth: float | None = None,
    latency: float | None = None,
    switch_latency: float | None = None,
    reduction: bool = False,
) -> nx.Graph:
    """Three-tier k-ary fat-tree (Al-Fares et al., SIGCOMM 2008) of k-port switches.

    ``k`` pods, each of ``k/2`` edge switches (``level=0``, ``role="edge"``) and ``k/2``
    aggregation switches (``level=1``, ``role="aggregation"``), fully connected within the
    pod; ``(k/2)^2`` core switches (``level=2``, ``role="core"``); ``k/2`` hosts per edge
    switch, ``k^3/4`` hosts in all. Aggregation switch ``a`` of every pod connects to core
    switches ``a*k/2 .. a*k/2 + k/2 - 1``. All links are equal (one physical link each).

    Rank order: pod-major, then edge switch within the pod, then port: host
    ``h = pod*(k/2)^2 + edge*(k/2) + port`` (chips carry ``pod`` and ``edge``). Switches
    follow: edge switches (pod-major), aggregation switches (pod-major), core switches;
    switches carry ``index`` (within the pod, or the core index) and ``pod`` (not core).

    Parameters
    ----------
    k : int
        Switch radix (ports), even, ``>= 2``.
    link : str
        Link type of :mod:`netsim.core.linktypes`.
    bandwidth : float, optional
        Bytes/s per direction of every link (default: the link type's).
    latency : float, optional
        Link latency, seconds (default: the link type's).
    switch_latency : float, optional
        Switch traversal latency, seconds (default: the link type's).
    reduction : bool
        Whether switches reduce in-network (e.g. InfiniBand SHARP).

    Returns
    -------
    networkx.Graph
        ``k^3/4`` chips, ``5k^2/4`` switches, ``3k^3/4`` links; every switch has ``k``
        ports in use. Chip-to-chip diameter 6 links (host-edge-aggregation-core-
        aggregation-edge-host; for ``k = 2`` the two hosts sit in different pods, so also 6).
        ``bisection_bandwidth = (k^3/8) * bandwidth`` (full bisection: half the hosts'
        injection; the cut of all host links of one half attains it and the fat-tree is
        rearrangeably non-blocking [1]_), ``bisection_links = k^3/8``.

    Raises
    ------
    ConfigError
        ``k`` odd or ``< 2``, or a bad option.

    Examples
    --------
    >>> G = fat_tree(4)
    >>> G.graph["chips"], G.number_of_nodes() - 16, G.number_of_edges()
    (16, 20, 48)

    References
    ----------
    See the module docstring.
    """
    k = require_int("k", k, min=2, even=True)
    check_chips("k", k**3 // 4, f"k={k}: k**3/4 = {k**3 // 4} hosts")
    common, bw, sw_lat = _common(link, bandwidth, latency, switch_latency, reduction)
    params = {"k": k, **common}
    link, latency, reduction = common["link"], common["latency"], common["reduction"]
    h = k // 2
    hosts = k * h * h
    G = nx.Graph()
    for c in range(hosts):
        add_chip(G, c, (c, 0.0), pod=c // (h * h), edge=(c // h) % h)
    _fat_tree_switches(G, k, sw_lat, reduction)
    _fat_tree_links(G, k, {"link": link, "bandwidth": bw, "latency": latency})
    G.graph["bisection_bandwidth"] = (hosts // 2) * bw
    G.graph["bisection_links"] = hosts // 2
    return finish(G, "fat_tree", params)


def _fat_tree_switches(G: nx.Graph, k: int, sw_lat: float, reduction: bool) -> None:
    """Add the edge and aggregation switches of every pod, then the core switches."""
    h = k // 2
    hosts = k * h * h
    edge0, agg0 = hosts, hosts + k * h
    roles = (("edge", edge0, 0), ("aggregation", agg0, 1))
    for pod in range(k):
        for i in range(h):
            centre = (pod * h + i) * h + (h - 1) / 2
            for role, first, level in roles:
                add_switch(
                    G,
                    first + pod * h + i,
                    (centre, level + 1.0),
                    latency=sw_lat,
                    reduction=reduction,
                    level=level,
                    role=role,
                    pod=pod,
                    index=i,
                )
    ncore = h * h
    for j in range(ncore):
        x = (j + 0.5) * hosts / ncore - 0.5
        core = {"level": 2, "role": "core", "index": j}
        add_switch(G, agg0 + k * h + j, (x, 3.0), latency=sw_lat, reduction=reduction, **core)


def _fat_tree_links(G: nx.Graph, k: int, opts: dict[str, Any]) -> None:
    """Link hosts to edge switches, edge to aggregation switches within a pod, and
    aggregation switch ``a`` of every pod to core switches ``a*k/2 .. a*k/2 + k/2 - 1``."""
    h = k // 2
    hosts = k * h * h
    edge0, agg0 = hosts, hosts + k * h
    core0 = agg0 + k * h
    for c in range(hosts):
        add_link(G, c, edge0 + c // h, **opts)
    for pod in range(k):
        for e in range(h):
            for a in range(h):
                add_link(G, edge0 + pod * h + e, agg0 + pod * h + a, **opts)
        for a in range(h):
            for j in range(h):
                add_link(G, agg0 + pod * h + a, core0 + a * h + j, **opts)


# --------------------------------------------------------------------------- tree


def tree(
    depth: int,
    radix: int,
    *,
    taper: float = 1.0,
    link: str = "ib",
    bandwidth: float | None = None,
    latency: float | None = None,
    switch_latency: float | None = None,
    reduction: bool = False,
) -> nx.Graph:
    """Tree of switches with ``radix`` children each and chips at the leaves (tapered).

    ``depth`` switch levels: level 0 switches each serve ``radix`` chips, a level-``l``
    switch (``l >= 1``) has ``radix`` level-``l-1`` children, the top level holds one
    switch; so ``radix**depth`` chips and ``(radix**depth - 1)/(radix - 1)`` switches
    (``depth=1``: one switch with ``radix`` chips). This is the shape of the aggregation
    trees of in-network reduction (SHARP [3]_).

    Bandwidth and taper: a chip link has ``bandwidth`` (b). The uplink of a level-``l``
    switch carries its downlink aggregate divided by ``taper``:
    ``B_l = radix * B_{l-1} / taper`` with ``B_{-1} = b``, i.e.
    ``B_l = b * (radix/taper)**(l+1)``, as ONE edge. ``taper = 1`` is a non-blocking
    (full-bandwidth) tree; ``taper = 2`` halves the bandwidth at every level up (2:1
    oversubscription per level). The edge's ``count`` is
    ``ceil((radix/taper)**(l+1))`` physical links, each of ``B_l / count`` (exactly
    ``radix**(l+1)`` links of ``b`` when ``taper = 1``).

    Rank order: chip ``c`` hangs off level-0 switch ``c // radix``; level-``l`` switch ``i``
    has parent ``i // radix`` at level ``l+1``. Switches are numbered level by level
    upward (``level``, ``index`` within the level).

    Parameters
    ----------
    depth : int
        Switch levels, ``>= 1``.
    radix : int
        Children per switch (chips per leaf switch), ``>= 2``.
    taper : float
        Bandwidth reduction per level up, ``>= 1`` (1 = full bandwidth).
    link, bandwidth, latency, switch_latency, reduction
        As in :func:`fat_tree`; ``bandwidth`` is that of a chip link.

    Returns
    -------
    networkx.Graph
        Chip-to-chip diameter ``2*depth`` links. ``bisection_bandwidth`` is set when
        ``radix`` is even, ``taper == 1`` or ``depth == 1``: any balanced cut must separate
        at least ``floor(N/2)`` chips from the root's side, and cutting a level-``l``
        uplink separates ``radix**(l+1)`` chips at ``b/taper**(l+1)`` per chip, cheapest
        for the top switch's children; so the minimum is ``floor(N/2) * b / taper**(depth-1)``
        (= ``radix/2`` children of the top switch for even radix, or any subtrees adding up
        to ``floor(N/2)`` chips when ``taper == 1``). For odd radix with ``taper > 1`` the
        optimum is a knapsack over subtree sizes and is left to :mod:`topologies.metrics`.

    Raises
    ------
    ConfigError
        A parameter out of range, or more than :data:`MAX_TREE_CHIPS` chips.

    Examples
    --------
    >>> G = tree(2, 4, taper=2)
    >>> G.graph["chips"], G.number_of_nodes() - 16
    (16, 5)
    >>> G.edges[16, 20]["bandwidth"] / G.edges[0, 16]["bandwidth"]  # 4 links / taper 2
    2.0
    """
    depth = require_int("depth", depth, min=1)
    radix = require_int("radix", radix, min=2)
    taper = require_float("taper", taper, min=1.0)
    if depth * math.log2(radix) > math.log2(MAX_TREE_CHIPS) + 1e-9:
        raise ConfigError(
            f"depth, radix: radix**depth chips must be <= {MAX_TREE_CHIPS}, "
            f"got radix={radix}, depth={depth}"
        )
    common, b, sw_lat = _common(link, bandwidth, latency, switch_latency, reduction)
    params = {"depth": depth, "radix": radix, "taper": taper, **common}
    link, latency, reduction = common["link"], common["latency"], common["reduction"]
    n = radix**depth
    G = nx.Graph()
    for c in range(n):
        add_chip(G, c, (c, 0.0), leaf=c // radix)
    offsets = []
    off = n
    for lvl in range(depth):
        offsets.append(off)
        width = radix ** (depth - 1 - lvl)
        span = radix ** (lvl + 1)
        for i in range(width):
            add_switch(
                G,
                off + i,
                (i * span + (span - 1) / 2, lvl + 1.0),
                latency=sw_lat,
                reduction=reduction,
                level=lvl,
                index=i,
            )
        off += width
    for c in range(n):
        add_link(G, c, offsets[0] + c // radix, link=link, bandwidth=b, latency=latency)
    top_count = 0
    for lvl in range(depth - 1):
        total = b * (radix / taper) ** (lvl + 1)
        count = max(1, math.ceil((radix / taper) ** (lvl + 1) - 1e-9))
        if lvl == depth - 2:
            top_count = count
        for i in range(radix ** (depth - 1 - lvl)):
            add_link(
                G,
                offsets[lvl] + i,
                offsets[lvl + 1] + i // radix,
                link=link,
                bandwidth=total / count,
                latency=latency,
                count=count,
            )
    half = n // 2
    if depth == 1 or taper == 1.0:
        G.graph["bisection_bandwidth"] = half * b
        G.graph["bisection_links"] = half
    elif radix % 2 == 0:
        G.graph["bisection_bandwidth"] = half * b / taper ** (depth - 1)
        G.graph["bisection_links"] = (radix // 2) * top_count
    return finish(G, "tree", params)
