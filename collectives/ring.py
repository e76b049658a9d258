"""Ring collectives: reduce-scatter, all-gather, all-reduce (one or two directions), chains.

Ring all-reduce (``allreduce`` ``ring``)
    The vector is cut into ``p`` chunks. A ring reduce-scatter of ``p - 1`` steps (at step
    ``s`` position ``q`` adds chunk ``q - s - 1`` into its successor) leaves every position
    with one fully reduced chunk; a ring all-gather of ``p - 1`` steps copies the chunks
    around [1]_ [2]_. Each chip sends and receives ``2 (p - 1) n / p`` bytes, the minimum
    for an all-reduce, in ``2 (p - 1)`` dependent steps. On a ring of ``p`` chips with link
    latency ``a``, bandwidth ``B`` and no switches, chunk ``m = n / p`` bytes, MTU ``M`` and
    ``h`` header bytes per packet, the time (cut-through, no software overhead) is exactly::

        T = 2 (p - 1) (a + (m + ceil(m / M) h) / B)

    ``chunks = k`` splits every step's chunk into ``k`` sub-chunks that move on as soon as
    they arrive, so consecutive steps overlap (the pipelining of NCCL's ring slices).
``ring-bidir``
    Half of the vector goes round the ring one way, half the other way, using both
    directions of every link (bidirectional ring, as on tori [3]_).
``reduce_scatter`` / ``allgather`` ``ring``
    The two halves of the all-reduce alone; chunk ``r`` belongs to rank ``r``.
``broadcast`` ``ring``
    A pipelined chain ``root -> root+1 -> ... -> root-1``: the data is cut into ``chunks``
    (default :data:`DEFAULT_CHAIN_CHUNKS`) that follow one another down the chain.
``reduce`` ``ring``
    The reverse chain ``root+1 -> ... -> root``: partial sums accumulate along it (in ``x``
    of the intermediate ranks), pipelined in ``chunks``.

References
----------
.. [1] P. Patarasuk and X. Yuan, "Bandwidth optimal all-reduce algorithms for clusters of
   workstations", J. Parallel Distrib. Comput. 69(2), 2009.
.. [2] R. Thakur, R. Rabenseifner and W. Gropp, "Optimization of Collective Communication
   Operations in MPICH", IJHPCA 19(1), 2005.
.. [3] A. Sergeev and M. Del Balso, "Horovod: fast and easy distributed deep learning in
   TensorFlow", arXiv:1802.05799, 2018 (ring all-reduce); bidirectional rings on TPU tori:
   N. Jouppi et al., ISCA 2023.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from collectives._common import BuildRequest, builder, check_ranks
from collectives.channels import resolve_channels, ring_orders
from collectives.schedule import Schedule, chunk_bounds
from netsim.core.errors import ConfigError
from netsim.core.validate import require_int

__all__ = [
    "DEFAULT_CHAIN_CHUNKS",
    "allgather_ring",
    "allreduce_ring",
    "allreduce_ring_bidir",
    "broadcast_ring",
    "reduce_ring",
    "reduce_scatter_ring",
    "ring_allgather",
    "ring_reduce_scatter",
]

#: Default pipeline chunks of the chain broadcast and reduce (a modelling choice: enough to
#: fill a chain of 8 chips; NCCL pipelines in fixed-size slices).
DEFAULT_CHAIN_CHUNKS = 8

Segment = Callable[[int], tuple[int, int]]
Via = tuple[int, str] | None


def _subs(lo: int, hi: int, k: int) -> list[tuple[int, int]]:
    b = chunk_bounds(hi - lo, k)
    return [(lo + b[j], lo + b[j + 1]) for j in range(k)]


def _hop(
    s: Schedule, src: int, dst: int, a: int, b: int, op: str, dep: int | None, via: Via
) -> int:
    """One ring hop ``src -> dst`` of ``x[a:b]``, through the PXN proxy ``via[0]`` (into its
    scratch buffer ``via[1]``) if given."""
    if via is None:
        return s.add(src, dst, "x", a, b, op=op, deps=[dep])
    proxy, buf = via
    i = s.add(src, proxy, "x", a, b, buf, a, deps=[dep])
    return s.add(proxy, dst, buf, a, b, "x", a, op=op, deps=[i])


def ring_reduce_scatter(
    s: Schedule,
    nodes: Sequence[int],
    seg: Segment,
    k: int = 1,
    proxies: dict[int, tuple[int, str]] | None = None,
) -> dict[tuple[int, int], int]:
    """Append a ring reduce-scatter over ``nodes`` (in ring order) to ``s``.

    ``seg(q)`` is the ``[lo, hi)`` element range of the chunk that ends, reduced, at ring
    position ``q``; each chunk is split into ``k`` pipelined sub-chunks. ``proxies[q] =
    (chip, buffer)``: position ``q`` sends to its successor through that PXN proxy.
    Returns ``{(q, j): transfer}``: the transfer that completes sub-chunk ``j`` at
    position ``q``.
    """
    p = len(nodes)
    proxies = proxies or {}
    subs = [_subs(*seg(o), k) for o in range(p)]
    have: dict[tuple[int, int, int], int] = {}  # only the last step's (popped when used)
    for step in range(p - 1):
        for q in range(p):
            o = (q - step - 1) % p
            nxt = (q + 1) % p
            for j, (a, b) in enumerate(subs[o]):
                if a == b:
                    continue
                dep = have.pop((q, o, j), None)
                i = _hop(s, nodes[q], nodes[nxt], a, b, "sum", dep, proxies.get(q))
                have[(nxt, o, j)] = i
    return {(q, j): i for (q, o, j), i in have.items() if o == q}


def ring_allgather(
    s: Schedule,
    nodes: Sequence[int],
    seg: Segment,
    k: int = 1,
    ready: dict[tuple[int, int], int] | None = None,
    proxies: dict[int, tuple[int, str]] | None = None,
) -> None:
    """Append a ring all-gather: position ``q`` starts with chunk ``seg(q)`` (sub-chunk ``j``
    ready once transfer ``ready[(q, j)]`` has arrived, if given) and every position ends
    with every chunk. ``proxies`` as :func:`ring_reduce_scatter`."""
    p = len(nodes)
    ready = ready or {}
    proxies = proxies or {}
    subs = [_subs(*seg(o), k) for o in range(p)]
    have: dict[tuple[int, int, int], int] = {}  # only the last step's (popped when used)
    for step in range(p - 1):
        for q in range(p):
            o = (q - step) % p
            nxt = (q + 1) % p
            for j, (a, b) in enumerate(subs[o]):
                if a == b:
                    continue
                dep = have.pop((q, o, j), None) if step else ready.get((q, j))
                i = _hop(s, nodes[q], nodes[nxt], a, b, "copy", dep, proxies.get(q))
                have[(nxt, o, j)] = i


def _chunks(chunks: Any, default: int) -> int:
    return default if chunks is None else require_int("chunks", chunks, min=1)


def _start(req: BuildRequest, op: str, algo: str = "ring") -> tuple[Schedule, int]:
    """The empty schedule of a ring builder and its sub-chunks per step (``chunks``,
    default 1), after checking ``ranks``, ``count`` and ``chunks``."""
    ranks = check_ranks(req.ranks)
    count = require_int("count", req.count, min=0)
    k = _chunks(req.chunks, 1)
    return Schedule(op, algo, ranks, count, req.itemsize), k


def _equal(lo: int, hi: int, p: int) -> Segment:
    b = chunk_bounds(hi - lo, p)
    return lambda q: (lo + b[q], lo + b[q + 1])


def _rings(
    ranks: Sequence[int], graph: Any, op: str, channels: Any, pxn: Any
) -> list[tuple[list[int], dict[int, tuple[int, str]], dict[int, tuple[int, str]]]]:
    """Per channel: ring order, PXN proxies of the reduce-scatter and of the all-gather
    (each its own scratch buffer ``pxn<first rank>`` / ``pxg<first rank>``)."""
    if not isinstance(pxn, bool):
        raise ConfigError(f"pxn: must be true or false, got {pxn!r}")
    n = resolve_channels(op, "ring", ranks, graph, channels) or 1
    rs, ag = f"pxn{ranks[0]}", f"pxg{ranks[0]}"
    return [
        (order, {q: (c, rs) for q, c in prox.items()}, {q: (c, ag) for q, c in prox.items()})
        for order, prox in ring_orders(ranks, graph, n, pxn=pxn)
    ]


def _allreduce_on(s: Schedule, nodes: Sequence[int], lo: int, hi: int, k: int) -> None:
    seg = _equal(lo, hi, len(nodes))
    ready = ring_reduce_scatter(s, nodes, seg, k)
    ring_allgather(s, nodes, seg, k, ready)


def _owned(ranks: Sequence[int], order: Sequence[int], count: int, c: int, n: int) -> Segment:
    """Channel ``c`` of ``n``: part ``c`` of the chunk of the rank at ring position ``q``
    (chunk ``i`` belongs to rank index ``i``)."""
    b = chunk_bounds(count, len(ranks))
    index = {r: i for i, r in enumerate(ranks)}

    def seg(q: int) -> tuple[int, int]:
        i = index[order[q]]
        return _subs(b[i], b[i + 1], n)[c]

    return seg


@builder("ring", options=("channels", "pxn"))
def allreduce_ring(
    req: BuildRequest, *, channels: int | None = None, pxn: bool = False
) -> Schedule:
    """Ring all-reduce: reduce-scatter then all-gather around each channel's ring.

    Parameters
    ----------
    ranks : sequence of int
        Chips in ring order.
    graph : networkx.Graph, optional
        The topology: on a multi-node system (chips with ``node``) it gives every channel
        its ring (:func:`collectives.channels.ring_orders`); otherwise the ring follows the
        rank order.
    chunks : int, optional
        Sub-chunks pipelined per step (default 1).
    channels : int, optional
        Rings run side by side, each on ``1/channels`` of the data (default
        :func:`collectives.channels.default_channels`: one per NIC of a node on a
        multi-node system, else 1).
    pxn : bool
        Rail-matched inter-node sends through a proxy on the receiver's rail (PXN).

    Raises
    ------
    ConfigError
        Bad ranks, count, chunks or channels, or an unknown option.
    """
    s, k = _start(req, "allreduce")
    rings = _rings(s.ranks, req.graph, "allreduce", channels, pxn)
    part = chunk_bounds(s.count, len(rings))
    for c, (order, rs, ag) in enumerate(rings):
        first = len(s.transfers)
        seg = _equal(part[c], part[c + 1], len(order))
        ready = ring_reduce_scatter(s, order, seg, k, rs)
        ring_allgather(s, order, seg, k, ready, ag)
        _mark_channel(s, first, c)
    return s


def _mark_channel(s: Schedule, first: int, c: int) -> None:
    """Transfers from ``first`` on are channel ``c``'s (``Schedule.channels``: the stream a
    library's per-channel throughput cap paces)."""
    s.channels.update(dict.fromkeys(range(first, len(s.transfers)), c))


