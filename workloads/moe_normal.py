"""DeepEP "normal" MoE dispatch and combine: RDMA to the rail peer, then NVLink forwarding.

DeepEP's normal (high-throughput) kernels [1]_ move a token across nodes in two hops:

1. **RDMA**: the source GPU ``(n, a)`` (node ``n``, local index ``a``) sends the token
   *once per target node* ``m`` to the rail-matched GPU ``(m, a)`` of that node (same local
   index, so the message stays on the source's rail);
2. **NVLink**: that GPU forwards it *once per target GPU* of node ``m`` (a GPU handles all
   of its own experts of the token at once).

Tokens whose targets are on the source's own node go straight over NVLink, once per target
GPU. The combine runs the same paths backwards: every GPU adds up its experts' outputs of a
token and sends one partial sum over NVLink to the forwarder ``(m, a)``, which adds up the
partial sums of its node (``op="sum"``) and returns **one** vector per token and node over
RDMA. This is DeepSeek-V3's node-deduplicated dispatch (arXiv:2412.19437, §3.2.2: a token
crosses IB once per target node and is then forwarded over NVLink).

Both hops are pipelined: each RDMA message is cut into :data:`CHUNKS` pieces and a piece is
forwarded as soon as it has arrived (DeepEP forwards in chunks of tokens; the number of
pieces is a modelling choice, not a fitted value). Byte counts follow sampled routes
(:func:`workloads.moe.route_tokens`); ``token_bytes`` is the wire size of one token
(:mod:`workloads.moe_bytes`).

References
----------
.. [1] DeepSeek-AI, DeepEP, https://github.com/deepseek-ai/DeepEP (``internode.cu``
   dispatch/combine; docs/legacy.md "Normal kernels with NVLink and RDMA forwarding").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from collectives.schedule import Schedule, chunk_bounds
from netsim.errors import ConfigError
from netsim.validate import require_int

__all__ = ["CHUNKS", "normal_combine_schedule", "normal_dispatch_schedule", "token_targets"]

#: Pipeline pieces per RDMA message (modelling choice; see the module docstring).
CHUNKS = 4


def token_targets(
    assignments: Sequence[np.ndarray], placement: np.ndarray, domain_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Count deduplicated token copies.

    Parameters
    ----------
    assignments : sequence of ndarray
        Per source rank, the ``[tokens, top_k]`` expert ids (:func:`workloads.moe.route_tokens`).
    placement : ndarray
        EP rank of each expert.
    domain_size : int
        Ranks per node (consecutive ranks form a node).

    Returns
    -------
    per_rank, per_node : ndarray
        ``per_rank[s, d]``: tokens of ``s`` with at least one expert on rank ``d`` (diagonal:
        local). ``per_node[s, m]``: tokens of ``s`` with at least one expert on node ``m``.

    Examples
    --------
    >>> r, n = token_targets([np.array([[0, 1]]), np.array([[3, 2]])], np.arange(4), 2)
    >>> r.tolist(), n.tolist()
    ([[1, 1, 0, 0], [0, 0, 1, 1]], [[1, 0], [0, 1]])
    """
    p = np.asarray(placement)
    ranks = int(p.max()) + 1
    size = require_int("domain_size", domain_size, min=1)
    if ranks % size:
        raise ConfigError(f"domain_size: must divide the EP ranks ({ranks}), got {size}")
    per_rank = np.zeros((len(assignments), ranks), dtype=np.int64)
    per_node = np.zeros((len(assignments), ranks // size), dtype=np.int64)
    for s, a in enumerate(assignments):
        dst = p[np.asarray(a, dtype=np.int64)]
        rows = np.arange(len(dst))[:, None]
        hit = np.zeros((len(dst), ranks), dtype=bool)
        hit[rows, dst] = True
        per_rank[s] = hit.sum(axis=0)
        per_node[s] = hit.reshape(len(dst), ranks // size, size).any(axis=2).sum(axis=0)
    return per_rank, per_node


def _pieces(nbytes: int) -> list[tuple[int, int]]:
    b = chunk_bounds(nbytes, CHUNKS)
    return [(b[c], b[c + 1]) for c in range(CHUNKS)]


def normal_dispatch_schedule(
    groups: Sequence[Sequence[int]],
    targets: Sequence[tuple[np.ndarray, np.ndarray]],
    domain_size: int,
    token_bytes: int,
) -> Schedule:
    """Dispatch of every EP group at once (bytes, ``itemsize`` 1).

    ``groups[g][r]`` is the chip of EP rank ``r``; ``targets[g]`` is
    :func:`token_targets` of that group's routes.
    """
    ranks = tuple(c for g in groups for c in g)
    s = Schedule(op="alltoall", algo="normal", ranks=ranks, count=token_bytes, itemsize=1)
    recv_at: dict[int, int] = {}

    def deliver(src: int, dst: int, buf: str, lo: int, n: int, deps: list[int]) -> None:
        at = recv_at.get(dst, 0)
        s.add(src, dst, buf, lo, lo + n, "recv", at, deps=deps)
        recv_at[dst] = at + n

    for g, (per_rank, per_node) in zip(groups, targets, strict=True):
        for src in range(len(g)):
            node, loc = divmod(src, domain_size)
            sent = 0  # offset in the source's send buffer
            for m in range(per_node.shape[1]):
                members = range(m * domain_size, (m + 1) * domain_size)
                if m == node:
                    for d in members:
                        n = int(per_rank[src, d]) * token_bytes
                        if d != src and n:
                            deliver(g[src], g[d], "send", sent, n, [])
                            sent += n
                    continue
                hop = m * domain_size + loc
                total = int(per_node[src, m]) * token_bytes
                fwd = f"fwd{g[src]}"
                arrived = []
                for lo, hi in _pieces(total):
                    arrived.append(s.add(g[src], g[hop], "send", sent + lo, sent + hi, fwd, lo))
                sent += total
                for d in members:
                    n = int(per_rank[src, d]) * token_bytes
                    if d == hop or not n:
                        continue  # the forwarder's own tokens are already in place
                    for (lo, hi), i in zip(_pieces(n), arrived, strict=True):
                        if hi > lo:
                            deliver(g[hop], g[d], fwd, lo, hi - lo, [i])
    return s


def normal_combine_schedule(
    groups: Sequence[Sequence[int]],
    targets: Sequence[tuple[np.ndarray, np.ndarray]],
    domain_size: int,
    token_bytes: int,
) -> Schedule:
    """Combine of every EP group at once: NVLink to the forwarder, sum, one RDMA message back."""
    ranks = tuple(c for g in groups for c in g)
    s = Schedule(op="alltoall", algo="normal", ranks=ranks, count=token_bytes, itemsize=1)
    recv_at: dict[int, int] = {}
    for g, (per_rank, per_node) in zip(groups, targets, strict=True):
        for src in range(len(g)):  # the rank the tokens return to
            node, loc = divmod(src, domain_size)
            for m in range(per_node.shape[1]):
                members = range(m * domain_size, (m + 1) * domain_size)
                if m == node:
                    for d in members:
                        n = int(per_rank[src, d]) * token_bytes
                        if d != src and n:
                            at = recv_at.get(g[src], 0)
                            s.add(g[d], g[src], f"out{g[d]}", 0, n, "recv", at)
                            recv_at[g[src]] = at + n
                    continue
                hop = m * domain_size + loc
                acc = f"acc{g[src]}"
                into: list[list[int]] = [[] for _ in range(CHUNKS)]
                for d in members:
                    n = int(per_rank[src, d]) * token_bytes
                    if d == hop or not n:
                        continue
                    for c, (lo, hi) in enumerate(_pieces(n)):
                        if hi > lo:
                            into[c].append(
                                s.add(g[d], g[hop], f"out{g[d]}", lo, hi, acc, lo, op="sum")
                            )
                total = int(per_node[src, m]) * token_bytes
                at = recv_at.get(g[src], 0)
                for c, (lo, hi) in enumerate(_pieces(total)):
                    if hi > lo:
                        s.add(g[hop], g[src], acc, lo, hi, "recv", at + lo, deps=into[c])
                recv_at[g[src]] = at + total
    return s
