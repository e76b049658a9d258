"""Collective schedules: the one representation every algorithm produces.

A :class:`Schedule` is a list of :class:`Transfer` s, each a message from one node to one or
more nodes that carries a slice of a named buffer and either overwrites (``"copy"``) or adds
into (``"sum"``) a slice of a buffer at the receivers. ``deps`` lists the transfers that must
have *arrived* before this one may start; a dependency always has a smaller index, so the
list order is a topological order and a schedule is a DAG by construction. Chunking and
pipelining are expressed by splitting data into more transfers and chaining their deps.

The same schedule is

* timed on a network (:func:`collectives.runner.run` on the packet engine or the analytical
  backend), and
* executed on numpy arrays (:func:`execute` here, or the runner with ``data=``), so every
  algorithm can be checked against :func:`expected`.

Buffer semantics (per rank ``r`` = position in ``ranks``; every rank has a buffer ``"x"`` of
``count`` elements; :func:`chunk_bounds` splits ``count`` into ``p`` near-equal chunks)
-----------------------------------------------------------------------------------------
``allreduce``       in: ``x_r``; out: every ``x_r`` = sum over ranks.
``reduce_scatter``  in: ``x_r``; out: chunk ``r`` of ``x_r`` = sum over ranks of chunk ``r``.
``allgather``       in: chunk ``r`` of ``x_r``; out: every ``x_r`` = all chunks, chunk ``s``
                    from rank ``s`` (``count`` is the gathered size, as nccl-tests counts it).
``broadcast``       in: ``x_root``; out: every ``x_r`` = ``x_root``.
``reduce``          in: ``x_r``; out: ``x_root`` = sum over ranks.
``alltoall``        per-pair element counts ``matrix[i][j]``; rank ``i`` has ``"send"`` holding
                    its segments for ``j = 0..p-1`` in order and ``"recv"`` receiving segments
                    from ``i = 0..p-1`` in order; out: segment ``i`` of ``recv_j`` = segment
                    ``j`` of ``send_i``.
``sendrecv``        ranks ``(a, b)``: out: ``x_b`` = ``x_a``.

A *local* transfer has ``dsts == (src,)``: it copies or adds a slice of one of the node's
buffers into another of its buffers (e.g. a received scratch buffer summed into ``x``); it
crosses no link and costs only the local reduction time in the runner.

Any other buffer (e.g. an ``"acc"`` accumulator on a reduction-capable switch, or scratch
space on a rank) starts as zeros; declare its length in ``Schedule.buffers``.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from netsim.core.errors import ConfigError

__all__ = [
    "NCCL_STEPS",
    "OPS",
    "Schedule",
    "Transfer",
    "Window",
    "apply_transfer",
    "chunk_bounds",
    "execute",
    "expected",
    "initial_buffers",
    "merge",
]

#: One-destination tuples shared by every transfer to a node (a schedule of millions of
#: transfers holds one per node, not one per transfer).
_ONE: dict[int, tuple[int]] = {}

_new_tuple = tuple.__new__

#: The collective operations a schedule can implement.
OPS = ("allreduce", "reduce_scatter", "allgather", "broadcast", "reduce", "alltoall", "sendrecv")

#: Pieces one inter-node connection has in flight: NCCL's ``NCCL_STEPS`` (8,
#: ``src/include/device.h``), the slots of a connection's buffer. A piece waits for the
#: arrival of the piece ``NCCL_STEPS`` before it on its connection, not the one just before
#: (stop-and-wait would serialise the per-step latency NCCL overlaps).
NCCL_STEPS = 8


class Window:
    """The pieces each connection has in flight: a piece sent on connection ``key`` waits
    for the arrival of the piece ``steps`` before it there (``steps=1``: a FIFO in which each
    piece waits for the previous one, stop-and-wait).

    Parameters
    ----------
    steps : int
        Pieces in flight per connection (default :data:`NCCL_STEPS`).
    """

    def __init__(self, steps: int = NCCL_STEPS) -> None:
        if not isinstance(steps, int) or steps < 1:
            raise ConfigError(f"steps: must be an integer >= 1, got {steps!r}")
        self.steps = steps
        self._sent: dict[Hashable, deque[int]] = {}

    def wait(self, key: Hashable) -> int | None:
        """The transfer a new piece on connection ``key`` waits for (None while fewer than
        ``steps`` pieces were sent there)."""
        sent = self._sent.get(key)
        return sent[0] if sent is not None and len(sent) == self.steps else None

    def sent(self, key: Hashable, i: int) -> None:
        """Record transfer ``i`` as the newest piece on connection ``key``."""
        sent = self._sent.get(key)
        if sent is None:
            sent = self._sent[key] = deque(maxlen=self.steps)
        sent.append(i)


class Transfer(NamedTuple):
    """One message of a schedule (an immutable named tuple: cheap to make by the million).

    Attributes
    ----------
    src : int
        Sending node (a chip, or a switch for in-network algorithms).
    dsts : tuple of int
        Receiving nodes; more than one means a multicast of the same bytes.
    src_buf, lo, hi : str, int, int
        The elements ``[lo, hi)`` of buffer ``src_buf`` at ``src`` are sent (read when the
        transfer starts).
    dst_buf, dst_lo : str, int
        They land in ``dst_buf[dst_lo : dst_lo + hi - lo]`` at every destination (written
        when the transfer arrives).
    op : {"copy", "sum"}
        Overwrite the destination slice, or add into it (a reduction at the receiver).
    deps : tuple of int
        Indices of transfers that must have arrived before this one starts.
    """

    src: int
    dsts: tuple[int, ...]
    src_buf: str
    lo: int
    hi: int
    dst_buf: str
    dst_lo: int
    op: str = "copy"
    deps: tuple[int, ...] = ()

    @property
    def count(self) -> int:
        """Elements carried."""
        return self.hi - self.lo

    @property
    def local(self) -> bool:
        """True for a local transfer (``dsts == (src,)``: no link is crossed)."""
        return self.dsts == (self.src,)


@dataclass(slots=True)
class Schedule:
    """A collective as a DAG of transfers (see the module docstring).

    Attributes
    ----------
    op, algo : str
        The collective (one of :data:`OPS`) and the algorithm's name.
    ranks : tuple of int
        The chips taking part, in rank order.
    count, itemsize : int
        Elements per rank buffer ``"x"`` and bytes per element.
    transfers : list of Transfer
        In a topological order (every dep index is smaller).
    buffers : dict
        ``(node, name) -> length`` for every buffer a transfer touches.
    root : int
        Rank index of the root for ``broadcast`` and ``reduce``.
    matrix : numpy.ndarray or None
        Per-pair element counts for ``alltoall``.
    groups : list of Schedule
        For a merged schedule, the schedules it was merged from (checked one by one).
    channels : dict
        Transfer index -> the library channel that moves it, for transfers whose rate a
        per-channel throughput cap limits (:func:`collectives.runner.run`,
        ``channel_rate``); empty when the builder marks none (a merge keeps none).
    connections : dict
        Transfer index -> connection label, for transfers a builder puts on a connection of
        their own (NCCL's tree channels and each tree's up and down pass are separate RDMA
        queue pairs). The runner sends a transfer with its label as the message's flow label,
        so that on the flow model messages of different connections on one route share it
        instead of queueing behind each other (:class:`netsim.core.flow.FlowNetwork`);
        unmarked transfers are connection 0. A merge keeps them.
    """

    op: str
    algo: str
    ranks: tuple[int, ...]
    count: int
    itemsize: int = 1
    transfers: list[Transfer] = field(default_factory=list)
    buffers: dict[tuple[int, str], int] = field(default_factory=dict)
    root: int = 0
    matrix: np.ndarray | None = None
    groups: list[Schedule] = field(default_factory=list)
    channels: dict[int, int] = field(default_factory=dict)
    connections: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for r in self.ranks:
            self.buffers.setdefault((r, "x"), self.count)

    def add(
        self,
        src: int,
        dsts: int | Sequence[int],
        src_buf: str,
        lo: int,
        hi: int,
        dst_buf: str | None = None,
        dst_lo: int | None = None,
        *,
        op: str = "copy",
        deps: Sequence[int | None] = (),
    ) -> int:
        """Append a transfer and return its index.

        ``dst_buf`` and ``dst_lo`` default to ``src_buf`` and ``lo``; ``None`` entries of
        ``deps`` are dropped (handy for "the previous step, if any"). Destination buffers
        are declared with the length needed.
        """
        if type(dsts) is int:
            one = _ONE.get(dsts)
            dsts = one if one is not None else _ONE.setdefault(dsts, (dsts,))
        elif isinstance(dsts, np.integer):
            dsts = (int(dsts),)
        else:
            dsts = tuple([int(d) for d in dsts])
        if dst_buf is None:
            dst_buf = src_buf
        if dst_lo is None:
            dst_lo = lo
        src, lo, hi, dst_lo = int(src), int(lo), int(hi), int(dst_lo)
        if not deps:
            dep: tuple[int, ...] = ()
        elif len(deps) == 1:
            dep = () if deps[0] is None else (int(deps[0]),)
        else:
            dep = tuple(sorted({int(d) for d in deps if d is not None}))
        # tuple.__new__ directly: the named tuple's own __new__ is a Python-level call.
        t = _new_tuple(Transfer, (src, dsts, src_buf, lo, hi, dst_buf, dst_lo, op, dep))
        self.transfers.append(t)
        b = self.buffers
        key = (src, src_buf)
        n = b.get(key)
        if n is None or n < hi:
            b[key] = hi
        end = dst_lo + hi - lo
        for d in dsts:
            key = (d, dst_buf)
            n = b.get(key)
            if n is None or n < end:
                b[key] = end
        return len(self.transfers) - 1

    @property
    def size(self) -> int:
        """Bytes of the collective as nccl-tests counts them (``count * itemsize``)."""
        return self.count * self.itemsize

    def nbytes(self, t: Transfer) -> int:
        """Bytes a transfer puts on the wire (payload only)."""
        return t.count * self.itemsize

    def validate(self) -> None:
        """Check the invariants; raise :class:`ConfigError` on the first violation."""
        # Unpacked once per transfer: a named tuple's fields by name cost a call each.
        for i, (src, dsts, src_buf, lo, hi, dst_buf, dst_lo, op, deps) in enumerate(self.transfers):
            if op != "copy" and op != "sum":
                raise ConfigError(f"transfer {i}: op must be 'copy' or 'sum', got {op!r}")
            if not 0 <= lo <= hi:
                raise ConfigError(f"transfer {i}: needs 0 <= lo <= hi, got [{lo}, {hi})")
            local = len(dsts) == 1 and dsts[0] == src
            if not dsts or (not local and src in dsts):
                raise ConfigError(f"transfer {i}: needs destinations other than its source")
            if local and src_buf == dst_buf and lo < dst_lo + hi - lo and dst_lo < hi:
                raise ConfigError(f"transfer {i}: a local transfer needs disjoint slices")
            for d in deps:
                if not 0 <= d < i:
                    raise ConfigError(f"transfer {i}: dep {d} must index an earlier transfer")


def chunk_bounds(count: int, parts: int) -> list[int]:
    """Boundaries of ``parts`` near-equal chunks of ``count`` elements (``parts + 1`` ints).

    The first ``count % parts`` chunks are one element longer, as :func:`numpy.array_split`.
    """
    if parts < 1:
        raise ConfigError(f"parts: must be >= 1, got {parts}")
    q, r = divmod(count, parts)
    out = [0]
    for i in range(parts):
        out.append(out[-1] + q + (1 if i < r else 0))
    return out


def merge(schedules: Sequence[Schedule], *, algo: str | None = None) -> Schedule:
    """Run several schedules concurrently: one schedule with their transfers interleaved.

    Used for concurrent groups (e.g. every tensor-parallel group of a system), which then
    contend for the fabric. Groups must not share buffers of the same node.
    """
    if not schedules:
        raise ConfigError("schedules: need at least one schedule to merge")
    out = Schedule(
        op=schedules[0].op if len({s.op for s in schedules}) == 1 else "mixed",
        algo=algo or "+".join(dict.fromkeys(s.algo for s in schedules)),
        ranks=tuple(r for s in schedules for r in s.ranks),
        count=max(s.count for s in schedules),
        itemsize=schedules[0].itemsize,
        buffers={},
    )
    out.buffers.clear()
    # Round-robin interleave so no group is favoured by list order (dependencies are remapped).
    out_ts = out.transfers
    rows = [(s.transfers, []) for s in schedules]  # (transfers, new index of each)
    for i in range(max(len(s.transfers) for s in schedules)):
        for ts, index in rows:
            if i < len(ts):
                t = ts[i]
                index.append(len(out_ts))
                if t.deps:
                    t = Transfer(*t[:8], tuple([index[d] for d in t.deps]))
                out_ts.append(t)
    for s in schedules:
        if s.itemsize != out.itemsize:
            raise ConfigError("schedules: all merged schedules need the same itemsize")
        for key, n in s.buffers.items():
            if key in out.buffers:
                raise ConfigError(f"schedules: buffer {key} is used by two merged schedules")
            out.buffers[key] = n
    out.groups = [g for s in schedules for g in (s.groups or [s])]
    for s, (_, index) in zip(schedules, rows, strict=True):
        out.connections.update({index[i]: c for i, c in s.connections.items()})
    return out


def initial_buffers(
    s: Schedule, inputs: Mapping[int, np.ndarray]
) -> dict[tuple[int, str], np.ndarray]:
    """The buffers of ``s`` before its first transfer: zeros, with each chip's input in its
    ``"x"`` buffer (``"send"`` for all-to-all), grown to the input's length if shorter."""
    dtype = np.result_type(*(np.asarray(v).dtype for v in inputs.values())) if inputs else float
    bufs = {k: np.zeros(n, dtype=dtype) for k, n in s.buffers.items()}
    name = "send" if s.op == "alltoall" else "x"
    for r, v in inputs.items():
        v = np.asarray(v)
        key = (r, name)
        if key not in bufs or len(bufs[key]) < len(v):
            bufs[key] = np.zeros(len(v), dtype=dtype)
        bufs[key][: len(v)] = v
    return bufs


