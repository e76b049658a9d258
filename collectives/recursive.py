"""Recursive doubling and halving collectives (power-of-two rank counts).

``allreduce`` ``recursive-doubling``
    ``log2 p`` steps; at step ``k`` rank ``i`` exchanges its whole vector with rank
    ``i xor 2^k`` (into a scratch buffer ``"rd<k>"``) and adds it into ``x`` (a local
    transfer, once its own send has also arrived). Time on a single switch without
    contention: ``log2 p * (alpha + n / B)`` [1]_.
``reduce_scatter`` ``recursive-halving``
    ``log2 p`` steps; at step ``k = log2 p - 1 .. 0`` rank ``i`` keeps the half of its
    current block that contains chunk ``i`` and adds the other half into rank ``i xor 2^k``.
    Chunk ``r`` ends reduced at rank ``r``; ``n (p - 1) / p`` bytes sent per rank [1]_.
``allgather`` ``recursive-doubling``
    ``log2 p`` steps; at step ``k`` rank ``i`` sends the ``2^k`` chunks it holds to rank
    ``i xor 2^k`` [1]_.
``allreduce`` ``rabenseifner``
    Recursive-halving reduce-scatter followed by recursive-doubling all-gather: the
    bandwidth of the ring (``2 n (p - 1) / p`` bytes per rank) in ``2 log2 p`` steps [2]_.

Other rank counts are refused (MPICH's pre- and post-steps for the remainder are not
modelled); none of these pipeline (``chunks`` must be 1).

References
----------
.. [1] R. Thakur, R. Rabenseifner and W. Gropp, "Optimization of Collective Communication
   Operations in MPICH", IJHPCA 19(1), 2005.
.. [2] R. Rabenseifner, "Optimization of Collective Reduction Operations", ICCS 2004.
"""

from __future__ import annotations

from collectives._common import BuildRequest, builder, check_ranks, no_chunks, pow2
from collectives.schedule import Schedule, chunk_bounds
from netsim.core.validate import require_int

__all__ = [
    "allgather_recursive_doubling",
    "allreduce_rabenseifner",
    "allreduce_recursive_doubling",
    "reduce_scatter_recursive_halving",
]


def _setup(op: str, algo: str, req: BuildRequest) -> tuple[Schedule, int]:
    no_chunks(algo, req.chunks)
    ranks = check_ranks(req.ranks)
    steps = pow2(algo, len(ranks))
    count = require_int("count", req.count, min=0)
    return Schedule(op, algo, ranks, count, req.itemsize), steps


def _halving(s: Schedule, steps: int) -> dict[int, list[int]]:
    """Recursive-halving reduce-scatter; returns rank index -> every transfer into it."""
    p, r, b = len(s.ranks), s.ranks, chunk_bounds(s.count, len(s.ranks))
    into: dict[int, list[int]] = {i: [] for i in range(p)}
    for k in range(steps - 1, -1, -1):
        got: dict[int, int] = {}
        for i in range(p):
            base = (i >> (k + 1)) << (k + 1)
            half = 1 << k
            # The half that does not contain i goes to the partner (which it contains).
            lo = base + half if i < base + half else base
            partner = i ^ half
            got[partner] = s.add(r[i], r[partner], "x", b[lo], b[lo + half], op="sum", deps=into[i])
        for i, t in got.items():
            into[i].append(t)
    return into


def _doubling_gather(s: Schedule, steps: int, ready: dict[int, list[int]] | None) -> None:
    p, r, b = len(s.ranks), s.ranks, chunk_bounds(s.count, len(s.ranks))
    into: dict[int, list[int]] = {i: list(ready[i]) if ready else [] for i in range(p)}
    for k in range(steps):
        got: dict[int, int] = {}
        for i in range(p):
            lo = (i >> k) << k
            partner = i ^ (1 << k)
            got[partner] = s.add(r[i], r[partner], "x", b[lo], b[lo + (1 << k)], deps=into[i])
        for i, t in got.items():
            into[i].append(t)


@builder("recursive-doubling")
def allreduce_recursive_doubling(req: BuildRequest) -> Schedule:
    """Recursive-doubling all-reduce (see the module docstring).

    Parameters
    ----------
    ranks : sequence of int
        Chips; their number must be a power of two.
    chunks : int, optional
        Must be unset or 1.

    Raises
    ------
    ConfigError
        Rank count not a power of two, ``chunks`` > 1, bad count, unknown option.
    """
    s, steps = _setup("allreduce", "recursive-doubling", req)
    p, r, n = len(s.ranks), s.ranks, s.count
    if n == 0:
        return s
    local: dict[int, int | None] = dict.fromkeys(range(p))
    for k in range(steps):
        sent = {i: s.add(r[i], r[i ^ (1 << k)], "x", 0, n, f"rd{k}", 0, deps=[local[i]])
                for i in range(p)}  # fmt: skip
        for i in range(p):
            local[i] = s.add(
                r[i], r[i], f"rd{k}", 0, n, "x", 0, op="sum", deps=[sent[i ^ (1 << k)], sent[i]]
            )
    return s


@builder("recursive-halving")
def reduce_scatter_recursive_halving(req: BuildRequest) -> Schedule:
    """Recursive-halving reduce-scatter. Parameters as :func:`allreduce_recursive_doubling`."""
    s, steps = _setup("reduce_scatter", "recursive-halving", req)
    _halving(s, steps)
    return s


@builder("recursive-doubling")
def allgather_recursive_doubling(req: BuildRequest) -> Schedule:
    """Recursive-doubling all-gather. Parameters as :func:`allreduce_recursive_doubling`."""
    s, steps = _setup("allgather", "recursive-doubling", req)
    _doubling_gather(s, steps, None)
    return s


@builder("rabenseifner")
def allreduce_rabenseifner(req: BuildRequest) -> Schedule:
    """Rabenseifner all-reduce: recursive halving, then recursive doubling.

    Parameters as :func:`allreduce_recursive_doubling`.
    """
    s, steps = _setup("allreduce", "rabenseifner", req)
    _doubling_gather(s, steps, _halving(s, steps))
    return s
