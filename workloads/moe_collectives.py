"""MoE dispatch and combine as collectives on the fabric.

Dispatch runs as an all-to-all (``direct`` = DeepEP's ``low-latency``, ``hierarchical``), as
DeepEP's ``normal`` two-hop forwarding (:mod:`workloads.moe_normal`) or as switch multicast
(``multicast``: ``_multicast_schedule``, one copy per token and destination set); the combine
as an all-to-all, DeepEP ``normal``, or reduced in the switches (``innetwork``:
``innetwork_combine_schedule`` on the aggregation trees of :mod:`collectives.innetwork`).
Dispatch and combine carry the model's wire formats (``dispatch_dtype``, ``combine_dtype``;
:mod:`workloads.moe_bytes`). ``moe_runs`` routes one layer's
tokens (expected counts or sampled routes, :mod:`workloads.moe`) and times dispatch and
combine for every EP group of the system at once (the ``combine=`` and ``moe_mode=``
defaults are resolved by :meth:`workloads.options.DecodeOptions.moe_algorithms`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import networkx as nx
import numpy as np

from collectives import build
from collectives.calibration import link_types
from collectives.schedule import Schedule, chunk_bounds, merge
from netsim.core.errors import ConfigError
from workloads import moe
from workloads.fabric import CollectiveRun, Fabric, elements, retag
from workloads.models import TransformerModel
from workloads.moe_bytes import parse_wire_dtype
from workloads.moe_kernels import KERNEL_MODES, CallShape, KernelModel, kernel_cost_model
from workloads.moe_nodes import route_node_limited
from workloads.moe_normal import normal_schedule, token_targets
from workloads.sharding import Parallelism

__all__ = [
    "COMBINE_ALGOS",
    "DISPATCH_ALGOS",
    "MoeTraffic",
    "innetwork_combine_schedule",
    "moe_runs",
]


#: MoE dispatch algorithms: ``direct`` and its DeepEP name ``low-latency`` (one copy per
#: token and expert, straight to the expert's GPU), ``normal`` (DeepEP: RDMA once per node
#: to the rail peer, then NVLink; :mod:`workloads.moe_normal`), ``hierarchical`` (NCCL PXN:
#: NVLink to the rail GPU of the own node, then RDMA), ``multicast`` (switch multicast).
DISPATCH_ALGOS = ("direct", "low-latency", "normal", "hierarchical", "multicast")
#: MoE combine algorithms (default: the dispatch algorithm, ``direct`` after ``multicast``;
#: ``innetwork``: the switches add up the expert outputs of a token on the way back).
COMBINE_ALGOS = ("direct", "low-latency", "normal", "hierarchical", "innetwork")
#: Schedule builders of the all-to-all modes (``low-latency`` is DeepEP's name for direct).
_BUILD = {"low-latency": "direct"}


def _require_capable(fabric: Fabric, what: str, src: int, dsts: Sequence[int]) -> None:
    """Refuse a multicast/in-network transfer whose route crosses a switch without the
    ``reduction`` capability (the topology attribute for in-switch reduction and multicast)."""
    for d in dsts:
        for a, _, _ in fabric.edges(src, d):
            node = fabric.graph.nodes[a]
            if node.get("kind") == "switch" and not node.get("reduction"):
                raise ConfigError(
                    f"{what}: switch {a} on the route {src}->{d} cannot multicast or reduce "
                    "in-network (reduction=False)"
                )


def _multicast_schedule(
    fabric: Fabric,
    groups: Sequence[Sequence[int]],
    sets: Sequence[Sequence[Mapping[tuple[int, ...], int]]],
    hidden: int,
    itemsize: int,
) -> Any:
    """Dispatch as switch multicast: each token sent once to all chips of its experts.

    ``sets[g][s]`` maps the remote ranks a token of source rank ``s`` of group ``g`` needs to
    the number of such tokens (:func:`workloads.moe.contributor_sets`).
    """
    if not any(k == "switch" for _, k in fabric.graph.nodes(data="kind")):
        raise ConfigError("dispatch: multicast needs a switched topology, got a direct network")
    ranks = tuple(c for g in groups for c in g)
    s = Schedule(op="alltoall", algo="multicast", ranks=ranks, count=hidden, itemsize=itemsize)
    for g, per_src in zip(groups, sets, strict=True):
        for si, by_set in enumerate(per_src):
            src = g[si]
            lo = 0
            for dst, ntok in by_set.items():
                hi = lo + ntok * hidden
                targets = [g[d] for d in dst]
                if len(targets) > 1:
                    _require_capable(fabric, "dispatch", src, targets)
                s.add(src, targets, "send", lo, hi, f"mc{src}", lo)
                lo = hi
    return s


def innetwork_combine_schedule(
    graph: nx.Graph,
    groups: Sequence[Sequence[int]],
    sets: Sequence[Sequence[Mapping[tuple[int, ...], int]]],
    hidden: int,
    itemsize: int,
) -> Any:
    """MoE combine reduced by the switches (SHARP-style), built on the aggregation trees of
    :func:`collectives.innetwork.aggregation_planes`.

    For every source chip and every set ``C`` of remote ranks its tokens were sent to
    (``sets``, see :func:`workloads.moe.contributor_sets`), each chip of ``C`` sends its
    partial sums of those tokens (its local experts already added) up the aggregation tree
    of ``C`` with op ``"sum"``; a switch forwards its accumulator once all its children
    arrived and the root switch sends the reduced result to the source, which therefore
    receives **one** hidden vector per token instead of one per contributing rank. Tokens
    whose contributions come from one rank only are sent directly (nothing to reduce).
    Data are split over the tree's planes and into
    :data:`collectives.innetwork.CHUNKS_PER_PLANE` pipelined chunks per plane, as
    :func:`collectives.innetwork.allreduce_innetwork` does.

    Raises
    ------
    ConfigError
        Naming ``combine`` if a switch of an aggregation tree cannot reduce.
    """
    from collectives.innetwork import CHUNKS_PER_PLANE, reduce_up

    ranks = tuple(c for g in groups for c in g)
    s = Schedule(op="alltoall", algo="innetwork", ranks=ranks, count=hidden, itemsize=itemsize)
    planes_of: dict[tuple[int, ...], Any] = {}
    for g, per_src in zip(groups, sets, strict=True):
        for si, by_set in enumerate(per_src):
            dst = g[si]
            at = 0  # offset in the source's receive buffer
            for k, (members, ntok) in enumerate(by_set.items()):
                n = ntok * hidden
                contrib = tuple(g[r] for r in members)
                buf = f"cmb{dst}.{k}"
                if len(contrib) == 1:
                    s.add(contrib[0], dst, buf, 0, n, "recv", at)
                    at += n
                    continue
                if contrib not in planes_of:
                    planes_of[contrib] = _combine_planes(graph, contrib)
                planes = planes_of[contrib]
                acc = f"acc{dst}.{k}"
                bounds = chunk_bounds(n, CHUNKS_PER_PLANE * len(planes))
                last: dict[Any, int] = {}
                for c in range(len(bounds) - 1):
                    lo, hi = bounds[c], bounds[c + 1]
                    if lo == hi:
                        continue
                    pl = planes[c % len(planes)]
                    up = reduce_up(s, pl, lo, hi, acc, last, sources=contrib, buf=buf)
                    key = (pl.root, dst)
                    deps = [*up, last.get(key)]
                    last[key] = s.add(pl.root, dst, acc, lo, hi, "recv", at + lo, deps=deps)
                at += n
    return s


def _combine_planes(graph: nx.Graph, contrib: tuple[int, ...]) -> Any:
    """The aggregation planes of ``contrib`` (:func:`collectives.innetwork.
    aggregation_planes`), refused as a ``combine`` error where the switches cannot reduce."""
    from collectives.innetwork import aggregation_planes

    try:
        return aggregation_planes(graph, contrib)
    except ConfigError as exc:
        raise ConfigError(f"combine: innetwork cannot run here; {exc}") from None


def _wire(m: TransformerModel, which: str) -> tuple[int, int]:
    """``(elements per token, itemsize)`` of the dispatch or combine wire format."""
    spec = m.dispatch_dtype if which == "dispatch" else m.combine_dtype
    if not spec:
        return elements(m.hidden * m.act_dtype_bytes, m.act_dtype_bytes)
    w = parse_wire_dtype(spec, name=f"{which}_dtype")
    size = 1 if w.group else w.itemsize
    return w.token_bytes(m.hidden) // size, size


def _ranks_per_node(fabric: Fabric, group: Sequence[int]) -> int | None:
    """EP ranks per node of ``group`` (consecutive ranks sharing the chips' ``node``
    attribute, the same number on every node), or None if the group is not such a grid."""
    nodes = [fabric.graph.nodes[c].get("node") for c in group]
    if None in nodes:
        return None
    size = nodes.count(nodes[0])
    blocks = [nodes[i : i + size] for i in range(0, len(nodes), size)]
    if any(b != [b[0]] * size for b in blocks) or len({b[0] for b in blocks}) != len(blocks):
        return None
    return size


def _domain_size(fabric: Fabric, groups: Sequence[Sequence[int]], what: str) -> int:
    """EP ranks per node for ``normal`` (:func:`_ranks_per_node`, required)."""
    sizes = {_ranks_per_node(fabric, g) for g in groups}
    if None in sizes or len(sizes) != 1:
        raise ConfigError(
            f"{what}: normal forwards through the GPUs of each node and needs chips with a "
            "node attribute (a hierarchical topology), every EP group holding the same number "
            "of consecutive ranks on each node"
        )
    return sizes.pop()


@dataclass(frozen=True)
class MoeTraffic:
    """How one MoE layer's tokens are routed and moved.

    Attributes
    ----------
    dispatch, combine : str
        The algorithms (:data:`DISPATCH_ALGOS`, :data:`COMBINE_ALGOS`), defaults resolved.
    routing : str
        Routing spec (:func:`workloads.moe.parse_routing`).
    mode : str
        ``expected`` (mean counts) or ``sample`` (routes drawn with ``seed``).
    seed : int
        Seed of the sampled routes.
    """

    dispatch: str
    combine: str
    routing: str
    mode: str
    seed: int


def moe_runs(
    m: TransformerModel,
    par: Parallelism,
    fabric: Fabric,
    chips: list[int],
    tokens_per_rank: int,
    traffic: MoeTraffic,
    kernels: KernelModel | None = None,
) -> tuple[CollectiveRun, CollectiveRun]:
    """Time one layer's dispatch and combine; with ``kernels`` (:mod:`workloads.moe_kernels`)
    the DeepEP modes (``low-latency``, ``normal``) also pay the kernels' per-call costs."""
    dispatch, combine = traffic.dispatch, traffic.combine
    km = kernels or KernelModel("none")
    fd, fc = (_kernel_fabric(fabric, km, algo) for algo in (dispatch, combine))
    ep = par.ep
    groups = [[chips[r] for r in grp] for grp in par.ep_groups()]
    placement = moe.place_experts(m.experts, ep, "contiguous")
    (d_el, d_size), (c_el, c_size) = _wire(m, "dispatch"), _wire(m, "combine")
    if fd is not fabric and dispatch == "low-latency":
        d_el += km.header_bytes // d_size  # the int4 header of every DeepEP LL message
    disp, comb = _fabric_runs(
        m,
        fd,
        fc,
        groups,
        placement,
        tokens_per_rank,
        traffic,
        ((d_el, d_size), (c_el, c_size)),
    )
    shape = CallShape(
        dispatch,
        tokens_per_rank,
        m.experts_per_token,
        m.experts,
        m.hidden,
        m.act_dtype_bytes,
        d_el * d_size,
        ep,
        ep // (_ranks_per_node(fabric, groups[0]) or ep),
    )
    if fd is not fabric:
        disp = _charged(disp, km, "dispatch", shape, _route_latency(fabric, groups[0]))
    if fc is not fabric:
        shape = replace(shape, mode=combine, wire_bytes=c_el * c_size)
        comb = _charged(comb, km, "combine", shape, _route_latency(fabric, groups[0]))
    return disp, comb


