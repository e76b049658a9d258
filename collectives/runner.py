"""Time a :class:`~collectives.schedule.Schedule` on a network backend.

The runner is event driven: a transfer starts when every transfer it depends on has
arrived, plus ``step_overhead`` seconds (the per-step software cost of a collective library);
transfers without dependencies start after ``launch_overhead`` plus their source's
``start_delay``. A transfer is sent with :meth:`Backend.send` (one destination) or
:meth:`Backend.multicast` (several) and counts as arrived when the backend's event fires plus,
for op ``"sum"`` into a chip, the local reduction time ``3 * nbytes / reduce_bandwidth``
(read two operands, write one). Reductions at different chips, and different reductions at
one chip, proceed in parallel. A switch with a ``reduction_bandwidth`` (reducing switches
of the built-in topologies, :data:`netsim.core.linktypes.REDUCTION_ENGINES`) reduces through one
engine, a FIFO server of operand bytes that streams with the arrivals: an op ``"sum"``
transfer of ``n`` bytes into it, sent at ``t_s`` and arrived at ``t_a``, is reduced at
``max(t_a, max(free, t_s) + n / reduction_bandwidth) + reduction_latency``, ``free`` being
when the engine finished the work before it. So ``k`` ranks' chunks of ``c`` bytes take at
least ``k c / reduction_bandwidth`` at a switch, on every backend; a switch without the
attribute reduces at line rate. Local
transfers (``dsts == (src,)``) cross no link and cost only that reduction time; they are the
receiving end of the step that fed them, so they start without ``step_overhead``.

With ``efficiency < 1`` every message carries ``ceil(nbytes / efficiency)`` bytes (a
library's protocol overhead on top of the link's packet headers). With ``multipath`` a
message is striped over every distinct equal-cost route of the backend's router in
proportion to the routes' bottleneck bandwidths (as NVLink stripes over all links of a GPU);
it arrives when its last stripe does.

With ``costs`` (a :class:`collectives.calibration.CostModel`) these library costs are per
route instead of one value for the run: a transfer's efficiency, striping and the step cost
paid before it starts are those of the link types its route crosses
(``CostModel.for_links``), and the launch cost is the largest among the link types the
schedule's transfers cross.

A transfer the schedule puts on a connection of its own (``Schedule.connections``) is sent
with that label as its flow label (a striped transfer's stripes keep the labels that pick
their routes), so on the flow model it queues only behind its own connection's messages.

With ``channel_rate`` (bytes/s) every transfer the schedule marks as a channel's
(``Schedule.channels``) is paced per ``(channel, source)`` stream, a FIFO server of payload
bytes: a transfer of ``n`` bytes sent at ``t_s`` arrives no earlier than ``max(free, t_s) +
n / channel_rate``, ``free`` being when that stream's previous transfer was paced. So one
channel's ``S`` bytes from one source take at least ``S / channel_rate``; a library's
per-channel throughput (NCCL's ``perChMax*Bws``, see :func:`collectives.api`), never the
hardware's.

With ``data`` the numpy payloads ride the simulation: a transfer reads its source slice when
it starts and writes (or adds) it at its destinations when it arrives, so the schedule that
is timed is the one that is checked (:func:`collectives.schedule.expected`).
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from collectives.calibration import CostModel
from collectives.schedule import Schedule, Transfer, apply_transfer, initial_buffers
from netsim.core.backend import Backend
from netsim.core.errors import ConfigError, SimulationError
from netsim.core.validate import require_float

__all__ = [
    "RunResult",
    "Stripes",
    "SwitchReducers",
    "gc_paused",
    "resolve_costs",
    "route_links",
    "run",
]

#: Flow labels probed per (src, dst) to find its distinct equal-cost routes.
_PROBE_FLOWS = 64


@dataclass
class RunResult:
    """The outcome of :func:`run`.

    Attributes
    ----------
    time_s : float
        Last arrival minus the time the run started (0 for an empty schedule).
    arrivals : list of float
        Arrival time of every transfer (same index as ``schedule.transfers``), measured from
        the start of the run.
    finish : dict
        Node -> time its last incoming transfer arrived.
    transfers : int
        Number of transfers.
    bytes : int
        Payload bytes of all transfers (one count per transfer, multicasts once).
    buffers : dict or None
        ``(node, buffer) -> array`` after the run when ``data`` was given.
    model : str
        The backend's model, e.g. ``"packet/cut-through"``.
    stats : dict
        The backend's counters after the run.
    link_types : tuple of str
        The link types the schedule's transfers cross (empty without ``costs``).
    """

    time_s: float
    arrivals: list[float]
    finish: dict[int, float]
    transfers: int
    bytes: int
    buffers: dict[tuple[int, str], np.ndarray] | None
    model: str
    stats: dict[str, Any] = field(default_factory=dict)
    link_types: tuple[str, ...] = ()


class Stripes:
    """Distinct equal-cost routes per (src, dst) and the share of bytes each carries."""

    def __init__(self, backend: Backend) -> None:
        self.router, self.ports = backend.router, backend.ports
        self.active = self.router.sprays  # declared by the routing registry (RoutingInfo)
        self._cache: dict[tuple[int, int], tuple[tuple[int, ...], tuple[float, ...]]] = {}

    def split(self, src: int, dst: int, nbytes: int) -> list[tuple[int, int]]:
        """``[(flow, bytes), ...]`` for a message of ``nbytes`` (bytes sum to ``nbytes``)."""
        if not self.active or nbytes == 0:
            return [(0, nbytes)]
        got = self._cache.get((src, dst))
        if got is None:
            seen: dict[tuple[int, ...], int] = {}
            for f in range(_PROBE_FLOWS):
                path, _ = self.router.route(src, dst, f)
                seen.setdefault(tuple(path), f)
            bw = self.ports.bandwidth
            flows = tuple(seen.values())
            weights = tuple(min(bw[q] for q in path) if path else 1.0 for path in seen)
            got = self._cache[(src, dst)] = (flows, weights)
        flows, weights = got
        if len(flows) == 1:
            return [(flows[0], nbytes)]
        total = sum(weights)
        exact = [nbytes * w / total for w in weights]
        parts = [math.floor(x) for x in exact]
        order = sorted(range(len(parts)), key=lambda k: parts[k] - exact[k])
        for k in order[: nbytes - sum(parts)]:
            parts[k] += 1
        return [(f, b) for f, b in zip(flows, parts, strict=True) if b > 0]


class SwitchReducers:
    """The reduction engines of a graph's reducing switches (see the module docstring)."""

    def __init__(self, graph: Any) -> None:
        self.rate: dict[int, tuple[float, float]] = {}
        for v, d in graph.nodes(data=True):
            if d.get("kind") == "switch" and d.get("reduction") and d.get("reduction_bandwidth"):
                bw = require_float(
                    "reduction_bandwidth", d["reduction_bandwidth"], min=0.0, min_open=True
                )
                lat = require_float("reduction_latency", d.get("reduction_latency", 0.0), min=0.0)
                self.rate[v] = (bw, lat)
        self.free: dict[int, float] = {}

    def done(self, switch: int, nbytes: int, sent: float, now: float) -> float | None:
        """When ``nbytes`` summed into ``switch`` (sent at ``sent``, arrived ``now``) are
        reduced; None if the node has no reduction engine."""
        got = self.rate.get(switch)
        if got is None:
            return None
        bw, lat = got
        free = max(self.free.get(switch, 0.0), sent) + nbytes / bw
        self.free[switch] = free
        return max(now, free) + lat


