"""``auto``: the algorithm NCCL's tuner picks, by message size and system.

NCCL times every (algorithm, protocol) pair with a latency-bandwidth model and runs the
fastest [1]_. This module applies that rule, with NCCL's tables, to a netsim topology:

    time(a, p) = latency(a, p) + bytes / bandwidth(a, p)

``bandwidth(a, p)``
    ``nChannels * bw`` of the algorithm's channel graph, refined as NCCL does: ring LL
    ``x 0.5`` (at most ``llMaxBw``), ring LL128 ``x 0.92`` (at most ``nChannels *
    perChMaxRingLL128Bw``), tree all-reduce ``x 0.92`` (at most ``nChannels *
    perChMaxTreeBw``), tree LL ``/ 3.8``, tree LL128 ``x 120/128``; NVLS and NVLS+tree
    ``min(bwIntra * nvlsEfficiency * (nCh-1)/nCh * 2, bwInter (x 2 on two nodes for
    NVLS+tree), perChMaxNVLSTreeBw)`` per channel; CollNet Direct divided by the
    GPU/NIC factor and ``x 0.85`` on Hopper; then converted to algorithm bandwidth (ring,
    NVLS, NVLS+tree ``x nRanks / nSteps``, tree and CollNet ``x 0.5``). Tree all-reduce is
    scaled by NCCL's ``treeCorrectionFactor`` for sizes up to 256 MiB; a multi-node ring
    all-reduce in the Simple protocol has its latency ``x 1.4`` (the ring "plateau").
``latency(a, p)``
    ``baseLat + `` per-step hardware latencies (``hwLat`` of NVLink inside a node, of the
    network between nodes): ring ``(nSteps - nInterSteps) * intraLat + nInterSteps *
    interLat`` with the intra-node step at least the network post overhead (1 us, x 3 for
    Simple); tree ``2 ((ppn - 1) intraLat + log2(nNodes) interLat)``; NVLS ``intraLat
    (+ interLat)``; NVLS+tree ``intraLat + 2 log2(nNodes) interLat``; CollNet Direct
    ``2 (min(1, ppn-1) intraLat + 0.4 (ppn-1)) + interLat``.

Availability: NVLS needs NVSwitches with ``reduction`` (NVLink SHARP) and runs inside one
node; NVLS+tree needs them and two or more nodes; CollNet needs reducing fabric switches
(``fabric_reduction``: InfiniBand SHARP). LL128 is on (NVLink GPUs of one generation).
Only all-reduce has a choice in netsim: NCCL runs broadcast and reduce on rings only, and
of its reduce-scatter/all-gather algorithms netsim has the ring; all-to-all and send/recv
are point-to-point (``direct``).

Channel graphs (what NCCL's topology search would find; netsim does not run that search)
    NCCL's per-link NVLink figure (``SM80_NVLINK_BW`` = 20.0 GB/s, ``SM90_NVLINK_BW`` =
    20.6, ``SM100_NVLINK_BW`` = 40.1) times the GPU's NVLink count is a GPU's intra-node
    total ``T``. Multi-node ring
    and tree: one channel per NIC of a node at the fastest ``speedArrayInter`` (``sm90``/``sm100``)
    speed not above the NIC's bandwidth (48 GB/s for an NDR NIC). One node: the fastest
    intra speed ``s`` (``speedArrayIntra``, ``sm90``/``sm100``) with ``floor(T/s)`` channels. NVLS
    and NVLS+tree: one channel per GPU of a node (at most 32, ``NCCL_MAX_NVLS_ARITY``),
    ``bwIntra`` the fastest speed ``s`` with ``channels * s <= T`` (and ``s`` not above the NIC across nodes), ``bwInter`` raised up to
    ``2 s`` within the speed array (the search's second pass): 8 x 40 GB/s on one DGX
    H100, for a modelled NVLS busbw of ``8 * 40 * 0.85 * 7/8 * 2 = 476`` GB/s against the
    480 GB/s NCCL's maintainers quote for H100 [2]_. The network's own latency
    (``graph->latencyInter``) is taken as 0. Systems without NVLink GPUs are outside NCCL's
    model: there ``auto`` all-reduce takes ``torus`` on a grid of a direct network (torus,
    mesh, wafer: :func:`collectives.multidim.suits`, all links at once as TPUs do) and
    otherwise the op's first algorithm (e.g. ``ring``).

References
----------
.. [1] NVIDIA NCCL, ``src/graph/tuning.cc`` (``ncclTopoTuneModel``: ``baseLatencies``,
   ``hwLatencies``, ``llMaxBws``, ``perChMax*Bws``, ``nvlsEfficiency``; ``ncclTopoGetAlgoTime``
   and ``treeCorrectionFactor``), ``src/graph/search.cc`` (speed arrays) and
   ``src/graph/topo.h`` (``SM90_NVLINK_BW``), NCCL 2.2x (master, 2025).
.. [2] S. Jeaugey, NVIDIA/nccl-tests issue 212 (2024): "On 8 GPUs, you should reach a
   peak busBw of ~480GB/s" with NVLink SHARP on H100.
"""