def _kernel_fabric(fabric: Fabric, km: KernelModel, algo: str) -> Fabric:
    """``fabric`` with the DeepEP kernels' per-route costs for a DeepEP mode, else itself."""
    if not km.active or algo not in KERNEL_MODES:
        return fabric
    return replace(fabric, costs=kernel_cost_model(km, link_types(fabric.graph)))


def _route_latency(fabric: Fabric, group: Sequence[int]) -> float:
    """One-way latency of the slowest route from the group's first chip (its links' and
    switches' ``latency``): what a count or flag message adds after the data
    (:mod:`workloads.moe_kernels`)."""
    g = fabric.graph

    def one(d: int) -> float:
        hops = fabric.edges(group[0], d)
        links = sum(float(g.edges[a, b].get("latency", 0.0)) for a, b, _ in hops)
        return links + sum(float(g.nodes[b].get("latency", 0.0)) for _, b, _ in hops[:-1])

    return max((one(d) for d in group[1:]), default=0.0)


def _charged(
    run: CollectiveRun, km: KernelModel, step: str, shape: CallShape, latency: float
) -> CollectiveRun:
    """``run`` with the kernel costs of ``step`` added to every chip's tail and the NIC's
    message floor applied (:meth:`workloads.moe_kernels.KernelModel.costs`)."""
    costs = km.costs(step, shape, latency)
    floor = km.message_floor(shape)
    extra = sum(costs.values())
    return replace(
        run,
        time_s=max(run.time_s, floor) + extra,
        tails={c: max(t, floor) + extra for c, t in run.tails.items()},
        model=f"{run.model} + {km.name} kernels",
        stats={**run.stats, "kernel_costs_s": costs, "message_floor_s": floor},
    )