def route_links(backend: Backend, schedule: Schedule) -> list[frozenset[str]]:
    """The link types every transfer of ``schedule`` crosses on ``backend``'s routes.

    A multicast crosses those of all its unicast routes; a local transfer crosses none.
    """
    router, ports = backend.router, backend.ports
    cache: dict[tuple[int, tuple[int, ...]], frozenset[str]] = {}
    out = []
    for t in schedule.transfers:
        key = t[:2]  # (src, dsts)
        types = cache.get(key)
        if types is None:
            found: set[str] = set()
            if not t.local:
                for d in t.dsts:
                    path, _ = router.route(t.src, d, 0)
                    found.update(ports.link[p] for p in path)
            types = cache[key] = frozenset(found)
        out.append(types)
    return out


def resolve_costs(
    backend: Any,
    schedule: Schedule,
    step_overhead: float,
    launch_overhead: float,
    efficiency: float,
    multipath: bool,
    costs: CostModel | None,
) -> tuple[list[float], list[float], list[bool], tuple[str, ...], float]:
    """Per transfer: efficiency, step cost, striping; the link types crossed; the launch.

    Single values apply to every transfer; ``costs`` gives those of the link types each
    transfer's route crosses (see the module docstring). Raises ConfigError on bad values.
    """
    step = require_float("step_overhead", step_overhead, min=0.0)
    launch = require_float("launch_overhead", launch_overhead, min=0.0)
    eff = require_float("efficiency", efficiency, min=0.0, max=1.0, min_open=True)
    if costs is not None and (step or launch or eff != 1.0 or multipath):
        raise ConfigError(
            "costs: give the library costs either per link type (costs) or as single values "
            "(step_overhead, launch_overhead, efficiency, multipath), not both"
        )
    n = len(schedule.transfers)
    if costs is None:
        return [eff] * n, [step] * n, [bool(multipath)] * n, (), launch
    links = route_links(backend, schedule)
    per = {k: costs.for_links(k) for k in set(links)}
    for c in per.values():
        require_float("step_overhead", c.step, min=0.0)
        require_float("launch_overhead", c.launch, min=0.0)
        require_float("efficiency", c.efficiency, min=0.0, max=1.0, min_open=True)
    crossed = tuple(sorted(set().union(*per)))
    launch = max((c.launch for k, c in per.items() if k), default=0.0)
    if len(per) == 1:  # every transfer crosses the same link types
        (c,) = per.values()
        return [c.efficiency] * n, [c.step] * n, [c.multipath] * n, crossed, launch
    return (
        [per[k].efficiency for k in links],
        [per[k].step for k in links],
        [per[k].multipath for k in links],
        crossed,
        launch,
    )