def execute(
    s: Schedule, inputs: Mapping[int, np.ndarray], *, seed: int | None = None
) -> dict[tuple[int, str], np.ndarray]:
    """Execute a schedule on numpy arrays without timing it.

    Parameters
    ----------
    s : Schedule
    inputs : mapping
        Chip id -> its input array (``"x"``, or ``"send"`` for all-to-all).
    seed : int, optional
        ``None`` runs the transfers in list order. A seed runs them in a random order that
        respects the dependencies, with every transfer's read (start) and write (arrival)
        separated by other transfers' events: a schedule whose answer depends on timing
        (a missing dependency) fails :func:`expected` for some seed.

    Returns
    -------
    dict
        ``(node, buffer name) -> array`` after the last transfer.
    """
    bufs = initial_buffers(s, inputs)
    ts = s.transfers
    if seed is None:
        for t in ts:
            apply_transfer(bufs, t, bufs[(t.src, t.src_buf)][t.lo : t.hi].copy())
        return bufs
    rng = random.Random(seed)
    waiting = [len(t.deps) for t in ts]
    succ: list[list[int]] = [[] for _ in ts]
    for i, t in enumerate(ts):
        for d in t.deps:
            succ[d].append(i)
    ready = [i for i, w in enumerate(waiting) if w == 0]
    flying: list[tuple[int, np.ndarray]] = []
    while ready or flying:
        if ready and (not flying or rng.random() < 0.5):
            i = ready.pop(rng.randrange(len(ready)))
            t = ts[i]
            flying.append((i, bufs[(t.src, t.src_buf)][t.lo : t.hi].copy()))
        else:
            i, payload = flying.pop(rng.randrange(len(flying)))
            apply_transfer(bufs, ts[i], payload)
            for j in succ[i]:
                waiting[j] -= 1
                if waiting[j] == 0:
                    ready.append(j)
    return bufs


