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
and ``collective_launch`` given explicitly override the library's values (they are not
``kernel_launch``, the chip's per-operator launch cost of the roofline). The result records
the library and the values applied.

Stragglers
----------
Chip delays (:mod:`workloads.stragglers`, applied by :mod:`workloads.decode_stragglers`) are applied *on top of the simulated schedules*,
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

from netsim.core.errors import ConfigError
from netsim.core.options import Parameters
from netsim.core.validate import require_choice, require_int
from workloads.chips import Chip
from workloads.chips import chip as get_chip
from workloads.decode_result import DecodeResult
from workloads.models import TransformerModel
from workloads.models import model as get_model
from workloads.options import DecodeOptions, with_overrides
from workloads.phase import run_phase

__all__ = ["DecodeOptions", "decode", "decode_experiment", "prefill"]

#: Options of :class:`DecodeOptions` that apply to decode only (straggler draws).
DECODE_ONLY = ("stragglers", "straggler_policy", "tokens")


def _model_and_chip(
    model: TransformerModel | str, chip: Chip | str, opts: DecodeOptions
) -> tuple[TransformerModel, Chip]:
    """The model and chip presets; ``kernel_launch`` (if set) replaces the chip's."""
    m, c = get_model(model), get_chip(chip)
    if opts.kernel_launch is not None:
        c = c.replace(kernel_launch=opts.kernel_launch)
    return m, c


def decode(
    model: TransformerModel | str,
    chip: Chip | str,
    topo: str | nx.Graph,
    *,
    context: int = 4096,
    options: DecodeOptions | None = None,
    **overrides: Any,
) -> DecodeResult:
    """Latency of one decode step: one new token for each of ``batch`` sequences.

    Parameters
    ----------
    model, chip : str or object
        Model and chip presets (:func:`workloads.models.model`, :func:`workloads.chips.chip`).
    topo : str or networkx.Graph
        Topology spec/preset or graph; chip ``r`` runs rank ``r``.
    context : int
        KV-cache tokens each new token attends to.
    options : DecodeOptions, optional
        The step's options (default: all defaults; the class says what each means).
    **overrides
        Options by name applied on top, unit strings accepted: ``tp=8, batch=16,
        backend="analytical", stragglers="exp:1us"``.

    Returns
    -------
    DecodeResult
        ``fits=False`` and NaN times if the configuration does not fit in memory.

    Raises
    ------
    ConfigError
        On an invalid or unknown option, split or algorithm.
    """
    opts = with_overrides(DecodeOptions, options, overrides)
    m, c = _model_and_chip(model, chip, opts)
    require_int("context", context, min=1)
    return run_phase("decode", m, c, topo, context, opts)


def prefill(
    model: TransformerModel | str,
    chip: Chip | str,
    topo: str | nx.Graph,
    *,
    prompt: int = 2048,
    options: DecodeOptions | None = None,
    **overrides: Any,
) -> DecodeResult:
    """Time to first token: prefill of ``prompt`` tokens for each of ``batch`` sequences.

    The same machinery and options as :func:`decode` (except the straggler options
    ``stragglers``, ``straggler_policy`` and ``tokens``, which apply to decode only), with
    all ``batch * prompt`` tokens in one step (all-reduces of ``batch/ep * prompt * hidden``
    activations); usually compute-bound. ``token_latency_s`` (and ``ttft_s`` in
    :meth:`DecodeResult.to_dict`) is the time to first token, ``tokens_per_s`` is prompt
    tokens per second per sequence.

    Raises
    ------
    ConfigError
        On an invalid or unknown option (a straggler option included), split or algorithm.
    """
    opts = with_overrides(DecodeOptions, options, overrides)
    defaults = DecodeOptions()
    for key in DECODE_ONLY:
        if getattr(opts, key) != getattr(defaults, key):
            raise ConfigError(f"{key}: applies to decode, not prefill, got {getattr(opts, key)!r}")
    m, c = _model_and_chip(model, chip, opts)
    require_int("prompt", prompt, min=1)
    return run_phase("prefill", m, c, topo, prompt, opts)


def decode_experiment(**params: Any) -> dict[str, Any]:
    """The ``decode`` sweep kind: :func:`decode` (or :func:`prefill` with ``phase="prefill"``)
    on keyword parameters, returning one flat record (:meth:`DecodeResult.to_dict`).

    ``model``, ``chip`` and ``topo`` are required; ``context`` (decode) or ``prompt``
    (prefill) and the options of :class:`DecodeOptions` may be given, times as unit strings
    (``step_overhead="2us"``, ``kernel_launch="0s"``, ``collective_launch="6.6us"``).
    """
    p = dict(params)
    phase = p.pop("phase", "decode")
    require_choice("phase", phase, ("decode", "prefill"))
    try:
        model, chip, topo = p.pop("model"), p.pop("chip"), p.pop("topo")
    except KeyError as exc:
        raise ConfigError(f"{exc.args[0]}: required parameter of the decode experiment") from None
    seq = {k: p.pop(k) for k in ("context" if phase == "decode" else "prompt",) if k in p}
    opts = DecodeOptions.from_mapping(p)
    fn = decode if phase == "decode" else prefill
    return fn(model, chip, topo, options=opts, **seq).to_dict()


decode_experiment.parameters = Parameters(  # type: ignore[attr-defined]
    ("model", "chip", "topo"), ("phase", "context", "prompt"), DecodeOptions
)