def _successors(ts: Sequence[Transfer]) -> list[Any]:
    """For every transfer, the transfers that depend on it: ``()``, a 1-tuple (most
    transfers of a chained schedule: smaller than a list) or a list."""
    succ: list[Any] = [()] * len(ts)
    for i, t in enumerate(ts):
        for d in t.deps:
            nxt = succ[d]
            if not nxt:
                succ[d] = (i,)
            elif type(nxt) is tuple:
                succ[d] = [nxt[0], i]
            else:
                nxt.append(i)
    return succ


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector for an allocation-heavy block, then restore it.

    Building and running a schedule allocates millions of small objects and no reference
    cycles (reference counting frees them all); the collector's repeated passes over them
    cost a fifth of a 2-million-transfer ring all-reduce (measured on a 32x32 torus), for
    nothing to collect.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _striped(
    backend: Backend, parts: list[tuple[int, int]], src: int, dst: int, done: Any, i: int
) -> None:
    """Send the stripes ``parts`` (``[(flow, bytes), ...]``); ``done(i)`` after the last."""
    left = [len(parts)]

    def part_done(_: Any) -> None:
        left[0] -= 1
        if left[0] == 0:
            done(i)

    dsts = (dst,)
    for flow, b in parts:
        backend.transfer(src, dsts, b, part_done, None, flow)


@dataclass
class _Run:
    """The state of one :func:`run`: the schedule, its costs, and what has happened so far.

    Per transfer (same index as ``schedule.transfers``): ``effs`` (payload fraction),
    ``steps`` (step cost before it starts), ``sprays`` (striped over equal-cost routes),
    ``waiting`` (dependencies not yet arrived), ``succ`` (the transfers depending on it,
    see :func:`_successors`), ``arrivals`` (NaN until it arrives) and ``sent`` (start
    times, kept only when a switch reduction engine needs them).
    """

    backend: Backend
    schedule: Schedule
    effs: list[float]
    steps: list[float]
    sprays: list[bool]
    crossed: tuple[str, ...]
    launch: float
    rbw: float | None
    delays: dict[int, float]
    t0: float = 0.0
    bufs: dict[tuple[int, str], np.ndarray] | None = None
    reducers: SwitchReducers | None = None
    channel_rate: float | None = None
    paced: dict[tuple[int, int], float] = field(default_factory=dict)
    stripes: Stripes | None = None
    chips: set[int] = field(default_factory=set)
    waiting: list[int] = field(default_factory=list)
    succ: list[Any] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)