from __future__ import annotations

import math
from collections.abc import Sequence, Set
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from collectives.channels import layout
from collectives.multidim import suits

__all__ = [
    "BASE_LATENCY",
    "HW_LATENCY",
    "NCCL_TO_NETSIM",
    "NET_OVERHEAD",
    "Choice",
    "System",
    "channel_cap",
    "choose",
    "nccl_steps",
    "nccl_times",
    "nvls_tree_channel_cap",
    "system",
]

ALGOS = ("tree", "ring", "collnet_direct", "collnet_chain", "nvls", "nvls_tree")
PROTOS = ("LL", "LL128", "Simple")
#: NCCL's algorithm -> the netsim algorithm that runs it.
NCCL_TO_NETSIM = {
    "ring": "ring",
    "tree": "tree",
    "nvls": "nvls",
    "nvls_tree": "nvls-tree",
    "collnet_direct": "collnet",
    "collnet_chain": "collnet-chain",
}
#: NCCL's latencies in microseconds, per protocol (LL, LL128, Simple): tuning.cc
#: ``baseLatencies`` (per call) and ``hwLatencies`` (per step, NVLink and network), NCCL
#: 2.28.9 (the NVLS+tree network entry was 14 us in NCCL 2.19-2.28.7).
BASE_LATENCY = {"tree": (6.8, 14.0, 8.4), "ring": (6.6, 14.0, 8.4)}
HW_LATENCY = {
    "nvlink": {"tree": (0.6, 1.25, 4.0), "ring": (0.6, 1.9, 3.4), "collnet_direct": (0, 0, 3.7),
               "collnet_chain": (0, 0, 2.8), "nvls": (0, 0, 25), "nvls_tree": (0, 0, 25)},
    "net": {"tree": (5.0, 8.5, 14), "ring": (2.7, 4.0, 14.0), "collnet_direct": (0, 0, 31),
            "collnet_chain": (0, 0, 30), "nvls": (0, 0, 18), "nvls_tree": (0, 0, 20.9)},
}  # fmt: skip
#: NCCL's network post overhead, us (tuning.cc ``getNetOverhead``, x86): an intra-node step
#: of a multi-node ring takes at least this (x 3 for Simple).
NET_OVERHEAD = 1.0
# Per-generation tables, indexed [1 node, 2 nodes, more] (GB/s): tuning.cc.
_GEN = {
    "ampere": {
        "ll_max": (87.7, 39.0, 20.4),
        "ring_ll128": 20.0,
        "tree_ll128": (20.0, 20.0, 20.0),
        "tree": (24.0, 23.6, 17.8),
        "nvls_tree": (24.0, 23.6, 17.8),
        "nvls_eff": 0.0,
        "nvlink_bw": 20.0,
        "intra": (40.0, 30.0, 20.0, 18.0, 15.0, 12.0, 10.0, 9.0, 7.0, 6.0, 5.0, 4.0, 3.0),
        "inter": (48.0, 30.0, 28.0, 24.0, 20.0, 18.0, 15.0, 12.0, 10.0, 9.0, 7.0, 6.0, 5.0,
                  4.0, 3.0),
    },
    "hopper": {
        "ll_max": (141.0, 39.0, 20.4),  # one node: Hopper row; several: Intel CPU row
        "ring_ll128": 36.7,
        "tree_ll128": (36.7, 36.7, 29.0),
        "tree": (38.7, 41.4, 36.0),
        "nvls_tree": (0.0, 57.7, 45.5),
        "nvls_eff": 0.85,
        "nvlink_bw": 20.6,
        "intra": (60.0, 50.0, 40.0, 30.0, 24.0, 20.0, 15.0, 12.0, 11.0, 6.0, 3.0),
        "inter": (48.0, 45.0, 42.0, 40.0, 30.0, 24.0, 22.0, 20.0, 17.5, 15.0, 12.0, 6.0, 3.0),
    },
    "blackwell": {
        "ll_max": (2 * 141.0, 39.0, 20.4),
        "ring_ll128": 40.0,
        "tree_ll128": (55.6, 31.67, 20.0),
        "tree": (70.0, 42.8, 24.0),
        "nvls_tree": (0.0, 96.0, 80.0),
        "nvls_eff": 0.74,
        "nvlink_bw": 40.1,
        "intra": (90.0, 80.0, 70.0, 60.0, 50.0, 45.0, 40.0, 30.0, 24.0, 20.0, 19.0, 18.0),
        "inter": (96.0, 86.0, 80.0, 48.0, 45.1, 42.0, 40.0, 30.0, 24.0, 22.0, 20.0, 17.5,
                  15.0, 12.0, 6.0, 3.0),
    },
}  # fmt: skip
# tuning.cc treeCorrectionFactor[protocol][log2(bytes / 64)], 64 B .. 256 MiB.
_TREE_CORRECTION = (
    (1.0, 1.0, 1.0, 1.0, .9, .8, .7, .7, .7, .7, .6, .5, .4, .4, .5, .6, .7, .8, .9, 1.0,
     1.0, 1.0, 1.0, 1.0),
    (1.0, 1.0, 1.0, 1.0, 1.0, .9, .8, .8, .8, .7, .6, .6, .6, .6, .6, .6, .8, .9, .9, .9,
     .9, 1.0, 1.0, 1.0),
    (.9, .9, .9, .9, .9, .9, .9, .8, .7, .6, .6, .5, .5, .5, .5, .6, .7, .8, .7, .7, .8,
     .9, .9, .9),
)  # fmt: skip


