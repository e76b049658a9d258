"""NCCL's protocols (LL, LL128, Simple) in a run: which one NCCL would use.

NCCL moves data with one of three protocols [1]_, and its tuner picks one per collective
together with the algorithm (``src/graph/tuning.cc``, :mod:`collectives.tuner`):

``LL``      8 B stores of 4 B data and a 4 B flag: the receiver polls the flag, no
            separate synchronisation; lowest latency, half the payload rate.
``LL128``   128 B lines of 120 B data and an 8 B flag (NVLink GPUs of one generation).
``Simple``  data and a separate flag per step (memory fences, a GPUDirect flush after a
            network receive); highest latency, full payload rate. NVLS, NVLS+tree and
            CollNet run with Simple only.

:func:`resolve` gives a run its protocol with ``library="nccl"``: the one NCCL's tuner
picks for the algorithm and size (for ``auto``: the pair the tuner picked; for a named
algorithm: the fastest protocol of that algorithm in NCCL's model), or the one asked
(``protocol="LL"`` etc., as ``NCCL_PROTO`` forces it). Point-to-point (``direct``
all-to-all and send/recv) follows NCCL's p2p rule (``src/enqueue.cc``: LL up to
``NCCL_P2P_LL_THRESHOLD`` = 16 KiB per peer and channel, else Simple; a small send uses
one channel). netsim algorithms that are not NCCL's (one-shot, recursive doubling, ...)
and systems outside NCCL's model (no NVLink GPUs) have no protocol with ``auto``.

References
----------
.. [1] NVIDIA NCCL ``src/device/prims_ll.h``, ``prims_ll128.h``, ``prims_simple.h`` and
   ``src/include/device.h`` (``NCCL_LL128_LINEELEMS`` 16 x 8 B lines of which
   ``NCCL_LL128_DATAELEMS`` 15 carry data), NCCL 2.2x.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from collectives.tuner import NCCL_TO_NETSIM, nccl_times, system
from netsim.core.errors import ConfigError
from netsim.core.validate import require_choice

__all__ = [
    "P2P_LL_THRESHOLD",
    "PROTOCOLS",
    "PROTOCOL_CHOICES",
    "ProtocolChoice",
    "nccl_algorithm",
    "resolve",
]

#: NCCL's protocols, in NCCL's order.
PROTOCOLS = ("LL", "LL128", "Simple")
#: What ``protocol=`` accepts: ``auto`` (NCCL's tuner) or a protocol.
PROTOCOL_CHOICES = ("auto", *PROTOCOLS)
#: Bytes per peer and channel up to which NCCL's p2p sends use LL (``src/enqueue.cc``,
#: ``NCCL_P2P_LL_THRESHOLD`` default 16384).
P2P_LL_THRESHOLD = 16384

_RING_OPS = ("allreduce", "reduce_scatter", "allgather", "broadcast", "reduce")
_NETSIM_TO_NCCL = {v: k for k, v in NCCL_TO_NETSIM.items() if k != "collnet_chain"}


@dataclass(frozen=True)
class ProtocolChoice:
    """The protocol of one run.

    Attributes
    ----------
    protocol : str or None
        ``LL``, ``LL128``, ``Simple``; None where no NCCL protocol applies.
    nccl_algo : str or None
        NCCL's algorithm the run stands for (``ring``, ``tree``, ``nvls``, ``nvls_tree``,
        ``collnet_direct``/``collnet_chain``, ``p2p``); None if not one of NCCL's.
    requested : str
        What was asked (``auto`` or a protocol).
    rule : str
        Why this protocol.
    """

    protocol: str | None
    nccl_algo: str | None
    requested: str
    rule: str


def nccl_algorithm(op: str, algo: str) -> str | None:
    """NCCL's algorithm that netsim's ``algo`` runs for ``op``; None if NCCL has none.

    Examples
    --------
    >>> nccl_algorithm("allreduce", "nvls-tree"), nccl_algorithm("allgather", "ring")
    ('nvls_tree', 'ring')
    >>> nccl_algorithm("alltoall", "direct"), nccl_algorithm("allreduce", "oneshot")
    ('p2p', None)
    """
    if op in ("alltoall", "sendrecv") and algo == "direct":
        return "p2p"
    if op == "allreduce":
        return _NETSIM_TO_NCCL.get(algo)
    return "ring" if op in _RING_OPS and algo == "ring" else None


def resolve(
    op: str,
    algo: str,
    graph: Any,
    ranks: Sequence[int],
    nbytes: int,
    requested: str = "auto",
    library: str = "nccl",
) -> ProtocolChoice:
    """The protocol NCCL would run ``op`` with, by ``algo`` (netsim's) on ``ranks``.

    ``nbytes``: bytes per rank (nccl-tests' size). See the module docstring for the rule.

    Raises
    ------
    ConfigError
        ``requested`` not one of :data:`PROTOCOL_CHOICES`; a protocol asked with
        ``library="none"``, for an algorithm that is not NCCL's, or that NCCL does not run
        the algorithm with (NVLS, NVLS+tree and CollNet: Simple only; p2p: LL or Simple).
    """
    require_choice("protocol", requested, PROTOCOL_CHOICES)
    if library != "nccl":
        if requested != "auto":
            raise ConfigError(
                f"protocol: NCCL's protocols apply with library nccl, got {requested!r} with "
                f"library {library!r}"
            )
        return ProtocolChoice(None, None, requested, f"library {library}: hardware only")
    nccl = nccl_algorithm(op, algo)
    if nccl is None:
        if requested != "auto":
            raise ConfigError(
                f"protocol: {algo} {op} is not one of NCCL's algorithms (protocols apply to "
                f"ring, tree, nvls, nvls-tree, collnet and direct alltoall/sendrecv), got "
                f"{requested!r}"
            )
        return ProtocolChoice(None, None, requested, "not an NCCL algorithm: no protocol")
    if nccl == "p2p":
        return _p2p(op, ranks, nbytes, requested)
    return _tuned(op, algo, nccl, graph, ranks, nbytes, requested)


def _p2p(op: str, ranks: Sequence[int], nbytes: int, requested: str) -> ProtocolChoice:
    """NCCL's p2p protocol: LL up to :data:`P2P_LL_THRESHOLD` bytes per peer, else Simple."""
    if requested == "LL128":
        raise ConfigError("protocol: NCCL's p2p sends use LL or Simple, got 'LL128'")
    if requested != "auto":
        return ProtocolChoice(requested, "p2p", requested, "asked")
    peer = nbytes // max(1, len(ranks)) if op == "alltoall" else nbytes
    proto = "LL" if peer <= P2P_LL_THRESHOLD else "Simple"
    rule = f"NCCL p2p: LL up to {P2P_LL_THRESHOLD} B per peer, else Simple"
    return ProtocolChoice(proto, "p2p", requested, rule)


def _tuned(
    op: str,
    algo: str,
    nccl: str,
    graph: Any,
    ranks: Sequence[int],
    nbytes: int,
    requested: str,
) -> ProtocolChoice:
    """The fastest protocol of ``algo`` in NCCL's model (among ``requested``), or the one
    asked where the system is outside NCCL's model."""
    sy = system(graph, ranks)
    simple_only = nccl.startswith(("nvls", "collnet"))
    if simple_only and requested not in ("auto", "Simple"):
        raise ConfigError(f"protocol: NCCL runs {algo} with Simple only, got {requested!r}")
    if sy is None or sy.ranks < 2:
        if requested != "auto":
            return ProtocolChoice(requested, nccl, requested, "asked")
        return ProtocolChoice(None, nccl, requested, "outside NCCL's model: no protocol")
    times = {
        k: t
        for k, t in nccl_times(sy, nbytes, op).items()
        if NCCL_TO_NETSIM[k.split("/")[0]] == algo
        and requested in ("auto", k.split("/")[1])
    }
    if not times:
        if requested != "auto":
            return ProtocolChoice(requested, nccl, requested, "asked (not in NCCL's model here)")
        return ProtocolChoice(None, nccl, requested, "NCCL's model does not run it here")
    best = min(times, key=times.get)
    a, proto = best.split("/")
    rule = "asked" if requested != "auto" else f"NCCL's tuner: fastest protocol of {a}"
    return ProtocolChoice(proto, a, requested, rule)
