"""Tree collectives: NCCL's double binary tree all-reduce and binomial broadcast / reduce.

Double binary tree (``allreduce`` ``tree``)
    Two binary trees span the ranks; every rank is a leaf in at most one of them, so each
    rank receives and sends about ``count`` elements in all and the root bottleneck of a single
    tree disappears [1]_. Tree 0 is NCCL's bit-pattern binary tree rooted at rank 0 (whose
    root has a single child); tree 1 is its mirror (``r -> p-1-r``) for even ``p`` and its
    shift by one rank for odd ``p``, exactly as ``ncclGetBtree`` / ``ncclGetDtree`` of NCCL
    2.4 [2]_ [3]_. Each tree carries half of the data, split into ``chunks`` chunks that are
    reduced up (op ``"sum"`` into the parent's ``x``) and broadcast down (op ``"copy"``)
    in a pipeline: a chunk moves on as soon as it is complete, and successive chunks on the
    same tree edge follow one another (a chunk waits for the previous one on that edge:
    stop-and-wait, a :class:`collectives.schedule.Window` of one; NCCL keeps
    ``NCCL_STEPS`` in flight, which at these chunks misses ``2xh20-auto-1MiB``, see
    docs/validation.md). Depth is ``ceil(log2 p)``, so latency grows as ``log p``
    instead of the ring's ``p``.

Binomial trees (``broadcast`` / ``reduce`` ``tree``)
    The classic binomial tree rooted at ``root`` [4]_: ``ceil(log2 p)`` rounds, the set of
    ranks holding data doubling every round (broadcast) or halving (reduce, partial sums
    accumulated in ``x`` of the receiving ranks). Optionally pipelined in ``chunks``.

References
----------
.. [1] P. Sanders, J. Speck and J. L. Träff, "Two-tree algorithms for full bandwidth
   broadcast, reduction and scan", Parallel Computing 35(12), 2009.
.. [2] S. Jeaugey, "Massively Scale Your Deep Learning Training with NCCL 2.4", NVIDIA
   developer blog, Feb. 2019 (double binary trees in NCCL 2.4).
.. [3] NVIDIA NCCL, ``src/graph/trees.cc``: ``ncclGetBtree`` and ``ncclGetDtree``.
.. [4] R. Thakur, R. Rabenseifner and W. Gropp, "Optimization of Collective Communication
   Operations in MPICH", IJHPCA 19(1), 2005 (binomial-tree broadcast and reduce).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from collectives._common import BuildRequest, builder, check_ranks
from collectives.channels import layout, resolve_channels
from collectives.schedule import Schedule, Window, chunk_bounds
from netsim.core.errors import ConfigError
from netsim.core.validate import require_int

__all__ = [
    "DEFAULT_TREE_CHUNKS",
    "allreduce_tree",
    "binomial_parents",
    "broadcast_tree",
    "btree_parents",
    "channel_trees",
    "depths",
    "dtree_parents",
    "reduce_tree",
    "tree_depth",
]

#: Default pipeline chunks per tree half of :func:`allreduce_tree` (a modelling choice:
#: enough to overlap the up and down phases; NCCL itself pipelines in fixed-size slices).
DEFAULT_TREE_CHUNKS = 8


# --------------------------------------------------------------------------- tree shapes


def _btree_parent(p: int, r: int) -> int:
    """Parent of rank ``r`` in NCCL's binary tree over ``p`` ranks (-1 for the root 0)."""
    if r == 0:
        return -1
    bit = 1
    while bit < p and not bit & r:
        bit <<= 1
    up = (r ^ bit) | (bit << 1)
    return r ^ bit if up >= p else up


def btree_parents(p: int) -> list[int]:
    """Parents in NCCL's binary tree over ranks ``0..p-1`` (``ncclGetBtree``, root 0 -> -1).

    Examples
    --------
    >>> btree_parents(8)
    [-1, 2, 4, 2, 0, 6, 4, 6]
    """
    p = require_int("p", p, min=1)
    return [_btree_parent(p, r) for r in range(p)]