def _prepare(backend: Backend, schedule: Schedule, data: Any, **costs: Any) -> _Run:
    """Validate the inputs and set up the state of a run (clock at ``backend.env.now``)."""
    schedule.validate()
    rbw = costs.pop("reduce_bandwidth")
    rate = costs.pop("channel_rate")
    if rate is not None:
        rate = require_float("channel_rate", rate, min=0.0, min_open=True)
    if rbw is not None:
        rbw = require_float("reduce_bandwidth", rbw, min=0.0, min_open=True)
    delays = {
        int(k): require_float("start_delay", v, min=0.0)
        for k, v in (costs.pop("start_delay") or {}).items()
    }
    effs, steps, sprays, crossed, launch = resolve_costs(backend, schedule, **costs)
    ts = schedule.transfers
    r = _Run(backend, schedule, effs, steps, sprays, crossed, launch, rbw, delays)
    r.t0 = backend.env.now
    r.chips = {v for v, k in backend.graph.nodes(data="kind") if k == "chip"}
    r.reducers = SwitchReducers(backend.graph)
    r.channel_rate = rate if schedule.channels else None
    r.sent = [0.0] * len(ts) if r.reducers.rate or r.channel_rate else []
    r.bufs = initial_buffers(schedule, data) if data is not None else None
    r.stripes = Stripes(backend) if any(sprays) else None
    r.waiting = [len(t.deps) for t in ts]
    with gc_paused():
        r.succ = _successors(ts)
    r.arrivals = [math.nan] * len(ts)
    return r


def _handlers(r: _Run) -> Callable[[int], None]:
    """Return ``start(i)``, which sends transfer ``i`` now; its arrival starts those
    depending on it (after their step cost) through the backend's light path
    (:meth:`Backend.transfer`, :meth:`Backend.call_at`)."""
    backend, env, ts, t0 = r.backend, r.backend.env, r.schedule.transfers, r.t0
    effs, steps, sprays, stripes = r.effs, r.steps, r.sprays, r.stripes
    waiting, succ, arrivals, sent, bufs = r.waiting, r.succ, r.arrivals, r.sent, r.bufs
    itemsize, transfer, later = r.schedule.itemsize, backend.transfer, backend.call_at
    conns = r.schedule.connections
    payloads: dict[int, np.ndarray] = {}

    def arrived(i: int) -> None:
        now = env.now
        arrivals[i] = now - t0
        if bufs is not None:
            apply_transfer(bufs, ts[i], payloads.pop(i))
        for j in succ[i]:
            w = waiting[j] - 1
            waiting[j] = w
            if w == 0:
                if steps[j] > 0 and not ts[j].local:
                    later(now + steps[j], start, j)
                else:
                    start(j)

    def start(i: int) -> None:
        src, dsts, src_buf, lo, hi = ts[i][:5]
        if sent:
            sent[i] = env.now
        if bufs is not None:
            payloads[i] = bufs[(src, src_buf)][lo:hi].copy()
        wire = (hi - lo) * itemsize
        e = effs[i]
        if e != 1.0:
            wire = math.ceil(wire / e)
        if len(dsts) > 1 or (dsts[0] != src and not sprays[i]):
            transfer(src, dsts, wire, done, i, conns.get(i, 0))
        elif dsts[0] == src:  # local: no link crossed
            done(i)
        else:
            _striped(backend, stripes.split(src, dsts[0], wire), src, dsts[0], done, i)

    plain = r.rbw is None and not r.reducers.rate and r.channel_rate is None
    done = arrived if plain else _landing(r, arrived)
    return start


def _landing(r: _Run, arrived: Callable[[int], None]) -> Callable[[int], None]:
    """Wrap ``arrived`` with a channel's pacing and the reduction time of an op ``"sum"``
    transfer: at a switch's reduction engine, or ``3 * nbytes / reduce_bandwidth`` into a
    chip."""
    env, later = r.backend.env, r.backend.call_at
    ts, itemsize = r.schedule.transfers, r.schedule.itemsize
    reducers, rbw, chips, sent = r.reducers, r.rbw, r.chips, r.sent
    channels, rate, paced = r.schedule.channels, r.channel_rate, r.paced

    def landed(i: int) -> None:
        t, at = ts[i], env.now
        if rate is not None and i in channels:
            key = (channels[i], t.src)
            paced[key] = max(paced.get(key, 0.0), sent[i]) + t.count * itemsize / rate
            at = max(at, paced[key])
        if t.op == "sum" and reducers.rate and len(t.dsts) == 1:
            got = reducers.done(t.dsts[0], t.count * itemsize, sent[i], at)
            if got is not None:
                later(got, arrived, i) if got > env.now else arrived(i)
                return
        if rbw is not None and t.op == "sum" and any(d in chips for d in t.dsts):
            later(at + 3.0 * t.count * itemsize / rbw, arrived, i)
        else:
            later(at, arrived, i) if at > env.now else arrived(i)

    return landed


