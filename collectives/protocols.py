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

from collectives.calibration import NCCL_LINK_CLASS, ProtocolCosts, link_types
from collectives.tuner import (
    BASE_LATENCY,
    HW_LATENCY,
    NCCL_TO_NETSIM,
    NET_OVERHEAD,
    PROTOS,
    System,
    nccl_times,
    system,
)
from netsim.core.errors import ConfigError
from netsim.core.validate import require_choice

__all__ = [
    "P2P_LL_THRESHOLD",
    "PAYLOAD",
    "PROTOCOLS",
    "PROTOCOL_CHOICES",
    "ProtocolChoice",
    "nccl_algorithm",
    "protocol_costs",
    "resolve",
]

#: NCCL's protocols, in NCCL's order (the tuner's table index: :data:`collectives.tuner.PROTOS`).
PROTOCOLS = PROTOS
#: What ``protocol=`` accepts: ``auto`` (NCCL's tuner) or a protocol.
PROTOCOL_CHOICES = ("auto", *PROTOCOLS)
#: Payload fraction of each protocol relative to Simple: LL stores 4 B of data with a 4 B
#: flag in every 8 B; LL128 carries 120 B of data in every 128 B line; Simple sends data
#: and flags separately.
PAYLOAD = {"LL": 0.5, "LL128": 120 / 128, "Simple": 1.0}
#: Bytes per peer and channel up to which NCCL's p2p sends use LL (``src/enqueue.cc``,
#: ``NCCL_P2P_LL_THRESHOLD`` default 16384).
P2P_LL_THRESHOLD = 16384

_RING_OPS = ("allreduce", "reduce_scatter", "allgather", "broadcast", "reduce")
_NETSIM_TO_NCCL = {v: k for k, v in NCCL_TO_NETSIM.items()}


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
        if NCCL_TO_NETSIM[k.split("/")[0]] == algo and requested in ("auto", k.split("/")[1])
    }
    if not times:
        if requested != "auto":
            return ProtocolChoice(requested, nccl, requested, "asked (not in NCCL's model here)")
        return ProtocolChoice(None, nccl, requested, "NCCL's model does not run it here")
    best = min(times, key=times.get)
    a, proto = best.split("/")
    rule = "asked" if requested != "auto" else f"NCCL's tuner: fastest protocol of {a}"
    return ProtocolChoice(proto, a, requested, rule)


_PROTO_INDEX = {p: i for i, p in enumerate(PROTOCOLS)}


def protocol_costs(
    choice: ProtocolChoice, graph: Any, ranks: Sequence[int], op: str = "allreduce"
) -> ProtocolCosts | None:
    """NCCL's latencies and payload fraction of ``choice`` (None without a protocol).

    From NCCL's tables (``src/graph/tuning.cc``, :data:`collectives.tuner.BASE_LATENCY`,
    :data:`collectives.tuner.HW_LATENCY`), the terms of ``ncclTopoTuneModel``'s latency
    charged where netsim's schedule has them: ``baseLat`` once per call; ``hwLat`` of the
    link class per step (ring, tree, CollNet): netsim's runner charges a step cost before
    each dependent transfer, so the first step's (NVLink's, or the network's with one rank
    per node) joins the per-call cost; NVLS's and NVLS+tree's NVLink term ``intraLat`` once
    per call (NCCL counts the whole in-node NVLS phase as one ``intraLat``), their network
    term per tree step; a multi-node ring's NVLink step at
    least the network post overhead (1 us, x 3 with Simple); with one rank per node the
    network step is the tree's (as NCCL). Broadcast and reduce rings with Simple take the
    tree's step (as NCCL). Point-to-point has no entry in NCCL's tables: the ring's.
    """
    if choice.protocol is None:
        return None
    p = _PROTO_INDEX[choice.protocol]
    a = {"p2p": "ring"}.get(choice.nccl_algo or "ring", choice.nccl_algo or "ring")
    sy: System | None = system(graph, ranks)
    nvlink = HW_LATENCY["nvlink"][a][p]
    net = HW_LATENCY["net"]["tree" if sy is not None and sy.ppn == 1 else a][p]
    launch = BASE_LATENCY.get(a, (0.0, 0.0, 0.0))[p]
    if a == "ring" and op in ("broadcast", "reduce") and p == 2:
        nvlink, net = HW_LATENCY["nvlink"]["tree"][p], HW_LATENCY["net"]["tree"][p]
    elif a == "ring" and sy is not None and sy.nodes > 1:
        nvlink = max(nvlink, NET_OVERHEAD * (3 if p == 2 else 1))
    if a in ("nvls", "nvls_tree"):
        launch, nvlink = launch + nvlink, 0.0
    else:  # NCCL charges the first step too; netsim's runner only steps after arrivals
        launch += net if _first_step_on_network(sy, graph) else nvlink
    if a == "collnet_direct" and sy is not None:
        launch += 2 * 0.4 * (sy.ppn - 1)  # NCCL's arity serialisation, 0.4 us a rank
    return ProtocolCosts(
        choice.protocol,
        launch=launch * 1e-6,
        step={"nvlink": nvlink * 1e-6, "net": net * 1e-6},
        payload=PAYLOAD[choice.protocol],
        source=(
            f"NCCL src/graph/tuning.cc 2.28.9, {a}/{choice.protocol}: {launch:g} us per call "
            f"(baseLat and the first step), hwLat {nvlink:g} us per NVLink step, {net:g} us "
            f"per network step; "
            f"payload x {PAYLOAD[choice.protocol]:.4g} of Simple's"
        ),
    )


def _first_step_on_network(sy: System | None, graph: Any) -> bool:
    """Whether a collective's first step crosses the network: one rank per node, or (outside
    NCCL's model) a fabric without NVLink."""
    if sy is not None:
        return sy.ppn == 1
    return "nvlink" not in {NCCL_LINK_CLASS.get(t) for t in link_types(graph)}