@builder("ring-bidir")
def allreduce_ring_bidir(req: BuildRequest) -> Schedule:
    """Bidirectional ring all-reduce: the first half clockwise, the second half the other way.

    Parameters as :func:`allreduce_ring` (without channels).
    """
    s, k = _start(req, "allreduce", "ring-bidir")
    half = s.count // 2
    _allreduce_on(s, s.ranks, 0, half, k)
    _allreduce_on(s, s.ranks[::-1], half, s.count, k)
    return s


@builder("ring", options=("channels", "pxn"))
def reduce_scatter_ring(
    req: BuildRequest, *, channels: int | None = None, pxn: bool = False
) -> Schedule:
    """Ring reduce-scatter (``p - 1`` steps per channel); chunk ``r`` ends reduced at rank
    ``r``, channel ``c`` carrying part ``c`` of every chunk.

    Parameters as :func:`allreduce_ring`.
    """
    return _one_phase(req, "reduce_scatter", channels, pxn)


@builder("ring", options=("channels", "pxn"))
def allgather_ring(
    req: BuildRequest, *, channels: int | None = None, pxn: bool = False
) -> Schedule:
    """Ring all-gather (``p - 1`` steps per channel); ``count`` is the gathered size.

    Parameters as :func:`allreduce_ring`.
    """
    return _one_phase(req, "allgather", channels, pxn)


