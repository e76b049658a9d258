"""Wafer-scale meshes: a 2D mesh of tiles grouped into dies on one wafer.

A wafer holds ``dies = Dx x Dy`` dies (reticle fields), each a ``tiles = Tx x Ty`` block of
*tiles*. A tile is the compute endpoint of the model (a chip of the attribute contract):
one core of a Cerebras wafer, or a block of cores when the model is coarse-grained (see the
presets), or one whole die with ``tiles=1x1``. Tiles form one global
``X x Y = (Dx Tx) x (Dy Ty)`` mesh (no wraparound). Links between two tiles of the same die
are of type ``link`` (default ``wafer``) with ``die_bandwidth``/``die_latency``; links that
cross a die boundary (scribe line) are of type ``cross_link`` (default ``wafer-die``) with
``cross_bandwidth``/``cross_latency`` [1]_ [2]_.

Conventions
-----------
Rank order
    Row-major in the global ``coord = (x, y)``, ``y`` fastest: ``rank = x * Y + y``.
    Chips also carry ``die`` (die index ``dx * Dy + dy``), ``die_coord`` ``(dx, dy)``,
    ``tile`` (coordinate inside the die) and ``latency`` (router traversal per hop).
Injection
    A tile injects, by default, the sum of its links' bandwidths (up to four; fewer at the
    edges of the wafer), as a chip of :func:`topologies.torus.mesh` does.
Edges
    ``dim`` (0 along x, 1 along y), ``wrap=False`` (dimension-order routing reads both),
    ``cross`` (True for die-crossing links) and ``bandwidth``/``latency``/``link``/``count``.
Closed forms
    Diameter ``X + Y - 2`` links. Bisection: any balanced cut of an ``X x Y`` mesh whose
    longer side ``L`` is even cuts at least ``N / L`` links (as for :func:`topologies.torus.
    mesh`), each of at least the smaller of the two link bandwidths ``b_min``. When the
    straight cut across the middle of the longer side (either side when ``X == Y``) uses
    only links of bandwidth ``b_min`` (it falls on a die boundary and cross links are the
    slower ones, or inside dies and die links are the slower ones, or both kinds are
    equal), it attains the bound and ``bisection_bandwidth = (N / L) * b_min``. Otherwise it
    is not set and :mod:`topologies.metrics` estimates it.

References
----------
.. [1] S. Lie, "Cerebras Architecture Deep Dive: First Look Inside the HW/SW Co-Design for
   Deep Learning", Hot Chips 34, 2022; WSE-1 at Hot Chips 31, 2019: one uniform 2D mesh of
   cores extended across the scribe lines between the dies of the wafer.
.. [2] E. Talpes et al., "DOJO: The Microarchitecture of Tesla's Exa-Scale Computer", Hot
   Chips 34, 2022; Tesla AI Day 2021: D1 die of 354 nodes, 10 TB/s per direction on-chip,
   4 TB/s per edge off-chip; training tile of 5 x 5 D1 dies, 36 TB/s off-tile.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import networkx as nx

from netsim.core.errors import ConfigError
from netsim.core.linktypes import link_type
from topologies.graph import add_chip, add_link, finish, set_injection
from topologies.options import opt_bandwidth, opt_time, require_link
from topologies.torus import MAX_CHIPS, parse_dims

__all__ = ["PARAMETER_KINDS", "PRESETS", "wafer"]

#: Kind of every generator parameter (:data:`topologies.options.KINDS`): how the
#: registry converts a spec value for it.
PARAMETER_KINDS: dict[str, dict[str, str]] = {
    "wafer": {
        "dies": "str",
        "tiles": "str",
        "link": "str",
        "die_bandwidth": "bandwidth",
        "die_latency": "time",
        "cross_link": "str",
        "cross_bandwidth": "bandwidth",
        "cross_latency": "time",
        "router_latency": "time",
        "injection_bandwidth": "bandwidth",
    },
}

# Cerebras WSE-3: 214 Pb/s fabric over 900,000 cores, two mesh links per core, two
# directions per link -> 214e15 / 8 / (900e3 * 4) = 7.43 GB/s per core link per direction.
# The preset models the 84 dies as 2 x 2 tiles each; a tile is a block of about
# 900e3 / 336 = 2679 cores, 52 x 52, so 52 core links join two neighbouring tiles.
_WSE_CORE_LINK = 214e15 / 8 / (900e3 * 4)
_WSE_BLOCK = 52

PRESETS: dict[str, dict[str, Any]] = {
    "cerebras-wse3-like": {
        "func": "wafer",
        "params": {
            "dies": "7x12",
            "tiles": "2x2",
            "die_bandwidth": round(_WSE_BLOCK * _WSE_CORE_LINK, -6),
            "cross_bandwidth": round(_WSE_BLOCK * _WSE_CORE_LINK, -6),
            "die_latency": 52e-9,
            "cross_latency": 55e-9,
            "router_latency": 0.0,
        },
        "source": (
            "Cerebras WSE-3: 900,000 cores, 214 Pb/s fabric bandwidth (Cerebras WSE-3 "
            "announcement, March 2024); one uniform 2D mesh extended across the scribe lines, "
            "so die-crossing links are as fast as on-die ones (Lie, Hot Chips 2019/2022); 84 "
            "dies in a 7 x 12 array (WSE-1, Hot Chips 31, 2019; assumed unchanged). SCALED: each "
            "die is modelled as 2 x 2 tiles, each tile a block of ~2679 cores (52 x 52), and "
            "the 52 core links between two blocks are one edge: 52 x 7.43 GB/s = 386 GB/s per "
            "direction, where 7.43 GB/s = 214 Pb/s / (900,000 cores x 2 links x 2 directions) "
            "(assumes the fabric figure counts core-to-core links only). Latency assumed: "
            "~1 ns per core hop (linktypes 'wafer'), 52 hops per tile link, +3 ns across a die "
            "boundary"
        ),
        "description": "Cerebras-WSE-3-like wafer: 7x12 dies of 2x2 tiles (336 tiles)",
    },
    "dojo-tile-like": {
        "func": "wafer",
        "params": {
            "dies": "5x5",
            "tiles": "2x2",
            "die_bandwidth": 5e12,
            "cross_bandwidth": 2e12,
        },
        "source": (
            "Tesla Dojo training tile: 25 D1 dies in a 5 x 5 array; D1 on-chip bandwidth "
            "10 TB/s per direction and off-chip 4 TB/s per die edge (Talpes et al., 'DOJO: "
            "The Microarchitecture of Tesla's Exa-Scale Computer', Hot Chips 34, 2022; Tesla "
            "AI Day 2021). SCALED: each D1 (354 nodes) is modelled as 2 x 2 tiles, so the die "
            "bisection crosses 2 tile links of 5 TB/s (= 10 TB/s) and each die edge 2 "
            "cross links of 2 TB/s (= 4 TB/s). Latencies: link-type defaults (assumed)"
        ),
        "description": "Tesla-Dojo-like training tile: 5x5 D1 dies of 2x2 tiles (100 tiles)",
    },
}


# --------------------------------------------------------------------------- validation


# --------------------------------------------------------------------------- generator


def wafer(
    dies: str | Sequence[int],
    tiles: str | Sequence[int] = "1x1",
    *,
    link: str = "wafer",
    die_bandwidth: float | None = None,
    die_latency: float | None = None,
    cross_link: str = "wafer-die",
    cross_bandwidth: float | None = None,
    cross_latency: float | None = None,
    router_latency: float | None = None,
    injection_bandwidth: float | None = None,
) -> nx.Graph:
    """Wafer-scale 2D mesh of ``dies`` dies of ``tiles`` tiles each (chips are tiles).

    See the module docstring for rank order, attributes and closed forms.

    Parameters
    ----------
    dies : str or sequence of int
        Dies along x and y, e.g. ``"7x12"``; each ``>= 1``.
    tiles : str or sequence of int
        Tiles per die along x and y, e.g. ``"2x2"``; each ``>= 1``. At least 2 tiles in all.
    link : str
        Link type of links inside a die (default ``wafer``).
    die_bandwidth, die_latency : float, optional
        Bytes/s per direction and seconds of one intra-die link (default: ``link``'s).
    cross_link : str
        Link type of die-crossing links (default ``wafer-die``).
    cross_bandwidth, cross_latency : float, optional
        Bytes/s per direction and seconds of one die-crossing link (default:
        ``cross_link``'s).
    router_latency : float, optional
        Seconds in the router of every tile a packet passes (chip ``latency``; default the
        ``switch_latency`` of ``link``).
    injection_bandwidth : float, optional
        Bytes/s a tile injects; default the sum of its attached links (a tile's router
        feeds all its mesh links at once, as in :func:`topologies.torus.mesh`), so tiles at
        the wafer's edge inject less.

    Returns
    -------
    networkx.Graph
        ``N = X Y`` chips and ``X (Y - 1) + Y (X - 1)`` links, of which
        ``(Dx - 1) Y + (Dy - 1) X`` cross die boundaries. Graph ``diameter`` is
        ``X + Y - 2``.

    Raises
    ------
    ConfigError
        Bad shapes, fewer than 2 or more than :data:`topologies.torus.MAX_CHIPS` tiles,
        or a bad option.

    Examples
    --------
    >>> G = wafer("2x2", "2x2")
    >>> G.graph["chips"], G.number_of_edges()
    (16, 24)
    >>> sorted({d["link"] for *_, d in G.edges(data=True)})
    ['wafer', 'wafer-die']
    """
    dies = parse_dims(dies, "dies", ndim=2, min_radix=1)
    tiles = parse_dims(tiles, "tiles", ndim=2, min_radix=1)
    link = require_link("link", link)
    cross_link = require_link("cross_link", cross_link)
    die_bandwidth = opt_bandwidth("die_bandwidth", die_bandwidth)
    die_latency = opt_time("die_latency", die_latency)
    cross_bandwidth = opt_bandwidth("cross_bandwidth", cross_bandwidth)
    cross_latency = opt_time("cross_latency", cross_latency)
    router_latency = opt_time("router_latency", router_latency)
    injection_bandwidth = opt_bandwidth("injection_bandwidth", injection_bandwidth)
    X, Y = dies[0] * tiles[0], dies[1] * tiles[1]
    n = X * Y
    if not 2 <= n <= MAX_CHIPS:
        raise ConfigError(
            f"dies, tiles: the wafer must have 2 to {MAX_CHIPS} tiles, got "
            f"{'x'.join(map(str, dies))} dies of {'x'.join(map(str, tiles))} = {n}"
        )
    params = {
        "dies": dies,
        "tiles": tiles,
        "link": link,
        "die_bandwidth": die_bandwidth,
        "die_latency": die_latency,
        "cross_link": cross_link,
        "cross_bandwidth": cross_bandwidth,
        "cross_latency": cross_latency,
        "router_latency": router_latency,
        "injection_bandwidth": injection_bandwidth,
    }
    lt, ct = link_type(link), link_type(cross_link)
    b_die = lt.bandwidth if die_bandwidth is None else die_bandwidth
    b_cross = ct.bandwidth if cross_bandwidth is None else cross_bandwidth
    rl = lt.switch_latency if router_latency is None else router_latency
    G = nx.Graph()
    _add_tiles(G, dies, tiles, rl)
    die_opts = {"link": link, "bandwidth": b_die, "latency": die_latency, "cross": False}
    cross_opts = {"link": cross_link, "bandwidth": b_cross, "latency": cross_latency, "cross": True}
    _add_mesh_links(G, (X, Y), tiles, die_opts, cross_opts)
    set_injection(G, injection_bandwidth)
    G.graph["diameter"] = X + Y - 2
    _bisection(G, dies, tiles, b_die, b_cross)
    return finish(G, "wafer", params)


def _add_tiles(G: nx.Graph, dies: tuple[int, int], tiles: tuple[int, int], rl: float) -> None:
    """Add every tile as a chip (rank ``x * Y + y``) with its die and router latency."""
    X, Y = dies[0] * tiles[0], dies[1] * tiles[1]
    for x in range(X):
        for y in range(Y):
            dx, dy = x // tiles[0], y // tiles[1]
            add_chip(
                G,
                x * Y + y,
                (float(x), float(y)),
                coord=(x, y),
                die=dx * dies[1] + dy,
                die_coord=(dx, dy),
                tile=(x % tiles[0], y % tiles[1]),
                latency=rl,
            )


def _add_mesh_links(
    G: nx.Graph,
    shape: tuple[int, int],
    tiles: tuple[int, int],
    die_opts: dict[str, Any],
    cross_opts: dict[str, Any],
) -> None:
    """Link every tile to its +x and +y neighbours; a link crossing a die edge takes
    ``cross_opts``, one inside a die ``die_opts``."""
    X, Y = shape
    for x in range(X):
        for y in range(Y):
            r = x * Y + y
            if x + 1 < X:
                opts = cross_opts if (x + 1) % tiles[0] == 0 else die_opts
                add_link(G, r, r + Y, dim=0, wrap=False, **opts)
            if y + 1 < Y:
                opts = cross_opts if (y + 1) % tiles[1] == 0 else die_opts
                add_link(G, r, r + 1, dim=1, wrap=False, **opts)


def _bisection(
    G: nx.Graph,
    dies: tuple[int, int],
    tiles: tuple[int, int],
    b_die: float,
    b_cross: float,
) -> None:
    """Set the closed-form bisection where the straight middle cut is provably minimal."""
    X, Y = dies[0] * tiles[0], dies[1] * tiles[1]
    longest = max(X, Y)
    if longest % 2:
        return
    present = []
    if tiles != (1, 1):
        present.append(b_die)
    if dies != (1, 1):
        present.append(b_cross)
    b_min = min(present)
    for extent, t, other in ((X, tiles[0], Y), (Y, tiles[1], X)):
        if extent != longest:
            continue
        b = b_cross if (extent // 2) % t == 0 else b_die
        if b == b_min:
            G.graph["bisection_links"] = other
            G.graph["bisection_bandwidth"] = other * b_min
            return