def _fabric_runs(
    m: TransformerModel,
    fd: Fabric,
    fc: Fabric,
    groups: list[list[int]],
    placement: np.ndarray,
    tokens_per_rank: int,
    t: MoeTraffic,
    wires: tuple[tuple[int, int], tuple[int, int]],
) -> tuple[CollectiveRun, CollectiveRun]:
    """The transfers of dispatch (on ``fd``) and combine (on ``fc``), timed."""
    ep = len(groups[0])
    (d_el, d_size), (c_el, c_size) = wires
    spec = moe.parse_routing(t.routing)
    if t.mode == "expected":
        if spec.node_limit and spec.kind != "uniform":
            raise ConfigError(
                "moe_mode: node-limited routing of a non-uniform load changes the mean counts; "
                f"use moe_mode=sample, got expected with {spec}"
            )
        counts = moe.routing_counts(
            t.routing, tokens_per_rank, m.experts, m.experts_per_token, ranks=ep, mode=t.mode
        )
        d = moe.dispatch_matrix(counts, placement, d_el, ranks=ep)
        c = moe.dispatch_matrix(counts, placement, c_el, ranks=ep).T
        disp = _alltoall_run(fd, "moe_dispatch", t.dispatch, groups, [d] * len(groups), d_size)
        comb = _alltoall_run(fc, "moe_combine", t.combine, groups, [c] * len(groups), c_size)
        return disp, comb
    # Sampled routes, one draw per EP group (every group routes its own tokens).
    rng = np.random.default_rng(t.seed)
    nodes = ep // (_ranks_per_node(fd, groups[0]) or ep)
    assigns = [
        route_node_limited(
            spec, tokens_per_rank, m.experts, m.experts_per_token, rng, ranks=ep, nodes=nodes
        )
        for _ in groups
    ]
    routes = _Routes(groups, assigns, placement, m.experts)
    return (
        _sampled_dispatch(fd, routes, t.dispatch, (d_el, d_size)),
        _sampled_combine(fc, routes, t.dispatch, t.combine, (c_el, c_size)),
    )


