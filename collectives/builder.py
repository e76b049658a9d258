"""Building a collective's schedule: :func:`build` and the ``auto`` pick :func:`auto_algorithm`.

:func:`build` turns ``(op, algo, ranks, count)`` into a :class:`~collectives.schedule.Schedule`
through :data:`collectives.algorithms.ALGORITHMS`, checking the options that do not apply to
the op; ``algo="auto"`` runs the algorithm NCCL's tuner picks (:mod:`collectives.tuner`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx

from collectives._common import builder_doc
from collectives.algorithms import algorithms_for, resolve
from collectives.channels import CHANNELED
from collectives.runner import gc_paused
from collectives.schedule import Schedule
from collectives.tuner import Choice, choose
from netsim.core.errors import ConfigError
from netsim.core.validate import require_int

__all__ = ["MAX_CHUNKS", "ROOTED", "auto_algorithm", "build"]

#: Most pipeline chunks a collective may be cut into (each chunk is one message per step,
#: so the schedule grows with it; a bound against typos, not a hardware limit).
MAX_CHUNKS = 65_536

#: The ops that have a root rank.
ROOTED = ("broadcast", "reduce")


def build(
    op: str,
    algo: str,
    ranks: Sequence[int],
    count: int,
    *,
    itemsize: int = 1,
    graph: nx.Graph | None = None,
    chunks: int | None = None,
    root: int = 0,
    matrix: Any = None,
    **opts: Any,
) -> Schedule:
    """Build the schedule of collective ``op`` by algorithm ``algo``.

    Parameters
    ----------
    op : str
        One of :data:`collectives.schedule.OPS`.
    algo : str
        An algorithm of ``op`` (:func:`collectives.algorithms.algorithms_for`), or
        ``"auto"``: the one NCCL's tuner picks (:func:`auto_algorithm`).
    **opts
        Algorithm-specific options (e.g. ``dims`` of ``hierarchical``).

    Raises
    ------
    ConfigError
        Unknown op or algorithm (listing the valid ones), an option that does not apply
        (``root`` for an unrooted op, ``matrix`` outside alltoall, ``chunks`` for an
        algorithm that does not pipeline, ...), or an algorithm that does not fit the ranks
        or the graph.

    Examples
    --------
    >>> s = build("allreduce", "ring", [0, 1, 2, 3], 8)
    >>> len(s.transfers)
    24
    """
    itemsize = require_int("itemsize", itemsize, min=1)
    if algo == "auto":
        algo = auto_algorithm(op, graph, list(ranks), count * itemsize, opts).algo
    fn = resolve(op, algo)
    if op not in ROOTED and root not in (0, None):
        raise ConfigError(
            f"root: only broadcast and reduce have a root, got root={root!r} for {op}"
        )
    if op != "alltoall" and matrix is not None:
        raise ConfigError(f"matrix: only alltoall takes a per-pair matrix, got one for {op}")
    if chunks is not None:
        limit = "the limit is collectives.builder.MAX_CHUNKS"
        require_int("chunks", chunks, min=1, max=MAX_CHUNKS, hint=limit)
    with gc_paused():  # millions of transfers, no cycles
        s = fn(
            list(ranks),
            count,
            itemsize=itemsize,
            graph=graph,
            chunks=chunks,
            root=root or 0,
            matrix=matrix,
            **opts,
        )
    s.validate()
    return s


# the shared arguments' entries and the Returns section come from the builders' template
build.__doc__ = builder_doc(build.__doc__ or "", first=("op", "algo"))


def auto_algorithm(
    op: str,
    graph: Any,
    ranks: Sequence[int],
    nbytes: int,
    opts: Mapping[str, Any] | None = None,
    protocol: str = "auto",
) -> Choice:
    """The algorithm ``"auto"`` runs: NCCL's tuner rule (:func:`collectives.tuner.choose`).

    With ``channels`` or ``pxn`` among the algorithm options ``opts``, the pick is among
    the algorithms that take them (ring and tree); with a ``protocol`` other than
    ``"auto"``, among the pairs of that protocol (as ``NCCL_PROTO`` restricts NCCL).

    Raises
    ------
    ConfigError
        Unknown op.
    """
    only = None
    if opts and ("channels" in opts or "pxn" in opts):
        only = {a for o, a in CHANNELED if o == op}
    protocols = None if protocol == "auto" else {protocol}
    return choose(op, graph, ranks, nbytes, algorithms_for(op)[0], only=only, protocols=protocols)
