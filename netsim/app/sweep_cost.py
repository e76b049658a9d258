"""Cost of a sweep point before it runs: the packets (or flows) it will simulate, estimated.

``netsim sweep --dry-run`` prints each point's estimate and the total, and
:func:`netsim.app.sweep.run_sweep` starts the most expensive points first so that the progress
bar's ETA is not fooled by a tail of slow points.

The estimates are closed forms, cheap enough for thousands of points (a topology is built
once per spec string to count its chips and read its smallest MTU):

* ``collective``: messages ``T`` times packets per message ``min(max_segments,
  ceil(b / mtu))`` on the packet backend, ``T`` flows on the flow and analytical backends.
  Under the ``nccl`` library (the default) a message carries ``ceil(b / e)`` bytes, ``e``
  the smallest library efficiency among the fabric's link types
  (:mod:`collectives.calibration`; the route's own one when the fabric has one link type).
  ``T`` and the message size ``b`` for ``p`` ranks and ``S`` bytes per rank: all-reduce
  ``2p(p-1)`` messages of ``S/p`` (ring; ``S`` cut into ``p`` chunks of whole elements,
  empty chunks send nothing); all-gather, reduce-scatter and all-to-all ``p(p-1)`` of
  ``S/p``; broadcast, reduce and send-receive ``p-1`` of ``S``. Exact for the ring
  algorithms (tested against the engine's own packet count); other algorithms move the
  same order of bytes in other message counts, so for them it is an order of magnitude.
* ``traffic``: ``warmup + packets`` packets (the measured ones and their warm-up).
* ``decode``: the TP all-reduces of every layer (two per layer, ``batch * hidden * 2``
  bytes, ring on ``tp`` ranks) and, with ``ep > 1``, two all-to-alls per MoE layer: an upper
  bound (identical collectives may be simulated once).
* ``topo``: the chips (the metrics' work grows with them); ``probe``: 1.

Anything else (``train``, plugins, a point whose parameters do not parse) is ``None``: not
estimated, run after the estimated points.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

from netsim.core.units import parse_size

__all__ = ["estimate_cost", "message_counts"]

_P2P_OPS = ("allgather", "reduce_scatter", "alltoall")
_ROOTED_OPS = ("broadcast", "reduce", "sendrecv")


@functools.lru_cache(maxsize=64)
def _fabric(topo: str) -> tuple[int, int, float]:
    """(chips, smallest link MTU in bytes, smallest NCCL efficiency among its link types)
    of a topology spec, built once."""
    from collectives.calibration import cost_model, link_types
    from netsim.core.linktypes import LINK_TYPES
    from topologies.registry import build

    G = build(topo)
    chips = sum(1 for _, d in G.nodes(data=True) if d.get("kind") == "chip")
    mtus = [
        int(d.get("mtu", LINK_TYPES.get(str(d.get("link")), LINK_TYPES["ib"]).mtu))
        for _, _, d in G.edges(data=True)
    ]
    types = link_types(G)
    eff = cost_model("nccl", types).for_links(types).efficiency
    return chips, min(mtus, default=4096), eff


def message_counts(op: str, p: int, size: int, itemsize: int = 4) -> list[tuple[int, int]]:
    """``[(messages, bytes per message), ...]`` of ``op`` on ``p`` ranks, ``size`` bytes
    per rank (ring algorithms: the buffer is cut into ``p`` chunks of whole elements; empty
    chunks send nothing).

    Examples
    --------
    >>> message_counts("allreduce", 4, 1024)   # ring: 2(p-1) sends of each of p chunks
    [(24, 256)]
    """
    if op in _ROOTED_OPS:
        return [(p - 1, size)]
    sends = p - 1 if op in _P2P_OPS else 2 * (p - 1)
    q, r = divmod(size // itemsize, p)
    chunks = [(r, (q + 1) * itemsize), (p - r, q * itemsize)]
    return [(sends * n, b) for n, b in chunks if n and b]


def _packets(
    counts: list[tuple[int, int]], mtu: int, max_segments: int | None, efficiency: float = 1.0
) -> int:
    total = 0
    for messages, nbytes in counts:
        per = max(1, math.ceil(math.ceil(nbytes / efficiency) / mtu))
        if max_segments is not None:
            per = min(per, max_segments)
        total += messages * per
    return total


def _collective(params: Mapping[str, Any]) -> int:
    """Messages (flows) or packets of a ``collective`` point, its options read as the kind
    reads them (:class:`collectives.options.CollectiveOptions`)."""
    from collectives.options import CollectiveOptions, parse_ranks

    p = dict(params)
    chips, mtu, eff = _fabric(str(p.pop("topo")))
    op = str(p.pop("op", "allreduce"))
    p.pop("algo", None)
    size = parse_size(p.pop("size", 0) or 0)
    opts = CollectiveOptions.from_mapping(p)
    ranks = chips if opts.ranks is None else len(parse_ranks(opts.ranks, chips))
    counts = message_counts(op, ranks, size, opts.itemsize)
    if opts.backend != "packet":
        return sum(n for n, _ in counts)
    if opts.library != "nccl" or opts.efficiency is not None:
        eff = opts.efficiency or 1.0
    return _packets(counts, mtu, opts.max_segments, eff)


def _decode(params: Mapping[str, Any]) -> int:
    """Packets of a ``decode`` point's TP all-reduces and MoE all-to-alls, its options read
    as the kind reads them (:class:`workloads.options.DecodeOptions`)."""
    from netsim.core.engine.network import DEFAULT_MAX_SEGMENTS
    from workloads.models import MODELS
    from workloads.options import DecodeOptions

    p = dict(params)
    m = MODELS[str(p.pop("model"))]
    _, mtu, _ = _fabric(str(p.pop("topo")))
    for name in ("phase", "chip", "context", "prompt"):
        p.pop(name, None)
    opts = DecodeOptions.from_mapping(p)
    tokens = opts.batch * m.hidden * 2
    segs = DEFAULT_MAX_SEGMENTS  # decode runs the packet engine with its default
    cost = 0
    if opts.tp > 1:
        cost += 2 * m.layers * _packets(message_counts("allreduce", opts.tp, tokens, 2), mtu, segs)
    if opts.ep > 1:
        moe_layers = m.layers - m.first_dense_layers
        counts = message_counts("alltoall", opts.ep, tokens * m.experts_per_token, 2)
        cost += 2 * moe_layers * _packets(counts, mtu, segs)
    return max(cost, 1)


def estimate_cost(kind: str, params: Mapping[str, Any]) -> int | None:
    """Estimated packets (or flows) the point ``kind(**params)`` simulates, or ``None``.

    See the module docstring for the closed forms. Never raises: a point whose parameters
    cannot be estimated is ``None``.

    Examples
    --------
    >>> estimate_cost("collective", {"topo": "torus:dims=2x2", "size": "4KiB",
    ...                              "backend": "flow"})
    24
    """
    try:
        if kind == "collective":
            return _collective(params)
        if kind == "traffic":
            packets = int(params.get("packets", 2000))
            warmup = params.get("warmup")
            return packets + (packets if warmup is None else int(warmup))
        if kind == "decode":
            return _decode(params)
        if kind == "topo":
            return _fabric(str(params["topo"]))[0]
        if kind == "probe":
            return 1
    except Exception:  # any bad parameter: the point itself will report it when it runs
        return None
    return None