@dataclass(frozen=True)
class _Routes:
    """One layer's sampled routes: ``assigns[g][s]`` are the experts picked by the tokens of
    rank ``s`` of EP group ``groups[g]``; ``placement`` maps the ``experts`` to ranks."""

    groups: list[list[int]]
    assigns: list[list[np.ndarray]]
    placement: np.ndarray
    experts: int

    @property
    def ep(self) -> int:
        """Ranks per EP group."""
        return len(self.groups[0])

    def sets(self) -> list[list[dict[tuple[int, ...], int]]]:
        """Per group and source rank, the tokens per set of remote ranks they go to
        (:func:`workloads.moe.contributor_sets`)."""
        return [moe.contributor_sets(a, self.placement, ranks=self.ep) for a in self.assigns]

    def targets(self, dom: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per group, the tokens of each rank bound for each rank and each node of ``dom``
        ranks (:func:`workloads.moe_normal.token_targets`)."""
        return [token_targets(a, self.placement, dom) for a in self.assigns]

    def matrices(self, el: int, *, dedup: bool = False) -> list[np.ndarray]:
        """Per group, the elements each rank sends to each rank in the dispatch direction:
        one copy per (token, expert), or per (token, remote rank) with ``dedup``."""
        if dedup:
            return [
                moe.dedup_dispatch_matrix(a, self.placement, el, ranks=self.ep)
                for a in self.assigns
            ]
        counts = (moe.counts_from_assignments(a, self.experts) for a in self.assigns)
        return [moe.dispatch_matrix(c, self.placement, el, ranks=self.ep) for c in counts]


def _sampled_dispatch(
    fabric: Fabric, r: _Routes, dispatch: str, wire: tuple[int, int]
) -> CollectiveRun:
    el, size = wire
    if dispatch == "multicast":
        return fabric.run("moe_dispatch", _multicast_schedule(fabric, r.groups, r.sets(), el, size))
    if dispatch == "normal":
        dom = _domain_size(fabric, r.groups, "dispatch")
        sched = normal_schedule("dispatch", r.groups, r.targets(dom), dom, el * size)
        return fabric.run("moe_dispatch", sched)
    return _alltoall_run(fabric, "moe_dispatch", dispatch, r.groups, r.matrices(el), size)


def _sampled_combine(
    fabric: Fabric, r: _Routes, dispatch: str, combine: str, wire: tuple[int, int]
) -> CollectiveRun:
    el, size = wire
    if combine == "innetwork":
        sched = innetwork_combine_schedule(fabric.graph, r.groups, r.sets(), el, size)
        return fabric.run("moe_combine", sched)
    if combine == "normal":
        dom = _domain_size(fabric, r.groups, "combine")
        sched = normal_schedule("combine", r.groups, r.targets(dom), dom, el * size)
        return fabric.run("moe_combine", sched)
    # After a multicast or normal dispatch: one partial sum per (token, remote rank),
    # returned point to point.
    mats = r.matrices(el, dedup=dispatch in ("multicast", "normal"))
    return _alltoall_run(fabric, "moe_combine", combine, r.groups, [x.T for x in mats], size)


def _alltoall_run(
    fabric: Fabric,
    name: str,
    algo: str,
    groups: Sequence[Sequence[int]],
    matrices: Sequence[np.ndarray],
    itemsize: int,
) -> CollectiveRun:
    scheds = []
    for i, (g, mat) in enumerate(zip(groups, matrices, strict=True)):
        mm = np.rint(np.asarray(mat, dtype=float)).astype(np.int64)
        np.fill_diagonal(mm, 0)  # local tokens do not cross the fabric
        count = int(mm.sum(axis=1).max())
        try:
            sched = build(
                "alltoall",
                _BUILD.get(algo, algo),
                list(g),
                max(count, 1),
                itemsize=itemsize,
                graph=fabric.graph,
                matrix=mm,
            )
        except ConfigError as exc:
            option = name.removeprefix("moe_")  # dispatch / combine
            raise ConfigError(f"{option}: {algo} cannot run here; {exc}") from None
        if algo == "low-latency":
            sched = _permutation_order(sched, g, _ranks_per_node(fabric, g) or len(g))
        scheds.append(retag(sched, str(i)))
    return fabric.run(name, merge(scheds, algo=algo))


def _permutation_order(sched: Schedule, group: Sequence[int], per_node: int) -> Schedule:
    """Emit a direct all-to-all in permutation steps (the low-latency issue order).

    A node's interface sends the messages that leave by one port one after the other, in
    emission order. DeepEP's low-latency kernels issue every (token, expert) copy as its own
    RDMA write from many warps at once, so each NIC streams to all its peers together; the
    pairwise order ``j = i + k`` of ``direct`` instead starts every GPU of a node on the same
    remote GPU (incast) once the intra-node peers, which leave by NVLink, are skipped. Here
    ranks form a grid ``nodes x per_node`` and step ``(m, b)`` sends ``(n, a) -> (n + m,
    a + b)`` (mod the grid): every step is a permutation, so at each step every receiver has
    one sender, on every port. The transfers are those of ``direct``; only the order differs
    (a direct all-to-all has no dependencies).
    """
    out = Schedule(
        op=sched.op,
        algo="low-latency",
        ranks=tuple(sched.ranks),
        count=sched.count,
        itemsize=sched.itemsize,
        matrix=sched.matrix,
    )
    by_pair = {(t.src, t.dsts[0]): t for t in sched.transfers}
    p = len(group)
    nodes = p // per_node
    for m in range(nodes):
        for b in range(per_node):
            for i in range(p):
                n, a = divmod(i, per_node)
                j = ((n + m) % nodes) * per_node + (a + b) % per_node
                t = by_pair.get((group[i], group[j]))
                if t is not None:
                    out.transfers.append(t)
    out.buffers.update(sched.buffers)
    return out
