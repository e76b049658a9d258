"""Direct collectives: every rank talks to its peers in one or two rounds of point-to-point sends.

On a switched scale-up domain (NVSwitch) every pair of chips is one switch away, so sending
to all peers at once costs few steps; these are the algorithms used for small messages there
(e.g. the one-shot and two-shot all-reduce of TensorRT-LLM's custom all-reduce kernels [1]_).

``allreduce`` ``oneshot``
    Every rank copies its whole vector into a scratch slot (``"os"``) of every peer; once
    its own sends and a peer's data have arrived, a rank adds that slot into its ``x``
    (a local transfer). One network step; each chip sends ``(p - 1) n`` bytes.
``allreduce`` ``twoshot``
    Direct reduce-scatter (rank ``i`` adds chunk ``j`` into rank ``j``), then direct
    all-gather (rank ``j`` copies its reduced chunk to every peer). Two steps; each chip
    sends ``2 (p - 1) n / p`` bytes, so two-shot wins at large sizes and one-shot at small.
``reduce_scatter`` / ``allgather`` / ``broadcast`` / ``reduce`` ``direct``
    One round of sends: to every chunk's owner, from every chunk's owner, from the root to
    everyone, from everyone into the root.
``alltoall`` ``direct``
    Rank ``i`` sends ``matrix[i][j]`` elements to every rank ``j`` at once (ordered as the
    pairwise-exchange rounds ``j = i + 1, i + 2, ...``, so no destination is favoured).
``sendrecv`` ``direct``
    One message from ``ranks[0]`` to ``ranks[1]``.

None of these pipeline: ``chunks`` other than 1 is refused.

References
----------
.. [1] NVIDIA TensorRT-LLM, ``cpp/tensorrt_llm/kernels/customAllReduceKernels.cu``:
   one-shot and two-shot all-reduce over NVLink peer memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from collectives._common import BuildRequest, builder, check_ranks, no_chunks
from collectives.schedule import Schedule, chunk_bounds
from netsim.core.errors import ConfigError
from netsim.core.validate import require_int

__all__ = [
    "allgather_direct",
    "allreduce_oneshot",
    "allreduce_twoshot",
    "alltoall_direct",
    "alltoall_matrix",
    "broadcast_direct",
    "reduce_direct",
    "reduce_scatter_direct",
    "sendrecv_direct",
]


def _setup(op: str, algo: str, req: BuildRequest, **kw: Any) -> Schedule:
    no_chunks(algo, req.chunks)
    ranks = check_ranks(req.ranks)
    count = require_int("count", req.count, min=0)
    return Schedule(op, algo, ranks, count, req.itemsize, **kw)


def _rs(s: Schedule) -> dict[int, list[int]]:
    """Direct reduce-scatter; returns rank index -> transfers into its chunk."""
    p, b = len(s.ranks), chunk_bounds(s.count, len(s.ranks))
    into: dict[int, list[int]] = {j: [] for j in range(p)}
    for k in range(1, p):
        for i in range(p):
            j = (i + k) % p
            if b[j] < b[j + 1]:
                into[j].append(s.add(s.ranks[i], s.ranks[j], "x", b[j], b[j + 1], op="sum"))
    return into


def _ag(s: Schedule, deps: dict[int, list[int]] | None = None) -> None:
    p, b = len(s.ranks), chunk_bounds(s.count, len(s.ranks))
    for k in range(1, p):
        for i in range(p):
            j = (i + k) % p
            if b[i] < b[i + 1]:
                d = deps[i] if deps else ()
                s.add(s.ranks[i], s.ranks[j], "x", b[i], b[i + 1], deps=d)


@builder("oneshot")
def allreduce_oneshot(req: BuildRequest) -> Schedule:
    """One-shot all-reduce: all-to-all copies into scratch, then local sums (see module doc).

    Parameters
    ----------
    chunks : int, optional
        Must be unset or 1.

    Returns
    -------
    Schedule
        Peers' vectors land in the scratch buffer ``"os"`` (``p * count`` elements).
    """
    s = _setup("allreduce", "oneshot", req)
    r, p, n = s.ranks, len(s.ranks), s.count
    if n == 0 or p == 1:
        return s
    sent: dict[int, list[int]] = {i: [] for i in range(p)}
    got: dict[tuple[int, int], int] = {}
    for k in range(1, p):
        for i in range(p):
            j = (i + k) % p
            got[(i, j)] = t = s.add(r[i], r[j], "x", 0, n, "os", i * n)
            sent[i].append(t)
    for j in range(p):
        for i in range(p):
            if i != j:
                s.add(r[j], r[j], "os", i * n, (i + 1) * n, "x", 0, op="sum",
                      deps=[got[(i, j)], *sent[j]])  # fmt: skip
    return s


@builder("twoshot")
def allreduce_twoshot(req: BuildRequest) -> Schedule:
    """Two-shot all-reduce: direct reduce-scatter, then direct all-gather.

    Parameters as :func:`allreduce_oneshot`.
    """
    s = _setup("allreduce", "twoshot", req)
    _ag(s, _rs(s))
    return s


@builder("direct")
def reduce_scatter_direct(req: BuildRequest) -> Schedule:
    """Direct reduce-scatter: every rank adds chunk ``j`` into rank ``j`` at once."""
    s = _setup("reduce_scatter", "direct", req)
    _rs(s)
    return s


@builder("direct")
def allgather_direct(req: BuildRequest) -> Schedule:
    """Direct all-gather: every rank copies its chunk to every peer at once."""
    s = _setup("allgather", "direct", req)
    _ag(s)
    return s


@builder("direct")
def broadcast_direct(req: BuildRequest) -> Schedule:
    """Direct broadcast: rank index ``root`` sends the vector to every other rank."""
    return _rooted("broadcast", req)


@builder("direct")
def reduce_direct(req: BuildRequest) -> Schedule:
    """Direct reduce: every rank adds its vector into rank index ``root`` at once."""
    return _rooted("reduce", req)


def _rooted(op: str, req: BuildRequest) -> Schedule:
    """Broadcast (the root sends to each peer) or reduce (each peer adds into the root)."""
    ranks = check_ranks(req.ranks)
    root = require_int("root", req.root, min=0, max=len(ranks) - 1)
    s = _setup(op, "direct", req, root=root)
    for k in range(1, len(ranks) if s.count else 1):
        peer = ranks[(root + k) % len(ranks)]
        if op == "broadcast":
            s.add(ranks[root], peer, "x", 0, s.count)
        else:
            s.add(peer, ranks[root], "x", 0, s.count, op="sum")
    return s


def alltoall_matrix(matrix: Any, p: int) -> np.ndarray:
    """Return ``matrix`` as a ``p x p`` int64 array of element counts with a zero diagonal.

    Raises
    ------
    ConfigError
        Missing, wrong shape, negative or fractional entries, non-zero diagonal (a rank's
        data for itself is a local copy, not a transfer).
    """
    if matrix is None:
        raise ConfigError("matrix: alltoall needs the per-pair element counts, got none")
    try:
        m = np.asarray(matrix, dtype=float)
        ok = m.shape == (p, p) and bool(np.all(m >= 0)) and bool(np.all(m == np.round(m)))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        shape = getattr(np.asarray(matrix, dtype=object), "shape", ())
        raise ConfigError(
            f"matrix: must be a {p}x{p} array of integers >= 0, got "
            + (f"shape {shape}" if shape and shape != (p, p) else " ".join(repr(matrix).split()))
        )
    m = m.astype(np.int64)
    for i in range(p):
        if m[i, i]:
            raise ConfigError(
                f"matrix: diagonal entries must be 0 (local data does not cross the fabric), "
                f"got matrix[{i}][{i}]={m[i, i]}"
            )
    return m


@builder("direct")
def alltoall_direct(req: BuildRequest) -> Schedule:
    """Direct all-to-all with per-pair sizes ``matrix[i][j]`` (elements, zero diagonal).

    ``count`` is recorded (use the largest row sum, as nccl-tests counts the send buffer).
    Rank ``i``'s ``"send"`` buffer holds its segments for ``j = 0..p-1`` in order; segment
    ``i`` of rank ``j``'s ``"recv"`` receives them.
    """
    s = _setup("alltoall", "direct", req)
    r, p = s.ranks, len(s.ranks)
    m = alltoall_matrix(req.matrix, p)
    s.matrix = m
    soff = np.concatenate([np.zeros((p, 1), np.int64), np.cumsum(m, axis=1)], axis=1)
    roff = np.concatenate([np.zeros((1, p), np.int64), np.cumsum(m, axis=0)], axis=0)
    for i in range(p):
        s.buffers[(r[i], "send")] = int(soff[i, p])
        s.buffers[(r[i], "recv")] = int(roff[p, i])
    for k in range(1, p):
        for i in range(p):
            j = (i + k) % p
            if m[i, j]:
                lo = int(soff[i, j])
                s.add(r[i], r[j], "send", lo, lo + int(m[i, j]), "recv", int(roff[i, j]))
    return s


@builder("direct")
def sendrecv_direct(req: BuildRequest) -> Schedule:
    """Point-to-point: ``ranks[0]`` sends its ``x`` to ``ranks[1]`` (exactly two ranks)."""
    ranks = check_ranks(req.ranks)
    if len(ranks) != 2:
        raise ConfigError(
            f"ranks: sendrecv needs exactly 2 ranks (sender, receiver), got {list(ranks)}"
        )
    s = _setup("sendrecv", "direct", req)
    if s.count:
        s.add(ranks[0], ranks[1], "x", 0, s.count)
    return s
