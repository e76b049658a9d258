"""Roofline compute/memory time of transformer inference and training on one chip.

The fabric is *not* here: these functions give the time a chip spends computing and
streaming its own memory. The decode workload adds the time of the collectives (TP
all-reduces, EP all-to-alls, PP sends) measured on a network backend; the byte sizes of
those collectives come from :func:`decode_collectives`.

Model
-----
An :class:`Operator` does ``flops`` in one data type and moves bytes from/to memory tiers.
Its time on a chip (:func:`op_time`) is the roofline::

    t = max(flops / peak[dtype], max over tiers (read + written bytes) / bandwidth) + launch

Tiers have independent interfaces and stream concurrently, so the memory term is the
slowest tier (hierarchical roofline). Tier access latency is not charged: weight and KV
streams are sequential and prefetched. ``bound`` records which term won.

Per-layer operators (decode, one chip of a model instance; see :mod:`workloads.sharding`
for the Megatron-style split and the batch convention: each EP rank attends for
``batch / ep`` sequences):

``attn_norm``, ``qkv_proj`` (column-parallel; appends the new K/V to the cache),
``attention`` (reads the KV cache of ``context`` tokens), ``o_proj`` (row-parallel),
``mlp_norm``, then ``mlp_up`` + ``mlp_down`` (dense) or ``router``, ``experts_up``,
``experts_down`` and ``shared_experts`` (MoE). Plus ``embedding`` on the first stage and
``final_norm`` + ``lm_head`` on the last. Each tensor is striped over the tiers it was
placed in (:func:`workloads.sharding.plan_memory`), in proportion.

MoE routing: with ``B`` tokens each picking ``k`` of ``E`` experts uniformly at random, the
expected number of distinct experts touched is ``E * (1 - (1 - k/E)**B)``; a rank holding
``E/ep`` experts reads that fraction of its expert weights, and computes ``k`` expert MLPs
per local token (balanced routing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Unpack

from workloads.chips import Chip
from workloads.chips import chip as get_chip
from workloads.collective_needs import CollectiveNeed, decode_collectives
from workloads.models import TransformerModel
from workloads.operator_lists import (
    Split,
    decode_operators,
    expected_experts_touched,
    prefill_operators,
    step_operators,
)
from workloads.operators import Operator, OpTime, op_time
from workloads.sharding import CapacityReport
from workloads.train_flops import TrainEstimate, train_compute

__all__ = [
    "CollectiveNeed",
    "ComputeEstimate",
    "OpTime",
    "Operator",
    "Split",
    "TrainEstimate",
    "decode_collectives",
    "decode_compute",
    "decode_operators",
    "expected_experts_touched",
    "op_time",
    "prefill_compute",
    "prefill_operators",
    "step_compute",
    "train_compute",
]


# ---------------------------------------------------------------------- results
@dataclass(frozen=True)
class ComputeEstimate:
    """Per-chip compute/memory time of one decode step or one prefill (fabric excluded).

    Attributes
    ----------
    phase : str
        ``"decode"`` or ``"prefill"``.
    model, chip : str
        Names.
    batch, tokens, tp, pp, ep : int
        Sequences on the model instance; ``context`` (decode) or ``prompt`` (prefill);
        parallel degrees.
    stage_times : tuple[float, ...]
        Seconds per pipeline stage.
    time : float
        Sum of the stage times: the latency of one step through the pipeline without the
        fabric (decode: per output token; prefill: the compute part of time to first token).
    compute_bound_time, memory_bound_time, launch_time : float
        ``time`` split into operators limited by compute, operators limited by memory
        (roofline part only) and launch overheads; they add up to ``time``.
    flops : float
        FLOPs per chip per step, summed over stages.
    bytes_by_tier : Mapping[str, float]
        Bytes moved per tier, summed over stages.
    op_times : tuple[OpTime, ...]
        Every operator of every stage (``count`` = layers of that kind).
    capacity : CapacityReport
        Memory plan of the fullest stage.
    """

    phase: str
    model: str
    chip: str
    batch: int
    tokens: int
    tp: int
    pp: int
    ep: int
    stage_times: tuple[float, ...]
    time: float
    compute_bound_time: float
    memory_bound_time: float
    launch_time: float
    flops: float
    bytes_by_tier: Mapping[str, float]
    op_times: tuple[OpTime, ...]
    capacity: CapacityReport

    @property
    def stage_time(self) -> float:
        """The slowest stage: the steady-state step interval of a full pipeline."""
        return max(self.stage_times)

    @property
    def throughput(self) -> float:
        """Tokens per second of one model instance if stages overlap perfectly
        (decode: ``batch / stage_time``; prefill: ``batch * prompt / stage_time``)."""
        per_step = self.batch if self.phase == "decode" else self.batch * self.tokens
        return per_step / self.stage_time

    def breakdown(self) -> dict[str, float]:
        """Seconds per operator name, summed over layers and stages."""
        out: dict[str, float] = {}
        for t in self.op_times:
            out[t.op.name] = out.get(t.op.name, 0.0) + t.total
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain-data view (without per-operator objects)."""
        return {
            "phase": self.phase,
            "model": self.model,
            "chip": self.chip,
            "batch": self.batch,
            "tokens": self.tokens,
            "tp": self.tp,
            "pp": self.pp,
            "ep": self.ep,
            "time": self.time,
            "stage_times": list(self.stage_times),
            "compute_bound_time": self.compute_bound_time,
            "memory_bound_time": self.memory_bound_time,
            "launch_time": self.launch_time,
            "flops": self.flops,
            "bytes_by_tier": dict(self.bytes_by_tier),
            "breakdown": self.breakdown(),
            "capacity": self.capacity.to_dict(),
        }


