"""The options of the workload studies: :class:`DecodeOptions` (decode and prefill) and
:class:`TrainOptions` (a training step).

Each class is the single list of its study's options (:mod:`netsim.core.options`): the
Python functions (:func:`workloads.decode.decode`, :func:`workloads.decode.prefill`,
:func:`workloads.train.train_step`) take ``options=`` and keyword overrides, the sweep kinds
(``decode``, ``train``) read their parameters through :meth:`~netsim.core.options.Options.
from_mapping`, and ``netsim decode`` / ``netsim train`` generate their arguments from the
fields. Values are parsed (units: ``"2us"``, ``"25MB"``) and checked when the object is made,
with one-line ConfigError messages ``name: rule, got value``; rules that need the model, chip
or topology (a split, a wire format, a landing zone) are checked by the study.

``kernel_launch`` is the chip's per-operator (kernel) launch cost of the roofline; it is not
``collective_launch``, the collective library's cost per call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from collectives.calibration import LIBRARIES
from netsim.core.engine import FORWARDING, ROUTINGS
from netsim.core.errors import ConfigError
from netsim.core.options import Options, option
from netsim.core.units import parse_size
from netsim.core.validate import require_choice, require_float
from workloads import moe
from workloads import stragglers as strag
from workloads.fabric import ALLREDUCE_ALGOS, BACKENDS
from workloads.landing import LANDINGS
from workloads.moe_collectives import COMBINE_ALGOS, DISPATCH_ALGOS

__all__ = ["DecodeOptions", "FabricOptions", "TrainOptions", "with_overrides"]


def _library(value: Any, name: str) -> str:
    # A parser, not ``choices``: the command line leaves the check to the study, so that it
    # fails with the same line as the Python API (``library: must be one of ...``).
    return require_choice(name, value, LIBRARIES)


def _bucket(value: Any, name: str) -> int:
    return parse_size(value, name, allow_zero=False)


def _checked(parse: Any) -> Any:
    """A kind that checks a spec string with ``parse`` and keeps the string as given."""

    def kind(value: Any, name: str) -> Any:
        parse(value)
        return value

    return kind


@dataclass(frozen=True, kw_only=True)
class FabricOptions(Options):
    """How the collectives of a workload are timed: network model and library costs.

    Shared by :class:`DecodeOptions` and :class:`TrainOptions`.
    """

    backend: str = option(
        "packet", choices=BACKENDS, help="network model: packet engine, analytical or flow"
    )
    forwarding: str = option("cut-through", choices=FORWARDING, help="packet forwarding")
    routing: str = option("auto", choices=ROUTINGS, help="packet routing")
    library: str = option(
        "none",
        kind=_library,
        help="collective library costs: none = hardware only, nccl = NCCL's launch, per-step "
        "cost, protocol efficiency and multipath for the topology's link types",
    )
    step_overhead: float | None = option(
        None,
        kind="time",
        help="software cost per dependent collective step, e.g. 2us (default: the library's)",
    )
    collective_launch: float | None = option(
        None,
        kind="time",
        help="software cost before each collective call, e.g. 6.6us (default: the library's)",
    )
    seed: int = option(0, kind="int", min=0, help="seed of routing, random draws and the engine")


@dataclass(frozen=True, kw_only=True)
class DecodeOptions(FabricOptions):
    """Options of one decode step and of a prefill (:func:`workloads.decode.decode`).

    The straggler options (``stragglers``, ``straggler_policy``, ``tokens``) apply to decode
    only.

    Attributes
    ----------
    tp, pp, ep, dp
        Parallel degrees (``dp=None``: as many replicas as the topology holds).
    batch
        Sequences per model instance.
    allreduce
        All-reduce algorithm (:data:`workloads.fabric.ALLREDUCE_ALGOS`); ``auto`` runs
        :data:`workloads.fabric.AUTO_CANDIDATES` and keeps the fastest that applies.
    dispatch
        MoE dispatch: ``direct`` (alias ``low-latency``, DeepEP's low-latency kernels:
        one copy per token and expert straight to the expert's GPU), ``normal``
        (DeepEP's normal kernels: RDMA once per target node to the rail peer, then
        NVLink forwarding), ``hierarchical`` (NCCL PXN: NVLink to the own node's rail
        GPU, then RDMA) or ``multicast`` (each token sent once to all chips of its
        experts; switch multicast, needs switches with ``reduction=True`` on the routes).
    combine
        MoE combine: ``direct``/``low-latency``, ``normal``, ``hierarchical`` or
        ``innetwork`` (the switches add up a token's expert outputs on the way back;
        needs reduction-capable switches). Default: as ``dispatch`` (``direct`` after
        ``multicast``).
    moe_routing
        Routing spec (:func:`workloads.moe.parse_routing`).
    moe_mode
        ``expected`` (mean counts) or ``sample`` (routes drawn with ``seed``). Default:
        ``sample`` for ``multicast`` or ``normal`` dispatch and ``innetwork`` or
        ``normal`` combine (they follow individual tokens and refuse ``expected``),
        else ``expected``.
    dispatch_dtype, combine_dtype
        Wire formats of dispatch and combine
        (:func:`workloads.moe_bytes.parse_wire_dtype`, e.g. ``"fp8/128"``, ``"bf16"``);
        default: the model's (DeepSeek-V3: ``fp8/128`` and ``bf16``; others their
        activation dtype).
    moe_kernels
        Per-call costs of the MoE kernels (:mod:`workloads.moe_kernels`): ``deepep``
        (default for ``low-latency`` and ``normal``), ``none`` (the transfers alone,
        default otherwise) or ``deepep:KEY=VALUE,...`` to override one mechanism.
    backend, forwarding, routing
        Network model (``packet``, ``analytical`` or ``flow``) and engine options.
    library
        Collective library whose software costs are added
        (:data:`collectives.calibration.LIBRARIES`): ``none`` (default: the hardware
        alone) or ``nccl`` (launch, per-step cost, protocol efficiency and multipath of
        :mod:`collectives.calibration` for the topology's link types, as
        :func:`collectives.run_collective` applies them).
    step_overhead
        Seconds of software cost per dependent step of a collective (``"0.6us"``);
        default: the library's.
    collective_launch
        Seconds before the first message of every collective call (NCCL's launch
        latency); default: the library's. Not the chip's ``kernel_launch``.
    landing
        ``chip`` (the chip's landing zone), ``sram`` or ``hbm`` (adds
        ``landing_latency`` per message to a chip).
    stragglers, straggler_policy
        :func:`workloads.stragglers.parse_stragglers` / ``parse_policy`` specs.
    tokens
        Decode steps drawn for the straggler statistics.
    kernel_launch
        Replaces the chip's per-operator (kernel) launch overhead of the roofline,
        :attr:`workloads.chips.Chip.kernel_launch` (0 models CUDA graphs);
        collectives take ``collective_launch`` instead.
    usable_fraction
        Fraction of memory usable (see :func:`workloads.sharding.plan_memory`).
    chip_price
        USD per chip for cost per token (default: the preset's price).
    seed
        Seeds routing, straggler draws and the engine.
    """

    tp: int = option(1, kind="int", help="tensor-parallel degree")
    pp: int = option(1, kind="int", help="pipeline-parallel degree")
    ep: int = option(1, kind="int", help="expert-parallel degree")
    dp: int | None = option(None, kind="int", help="data-parallel replicas")
    batch: int = option(1, kind="int", min=1, help="sequences per model instance")
    allreduce: str = option("auto", choices=ALLREDUCE_ALGOS, help="TP all-reduce algorithm")
    dispatch: str = option(
        "direct",
        choices=DISPATCH_ALGOS,
        help="MoE dispatch: direct = low-latency (DeepEP LL: one copy per token and expert, "
        "straight to its GPU), normal (DeepEP: RDMA to the rail peer once per node, then "
        "NVLink), hierarchical (NCCL PXN: NVLink first, then RDMA), or switch multicast",
    )
    combine: str | None = option(
        None,
        choices=COMBINE_ALGOS,
        help="MoE combine (default: as --dispatch; innetwork = reduced by the switches)",
    )
    moe_routing: str = option(
        "uniform",
        kind=_checked(moe.parse_routing),
        help="uniform | zipf:S[:SEED] | load:W,..., optionally @M: at most M nodes per token",
    )
    moe_mode: str | None = option(
        None,
        choices=moe.MODES,
        help="expected counts or sampled routes (default: sample for multicast/innetwork)",
    )
    dispatch_dtype: str | None = option(
        None,
        help="MoE dispatch wire format: bf16, fp8, fp8/128 (FP8 + an FP32 scale per 128 "
        "channels), ... (default: the model's; DeepSeek-V3 fp8/128)",
    )
    combine_dtype: str | None = option(
        None, help="MoE combine wire format (default: the model's; DeepSeek-V3 bf16)"
    )
    moe_kernels: str | None = option(
        None,
        help="per-call MoE kernel costs: deepep (default for low-latency/normal), none, or "
        "deepep:KEY=VALUE,... (docs/decode.md)",
    )
    landing: str = option("chip", choices=LANDINGS, help="where arriving bytes land")
    stragglers: str = option(
        "none", kind=_checked(strag.parse_stragglers), help="e.g. chip:0.125:20us+exp:1us"
    )
    straggler_policy: str = option(
        "wait", kind=_checked(strag.parse_policy), help="wait | substitute:DEADLINE"
    )
    tokens: int = option(1, kind="int", min=1, help="decode steps drawn for percentiles")
    kernel_launch: float | None = option(
        None,
        kind="time",
        min=0.0,
        help="override the chip's per-operator (kernel) launch overhead (0 = CUDA graphs)",
    )
    usable_fraction: float = option(1.0, kind="float", help="fraction of memory usable")
    chip_price: float | None = option(None, kind="float", help="USD per chip")

    def moe_given(self) -> dict[str, Any]:
        """The MoE options set to other than their defaults (refused without MoE layers)."""
        defaults = {"dispatch": "direct", "moe_routing": "uniform"}
        names = ("dispatch", "combine", "moe_routing", "moe_mode", "dispatch_dtype",
                 "combine_dtype")  # fmt: skip
        return {k: getattr(self, k) for k in names if getattr(self, k) != defaults.get(k)}

    def moe_algorithms(self) -> tuple[str, str]:
        """``(combine, moe_mode)`` with their defaults resolved.

        ``combine`` defaults to the dispatch algorithm (``direct`` after ``multicast``);
        ``moe_mode`` to ``sample`` when dispatch or combine follows individual tokens
        (multicast, normal, innetwork), else ``expected``.

        Raises
        ------
        ConfigError
            ``moe_mode=expected`` with an algorithm that needs sampled routes.
        """
        combine = self.combine
        if combine is None:
            combine = "direct" if self.dispatch == "multicast" else self.dispatch
        require_choice("combine", combine, COMBINE_ALGOS)
        sampled = self.dispatch in ("multicast", "normal") or combine in ("innetwork", "normal")
        mode = self.moe_mode if self.moe_mode is not None else ("sample" if sampled else "expected")
        if sampled and mode != "sample":
            raise ConfigError(
                "moe_mode: multicast and normal dispatch, innetwork and normal combine follow "
                f"individual tokens and need sampled routes (moe_mode=sample), got {mode!r}"
            )
        return combine, mode

    def validate(self) -> None:
        """The MoE algorithms must be able to run together (:meth:`moe_algorithms`)."""
        self.moe_algorithms()


@dataclass(frozen=True, kw_only=True)
class TrainOptions(FabricOptions):
    """Options of one training step (:func:`workloads.train.train_step`).

    Attributes
    ----------
    tp, pp, dp : int
        Parallel degrees (``dp=None``: as many replicas as the topology holds).
    global_batch, seq_len, micro_batch : int
        Sequences per step, tokens per sequence, sequences per micro-batch.
    bucket : int
        Gradient bucket size in bytes (``"25MB"``).
    allreduce, tp_allreduce : str
        Algorithms of the gradient (DP) and activation (TP) all-reduces.
    efficiency : float
        Model FLOPs utilisation of the compute, in (0, 1].
    grad_bytes : float
        Bytes per gradient element (2 for bf16).
    zero : int
        0: every chip holds the full optimizer state (16 B/param); 1: ZeRO stage 1, the
        12 B/param of fp32 master weights and Adam moments are sharded over ``dp`` (the
        gradient traffic is still timed as one all-reduce, the same ring bytes as
        reduce-scatter + all-gather).
    backend, forwarding, routing, seed
        Network model (``packet``, ``analytical`` or ``flow``), engine options and seed
        (:class:`FabricOptions`).
    library : str
        Collective library whose software costs are added: ``none`` (default, the hardware
        alone) or ``nccl`` (:func:`collectives.calibration.library_costs` for the
        topology's link types).
    step_overhead, collective_launch : float or None
        Software cost per dependent collective step and per collective call (``"2us"``);
        default: the library's.
    """

    tp: int = option(1, kind="int", help="tensor-parallel degree")
    pp: int = option(1, kind="int", help="pipeline-parallel degree")
    dp: int | None = option(None, kind="int", help="replicas (default: fill the topology)")
    global_batch: int = option(256, kind="int", min=1, help="sequences per step")
    seq_len: int = option(4096, kind="int", min=1, help="tokens per sequence")
    micro_batch: int = option(1, kind="int", min=1, help="sequences per micro-batch")
    bucket: int = option(25 * 10**6, kind=_bucket, help="gradient bucket, e.g. 25MB")
    allreduce: str = option("ring", choices=ALLREDUCE_ALGOS, help="gradient all-reduce")
    tp_allreduce: str = option("ring", choices=ALLREDUCE_ALGOS, help="TP all-reduce")
    efficiency: float = option(1 / 2, kind="float", help="MFU of the compute, in (0, 1]")
    grad_bytes: float = option(2.0, kind="float", cli=False, help="bytes per gradient element")
    zero: int = option(0, kind="int", choices=(0, 1), help="ZeRO stage (1: sharded optimizer)")

    def validate(self) -> None:
        """``efficiency`` in (0, 1] and ``grad_bytes`` > 0."""
        require_float("efficiency", self.efficiency, min=0.0, max=1.0, min_open=True)
        require_float("grad_bytes", self.grad_bytes, min=0.0, min_open=True)


_O = TypeVar("_O", bound=Options)


def with_overrides(cls: type[_O], options: _O | None, overrides: Mapping[str, Any]) -> _O:
    """``options`` (default: all of ``cls``'s defaults) with ``overrides`` applied and
    checked: how a study's function reads its ``options=`` and keyword overrides.

    Raises
    ------
    ConfigError
        ``options`` is not a ``cls``, or an override is not an option or breaks its rule.
    """
    if options is not None and not isinstance(options, cls):
        raise ConfigError(f"options: must be a {cls.__name__}, got {type(options).__name__}")
    return (options or cls()).replace(**overrides)
