"""The table of algorithms: ``(op, algo) -> "module:function"`` of its schedule builder.

Builders are imported lazily (:func:`resolve`), so a missing module only fails when its
algorithm is asked for. Every builder has the signature
``fn(ranks, count, *, itemsize, graph, chunks, root, matrix, **opts) -> Schedule``, made
once by :func:`collectives._common.builder` from a body that takes a
:class:`~collectives._common.BuildRequest` and the algorithm's own options.

Also here: :data:`BUSBW_FACTOR`, the nccl-tests factor from algorithm bandwidth to bus
bandwidth per operation (``busbw = algbw * factor(n)``), from nccl-tests ``doc/PERFORMANCE.md``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from collectives.schedule import OPS
from netsim.core.errors import ConfigError

__all__ = ["ALGORITHMS", "BUSBW_FACTOR", "algorithms_for", "busbw_factor", "resolve"]

ALGORITHMS: dict[tuple[str, str], str] = {
    ("allreduce", "ring"): "collectives.ring:allreduce_ring",
    ("allreduce", "ring-bidir"): "collectives.ring:allreduce_ring_bidir",
    ("allreduce", "tree"): "collectives.tree:allreduce_tree",
    ("allreduce", "recursive-doubling"): "collectives.recursive:allreduce_recursive_doubling",
    ("allreduce", "rabenseifner"): "collectives.recursive:allreduce_rabenseifner",
    ("allreduce", "oneshot"): "collectives.direct:allreduce_oneshot",
    ("allreduce", "twoshot"): "collectives.direct:allreduce_twoshot",
    ("allreduce", "hierarchical"): "collectives.hierarchical:allreduce_hierarchical",
    ("allreduce", "innetwork"): "collectives.innetwork:allreduce_innetwork",
    ("allreduce", "torus"): "collectives.multidim:allreduce_torus",
    ("allreduce", "nvls"): "collectives.nvls:allreduce_nvls",
    ("allreduce", "nvls-tree"): "collectives.nvls:allreduce_nvls_tree",
    ("allreduce", "collnet"): "collectives.nvls:allreduce_collnet",
    ("allreduce", "collnet-chain"): "collectives.nvls:allreduce_collnet_chain",
    ("reduce_scatter", "ring"): "collectives.ring:reduce_scatter_ring",
    ("reduce_scatter", "direct"): "collectives.direct:reduce_scatter_direct",
    ("reduce_scatter", "recursive-halving"): (
        "collectives.recursive:reduce_scatter_recursive_halving"
    ),
    ("allgather", "ring"): "collectives.ring:allgather_ring",
    ("allgather", "direct"): "collectives.direct:allgather_direct",
    ("allgather", "recursive-doubling"): "collectives.recursive:allgather_recursive_doubling",
    ("broadcast", "ring"): "collectives.ring:broadcast_ring",
    ("broadcast", "tree"): "collectives.tree:broadcast_tree",
    ("broadcast", "direct"): "collectives.direct:broadcast_direct",
    ("broadcast", "innetwork"): "collectives.innetwork:broadcast_innetwork",
    ("reduce", "ring"): "collectives.ring:reduce_ring",
    ("reduce", "tree"): "collectives.tree:reduce_tree",
    ("reduce", "direct"): "collectives.direct:reduce_direct",
    ("reduce", "innetwork"): "collectives.innetwork:reduce_innetwork",
    ("alltoall", "direct"): "collectives.direct:alltoall_direct",
    ("alltoall", "hierarchical"): "collectives.hierarchical:alltoall_hierarchical",
    ("sendrecv", "direct"): "collectives.direct:sendrecv_direct",
}

#: op -> function of the rank count ``n`` giving busbw / algbw (nccl-tests PERFORMANCE.md).
BUSBW_FACTOR: dict[str, Callable[[int], float]] = {
    "allreduce": lambda n: 2.0 * (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "allgather": lambda n: (n - 1) / n,
    "alltoall": lambda n: (n - 1) / n,
    "broadcast": lambda n: 1.0,
    "reduce": lambda n: 1.0,
    "sendrecv": lambda n: 1.0,
}


def algorithms_for(op: str) -> list[str]:
    """The algorithm names of ``op`` (raises ConfigError for an unknown op)."""
    if op not in OPS:
        raise ConfigError(f"op: must be one of {', '.join(OPS)}, got {op!r}")
    return [a for o, a in ALGORITHMS if o == op]


def resolve(op: str, algo: str) -> Callable[..., Any]:
    """Return the builder of ``(op, algo)``.

    Raises
    ------
    ConfigError
        Unknown op, unknown algorithm for it (the message lists the valid ones), or a
        builder module that cannot be imported.
    """
    valid = algorithms_for(op)
    if algo not in valid:
        raise ConfigError(f"algo: for {op} must be one of auto, {', '.join(valid)}, got {algo!r}")
    path = ALGORITHMS[(op, algo)]
    modname, funcname = path.split(":")
    try:
        return getattr(importlib.import_module(modname), funcname)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"algo: {op}/{algo} is unavailable ({path}: {exc})") from None


def busbw_factor(op: str, n: int) -> float:
    """busbw / algbw for ``op`` on ``n >= 1`` ranks (0 for a one-rank all-reduce, as
    nccl-tests prints)."""
    if op not in BUSBW_FACTOR:
        raise ConfigError(f"op: must be one of {', '.join(OPS)}, got {op!r}")
    return BUSBW_FACTOR[op](max(1, n))