def _estimate(
    phase: str, c: Chip, per_stage: Sequence[list[Operator]], report: CapacityReport
) -> ComputeEstimate:
    """Time the operators of every stage on ``c``; the load and split are the report's."""
    stage_times, all_times = [], []
    cb = mb = launch = flops = 0.0
    by_tier: dict[str, float] = {}
    for ops in per_stage:
        times = [op_time(c, op) for op in ops]
        stage_times.append(sum(t.total for t in times))
        for t in times:
            roof = max(t.compute_time, t.memory_time) * t.op.count
            if t.bound == "compute":
                cb += roof
            else:
                mb += roof
            launch += t.launch * t.op.count
            flops += t.op.flops * t.op.count
            for tier in set(t.op.reads) | set(t.op.writes):
                moved = t.op.reads.get(tier, 0.0) + t.op.writes.get(tier, 0.0)
                by_tier[tier] = by_tier.get(tier, 0.0) + moved * t.op.count
        all_times += times
    r = report
    return ComputeEstimate(
        phase,
        r.model,
        r.chip,
        r.batch,
        r.context,
        r.tp,
        r.pp,
        r.ep,
        tuple(stage_times),
        sum(stage_times),
        cb,
        mb,
        launch,
        flops,
        MappingProxyType(by_tier),
        tuple(all_times),
        report,
    )


def step_compute(
    m: TransformerModel | str,
    c: Chip | str,
    phase: str,
    batch: int,
    seq: int,
    **split: Unpack[Split],
) -> ComputeEstimate:
    """Compute/memory time of one decode step (``phase="decode"``, ``seq`` = context) or
    one prefill (``"prefill"``, ``seq`` = prompt) on one chip: :func:`decode_compute` and
    :func:`prefill_compute` with the phase as a parameter."""
    c = get_chip(c)
    per_stage, report = step_operators(m, c, phase, batch, seq, **split)
    return _estimate(phase, c, per_stage, report)


def decode_compute(
    m: TransformerModel | str,
    c: Chip | str,
    *,
    batch: int,
    context: int,
    **split: Unpack[Split],
) -> ComputeEstimate:
    """Compute/memory time for one decode step (one new token per sequence) on one chip.

    Parameters
    ----------
    m : TransformerModel or str
        Model or preset name.
    c : Chip or str
        Chip or preset name.
    batch : int
        Sequences decoded together by one model instance (``tp * ep * pp`` chips).
    context : int
        Tokens in each sequence's KV cache that the new token attends to.
    **split
        ``tp, pp, ep`` (tensor, pipeline and expert parallel degrees), ``require_fit``
        (raise CapacityError when the chip's memory cannot hold its share; when False,
        the overflow is read from the slowest tier it may use, a what-if) and
        ``usable_fraction`` (fraction of each memory tier usable, see
        :func:`workloads.sharding.plan_memory`): :class:`Split`.

    Returns
    -------
    ComputeEstimate
        ``time`` is the per-token latency excluding the fabric.

    Raises
    ------
    ConfigError
        For an invalid split (``tp`` must divide the heads, ``ep`` the experts, ...).
    CapacityError
        If ``require_fit`` and the share does not fit.

    Examples
    --------
    >>> from workloads.chips import chip
    >>> est = decode_compute("llama3-8b", chip("h100").replace(kernel_launch=0.0),
    ...                      batch=1, context=1)
    >>> round(est.time * 1e3, 2)   # (16.06 GB weights - 1.05 GB embedding table) / 3.35 TB/s
    4.48
    """
    return step_compute(m, c, "decode", batch, context, **split)


def prefill_compute(
    m: TransformerModel | str,
    c: Chip | str,
    *,
    batch: int,
    prompt: int,
    **split: Unpack[Split],
) -> ComputeEstimate:
    """Compute/memory time to prefill ``prompt`` tokens for ``batch`` sequences on one chip.

    Parameters as :func:`decode_compute` with ``prompt`` (tokens per sequence) in place of
    ``context``. ``time`` is the compute part of the time to first token.
    """
    return step_compute(m, c, "prefill", batch, prompt, **split)
