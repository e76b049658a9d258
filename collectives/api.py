"""The public entry points: build a schedule, make a backend, run a collective end to end.

:func:`build` turns ``(op, algo, ranks, count)`` into a :class:`~collectives.schedule.Schedule`
through :data:`collectives.algorithms.ALGORITHMS`; :func:`make_backend` makes a packet or
analytical network; :func:`run_collective` does both for a topology spec and a size with
units, times the result on the chosen backend and on the analytical one, optionally checks
the numbers, and returns one flat JSON-able dict with nccl-tests' algbw and busbw.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from collectives import calibration
from collectives.algorithms import algorithms_for, busbw_factor, resolve
from collectives.channels import CHANNELED, resolve_channels
from collectives.runner import RunResult, contention_free, gc_paused, run
from collectives.schedule import OPS, Schedule, expected, merge
from collectives.tuner import Choice, choose
from netsim._version import __version__
from netsim.core.backend import Backend
from netsim.core.errors import ConfigError, SimulationError
from netsim.core.units import parse_bandwidth, parse_size, parse_time
from netsim.core.validate import require_choice, require_int

__all__ = [
    "BACKENDS",
    "MAX_CHUNKS",
    "auto_algorithm",
    "build",
    "check_result",
    "make_backend",
    "parse_matrix",
    "parse_ranks",
    "random_inputs",
    "run_collective",
]

#: Most pipeline chunks a collective may be cut into (each chunk is one message per step,
#: so the schedule grows with it; a bound against typos, not a hardware limit).
MAX_CHUNKS = 65_536

#: Network models :func:`make_backend` can make.
BACKENDS = ("packet", "analytical", "flow")
_ROOTED = ("broadcast", "reduce")
_REDUCING = ("allreduce", "reduce_scatter", "reduce")


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
    ranks : sequence of int
        Chips taking part, in rank order.
    count : int
        Elements per rank buffer (the gathered size for all-gather).
    itemsize : int
        Bytes per element.
    graph : networkx.Graph, optional
        The topology (needed by topology-aware algorithms).
    chunks : int, optional
        Pipeline pieces, for the algorithms that pipeline.
    root : int
        Rank index of the root (broadcast and reduce only).
    matrix : array_like, optional
        Per-pair element counts (alltoall only).
    **opts
        Algorithm-specific options (e.g. ``dims`` of ``hierarchical``).

    Returns
    -------
    Schedule

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
    if op not in _ROOTED and root not in (0, None):
        raise ConfigError(
            f"root: only broadcast and reduce have a root, got root={root!r} for {op}"
        )
    if op != "alltoall" and matrix is not None:
        raise ConfigError(f"matrix: only alltoall takes a per-pair matrix, got one for {op}")
    if chunks is not None:
        limit = "the limit is collectives.api.MAX_CHUNKS"
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


def auto_algorithm(
    op: str, graph: Any, ranks: Sequence[int], nbytes: int, opts: Mapping[str, Any] | None = None
) -> Choice:
    """The algorithm ``"auto"`` runs: NCCL's tuner rule (:func:`collectives.tuner.choose`).

    With ``channels`` or ``pxn`` among the algorithm options ``opts``, the pick is among
    the algorithms that take them (ring and tree).

    Raises
    ------
    ConfigError
        Unknown op.
    """
    only = None
    if opts and ("channels" in opts or "pxn" in opts):
        only = {a for o, a in CHANNELED if o == op}
    return choose(op, graph, ranks, nbytes, algorithms_for(op)[0], only=only)


def make_backend(
    graph: nx.Graph,
    backend: str = "packet",
    *,
    forwarding: str = "cut-through",
    mtu: int | None = None,
    header: int | None = None,
    buffer: int | None = None,
    routing: str = "auto",
    max_segments: int | None = 256,
    seed: int = 0,
) -> Backend:
    """Return a fresh network model of ``graph``.

    ``"packet"``: the packet engine (:mod:`netsim.core.engine`); ``"analytical"``: contention-free
    alpha-beta (:mod:`netsim.core.analytical`); ``"flow"``: flows sharing links max-min fairly
    (:mod:`netsim.core.flow`). ``forwarding``, ``buffer`` and ``max_segments`` apply to the
    packet engine only (the other models refuse a ``buffer``).
    """
    require_choice("backend", backend, BACKENDS)
    if backend == "packet":
        from netsim.core.engine import PacketNetwork

        return PacketNetwork(
            graph,
            forwarding=forwarding,
            mtu=mtu,
            header=header,
            buffer=buffer,
            routing=routing,
            max_segments=max_segments,
            seed=seed,
        )
    from netsim.core.analytical import AnalyticalNetwork
    from netsim.core.flow import FlowNetwork

    if buffer is not None:
        raise ConfigError(f"buffer: the {backend} backend has no buffers, got {buffer!r}")
    model = FlowNetwork if backend == "flow" else AnalyticalNetwork
    return model(graph, mtu=mtu, header=header, routing=routing, seed=seed)


_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+))?\s*$")


def parse_ranks(value: Any, chips: int) -> list[int]:
    """Parse ``"0-7"``, ``"0-3,8-11"``, ``"0,2,4"`` or a sequence into chip ids < ``chips``."""
    if isinstance(value, str):
        out: list[int] = []
        for part in value.split(","):
            m = _RANGE.match(part)
            if not m:
                raise ConfigError(f"ranks: expected a list such as 0-7 or 0,2,4, got {value!r}")
            a, b = int(m[1]), int(m[2] if m[2] is not None else m[1])
            if b < a:
                raise ConfigError(f"ranks: range end must be >= start, got {part.strip()!r}")
            out.extend(range(a, b + 1))
    else:
        try:
            out = [require_int("ranks", r, min=0) for r in value]
        except TypeError:
            raise ConfigError(f"ranks: expected a list of chip ids, got {value!r}") from None
    bad = [r for r in out if r >= chips]
    if bad:
        raise ConfigError(f"ranks: chips are 0..{chips - 1} in this topology, got {bad[0]}")
    if len(set(out)) != len(out):
        raise ConfigError(f"ranks: must be distinct, got {value!r}")
    return out


def parse_matrix(value: Any) -> np.ndarray:
    """Parse an all-to-all matrix: an array, a file (``.npy``, ``.json``, or text/CSV with
    one row per line) or inline rows ``"0,4;4,0"`` (``;`` between rows, ``,`` within).

    Returns a 2-D int64 array; :func:`collectives.direct.alltoall_matrix` checks the shape
    and the diagonal against the ranks.
    """
    if not isinstance(value, str | Path):
        return _finite_matrix(np.asarray(value), value)
    text = str(value).strip()
    path = Path(text)
    is_file = path.suffix.lower() in (".npy", ".json", ".csv", ".txt") or path.is_file()
    if is_file and not path.is_file():
        raise ConfigError(f"matrix: no such file, got {text!r}")
    try:
        if is_file:
            if path.suffix.lower() == ".npy":
                m = np.load(path, allow_pickle=False)
            elif path.suffix.lower() == ".json":
                m = np.asarray(json.loads(path.read_text()), dtype=float)
            else:
                m = np.loadtxt(path, delimiter=",", ndmin=2)
        else:
            rows = [r for r in text.split(";") if r.strip()]
            m = np.asarray([[float(x) for x in r.split(",")] for r in rows], dtype=float)
    except (ValueError, OSError) as exc:
        msg = " ".join(str(exc).split())
        raise ConfigError(
            f"matrix: expected rows such as '0,4;4,0' or a .npy/.json/.csv file, got {text!r} "
            f"({msg})"
        ) from None
    if m.ndim != 2:
        raise ConfigError(f"matrix: must be 2-D (one row per sending rank), got {text!r}")
    return _finite_matrix(m, text)


def _finite_matrix(m: np.ndarray, text: Any) -> np.ndarray:
    """``m`` if every entry is a finite number, else ConfigError (a NaN is not a count)."""
    try:
        finite = bool(np.all(np.isfinite(m.astype(float))))
    except (TypeError, ValueError):
        finite = False
    if not finite:
        raise ConfigError(f"matrix: every entry must be a finite number, got {text!r}")
    return m


def random_inputs(s: Schedule, seed: int = 0) -> dict[int, np.ndarray]:
    """Random small-integer float64 inputs for every rank of ``s`` (exact sums)."""
    rng = np.random.default_rng(seed)
    name = "send" if s.op == "alltoall" else "x"
    groups = s.groups or [s]
    out = {}
    for g in groups:
        for r in g.ranks:
            n = s.buffers.get((r, name), g.count)
            out[r] = rng.integers(-8, 9, size=n).astype(np.float64)
    return out


def check_result(s: Schedule, inputs: Mapping[int, np.ndarray], bufs: Mapping[Any, Any]) -> None:
    """Compare buffers after a run with :func:`collectives.schedule.expected`.

    Raises
    ------
    SimulationError
        Naming the first node, buffer and slice that differ.
    """
    for key, sl, vals in expected(s, inputs):
        got = np.asarray(bufs[key])[sl]
        if not np.array_equal(got, vals):
            raise SimulationError(
                f"check: {s.op}/{s.algo} left wrong values in {key[1]!r} of node {key[0]} "
                f"[{sl.start}:{sl.stop}]"
            )


def _graph(topo: Any) -> tuple[nx.Graph, str]:
    if isinstance(topo, nx.Graph):
        return topo, str(topo.graph.get("name", "custom"))
    if isinstance(topo, str | Mapping):
        from topologies.registry import build as build_topology

        G = build_topology(topo)
        return G, str(G.graph.get("name", topo))
    raise ConfigError(f"topo: expected a spec string or a networkx graph, got {topo!r}")


def _reduce_bw(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return parse_bandwidth(value, "reduce_bandwidth")
    except ConfigError:
        if not isinstance(value, str):
            raise
    from workloads.chips import chip

    try:
        return float(chip(value).tier("hbm").bandwidth)
    except ConfigError:
        raise ConfigError(
            f"reduce_bandwidth: expected a bandwidth (e.g. 3.35TB/s) or a chip preset with HBM, "
            f"got {value!r}"
        ) from None


def _tuner_json(pick: Choice | None) -> dict[str, Any] | None:
    if pick is None:
        return None
    return {
        "rule": pick.rule,
        "nccl_algo": pick.nccl_algo,
        "protocol": pick.protocol,
        "predicted_time_s": pick.predicted_s,
    }


def _default_matrix(count: int, p: int) -> np.ndarray:
    m = np.full((p, p), count // p, dtype=np.int64)
    np.fill_diagonal(m, 0)
    return m


def run_collective(
    topo: str | nx.Graph,
    op: str,
    algo: str,
    size: int | str | None,
    *,
    ranks: Any = None,
    groups: int | None = None,
    chunks: int | None = None,
    root: int = 0,
    backend: str = "packet",
    forwarding: str | None = None,
    routing: str = "auto",
    step_overhead: float | str | None = None,
    launch_overhead: float | str | None = None,
    efficiency: float | None = None,
    multipath: bool | None = None,
    reduce_bandwidth: float | str | None = None,
    itemsize: int = 4,
    seed: int = 0,
    check: bool = False,
    matrix: Any = None,
    mtu: int | None = None,
    header: int | None = None,
    buffer: int | None = None,
    max_segments: int | str | None = 256,
    detail: bool = False,
    library: str = "nccl",
    estimate: bool = True,
    **opts: Any,
) -> dict[str, Any]:
    """Build, run and measure one collective on a topology.

    Parameters
    ----------
    topo : str or networkx.Graph
        Spec string or preset (:func:`topologies.registry.build`), or a graph.
    op, algo : str
        The collective and its algorithm (:data:`collectives.algorithms.ALGORITHMS`), or
        ``"auto"`` (:func:`auto_algorithm`, NCCL's tuner rule).
    size : int or str
        Bytes per rank as nccl-tests counts them (e.g. ``"1MiB"``); for alltoall with a
        ``matrix`` it may be ``None`` (the largest row sum is used).
    ranks : str or sequence, optional
        Chips taking part (``"0-7"``); default every chip (for sendrecv the first and the
        last chip).
    groups : int, optional
        Split ``ranks`` into consecutive groups of this many ranks that run concurrently on
        the same fabric (merged schedules; ``time_s`` is the slowest group's).
    chunks, root, matrix, **opts
        Passed to :func:`build`.
    backend, forwarding, routing, mtu, header, buffer
        The network model (:func:`make_backend`); ``forwarding`` (default cut-through) and
        ``buffer`` apply to the packet engine only and are refused by ``"analytical"`` (alpha-beta,
        no contention) and ``"flow"`` (max-min fair sharing of links, :mod:`netsim.core.flow`).
    max_segments : int, "none" or None
        Packet engine: a message is simulated as at most this many packets (larger
        segments beyond ``max_segments * mtu`` bytes; :mod:`netsim.core.engine.network`);
        ``None`` or ``"none"`` simulates every real MTU packet. Ignored by the analytical
        model.
    detail : bool
        Also return ``link_utilisation``: ``[[u, v, busy fraction], ...]`` of every directed
        link over the collective (for :func:`netsim.app.plots.plot_link_heatmap`, ``netsim plot
        --kind heatmap``).
    library : str
        Collective library whose software costs apply (:func:`collectives.calibration.cost_model`):
        ``"nccl"`` (default: NCCL's launch, step cost, efficiency and multipath for the
        topology's link types) or ``"none"`` (the hardware alone). Returned as ``library``.
    step_overhead, launch_overhead, efficiency, multipath
        Library costs (:mod:`collectives.calibration`); ``None`` takes the library's value
        for the topology's link types. Times may carry units (``"2us"``).
    reduce_bandwidth : float or str, optional
        Local reduction bandwidth: bytes/s, ``"3.35TB/s"``, or a chip preset name (its HBM
        bandwidth); ``None`` = free. Only for the ops that add (allreduce, reduce_scatter,
        reduce); refused for the others.
    itemsize : int
        Bytes per element (default 4, float32 as nccl-tests).
    seed : int
        Seeds routing choices and the check data.
    check : bool
        Run with random data and verify the result (raises :class:`SimulationError`).
    estimate : bool
        Also compute ``analytical_time_s``, the contention-free alpha-beta time of the same
        schedule (:func:`collectives.runner.contention_free`, one pass over the schedule);
        ``False`` leaves it ``None``. With ``backend="analytical"`` it is ``time_s``.

    Returns
    -------
    dict
        ``time_s``, ``algbw``, ``busbw`` (nccl-tests definitions, bytes/s),
        ``analytical_time_s``, ``max_link_utilisation``, ``busiest_link``, ``ranks``,
        ``groups``, ``size``, ``count``, ``op``, ``algo``, ``topo``, ``model``, ``packets``,
        ``packet_hops``, ``events``, ``transfers``, ``wall_s``, ``seed``, ``netsim_version``,
        the library costs used and ``check`` (True, or None when not checked); ``algo`` is
        the algorithm that ran, ``algo_requested`` what was asked (e.g. ``"auto"``),
        ``tuner`` NCCL's pick with ``auto`` (``rule``, ``nccl_algo``, ``protocol``,
        ``predicted_time_s``; None otherwise) and ``channels`` the ring/tree channel
        count (None for algorithms without channels). Library costs
        are charged per route (:func:`collectives.calibration.cost_model`): ``link_costs``
        gives them per link type the collective crossed; ``step_overhead``,
        ``launch_overhead``, ``efficiency`` and ``multipath`` are those of a route crossing
        all of these types (the costs themselves when there is one type).
    """
    require_choice("op", op, OPS)
    require_choice("backend", backend, BACKENDS)
    itemsize = require_int("itemsize", itemsize, min=1)
    seed = require_int("seed", seed, min=0)
    if backend != "packet" and forwarding is not None:
        raise ConfigError(
            f"forwarding: applies to the packet backend only, got {forwarding!r} with the "
            f"{backend} backend"
        )
    if forwarding is None:
        forwarding = "cut-through"
    if reduce_bandwidth is not None and op not in _REDUCING:
        raise ConfigError(
            f"reduce_bandwidth: only {', '.join(_REDUCING)} add data, got "
            f"{reduce_bandwidth!r} for {op}"
        )
    G, name = _graph(topo)
    nchips = sum(1 for _, k in G.nodes(data="kind") if k == "chip")
    if ranks is None:
        rank_list = [0, nchips - 1] if op == "sendrecv" else list(range(nchips))
    else:
        rank_list = parse_ranks(ranks, nchips)
    k = len(rank_list) if groups is None else require_int("groups", groups, min=1)
    if len(rank_list) % k:
        raise ConfigError(
            f"groups: must divide the {len(rank_list)} ranks into equal groups, got {groups}"
        )
    group_lists = [rank_list[i : i + k] for i in range(0, len(rank_list), k)]
    if matrix is not None:
        if op != "alltoall":
            raise ConfigError(f"matrix: only alltoall takes a per-pair matrix, got one for {op}")
        matrix = parse_matrix(matrix)
    if matrix is not None and size is not None:
        rows = np.asarray(matrix, dtype=float).sum(axis=1)
        want = int(rows.max()) * itemsize if rows.size else 0
        if parse_size(size, "size") != want:
            raise ConfigError(
                f"size: with a matrix the size is its largest row sum ({want} bytes at "
                f"itemsize {itemsize}); leave it out, got {size!r}"
            )
    if size is None:
        if matrix is None:
            raise ConfigError("size: required (bytes per rank), got None")
        m0 = np.asarray(matrix)
        count = int(m0.sum(axis=1).max()) if m0.size else 0
    else:
        nbytes = parse_size(size, "size")
        if nbytes % itemsize:
            raise ConfigError(
                f"size: must be a multiple of itemsize={itemsize} bytes, got {nbytes} bytes"
            )
        count = nbytes // itemsize
    if op == "alltoall" and matrix is None:
        matrix = _default_matrix(count, k)
    costs = calibration.cost_model(
        library,
        calibration.link_types(G),
        step=None if step_overhead is None else parse_time(step_overhead, "step_overhead"),
        launch=None if launch_overhead is None else parse_time(launch_overhead, "launch_overhead"),
        efficiency=efficiency,
        multipath=multipath,
    )
    rbw = _reduce_bw(reduce_bandwidth)
    pick = auto_algorithm(op, G, group_lists[0], count * itemsize, opts) if algo == "auto" else None
    requested, algo = algo, pick.algo if pick else algo
    scheds = [
        build(
            op, algo, g, count, itemsize=itemsize, graph=G, chunks=chunks, root=root,
            matrix=matrix, **opts,
        )
        for g in group_lists
    ]  # fmt: skip
    sched = scheds[0] if len(scheds) == 1 else merge(scheds, algo=algo)
    inputs = random_inputs(sched, seed) if check else None
    kw = dict(costs=costs, reduce_bandwidth=rbw)
    if isinstance(max_segments, str) and max_segments.strip().lower() == "none":
        max_segments = None
    if max_segments is not None:
        max_segments = require_int("max_segments", max_segments, min=1)
    ana: float | None = None
    if estimate and backend != "analytical":  # first: its memory is freed before the run
        ana_be = make_backend(G, "analytical", routing=routing, seed=seed, mtu=mtu, header=header)
        ana = max(contention_free(ana_be, sched, **kw), default=0.0)
    be = make_backend(
        G, backend, forwarding=forwarding, routing=routing, seed=seed, mtu=mtu, header=header,
        buffer=buffer, max_segments=max_segments,
    )  # fmt: skip
    t0 = time.perf_counter()
    res: RunResult = run(be, sched, data=inputs, **kw)
    wall = time.perf_counter() - t0
    if check:
        assert inputs is not None and res.buffers is not None
        check_result(sched, inputs, res.buffers)
    if backend == "analytical":
        ana = res.time_s
    util = be.link_utilisation()
    busiest = max(util, key=util.get) if util else None
    size_b = count * itemsize
    # Nothing moved at size 0: bandwidth 0, as nccl-tests prints.
    algbw = size_b / res.time_s if res.time_s > 0 else (0.0 if size_b == 0 else float("nan"))
    st = res.stats
    # The costs charged: per link type the collective crossed; the single values are those
    # of a route crossing all of them (CostModel.for_links), i.e. the costs when it is one.
    used = costs.for_links(res.link_types)
    out = {
        "topo": name,
        "chips": nchips,
        "op": op,
        "algo": algo,
        "algo_requested": requested,
        "tuner": _tuner_json(pick),
        "size": size_b,
        "count": count,
        "itemsize": itemsize,
        "ranks": rank_list,
        "groups": len(group_lists),
        "group_size": k,
        "chunks": chunks,
        "channels": resolve_channels(op, algo, group_lists[0], G, opts.get("channels")),
        "root": root,
        "time_s": res.time_s,
        "algbw": algbw,
        "busbw": algbw * busbw_factor(op, k),
        "analytical_time_s": ana,
        "max_link_utilisation": float(util[busiest]) if busiest else 0.0,
        "busiest_link": f"{busiest[0]}->{busiest[1]}" if busiest else None,
        "backend": backend,
        "model": res.model,
        "forwarding": forwarding if backend == "packet" else None,
        "max_segments": max_segments if backend == "packet" else None,
        "routing": st.get("routing", routing),
        "packets": st.get("packets", 0),
        "packet_hops": st.get("packet_hops", 0),
        "events": st.get("events", 0),
        "transfers": res.transfers,
        "bytes": res.bytes,
        "wall_s": wall,
        "step_overhead": used.step,
        "launch_overhead": used.launch,
        "efficiency": used.efficiency,
        "multipath": used.multipath,
        "link_costs": {
            t: {
                "step_overhead": c.step,
                "launch_overhead": c.launch,
                "efficiency": c.efficiency,
                "multipath": c.multipath,
            }
            for t in res.link_types
            for c in [costs.for_links([t])]
        },
        "library": library,
        "reduce_bandwidth": rbw,
        "seed": seed,
        "check": True if check else None,
        "netsim_version": __version__,
    }
    if detail:
        out["link_utilisation"] = [[int(u), int(v), float(x)] for (u, v), x in util.items()]
    return out
