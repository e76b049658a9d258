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

from collectives.schedule import Schedule
from netsim.core.errors import ConfigError
from netsim.core.validate import require_choice, require_int

__all__ = ["CHUNKS", "normal_schedule", "token_targets"]

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


def _piece(n: int, c: int) -> tuple[int, int]:
    """Bounds of piece ``c`` of :data:`CHUNKS` near-equal pieces of ``n`` bytes."""
    q, r = divmod(n, CHUNKS)
    lo = c * q + min(c, r)
    return lo, lo + q + (1 if c < r else 0)


class _Offsets:
    """Next free offset of every chip's receive buffer."""

    def __init__(self) -> None:
        self.at: dict[int, int] = {}

    def take(self, chip: int, n: int) -> int:
        lo = self.at.get(chip, 0)
        self.at[chip] = lo + n
        return lo


#: A direct NVLink message ``(home, dst, bytes)`` and a relay ``(home, rail peer, RDMA
#: bytes, [(dst, bytes), ...])``, in chips.
_Pair = tuple[int, int, int]
_Relay = tuple[int, int, int, list[tuple[int, int]]]


def _plan(
    groups: Sequence[Sequence[int]],
    targets: Sequence[tuple[np.ndarray, np.ndarray]],
    domain_size: int,
    token_bytes: int,
) -> tuple[list[_Pair], list[_Relay]]:
    """Direct NVLink pairs and relays of every group (``src`` is the token's home)."""
    direct: list[_Pair] = []
    relays: list[_Relay] = []
    for g, (per_rank, per_node) in zip(groups, targets, strict=True):
        for src in range(len(g)):
            node, loc = divmod(src, domain_size)
            for m in range(per_node.shape[1]):
                members = range(m * domain_size, (m + 1) * domain_size)
                sizes = {d: int(per_rank[src, d]) * token_bytes for d in members}
                if m == node:
                    direct += [(g[src], g[d], n) for d, n in sizes.items() if d != src and n]
                    continue
                hop = m * domain_size + loc  # the rail peer; its own tokens need no forward
                fwd = [(g[d], n) for d, n in sizes.items() if d != hop and n]
                relays.append((g[src], g[hop], int(per_node[src, m]) * token_bytes, fwd))
    return direct, relays


def normal_schedule(
    step: str,
    groups: Sequence[Sequence[int]],
    targets: Sequence[tuple[np.ndarray, np.ndarray]],
    domain_size: int,
    token_bytes: int,
) -> Schedule:
    """The dispatch (``step="dispatch"``) or the combine (``"combine"``) of every EP group at
    once (bytes, ``itemsize`` 1).

    ``groups[g][r]`` is the chip of EP rank ``r``; ``targets[g]`` is :func:`token_targets`
    of that group's routes. Dispatch sends over NVLink within the node and over RDMA to the
    rail peer, which forwards; the combine takes the same paths back, summing at the
    forwarder (module notes). Piece ``c`` of every message is emitted before piece ``c + 1``
    of any, as DeepEP's senders stream all their peers' chunks concurrently.
    """
    require_choice("step", step, ("dispatch", "combine"))
    ranks = tuple(c for g in groups for c in g)
    s = Schedule(op="alltoall", algo="normal", ranks=ranks, count=token_bytes, itemsize=1)
    direct, relays = _plan(groups, targets, domain_size, token_bytes)
    (_dispatch if step == "dispatch" else _combine)(s, direct, relays)
    return s


def _dispatch(s: Schedule, direct: list[_Pair], relays: list[_Relay]) -> None:
    """Add the dispatch's pieces to ``s``: home to target, home to rail peer to target."""
    recv, sent = _Offsets(), _Offsets()
    direct_at = [(sent.take(a, n), recv.take(b, n)) for a, b, n in direct]
    relay_at = [
        (sent.take(a, total), [recv.take(d, n) for d, n in fwd]) for a, _, total, fwd in relays
    ]
    for c in range(CHUNKS):
        for (a, b, n), (lo, at) in zip(direct, direct_at, strict=True):
            p0, p1 = _piece(n, c)
            if p1 > p0:
                s.add(a, b, "send", lo + p0, lo + p1, "recv", at + p0)
        for (a, hop, total, fwd), (lo, ats) in zip(relays, relay_at, strict=True):
            p0, p1 = _piece(total, c)
            if p1 == p0:
                continue  # forwards are no longer than the RDMA message: empty too
            i = s.add(a, hop, "send", lo + p0, lo + p1, f"fwd{a}", p0)
            for (d, n), at in zip(fwd, ats, strict=True):
                q0, q1 = _piece(n, c)
                if q1 > q0:
                    s.add(hop, d, f"fwd{a}", q0, q1, "recv", at + q0, deps=[i])


def _combine(s: Schedule, direct: list[_Pair], relays: list[_Relay]) -> None:
    """Add the combine's pieces to ``s``: NVLink to the forwarder, sum, one RDMA message
    back to the token's home."""
    recv = _Offsets()
    direct_at = [recv.take(a, n) for a, _, n in direct]
    relay_at = [recv.take(a, total) for a, _, total, _ in relays]
    for c in range(CHUNKS):
        for (home, d, n), at in zip(direct, direct_at, strict=True):
            p0, p1 = _piece(n, c)
            if p1 > p0:
                s.add(d, home, f"out{d}", p0, p1, "recv", at + p0)
        for (home, hop, total, fwd), at in zip(relays, relay_at, strict=True):
            p0, p1 = _piece(total, c)
            if p1 == p0:
                continue
            into = []
            for d, n in fwd:
                q0, q1 = _piece(n, c)
                if q1 > q0:
                    into.append(s.add(d, hop, f"out{d}", q0, q1, f"acc{home}", q0, op="sum"))
            s.add(hop, home, f"acc{home}", p0, p1, "recv", at + p0, deps=into)
