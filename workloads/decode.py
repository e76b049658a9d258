"""Token latency of decode and prefill: roofline compute plus collectives timed on a fabric.

One decode step produces one token per sequence of a batch on one *model instance* (the
``tp * ep * pp`` chips of :class:`workloads.sharding.Parallelism`). Its latency is

    token_latency = compute_bound + memory_bound + launch + fabric

* ``compute_bound``, ``memory_bound``, ``launch``: the per-chip roofline of every operator
  (:func:`workloads.roofline.decode_compute`; weights and KV cache read from the tier they
  were placed in), summed over the pipeline stages a token passes through.
* ``fabric``: the collectives a token waits for (:func:`workloads.roofline.decode_collectives`):
  two tensor-parallel all-reduces per layer (``batch/ep * hidden`` activations each), the MoE
  dispatch and combine all-to-alls per MoE layer, and one pipeline send per stage boundary.
  Every one is built as a :class:`collectives.schedule.Schedule` and run on the backend
  (packet engine by default, or the analytical alpha-beta model) on the given topology.

Decode is sequential: every collective's output is the input of the next operator, so fabric
time is fully exposed (no overlap with compute). Layers repeat the same collectives, so each
distinct collective is **simulated once** and multiplied by its number of calls per token;
the layers of a step cannot overlap, so this is exact up to the state the fabric is left in
between layers (empty, since each collective drains before the next operator starts).

Contention between groups is real: each collective is run for **every group of the system at
once** (all TP groups of every stage and data-parallel replica, merged with
:func:`collectives.schedule.merge`), and the time charged to the token is that of the groups
of model instance 0 (each data-parallel replica produces its own tokens).

MoE and in-network options
--------------------------
Dispatch runs as an all-to-all (``direct``, ``hierarchical``) or as switch multicast
(``multicast``: one copy per token and destination set); the combine as an all-to-all or
reduced in the switches (``combine="innetwork"``: contributions to a token are added on the
aggregation tree of :mod:`collectives.innetwork`, one vector per token reaches its source).
Multicast and in-network options need switches with ``reduction=True`` on their routes and
follow individual (sampled) tokens. ``allreduce="innetwork"`` reduces the TP all-reduce in
the switches. The result records which algorithm ran for every collective.

Collective library
------------------
``library="none"`` (the default) times collectives on the hardware alone, so that fabrics
are compared on their own terms; ``library="nccl"`` adds the software costs of
:mod:`collectives.calibration` for the fabric's link types, as :func:`collectives.run_collective`
does: a launch cost per call, a cost per dependent step, the protocol's payload efficiency
and multipath striping (:func:`collectives.calibration.library_costs`). ``step_overhead``
and ``collective_launch`` given explicitly override the library's values. The result records
the library and the values applied.

Stragglers
----------
Chip delays (:mod:`workloads.stragglers`) are applied *on top of the simulated schedules*,
not by re-running them: from the simulated arrival time of every transfer we take its
duration and, backwards through the dependency DAG, the *tail* ``L_c`` of each chip ``c``:
the time from ``c``'s first (dependency-free) transfers to the end of the collective along
the longest chain. If chip ``c`` starts ``d_c`` late, the collective of a group ``G``
completes at ``max_{c in G} (d_c + L_c)`` (exact when the transfers' durations do not change,
i.e. without contention changes). ``wait`` charges that; ``substitute:DEADLINE`` charges at
most ``T0 + DEADLINE`` where ``T0`` is the undelayed completion (the late contributions are
substituted). Link delays (``link:FRACTION:DELAY``) are added to edge latencies and simulated.

Landing zone
------------
Bytes arriving from the network land in the chip's ``landing_zone``; landing in HBM costs
``chip.landing_latency`` per message. ``landing="hbm"`` adds it to the arrival of every
message to a chip (a :class:`LandingBackend` around the backend), so it shows in
``fabric_s`` once per message on the critical path; ``landing="sram"`` adds nothing.

Capacity
--------
A configuration whose weights, KV cache and activations do not fit the chip's memory is
**not run**: the result has ``fits = False``, the capacity report (needed vs available per
tier) and NaN times. Not fitting is an answer, not an input error.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from collectives import build, make_backend, run
from collectives.calibration import LIBRARIES, LibraryCosts, library_costs, link_types
from collectives.schedule import merge
from netsim._version import __version__
from netsim.chips import Chip
from netsim.chips import chip as _chip
from netsim.errors import ConfigError
from netsim.units import parse_time
from netsim.validate import require_choice, require_float, require_int
from workloads import moe
from workloads import stragglers as strag
from workloads.cost import CostModel, co2e_per_token, cost_per_mtok, energy_per_token
from workloads.models import TransformerModel
from workloads.models import model as _model
from workloads.roofline import ComputeEstimate, decode_collectives, decode_compute, prefill_compute
from workloads.sharding import Parallelism

__all__ = [
    "ALLREDUCE_ALGOS",
    "AUTO_CANDIDATES",
    "BACKENDS",
    "COMBINE_ALGOS",
    "DISPATCH_ALGOS",
    "LANDINGS",
    "LIBRARIES",
    "CollectiveRun",
    "DecodeResult",
    "Fabric",
    "FabricSite",
    "LandingBackend",
    "chip_tails",
    "decode",
    "decode_experiment",
    "layout",
    "library_record",
    "prefill",
    "resolve_topology",
    "run_groups",
    "topology_chips",
]

#: All-reduce algorithms accepted by ``allreduce=`` (``auto`` tries :data:`AUTO_CANDIDATES`).
ALLREDUCE_ALGOS = (
    "auto",
    "ring",
    "ring-bidir",
    "tree",
    "recursive-doubling",
    "rabenseifner",
    "oneshot",
    "twoshot",
    "hierarchical",
    "innetwork",
)
#: Algorithms ``allreduce="auto"`` simulates; the fastest applicable one is used.
AUTO_CANDIDATES = ("ring", "tree", "recursive-doubling", "oneshot", "twoshot", "innetwork")
#: MoE dispatch algorithms (``multicast``: switch multicast, one copy per token).
DISPATCH_ALGOS = ("direct", "hierarchical", "multicast")
#: MoE combine algorithms (default: the dispatch algorithm, ``direct`` after ``multicast``;
#: ``innetwork``: the switches add up the expert outputs of a token on the way back).
COMBINE_ALGOS = ("direct", "hierarchical", "innetwork")
#: Network models.
BACKENDS = ("packet", "analytical")
#: Landing zones: ``chip`` = the chip's own ``landing_zone``.
LANDINGS = ("chip", "sram", "hbm")


#: Accumulator buffers of in-network schedules are named after a chip of their group.
_ACC_OWNER = re.compile(r"^acc(\d+)")


# ---------------------------------------------------------------------- topology / layout
def resolve_topology(topo: str | nx.Graph) -> nx.Graph:
    """Return the graph of ``topo`` (a graph passes through; a string is a spec or preset).

    Raises
    ------
    ConfigError
        If the spec is invalid.
    """
    if isinstance(topo, nx.Graph):
        return topo
    if not isinstance(topo, str) or not topo.strip():
        raise ConfigError(f"topo: expected a topology spec string or a graph, got {topo!r}")
    from topologies.registry import build

    return build(topo)


def topology_chips(graph: nx.Graph) -> list[int]:
    """The chip nodes of ``graph`` in rank order.

    Raises
    ------
    ConfigError
        If the graph has no chips.
    """
    chips = sorted(n for n, k in graph.nodes(data="kind") if k == "chip")
    if not chips:
        raise ConfigError("topo: the topology has no chips (nodes with kind='chip')")
    return chips


def layout(
    chips: int, *, tp: int = 1, pp: int = 1, ep: int = 1, dp: int | None = None
) -> Parallelism:
    """Map TP/PP/EP/DP onto ``chips`` chip ranks (rank ``r`` is chip ``r``).

    ``dp=None`` uses as many replicas as fit: ``floor(chips / (tp*pp))`` rounded down to a
    multiple of ``ep``.

    Raises
    ------
    ConfigError
        If the layout needs more chips than the topology has.
    """
    chips = require_int("chips", chips, min=1)
    tp = require_int("tp", tp, min=1)
    pp = require_int("pp", pp, min=1)
    ep = require_int("ep", ep, min=1)
    if dp is None:
        dp = (chips // (tp * pp)) // ep * ep
        if dp < 1:
            raise ConfigError(
                f"tp*pp*ep: must be <= the chips of the topology ({chips}), got {tp * pp * ep}"
            )
    par = Parallelism(tp=tp, pp=pp, ep=ep, dp=require_int("dp", dp, min=1))
    if par.world_size > chips:
        raise ConfigError(
            f"dp: tp*pp*dp ({par.world_size}) must be <= the chips of the topology ({chips}), "
            f"got dp={dp}"
        )
    return par


# ---------------------------------------------------------------------- landing backend
class LandingBackend:
    """A backend wrapper that delays every message to a chip by ``latency`` seconds.

    Models the extra latency of landing network writes in HBM instead of SRAM
    (:attr:`netsim.chips.Chip.landing_latency`). Messages to switches are not delayed.
    Everything else is delegated to the wrapped backend.
    """

    def __init__(self, inner: Any, latency: float, chips: Sequence[int]) -> None:
        self.inner = inner
        self.env = inner.env
        self.graph = inner.graph
        self.latency = require_float("landing_latency", latency, min=0.0)
        self._chips = frozenset(chips)
        self.model = f"{inner.model}+landing-{self.latency:g}s"

    def _delayed(self, inner_event: Any, delay: float, callback: Any, t0: float) -> Any:
        out = self.env.event()

        def fire(_: Any) -> None:
            if callback is not None:
                callback(self.env.now - t0)
            out.succeed()

        def arrived(_: Any) -> None:
            if delay > 0:
                self.env.timeout(delay).callbacks.append(fire)
            else:
                fire(None)

        inner_event.callbacks.append(arrived)
        return out

    def send(self, src: int, dst: int, nbytes: int, **kwargs: Any) -> Any:
        """Send as the wrapped backend; the event fires ``latency`` later for a chip."""
        callback = kwargs.pop("callback", None)
        t0 = self.env.now
        ev = self.inner.send(src, dst, nbytes, **kwargs)
        return self._delayed(ev, self.latency if dst in self._chips else 0.0, callback, t0)

    def multicast(self, src: int, dsts: Sequence[int], nbytes: int) -> Any:
        """Multicast as the wrapped backend, delayed if any destination is a chip."""
        t0 = self.env.now
        ev = self.inner.multicast(src, dsts, nbytes)
        delay = self.latency if any(d in self._chips for d in dsts) else 0.0
        return self._delayed(ev, delay, None, t0)

    def run(self, until: Any = None) -> None:
        """Run the wrapped backend."""
        self.inner.run(until)

    def stats(self) -> dict[str, Any]:
        """The wrapped backend's counters, with this wrapper's ``model``."""
        return {**self.inner.stats(), "model": self.model}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


# ---------------------------------------------------------------------- DAG analysis
def chip_tails(
    schedule: Any, arrivals: Sequence[float], *, step_overhead: float = 0.0
) -> tuple[dict[int, float], int]:
    """Per-chip tails of a timed schedule and the messages on its critical chain.

    Durations come from the run: transfer ``i`` starts at 0 (no deps) or at the last
    arrival of its deps plus ``step_overhead``, and lasts ``arrivals[i] - start``. The tail
    of a transfer is its duration plus the longest ``step_overhead + tail`` of the transfers
    that depend on it; the tail ``L_c`` of node ``c`` is the largest tail of its
    dependency-free transfers. Delaying node ``c``'s start by ``d_c`` finishes the schedule
    at ``max_c (d_c + L_c)`` if durations do not change.

    Returns
    -------
    tails : dict
        Node -> ``L_c`` seconds, for nodes that own dependency-free transfers.
    critical_messages : int
        Transfers on the chain that attains the largest tail.
    """
    ts = schedule.transfers
    arr = np.asarray(arrivals, dtype=float)
    n = len(ts)
    if n == 0:
        return {}, 0
    start = np.zeros(n)
    succ: list[list[int]] = [[] for _ in range(n)]
    for i, t in enumerate(ts):
        if t.deps:
            start[i] = max(arr[d] for d in t.deps) + step_overhead
            for d in t.deps:
                succ[d].append(i)
    dur = arr - start
    tail = np.zeros(n)
    nxt = [-1] * n
    for i in range(n - 1, -1, -1):
        best, arg = 0.0, -1
        for j in succ[i]:
            v = step_overhead + tail[j]
            if v > best:
                best, arg = v, j
        tail[i] = dur[i] + best
        nxt[i] = arg
    tails: dict[int, float] = {}
    root = -1
    for i, t in enumerate(ts):
        if not t.deps:
            if tail[i] > tails.get(t.src, -math.inf):
                tails[t.src] = float(tail[i])
            if root < 0 or tail[i] > tail[root]:
                root = i
    count, i = 0, root
    while i >= 0:
        count += 1
        i = nxt[i]
    return tails, count


# ---------------------------------------------------------------------- results
@dataclass(frozen=True)
class CollectiveRun:
    """One merged schedule (every group of the system) timed on a backend.

    Attributes
    ----------
    name, op, algo : str
        What it is for, the collective and the algorithm that ran.
    time_s : float
        Last arrival of the merged schedule (all groups).
    tails : Mapping[int, float]
        Chip -> tail ``L_c`` (see :func:`chip_tails`).
    critical_messages : int
        Transfers on the longest chain.
    transfers, bytes : int
        Transfers and payload bytes of the merged schedule.
    link_bytes : Mapping[str, float]
        Bytes times links traversed, per link type, of the transfers of instance 0.
    model : str
        Backend model that ran.
    stats : Mapping[str, Any]
        The backend's counters.
    candidates : Mapping[str, float | None]
        For ``allreduce="auto"``: time of every candidate (None: not applicable).
    """

    name: str
    op: str
    algo: str
    time_s: float
    tails: Mapping[int, float]
    critical_messages: int
    transfers: int
    bytes: int
    link_bytes: Mapping[str, float]
    model: str
    stats: Mapping[str, Any]
    candidates: Mapping[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class FabricSite:
    """A collective a token waits for at one pipeline stage.

    Attributes
    ----------
    name, kind : str
        ``tp_allreduce`` / ``moe_dispatch`` / ``moe_combine`` / ``pp_send`` and the
        :class:`workloads.roofline.CollectiveNeed` kind.
    stage : int
        Pipeline stage.
    nbytes : float
        Bytes per chip per call.
    count : int
        Calls per token at this stage.
    chips : tuple[int, ...]
        Chips of instance 0 the token waits for.
    run : CollectiveRun
        The simulated merged schedule.
    """

    name: str
    kind: str
    stage: int
    nbytes: float
    count: int
    chips: tuple[int, ...]
    run: CollectiveRun

    @property
    def time_s(self) -> float:
        """Seconds per call: the slowest tail among :attr:`chips` (their group's finish)."""
        vals = [self.run.tails[c] for c in self.chips if c in self.run.tails]
        return max(vals) if vals else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain-data view."""
        return {
            "name": self.name,
            "kind": self.kind,
            "stage": self.stage,
            "algo": self.run.algo,
            "nbytes": self.nbytes,
            "count": self.count,
            "time_s": self.time_s,
            "total_s": self.time_s * self.count,
            "critical_messages": self.run.critical_messages,
            "merged_time_s": self.run.time_s,
            "transfers": self.run.transfers,
            "candidates": dict(self.run.candidates),
        }


@dataclass(frozen=True)
class DecodeResult:
    """Latency of one decode step (or one prefill) with its breakdown.

    Attributes
    ----------
    phase : str
        ``"decode"`` or ``"prefill"``.
    params : Mapping[str, Any]
        The inputs (model, chip, topo, tp, pp, ep, dp, batch, context/prompt, options).
    fits : bool
        Whether the per-chip share fits the chip's memory; if not, nothing else was run.
    capacity : Mapping[str, Any]
        The capacity report (:meth:`workloads.sharding.CapacityReport.to_dict`) and its
        ``summary`` line.
    token_latency_s : float
        Mean latency of one step (decode: per output token; prefill: time to first token).
    compute_s, memory_s, launch_s, fabric_s : float
        The parts of ``token_latency_s``.
    tokens_per_s : float
        Per user (sequence): ``1 / token_latency_s`` (prefill: ``prompt / latency``).
    tokens_per_s_per_chip : float
        Tokens per step of one instance over latency and the instance's chips.
    sites : tuple[FabricSite, ...]
        Collectives per stage.
    allreduce : str or None
        The all-reduce algorithm that ran (None when ``tp == 1``).
    model : str
        Backend model.
    latency_percentiles : Mapping[str, float]
        ``p50``/``p99``/``p99.9`` of token latency over ``tokens`` steps, ``substituted_fraction``.
    token_latencies_s : tuple[float, ...]
        The ``tokens`` per-step latencies the percentiles are taken over (in the JSON as
        ``token_latency_samples_s`` when more than one step was drawn).
    cost : Mapping[str, Any]
        Energy, dollars and CO2e per token with their parts.
    notes : tuple[str, ...]
        Caveats of this run.
    """

    phase: str
    params: Mapping[str, Any]
    fits: bool
    capacity: Mapping[str, Any]
    token_latency_s: float = math.nan
    compute_s: float = math.nan
    memory_s: float = math.nan
    launch_s: float = math.nan
    fabric_s: float = math.nan
    tokens_per_s: float = math.nan
    tokens_per_s_per_chip: float = math.nan
    sites: tuple[FabricSite, ...] = ()
    allreduce: str | None = None
    model: str = ""
    latency_percentiles: Mapping[str, float] = field(default_factory=dict)
    token_latencies_s: tuple[float, ...] = ()
    cost: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def collectives_per_token(self) -> dict[str, int]:
        """Calls per token by collective name, summed over stages."""
        out: dict[str, int] = {}
        for s in self.sites:
            out[s.name] = out.get(s.name, 0) + s.count
        return out

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-friendly record (the ``decode`` sweep kind returns this)."""
        p = self.percentiles_or_nan()
        out: dict[str, Any] = {
            **dict(self.params),
            "phase": self.phase,
            "fits": self.fits,
            "capacity": dict(self.capacity),
            "per_chip_bytes": dict(self.capacity.get("items", {})),
            "token_latency_s": self.token_latency_s,
            "compute_s": self.compute_s,
            "memory_s": self.memory_s,
            "launch_s": self.launch_s,
            "fabric_s": self.fabric_s,
            "tokens_per_s": self.tokens_per_s,
            "tokens_per_s_per_chip": self.tokens_per_s_per_chip,
            "collectives": self.collectives_per_token,
            "collective_sites": [s.to_dict() for s in self.sites],
            "allreduce": self.allreduce,
            "model": self.model,
            "token_latency_p50_s": p["p50"],
            "token_latency_p99_s": p["p99"],
            "token_latency_p999_s": p["p99.9"],
            "substituted_fraction": p["substituted_fraction"],
            "notes": list(self.notes),
            "netsim_version": __version__,
        }
        for key in ("energy_per_token_j", "cost_per_mtok_usd", "co2e_per_token_g"):
            out[key] = self.cost.get(key, math.nan)
        out["energy_parts_j"] = dict(self.cost.get("energy_parts_j", {}))
        out["cost_parts_usd"] = dict(self.cost.get("cost_parts_usd", {}))
        if len(self.token_latencies_s) > 1:
            out["token_latency_samples_s"] = list(self.token_latencies_s)
        if self.phase == "prefill":
            out["ttft_s"] = self.token_latency_s
        return out

    def percentiles_or_nan(self) -> dict[str, float]:
        """Latency percentiles, NaN where not run."""
        keys = ("p50", "p99", "p99.9", "substituted_fraction")
        return {k: float(self.latency_percentiles.get(k, math.nan)) for k in keys}


# ---------------------------------------------------------------------- running schedules
def _retag(schedule: Any, tag: str) -> Any:
    """A copy of ``schedule`` with every buffer name suffixed ``@tag`` (merge-safe)."""
    from collectives.schedule import Schedule, Transfer

    out = Schedule(
        op=schedule.op,
        algo=schedule.algo,
        ranks=tuple(schedule.ranks),
        count=schedule.count,
        itemsize=schedule.itemsize,
        buffers={},
        root=schedule.root,
        matrix=schedule.matrix,
    )
    out.buffers.clear()
    out.transfers = [
        Transfer(
            t.src,
            t.dsts,
            f"{t.src_buf}@{tag}",
            t.lo,
            t.hi,
            f"{t.dst_buf}@{tag}",
            t.dst_lo,
            t.op,
            t.deps,
        )
        for t in schedule.transfers
    ]
    out.buffers = {(n, f"{b}@{tag}"): size for (n, b), size in schedule.buffers.items()}
    return out


@dataclass
class Fabric:
    """Everything needed to run schedules: graph, backend options, routing for link bytes.

    ``instance`` is the set of chips whose traffic counts in :meth:`link_bytes` (energy).
    ``step_overhead``, ``launch_overhead``, ``efficiency`` and ``multipath`` are the
    collective library's costs (:func:`collectives.runner.run`; see :meth:`with_costs`).
    """

    graph: nx.Graph
    chips: list[int]
    backend: str
    forwarding: str
    routing: str
    seed: int
    step_overhead: float
    landing_latency: float
    instance: frozenset[int]
    launch_overhead: float = 0.0
    efficiency: float = 1.0
    multipath: bool = False
    _router: Any = None
    _paths: dict[tuple[int, int], list[tuple[int, int, str]]] = field(default_factory=dict)

    def with_costs(self, costs: LibraryCosts) -> Fabric:
        """Take the step, launch, efficiency and multipath of ``costs``
        (:func:`collectives.calibration.library_costs`); returns ``self``."""
        self.step_overhead = costs.step
        self.launch_overhead = costs.launch
        self.efficiency = costs.efficiency
        self.multipath = costs.multipath
        return self

    def make(self) -> Any:
        """A fresh backend (clock at 0) on :attr:`graph`, wrapped for the landing zone."""
        be = make_backend(
            self.graph,
            self.backend,
            forwarding=self.forwarding,
            routing=self.routing,
            seed=self.seed,
        )
        if self.landing_latency > 0:
            be = LandingBackend(be, self.landing_latency, self.chips)
        return be

    def edges(self, src: int, dst: int) -> list[tuple[int, int, str]]:
        """Directed edges ``(a, b, link type)`` a message from ``src`` to ``dst`` crosses."""
        key = (src, dst)
        if key not in self._paths:
            if self._router is None:
                from netsim.engine import PacketNetwork

                self._router = PacketNetwork(self.graph, routing=self.routing, seed=self.seed)
            nodes = self._router.route(src, dst)
            self._paths[key] = [
                (a, b, str(self.graph.edges[a, b].get("link", "unknown")))
                for a, b in itertools.pairwise(nodes)
            ]
        return self._paths[key]

    def link_bytes(self, schedule: Any) -> dict[str, float]:
        """Bytes x links per link type of the transfers that touch model instance 0.

        Bytes are those on the wire, ``ceil(payload / efficiency)`` as
        :func:`collectives.runner.run` sends them. A multicast counts every edge of the
        union of its unicast routes once. A transfer between two switches (in-network
        reductions on multi-level trees) belongs to the group whose accumulator it carries:
        buffers ``acc<chip>...`` are named after a chip of their group
        (:mod:`collectives.innetwork`, :func:`_innetwork_combine_schedule`).
        """
        out: dict[str, float] = {}
        inst = self.instance
        for t in schedule.transfers:
            if t.src not in inst and not any(d in inst for d in t.dsts):
                owner = _ACC_OWNER.match(t.src_buf)
                if owner is None or int(owner[1]) not in inst:
                    continue
            nbytes = float(schedule.nbytes(t))
            if self.efficiency < 1.0:
                nbytes = float(math.ceil(nbytes / self.efficiency))
            used = {e for d in t.dsts for e in self.edges(t.src, d)}
            for _, _, lt in used:
                out[lt] = out.get(lt, 0.0) + nbytes
        return out

    def run(
        self, name: str, schedule: Any, candidates: Mapping[str, float | None] | None = None
    ) -> CollectiveRun:
        """Time ``schedule`` on a fresh backend and analyse it (:func:`chip_tails`)."""
        be = self.make()
        res = run(
            be,
            schedule,
            step_overhead=self.step_overhead,
            launch_overhead=self.launch_overhead,
            efficiency=self.efficiency,
            multipath=self.multipath,
        )
        tails, crit = chip_tails(schedule, res.arrivals, step_overhead=self.step_overhead)
        return CollectiveRun(
            name=name,
            op=schedule.op,
            algo=schedule.algo,
            time_s=float(res.time_s),
            tails=tails,
            critical_messages=crit,
            transfers=len(schedule.transfers),
            bytes=int(sum(schedule.nbytes(t) for t in schedule.transfers)),
            link_bytes=self.link_bytes(schedule),
            model=str(res.model),
            stats=dict(res.stats or {}),
            candidates=dict(candidates or {}),
        )


def _elements(nbytes: float, itemsize: float) -> tuple[int, int]:
    """``(count, itemsize)`` integers for a buffer of ``nbytes`` of ``itemsize``-byte items."""
    if float(itemsize).is_integer() and itemsize >= 1:
        size = int(itemsize)
        return max(1, round(nbytes / size)), size
    return max(1, round(nbytes)), 1


def run_groups(
    fabric: Fabric,
    name: str,
    op: str,
    algo: str,
    groups: Sequence[Sequence[int]],
    count: int,
    itemsize: int,
    **opts: Any,
) -> CollectiveRun:
    """Build ``op``/``algo`` for every group, merge them, and time the merged schedule."""
    scheds = [
        _retag(
            build(op, algo, list(g), count, itemsize=itemsize, graph=fabric.graph, **opts), str(i)
        )
        for i, g in enumerate(groups)
    ]
    return fabric.run(name, merge(scheds, algo=algo))


def _allreduce(
    fabric: Fabric, groups: Sequence[Sequence[int]], count: int, itemsize: int, algo: str
) -> CollectiveRun:
    if algo != "auto":
        try:
            return run_groups(fabric, "tp_allreduce", "allreduce", algo, groups, count, itemsize)
        except ConfigError as exc:
            if str(exc).startswith("allreduce:"):
                raise
            raise ConfigError(f"allreduce: {algo} cannot run here; {exc}") from None
    best: CollectiveRun | None = None
    times: dict[str, float | None] = {}
    for cand in AUTO_CANDIDATES:
        try:
            r = run_groups(fabric, "tp_allreduce", "allreduce", cand, groups, count, itemsize)
        except ConfigError:
            times[cand] = None
            continue
        times[cand] = r.time_s
        if best is None or r.time_s < best.time_s:
            best = r
    if best is None:
        raise ConfigError(f"allreduce: no algorithm of {', '.join(AUTO_CANDIDATES)} applies")
    return CollectiveRun(**{**best.__dict__, "candidates": times})


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
    from collectives.schedule import Schedule

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


def _innetwork_combine_schedule(
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
    from collectives.innetwork import CHUNKS_PER_PLANE, aggregation_planes
    from collectives.schedule import Schedule, chunk_bounds

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
                    try:
                        planes_of[contrib] = aggregation_planes(graph, contrib)
                    except ConfigError as exc:
                        raise ConfigError(f"combine: innetwork cannot run here; {exc}") from None
                planes = planes_of[contrib]
                acc = f"acc{dst}.{k}"
                bounds = chunk_bounds(n, CHUNKS_PER_PLANE * len(planes))
                last: dict[Any, int] = {}
                for c in range(len(bounds) - 1):
                    lo, hi = bounds[c], bounds[c + 1]
                    if lo == hi:
                        continue
                    pl = planes[c % len(planes)]
                    into: dict[int, list[int]] = {}
                    for r in contrib:
                        u = pl.parent[r]
                        i = s.add(r, u, buf, lo, hi, acc, op="sum", deps=[last.get((r, u))])
                        last[(r, u)] = i
                        into.setdefault(u, []).append(i)
                    for sw in pl.order[:-1]:
                        u = pl.parent[sw]
                        deps = [*into.get(sw, []), last.get((sw, u))]
                        i = s.add(sw, u, acc, lo, hi, op="sum", deps=deps)
                        last[(sw, u)] = i
                        into.setdefault(u, []).append(i)
                    key = (pl.root, dst)
                    deps = [*into.get(pl.root, []), last.get(key)]
                    last[key] = s.add(pl.root, dst, acc, lo, hi, "recv", at + lo, deps=deps)
                at += n
    return s


# ---------------------------------------------------------------------- the phase engine
def library_record(library: str, costs: LibraryCosts) -> dict[str, Any]:
    """The flat result keys that say which collective library costs were applied.

    ``library``; ``library_links``: the link types the costs were taken for (None for
    ``none``); the values applied: ``collective_launch`` (seconds per call),
    ``step_overhead`` (seconds per dependent step), ``collective_efficiency`` (payload
    fraction) and ``multipath``.
    """
    return {
        "library": library,
        "library_links": None if library == "none" or costs.link == "none" else costs.link,
        "collective_launch": costs.launch,
        "step_overhead": costs.step,
        "collective_efficiency": costs.efficiency,
        "multipath": costs.multipath,
    }


def _library_notes(library: str, costs: LibraryCosts) -> list[str]:
    """A caveat when ``library`` adds nothing on this fabric (its links have no costs)."""
    zero = costs.launch == costs.step == 0.0 and costs.efficiency == 1.0 and not costs.multipath
    if library != "none" and zero:
        links = "no known link types" if costs.link == "none" else f"link types {costs.link}"
        return [
            f"library: {library} has no software costs on {links} "
            "(collectives.calibration): collectives are timed on the hardware alone"
        ]
    return []


def _check_landing(landing: str, c: Chip) -> tuple[str, float]:
    require_choice("landing", landing, LANDINGS)
    zone = c.landing_zone if landing == "chip" else landing
    return zone, (c.landing_latency if zone == "hbm" else 0.0)


def _with_link_delays(g: nx.Graph, spec: strag.StragglerSpec, seed: int) -> nx.Graph:
    if not any(comp.target == "link" for comp in spec.components):
        return g
    edges = sorted(tuple(sorted(e)) for e in g.edges)
    extra = strag.draw_delays(spec, len(edges), 1, np.random.default_rng(seed), target="link")[0]
    h = g.copy()
    for (a, b), d in zip(edges, extra, strict=True):
        if d > 0:
            h.edges[a, b]["latency"] = float(h.edges[a, b]["latency"]) + float(d)
    return h


def _phase(
    phase: str,
    m: TransformerModel,
    c: Chip,
    topo: str | nx.Graph,
    *,
    tp: int,
    pp: int,
    ep: int,
    dp: int | None,
    batch: int,
    seq: int,
    allreduce: str,
    dispatch: str,
    combine: str | None,
    moe_routing: str,
    moe_mode: str | None,
    backend: str,
    forwarding: str,
    routing: str,
    library: str,
    step_overhead: float | str | None,
    collective_launch: float | str | None,
    landing: str,
    stragglers: str,
    straggler_policy: str,
    tokens: int,
    usable_fraction: float,
    chip_price: float | None,
    seed: int,
) -> DecodeResult:
    require_choice("allreduce", allreduce, ALLREDUCE_ALGOS)
    require_choice("dispatch", dispatch, DISPATCH_ALGOS)
    params_combine, params_mode = combine, moe_mode
    combine, moe_mode = _check_moe_options(dispatch, combine, moe_mode)
    require_choice("backend", backend, BACKENDS)
    batch = require_int("batch", batch, min=1)
    tokens = require_int("tokens", tokens, min=1)
    seed = require_int("seed", seed, min=0)
    require_choice("library", library, LIBRARIES)
    step = None if step_overhead is None else parse_time(step_overhead, "step_overhead")
    launch = (
        None if collective_launch is None else parse_time(collective_launch, "collective_launch")
    )
    spec = strag.parse_stragglers(stragglers)
    policy = strag.parse_policy(straggler_policy)
    moe.parse_routing(moe_routing)
    zone, landing_latency = _check_landing(landing, c)
    if not (m.is_moe and ep > 1):
        given = {
            "dispatch": (dispatch, "direct"),
            "combine": (params_combine, None),
            "moe_routing": (moe_routing, "uniform"),
            "moe_mode": (params_mode, None),
        }
        for key, (value, default) in given.items():
            if value != default:
                raise ConfigError(
                    f"{key}: applies to MoE layers with expert parallelism (ep > 1); "
                    f"{m.name} with ep={ep} has none, got {value!r}"
                )
    g0 = resolve_topology(topo)
    chips = topology_chips(g0)
    par = layout(len(chips), tp=tp, pp=pp, ep=ep, dp=dp)
    topo_name = topo if isinstance(topo, str) else str(g0.graph.get("name", "graph"))
    costs = library_costs(library, link_types(g0), step=step, launch=launch)
    params: dict[str, Any] = {
        "llm": m.name,
        "chip": c.name,
        "topo": topo_name,
        "tp": tp,
        "pp": pp,
        "ep": ep,
        "dp": par.dp,
        "batch": batch,
        ("context" if phase == "decode" else "prompt"): seq,
        "allreduce_requested": allreduce,
        "dispatch": dispatch if m.is_moe and ep > 1 else None,
        "combine": combine if m.is_moe and ep > 1 else None,
        "moe_routing": moe_routing if m.is_moe and ep > 1 else None,
        "moe_mode": moe_mode if m.is_moe and ep > 1 else None,
        "backend": backend,
        "forwarding": forwarding,
        "routing": routing,
        **library_record(library, costs),
        "landing": zone,
        "landing_latency_s": landing_latency,
        "stragglers": spec.text,
        "straggler_policy": straggler_policy if isinstance(straggler_policy, str) else policy.kind,
        "tokens": tokens,
        "seed": seed,
    }
    if phase == "decode":
        est = decode_compute(
            m,
            c,
            batch=batch,
            context=seq,
            tp=tp,
            pp=pp,
            ep=ep,
            require_fit=False,
            usable_fraction=usable_fraction,
        )
    else:
        est = prefill_compute(
            m,
            c,
            batch=batch,
            prompt=seq,
            tp=tp,
            pp=pp,
            ep=ep,
            require_fit=False,
            usable_fraction=usable_fraction,
        )
    report = est.capacity
    capacity = {**report.to_dict(), "summary": report.summary()}
    if not report.fits:
        return DecodeResult(phase, params, False, capacity, notes=(report.summary(),))

    g = _with_link_delays(g0, spec, seed)
    inst = sorted(
        par.rank(tp_i=t, dp_i=e, pp_i=s) for s in range(pp) for e in range(ep) for t in range(tp)
    )
    fabric = Fabric(
        g,
        chips,
        backend,
        forwarding,
        routing,
        seed,
        costs.step,
        landing_latency,
        frozenset(chips[r] for r in inst),
    ).with_costs(costs)
    step_tokens = batch if phase == "decode" else batch * seq
    sites, notes = _sites(
        m,
        par,
        fabric,
        chips,
        step_tokens,
        allreduce,
        dispatch,
        combine,
        moe_routing,
        moe_mode,
        seed,
    )
    ar = next((s.run.algo for s in sites if s.name == "tp_allreduce"), None)
    model_name = next((s.run.model for s in sites), f"{backend} (no collectives)")

    fabric_nominal = sum(s.time_s * s.count for s in sites)
    fabric_tok, subst = _straggle(sites, chips, inst, spec, policy, tokens, seed)
    latencies = est.time + fabric_tok
    report_s = strag.straggler_report(latencies, subst[None, :] if subst.size else None)
    if not subst.size:
        report_s["substituted_fraction"] = 0.0
    latency = float(np.mean(latencies))
    per_step = batch if phase == "decode" else batch * seq
    per_user = 1.0 / latency if phase == "decode" else seq / latency
    cost = _cost(m, c, est, sites, par, latency, per_step, chip_price)
    notes.extend(_library_notes(library, costs))
    if spec.components:
        notes.append(
            "stragglers: chip delays applied to simulated per-chip tails (see docs/decode.md); "
            f"nominal fabric {fabric_nominal:.6g} s per token"
        )
    return DecodeResult(
        phase=phase,
        params=params,
        fits=True,
        capacity=capacity,
        token_latency_s=latency,
        compute_s=est.compute_bound_time,
        memory_s=est.memory_bound_time,
        launch_s=est.launch_time,
        fabric_s=float(np.mean(fabric_tok)),
        tokens_per_s=per_user,
        tokens_per_s_per_chip=per_step / latency / par.instance_size,
        sites=tuple(sites),
        allreduce=ar,
        model=model_name,
        latency_percentiles=report_s,
        token_latencies_s=tuple(float(x) for x in np.atleast_1d(latencies)),
        cost=cost,
        notes=tuple(notes),
    )


def _sites(
    m: TransformerModel,
    par: Parallelism,
    fabric: Fabric,
    chips: list[int],
    step_tokens: int,
    allreduce: str,
    dispatch: str,
    combine: str,
    moe_routing: str,
    moe_mode: str,
    seed: int,
) -> tuple[list[FabricSite], list[str]]:
    tp, pp, ep = par.tp, par.pp, par.ep
    notes: list[str] = []
    runs: dict[str, CollectiveRun] = {}
    sites: list[FabricSite] = []
    act = m.act_dtype_bytes

    def stage_chips(s: int, tp_only: bool = False) -> tuple[int, ...]:
        es = range(1) if tp_only else range(ep)
        return tuple(chips[par.rank(tp_i=t, dp_i=e, pp_i=s)] for e in es for t in range(tp))

    for s in range(pp):
        for need in decode_collectives(m, batch=step_tokens, tp=tp, pp=pp, ep=ep, stage=s):
            if need.kind == "all_reduce":
                key = f"ar:{need.nbytes}"
                if key not in runs:
                    count, size = _elements(need.nbytes, act)
                    groups = [[chips[r] for r in grp] for grp in par.tp_groups()]
                    runs[key] = _allreduce(fabric, groups, count, size, allreduce)
                sites.append(
                    FabricSite(
                        "tp_allreduce",
                        need.kind,
                        s,
                        need.nbytes,
                        need.count,
                        stage_chips(s, tp_only=True),
                        runs[key],
                    )
                )
            elif need.kind == "all_to_all":
                if "dispatch" not in runs:
                    runs["dispatch"], runs["combine"] = _moe_runs(
                        m,
                        par,
                        fabric,
                        chips,
                        step_tokens // ep,
                        dispatch,
                        combine,
                        moe_routing,
                        moe_mode,
                        seed,
                    )
                which = "dispatch" if need.name == "moe_dispatch" else "combine"
                sites.append(
                    FabricSite(
                        need.name,
                        need.kind,
                        s,
                        need.nbytes,
                        need.count,
                        stage_chips(s),
                        runs[which],
                    )
                )
            else:  # pipeline send
                key = f"pp:{need.nbytes}"
                if key not in runs:
                    count, size = _elements(need.nbytes, act)
                    pairs = [
                        [chips[a], chips[b]]
                        for pipe in par.pp_groups()
                        for a, b in itertools.pairwise(pipe)
                    ]
                    runs[key] = run_groups(
                        fabric, "pp_send", "sendrecv", "direct", pairs, count, size
                    )
                sites.append(
                    FabricSite(
                        "pp_send", need.kind, s, need.nbytes, need.count, stage_chips(s), runs[key]
                    )
                )
    if m.is_moe and ep > 1:
        notes.append(
            "moe: one layer's routing is simulated and reused for every MoE layer; with tp > 1 "
            "each of the tp parallel EP groups carries the full tokens"
        )
    return sites, notes


def _moe_runs(
    m: TransformerModel,
    par: Parallelism,
    fabric: Fabric,
    chips: list[int],
    tokens_per_rank: int,
    dispatch: str,
    combine: str,
    routing_spec: str,
    mode: str,
    seed: int,
) -> tuple[CollectiveRun, CollectiveRun]:
    ep = par.ep
    groups = [[chips[r] for r in grp] for grp in par.ep_groups()]
    placement = moe.place_experts(m.experts, ep, "contiguous")
    hidden_el, size = _elements(m.hidden * m.act_dtype_bytes, m.act_dtype_bytes)
    if mode == "expected":
        counts = moe.routing_counts(
            routing_spec, tokens_per_rank, m.experts, m.experts_per_token, ranks=ep, mode=mode
        )
        d = moe.dispatch_matrix(counts, placement, hidden_el, ranks=ep)
        disp = _alltoall_run(fabric, "moe_dispatch", dispatch, groups, [d] * len(groups), size)
        comb = _alltoall_run(fabric, "moe_combine", combine, groups, [d.T] * len(groups), size)
        return disp, comb
    # Sampled routes, one draw per EP group (every group routes its own tokens).
    rng = np.random.default_rng(seed)
    assigns = [
        moe.route_tokens(
            routing_spec, tokens_per_rank, m.experts, m.experts_per_token, rng, ranks=ep
        )
        for _ in groups
    ]
    sets = [moe.contributor_sets(a, placement, ranks=ep) for a in assigns]
    if dispatch == "multicast":
        disp = fabric.run(
            "moe_dispatch", _multicast_schedule(fabric, groups, sets, hidden_el, size)
        )
    else:
        mats = [
            moe.dispatch_matrix(
                moe.counts_from_assignments(a, m.experts), placement, hidden_el, ranks=ep
            )
            for a in assigns
        ]
        disp = _alltoall_run(fabric, "moe_dispatch", dispatch, groups, mats, size)
    if combine == "innetwork":
        sched = _innetwork_combine_schedule(fabric.graph, groups, sets, hidden_el, size)
        comb = fabric.run("moe_combine", sched)
    elif dispatch == "multicast":
        # One partial sum per (token, remote rank), returned point to point.
        mats = [moe.dedup_dispatch_matrix(a, placement, hidden_el, ranks=ep).T for a in assigns]
        comb = _alltoall_run(fabric, "moe_combine", combine, groups, mats, size)
    else:
        comb = _alltoall_run(fabric, "moe_combine", combine, groups, [x.T for x in mats], size)
    return disp, comb


def _check_moe_options(dispatch: str, combine: str | None, mode: str | None) -> tuple[str, str]:
    """Resolve ``combine`` and ``moe_mode`` defaults and refuse combinations that cannot run."""
    if combine is None:
        combine = "direct" if dispatch == "multicast" else dispatch
    require_choice("combine", combine, COMBINE_ALGOS)
    sampled = dispatch == "multicast" or combine == "innetwork"
    if mode is None:
        mode = "sample" if sampled else "expected"
    require_choice("moe_mode", mode, moe.MODES)
    if sampled and mode != "sample":
        raise ConfigError(
            "moe_mode: multicast dispatch and innetwork combine follow individual tokens and "
            f"need sampled routes (moe_mode=sample), got {mode!r}"
        )
    return combine, mode


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
                algo,
                list(g),
                max(count, 1),
                itemsize=itemsize,
                graph=fabric.graph,
                matrix=mm,
            )
        except ConfigError as exc:
            option = name.removeprefix("moe_")  # dispatch / combine
            raise ConfigError(f"{option}: {algo} cannot run here; {exc}") from None
        scheds.append(_retag(sched, str(i)))
    return fabric.run(name, merge(scheds, algo=algo))


def _straggle(
    sites: Sequence[FabricSite],
    chips: list[int],
    inst: Sequence[int],
    spec: strag.StragglerSpec,
    policy: strag.Policy,
    tokens: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Fabric seconds per token ``[tokens]`` and substitution flags (flattened)."""
    nominal = sum(s.time_s * s.count for s in sites)
    calls = sum(s.count for s in sites)
    chip_spec = any(c.target == "chip" for c in spec.components)
    if not chip_spec or calls == 0:
        return np.full(tokens, nominal), np.zeros(0, dtype=bool)
    inst_chips = [chips[r] for r in inst]
    col = {c: i for i, c in enumerate(inst_chips)}
    delays = strag.draw_delays(spec, len(inst_chips), tokens * calls, np.random.default_rng(seed))
    delays = delays.reshape(tokens, calls, len(inst_chips))
    fabric = np.zeros(tokens)
    masks = []
    k = 0
    for s in sites:
        members = [c for c in s.chips if c in s.run.tails]
        if not members or s.count == 0:
            k += s.count
            continue
        idx = [col[c] for c in members]
        tails = np.array([s.run.tails[c] for c in members])
        arrivals = delays[:, k : k + s.count, :][:, :, idx] + tails
        done, mask = strag.apply_policy(arrivals, policy, start=s.time_s)
        fabric += np.asarray(done).sum(axis=1)
        masks.append(mask.ravel())
        k += s.count
    return fabric, (np.concatenate(masks) if masks else np.zeros(0, dtype=bool))


def _cost(
    m: TransformerModel,
    c: Chip,
    est: ComputeEstimate,
    sites: Sequence[FabricSite],
    par: Parallelism,
    latency: float,
    per_step: int,
    chip_price: float | None,
) -> dict[str, Any]:
    """Energy, dollars and CO2e per token of one model instance (see :mod:`workloads.cost`)."""
    width = par.tp * par.ep  # chips per stage
    flops: dict[str, float] = {}
    for t in est.op_times:
        flops[t.op.dtype] = flops.get(t.op.dtype, 0.0) + t.op.flops * t.op.count * width / per_step
    tiers = {k: v * width / per_step for k, v in est.bytes_by_tier.items()}
    links: dict[str, float] = {}
    for s in sites:
        for lt, b in s.run.link_bytes.items():
            links[lt] = links.get(lt, 0.0) + b * s.count / per_step
    chips = par.instance_size
    token_time = latency / per_step
    idle = c.idle_power if c.idle_power is not None else 0.0
    from workloads.cost_presets import LINK_PJ_PER_BIT

    unknown = sorted(k for k in links if k not in LINK_PJ_PER_BIT)
    for k in unknown:
        links.pop(k)
    e = energy_per_token(flops, tiers, links, token_time, chips, idle)
    price = chip_price if chip_price is not None else c.price
    out: dict[str, Any] = {
        "energy_per_token_j": e["total"],
        "energy_parts_j": {k: e[k] for k in ("compute", "memory", "network", "static")},
        "co2e_per_token_g": co2e_per_token(float(e["total"])),  # type: ignore[arg-type]
        "cost_per_mtok_usd": math.nan,
        "cost_parts_usd": {},
        "idle_power_known": c.idle_power is not None,
        "unknown_link_types": unknown,
    }
    if price is not None:
        cm = cost_per_mtok(float(e["total"]), token_time, chips, CostModel(chip_price_usd=price))  # type: ignore[arg-type]
        out["cost_per_mtok_usd"] = cm["total"]
        out["cost_parts_usd"] = {"capex": cm["capex"], "energy": cm["energy"]}
    return out


# ---------------------------------------------------------------------- public entries
def _resolve(
    model: TransformerModel | str, chip: Chip | str, launch_overhead: float | None
) -> tuple[TransformerModel, Chip]:
    m, c = _model(model), _chip(chip)
    if launch_overhead is not None:
        c = c.replace(launch_overhead=require_float("launch_overhead", launch_overhead, min=0.0))
    return m, c


def decode(
    model: TransformerModel | str,
    chip: Chip | str,
    topo: str | nx.Graph,
    *,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    dp: int | None = None,
    batch: int = 1,
    context: int = 4096,
    allreduce: str = "auto",
    dispatch: str = "direct",
    combine: str | None = None,
    moe_routing: str = "uniform",
    moe_mode: str | None = None,
    backend: str = "packet",
    forwarding: str = "cut-through",
    routing: str = "auto",
    library: str = "none",
    step_overhead: float | str | None = None,
    collective_launch: float | str | None = None,
    landing: str = "chip",
    stragglers: str = "none",
    straggler_policy: str = "wait",
    tokens: int = 1,
    launch_overhead: float | None = None,
    usable_fraction: float = 1.0,
    chip_price: float | None = None,
    seed: int = 0,
) -> DecodeResult:
    """Latency of one decode step: one new token for each of ``batch`` sequences.

    Parameters
    ----------
    model, chip : str or object
        Model and chip presets (:func:`workloads.models.model`, :func:`netsim.chips.chip`).
    topo : str or networkx.Graph
        Topology spec/preset or graph; chip ``r`` runs rank ``r``.
    tp, pp, ep, dp : int
        Parallel degrees (``dp=None``: as many replicas as the topology holds).
    batch : int
        Sequences per model instance.
    context : int
        KV-cache tokens each new token attends to.
    allreduce : str
        All-reduce algorithm (:data:`ALLREDUCE_ALGOS`); ``auto`` runs
        :data:`AUTO_CANDIDATES` and keeps the fastest applicable one.
    dispatch : str
        MoE dispatch: ``direct``, ``hierarchical`` (via the scale-up domain) or
        ``multicast`` (each token sent once to all chips of its experts; switch multicast,
        needs switches with ``reduction=True`` on the routes).
    combine : str, optional
        MoE combine: ``direct``, ``hierarchical`` or ``innetwork`` (the switches add up a
        token's expert outputs on the way back; needs reduction-capable switches).
        Default: as ``dispatch`` (``direct`` after ``multicast``).
    moe_routing : str
        Routing spec (:func:`workloads.moe.parse_routing`).
    moe_mode : str, optional
        ``expected`` (mean counts) or ``sample`` (routes drawn with ``seed``). Default:
        ``sample`` for ``multicast`` dispatch or ``innetwork`` combine (they follow
        individual tokens and refuse ``expected``), else ``expected``.
    backend, forwarding, routing : str
        Network model and engine options.
    library : str
        Collective library whose software costs are added (:data:`LIBRARIES`): ``none``
        (default: the hardware alone) or ``nccl`` (launch, per-step cost, protocol
        efficiency and multipath of :mod:`collectives.calibration` for the topology's link
        types, as :func:`collectives.run_collective` applies them).
    step_overhead : float or str, optional
        Seconds of software cost per dependent step of a collective (``"0.6us"``);
        default: the library's.
    collective_launch : float or str, optional
        Seconds before the first message of every collective call (NCCL's launch latency);
        default: the library's. Not the chip's per-operator ``launch_overhead``.
    landing : str
        ``chip`` (the chip's landing zone), ``sram`` or ``hbm`` (adds ``landing_latency``
        per message to a chip).
    stragglers, straggler_policy : str
        :func:`workloads.stragglers.parse_stragglers` / ``parse_policy`` specs.
    tokens : int
        Decode steps drawn for the straggler statistics.
    launch_overhead : float, optional
        Override the chip's per-operator launch overhead of the roofline (0 models CUDA
        graphs); collectives take ``collective_launch`` instead.
    usable_fraction : float
        Fraction of memory usable (see :func:`workloads.sharding.plan_memory`).
    chip_price : float, optional
        USD per chip for cost per token (default: the preset's price).
    seed : int
        Seeds routing, straggler draws and the engine.

    Returns
    -------
    DecodeResult
        ``fits=False`` and NaN times if the configuration does not fit in memory.

    Raises
    ------
    ConfigError
        On an invalid parameter, split or algorithm.
    """
    m, c = _resolve(model, chip, launch_overhead)
    require_int("context", context, min=1)
    return _phase(
        "decode",
        m,
        c,
        topo,
        tp=tp,
        pp=pp,
        ep=ep,
        dp=dp,
        batch=batch,
        seq=context,
        allreduce=allreduce,
        dispatch=dispatch,
        combine=combine,
        moe_routing=moe_routing,
        moe_mode=moe_mode,
        backend=backend,
        forwarding=forwarding,
        routing=routing,
        library=library,
        step_overhead=step_overhead,
        collective_launch=collective_launch,
        landing=landing,
        stragglers=stragglers,
        straggler_policy=straggler_policy,
        tokens=tokens,
        usable_fraction=usable_fraction,
        chip_price=chip_price,
        seed=seed,
    )


def prefill(
    model: TransformerModel | str,
    chip: Chip | str,
    topo: str | nx.Graph,
    *,
    prompt: int = 2048,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    dp: int | None = None,
    batch: int = 1,
    allreduce: str = "auto",
    dispatch: str = "direct",
    combine: str | None = None,
    moe_routing: str = "uniform",
    moe_mode: str | None = None,
    backend: str = "packet",
    forwarding: str = "cut-through",
    routing: str = "auto",
    library: str = "none",
    step_overhead: float | str | None = None,
    collective_launch: float | str | None = None,
    landing: str = "chip",
    launch_overhead: float | None = None,
    usable_fraction: float = 1.0,
    chip_price: float | None = None,
    seed: int = 0,
) -> DecodeResult:
    """Time to first token: prefill of ``prompt`` tokens for each of ``batch`` sequences.

    The same machinery as :func:`decode` with all ``batch * prompt`` tokens in one step
    (all-reduces of ``batch/ep * prompt * hidden`` activations); usually compute-bound.
    ``token_latency_s`` (and ``ttft_s`` in :meth:`DecodeResult.to_dict`) is the time to
    first token, ``tokens_per_s`` is prompt tokens per second per sequence. The options are
    those of :func:`decode`.
    """
    m, c = _resolve(model, chip, launch_overhead)
    require_int("prompt", prompt, min=1)
    return _phase(
        "prefill",
        m,
        c,
        topo,
        tp=tp,
        pp=pp,
        ep=ep,
        dp=dp,
        batch=batch,
        seq=prompt,
        allreduce=allreduce,
        dispatch=dispatch,
        combine=combine,
        moe_routing=moe_routing,
        moe_mode=moe_mode,
        backend=backend,
        forwarding=forwarding,
        routing=routing,
        library=library,
        step_overhead=step_overhead,
        collective_launch=collective_launch,
        landing=landing,
        stragglers="none",
        straggler_policy="wait",
        tokens=1,
        usable_fraction=usable_fraction,
        chip_price=chip_price,
        seed=seed,
    )


def decode_experiment(**params: Any) -> dict[str, Any]:
    """The ``decode`` sweep kind: :func:`decode` (or :func:`prefill` with ``phase="prefill"``)
    on keyword parameters, returning one flat record (:meth:`DecodeResult.to_dict`).

    Times may be unit strings (``step_overhead="2us"``, ``launch_overhead="0s"``,
    ``collective_launch="6.6us"``); ``library`` is ``none`` or ``nccl``.
    """
    p = dict(params)
    phase = p.pop("phase", "decode")
    require_choice("phase", phase, ("decode", "prefill"))
    for key in ("step_overhead", "launch_overhead", "collective_launch"):
        if isinstance(p.get(key), str):
            p[key] = parse_time(p[key], key)
    try:
        model, chip, topo = p.pop("model"), p.pop("chip"), p.pop("topo")
    except KeyError as exc:
        raise ConfigError(f"{exc.args[0]}: required parameter of the decode experiment") from None
    fn = decode if phase == "decode" else prefill
    try:
        return fn(model, chip, topo, **p).to_dict()
    except TypeError as exc:
        raise ConfigError(f"decode experiment: {exc}") from None
