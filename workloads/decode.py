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
of model instance 0 (each data-parallel replica produces its own tokens). Groups that share
no link, interface or reduction engine cannot delay each other, so they are timed apart, and
a group that is a relabelling of one already timed (a replica on identical links) is not
simulated again; timed schedules are also memoised per process (:mod:`workloads.once`: the
numbers are exactly those of simulating the merged schedule whole).

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

from typing import Any

import networkx as nx

from collectives.calibration import LIBRARIES
from netsim.core.errors import ConfigError
from netsim.core.units import parse_time
from netsim.core.validate import require_choice, require_float, require_int
from workloads.chips import Chip
from workloads.chips import chip as _chip
from workloads.decode_result import DecodeResult, FabricSite
from workloads.fabric import _ACC_OWNER as _ACC_OWNER
from workloads.fabric import (
    ALLREDUCE_ALGOS,
    AUTO_CANDIDATES,
    BACKENDS,
    CollectiveRun,
    Fabric,
    chip_tails,
    library_record,
    run_groups,
)
from workloads.fabric import _allreduce as _allreduce
from workloads.fabric import _elements as _elements
from workloads.fabric import _library_notes as _library_notes
from workloads.fabric import _retag as _retag
from workloads.landing import LANDINGS, LandingBackend
from workloads.landing import _check_landing as _check_landing
from workloads.models import TransformerModel
from workloads.models import model as _model
from workloads.moe_collectives import COMBINE_ALGOS, DISPATCH_ALGOS
from workloads.moe_collectives import _alltoall_run as _alltoall_run
from workloads.moe_collectives import _check_moe_options as _check_moe_options
from workloads.moe_collectives import _innetwork_combine_schedule as _innetwork_combine_schedule
from workloads.moe_collectives import _moe_runs as _moe_runs
from workloads.moe_collectives import _multicast_schedule as _multicast_schedule
from workloads.moe_collectives import _require_capable as _require_capable
from workloads.phase import _phase
from workloads.phase import _sites as _sites
from workloads.straggling import _straggle as _straggle
from workloads.straggling import _with_link_delays as _with_link_delays
from workloads.token_cost import _cost as _cost
from workloads.topology import layout, resolve_topology, topology_chips

# Helpers imported ``name as name`` above lived in this module before it was split; they are
# re-exported so that ``from workloads.decode import ...`` keeps working.
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
    dispatch_dtype: str | None = None,
    combine_dtype: str | None = None,
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
    moe_kernels: str | None = None,
) -> DecodeResult:
    """Latency of one decode step: one new token for each of ``batch`` sequences.

    Parameters
    ----------
    model, chip : str or object
        Model and chip presets (:func:`workloads.models.model`, :func:`workloads.chips.chip`).
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
        MoE dispatch: ``direct`` (alias ``low-latency``, DeepEP's low-latency kernels: one
        copy per token and expert straight to the expert's GPU), ``normal`` (DeepEP's normal
        kernels: RDMA once per target node to the rail peer, then NVLink forwarding),
        ``hierarchical`` (NCCL PXN: NVLink to the own node's rail GPU, then RDMA) or
        ``multicast`` (each token sent once to all chips of its experts; switch multicast,
        needs switches with ``reduction=True`` on the routes).
    combine : str, optional
        MoE combine: ``direct``/``low-latency``, ``normal``, ``hierarchical`` or
        ``innetwork`` (the switches add up a token's expert outputs on the way back; needs
        reduction-capable switches). Default: as ``dispatch`` (``direct`` after
        ``multicast``).
    moe_routing : str
        Routing spec (:func:`workloads.moe.parse_routing`).
    moe_mode : str, optional
        ``expected`` (mean counts) or ``sample`` (routes drawn with ``seed``). Default:
        ``sample`` for ``multicast`` dispatch or ``innetwork`` combine (they follow
        individual tokens and refuse ``expected``), else ``expected``.
    dispatch_dtype, combine_dtype : str, optional
        Wire formats of dispatch and combine (:func:`workloads.moe_bytes.parse_wire_dtype`,
        e.g. ``"fp8/128"``, ``"bf16"``); default: the model's (DeepSeek-V3: ``fp8/128`` and
        ``bf16``; others their activation dtype).
    moe_kernels : str, optional
        Per-call costs of the MoE kernels (:mod:`workloads.moe_kernels`): ``deepep``
        (default for ``low-latency`` and ``normal``), ``none`` (the transfers alone, default
        otherwise) or ``deepep:KEY=VALUE,...`` to override one mechanism.
    backend, forwarding, routing : str
        Network model (``packet``, ``analytical`` or ``flow``) and engine options.
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
        dispatch_dtype=dispatch_dtype,
        combine_dtype=combine_dtype,
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
        moe_kernels=moe_kernels,
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
    dispatch_dtype: str | None = None,
    combine_dtype: str | None = None,
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
    moe_kernels: str | None = None,
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
        dispatch_dtype=dispatch_dtype,
        combine_dtype=combine_dtype,
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
        moe_kernels=moe_kernels,
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