def apply_transfer(
    bufs: dict[tuple[int, str], np.ndarray], t: Transfer, payload: np.ndarray
) -> None:
    """Deliver ``payload`` (the bytes ``t`` read at its start) to every destination of ``t``:
    added for a ``"sum"`` transfer, copied otherwise."""
    for d in t.dsts:
        view = bufs[(d, t.dst_buf)][t.dst_lo : t.dst_lo + len(payload)]
        if t.op == "sum":
            view += payload
        else:
            view[:] = payload


def expected(
    s: Schedule, inputs: Mapping[int, np.ndarray]
) -> list[tuple[tuple[int, str], slice, np.ndarray]]:
    """What a correct schedule leaves behind: ``[((node, buffer), slice, values), ...]``.

    A merged schedule lists the expectations of each of its groups.
    """
    if s.groups:
        return [e for g in s.groups for e in expected(g, inputs)]
    ranks, p = s.ranks, len(s.ranks)
    if s.op == "alltoall":
        m = np.asarray(s.matrix, dtype=int)
        out = []
        for j in range(p):
            lo = 0
            for i in range(p):
                src_lo = int(m[i, :j].sum())
                vals = np.asarray(inputs[ranks[i]])[src_lo : src_lo + m[i, j]]
                out.append(((ranks[j], "recv"), slice(lo, lo + m[i, j]), vals))
                lo += int(m[i, j])
        return out
    x = [np.asarray(inputs[r])[: s.count] for r in ranks]
    if s.op == "sendrecv":
        return [((ranks[1], "x"), slice(0, s.count), x[0])]
    if s.op == "broadcast":
        return [((r, "x"), slice(0, s.count), x[s.root]) for r in ranks]
    total = np.sum(x, axis=0)
    if s.op == "allreduce":
        return [((r, "x"), slice(0, s.count), total) for r in ranks]
    if s.op == "reduce":
        return [((ranks[s.root], "x"), slice(0, s.count), total)]
    b = chunk_bounds(s.count, p)
    if s.op == "reduce_scatter":
        return [
            ((r, "x"), slice(b[i], b[i + 1]), total[b[i] : b[i + 1]]) for i, r in enumerate(ranks)
        ]
    if s.op == "allgather":
        full = np.concatenate([x[i][b[i] : b[i + 1]] for i in range(p)])
        return [((r, "x"), slice(0, s.count), full) for r in ranks]
    raise ConfigError(f"op: must be one of {', '.join(OPS)}, got {s.op!r}")