def dtree_parents(p: int) -> tuple[list[int], list[int]]:
    """Parents in the two trees of NCCL's double binary tree (``ncclGetDtree``).

    Tree 1 mirrors tree 0 (``r -> p-1-r``) for even ``p`` and shifts it by one rank for
    odd ``p``.

    Examples
    --------
    >>> dtree_parents(4)
    ([-1, 2, 0, 2], [1, 3, 1, -1])
    """
    t0 = btree_parents(p)
    if p % 2:
        t1 = [-1 if t0[(r - 1) % p] < 0 else (t0[(r - 1) % p] + 1) % p for r in range(p)]
    else:
        t1 = [-1 if t0[p - 1 - r] < 0 else p - 1 - t0[p - 1 - r] for r in range(p)]
    return t0, t1


def binomial_parents(p: int, root: int = 0) -> list[int]:
    """Parents in the binomial tree over ``p`` ranks rooted at ``root`` (root -> -1).

    Relative rank ``v = (r - root) mod p`` has parent ``v`` with its lowest set bit cleared.

    Examples
    --------
    >>> binomial_parents(6)
    [-1, 0, 0, 2, 0, 4]
    """
    p = require_int("p", p, min=1)
    root = require_int("root", root, min=0, max=p - 1)
    out = []
    for r in range(p):
        v = (r - root) % p
        out.append(-1 if v == 0 else ((v & (v - 1)) + root) % p)
    return out


def tree_depth(parents: Sequence[int]) -> int:
    """Edges on the longest root-to-leaf path of a tree given by its parent list."""
    return max(depths(parents), default=0)


def depths(parents: Sequence[int]) -> list[int]:
    """Edges from each rank up to the root of a tree given by its parent list (root -> -1).

    Raises
    ------
    ConfigError
        ``parents`` has a cycle.
    """
    out = []
    for r in range(len(parents)):
        d, v = 0, r
        while parents[v] >= 0:
            v, d = parents[v], d + 1
            if d > len(parents):
                raise ConfigError(f"parents: not a tree (cycle through rank {r})")
        out.append(d)
    return out


def _children(parents: Sequence[int]) -> list[list[int]]:
    kids: list[list[int]] = [[] for _ in parents]
    for r, u in enumerate(parents):
        if u >= 0:
            kids[u].append(r)
    return kids


def _order_up(parents: Sequence[int]) -> list[int]:
    """Ranks ordered leaves-first (every child before its parent)."""
    depth = [0] * len(parents)
    for r in range(len(parents)):
        v = r
        while parents[v] >= 0:
            v = parents[v]
            depth[r] += 1
    return sorted(range(len(parents)), key=lambda r: (-depth[r], r))


def channel_trees(
    ranks: Sequence[int], graph: Any, channels: int
) -> list[tuple[list[int], list[int]]] | None:
    """Per channel the parents (rank indices) of NCCL's two trees, or None without nodes.

    Tree ``t`` of channel ``c``: inside each node a chain headed by local index
    ``c mod L`` (each rank's parent is its predecessor in ``r, r+1, ..., r-1``); the head's
    parent is the head of its parent node in tree ``t`` of the double binary tree over
    the nodes (-1 for the root node's head).
    """
    lay = layout(ranks, graph)
    if lay is None or len(lay.nodes) < 2:
        return None
    index = {int(r): i for i, r in enumerate(ranks)}
    L = lay.local
    node_trees = dtree_parents(len(lay.nodes))
    out = []
    for c in range(channels):
        r = c % L
        pair = []
        for up in node_trees:
            parents = [-1] * len(ranks)
            for n, node in enumerate(lay.nodes):
                chain = [node[(r + i) % L] for i in range(L)]
                for a, b in pairwise(chain):
                    parents[index[b]] = index[a]
                if up[n] >= 0:
                    parents[index[chain[0]]] = index[lay.nodes[up[n]][r]]
            pair.append(parents)
        out.append((pair[0], pair[1]))
    return out


