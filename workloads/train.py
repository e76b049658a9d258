"""One data-parallel training step: compute, tensor-parallel traffic and bucketed gradient
all-reduce overlapped with the backward pass.

Model of one step (``global_batch`` sequences of ``seq_len`` tokens on ``tp * pp * dp``
chips; each replica runs ``m = global_batch / (dp * micro_batch)`` micro-batches):

* compute: ``6 N D / (chips * peak * efficiency)`` (:func:`workloads.train_flops.train_compute`),
  one third forward, two thirds backward, stretched by the pipeline bubble
  ``(pp - 1) / m`` of 1F1B/GPipe schedules (Narayanan et al., "Efficient Large-Scale
  Language Model Training on GPU Clusters Using Megatron-LM", SC 2021, §2.2);
* tensor parallelism: four all-reduces per layer and micro-batch (two forward, two backward)
  of ``micro_batch * seq_len * hidden`` activations, exposed (Megatron-LM without sequence
  parallelism); pipeline sends: two per stage boundary and micro-batch, exposed;
* gradients: with gradient accumulation, the data-parallel all-reduce starts during the
  backward pass of the **last** micro-batch. The chip's gradients (its weight parameters
  times ``grad_bytes``) are cut into buckets of ``bucket`` bytes (PyTorch DDP's default is
  25 MB; Li et al., "PyTorch Distributed", VLDB 2020); bucket ``i`` of ``n`` is ready when
  ``(i + 1) / n`` of that backward pass is done, and buckets are all-reduced one after
  another (one communication stream). The step ends when both the compute and the last
  bucket are done; what sticks out is ``exposed_comm_s``.

Every all-reduce is simulated once for all groups of the system at the same time (all DP
groups contend for the fabric) on the packet engine or the analytical backend, and reused
for every bucket of the same size. Collectives are timed on the hardware alone unless
``library="nccl"`` adds NCCL's software costs (launch, per-step cost, protocol efficiency,
multipath) for the fabric's link types, as in :func:`workloads.decode.decode`.

Memory: ``16`` bytes per parameter on a chip (bf16 weights and gradients plus fp32 master
weights, Adam momentum and variance; Rajbhandari et al., "ZeRO", SC 2020, §3.1), or
``4 + 12/dp`` with ZeRO stage 1 (``zero=1``); activations are not counted. A step that does not fit is not run (``fits=False``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from collectives.calibration import LIBRARIES, cost_model, library_costs, link_types
from netsim._version import __version__
from netsim.core.errors import ConfigError
from netsim.core.units import parse_size, parse_time
from netsim.core.validate import require_choice, require_float, require_int
from workloads.chips import Chip
from workloads.chips import chip as _chip
from workloads.fabric import (
    ALLREDUCE_ALGOS,
    AUTO_CANDIDATES,
    BACKENDS,
    CollectiveRun,
    Fabric,
    library_record,
    run_groups,
)
from workloads.models import TransformerModel
from workloads.models import model as _model
from workloads.sharding import per_chip_bytes
from workloads.topology import layout, resolve_topology, topology_chips
from workloads.train_flops import train_compute

__all__ = [
    "ADAM_BYTES_PER_PARAM",
    "MAX_BUCKETS",
    "TrainResult",
    "bucket_timeline",
    "train_experiment",
    "train_step",
]

#: Bytes of training state per parameter with mixed-precision Adam (ZeRO paper, §3.1).
ADAM_BYTES_PER_PARAM = 16
#: Most gradient buckets a step may have (each is one entry of the bucket timeline).
MAX_BUCKETS = 1_000_000


def bucket_timeline(
    backward_start: float,
    backward_s: float,
    bucket_times: list[float],
) -> list[tuple[float, float, float]]:
    """Ready, start and finish time of every gradient bucket.

    Bucket ``i`` of ``n`` is ready at ``backward_start + (i + 1) / n * backward_s`` and
    starts when it is ready and the previous bucket has finished.

    Examples
    --------
    >>> bucket_timeline(0.0, 1.0, [0.1, 0.1])   # comm hidden except the last bucket
    [(0.5, 0.5, 0.6), (1.0, 1.0, 1.1)]
    """
    n = len(bucket_times)
    out: list[tuple[float, float, float]] = []
    free = -math.inf
    for i, t in enumerate(bucket_times):
        ready = backward_start + (i + 1) / n * backward_s
        start = max(ready, free)
        free = start + t
        out.append((ready, start, free))
    return out


@dataclass(frozen=True)
class TrainResult:
    """One training step.

    Attributes
    ----------
    params : Mapping[str, Any]
        The inputs.
    fits : bool
        Whether weights, gradients and optimizer state fit one chip.
    memory : Mapping[str, float]
        ``needed`` and ``available`` bytes per chip.
    step_time_s : float
        Seconds per step.
    compute_s, bubble_s, tp_comm_s, pp_comm_s : float
        Compute (without bubble), pipeline bubble, exposed TP all-reduces and PP sends.
    grad_comm_s : float
        Sum of the gradient buckets' all-reduce times.
    exposed_comm_s : float
        Gradient communication not hidden behind the backward pass.
    buckets : int
        Gradient buckets per step.
    grad_bytes_per_chip : float
        Gradient bytes one chip all-reduces per step.
    tokens_per_s, tokens_per_s_per_chip, mfu : float
        Throughput and model FLOPs utilisation (``6ND / (step * chips * peak)``).
    allreduce : str or None
        Gradient all-reduce algorithm that ran (None when ``dp == 1``).
    model : str
        Backend model.
    runs : Mapping[str, Any]
        Per simulated collective: algorithm, bytes and time.
    """

    params: Mapping[str, Any]
    fits: bool
    memory: Mapping[str, float]
    step_time_s: float = math.nan
    compute_s: float = math.nan
    bubble_s: float = math.nan
    tp_comm_s: float = math.nan
    pp_comm_s: float = math.nan
    grad_comm_s: float = math.nan
    exposed_comm_s: float = math.nan
    buckets: int = 0
    grad_bytes_per_chip: float = math.nan
    tokens_per_s: float = math.nan
    tokens_per_s_per_chip: float = math.nan
    mfu: float = math.nan
    allreduce: str | None = None
    model: str = ""
    runs: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-friendly record (the ``train`` sweep kind returns this)."""
        return {
            **dict(self.params),
            "fits": self.fits,
            "memory": dict(self.memory),
            "step_time_s": self.step_time_s,
            "compute_s": self.compute_s,
            "bubble_s": self.bubble_s,
            "tp_comm_s": self.tp_comm_s,
            "pp_comm_s": self.pp_comm_s,
            "grad_comm_s": self.grad_comm_s,
            "exposed_comm_s": self.exposed_comm_s,
            "buckets": self.buckets,
            "grad_bytes_per_chip": self.grad_bytes_per_chip,
            "tokens_per_s": self.tokens_per_s,
            "tokens_per_s_per_chip": self.tokens_per_s_per_chip,
            "mfu": self.mfu,
            "allreduce": self.allreduce,
            "model": self.model,
            "runs": dict(self.runs),
            "netsim_version": __version__,
        }