@dataclass(frozen=True)
class System:
    """What NCCL's model needs to know of the system (see the module docstring).

    Attributes
    ----------
    gen : {"ampere", "hopper", "blackwell"}
        GPU generation, from the NVLinks: ``nvlink5`` Blackwell; ``nvlink`` Hopper with 18
        links a GPU (H100), else Ampere (A100, 12).
    nodes, ppn : int
        Nodes and ranks per node.
    nvlinks : int
        NVLink links of a GPU.
    nic_gbs : float
        Bandwidth of one NIC, GB/s (0 on one node).
    nvls, collnet : bool
        NVSwitches reduce (NVLink SHARP); fabric switches reduce (InfiniBand SHARP).
    """

    gen: str
    nodes: int
    ppn: int
    nvlinks: int
    nic_gbs: float
    nvls: bool
    collnet: bool

    @property
    def ranks(self) -> int:
        """Ranks in all."""
        return self.nodes * self.ppn


@dataclass(frozen=True)
class Choice:
    """The tuner's pick for one collective.

    Attributes
    ----------
    algo : str
        The netsim algorithm that runs it.
    nccl_algo, protocol : str or None
        NCCL's algorithm and protocol (None where NCCL's model does not apply).
    predicted_s : float or None
        NCCL's modelled time of the pick, seconds.
    times : dict
        ``"algo/protocol" -> modelled seconds`` of every candidate.
    rule : str
        Which rule decided.
    """

    algo: str
    nccl_algo: str | None = None
    protocol: str | None = None
    predicted_s: float | None = None
    times: dict[str, float] = field(default_factory=dict)
    rule: str = "nccl-tuning"