# --------------------------------------------------------------------------- validation


def _check(ranks: Sequence[int], count: Any, chunks: Any, default: int) -> tuple[int, int]:
    check_ranks(ranks)
    count = require_int("count", count, min=0)
    chunks = default if chunks is None else require_int("chunks", chunks, min=1)
    return count, chunks


# --------------------------------------------------------------------------- pipelines


def _reduce_up(
    s: Schedule,
    ranks: Sequence[int],
    parents: Sequence[int],
    bounds: Sequence[int],
    fifo: Window,
    *,
    order: Sequence[int] | None = None,
    serial: bool = False,
) -> dict[tuple[int, int], list[int]]:
    """Reduce chunks ``bounds`` up a tree; return ``{(rank, chunk): arrivals into rank}``.

    ``fifo``: the window of each edge ``(sender, receiver)``.
    ``order``: the order ranks send in (children before parents; default leaves first).
    ``serial``: a rank receives a chunk from its children one after the other, in that order.
    """
    order = _order_up(parents) if order is None else order
    got: dict[tuple[int, int], list[int]] = {}
    for c in range(len(bounds) - 1):
        lo, hi = bounds[c], bounds[c + 1]
        if lo == hi:
            continue
        for r in order:
            u = parents[r]
            if u < 0:
                continue
            deps = got.get((r, c), [])
            if serial and got.get((u, c)):
                deps = [*deps, got[(u, c)][-1]]
            key = (ranks[r], ranks[u])
            i = s.add(ranks[r], ranks[u], "x", lo, hi, op="sum", deps=[*deps, fifo.wait(key)])
            fifo.sent(key, i)
            got.setdefault((u, c), []).append(i)
    return got


def _bcast_down(
    s: Schedule,
    ranks: Sequence[int],
    parents: Sequence[int],
    bounds: Sequence[int],
    ready: dict[tuple[int, int], list[int]],
    fifo: Window,
    *,
    serial: bool = False,
    kids: list[list[int]] | None = None,
) -> None:
    """Broadcast chunks down a tree; ``ready[(root, c)]`` are the deps of the root's chunk
    and ``fifo`` the window of each edge ``(sender, receiver)``.

    ``serial``: a rank sends a chunk to its children one after the other, in the order of
    ``kids`` (the rounds of a binomial tree); otherwise to all children at once.
    """
    kids = _children(parents) if kids is None else kids
    order = _order_up(parents)[::-1]
    for c in range(len(bounds) - 1):
        lo, hi = bounds[c], bounds[c + 1]
        if lo == hi:
            continue
        have: dict[int, list[int]] = {}
        for r in order:
            deps = ready.get((r, c), []) if parents[r] < 0 else have[r]
            prev = None
            for k in kids[r]:
                key = (ranks[r], ranks[k])
                i = s.add(ranks[r], ranks[k], "x", lo, hi, deps=[*deps, fifo.wait(key), prev])
                fifo.sent(key, i)
                have[k] = [i]
                if serial:
                    prev = i


# --------------------------------------------------------------------------- builders


