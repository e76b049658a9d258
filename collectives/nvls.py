"""NCCL's switch-reduction all-reduces on multi-node systems: NVLS, NVLS+tree and CollNet
(Direct and Chain).

All of them cut the vector into ``L`` slices, one per local rank (the slice's *head*), and
run three stages per slice, pipelined in ``chunks`` pieces per slice [1]_ [2]_:

1. **Intra-node reduce.** Every GPU of a node sends the piece (op ``"sum"``) into the
   accumulator ``"nv<first rank>"`` of its node's NVSwitches, striped over them in
   proportion to a GPU's NVLinks to each (NVLink SHARP spreads a GPU's traffic over all
   its links); the switches return the sum to the head (NCCL's ``multimem.ld_reduce``). Without a reducing
   NVSwitch (``collnet`` only) every GPU sends the piece straight to the head.
2. **Inter-node all-reduce of the slice among the heads** (all on the same rail, so every
   NIC of a node carries ``1/L`` of the data):

   ``nvls-tree``
       NCCL's double binary tree over the nodes (:func:`collectives.tree.dtree_parents`);
       piece ``m`` of slice ``j`` takes tree ``(j + m) mod 2``: reduced up (``"sum"``), then sent
       down (``"copy"``).
   ``collnet``
       InfiniBand SHARP: the heads reduce into the fabric switches and the top switch
       multicasts the result back (the aggregation tree of
       :func:`collectives.innetwork.aggregation_planes` over the heads of the rail;
       buffer ``"cn<first rank>"``). Needs ``fabric_reduction`` on the leaves and spines.
3. **Intra-node broadcast.** The head sends the result to an NVSwitch (buffer
   ``"nm<first rank>"``), which multicasts it to the other GPUs of the node (NCCL's
   ``multimem.st``); without a reducing NVSwitch the head copies it to each GPU.

``collnet-chain`` (:func:`allreduce_collnet_chain`) replaces stages 1 and 3 by a chain of
the node's GPUs ending at the head (up: each adds and passes on; down: the reverse), with
``collnet``'s stage 2.

How NCCL moves the data (NCCL ``src/device/all_reduce.h``,
``RunWorkColl<ncclFuncAllReduce, ..., NCCL_ALGO_NVLS_TREE, NCCL_PROTO_SIMPLE>``;
``src/graph/connect.cc`` ``connectNvls``; ``src/transport/nvls.cc`` ``ncclNvlsTuning``) and
what is modelled of it:

- the heads are the GPUs with a NIC (one per rail on a DGX H100, so ``L`` = 8 slices), and
  every channel works on all heads' slices (``loopCount = nHeads * chunkCount``);
- channel ``c`` uses tree ``c mod 2`` of the double binary tree; here piece ``m`` of slice
  ``j`` takes tree ``(j + m) mod 2``, so each tree carries half of every slice;
- a head's up pass (NVLS ``multimem.ld_reduce`` plus its children's sums, sent to the
  parent) and down pass (received from the parent, ``multimem.st`` plus the children) run
  in separate warp groups on separate connections, so a piece's down pass overlaps the next
  pieces' up passes: here the two passes are separate FIFO streams (``"up"``/``"down"``);
- slice ``j`` is channel ``j``: every GPU's send of its slice-``j`` pieces into the
  NVSwitches is marked in ``Schedule.channels``, so NCCL's per-channel throughput cap
  (``perChMaxNVLSTreeBws``, :func:`collectives.tuner.nvls_tree_channel_cap`) paces it when
  the library is ``nccl`` (:func:`collectives.runner.run`, ``channel_rate``);
- NCCL pipelines in chunks of 128 KiB (``NCCL_NVLS_CHUNKSIZE``; 64 KiB on four or more
  nodes, ``nvlsTreeMaxChunkSize``) on 16 channels (``NVLS_NCHANNELS_SM90``): one loop step
  of its kernel moves ``16`` chunks of every head's slice. A netsim piece is one such loop
  step of a slice (:func:`piece_bytes`: on Hopper 2 MiB on two or three nodes, 1 MiB on
  more), moved as one message per stream instead of 16 chunks on 16 channels, so the
  pipeline fills and drains in about NCCL's time; at most :data:`MAX_NVLS_CHUNKS` pieces per
  slice and :data:`MAX_NVLS_PIECES` in all (beyond them pieces grow and the pipeline fills
  more slowly than NCCL's; measured in docs/validation.md).

Traffic through one head's NIC, per direction, is the closed form the tests check
(``tests/test_collectives_nvls.py``): on two nodes every head sends and receives its slice
once (``S / L`` for ``S`` bytes per rank: half up, half down). On four or more nodes a head
that is an inner node of one tree forwards two children's sums up and the result down to
two children: the busiest heads carry ``2 S / L`` each way (``S / 4`` on a DGX H100), so
NVLS+tree across four or more DGX H100 is NIC-bound at ``busbw = 2 (n-1)/n * (L/2) * B_nic``
(364 GB/s at NCCL's 47 GB/s per NDR NIC), while on two nodes the NICs carry half that and
NVLink bounds it.

``nvls`` is NVLink SHARP inside one node (stage 2 empty): the reduction and multicast of
:func:`collectives.innetwork.allreduce_innetwork` on the node's NVSwitches. NCCL runs NVLS
across nodes only together with CollNet; here that is ``collnet``.

References
----------
.. [1] NVIDIA NCCL 2.17/2.18 release notes (NVLS and NVLS+Tree algorithms for NVLink
   SHARP on H100 NVSwitch systems) and ``src/device/all_reduce.h``
   (``runRing``/``runTreeSplit``/``runNvls``/``runNvlsTree``/``runCollNetDirect``).
.. [2] R. L. Graham et al., "Scalable Hierarchical Aggregation Protocol (SHArP)",
   COMHPC 2016 (in-network reduction on InfiniBand switches; NCCL's CollNet).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from itertools import pairwise
from typing import Any

import networkx as nx

from collectives._common import BuildRequest, builder
from collectives.channels import Layout, layout
from collectives.innetwork import Plane, aggregation_planes, allreduce_innetwork
from collectives.schedule import Schedule, Window, chunk_bounds
from collectives.tree import depths, dtree_parents
from collectives.tuner import system
from netsim.core.errors import ConfigError
from netsim.core.validate import require_int

__all__ = [
    "DEFAULT_NVLS_CHUNKS",
    "MAX_NVLS_CHUNKS",
    "MAX_NVLS_PIECES",
    "allreduce_collnet",
    "allreduce_collnet_chain",
    "allreduce_nvls",
    "allreduce_nvls_tree",
    "node_switches",
    "piece_bytes",
]

#: Default pipeline pieces per slice: at least this many (a modelling choice: enough to
#: overlap the three stages) and more for large slices, pieces of :func:`piece_bytes` ...
DEFAULT_NVLS_CHUNKS = 4
#: ... up to this many per slice (bounds the schedule's size: a modelling choice; at 1 GiB
#: on four DGX H100 it leaves the flow model 4% under its 128-piece figure) ...
MAX_NVLS_CHUNKS = 64
#: ... and this many over all slices (an NVL72 rack's 72 slices: 16 each).
MAX_NVLS_PIECES = 1152


def piece_bytes(graph: Any, ranks: Sequence[int]) -> int:
    """Bytes of a head's slice one loop step of NCCL's NVLS+tree kernel moves: its NVLS
    channels times its NVLS+tree chunk (NCCL ``src/transport/nvls.cc``, ``ncclNvlsTuning``):
    the default pipeline piece of :func:`allreduce_nvls_tree` and ``collnet``.

    Hopper: 16 channels (``NVLS_NCHANNELS_SM90``) of 128 KiB (``NCCL_NVLS_CHUNKSIZE``), of
    64 KiB on four or more nodes (``nvlsTreeMaxChunkSize``). Blackwell across nodes
    (``ncclNvlsTreeSm100Tuning``, NICs of 48-96 GB/s on the GPU's PCIe switch, as
    netsim's ``hierarchical`` places them): 32 channels on two nodes, 24 on more, chunks of
    64 KiB. Other systems: Hopper's.

    Examples
    --------
    >>> from topologies.registry import build
    >>> [piece_bytes(build(f"hierarchical:nodes={n}"), range(8 * n)) >> 10 for n in (2, 4)]
    [2048, 1024]
    """
    sy = system(graph, ranks)
    nodes = sy.nodes if sy else 2
    if sy is not None and sy.gen == "blackwell" and nodes > 1:
        return (32 if nodes == 2 else 24) * (64 << 10)
    return 16 * ((64 if nodes >= 4 else 128) << 10)


def node_switches(graph: nx.Graph, node: Sequence[int]) -> list[int]:
    """The reducing NVSwitches every chip of ``node`` links to (sorted; may be empty)."""
    common = None
    for chip in node:
        near = {
            v
            for v in graph.adj[chip]
            if graph.nodes[v].get("kind") == "switch" and graph.nodes[v].get("role") == "nvswitch"
        }
        common = near if common is None else common & near
    return sorted(s for s in common or () if graph.nodes[s].get("reduction"))


class _Stages:
    """Emit the three stages of one piece. A piece is striped over the node's NVSwitches
    in proportion to a GPU's NVLinks to each (NVLink SHARP spreads every GPU's traffic
    over all its links)."""

    def __init__(self, s: Schedule, graph: nx.Graph, lay: Layout, need_switch: bool) -> None:
        self.s, self.lay = s, lay
        # A stage's pieces follow one another; a connection keeps NCCL_STEPS in flight.
        self.fifo, self.window = Window(1), Window()
        self.sw = [node_switches(graph, node) for node in lay.nodes]
        if need_switch and not all(self.sw):
            raise ConfigError(
                "graph: nvls needs NVSwitches with reduction (NVLink SHARP) in every node"
            )
        self.weight = [
            [int(graph.edges[node[0], w].get("count", 1)) for w in sws]
            for node, sws in zip(lay.nodes, self.sw, strict=True)
        ]
        first = s.ranks[0]
        self.acc, self.mc, self.cn = f"nv{first}", f"nm{first}", f"cn{first}"

    def add(self, src: int, dsts: Any, sbuf: str, lo: int, hi: int, dbuf: str, op: str,
            deps: list[int | None], stage: str | int = "") -> int:  # fmt: skip
        # Per (sender, receivers, stage); an inter-node pass's stage is its connection label.
        key = (src, dsts if isinstance(dsts, int) else tuple(dsts), dbuf, stage)
        queue = self.window if isinstance(stage, int) else self.fifo
        i = self.s.add(src, dsts, sbuf, lo, hi, dbuf, lo, op=op, deps=[*deps, queue.wait(key)])
        queue.sent(key, i)
        return i

    def stripes(self, n: int, lo: int, hi: int) -> list[tuple[int, int, int]]:
        """``(switch, lo, hi)``: ``[lo, hi)`` cut over node ``n``'s NVSwitches by weight."""
        w = self.weight[n]
        total, acc, out = sum(w), 0, []
        for sw, x in zip(self.sw[n], w, strict=True):
            a = lo + (hi - lo) * acc // total
            acc += x
            b = lo + (hi - lo) * acc // total
            if b > a:
                out.append((sw, a, b))
        return out

    def reduce_to_head(self, n: int, j: int, lo: int, hi: int, channel: bool = False) -> list[int]:
        """Stage 1: the node's sum lands in the head's ``x`` once the returned transfers
        have arrived. With ``channel`` every GPU's send of its piece is marked as channel
        ``j``'s (``Schedule.channels``: the stream a per-channel cap paces)."""
        node, head = self.lay.nodes[n], self.lay.nodes[n][j]
        if not self.sw[n]:  # direct: every GPU adds its piece into the head
            return [self.add(g, head, "x", lo, hi, "x", "sum", []) for g in node if g != head]
        out = []
        for sw, a, b in self.stripes(n, lo, hi):
            # A channel's sends are a stream of their own (NCCL's channels run concurrently).
            stream = f"c{j}" if channel else ""
            ups = [self.add(g, sw, "x", a, b, self.acc, "sum", [], stream) for g in node]
            if channel:
                self.s.channels.update(dict.fromkeys(ups, j))
            out.append(self.add(sw, head, self.acc, a, b, "x", "copy", ups))
        return out

    def broadcast_from_head(self, n: int, j: int, lo: int, hi: int, deps: list[int]) -> None:
        """Stage 3: the head's result reaches every GPU of its node."""
        node, head = self.lay.nodes[n], self.lay.nodes[n][j]
        others = [g for g in node if g != head]
        if not others:
            return
        if not self.sw[n]:
            for g in others:
                self.add(head, g, "x", lo, hi, "x", "copy", deps)
            return
        for sw, a, b in self.stripes(n, lo, hi):
            up = self.add(head, sw, "x", a, b, self.mc, "copy", deps)
            self.add(sw, others, self.mc, a, b, "x", "copy", [up])