def _links(graph: nx.Graph, chip: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for _, _, d in graph.edges(chip, data=True):
        out[d.get("link", "")] = out.get(d.get("link", ""), 0) + int(d.get("count", 1))
    return out


def system(graph: Any, ranks: Sequence[int]) -> System | None:
    """Describe ``ranks`` on ``graph`` for NCCL's model; None unless they are NVLink GPUs."""
    if not isinstance(graph, nx.Graph) or not ranks or any(r not in graph for r in ranks):
        return None
    links = _links(graph, ranks[0])
    if "nvlink5" in links:
        gen = "blackwell"
    elif "nvlink" in links:  # NVLink 3 and 4 share a link type: H100 has 18 links, A100 12
        gen = "hopper" if links["nvlink"] >= 18 else "ampere"
    else:
        return None
    lay = layout(ranks, graph)
    nodes, ppn = (len(lay.nodes), lay.local) if lay else (1, len(ranks))
    nic = graph.nodes[ranks[0]].get("nic_bandwidth") or 0.0
    switches = [d for _, d in graph.nodes(data=True) if d.get("kind") == "switch"]
    fabric = [d for d in switches if d.get("role") in ("leaf", "spine")]
    return System(
        gen=gen,
        nodes=nodes,
        ppn=ppn,
        nvlinks=links.get("nvlink5", 0) + links.get("nvlink", 0),
        nic_gbs=float(nic) / 1e9 if nodes > 1 else 0.0,
        nvls=any(d.get("role") == "nvswitch" and d.get("reduction") for d in switches),
        collnet=bool(fabric) and all(d.get("reduction") for d in fabric),
    )


def _graphs(sy: System) -> dict[str, tuple[int, float, float]]:
    """``algo -> (nChannels, bwIntra, bwInter)`` of the channel graphs (module docstring)."""
    g = _GEN[sy.gen]
    total = sy.nvlinks * g["nvlink_bw"]
    speeds = [s for s in g["inter"] if s <= sy.nic_gbs] if sy.nodes > 1 else list(g["intra"])
    speeds = speeds or [g["inter"][-1]]
    if sy.nodes > 1:
        ring = (sy.ppn, speeds[0], speeds[0])
    else:
        s = next((s for s in speeds if s <= total), speeds[-1])
        ring = (max(1, int(total // s)), s, s)
    nch = min(sy.ppn, 32)  # NCCL_MAX_NVLS_ARITY
    fits = [s for s in speeds if nch * s <= total] or [0.0]
    # NVLS search, pass 2: bwInter rises up to twice bwIntra (within the speed array).
    nvls = (nch, fits[0], min(2 * fits[0], speeds[0]))
    return {"ring": ring, "tree": ring, "nvls": nvls, "nvls_tree": nvls,
            "collnet_direct": ring, "collnet_chain": ring}  # fmt: skip


def nvls_tree_channel_cap(graph: Any, ranks: Sequence[int]) -> float | None:
    """NCCL's ceiling on NVLS+tree all-reduce busbw, bytes/s: ``nChannels * perChMaxNVLSTreeBw``.

    NCCL's tuning model (``src/graph/tuning.cc``, ``ncclTopoTuneModel``) caps NVLS+tree at
    ``perChMaxNVLSTreeBws`` per channel (Hopper 57.7 GB/s on two nodes, 45.5 on three or
    more; Blackwell 96 / 80) and multiplies by the NVLS graph's channel count (one per GPU
    of a node, :func:`_graphs`: 8 on a DGX H100, so 461.6 GB/s on two nodes). These are
    NCCL's own constants, not fitted to any netsim validation row. None where NCCL has no
    such ceiling (not NVLink GPUs, one node).
    """
    sy = system(graph, ranks)
    if sy is None or sy.nodes < 2:
        return None
    per_channel = _GEN[sy.gen]["nvls_tree"][min(sy.nodes, 3) - 1]
    return _graphs(sy)["nvls_tree"][0] * per_channel * 1e9 if per_channel > 0 else None


def channel_cap(
    graph: Any, ranks: Sequence[int], nccl_algo: str | None, protocol: str | None
) -> float | None:
    """NCCL's ceiling on busbw (nccl-tests' definition), bytes/s, from its per-channel and
    LL caps for ``nccl_algo`` with ``protocol``; None where netsim applies none.

    ``src/graph/tuning.cc`` (``ncclTopoTuneModel``): ring LL at most ``llMaxBw``, ring
    LL128 at most ``nChannels * perChMaxRingLL128Bw`` (``nChannels``: NCCL's ring channels,
    :func:`_graphs`); NVLS+tree :func:`nvls_tree_channel_cap`. Ring Simple, NVLS and
    CollNet have none. NCCL's tree caps (``perChMaxTreeBw``, ``perChMaxTreeLL128Bw``, LL's
    ``llMaxBw``) are not applied: a tree channel's sends wait on its up and down passes,
    so pacing its stream at the ceiling's share would hold it far below the ceiling.
    """
    if nccl_algo == "nvls_tree":
        return nvls_tree_channel_cap(graph, ranks)
    sy = system(graph, ranks)
    if sy is None or sy.ranks < 2 or nccl_algo != "ring" or protocol not in ("LL", "LL128"):
        return None
    g, i2 = _GEN[sy.gen], min(sy.nodes, 3) - 1
    if protocol == "LL":
        return g["ll_max"][i2] * 1e9
    return _graphs(sy)["ring"][0] * g["ring_ll128"] * 1e9


def _bus_bw(sy: System, a: str, p: int, graph: tuple[int, float, float], steps: int) -> float:
    g = _GEN[sy.gen]
    i2 = min(sy.nodes, 3) - 1
    nch, bw_intra, bw_inter = graph
    bw = bw_intra if sy.nodes <= 2 or a.startswith("collnet") else bw_inter
    if a in ("nvls", "nvls_tree"):
        if p != 2 or nch < 2:
            return 0.0
        intra = bw_intra * g["nvls_eff"] * (nch - 1) / nch * 2
        inter = bw_inter * (2 if sy.nodes <= 2 and a == "nvls_tree" else 1)
        cap = g["nvls_tree"][i2] if a == "nvls_tree" else math.inf
        bw = min(intra, inter, cap)
    bus = nch * bw
    if a == "ring" and p == 0:
        bus = min(g["ll_max"][i2], bus * 0.5)
    if a == "ring" and p == 1:
        bus = min(bus * 0.92, nch * g["ring_ll128"])
    if a == "tree":
        bus = min(bus * 0.92, nch * g["tree"][i2])
        if p == 0:
            bus = min(bus / 3.8, g["ll_max"][i2])
        if p == 1:
            bus = min(bus * (7 / 9 if sy.nodes == 1 else 120 / 128), nch * g["tree_ll128"][i2])
    if a.startswith("collnet"):
        if p != 2:
            return 0.0
        if a == "collnet_direct":
            factor = sy.ppn / nch
            bus /= factor - (factor - 1) / 2
            bus *= 0.85
    return bus * (sy.ranks / steps if a in ("ring", "nvls", "nvls_tree") else 0.5)


def _latency(sy: System, a: str, p: int, op: str = "allreduce") -> float:
    intra = HW_LATENCY["nvlink"][a][p]
    inter = HW_LATENCY["net"]["tree" if sy.ppn == 1 else a][p]
    lat = BASE_LATENCY.get(a, (0, 0, 0))[p]
    log_nodes = int(math.log2(sy.nodes))
    steps = nccl_steps(op, sy.ranks)
    if a == "ring" and op in ("broadcast", "reduce"):  # a pipelined chain: Simple, tree's step
        hw = HW_LATENCY["nvlink" if sy.nodes == 1 else "net"]["tree" if p == 2 else "ring"][p]
        return lat + steps * hw
    if a == "ring":
        inter_steps = (2 if op == "allreduce" else 1) * (sy.nodes - 1)
        if sy.nodes > 1:
            intra = max(intra, NET_OVERHEAD * (3 if p == 2 else 1))
        return lat + (steps - inter_steps) * intra + inter_steps * inter
    if a == "tree":
        return lat + 2 * ((sy.ppn - 1) * intra + log_nodes * inter)
    if a == "collnet_direct":
        return lat + 2 * (min(1, sy.ppn - 1) * intra + (sy.ppn - 1) * 0.4) + inter
    if a == "collnet_chain":
        return lat + 2 * (sy.ppn - 1) * intra + inter
    if a == "nvls":
        return intra + (inter if sy.nodes > 1 else 0.0)
    return lat + intra + 2 * log_nodes * inter  # nvls_tree


def _enabled(sy: System, a: str) -> bool:
    if a == "nvls":
        return sy.nvls and sy.nodes == 1
    if a == "nvls_tree":
        return sy.nvls and sy.nodes > 1
    if a.startswith("collnet"):
        return sy.collnet and sy.nodes > 1
    return sy.ranks > 1


def nccl_steps(op: str, ranks: int) -> int:
    """NCCL's step count of ``op`` on ``ranks`` ranks (``tuning.cc`` ``nsteps``): all-reduce
    ``2 (n-1)``, reduce-scatter and all-gather ``n-1``, broadcast and reduce ``n``."""
    if op == "allreduce":
        return 2 * (ranks - 1)
    return ranks - 1 if op in ("reduce_scatter", "allgather") else ranks


def nccl_times(sy: System, nbytes: int, op: str = "allreduce") -> dict[str, float]:
    """NCCL's modelled time of ``op``, seconds, of every enabled ``"algo/protocol"``.

    Ops other than all-reduce (reduce-scatter, all-gather, broadcast, reduce) are timed on
    NCCL's ring only, the one of their NCCL algorithms netsim has.
    """
    graphs = _graphs(sy)
    out = {}
    for a in ALGOS if op == "allreduce" else ("ring",):
        if not _enabled(sy, a):
            continue
        nch = graphs[a][0]
        for p, proto in enumerate(PROTOS):
            busbw = _bus_bw(sy, a, p, graphs[a], nccl_steps(op, sy.ranks))
            if busbw <= 0:
                continue
            lat = _latency(sy, a, p, op)
            log_size = int(math.log2(nbytes >> 6)) if nbytes >> 6 else -1
            if a == "tree" and 0 <= log_size < 23:
                busbw *= _TREE_CORRECTION[p][log_size]
            coll_channels = 2 * nch  # connectRings runs every ring on two channels
            if (
                a == "ring"
                and p == 2
                and op == "allreduce"
                and sy.nodes > 1
                and nbytes // (coll_channels * sy.ranks) >= 64
            ):
                lat *= 1.4  # fmt: skip
            out[f"{a}/{proto}"] = (lat + nbytes / (1000 * busbw)) * 1e-6
    return out


def choose(
    op: str,
    graph: Any,
    ranks: Sequence[int],
    nbytes: int,
    first: str,
    *,
    only: Set[str] | None = None,
    protocols: Set[str] | None = None,
) -> Choice:
    """The algorithm ``auto`` runs for ``op`` on ``ranks`` (see the module docstring).

    ``first`` is the op's first algorithm (``ring``, or ``direct`` for all-to-all and
    send/recv): NCCL's only choice in netsim for the ops other than all-reduce, and the
    pick where NCCL's model does not apply. ``only``: netsim algorithms to choose among
    (e.g. those that take channels); ``protocols``: NCCL protocols to choose among (as
    ``NCCL_PROTO`` restricts NCCL's tuner).
    """
    sy = system(graph, ranks)
    if op != "allreduce":
        rule = "the op's only NCCL algorithm in netsim"
        if first != "ring" or sy is None or sy.ranks < 2:
            return Choice(first, rule=rule)
        return _fastest(op, sy, nbytes, first, {"ring"}, protocols, rule)
    if sy is None and suits(ranks, graph) and (only is None or "torus" in only):
        return Choice("torus", rule="grid of a direct network: every link at once (TPU style)")
    if sy is None or sy.ranks < 2:
        return Choice(first, rule="outside NCCL's model (no NVLink GPUs): the op's first")
    return _fastest(op, sy, nbytes, first, only, protocols, "nccl-tuning")


def _fastest(
    op: str,
    sy: System,
    nbytes: int,
    first: str,
    only: Set[str] | None,
    protocols: Set[str] | None,
    rule: str,
) -> Choice:
    """The fastest of NCCL's modelled (algorithm, protocol) pairs among those allowed."""
    times = nccl_times(sy, nbytes, op)
    pool = [
        k
        for k in times
        if (only is None or NCCL_TO_NETSIM[k.split("/")[0]] in only)
        and (protocols is None or k.split("/")[1] in protocols)
    ]
    if not pool:
        return Choice(first, rule="no NCCL algorithm among those allowed: the op's first")
    best = min(pool, key=times.get)
    a, proto = best.split("/")
    return Choice(NCCL_TO_NETSIM[a], a, proto, times[best], times, rule)
