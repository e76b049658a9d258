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

from collectives.calibration import LibraryCosts, cost_model, library_costs, link_types
from netsim import __version__
from netsim.core.errors import ConfigError
from netsim.core.options import Parameters
from workloads.chips import Chip
from workloads.chips import chip as get_chip
from workloads.fabric import CollectiveRun, Fabric, library_record, run_allreduce, run_groups
from workloads.models import TransformerModel
from workloads.models import model as get_model
from workloads.options import TrainOptions, with_overrides
from workloads.rank_layout import layout, resolve_topology, topology_chips
from workloads.sharding import Parallelism, per_chip_bytes
from workloads.train_flops import train_compute

__all__ = [
    "ADAM_BYTES_PER_PARAM",
    "MAX_BUCKETS",
    "TrainOptions",
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
            "network_model": self.model,
            "runs": dict(self.runs),
            "netsim_version": __version__,
        }


def _run_desc(r: CollectiveRun) -> dict[str, Any]:
    return {"algo": r.algo, "time_s": r.time_s, "bytes": r.bytes, "transfers": r.transfers}


@dataclass
class _Comm:
    """The collectives of one step as they are timed: seconds, runs and the backend model."""

    tp_s: float = 0.0
    pp_s: float = 0.0
    grad_s: float = 0.0
    exposed_s: float = 0.0
    buckets: int = 0
    algo: str | None = None
    model: str = ""
    runs: dict[str, Any] = field(default_factory=dict)


def train_step(
    model: TransformerModel | str,
    chip: Chip | str,
    topo: str | nx.Graph,
    *,
    options: TrainOptions | None = None,
    **overrides: Any,
) -> TrainResult:
    """Time one training step (see the module docstring for the model).

    Parameters
    ----------
    model, chip, topo : str or object
        Presets or objects; chip ``r`` runs rank ``r``.
    options : TrainOptions, optional
        The step's options (default: all defaults; the class says what each means).
    **overrides
        Options by name applied on top, unit strings accepted: ``tp=8,
        global_batch=512, bucket="25MB", backend="analytical"``.

    Raises
    ------
    ConfigError
        On invalid or unknown options (``global_batch`` must be a multiple of
        ``dp * micro_batch``).
    """
    o = with_overrides(TrainOptions, options, overrides)
    m, c = get_model(model), get_chip(chip)
    g = resolve_topology(topo)
    chips = topology_chips(g)
    par = layout(len(chips), tp=o.tp, pp=o.pp, ep=1, dp=o.dp)
    if o.global_batch % (par.dp * o.micro_batch):
        raise ConfigError(
            f"global_batch: must be a multiple of dp*micro_batch ({par.dp * o.micro_batch}), "
            f"got {o.global_batch}"
        )
    micro = o.global_batch // (par.dp * o.micro_batch)
    costs = library_costs(
        o.library, link_types(g), step=o.step_overhead, launch=o.collective_launch
    )
    params = _record(m, c, topo, g, o, par, micro, costs)
    memory = _memory(m, c, o, par)
    if "summary" in memory:
        return TrainResult(params, False, memory)
    est = train_compute(
        m, c, tokens=o.global_batch * o.seq_len, chips=par.world_size, efficiency=o.efficiency
    )
    bubble = est.time * (o.pp - 1) / micro
    fabric = Fabric(
        g, chips, o.backend, o.forwarding, o.routing, o.seed, costs.step, 0.0, frozenset(chips)
    )
    model_costs = cost_model(
        o.library, link_types(g), step=o.step_overhead, launch=o.collective_launch
    )
    fabric = fabric.with_costs(costs, model_costs)
    comm = _activation_comm(fabric, m, o, par, chips, micro)
    compute_end = est.time + bubble + comm.tp_s + comm.pp_s
    grad_total = memory["params_per_chip"] * o.grad_bytes
    backward_last = (est.time * 2 / 3) / micro  # the last micro-batch's backward pass
    _gradient_comm(comm, fabric, o, par, chips, grad_total, backward_last, compute_end)
    step = compute_end + comm.exposed_s
    tokens = o.global_batch * o.seq_len
    return TrainResult(
        params=params,
        fits=True,
        memory=memory,
        step_time_s=step,
        compute_s=est.time,
        bubble_s=bubble,
        tp_comm_s=comm.tp_s,
        pp_comm_s=comm.pp_s,
        grad_comm_s=comm.grad_s,
        exposed_comm_s=comm.exposed_s,
        buckets=comm.buckets,
        grad_bytes_per_chip=grad_total,
        tokens_per_s=tokens / step,
        tokens_per_s_per_chip=tokens / step / par.world_size,
        mfu=est.flops / (step * par.world_size * c.peak(m.compute_dtype)),
        allreduce=comm.algo,
        model=comm.model or f"{o.backend} (no collectives)",
        runs=comm.runs,
    )


def _record(
    m: TransformerModel,
    c: Chip,
    topo: str | nx.Graph,
    g: nx.Graph,
    o: TrainOptions,
    par: Parallelism,
    micro: int,
    costs: LibraryCosts,
) -> dict[str, Any]:
    """The inputs of the step as recorded in the result."""
    return {
        "llm": m.name,
        "chip": c.name,
        "topo": topo if isinstance(topo, str) else str(g.graph.get("name", "graph")),
        "tp": o.tp,
        "pp": o.pp,
        "dp": par.dp,
        "global_batch": o.global_batch,
        "seq_len": o.seq_len,
        "micro_batch": o.micro_batch,
        "microbatches": micro,
        "bucket": o.bucket,
        "allreduce_requested": o.allreduce,
        "tp_allreduce_requested": o.tp_allreduce,
        "backend": o.backend,
        **library_record(o.library, costs),
        "efficiency": o.efficiency,
        "zero": o.zero,
        "seed": o.seed,
    }


