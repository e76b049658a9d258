"""Hierarchical collectives: multi-dimensional all-reduce and all-to-all via a scale-up domain.

Multi-dimensional all-reduce (``allreduce`` ``hierarchical``)
    The ranks form a grid ``d_0 x d_1 x ... x d_{k-1}``. Dimensions are processed innermost
    first (the last, fastest-varying one: the GPUs of a node in ``"4x8"`` = 4 nodes x 8
    GPUs): a ring reduce-scatter along the lines of that dimension leaves rank ``j`` of each
    line with chunk ``j``; the ranks holding chunk ``j`` (a sub-grid over the other
    dimensions) all-reduce it recursively; a ring all-gather along the lines restores the
    full vector. Each dimension's links carry ``2(d-1)/d`` of a shrinking share of the
    data, so the slow outer dimension sees only ``1/d_inner`` of it: the 2D/multi-dimensional
    hierarchical all-reduce of Ueno & Yokota [1]_ and of ASTRA-sim's multi-dimensional
    collectives [2]_ (and of NCCL's intra-node then inter-node phases).

The grid comes from, in this order: ``dims`` (``"8x4"`` or a sequence: the rank list read
as a row-major grid); the chips' ``coord`` (torus, mesh, wafer families); the chips'
``node`` attribute (hierarchical family: grid ``nodes x local ranks``). Otherwise
:class:`ConfigError`.

All-to-all via the scale-up domain (``alltoall`` ``hierarchical``)
    MoE dispatch on a two-level system (grid ``nodes x local``): data from GPU ``(n, a)`` to
    GPU ``(m, b)`` of another node first crosses the scale-up domain to the *rail* chip
    ``(n, b)`` (stage 1), where everything bound for local rank ``b`` of node ``m`` is
    aggregated into one contiguous block; stage 2 sends that block over the rail to
    ``(m, b)`` in one message (plus the rail chip's own segment), landing in place in the
    receive buffer, so the third stage, the scatter inside the destination node, is empty.
    This is NCCL's PXN [3]_: every NIC sends few large messages over its own rail, and the
    fan-in of many small messages happens on NVLink. Pairs inside a node exchange directly.

Pipelining: ``chunks`` splits the all-reduce vector into pieces that run the whole
algorithm each, interleaved so successive pieces follow one another on each link. Every
dependency is derived from buffer hazards (read-after-write, write-after-read,
write-after-write; concurrent sums into a slice commute), so any emission order is correct.

References
----------
.. [1] Y. Ueno and R. Yokota, "Exhaustive Study of Hierarchical AllReduce Patterns for
   Large Messages Between GPUs", CCGRID 2019.
.. [2] W. Won et al., "ASTRA-sim2.0: Modeling Hierarchical Networks and Disaggregated
   Systems for Large-model Training at Scale", ISPASS 2023 (multi-dimensional collectives).
.. [3] NVIDIA NCCL 2.12 release notes and S. Jeaugey, "Doubling all2all Performance with
   NVIDIA Collective Communication Library 2.12", NVIDIA developer blog, 2022 (PXN: PCI x
   NVLink, sending through the GPU on the destination's rail).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from itertools import zip_longest
from typing import Any

import networkx as nx
import numpy as np

from collectives._common import BuildRequest, builder, check_ranks
from collectives.direct import alltoall_matrix
from collectives.schedule import Schedule, chunk_bounds
from netsim.core.errors import ConfigError
from netsim.core.validate import require_int

__all__ = [
    "allgather_ring_line",
    "allreduce_hierarchical",
    "alltoall_hierarchical",
    "parse_dims",
    "rank_grid",
    "reduce_scatter_ring_line",
]

#: A transfer to emit: (src, dst, src_buf, lo, hi, dst_buf, dst_lo, op).
Op = tuple[int, int, str, int, int, str, int, str]


# --------------------------------------------------------------------------- dependencies


class _Tracker:
    """Add transfers to a schedule with dependencies derived from buffer hazards.

    A transfer depends on the earlier transfers that wrote what it reads (RAW), that read or
    wrote what it writes (WAR, WAW; two sums into a slice commute and stay unordered), and
    on the previous transfer between the same two nodes (a link is a FIFO).
    """

    def __init__(self, s: Schedule) -> None:
        self.s = s
        self.writes: dict[tuple[int, str], list[tuple[int, int, int, str]]] = defaultdict(list)
        self.reads: dict[tuple[int, str], list[tuple[int, int, int]]] = defaultdict(list)
        self.link: dict[tuple[int, int], int] = {}

    def add(self, op: Op) -> int | None:
        src, dst, sbuf, lo, hi, dbuf, dlo, kind = op
        if hi <= lo:
            return None
        dhi = dlo + hi - lo
        deps = {i for a, b, i, _ in self.writes[(src, sbuf)] if a < hi and lo < b}
        deps.update(
            i
            for a, b, i, k in self.writes[(dst, dbuf)]
            if a < dhi and dlo < b and not (kind == k == "sum")
        )
        deps.update(i for a, b, i in self.reads[(dst, dbuf)] if a < dhi and dlo < b)
        if (src, dst) in self.link:
            deps.add(self.link[(src, dst)])
        i = self.s.add(src, dst, sbuf, lo, hi, dbuf, dlo, op=kind, deps=sorted(deps))
        self.link[(src, dst)] = i
        self.reads[(src, sbuf)].append((lo, hi, i))
        if kind == "copy":  # everything this write covers is now ordered before it
            key = (dst, dbuf)
            self.writes[key] = [w for w in self.writes[key] if not (dlo <= w[0] and w[1] <= dhi)]
            self.reads[key] = [r for r in self.reads[key] if not (dlo <= r[0] and r[1] <= dhi)]
        self.writes[(dst, dbuf)].append((dlo, dhi, i, kind))
        return i


def _emit_interleaved(tr: _Tracker, pieces: Sequence[Sequence[Op]]) -> None:
    """Emit several independent op lists round-robin (each list's order is kept)."""
    for ops in zip_longest(*pieces):
        for op in ops:
            if op is not None:
                tr.add(op)


# --------------------------------------------------------------------------- rings


def reduce_scatter_ring_line(line: Sequence[int], lo: int, hi: int, buf: str = "x") -> list[Op]:
    """Ring reduce-scatter of ``buf[lo:hi]`` over ``line``: ``line[k]`` ends with chunk ``k``.

    ``n - 1`` steps; at step ``s`` rank ``k`` adds chunk ``(k - s - 1) mod n`` into its
    successor. Chunks follow :func:`~collectives.schedule.chunk_bounds` over ``[lo, hi)``.
    """
    n = len(line)
    b = [lo + x for x in chunk_bounds(hi - lo, n)]
    ops: list[Op] = []
    for s in range(n - 1):
        for k in range(n):
            c = (k - s - 1) % n
            ops.append((line[k], line[(k + 1) % n], buf, b[c], b[c + 1], buf, b[c], "sum"))
    return ops


def allgather_ring_line(line: Sequence[int], lo: int, hi: int, buf: str = "x") -> list[Op]:
    """Ring all-gather of ``buf[lo:hi]`` over ``line``, ``line[k]`` starting with chunk ``k``."""
    n = len(line)
    b = [lo + x for x in chunk_bounds(hi - lo, n)]
    ops: list[Op] = []
    for s in range(n - 1):
        for k in range(n):
            c = (k - s) % n
            ops.append((line[k], line[(k + 1) % n], buf, b[c], b[c + 1], buf, b[c], "copy"))
    return ops


# --------------------------------------------------------------------------- grid


def parse_dims(dims: Any, name: str = "dims") -> tuple[int, ...]:
    """A rank grid ``"8x4"`` or a sequence of ints as a tuple of positive ints.

    Raises
    ------
    ConfigError
        Not a grid of positive integers.
    """
    if isinstance(dims, str):
        parts = dims.lower().replace(" ", "").split("x")
    elif isinstance(dims, Sequence):
        parts = list(dims)
    else:
        raise ConfigError(f"{name}: must be like '8x4' or a list of ints, got {dims!r}")
    try:
        out = tuple(require_int(name, d, min=1) for d in parts)
    except ConfigError:
        raise ConfigError(f"{name}: must be positive integers like '8x4', got {dims!r}") from None
    if not out:
        raise ConfigError(f"{name}: need at least one dimension, got {dims!r}")
    return out


def _dense(coords: list[tuple[Any, ...]], what: str) -> tuple[tuple[int, ...], list[tuple]]:
    """Map raw coordinates to ``0..d-1`` per axis; require a full grid."""
    k = len(coords[0])
    if any(len(c) != k for c in coords):
        raise ConfigError(f"ranks: {what} of the ranks have different lengths")
    values = [sorted({c[a] for c in coords}) for a in range(k)]
    index = [{v: i for i, v in enumerate(vs)} for vs in values]
    shape = tuple(len(vs) for vs in values)
    dense = [tuple(index[a][c[a]] for a in range(k)) for c in coords]
    if len(set(dense)) != len(coords) or math.prod(shape) != len(coords):
        raise ConfigError(
            f"ranks: their {what} do not form a full grid ({len(coords)} ranks, "
            f"shape {'x'.join(map(str, shape))})"
        )
    return shape, dense


def rank_grid(
    ranks: Sequence[int], graph: nx.Graph | None = None, dims: Any = None
) -> tuple[tuple[int, ...], list[tuple[int, ...]]]:
    """The grid the hierarchical algorithms work on: its shape and each rank's coordinates.

    Parameters
    ----------
    ranks : sequence of int
        Chips in rank order.
    graph : networkx.Graph, optional
        Topology; chips' ``coord`` or ``node``/``local_rank`` give the grid.
    dims : str or sequence of int, optional
        ``"8x4"``: the rank list as a row-major grid (rank ``i*4 + j`` at ``(i, j)``);
        takes precedence over the graph.

    Returns
    -------
    tuple
        ``(shape, coords)``: ``coords[i]`` is rank ``i``'s position, ``0 <= coords[i][a] <
        shape[a]``.

    Raises
    ------
    ConfigError
        ``dims`` malformed or not matching the rank count; no grid in the graph; ranks that
        do not fill a grid.

    Examples
    --------
    >>> rank_grid(range(6), dims="2x3")
    ((2, 3), [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)])
    """
    p = len(ranks)
    if p < 1:
        raise ConfigError("ranks: need at least one rank, got none")
    if dims is not None:
        shape = parse_dims(dims)
        if math.prod(shape) != p:
            raise ConfigError(
                f"dims: the grid {'x'.join(map(str, shape))} must hold the {p} ranks, "
                f"got {math.prod(shape)} places"
            )
        return shape, [tuple(int(v) for v in np.unravel_index(i, shape)) for i in range(p)]
    if isinstance(graph, nx.Graph) and all(r in graph for r in ranks):
        attrs = [graph.nodes[r] for r in ranks]
        if all(isinstance(a.get("coord"), tuple | list) for a in attrs):
            return _dense([tuple(a["coord"]) for a in attrs], "coordinates")
        if all("node" in a for a in attrs):
            local = [a.get("local_rank", a.get("rail")) for a in attrs]
            if any(v is None for v in local):
                raise ConfigError("graph: chips with a 'node' need a 'local_rank' too")
            return _dense([(a["node"], v) for a, v in zip(attrs, local, strict=True)], "nodes")
    name = graph.graph.get("name", "custom") if isinstance(graph, nx.Graph) else "none"
    raise ConfigError(
        f"dims: the hierarchical algorithms need a rank grid: give dims like '8x4', or a "
        f"topology whose chips have 'coord' or 'node' (got topology {name})"
    )


def _lines(members: Sequence[tuple[int, tuple]], axis: int) -> list[list[int]]:
    """Group ``(chip, coord)`` members into lines along ``axis`` (ordered by that coord)."""
    groups: dict[tuple, list[tuple[int, int]]] = defaultdict(list)
    for chip, c in members:
        groups[c[:axis] + c[axis + 1 :]].append((c[axis], chip))
    return [[chip for _, chip in sorted(g)] for _, g in sorted(groups.items())]


def _allreduce_ops(
    members: list[tuple[int, tuple]], lo: int, hi: int, axes: Sequence[int]
) -> list[Op]:
    if not axes or hi <= lo:
        return []
    a, rest = axes[0], axes[1:]
    lines = _lines(members, a)
    n = len(lines[0])
    if n == 1:
        return _allreduce_ops(members, lo, hi, rest)
    ops = [op for line in lines for op in reduce_scatter_ring_line(line, lo, hi)]
    b = [lo + x for x in chunk_bounds(hi - lo, n)]
    coord = dict(members)
    for k in range(n):
        sub = [(line[k], coord[line[k]]) for line in lines]
        ops += _allreduce_ops(sub, b[k], b[k + 1], rest)
    ops += [op for line in lines for op in allgather_ring_line(line, lo, hi)]
    return ops


# --------------------------------------------------------------------------- builders


@builder("hierarchical", options=("dims",))
def allreduce_hierarchical(req: BuildRequest, *, dims: Any = None) -> Schedule:
    """Multi-dimensional all-reduce: ring reduce-scatter / recurse / ring all-gather per axis.

    Parameters
    ----------
    graph : networkx.Graph, optional
        Topology giving the grid when ``dims`` is not set (see :func:`rank_grid`).
    chunks : int, optional
        Pieces pipelined through the whole algorithm (default 1).
    dims : str or sequence of int, optional
        Rank grid, e.g. ``"4x8"`` (row-major; the last axis is reduced first).

    Raises
    ------
    ConfigError
        No grid (see :func:`rank_grid`), bad ``count`` or ``chunks``, unknown option.
    """
    ranks = check_ranks(req.ranks)
    count = require_int("count", req.count, min=0)
    chunks = 1 if req.chunks is None else require_int("chunks", req.chunks, min=1)
    shape, coords = rank_grid(ranks, req.graph, dims)
    itemsize = require_int("itemsize", req.itemsize, min=1)
    s = Schedule("allreduce", "hierarchical", ranks, count, itemsize)
    members = list(zip(ranks, coords, strict=True))
    axes = list(range(len(shape)))[::-1]
    b = chunk_bounds(count, chunks)
    pieces = [_allreduce_ops(members, b[c], b[c + 1], axes) for c in range(chunks)]
    _emit_interleaved(_Tracker(s), pieces)
    return s


@builder("hierarchical", options=("dims",))
def alltoall_hierarchical(req: BuildRequest, *, dims: Any = None) -> Schedule:
    """All-to-all through the scale-up domain (PXN, see the module docstring).

    Parameters
    ----------
    count : int
        Recorded as the schedule's ``count`` (the sizes come from ``matrix``).
    graph : networkx.Graph, optional
        Topology giving the ``nodes x local`` grid when ``dims`` is not set.
    chunks : int, optional
        Must be None or 1 (stage-2 messages are already aggregated).
    root
        Not used.
    matrix : array_like
        ``matrix[i][j]``: elements rank ``i`` sends to rank ``j``; zero diagonal.
    dims : str or sequence of int, optional
        Two-dimensional rank grid ``"nodes x local"`` (row-major).

    Returns
    -------
    Schedule
        Rail chips stage data in the scratch buffer ``"a2a"``.

    Raises
    ------
    ConfigError
        Grid not two-dimensional, bad ``matrix`` (shape, negative, non-zero diagonal),
        ``chunks`` other than 1, unknown option.
    """
    s, shape, coords = _alltoall_setup(req, dims)
    ranks, m, p = s.ranks, s.matrix, len(s.ranks)
    soff = np.concatenate([np.zeros((p, 1), np.int64), np.cumsum(m, axis=1)], axis=1)
    roff = np.concatenate([np.zeros((1, p), np.int64), np.cumsum(m, axis=0)], axis=0)
    for i, r in enumerate(ranks):
        s.buffers[(r, "send")] = int(soff[i, p])
        s.buffers[(r, "recv")] = int(roff[p, i])
    at = {c: i for i, c in enumerate(coords)}
    tr = _Tracker(s)
    intra: list[Op] = []
    stage1: list[Op] = []
    stage2: list[Op] = []
    for k, (n, b) in enumerate(coords):  # k: the rail chip (n, b)
        tx = 0
        for mnode in range(shape[0]):
            if mnode == n:
                continue
            j = at[(mnode, b)]
            srcs = sorted(at[(n, a)] for a in range(shape[1]))  # in recv order of j
            run: tuple[int, int, int] | None = None  # (tx_lo, tx_hi, recv_lo)
            for i in srcs:
                size = int(m[i, j])
                if size == 0:
                    continue
                if i == k:  # the rail chip's own segment goes straight over the rail
                    if run:
                        stage2.append(_run_op(ranks[k], ranks[j], run))
                        run = None
                    lo = int(soff[i, j])
                    stage2.append(
                        (ranks[k], ranks[j], "send", lo, lo + size, "recv", int(roff[i, j]), "copy")
                    )
                    continue
                lo = int(soff[i, j])
                stage1.append((ranks[i], ranks[k], "send", lo, lo + size, "a2a", tx, "copy"))
                if run and run[1] == tx and run[2] + run[1] - run[0] == int(roff[i, j]):
                    run = (run[0], tx + size, run[2])
                else:
                    if run:
                        stage2.append(_run_op(ranks[k], ranks[j], run))
                    run = (tx, tx + size, int(roff[i, j]))
                tx += size
            if run:
                stage2.append(_run_op(ranks[k], ranks[j], run))
        for a in range(shape[1]):  # same-node pairs: direct over the scale-up domain
            j = at[(n, a)]
            if j != k and m[k, j]:
                lo, hi = int(soff[k, j]), int(soff[k, j]) + int(m[k, j])
                intra.append((ranks[k], ranks[j], "send", lo, hi, "recv", int(roff[k, j]), "copy"))
    for op in (*intra, *stage1, *stage2):
        tr.add(op)
    return s


def _alltoall_setup(
    req: BuildRequest, dims: Any
) -> tuple[Schedule, tuple[int, ...], list[tuple[int, ...]]]:
    """The checked schedule of :func:`alltoall_hierarchical` (matrix in ``s.matrix``), its
    ``nodes x local`` grid shape and every rank's coordinates."""
    ranks = check_ranks(req.ranks)
    count = require_int("count", req.count, min=0)
    if req.chunks not in (None, 1):
        raise ConfigError(
            f"chunks: alltoall hierarchical does not pipeline, must be 1, got {req.chunks}"
        )
    shape, coords = rank_grid(ranks, req.graph, dims)
    if len(shape) != 2:
        raise ConfigError(
            f"dims: alltoall hierarchical needs a 2-D grid nodes x local, got "
            f"{'x'.join(map(str, shape))}"
        )
    m = alltoall_matrix(req.matrix, len(ranks))
    itemsize = require_int("itemsize", req.itemsize, min=1)
    return Schedule("alltoall", "hierarchical", ranks, count, itemsize, matrix=m), shape, coords


def _run_op(src: int, dst: int, run: tuple[int, int, int]) -> Op:
    return (src, dst, "a2a", run[0], run[1], "recv", run[2], "copy")