@builder("tree", options=("channels",))
def allreduce_tree(req: BuildRequest, *, channels: int | None = None) -> Schedule:
    """All-reduce by NCCL's double binary tree (see the module docstring), on channels.

    Parameters
    ----------
    graph : networkx.Graph, optional
        The topology. On a multi-node system (chips with ``node``) every channel is NCCL's
        tree: a chain inside each node and the double binary tree across nodes
        (:func:`collectives.channels.tree_parents`); otherwise the double binary tree is
        over the ranks, as in NCCL when every rank is its own node.
    chunks : int, optional
        Pipeline chunks per tree of a channel (default :data:`DEFAULT_TREE_CHUNKS`);
        chunks with no elements are skipped.
    channels : int, optional
        Channels, each with its two trees carrying ``1/(2 channels)`` of the data (default
        :func:`collectives.channels.default_channels`).

    Raises
    ------
    ConfigError
        Bad ``ranks``, ``count``, ``chunks`` or ``channels``, or an unknown option.
    """
    count, chunks = _check(req.ranks, req.count, req.chunks, DEFAULT_TREE_CHUNKS)
    itemsize = require_int("itemsize", req.itemsize, min=1)
    s = Schedule("allreduce", "tree", tuple(req.ranks), count, itemsize)
    p = len(req.ranks)
    n = resolve_channels("allreduce", "tree", req.ranks, req.graph, channels) or 1
    if p == 1:
        return s
    trees = channel_trees(req.ranks, req.graph, n) or [dtree_parents(p)] * n
    part = chunk_bounds(count, 2 * n)
    for c, pair in enumerate(trees):
        for t, parents in enumerate(pair):
            lo, hi = part[2 * c + t], part[2 * c + t + 1]
            bounds = [lo + b for b in chunk_bounds(hi - lo, chunks)]
            window = Window(1)  # stop-and-wait per edge (module docstring)
            first = len(s.transfers)
            got = _reduce_up(s, req.ranks, parents, bounds, window)
            _bcast_down(s, req.ranks, parents, bounds, got, window)
            # Each channel's tree is its own connection (a route two trees share, such as
            # one tree's up and the other's down pass between two heads, is shared).
            s.connections.update(dict.fromkeys(range(first, len(s.transfers)), 1 + 2 * c + t))
    return s


@builder("tree")
def broadcast_tree(req: BuildRequest) -> Schedule:
    """Broadcast from rank index ``root`` down a binomial tree (``ceil(log2 p)`` rounds).

    ``chunks`` (default 1) pipelines the data; ``graph`` and ``matrix`` are unused.
    """
    s, bounds, parents = _binomial(req, "broadcast")
    p, root = len(s.ranks), s.root
    # Largest subtree first: the child of the earliest round.
    kids = [sorted(k, key=lambda c: -((c - root) % p)) for k in _children(parents)]
    _bcast_down(s, req.ranks, parents, bounds, {}, Window(1), serial=True, kids=kids)
    return s


@builder("tree")
def reduce_tree(req: BuildRequest) -> Schedule:
    """Reduce to rank index ``root`` up a binomial tree (``ceil(log2 p)`` rounds).

    Partial sums accumulate in ``x`` of the interior ranks (only the root's ``x`` is
    specified afterwards); a rank takes its children's sums one per round, smallest subtree
    first. ``chunks`` (default 1) pipelines the data.
    """
    s, bounds, parents = _binomial(req, "reduce")
    p, root = len(s.ranks), s.root
    # Relative rank v sends in the round of its lowest set bit: emit round by round.
    rel = [(r - root) % p for r in range(p)]
    order = sorted(range(p), key=lambda r: ((rel[r] & -rel[r]) or p, rel[r]))
    _reduce_up(s, req.ranks, parents, bounds, Window(1), order=order, serial=True)
    return s


def _binomial(req: BuildRequest, op: str) -> tuple[Schedule, list[int], list[int]]:
    """The empty schedule of a binomial-tree ``op`` (broadcast or reduce) after checking
    the request, its pipeline chunks' bounds (``chunks``, default 1) and the tree's parents
    (:func:`binomial_parents` at rank index ``root``)."""
    count, chunks = _check(req.ranks, req.count, req.chunks, 1)
    root = require_int("root", req.root, min=0, max=len(req.ranks) - 1)
    itemsize = require_int("itemsize", req.itemsize, min=1)
    s = Schedule(op, "tree", tuple(req.ranks), count, itemsize, root=root)
    return s, chunk_bounds(count, chunks), binomial_parents(len(req.ranks), root)