def _setup(
    algo: str, ranks: Sequence[int], count: Any, itemsize: Any, graph: Any, chunks: Any
) -> tuple[Schedule, Layout, int]:
    if len(ranks) < 1 or len(set(ranks)) != len(ranks):
        raise ConfigError(f"ranks: must be one or more distinct chips, got {list(ranks)}")
    count = require_int("count", count, min=0)
    itemsize = require_int("itemsize", itemsize, min=1)
    lay = layout(ranks, graph)
    if lay is None or len(lay.nodes) < 2:
        got = "chips without 'node'" if lay is None else f"{len(ranks)} ranks on one node"
        raise ConfigError(
            f"ranks: {algo} runs across two or more nodes (chips with 'node'); inside one "
            f"NVLink domain use nvls, got {got}"
        )
    if chunks is None:
        by_size = -(-count * itemsize // (lay.local * piece_bytes(graph, ranks)))
        most = min(MAX_NVLS_CHUNKS, MAX_NVLS_PIECES // lay.local)
        k = max(DEFAULT_NVLS_CHUNKS, min(most, by_size))
    else:
        k = require_int("chunks", chunks, min=1)
    return Schedule("allreduce", algo, tuple(int(r) for r in ranks), count, itemsize), lay, k


def _pieces(count: int, L: int, k: int) -> list[tuple[int, int, int, int]]:
    """``(slice j, piece m, lo, hi)`` of every non-empty piece, piece-major (pipelined)."""
    b = chunk_bounds(count, L)
    out = []
    for m in range(k):
        for j in range(L):
            sub = chunk_bounds(b[j + 1] - b[j], k)
            lo, hi = b[j] + sub[m], b[j] + sub[m + 1]
            if hi > lo:
                out.append((j, m, lo, hi))
    return out


@builder("nvls-tree")
def allreduce_nvls_tree(req: BuildRequest) -> Schedule:
    """NVLS+tree all-reduce: NVLink SHARP inside nodes, double binary trees across them.

    Parameters
    ----------
    ranks : sequence of int
        Chips on two or more nodes (chips with ``node`` and ``local_rank``).
    graph : networkx.Graph
        The topology: every node needs NVSwitches with ``reduction``.
    chunks : int, optional
        Pipeline pieces per slice (default :data:`DEFAULT_NVLS_CHUNKS`, more for large
        messages: pieces of :func:`piece_bytes`, up to :data:`MAX_NVLS_CHUNKS`).

    Raises
    ------
    ConfigError
        Ranks on one node, no reducing NVSwitch, bad ``count``/``chunks``, unknown option.
    """
    s, lay, k = _setup("nvls-tree", req.ranks, req.count, req.itemsize, req.graph, req.chunks)
    st = _Stages(s, req.graph, lay, need_switch=True)
    trees = dtree_parents(len(lay.nodes))
    for j, m, lo, hi in _pieces(s.count, lay.local, k):
        t = (j + m) % 2
        parents, up, dn = trees[t], _connection(t, "up"), _connection(t, "down")
        heads = [node[j] for node in lay.nodes]
        have = {n: st.reduce_to_head(n, j, lo, hi, channel=True) for n in range(len(heads))}
        got = {n: list(have[n]) for n in have}
        order = _leaves_first(parents)
        for n in order:
            u = parents[n]
            if u >= 0:  # after the parent's own node sum has landed (it overwrites x)
                i = st.add(heads[n], heads[u], "x", lo, hi, "x", "sum", got[n] + have[u], up)
                s.connections[i] = up
                got[u].append(i)
        final: dict[int, list[int]] = {}
        for n in order[::-1]:
            u = parents[n]
            final[n] = got[n]
            if u >= 0:
                i = st.add(heads[u], heads[n], "x", lo, hi, "x", "copy", final[u], dn)
                s.connections[i] = dn
                final[n] = [i]
        for n in range(len(heads)):
            st.broadcast_from_head(n, j, lo, hi, final[n])
    return s


def _connection(tree: int, stage: str) -> int:
    """The connection label of a tree's up or down pass between two heads: four distinct
    connections (in NCCL tree ``t`` is its own channels' and each pass its own warps' and
    connection's), so no pass queues behind another on a route two passes share."""
    return 1 + 2 * tree + (stage == "down")


def _leaves_first(parents: Sequence[int]) -> list[int]:
    depth = depths(parents)
    return sorted(range(len(parents)), key=lambda r: (-depth[r], r))


@builder("collnet")
def allreduce_collnet(req: BuildRequest) -> Schedule:
    """CollNet all-reduce: intra-node reduce to the heads, InfiniBand SHARP across nodes.

    Parameters as :func:`allreduce_nvls_tree`; the fabric switches joining the heads of a
    rail need ``reduction`` (``fabric_reduction=true``); NVSwitches without reduction are
    replaced by direct sends to the heads.
    """
    s, lay, k = _setup("collnet", req.ranks, req.count, req.itemsize, req.graph, req.chunks)
    st = _Stages(s, req.graph, lay, need_switch=False)
    rails = [
        aggregation_planes(req.graph, [node[j] for node in lay.nodes]) for j in range(lay.local)
    ]
    for j, m, lo, hi in _pieces(s.count, lay.local, k):
        heads = [node[j] for node in lay.nodes]
        plane = rails[j][m % len(rails[j])]
        down = _sharp(st, plane, heads, (j, lo, hi), st.reduce_to_head)
        for n in range(len(heads)):
            st.broadcast_from_head(n, j, lo, hi, [down])
    return s


def _sharp(
    st: _Stages,
    plane: Plane,
    heads: Sequence[int],
    piece: tuple[int, int, int],
    ready: Callable[..., list[int]],
) -> int:
    """Piece ``(j, lo, hi)`` of slice ``j`` through the fabric's aggregation tree
    (InfiniBand SHARP): node ``n``'s head adds its ``x`` into its leaf switch once
    ``ready(n, j, lo, hi)`` has arrived (called in node order, it adds the node's own
    transfers and returns those the send waits for), the switches sum up ``plane``, and its
    root multicasts the result to ``heads``; returns the multicast."""
    j, lo, hi = piece
    into: dict[int, list[int]] = {}
    for n, h in enumerate(heads):
        deps = ready(n, j, lo, hi)
        into.setdefault(plane.parent[h], []).append(
            st.add(h, plane.parent[h], "x", lo, hi, st.cn, "sum", deps)
        )
    for sw in plane.order[:-1]:
        up = plane.parent[sw]
        into.setdefault(up, []).append(st.add(sw, up, st.cn, lo, hi, st.cn, "sum", into[sw]))
    return st.add(plane.root, heads, st.cn, lo, hi, "x", "copy", into[plane.root])


def _up_chain(st: _Stages, chains: list[list[int]], n: int, j: int, lo: int, hi: int) -> list[int]:
    """Node ``n``'s piece ``[lo, hi)`` of slice ``j`` summed up its chain to the head;
    returns the last send."""
    prev: list[int] = []
    for a, b in pairwise(chains[n]):
        prev = [st.add(a, b, "x", lo, hi, "x", "sum", prev, f"up{j}")]
    return prev


@builder("collnet-chain")
def allreduce_collnet_chain(req: BuildRequest) -> Schedule:
    """CollNet Chain all-reduce (NCCL's ``COLLNET_CHAIN``): a chain through each node's
    GPUs to the slice's head, InfiniBand SHARP across nodes, the chain back down.

    Slice ``j`` (NCCL's channel on rail ``j``) is reduced along the node's chain ``j+1, j+2,
    ..., j`` (each GPU adds what it received into its vector and passes the sum on, over
    NVLink), its head reduces it into the fabric's aggregation tree as ``collnet`` does, and
    the result goes back down the chain in reverse (NCCL ``src/device/all_reduce.h``,
    ``runCollNetChain``; ``src/graph/connect.cc``, the chain of ``connectCollNet``). Every
    GPU sends each slice once up and once down: ``2 S`` over NVLink per GPU for ``S``
    bytes per rank, so the chain is NVLink-bound (a node's NIC carries ``S / L``).
    NVSwitch reduction is not used. Parameters as :func:`allreduce_collnet`.
    """
    s, lay, k = _setup("collnet-chain", req.ranks, req.count, req.itemsize, req.graph, req.chunks)
    st = _Stages(s, req.graph, lay, need_switch=False)
    L = lay.local
    rails = [aggregation_planes(req.graph, [node[j] for node in lay.nodes]) for j in range(L)]
    for j, m, lo, hi in _pieces(s.count, L, k):
        heads = [node[j] for node in lay.nodes]
        plane = rails[j][m % len(rails[j])]
        chains = [[node[(j + 1 + i) % L] for i in range(L)] for node in lay.nodes]
        down = [_sharp(st, plane, heads, (j, lo, hi), partial(_up_chain, st, chains))]
        for chain in chains:  # the head's result back down the chain
            prev = down
            for a, b in pairwise(chain[::-1]):
                prev = [st.add(a, b, "x", lo, hi, "x", "copy", prev, f"down{j}")]
    return s


@builder("nvls")
def allreduce_nvls(req: BuildRequest) -> Schedule:
    """NVLS all-reduce inside one NVLink domain: reduction and multicast in its NVSwitches
    (:func:`collectives.innetwork.allreduce_innetwork`), refused across nodes.

    Parameters as :func:`allreduce_nvls_tree`.
    """
    lay = layout(req.ranks, req.graph)
    if lay is not None and len(lay.nodes) > 1:
        raise ConfigError(
            "ranks: nvls runs inside one NVLink domain, got ranks on "
            f"{len(lay.nodes)} nodes; across nodes use nvls-tree or collnet"
        )
    if isinstance(req.graph, nx.Graph) and not any(
        d.get("role") == "nvswitch" and d.get("reduction") for _, d in req.graph.nodes(data=True)
    ):
        raise ConfigError("graph: nvls needs NVSwitches with reduction (NVLink SHARP)")
    s = allreduce_innetwork(
        req.ranks, req.count, itemsize=req.itemsize, graph=req.graph, chunks=req.chunks, root=req.root,
        matrix=req.matrix,
    )  # fmt: skip
    s.algo = "nvls"
    return s
