"""Dragonfly networks (Kim, Dally, Scott & Abts, ISCA 2008).

``g`` groups of ``a`` routers; every router has ``p`` chips (terminals), ``a - 1`` local
links (the routers of a group are fully connected) and ``h`` global links to routers of
other groups. The balanced maximum is ``g = a h + 1`` groups, with exactly one global link
between every pair of groups [1]_. Routers are switches (``kind="switch"``).

Conventions
-----------
Rank order
    Group-major, then router, then port: chip ``((group * a) + router) * p + port``.
    Routers follow as node ``N + group * a + router``. Chips carry ``group``, ``router``
    (index within the group) and ``port``; routers carry ``group`` and ``router``. Edge
    ``role`` is ``"terminal"``, ``"local"`` or ``"global"``.
Global-link arrangement
    The ``a h`` global ports of a group are numbered ``k = router * h + j`` (``j < h``).
    Every group lists the *offsets* its ports lead to (port ``k`` of group ``i`` goes to
    group ``(i + offset[k]) mod g``). With ``g - 1`` other groups, ``a h = base (g - 1) + rem``:
    the list is ``base`` rounds over all offsets, then ``rem`` extra offsets chosen in
    mirrored pairs ``{d, g - d}`` (``1, g-1, 2, g-2, ...``, plus ``g/2`` if ``rem`` is odd).

    * ``"consecutive"``: rounds run ``1, 2, ..., g - 1`` (extras ascending). Balanced case:
      router ``r`` port ``j`` of group ``i`` goes to group ``(i + 1 + r h + j) mod g`` (the
      "relative"/consecutive arrangement, Camarero et al. [2]_).
    * ``"palm-tree"``: rounds run ``g - 1, ..., 1`` (extras descending). Balanced case:
      group ``(i - 1 - r h - j) mod g``, landing on router ``a - 1 - r`` port ``h - 1 - j``
      (the palm-tree arrangement of M. García's thesis, as in Camarero et al. [2]_).

    The ``m``-th port of group ``i`` with offset ``d`` is wired to the ``m``-th port of group
    ``i + d`` with offset ``g - d``; every pair of groups gets ``base`` or ``base + 1``
    links. Links between the same two routers are one edge with ``count`` > 1. The
    arrangement needs ``g a h`` even (every global port paired).

Closed forms
    ``N = a p g`` chips, ``a g`` routers, ``a p g`` terminal, ``g a (a - 1) / 2`` local and
    ``g a h / 2`` global physical links. With ``g = a h + 1`` and ``a >= 2`` the chip-to-chip
    diameter is 5 links (terminal, local, global, local, terminal; 3 when ``a = 1``), set as
    graph ``diameter``. The bisection has no simple closed form for every shape (cuts may
    split groups); it is left to :mod:`topologies.metrics`.

References
----------
.. [1] J. Kim, W. J. Dally, S. Scott and D. Abts, "Technology-Driven, Highly-Scalable
   Dragonfly Topology", ISCA 2008: parameters a, p, h; balanced a = 2p = 2h; g = a h + 1;
   the 72-terminal example with p = h = 2, a = 4 (9 groups).
.. [2] C. Camarero, E. Vallejo and R. Beivide, "Topological Characterization of Hamming
   and Dragonfly Networks and Its Implications on Routing", ACM TACO 11(4), 2015:
   global-link arrangements (consecutive/relative, palm-tree).
.. [3] D. De Sensi, S. Di Girolamo, K. H. McMahon, D. Roweth and T. Hoefler, "An In-Depth
   Analysis of the Slingshot Interconnect", SC20: 64-port Rosetta switches at 200 Gb/s,
   dragonfly groups of 32 switches with 16 endpoint, 31 local and 17 global ports.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import networkx as nx

from netsim.core.errors import ConfigError
from netsim.core.linktypes import link_type
from netsim.core.validate import require_choice, require_int
from topologies.graph import DEFAULT_LINK, LinkSpec, add_chip, add_switch, finish
from topologies.limits import MAX_CHIPS, check_chips
from topologies.options import opt_bandwidth, opt_time, require_bool, require_link

__all__ = ["ARRANGEMENTS", "MAX_CHIPS", "PARAMETER_KINDS", "PRESETS", "dragonfly", "global_links"]

#: Kind of every generator parameter (:data:`topologies.options.KINDS`): how the
#: registry converts a spec value for it.
PARAMETER_KINDS: dict[str, dict[str, str]] = {
    "dragonfly": {
        "a": "int",
        "p": "int",
        "h": "int",
        "g": "int",
        "arrangement": "str",
        "link": "str",
        "terminal_bandwidth": "bandwidth",
        "local_bandwidth": "bandwidth",
        "global_bandwidth": "bandwidth",
        "terminal_latency": "time",
        "local_latency": "time",
        "global_latency": "time",
        "switch_latency": "time",
        "reduction": "bool",
    },
}

ARRANGEMENTS = ("consecutive", "palm-tree")


#: Extra latency of a global link over the link type's default when ``global_latency`` is
#: not given: ~20 m of optical cable between cabinets at 5 ns/m (assumed; Kim et al. [1]_
#: place global channels on long optical cables, local ones on short electrical ones).
GLOBAL_EXTRA_LATENCY = 100e-9

PRESETS: dict[str, dict[str, Any]] = {
    "dragonfly-72": {
        "func": "dragonfly",
        "params": {"a": 4, "p": 2, "h": 2},
        "source": (
            "the example dragonfly of Kim, Dally, Scott & Abts, 'Technology-Driven, "
            "Highly-Scalable Dragonfly Topology', ISCA 2008: p = h = 2, a = 4, 9 groups, "
            "72 terminals; InfiniBand NDR links (netsim.core.linktypes 'ib')"
        ),
        "description": "balanced dragonfly a=4, p=2, h=2: 9 groups, 72 chips",
    },
    "slingshot-8g": {
        "func": "dragonfly",
        "params": {
            "a": 32,
            "p": 16,
            "h": 17,
            "g": 8,
            "link": "ethernet",
            "terminal_bandwidth": 25e9,
            "local_bandwidth": 25e9,
            "global_bandwidth": 25e9,
        },
        "source": (
            "HPE Slingshot: 64-port Rosetta switches with 200 Gb/s (25 GB/s per direction) "
            "ports, groups of 32 switches with 16 endpoint ports, 31 local and 17 global "
            "ports each, up to 545 groups (De Sensi et al., 'An In-Depth Analysis of the "
            "Slingshot Interconnect', SC20; ALCF Aurora interconnect page). SCALED to 8 "
            "groups (4096 endpoints): each pair of groups shares 77 or 78 global links. "
            "Ethernet-based, hence link type 'ethernet' (switch latency assumed)"
        ),
        "description": "Slingshot-like dragonfly: 8 groups of 32 64-port switches, 4096 chips",
    },
}


# --------------------------------------------------------------------------- validation


# --------------------------------------------------------------------------- arrangement


def _offsets(a: int, h: int, g: int, arrangement: str) -> list[int]:
    """Offset (to the target group) of each global port ``k = r*h + j`` of a group."""
    base, rem = divmod(a * h, g - 1)
    extra: list[int] = []
    d = 1
    while len(extra) + 2 <= rem:
        extra += [d, g - d]
        d += 1
    if len(extra) < rem:
        extra.append(g // 2)
    if arrangement == "consecutive":
        return list(range(1, g)) * base + sorted(extra)
    return list(range(g - 1, 0, -1)) * base + sorted(extra, reverse=True)


def global_links(
    a: int, h: int, g: int, arrangement: str = "consecutive"
) -> list[tuple[int, int, int, int]]:
    """Every global link as ``(group, router, group2, router2)``, each listed once.

    See the module docstring for the arrangements. Validates like :func:`dragonfly`.

    Examples
    --------
    >>> global_links(2, 1, 3)  # a = 2, h = 1: router r of group i goes to group i + 1 + r
    [(0, 0, 1, 1), (0, 1, 2, 0), (1, 0, 2, 1)]
    """
    a, h, g, arrangement = _checked_shape(a, h, g, arrangement)
    return _global_links(a, h, g, arrangement)


def _checked_shape(a: Any, h: Any, g: Any, arrangement: Any) -> tuple[int, int, int, str]:
    """Validate ``a``, ``h``, ``g`` (None: the balanced ``a*h + 1``) and the arrangement."""
    a = require_int("a", a, min=1)
    h = require_int("h", h, min=1)
    g = a * h + 1 if g is None else require_int("g", g, min=2, max=a * h + 1)
    arrangement = require_choice("arrangement", arrangement, ARRANGEMENTS)
    if (g * a * h) % 2:
        raise ConfigError(
            f"g: a*h*g must be even so that every global port is paired, got a={a}, h={h}, g={g}"
        )
    return a, h, g, arrangement


def _global_links(a: int, h: int, g: int, arrangement: str) -> list[tuple[int, int, int, int]]:
    offsets = _offsets(a, h, g, arrangement)
    # occurrence[k]: how many earlier ports carry the same offset; where[(d, m)]: the port.
    seen: Counter[int] = Counter()
    occurrence = []
    where: dict[tuple[int, int], int] = {}
    for k, d in enumerate(offsets):
        occurrence.append(seen[d])
        where[(d, seen[d])] = k
        seen[d] += 1
    out = []
    for i in range(g):
        for k, d in enumerate(offsets):
            j = (i + d) % g
            k2 = where[(g - d, occurrence[k])]
            if (i, k) < (j, k2):
                out.append((i, k // h, j, k2 // h))
    return out


# --------------------------------------------------------------------------- generator


def dragonfly(
    a: int,
    p: int,
    h: int,
    g: int | None = None,
    *,
    arrangement: str = "consecutive",
    link: str = "ib",
    terminal: LinkSpec = DEFAULT_LINK,
    local: LinkSpec = DEFAULT_LINK,
    global_: LinkSpec = DEFAULT_LINK,
    switch_latency: float | None = None,
    reduction: bool = False,
) -> nx.Graph:
    """Dragonfly of ``g`` groups of ``a`` routers with ``p`` chips and ``h`` global links each.

    See the module docstring for rank order, the global-link arrangements and closed forms.

    Parameters
    ----------
    a : int
        Routers per group, ``>= 1``.
    p : int
        Chips per router, ``>= 1``.
    h : int
        Global links per router, ``>= 1``.
    g : int, optional
        Groups, ``2 <= g <= a*h + 1`` (default the balanced maximum ``a*h + 1``, one global
        link per pair of groups); ``g*a*h`` must be even.
    arrangement : {"consecutive", "palm-tree"}
        How global links are wired.
    link : str
        Link type of every link (default ``ib``).
    terminal, local, global_ : LinkSpec
        Bandwidth (bytes/s per direction of one link) and latency (seconds) of the
        chip-router, router-router in-group and inter-group links; their link type is
        ``link`` (a LinkSpec here gives no ``link`` of its own). Defaults: the link type's,
        and for global links its latency + :data:`GLOBAL_EXTRA_LATENCY`. In spec strings
        ``terminal_bandwidth``, ``terminal_latency``, ``local_...``, ``global_...``.
    switch_latency : float, optional
        Router traversal, seconds (default: the link type's ``switch_latency``).
    reduction : bool
        Whether routers reduce in-network.

    Returns
    -------
    networkx.Graph
        Chip ``injection_bandwidth`` is the terminal link bandwidth.

    Raises
    ------
    ConfigError
        A parameter out of range (e.g. ``g: must be an integer in [2, 9], got 10``).

    Examples
    --------
    >>> G = dragonfly(4, 2, 2)
    >>> G.graph["chips"], G.number_of_nodes() - 72, G.graph["params"]["g"]
    (72, 36, 9)
    >>> sorted({r for *_, r in G.edges(data="role")})
    ['global', 'local', 'terminal']
    """
    a = require_int("a", a, min=1)
    p = require_int("p", p, min=1)
    a, h, g, arrangement = _checked_shape(a, h, g, arrangement)
    check_chips("a, p, g", a * p * g, f"a*p*g = {a * p * g}")
    link = require_link("link", link)
    options = _link_options({"terminal": terminal, "local": local, "global": global_})
    options["switch_latency"] = opt_time("switch_latency", switch_latency)
    reduction = require_bool("reduction", reduction)
    params = {"a": a, "p": p, "h": h, "g": g, "arrangement": arrangement, "link": link}
    params.update(options)
    params["reduction"] = reduction
    roles = _link_specs(link, options)
    sw_lat = options["switch_latency"]
    G = nx.Graph()
    _add_groups(
        G,
        (a, p, g),
        roles["terminal"].link_bandwidth(),
        {
            "latency": link_type(link).switch_latency if sw_lat is None else sw_lat,
            "reduction": reduction,
        },
    )
    _add_group_links(G, (a, p, g), roles)
    _add_global_links(G, (a, p, g), _global_links(a, h, g, arrangement), roles["global"])
    if g == a * h + 1:
        G.graph["diameter"] = 5 if a >= 2 else 3
    return finish(G, "dragonfly", params)


def _link_options(specs: dict[str, Any]) -> dict[str, float | None]:
    """Check the three link classes; return their values under their spec keys
    (``terminal_bandwidth``, ..., ``global_latency``), as ``G.graph["params"]`` records them."""
    for role, spec in specs.items():
        name = "global_" if role == "global" else role
        if not isinstance(spec, LinkSpec):
            raise ConfigError(f"{name}: must be a topologies.graph.LinkSpec, got {spec!r}")
        if spec.link is not None:
            raise ConfigError(f"{name}: takes the link type of link=, got link={spec.link!r}")
    out: dict[str, float | None] = {}
    for role, spec in specs.items():
        out[f"{role}_bandwidth"] = opt_bandwidth(f"{role}_bandwidth", spec.bandwidth)
    for role, spec in specs.items():
        out[f"{role}_latency"] = opt_time(f"{role}_latency", spec.latency)
    return out


def _link_specs(link: str, options: dict[str, float | None]) -> dict[str, LinkSpec]:
    """The terminal, local and global link classes; a global link's latency defaults to the
    link type's plus :data:`GLOBAL_EXTRA_LATENCY`."""
    specs = {
        role: LinkSpec(link, options[f"{role}_bandwidth"], options[f"{role}_latency"])
        for role in ("terminal", "local", "global")
    }
    lt = link_type(link)
    for role, extra in (("terminal", 0.0), ("local", 0.0), ("global", GLOBAL_EXTRA_LATENCY)):
        if specs[role].latency is None:
            specs[role] = LinkSpec(link, specs[role].bandwidth, lt.latency + extra)
    return specs


def _add_groups(
    G: nx.Graph, shape: tuple[int, int, int], injection: float, switch: dict[str, Any]
) -> None:
    """Add the routers (``switch`` attributes) and their chips, group by group on a circle."""
    a, p, g = shape
    n = a * p * g
    radius = max(4.0, 1.2 * a * g / math.pi)
    for grp in range(g):
        theta = 2 * math.pi * grp / g
        cx, cy = radius * math.cos(theta), radius * math.sin(theta)
        for r in range(a):
            phi = theta + 2 * math.pi * r / a
            rx, ry = cx + math.cos(phi), cy + math.sin(phi)
            add_switch(G, n + grp * a + r, (rx, ry), **switch, group=grp, router=r)
            for port in range(p):
                psi = phi + (port - (p - 1) / 2) * 0.5 / max(p, 1)
                add_chip(
                    G,
                    (grp * a + r) * p + port,
                    (cx + 1.8 * math.cos(psi), cy + 1.8 * math.sin(psi)),
                    group=grp,
                    router=r,
                    port=port,
                    injection_bandwidth=injection,
                )


def _add_group_links(G: nx.Graph, shape: tuple[int, int, int], roles: dict[str, LinkSpec]) -> None:
    """Link every chip to its router and the routers of a group all-to-all."""
    a, p, g = shape
    n = a * p * g
    for grp in range(g):
        for r in range(a):
            sw = n + grp * a + r
            for port in range(p):
                roles["terminal"].add(G, (grp * a + r) * p + port, sw, role="terminal")
            for r2 in range(r + 1, a):
                roles["local"].add(G, sw, n + grp * a + r2, role="local")


def _add_global_links(
    G: nx.Graph,
    shape: tuple[int, int, int],
    links: list[tuple[int, int, int, int]],
    spec: LinkSpec,
) -> None:
    """Add the global links, parallel links between two routers as one edge with ``count``."""
    a, p, g = shape
    n = a * p * g
    pairs: Counter[tuple[int, int]] = Counter()
    for i, r, j, r2 in links:
        u, v = n + i * a + r, n + j * a + r2
        pairs[(min(u, v), max(u, v))] += 1
    for (u, v), count in sorted(pairs.items()):
        spec.add(G, u, v, count=count, role="global")
