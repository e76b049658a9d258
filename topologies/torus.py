"""Tori and meshes: k-ary n-cubes of any dimension count, with mixed radices.

A chip sits at every point ``coord = (c_0, ..., c_{n-1})`` with ``0 <= c_d < k_d`` and is
linked to the chips one step away along each dimension. A *torus* also links the two ends
of every dimension (the wraparound link, edge attribute ``wrap=True``); a *mesh* does not.
Chips route the traffic themselves (a direct network: there are no switches).

Conventions
-----------
Rank order
    Row-major in ``coord`` with the LAST dimension fastest:
    ``rank = ((c_0 * k_1 + c_1) * k_2 + c_2) ...``, so ``dims=4x4x8`` puts chips 0..7 on one
    line along dimension 2.
Radix 2
    In a torus, a dimension of radix 2 joins each chip to its neighbour by its "+" port and
    by its "-" port (the wraparound): both physical links land between the same two chips,
    so they are ONE edge with ``count=2`` (twice one link's bandwidth); it joins adjacent
    coordinates, so it is marked ``wrap=False`` (routing and drawing treat it as a direct
    link, which it also is). Every
    chip then has ``2n`` physical links, as in every other torus, and the closed forms below
    hold for every radix. (BookSim instead treats a radix-2 ring as one link; build with
    ``open_dims`` for that.) In a mesh, or a dimension listed in ``open_dims``, it is one
    link.
Injection
    A chip injects, by default, the sum of its links' bandwidths (``2 n B`` in a torus of
    ``n`` dimensions, less at the faces of a mesh): a TPU's DMA engines drive all of its
    ICI links at once, so a collective that sends on every link at the same time (e.g. the
    ``torus`` all-reduce of :mod:`collectives.multidim`) is not capped at one link's rate
    [2]_ [3]_. Give ``injection_bandwidth`` to model a chip with a narrower interface.
Edges
    ``dim`` (the dimension they run along), ``wrap`` (True for wraparound links) and the
    usual ``bandwidth``/``latency``/``link``/``count``. Chips carry ``coord`` and
    ``latency`` (router traversal in the chip per hop, the link type's ``switch_latency``
    unless ``router_latency`` is given).

Closed forms (``N = prod k_d``; all dimensions wrapped, or none)
    Diameter in links: ``sum_d floor(k_d / 2)`` (torus), ``sum_d (k_d - 1)`` (mesh); a
    dimension in ``open_dims`` counts as in a mesh.
    Bisection when the largest radix ``k_max`` is even: cutting every link that crosses
    the middle of the longest dimension; ``2 N / k_max`` links in a torus (two cut planes,
    because of the wraparound), ``N / k_max`` in a mesh [1]_ [2]_. For an odd largest radix,
    or a torus with some ``open_dims``, ``bisection_bandwidth`` is not set and
    :mod:`topologies.metrics` estimates it.

References
----------
.. [1] W. J. Dally and B. Towles, *Principles and Practices of Interconnection Networks*,
   Morgan Kaufmann, 2004, ch. 5 (tori: k-ary n-cubes, diameter, bisection ``4k^{n-1}``
   unidirectional channels, i.e. ``2N/k`` bidirectional links, for even k).
.. [2] N. P. Jouppi et al., "TPU v4: An Optically Reconfigurable Supercomputer for Machine
   Learning with Hardware Support for Embeddings", ISCA 2023: 4x4x4 cubes, 3D torus pods
   of 4096 chips, six ICI links per chip.
.. [3] Google Cloud, "TPU v4" (docs.cloud.google.com/tpu/docs/v4): all-reduce bandwidth
   per pod 1.1 PB/s (= 269 GB/s per chip of 4096, close to six links of 45-50 GB/s
   driven at once), bisection bandwidth per pod 24 TB/s; "TPU v5p"
   (docs.cloud.google.com/tpu/docs/v5p): bidirectional ICI bandwidth per chip 1200 GBps
   (an earlier version of the page: interchip interconnect 4800 Gbps per chip).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import networkx as nx

from netsim.core.errors import ConfigError
from netsim.core.linktypes import link_type
from topologies.graph import add_chip, add_link, finish, set_injection
from topologies.limits import MAX_CHIPS, MAX_GRID_CHIPS, check_chips
from topologies.options import opt_bandwidth, opt_time, require_bool, require_link

__all__ = ["MAX_CHIPS", "PARAMETER_KINDS", "PRESETS", "grid_pos", "mesh", "parse_dims", "torus"]

#: Kind of every generator parameter (:data:`topologies.options.KINDS`): how the
#: registry converts a spec value for it.
PARAMETER_KINDS: dict[str, dict[str, str]] = {
    "torus": {
        "dims": "str",
        "wrap": "bool",
        "open_dims": "str",
        "link": "str",
        "bandwidth": "bandwidth",
        "latency": "time",
        "router_latency": "time",
        "injection_bandwidth": "bandwidth",
    },
    "mesh": {
        "dims": "str",
        "link": "str",
        "bandwidth": "bandwidth",
        "latency": "time",
        "router_latency": "time",
        "injection_bandwidth": "bandwidth",
    },
}


PRESETS: dict[str, dict[str, Any]] = {
    "tpu-v4-cube": {
        "func": "torus",
        "params": {"dims": "4x4x4", "link": "ici"},
        "source": (
            "one TPU v4 cube: 64 chips in a 4x4x4 block (one rack), six ICI links per chip, "
            "wraparound closed through the optical circuit switches (Jouppi et al., 'TPU v4: "
            "An Optically Reconfigurable Supercomputer for Machine Learning', ISCA 2023; Google "
            "Cloud TPU v4 documentation); ICI 50 GB/s per link per direction (netsim.core.linktypes "
            "'ici'); injection: all six links at once, 300 GB/s per chip per direction (Google "
            "Cloud documents an all-reduce bandwidth of 1.1 PB/s per 4096-chip pod = 269 GB/s "
            "per chip)"
        ),
        "description": "Google TPU v4 cube: 4x4x4 3D torus of 64 chips",
    },
    "tpu-v4-pod": {
        "func": "torus",
        "params": {"dims": "16x16x16", "link": "ici"},
        "source": (
            "a full TPU v4 pod: 4096 chips (64 cubes) as a 16x16x16 3D torus (Jouppi et al., "
            "ISCA 2023). Closed-form bisection 2*4096/16 = 512 links x 50 GB/s = 25.6 TB/s; "
            "Google Cloud documents 24 TB/s per pod (TPU v4 system architecture page)"
        ),
        "description": "Google TPU v4 pod: 16x16x16 3D torus of 4096 chips",
    },
    "tpu-v5p-cube": {
        "func": "torus",
        "params": {"dims": "4x4x4", "link": "ici", "bandwidth": 100e9},
        "source": (
            "one TPU v5p cube: 4x4x4 chips; 'All 4x4x4 and larger slices have full 3D torus'; "
            "bidirectional ICI bandwidth 1200 GBps per chip (Google Cloud TPU v5p documentation; "
            "an earlier version of the page: 4800 Gbps per chip), i.e. 600 GB/s per direction "
            "over six links = 100 GB/s per link per direction; injection: all six links at "
            "once, 600 GB/s per chip per direction"
        ),
        "description": "Google TPU v5p cube: 4x4x4 3D torus, 100 GB/s ICI links",
    },
    "torus-6d": {
        "func": "torus",
        "params": {"dims": "2x2x2x2x2x2", "link": "ici"},
        "source": (
            "a generic 6D torus of radix 2 (64 chips, binary-hypercube shape; each radix-2 ring "
            "is one edge of two links, see the module docstring); k-ary n-cube definition "
            "from Dally & Towles, Principles and Practices of Interconnection Networks, 2004, "
            "ch. 5; links as TPU v4 ICI (netsim.core.linktypes 'ici')"
        ),
        "description": "6D torus 2x2x2x2x2x2 (64 chips, 12 links per chip)",
    },
    "tofu-6d": {
        "func": "torus",
        "params": {
            "dims": "4x4x4x2x3x2",
            "open_dims": "3x5",
            "link": "ici",
            "bandwidth": 5e9,
        },
        "source": (
            "Fujitsu Tofu 6D mesh/torus (K computer): axes XYZabc, the abc unit is 2x3x2 with "
            "a and c meshes of two nodes and b a ring of three, XYZ tori; full-duplex links "
            "of 5 GB/s per direction (Ajima, Sumimoto & Shimizu, 'Tofu: A 6D Mesh/Torus "
            "Interconnect for Exascale Computers', IEEE Computer 42(11), 2009; Ajima et al., "
            "'The Tofu Interconnect', IEEE Micro 32(1), 2012). XYZ scaled down to 4x4x4 (768 "
            "nodes); link latency and packet format of 'ici' assumed"
        ),
        "description": "Tofu-like 6D mesh/torus XYZabc = 4x4x4x2x3x2 (768 nodes, 5 GB/s links)",
    },
    "mesh-8x8": {
        "func": "mesh",
        "params": {"dims": "8x8", "link": "ici"},
        "source": (
            "a 2D mesh of 64 chips with TPU v4 ICI links (50 GB/s per direction; Jouppi et "
            "al., ISCA 2023): Google Cloud TPU v4 slices smaller than a cube are meshes "
            "(no wraparound) in the dimensions below 4 (TPU v4 documentation)"
        ),
        "description": "8x8 2D mesh of 64 chips with ICI links",
    },
}

_DIMS_RE = re.compile(r"^\s*\d+(\s*[xX*]\s*\d+)*\s*$")


# --------------------------------------------------------------------------- validation


def parse_dims(
    value: Any, name: str = "dims", *, ndim: int | None = None, min_radix: int = 2
) -> tuple[int, ...]:
    """Return radices from ``"4x4x8"``, ``"8"``, ``8`` or a sequence of ints.

    Parameters
    ----------
    value : str, int or sequence of int
        The radices; every one must be ``>= min_radix``.
    name : str
        Parameter name for error messages.
    ndim : int, optional
        Required number of dimensions.
    min_radix : int
        Smallest radix allowed (2 for tori and meshes).

    Raises
    ------
    ConfigError
        Not radices, a radix below 2, or the wrong number of dimensions.

    Examples
    --------
    >>> parse_dims("4x4x8")
    (4, 4, 8)
    """
    if isinstance(value, bool):
        raise ConfigError(f"{name}: expected radices such as 4x4x8, got {value!r}")
    if isinstance(value, int):
        dims: tuple[int, ...] = (value,)
    elif isinstance(value, str):
        if not _DIMS_RE.match(value):
            raise ConfigError(f"{name}: expected radices such as 4x4x8, got {value!r}")
        dims = tuple(int(p) for p in re.split(r"[xX*]", value))
    elif (
        isinstance(value, Sequence)
        and value
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        dims = tuple(value)
    else:
        raise ConfigError(f"{name}: expected radices such as 4x4x8, got {value!r}")
    if any(k < min_radix for k in dims):
        raise ConfigError(f"{name}: each radix must be >= {min_radix}, got {min(dims)}")
    if ndim is not None and len(dims) != ndim:
        raise ConfigError(f"{name}: expected {ndim} radices, got {value!r}")
    return dims


def _open_dims(value: Any, ndim: int) -> tuple[int, ...]:
    if value is None or value == "" or value == ():
        return ()
    if isinstance(value, str):
        parts = [p for p in re.split(r"[x+\s]", value.strip()) if p]
        if not all(p.isdigit() for p in parts):
            raise ConfigError(
                f"open_dims: expected dimension indices such as 3x5 (or 3+5), got {value!r}"
            )
        idx = [int(p) for p in parts]
    elif isinstance(value, Sequence) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        idx = list(value)
    else:
        raise ConfigError(f"open_dims: expected dimension indices such as 3x5, got {value!r}")
    if any(not 0 <= d < ndim for d in idx) or len(set(idx)) != len(idx):
        raise ConfigError(
            f"open_dims: each index must be distinct and in [0, {ndim - 1}], got {value!r}"
        )
    return tuple(sorted(idx))


def _check_size(dims: tuple[int, ...]) -> int:
    n = math.prod(dims)
    return check_chips("dims", n, f"{'x'.join(map(str, dims))} = {n}", MAX_GRID_CHIPS)


# --------------------------------------------------------------------------- structure


def grid_pos(coord: Sequence[int], dims: Sequence[int]) -> tuple[float, float]:
    """Drawing position of ``coord``: even dimensions along x, odd along y, nested blocks.

    Dimension 0 is x, 1 is y; dimension 2 repeats the 2D picture along x with a gap of one
    cell, dimension 3 along y, and so on.
    """
    x = y = 0.0
    sx = sy = 1.0
    for d, (c, k) in enumerate(zip(coord, dims, strict=True)):
        if d % 2 == 0:
            x += c * sx
            sx *= k + 1
        else:
            y += c * sy
            sy *= k + 1
    return (x, y)


def _rank(coord: Sequence[int], dims: Sequence[int]) -> int:
    r = 0
    for c, k in zip(coord, dims, strict=True):
        r = r * k + c
    return r


def _coords(dims: Sequence[int]) -> list[tuple[int, ...]]:
    """All coordinates in rank order (last dimension fastest)."""
    out: list[tuple[int, ...]] = [()]
    for k in dims:
        out = [(*c, i) for c in out for i in range(k)]
    return out


def _build_grid(
    dims: tuple[int, ...],
    wrapped: tuple[bool, ...],
    *,
    link: str,
    bandwidth: float | None,
    latency: float | None,
    router_latency: float | None,
    injection_bandwidth: float | None,
) -> nx.Graph:
    lt = link_type(link)
    bw = lt.bandwidth if bandwidth is None else bandwidth
    rl = lt.switch_latency if router_latency is None else router_latency
    G = nx.Graph()
    coords = _coords(dims)
    for r, c in enumerate(coords):
        add_chip(G, r, grid_pos(c, dims), coord=c, latency=rl)
    for r, c in enumerate(coords):
        for d, k in enumerate(dims):
            if c[d] + 1 < k:
                nb = list(c)
                nb[d] += 1
                two = wrapped[d] and k == 2
                add_link(
                    G,
                    r,
                    _rank(nb, dims),
                    link=link,
                    bandwidth=bw,
                    latency=latency,
                    count=2 if two else 1,
                    dim=d,
                    wrap=False,
                )
            elif wrapped[d] and k > 2:
                nb = list(c)
                nb[d] = 0
                add_link(
                    G,
                    r,
                    _rank(nb, dims),
                    link=link,
                    bandwidth=bw,
                    latency=latency,
                    dim=d,
                    wrap=True,
                )
    set_injection(G, injection_bandwidth)
    return G


def _closed_forms(G: nx.Graph, dims: tuple[int, ...], wrapped: tuple[bool, ...], bw: float) -> None:
    n = math.prod(dims)
    G.graph["diameter"] = sum(k // 2 if w else k - 1 for k, w in zip(dims, wrapped, strict=True))
    kmax = max(dims)
    if kmax % 2 == 0 and (all(wrapped) or not any(wrapped)):
        links = (2 if all(wrapped) else 1) * n // kmax
        G.graph["bisection_links"] = links
        G.graph["bisection_bandwidth"] = links * bw


# --------------------------------------------------------------------------- generators


def torus(
    dims: str | Sequence[int],
    *,
    wrap: bool = True,
    open_dims: str | Sequence[int] | None = None,
    link: str = "ici",
    bandwidth: float | None = None,
    latency: float | None = None,
    router_latency: float | None = None,
    injection_bandwidth: float | None = None,
) -> nx.Graph:
    """k-ary n-cube torus with radices ``dims`` (any number of dimensions, mixed radices).

    Chips only (a direct network). Rank order, the radix-2 convention (one edge of
    ``count=2``) and the closed forms are in the module docstring: diameter
    ``sum floor(k_d/2)`` links; bisection ``2N/k_max`` links when ``k_max`` is even.

    Parameters
    ----------
    dims : str or sequence of int
        Radices, e.g. ``"4x4x8"`` or ``(4, 4, 8)``; each ``>= 2``.
    wrap : bool
        Wraparound links (``False`` builds a mesh; see also :func:`mesh`).
    open_dims : str or sequence of int, optional
        Dimensions WITHOUT wraparound in a torus, e.g. ``"3x5"`` (indices joined by ``x``
        or ``+``): a mixed mesh/torus such as Tofu's ``abc`` unit.
    link : str
        Link type of :mod:`netsim.core.linktypes` (default ``ici``).
    bandwidth : float, optional
        Bytes/s per direction of one link (default: the link type's).
    latency : float, optional
        Link latency, seconds (default: the link type's).
    router_latency : float, optional
        Seconds a packet spends in the router of each chip it passes through (chip
        ``latency``; default the link type's ``switch_latency``).
    injection_bandwidth : float, optional
        Bytes/s a chip injects (default: the sum of its links' bandwidths, ``2 n`` links in a
        torus, fewer at the faces of a mesh; see *Injection* in the module docstring).

    Returns
    -------
    networkx.Graph
        ``N = prod(dims)`` chips. Edges per dimension: ``N`` if wrapped with radix > 2,
        ``N / 2`` (each ``count=2``) if wrapped with radix 2, ``N (k_d - 1) / k_d`` if open.
        Graph ``diameter`` holds the closed form in links.

    Raises
    ------
    ConfigError
        Bad ``dims`` (``dims: each radix must be >= 2, got 1``), more than
        :data:`topologies.limits.MAX_GRID_CHIPS` chips, or a bad option.

    Examples
    --------
    >>> G = torus("4x4")
    >>> G.graph["chips"], G.number_of_edges(), G.graph["bisection_links"]
    (16, 32, 8)
    >>> G.nodes[5]["coord"]
    (1, 1)
    """
    dims = parse_dims(dims)
    wrap = require_bool("wrap", wrap)
    opened = _open_dims(open_dims, len(dims))
    if opened and not wrap:
        raise ConfigError(f"open_dims: only applies with wrap=true, got {open_dims!r}")
    return _grid(
        "torus", dims, wrap, opened, link, bandwidth, latency, router_latency, injection_bandwidth
    )


def mesh(
    dims: str | Sequence[int],
    *,
    link: str = "ici",
    bandwidth: float | None = None,
    latency: float | None = None,
    router_latency: float | None = None,
    injection_bandwidth: float | None = None,
) -> nx.Graph:
    """k-ary n-mesh with radices ``dims``: :func:`torus` without wraparound links.

    Family ``"mesh"``. Closed forms: ``sum_d N (k_d - 1) / k_d`` links, diameter
    ``sum_d (k_d - 1)`` links, bisection ``N / k_max`` links when ``k_max`` is even.
    Parameters as in :func:`torus`.

    Examples
    --------
    >>> G = mesh("4x4")
    >>> G.number_of_edges(), G.graph["diameter"], G.graph["bisection_links"]
    (24, 6, 4)
    """
    dims = parse_dims(dims)
    return _grid(
        "mesh", dims, False, (), link, bandwidth, latency, router_latency, injection_bandwidth
    )


def _grid(
    family: str,
    dims: tuple[int, ...],
    wrap: bool,
    opened: tuple[int, ...],
    link: Any,
    bandwidth: Any,
    latency: Any,
    router_latency: Any,
    injection_bandwidth: Any,
) -> nx.Graph:
    link = require_link("link", link)
    bandwidth = opt_bandwidth("bandwidth", bandwidth)
    latency = opt_time("latency", latency)
    router_latency = opt_time("router_latency", router_latency)
    injection_bandwidth = opt_bandwidth("injection_bandwidth", injection_bandwidth)
    _check_size(dims)
    wrapped = tuple(wrap and d not in opened for d in range(len(dims)))
    G = _build_grid(
        dims,
        wrapped,
        link=link,
        bandwidth=bandwidth,
        latency=latency,
        router_latency=router_latency,
        injection_bandwidth=injection_bandwidth,
    )
    params: dict[str, Any] = {"dims": dims}
    if family == "torus":
        params["wrap"] = wrap
        params["open_dims"] = opened or None
    params.update(
        link=link,
        bandwidth=bandwidth,
        latency=latency,
        router_latency=router_latency,
        injection_bandwidth=injection_bandwidth,
    )
    bw = link_type(link).bandwidth if bandwidth is None else bandwidth
    _closed_forms(G, dims, wrapped, bw)
    return finish(G, family, params)