def _one_phase(req: BuildRequest, op: str, channels: Any, pxn: Any) -> Schedule:
    """Ring reduce-scatter or all-gather: channel ``c`` moves part ``c`` of every chunk."""
    s, k = _start(req, op)
    rings = _rings(s.ranks, req.graph, op, channels, pxn)
    for c, (order, rs, ag) in enumerate(rings):
        first = len(s.transfers)
        own = _owned(s.ranks, order, s.count, c, len(rings))
        if op == "reduce_scatter":
            ring_reduce_scatter(s, order, own, k, rs)
        else:
            ring_allgather(s, order, own, k, None, ag)
        _mark_channel(s, first, c)
    return s


def _chain(req: BuildRequest, op: str, start: int, reduce: str) -> Schedule:
    """A pipelined chain over the ranks from ``root + start`` on (``reduce``: the transfers'
    op, ``"copy"`` or ``"sum"``), in ``chunks`` (default :data:`DEFAULT_CHAIN_CHUNKS`)."""
    ranks = check_ranks(req.ranks)
    count = require_int("count", req.count, min=0)
    p = len(ranks)
    root = require_int("root", req.root, min=0, max=p - 1)
    s = Schedule(op, "ring", ranks, count, req.itemsize, root=root)
    nodes = [ranks[(root + start + q) % p] for q in range(p)]
    for a, b in _subs(0, count, _chunks(req.chunks, DEFAULT_CHAIN_CHUNKS)):
        if a == b:
            continue
        prev = None
        for q in range(len(nodes) - 1):
            prev = s.add(nodes[q], nodes[q + 1], "x", a, b, op=reduce, deps=[prev])
    return s


@builder("ring")
def broadcast_ring(req: BuildRequest) -> Schedule:
    """Pipelined chain broadcast from rank index ``root`` along the rank order.

    ``chunks`` (default :data:`DEFAULT_CHAIN_CHUNKS`) pieces follow one another.
    """
    return _chain(req, "broadcast", 0, "copy")


@builder("ring")
def reduce_ring(req: BuildRequest) -> Schedule:
    """Pipelined chain reduce to rank index ``root``: ``root+1 -> root+2 -> ... -> root``.

    ``chunks`` (default :data:`DEFAULT_CHAIN_CHUNKS`) pieces follow one another.
    """
    return _chain(req, "reduce", 1, "sum")