def _kick_off(r: _Run, start: Callable[[int], None]) -> None:
    """Start every transfer without dependencies, after the launch cost and its source's
    start delay."""
    env, later = r.backend.env, r.backend.call_at
    for i, t in enumerate(r.schedule.transfers):
        if not t.deps:
            at = r.t0 + r.launch + r.delays.get(t.src, 0.0)
            if at > env.now:
                later(at, start, i)
            else:
                start(i)


def _result(r: _Run) -> RunResult:
    """The :class:`RunResult` of a finished run; raises SimulationError if a transfer never
    arrived."""
    ts, arrivals, n = r.schedule.transfers, r.arrivals, len(r.arrivals)
    missing = sum(map(math.isnan, arrivals))
    if missing:
        raise SimulationError(f"run: {missing} of {n} transfers never arrived")
    finish: dict[int, float] = {}
    for t, a in zip(ts, arrivals, strict=True):
        for d in t.dsts:
            if finish.get(d, -1.0) < a:
                finish[d] = a
    return RunResult(
        time_s=max(arrivals) if n else 0.0,
        arrivals=arrivals,
        finish=finish,
        transfers=n,
        bytes=sum(t.hi - t.lo for t in ts) * r.schedule.itemsize,
        buffers=r.bufs,
        model=str(r.backend.model),
        stats=dict(r.backend.stats()),
        link_types=r.crossed,
    )


def run(
    backend: Backend,
    schedule: Schedule,
    *,
    data: Mapping[int, np.ndarray] | None = None,
    step_overhead: float = 0.0,
    reduce_bandwidth: float | None = None,
    start_delay: Mapping[int, float] | None = None,
    launch_overhead: float = 0.0,
    efficiency: float = 1.0,
    multipath: bool = False,
    costs: CostModel | None = None,
    channel_rate: float | None = None,
) -> RunResult:
    """Time ``schedule`` on ``backend`` (see the module docstring).

    Parameters
    ----------
    backend : Backend
        A fresh or running :class:`netsim.core.backend.Backend` (packet, flow or analytical).
    schedule : Schedule
        The collective.
    data : mapping, optional
        Chip -> input array; the payloads move with the simulation.
    step_overhead : float
        Seconds added between the arrival of a transfer's last dependency and its start.
    reduce_bandwidth : float, optional
        Bytes/s of a chip's local reduction (its memory bandwidth); ``None`` = free.
    start_delay : mapping, optional
        Node -> seconds its dependency-free transfers start late (stragglers).
    launch_overhead : float
        Seconds before any dependency-free transfer starts.
    efficiency : float
        Payload fraction of the library's protocol, in (0, 1].
    multipath : bool
        Stripe every unicast message over all equal-cost routes.
    costs : CostModel, optional
        Library costs per link type, charged per route (see the module docstring); then
        ``step_overhead``, ``launch_overhead``, ``efficiency`` and ``multipath`` must keep
        their defaults.
    channel_rate : float, optional
        Bytes/s of each ``(channel, source)`` stream of the transfers ``schedule.channels``
        marks (a library's per-channel throughput, see the module docstring); ``None`` =
        unpaced.

    Returns
    -------
    RunResult

    Raises
    ------
    ConfigError
        Invalid schedule or parameters.
    SimulationError
        Some transfer never arrived (e.g. the backend deadlocked without saying so).
    """
    r = _prepare(
        backend, schedule, data, reduce_bandwidth=reduce_bandwidth, start_delay=start_delay,
        step_overhead=step_overhead, launch_overhead=launch_overhead, efficiency=efficiency,
        multipath=multipath, costs=costs, channel_rate=channel_rate,
    )  # fmt: skip
    with gc_paused():
        _kick_off(r, _handlers(r))
        backend.run()
    return _result(r)