def _run_desc(r: CollectiveRun) -> dict[str, Any]:
    return {"algo": r.algo, "time_s": r.time_s, "bytes": r.bytes, "transfers": r.transfers}


def _allreduce(
    fabric: Fabric, name: str, groups: list[list[int]], nbytes: float, itemsize: int, algo: str
) -> CollectiveRun:
    count = max(1, round(nbytes / itemsize))
    if algo != "auto":
        option = "tp_allreduce" if name == "tp_allreduce" else "allreduce"
        try:
            return run_groups(fabric, name, "allreduce", algo, groups, count, itemsize)
        except ConfigError as exc:
            raise ConfigError(f"{option}: {algo} cannot run here; {exc}") from None
    best = None
    for cand in AUTO_CANDIDATES:
        try:
            r = run_groups(fabric, name, "allreduce", cand, groups, count, itemsize)
        except ConfigError:
            continue
        if best is None or r.time_s < best.time_s:
            best = r
    if best is None:
        raise ConfigError(f"allreduce: no algorithm of {', '.join(AUTO_CANDIDATES)} applies")
    return best


def train_step(
    model: TransformerModel | str,
    chip: Chip | str,
    topo: str | nx.Graph,
    *,
    tp: int = 1,
    pp: int = 1,
    dp: int | None = None,
    global_batch: int = 256,
    seq_len: int = 4096,
    micro_batch: int = 1,
    bucket: int | str = 25 * 10**6,
    allreduce: str = "ring",
    tp_allreduce: str = "ring",
    backend: str = "packet",
    forwarding: str = "cut-through",
    routing: str = "auto",
    efficiency: float = 0.5,
    grad_bytes: float = 2.0,
    library: str = "none",
    step_overhead: float | str | None = None,
    collective_launch: float | str | None = None,
    zero: int = 0,
    seed: int = 0,
) -> TrainResult:
    """Time one training step (see the module docstring for the model).

    Parameters
    ----------
    model, chip, topo : str or object
        Presets or objects; chip ``r`` runs rank ``r``.
    tp, pp, dp : int
        Parallel degrees (``dp=None``: as many replicas as the topology holds).
    global_batch, seq_len, micro_batch : int
        Sequences per step, tokens per sequence, sequences per micro-batch.
    bucket : int or str
        Gradient bucket size in bytes (``"25MB"``).
    allreduce, tp_allreduce : str
        Algorithms of the gradient (DP) and activation (TP) all-reduces.
    backend, forwarding, routing : str
        Network model (``packet``, ``analytical`` or ``flow``) and engine options.
    efficiency : float
        Model FLOPs utilisation of the compute, in (0, 1].
    grad_bytes : float
        Bytes per gradient element (2 for bf16).
    library : str
        Collective library whose software costs are added: ``none`` (default, the hardware
        alone) or ``nccl`` (:func:`collectives.calibration.library_costs` for the
        topology's link types).
    step_overhead, collective_launch : float or str, optional
        Software cost per dependent collective step and per collective call (``"2us"``);
        default: the library's.
    zero : int
        0: every chip holds the full optimizer state (16 B/param); 1: ZeRO stage 1, the
        12 B/param of fp32 master weights and Adam moments are sharded over ``dp``
        (the gradient traffic is still timed as one all-reduce, the same ring bytes as
        reduce-scatter + all-gather).
    seed : int
        Engine seed.

    Raises
    ------
    ConfigError
        On invalid parameters (``global_batch`` must be a multiple of ``dp * micro_batch``).
    """
    m, c = _model(model), _chip(chip)
    require_choice("allreduce", allreduce, ALLREDUCE_ALGOS)
    require_choice("tp_allreduce", tp_allreduce, ALLREDUCE_ALGOS)
    require_choice("backend", backend, BACKENDS)
    global_batch = require_int("global_batch", global_batch, min=1)
    seq_len = require_int("seq_len", seq_len, min=1)
    micro_batch = require_int("micro_batch", micro_batch, min=1)
    bucket_b = parse_size(bucket, "bucket", allow_zero=False)
    eff = require_float("efficiency", efficiency, min=0.0, max=1.0, min_open=True)
    gbytes = require_float("grad_bytes", grad_bytes, min=0.0, min_open=True)
    require_choice("library", library, LIBRARIES)
    step = None if step_overhead is None else parse_time(step_overhead, "step_overhead")
    launch = (
        None if collective_launch is None else parse_time(collective_launch, "collective_launch")
    )
    seed = require_int("seed", seed, min=0)
    zero = require_int("zero", zero, min=0, max=1)
    g = resolve_topology(topo)
    chips = topology_chips(g)
    par = layout(len(chips), tp=tp, pp=pp, ep=1, dp=dp)
    if global_batch % (par.dp * micro_batch):
        raise ConfigError(
            f"global_batch: must be a multiple of dp*micro_batch ({par.dp * micro_batch}), "
            f"got {global_batch}"
        )
    micro = global_batch // (par.dp * micro_batch)
    costs = library_costs(library, link_types(g), step=step, launch=launch)
    params: dict[str, Any] = {
        "llm": m.name,
        "chip": c.name,
        "topo": topo if isinstance(topo, str) else str(g.graph.get("name", "graph")),
        "tp": tp,
        "pp": pp,
        "dp": par.dp,
        "global_batch": global_batch,
        "seq_len": seq_len,
        "micro_batch": micro_batch,
        "microbatches": micro,
        "bucket": bucket_b,
        "allreduce_requested": allreduce,
        "tp_allreduce_requested": tp_allreduce,
        "backend": backend,
        **library_record(library, costs),
        "efficiency": eff,
        "zero": zero,
        "seed": seed,
    }
    shares = per_chip_bytes(m, batch=1, context=0, tp=tp, pp=pp)
    n_params = shares["weights"] / m.weight_dtype_bytes
    per_param = ADAM_BYTES_PER_PARAM if zero == 0 else 4 + 12 / par.dp
    needed = n_params * per_param
    avail = c.memory_capacity
    memory: dict[str, Any] = {
        "needed": needed,
        "available": avail,
        "params_per_chip": n_params,
        "bytes_per_param": per_param,
    }
    if needed > avail:
        memory["summary"] = (
            f"{m.name} training state needs {needed / 1e9:.4g} GB per chip "
            f"({per_param:.4g} B/param x {n_params:.4g} params) of {avail / 1e9:.4g} GB "
            "(activations not counted)"
        )
        return TrainResult(params, False, memory)

    est = train_compute(m, c, tokens=global_batch * seq_len, chips=par.world_size, efficiency=eff)
    compute = est.time
    bubble = compute * (pp - 1) / micro
    fabric = Fabric(
        g, chips, backend, forwarding, routing, seed, costs.step, 0.0, frozenset(chips)
    ).with_costs(costs, cost_model(library, link_types(g), step=step, launch=launch))
    runs: dict[str, Any] = {}
    itemsize = int(m.act_dtype_bytes) if float(m.act_dtype_bytes).is_integer() else 1
    layers = math.ceil(m.layers / pp)
    tp_comm = pp_comm = 0.0
    backend_model = ""
    if tp > 1:
        act = micro_batch * seq_len * m.hidden * m.act_dtype_bytes
        groups = [[chips[r] for r in grp] for grp in par.tp_groups()]
        r = _allreduce(fabric, "tp_allreduce", groups, act, itemsize, tp_allreduce)
        tp_comm = 4 * layers * micro * r.time_s
        runs["tp_allreduce"] = {**_run_desc(r), "count": 4 * layers * micro}
        backend_model = r.model
    if pp > 1:
        act = micro_batch * seq_len * m.hidden * m.act_dtype_bytes / tp
        pairs = [
            [chips[a], chips[b]] for pipe in par.pp_groups() for a, b in itertools.pairwise(pipe)
        ]
        r = run_groups(
            fabric, "pp_send", "sendrecv", "direct", pairs, max(1, round(act / itemsize)), itemsize
        )
        pp_comm = 2 * (pp - 1) * micro * r.time_s
        runs["pp_send"] = {**_run_desc(r), "count": 2 * (pp - 1) * micro}
        backend_model = r.model
    compute_end = compute + bubble + tp_comm + pp_comm
    grad_total = n_params * gbytes
    nb = max(1, math.ceil(grad_total / bucket_b))
    if nb > MAX_BUCKETS:
        raise ConfigError(
            f"bucket: {nb} gradient buckets, more than the limit of {MAX_BUCKETS} "
            f"(workloads.train.MAX_BUCKETS; use a larger bucket), got {bucket!r}"
        )
    grad_comm = exposed = 0.0
    ar_algo = None
    if par.dp > 1:
        groups = [[chips[r] for r in grp] for grp in par.dp_groups()]
        gsize = int(gbytes) if float(gbytes).is_integer() else 1
        full = _allreduce(
            fabric, "grad_allreduce", groups, min(bucket_b, grad_total), gsize, allreduce
        )
        last_bytes = grad_total - (nb - 1) * bucket_b
        times = [full.time_s] * (nb - 1)
        if nb > 1 and abs(last_bytes - bucket_b) > 0.5:
            last = run_groups(
                fabric,
                "grad_allreduce_last",
                "allreduce",
                full.algo,
                groups,
                max(1, round(last_bytes / gsize)),
                gsize,
            )
            times.append(last.time_s)
            runs["grad_allreduce_last"] = _run_desc(last)
        else:
            times.append(full.time_s)
        runs["grad_allreduce"] = {**_run_desc(full), "count": nb}
        backward_last = (compute * 2 / 3) / micro
        timeline = bucket_timeline(compute_end - backward_last, backward_last, times)
        grad_comm = sum(times)
        exposed = max(0.0, timeline[-1][2] - compute_end)
        ar_algo = full.algo
        backend_model = full.model
    step = compute_end + exposed
    tokens = global_batch * seq_len
    return TrainResult(
        params=params,
        fits=True,
        memory=memory,
        step_time_s=step,
        compute_s=compute,
        bubble_s=bubble,
        tp_comm_s=tp_comm,
        pp_comm_s=pp_comm,
        grad_comm_s=grad_comm,
        exposed_comm_s=exposed,
        buckets=nb,
        grad_bytes_per_chip=grad_total,
        tokens_per_s=tokens / step,
        tokens_per_s_per_chip=tokens / step / par.world_size,
        mfu=est.flops / (step * par.world_size * c.peak(m.compute_dtype)),
        allreduce=ar_algo,
        model=backend_model or f"{backend} (no collectives)",
        runs=runs,
    )


def train_experiment(**params: Any) -> dict[str, Any]:
    """The ``train`` sweep kind: :func:`train_step` on keyword parameters -> flat record."""
    p = dict(params)
    try:
        model, chip, topo = p.pop("model"), p.pop("chip"), p.pop("topo")
    except KeyError as exc:
        raise ConfigError(f"{exc.args[0]}: required parameter of the train experiment") from None
    try:
        return train_step(model, chip, topo, **p).to_dict()
    except TypeError as exc:
        raise ConfigError(f"train experiment: {exc}") from None
