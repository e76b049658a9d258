"""Multi-dimensional bidirectional all-reduce on tori and meshes (``allreduce`` ``torus``).

The ranks form a grid ``k_0 x ... x k_{n-1}`` (the chips' ``coord`` on a torus, mesh or
wafer, or ``dims``; see :func:`collectives.hierarchical.rank_grid`; axes of size 1 are
dropped). The vector is cut into ``2n`` equal *streams*, two per dimension ``j``:

* stream ``(j, +)`` and ``(j, -)`` visit the dimensions in the rotated order
  ``j, j+1, ..., j+n-1`` (mod ``n``); the ``+`` stream goes round every line in the
  direction of increasing coordinate, the ``-`` stream the other way;
* each stream does a ring reduce-scatter along its first dimension (every line of
  ``k`` chips leaves chip ``q`` of the line with chunk ``q`` of the stream, reduced over
  the line), then a ring reduce-scatter of that chunk along its second dimension, and so
  on; then ring all-gathers in the reverse order of dimensions restore the whole stream.

At any moment the ``2n`` streams are on ``n`` different dimensions and two directions, so
a chip sends on all ``2n`` of its links at once: the all-reduce of a TPU pod, whose DMA
engines drive all six ICI links concurrently [1]_ [2]_. This needs the chip's
``injection_bandwidth`` to reach the sum of its links (the torus/mesh default, see
:mod:`topologies.torus`); with one link's worth the streams share it.

Closed form (alpha-beta, all radices ``k``, ``p = k^n`` chips, ``N`` bytes per rank,
neighbour latency ``a``, link bandwidth ``B`` per direction, no contention): every stream
carries ``S = N / (2n)`` bytes; on its ``t``-th dimension (``t = 0..n-1``) a ring step
moves ``S k^{-(t+1)}`` bytes, and there are ``k - 1`` steps in each of the reduce-scatter
and the all-gather, so::

    T = 2 sum_{t=0}^{n-1} (k - 1) (a + wire(S k^{-(t+1)}) / B)
      = 2 n (k - 1) a + (N / n) (1 - 1/p) / B          (without packet headers)

``wire(m) = m + ceil(m / mtu) header``. The streams run on disjoint links, so the flow
and packet backends give the same time when the injection bandwidth is at least ``2nB``.
Bus bandwidth ``busbw = 2 (p-1)/p N / T`` tends to ``2 n B``: every link busy in both
directions (300 GB/s per chip on a TPU v4 cube, 6 x 50 GB/s). With mixed radices the
streams get equal bytes and the slowest sets ``T``.

On an open dimension (a mesh line) the ring's closing step runs back along the line, so
each direction of a link carries both streams' traffic and that dimension takes twice the
torus time. No reduce-scatter along an open line can be faster: its end chip has one link
along it and must send ``(k-1)/k`` of the segment over it. (An all-reduce not built from
reduce-scatters and all-gathers, e.g. pipelined chains, could be up to 2x faster there.)

References
----------
.. [1] N. P. Jouppi et al., "TPU v4: An Optically Reconfigurable Supercomputer for Machine
   Learning with Hardware Support for Embeddings", ISCA 2023 (3D torus, six ICI links per
   chip, all-reduce across the torus dimensions).
.. [2] C. Ying, S. Kumar, D. Chen, T. Wang and Y. Cheng, "Image Classification at
   Supercomputer Scale", arXiv:1811.06992, 2018 (multi-dimensional torus all-reduce on TPU
   pods: reduce-scatter along one dimension, then the next, all-gather in reverse, rings
   in both directions).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import networkx as nx

from collectives._common import BuildRequest, builder, check_ranks, no_chunks
from collectives.hierarchical import rank_grid
from collectives.schedule import Schedule, chunk_bounds
from netsim.core.errors import ConfigError
from netsim.core.validate import require_int

__all__ = ["allreduce_torus", "grid_lines", "suits"]

#: Per-chip state of a stream: element range held, and the transfers that must have
#: arrived before the chip reads it.
_Seg = dict[int, tuple[int, int]]
_Ready = dict[int, tuple[int, ...]]


def grid_lines(
    chips: Sequence[int], coords: Sequence[tuple[int, ...]], axis: int
) -> list[list[int]]:
    """The lines of a grid along ``axis``: chips grouped by their other coordinates, each
    line ordered by its coordinate along ``axis``.

    Examples
    --------
    >>> grid_lines([10, 11, 12, 13], [(0, 0), (0, 1), (1, 0), (1, 1)], 0)
    [[10, 12], [11, 13]]
    """
    groups: dict[tuple[int, ...], list[tuple[int, int]]] = defaultdict(list)
    for chip, c in zip(chips, coords, strict=True):
        groups[c[:axis] + c[axis + 1 :]].append((c[axis], chip))
    return [[chip for _, chip in sorted(g)] for _, g in sorted(groups.items())]


def suits(ranks: Sequence[int], graph: nx.Graph | None) -> bool:
    """True where ``torus`` is the all-reduce to pick (for an ``auto`` tuner): a direct
    network (no switches) whose chips have ``coord``, and two or more ranks that fill a
    grid of them (on one line, ``torus`` is the bidirectional ring).

    Examples
    --------
    >>> from topologies.torus import torus
    >>> suits(range(16), torus("4x4")), suits([0, 5], torus("4x4"))
    (True, False)
    """
    if graph is None or any(k == "switch" for _, k in graph.nodes(data="kind")):
        return False
    if not all(r in graph and "coord" in graph.nodes[r] for r in ranks):
        return False
    try:
        shape, _ = rank_grid(ranks, graph)
    except ConfigError:
        return False
    return any(k > 1 for k in shape)


def _bounds(lo: int, hi: int, k: int) -> list[int]:
    return [lo + x for x in chunk_bounds(hi - lo, k)]


def _reduce_scatter(s: Schedule, ring: Sequence[int], seg: _Seg, ready: _Ready) -> None:
    """Ring reduce-scatter of the line's common segment; ``ring[q]`` ends with chunk ``q``.

    Every send from a chip waits for ``ready`` of that chip (the earlier phases' writes
    into its segment); sums into a slice commute, so receiving needs no wait.
    """
    k = len(ring)
    b = _bounds(*seg[ring[0]], k)
    have: dict[tuple[int, int], int] = {}  # (position, chunk) -> transfer that brought it
    for step in range(k - 1):
        for q in range(k):
            o = (q - step - 1) % k
            if b[o] == b[o + 1]:
                continue
            src, nxt = ring[q], (q + 1) % k
            deps = [*ready[src], have.get((q, o))]
            have[(nxt, o)] = s.add(src, ring[nxt], "x", b[o], b[o + 1], op="sum", deps=deps)
    for q, chip in enumerate(ring):
        seg[chip] = (b[q], b[q + 1])
        if (q, q) in have:
            ready[chip] = (*ready[chip], have[(q, q)])


def _allgather(
    s: Schedule, ring: Sequence[int], parent: tuple[int, int], seg: _Seg, ready: _Ready
) -> None:
    """Ring all-gather: ``ring[q]`` holds chunk ``q`` of ``parent``; all end with ``parent``."""
    k = len(ring)
    b = _bounds(*parent, k)
    have: dict[tuple[int, int], int] = {}
    got: dict[int, list[int]] = {chip: [] for chip in ring}
    for step in range(k - 1):
        for q in range(k):
            o = (q - step) % k
            if b[o] == b[o + 1]:
                continue
            src, nxt = ring[q], (q + 1) % k
            deps = ready[src] if step == 0 else (have[(q, o)],)
            i = s.add(src, ring[nxt], "x", b[o], b[o + 1], deps=deps)
            have[(nxt, o)] = i
            got[ring[nxt]].append(i)
    for chip in ring:
        seg[chip] = parent
        ready[chip] = (*ready[chip], *got[chip])


def _stream(
    s: Schedule,
    lines: dict[int, list[list[int]]],
    axes: Sequence[int],
    lo: int,
    hi: int,
    sign: int,
) -> None:
    """One stream: reduce-scatter along ``axes`` in order, all-gather in reverse."""
    seg: _Seg = {c: (lo, hi) for c in s.ranks}
    ready: _Ready = {c: () for c in s.ranks}
    parents: list[_Seg] = []
    for a in axes:
        parents.append(dict(seg))
        for line in lines[a]:
            _reduce_scatter(s, line[::sign], seg, ready)
    for a, parent in zip(reversed(axes), reversed(parents), strict=True):
        for line in lines[a]:
            _allgather(s, line[::sign], parent[line[0]], seg, ready)


@builder("torus", options=("dims",))
def allreduce_torus(req: BuildRequest, *, dims: Any = None) -> Schedule:
    """Multi-dimensional bidirectional all-reduce (see the module docstring).

    Parameters
    ----------
    graph : networkx.Graph, optional
        Topology whose chips' ``coord`` give the grid (torus, mesh, wafer).
    chunks : int, optional
        Must be None or 1 (the ``2n`` streams already overlap).
    dims : str or sequence of int, optional
        Rank grid, e.g. ``"4x4x4"`` (row-major), instead of the chips' coordinates.

    Returns
    -------
    Schedule
        ``2n`` streams of ring reduce-scatters and all-gathers (``n`` = grid axes of size
        > 1); empty for one rank.

    Raises
    ------
    ConfigError
        No grid (see :func:`collectives.hierarchical.rank_grid`), bad ``count``,
        ``chunks`` other than 1, or an unknown option.

    Examples
    --------
    >>> s = allreduce_torus(range(4), 16, dims="2x2")
    >>> len(s.transfers)  # 4 streams x 4 phases (2 reduce-scatters, 2 all-gathers) x 2 lines x 2
    64
    """
    no_chunks("torus", req.chunks)
    ranks = check_ranks(req.ranks)
    count = require_int("count", req.count, min=0)
    itemsize = require_int("itemsize", req.itemsize, min=1)
    try:
        shape, coords = rank_grid(ranks, req.graph, dims)
    except ConfigError as exc:
        if dims is not None:
            raise
        name = req.graph.graph.get("name", "custom") if isinstance(req.graph, nx.Graph) else "none"
        raise ConfigError(
            f"dims: torus needs a rank grid: give dims like '4x4x4', or a topology whose "
            f"chips have 'coord' that the ranks fill (got topology {name})"
        ) from exc
    s = Schedule("allreduce", "torus", ranks, count, itemsize)
    axes = [a for a, k in enumerate(shape) if k > 1]
    n = len(axes)
    if n == 0:
        return s
    lines = {a: grid_lines(ranks, coords, a) for a in axes}
    b = chunk_bounds(count, 2 * n)
    for j in range(n):
        order = axes[j:] + axes[:j]
        for h, sign in enumerate((1, -1)):
            x = 2 * j + h
            _stream(s, lines, order, b[x], b[x + 1], sign)
    return s