def _memory(m: TransformerModel, c: Chip, o: TrainOptions, par: Parallelism) -> dict[str, Any]:
    """Training state needed per chip against its memory; with a ``summary`` if it does not
    fit (activations are not counted)."""
    shares = per_chip_bytes(m, batch=1, context=0, tp=o.tp, pp=o.pp)
    n_params = shares["weights"] / m.weight_dtype_bytes
    per_param = ADAM_BYTES_PER_PARAM if o.zero == 0 else 4 + 12 / par.dp
    needed, avail = n_params * per_param, c.memory_capacity
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
    return memory


def _activation_comm(
    fabric: Fabric,
    m: TransformerModel,
    o: TrainOptions,
    par: Parallelism,
    chips: list[int],
    micro: int,
) -> _Comm:
    """The exposed TP all-reduces (four per layer and micro-batch) and PP sends (two per
    stage boundary and micro-batch) of one step."""
    comm = _Comm()
    itemsize = int(m.act_dtype_bytes) if float(m.act_dtype_bytes).is_integer() else 1
    act = o.micro_batch * o.seq_len * m.hidden * m.act_dtype_bytes
    if o.tp > 1:
        layers = math.ceil(m.layers / o.pp)
        groups = [[chips[r] for r in grp] for grp in par.tp_groups()]
        count = max(1, round(act / itemsize))
        r = run_allreduce(fabric, groups, count, itemsize, o.tp_allreduce, option="tp_allreduce")
        comm.tp_s = 4 * layers * micro * r.time_s
        comm.runs["tp_allreduce"] = {**_run_desc(r), "count": 4 * layers * micro}
        comm.model = r.model
    if o.pp > 1:
        pipes = par.pp_groups()
        pairs = [[chips[a], chips[b]] for p in pipes for a, b in itertools.pairwise(p)]
        count = max(1, round(act / o.tp / itemsize))
        r = run_groups(fabric, "pp_send", "sendrecv", "direct", pairs, count, itemsize)
        comm.pp_s = 2 * (o.pp - 1) * micro * r.time_s
        comm.runs["pp_send"] = {**_run_desc(r), "count": 2 * (o.pp - 1) * micro}
        comm.model = r.model
    return comm


def _gradient_comm(
    comm: _Comm,
    fabric: Fabric,
    o: TrainOptions,
    par: Parallelism,
    chips: list[int],
    grad_total: float,
    backward_last: float,
    compute_end: float,
) -> None:
    """Add the bucketed gradient all-reduce, overlapped with the last micro-batch's backward
    pass (``backward_last`` seconds, ending at ``compute_end``), to ``comm``."""
    nb = comm.buckets = max(1, math.ceil(grad_total / o.bucket))
    if nb > MAX_BUCKETS:
        raise ConfigError(
            f"bucket: {nb} gradient buckets, more than the limit of {MAX_BUCKETS} "
            f"(workloads.train.MAX_BUCKETS; use a larger bucket), got {o.bucket!r}"
        )
    if par.dp == 1:
        return
    groups = [[chips[r] for r in grp] for grp in par.dp_groups()]
    gsize = int(o.grad_bytes) if float(o.grad_bytes).is_integer() else 1
    count = max(1, round(min(o.bucket, grad_total) / gsize))
    full = run_allreduce(fabric, groups, count, gsize, o.allreduce, name="grad_allreduce")
    times = [full.time_s] * nb
    last_bytes = grad_total - (nb - 1) * o.bucket
    if nb > 1 and abs(last_bytes - o.bucket) > 0.5:
        count = max(1, round(last_bytes / gsize))
        last = run_groups(
            fabric, "grad_allreduce_last", "allreduce", full.algo, groups, count, gsize
        )
        times[-1] = last.time_s
        comm.runs["grad_allreduce_last"] = _run_desc(last)
    comm.runs["grad_allreduce"] = {**_run_desc(full), "count": nb}
    timeline = bucket_timeline(compute_end - backward_last, backward_last, times)
    comm.grad_s = sum(times)
    comm.exposed_s = max(0.0, timeline[-1][2] - compute_end)
    comm.algo, comm.model = full.algo, full.model


def train_experiment(**params: Any) -> dict[str, Any]:
    """The ``train`` sweep kind: :func:`train_step` on keyword parameters -> flat record.

    ``model``, ``chip`` and ``topo`` are required; the others are options of
    :class:`TrainOptions` (sizes and times as unit strings).
    """
    p = dict(params)
    try:
        model, chip, topo = p.pop("model"), p.pop("chip"), p.pop("topo")
    except KeyError as exc:
        raise ConfigError(f"{exc.args[0]}: required parameter of the train experiment") from None
    return train_step(model, chip, topo, options=TrainOptions.from_mapping(p)).to_dict()


train_experiment.parameters = Parameters(  # type: ignore[attr-defined]
    ("model", "chip", "topo"), (), TrainOptions
)
