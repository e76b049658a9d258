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
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from netsim.chips import Chip
from netsim.chips import chip as _chip
from netsim.validate import require_float, require_int
from workloads.models import TransformerModel
from workloads.models import model as _model
from workloads.sharding import (
    CapacityReport,
    kv_heads_per_chip,
    plan_memory,
    stage_layers,
    validate_sharding,
)
from workloads.sharding import require_fit as _require_fit

__all__ = [
    "CollectiveNeed",
    "ComputeEstimate",
    "OpTime",
    "Operator",
    "TrainEstimate",
    "decode_collectives",
    "decode_compute",
    "decode_operators",
    "expected_experts_touched",
    "op_time",
    "prefill_compute",
    "prefill_operators",
    "train_compute",
]

Bound = Literal["compute", "memory"]


@dataclass(frozen=True, slots=True)
class Operator:
    """One kernel: FLOPs and bytes moved per memory tier.

    Attributes
    ----------
    name : str
        Label, e.g. ``"qkv_proj"``.
    flops : float
        Floating-point (or integer) operations.
    reads, writes : Mapping[str, float]
        Tier name -> bytes read / written.
    dtype : str
        Data type of the arithmetic (selects the chip's peak).
    count : int
        Times the operator runs back to back per step (e.g. once per layer).
    """

    name: str
    flops: float
    reads: Mapping[str, float] = field(default_factory=dict)
    writes: Mapping[str, float] = field(default_factory=dict)
    dtype: str = "bf16"
    count: int = 1

    def __post_init__(self) -> None:
        require_float(f"{self.name}.flops", self.flops, min=0.0)
        require_int(f"{self.name}.count", self.count, min=0)
        for kind in ("reads", "writes"):
            for tier, nbytes in getattr(self, kind).items():
                require_float(f"{self.name}.{kind}[{tier}]", nbytes, min=0.0)

    @property
    def bytes_moved(self) -> float:
        """Bytes read plus written over all tiers."""
        return sum(self.reads.values()) + sum(self.writes.values())


@dataclass(frozen=True, slots=True)
class OpTime:
    """Roofline time of one operator (per run; ``total`` multiplies by ``op.count``)."""

    op: Operator
    compute_time: float
    memory_time: float
    tier_times: Mapping[str, float]
    launch: float
    bound: Bound

    @property
    def time(self) -> float:
        """Seconds per run: ``max(compute, memory) + launch``."""
        return max(self.compute_time, self.memory_time) + self.launch

    @property
    def total(self) -> float:
        """Seconds over ``op.count`` runs."""
        return self.time * self.op.count

    @property
    def bottleneck(self) -> str:
        """``"compute"`` or the name of the slowest memory tier."""
        if self.bound == "compute" or not self.tier_times:
            return "compute"
        return max(self.tier_times, key=lambda t: self.tier_times[t])


def op_time(c: Chip | str, op: Operator) -> OpTime:
    """Roofline time of ``op`` on chip ``c``.

    Raises
    ------
    ConfigError
        If the operator touches a tier the chip lacks, or the chip has no peak for its dtype.

    Examples
    --------
    >>> from netsim.chips import chip
    >>> h100 = chip("h100").replace(launch_overhead=0.0)
    >>> t = op_time(h100, Operator("gemv", flops=2e9, reads={"hbm": 2e9}))
    >>> t.bound, round(t.time * 1e3, 3)   # 2 GB / 3.35 TB/s
    ('memory', 0.597)
    """
    c = _chip(c)
    compute = op.flops / c.peak(op.dtype) if op.flops else 0.0
    tiers: dict[str, float] = {}
    for tier in set(op.reads) | set(op.writes):
        nbytes = op.reads.get(tier, 0.0) + op.writes.get(tier, 0.0)
        if nbytes:
            tiers[tier] = nbytes / c.tier(tier).bandwidth
    memory = max(tiers.values(), default=0.0)
    bound: Bound = "compute" if compute >= memory and compute > 0 else "memory"
    return OpTime(op, compute, memory, MappingProxyType(tiers), c.launch_overhead, bound)


def expected_experts_touched(experts: int, per_token: int, tokens: float) -> float:
    """Expected distinct experts chosen when ``tokens`` tokens each pick ``per_token`` of
    ``experts`` uniformly: ``E * (1 - (1 - k/E) ** tokens)``.

    Examples
    --------
    >>> expected_experts_touched(8, 2, 1)
    2.0
    """
    require_int("experts", experts, min=1)
    require_int("per_token", per_token, min=1, max=experts)
    require_float("tokens", tokens, min=0.0)
    return experts * (1.0 - (1.0 - per_token / experts) ** tokens)


# ---------------------------------------------------------------------- operator lists
def _split(nbytes: float, fractions: Mapping[str, float]) -> dict[str, float]:
    return {t: nbytes * f for t, f in fractions.items() if nbytes * f > 0}


def _merge(*parts: Mapping[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for p in parts:
        for t, b in p.items():
            out[t] = out.get(t, 0.0) + b
    return out


@dataclass(frozen=True)
class _Ctx:
    m: TransformerModel
    tp: int
    ep: int
    routed: float  # tokens routed per step over the whole instance (expert-touch estimate)
    tokens: float  # tokens per step on this chip (attention side: batch / ep x tokens/seq)
    wf: Mapping[str, float]  # weight fractions per tier
    kf: Mapping[str, float]  # kv fractions
    af: Mapping[str, float]  # activation fractions


def _layer_ops(
    x: _Ctx, *, moe: bool, count: int, attn_flops_tok: float, kv_read_tok: float
) -> list[Operator]:
    """Operators of one layer; ``attn_flops_tok``/``kv_read_tok`` are per local token."""
    m, tp, n = x.m, x.tp, x.tokens
    h, w, a, kvb = m.hidden, m.weight_dtype_bytes, m.act_dtype_bytes, m.kv_dtype_bytes
    dt = m.compute_dtype
    kvh, _ = kv_heads_per_chip(m, tp)
    act = lambda width: _split(n * width * a, x.af)  # noqa: E731
    wts = lambda params: _split(params * w, x.wf)  # noqa: E731

    if m.attention == "gqa":
        qkv_params = h * (m.heads / tp) * m.head_dim + 2 * h * kvh * m.head_dim
        qkv_out = (m.heads / tp) * m.head_dim + 2 * kvh * m.head_dim
        o_in = (m.heads / tp) * m.head_dim
    else:
        q_b = (m.q_lora_rank or h) * m.q_dim() / tp
        kv_b = m.kv_lora_rank * m.heads * (m.head_dim + m.v_head_dim) / tp
        qkv_params = h * (m.kv_lora_rank + m.qk_rope_dim) + h * m.q_lora_rank + q_b + kv_b
        qkv_out = m.q_dim() / tp + m.kv_lora_rank + m.qk_rope_dim
        o_in = (m.heads / tp) * m.v_head_dim
    kv_new = _split(n * _kv_elems(m, tp) * kvb, x.kf)
    ops = [
        Operator("attn_norm", 4 * n * h, _merge(act(h), wts(h)), act(h), dt, count),
        Operator(
            "qkv_proj",
            2 * n * qkv_params,
            _merge(wts(qkv_params), act(h)),
            _merge(act(qkv_out), kv_new),
            dt,
            count,
        ),
        Operator(
            "attention",
            n * attn_flops_tok,
            _merge(_split(n * kv_read_tok, x.kf), act(qkv_out)),
            act(o_in),
            dt,
            count,
        ),
        Operator("o_proj", 2 * n * o_in * h, _merge(wts(o_in * h), act(o_in)), act(h), dt, count),
        Operator("mlp_norm", 4 * n * h, _merge(act(h), wts(h)), act(h), dt, count),
    ]
    up = m.mlp_matrices - 1
    if not moe:
        f = m.ffn / tp
        ops += [
            Operator(
                "mlp_up", 2 * n * up * h * f, _merge(wts(up * h * f), act(h)), act(f), dt, count
            ),
            Operator("mlp_down", 2 * n * h * f, _merge(wts(h * f), act(f)), act(h), dt, count),
        ]
        return ops
    k, e_local = m.experts_per_token, m.experts / x.ep
    f = m.expert_ffn / tp
    routed = n * k  # token-expert pairs computed on this chip (balanced routing)
    touched = expected_experts_touched(m.experts, k, x.routed) * (e_local / m.experts)
    ops += [
        Operator(
            "router",
            2 * n * h * m.experts,
            _merge(wts(h * m.experts), act(h)),
            act(m.experts),
            dt,
            count,
        ),
        Operator(
            "experts_up",
            2 * routed * up * h * f,
            _merge(wts(touched * up * h * f), _split(routed * h * a, x.af)),
            _split(routed * f * a, x.af),
            dt,
            count,
        ),
        Operator(
            "experts_down",
            2 * routed * h * f,
            _merge(wts(touched * h * f), _split(routed * f * a, x.af)),
            _split(routed * h * a, x.af),
            dt,
            count,
        ),
    ]
    if m.shared_experts:
        s = m.shared_experts
        ops.append(
            Operator(
                "shared_experts",
                2 * n * s * m.mlp_matrices * h * f,
                _merge(wts(s * m.mlp_matrices * h * f), act(h)),
                act(h),
                dt,
                count,
            )
        )
    return ops


def _kv_elems(m: TransformerModel, tp: int) -> float:
    if m.attention == "mla":
        return float(m.kv_lora_rank + m.qk_rope_dim)
    kvh, _ = kv_heads_per_chip(m, tp)
    return 2.0 * kvh * m.head_dim


def _attn_flops_per_key(m: TransformerModel, tp: int) -> float:
    """Score+value FLOPs per (query token, key) on one TP rank."""
    return m.attention_flops_per_token_layer(1) / tp


def _stage_ops(
    x: _Ctx,
    layers: range,
    *,
    first: bool,
    last: bool,
    attn_flops_tok: float,
    kv_read_tok: float,
) -> list[Operator]:
    m = x.m
    n_moe = sum(1 for i in layers if m.is_moe_layer(i))
    n_dense = len(layers) - n_moe
    ops: list[Operator] = []
    w, a = m.weight_dtype_bytes, m.act_dtype_bytes
    if first:
        ops.append(
            Operator(
                "embedding",
                0.0,
                _split(x.tokens * m.hidden * w, x.wf),
                _split(x.tokens * m.hidden * a, x.af),
                m.compute_dtype,
            )
        )
    if n_dense:
        ops += _layer_ops(
            x, moe=False, count=n_dense, attn_flops_tok=attn_flops_tok, kv_read_tok=kv_read_tok
        )
    if n_moe:
        ops += _layer_ops(
            x, moe=True, count=n_moe, attn_flops_tok=attn_flops_tok, kv_read_tok=kv_read_tok
        )
    if last:
        v = m.vocab / x.tp
        ops += [
            Operator(
                "final_norm",
                4 * x.tokens * m.hidden,
                _merge(_split(x.tokens * m.hidden * a, x.af), _split(m.hidden * w, x.wf)),
                _split(x.tokens * m.hidden * a, x.af),
                m.compute_dtype,
            ),
            Operator(
                "lm_head",
                2 * x.tokens * m.hidden * v,
                _merge(_split(m.hidden * v * w, x.wf), _split(x.tokens * m.hidden * a, x.af)),
                _split(x.tokens * v * 4, x.af),
                m.compute_dtype,
            ),
        ]
    return ops


def _ctx(
    m: TransformerModel, tp: int, ep: int, batch: int, tokens: float, report: CapacityReport
) -> _Ctx:
    return _Ctx(
        m,
        tp,
        ep,
        batch,
        tokens,
        report.fractions("weights"),
        report.fractions("kv_cache"),
        report.fractions("activations"),
    )


def _check(
    m: TransformerModel,
    c: Chip,
    batch: int,
    seq: int,
    seq_name: str,
    tp: int,
    pp: int,
    ep: int,
    step_tokens: int,
    require: bool,
    usable_fraction: float,
) -> CapacityReport:
    require_int(seq_name, seq, min=1)
    report = plan_memory(
        m,
        c,
        batch=batch,
        context=seq,
        tp=tp,
        pp=pp,
        ep=ep,
        step_tokens=step_tokens,
        usable_fraction=usable_fraction,
    )
    if require:
        _require_fit(report)
    return report


def decode_operators(
    m: TransformerModel | str,
    c: Chip | str,
    *,
    batch: int,
    context: int,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    stage: int = 0,
    require_fit: bool = True,
    usable_fraction: float = 1.0,
) -> list[Operator]:
    """Operators one chip of pipeline ``stage`` runs to produce one token per sequence.

    Parameters are those of :func:`decode_compute`.
    """
    m, c = _model(m), _chip(c)
    report = _check(m, c, batch, context, "context", tp, pp, ep, 1, require_fit, usable_fraction)
    require_int("stage", stage, min=0, max=pp - 1)
    x = _ctx(m, tp, ep, batch, batch / ep, report)
    layers = stage_layers(m.layers, pp)[stage]
    return _stage_ops(
        x,
        layers,
        first=stage == 0,
        last=stage == pp - 1,
        attn_flops_tok=_attn_flops_per_key(m, tp) * context,
        kv_read_tok=_kv_elems(m, tp) * m.kv_dtype_bytes * context,
    )


def prefill_operators(
    m: TransformerModel | str,
    c: Chip | str,
    *,
    batch: int,
    prompt: int,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    stage: int = 0,
    require_fit: bool = True,
    usable_fraction: float = 1.0,
) -> list[Operator]:
    """Operators one chip of pipeline ``stage`` runs to prefill ``prompt`` tokens per sequence.

    Causal attention: token ``i`` attends to ``i`` keys, so the average query attends to
    ``(prompt + 1) / 2`` keys; the KV of the prompt is written once and read once (a fused,
    flash-style kernel streams K/V through on-chip memory).
    """
    m, c = _model(m), _chip(c)
    report = _check(m, c, batch, prompt, "prompt", tp, pp, ep, prompt, require_fit, usable_fraction)
    require_int("stage", stage, min=0, max=pp - 1)
    x = _ctx(m, tp, ep, batch * prompt, batch / ep * prompt, report)
    layers = stage_layers(m.layers, pp)[stage]
    return _stage_ops(
        x,
        layers,
        first=stage == 0,
        last=stage == pp - 1,
        attn_flops_tok=_attn_flops_per_key(m, tp) * (prompt + 1) / 2,
        kv_read_tok=_kv_elems(m, tp) * m.kv_dtype_bytes,
    )


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
    phase: str,
    m: TransformerModel,
    c: Chip,
    batch: int,
    tokens: int,
    tp: int,
    pp: int,
    ep: int,
    per_stage: Sequence[list[Operator]],
    report: CapacityReport,
) -> ComputeEstimate:
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
    return ComputeEstimate(
        phase,
        m.name,
        c.name,
        batch,
        tokens,
        tp,
        pp,
        ep,
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


def decode_compute(
    m: TransformerModel | str,
    c: Chip | str,
    *,
    batch: int,
    context: int,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    require_fit: bool = True,
    usable_fraction: float = 1.0,
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
    tp, pp, ep : int
        Tensor, pipeline and expert parallel degrees.
    require_fit : bool
        Raise CapacityError when the chip's memory cannot hold its share; when False,
        the overflow is read from the slowest tier it may use (a what-if).
    usable_fraction : float
        Fraction of each memory tier usable (see :func:`workloads.sharding.plan_memory`).

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
    >>> from netsim.chips import chip
    >>> est = decode_compute("llama3-8b", chip("h100").replace(launch_overhead=0.0),
    ...                      batch=1, context=1)
    >>> round(est.time * 1e3, 2)   # (16.06 GB weights - 1.05 GB embedding table) / 3.35 TB/s
    4.48
    """
    m, c = _model(m), _chip(c)
    report = _check(m, c, batch, context, "context", tp, pp, ep, 1, require_fit, usable_fraction)
    x = _ctx(m, tp, ep, batch, batch / ep, report)
    ranges = stage_layers(m.layers, pp)
    per_stage = [
        _stage_ops(
            x,
            ranges[s],
            first=s == 0,
            last=s == pp - 1,
            attn_flops_tok=_attn_flops_per_key(m, tp) * context,
            kv_read_tok=_kv_elems(m, tp) * m.kv_dtype_bytes * context,
        )
        for s in range(pp)
    ]
    return _estimate("decode", m, c, batch, context, tp, pp, ep, per_stage, report)


def prefill_compute(
    m: TransformerModel | str,
    c: Chip | str,
    *,
    batch: int,
    prompt: int,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    require_fit: bool = True,
    usable_fraction: float = 1.0,
) -> ComputeEstimate:
    """Compute/memory time to prefill ``prompt`` tokens for ``batch`` sequences on one chip.

    Parameters as :func:`decode_compute` with ``prompt`` (tokens per sequence) in place of
    ``context``. ``time`` is the compute part of the time to first token.
    """
    m, c = _model(m), _chip(c)
    report = _check(m, c, batch, prompt, "prompt", tp, pp, ep, prompt, require_fit, usable_fraction)
    x = _ctx(m, tp, ep, batch * prompt, batch / ep * prompt, report)
    ranges = stage_layers(m.layers, pp)
    per_stage = [
        _stage_ops(
            x,
            ranges[s],
            first=s == 0,
            last=s == pp - 1,
            attn_flops_tok=_attn_flops_per_key(m, tp) * (prompt + 1) / 2,
            kv_read_tok=_kv_elems(m, tp) * m.kv_dtype_bytes,
        )
        for s in range(pp)
    ]
    return _estimate("prefill", m, c, batch, prompt, tp, pp, ep, per_stage, report)


# ---------------------------------------------------------------------- training
@dataclass(frozen=True, slots=True)
class TrainEstimate:
    """Compute time of one training step: ``flops = 6 * params * tokens``.

    ``params`` is :meth:`~workloads.models.TransformerModel.matrix_params` (active
    parameters in matrix multiplies: no embedding lookup, no norms);
    ``time = flops / (chips * peak * efficiency)``.
    """

    model: str
    chip: str
    tokens: int
    chips: int
    params: float
    flops: float
    efficiency: float
    time: float


def train_compute(
    m: TransformerModel | str,
    c: Chip | str,
    *,
    tokens: int,
    chips: int = 1,
    efficiency: float = 1.0,
    dtype: str | None = None,
) -> TrainEstimate:
    """Compute time of one training step of ``tokens`` tokens spread over ``chips`` chips.

    Uses the standard ``6 N D`` estimate (forward 2ND + backward 4ND; Kaplan et al.,
    "Scaling Laws for Neural Language Models", arXiv:2001.08361) with ``N`` the active
    matrix parameters per token; attention-score FLOPs and recomputation are not counted.

    Parameters
    ----------
    tokens : int
        Tokens in the global batch of one step.
    chips : int
        Chips sharing the work evenly.
    efficiency : float
        Model FLOPs utilisation in (0, 1].
    dtype : str, optional
        Data type of the matrix units; default the model's ``compute_dtype``.
    """
    m, c = _model(m), _chip(c)
    require_int("tokens", tokens, min=1)
    require_int("chips", chips, min=1)
    eff = require_float("efficiency", efficiency, min=0.0, max=1.0, min_open=True)
    n = float(m.matrix_params())
    flops = 6.0 * n * tokens
    peak = c.peak(dtype or m.compute_dtype)
    return TrainEstimate(m.name, c.name, tokens, chips, n, flops, eff, flops / (chips * peak * eff))


# ---------------------------------------------------------------------- fabric needs
@dataclass(frozen=True, slots=True)
class CollectiveNeed:
    """A collective the decode step needs per chip (timed later on a network backend).

    Attributes
    ----------
    kind : str
        ``"all_reduce"``, ``"all_to_all"`` or ``"send"`` (pipeline hand-off).
    group : str
        ``"tp"``, ``"ep"`` or ``"pp"`` (see :class:`workloads.sharding.Parallelism`).
    nbytes : float
        Bytes per chip per call (all-reduce: the buffer; all-to-all: bytes a chip sends).
    count : int
        Calls per decode step on one chip, summed over its stage's layers.
    name : str
        What it is for.
    """

    kind: str
    group: str
    nbytes: float
    count: int
    name: str


def decode_collectives(
    m: TransformerModel | str,
    *,
    batch: int,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    stage: int = 0,
) -> list[CollectiveNeed]:
    """Collectives one chip of ``stage`` joins per decode step (Megatron-style split).

    * TP: two all-reduces per layer (after ``o_proj`` and after the MLP/experts) of
      ``batch/ep * hidden`` activations.
    * EP: per MoE layer, an all-to-all dispatch and one combine; each chip sends
      ``batch/ep * k * hidden`` activation bytes times ``(ep-1)/ep`` (uniform routing).
    * PP: one send of the chip's ``batch/ep * hidden`` activations to the next stage (not
      on the last), divided by ``tp`` (Megatron's scatter/gather optimisation: each TP
      rank sends a slice and the next stage all-gathers it).
    """
    m = _model(m)
    validate_sharding(m, tp=tp, pp=pp, ep=ep, batch=batch)
    require_int("stage", stage, min=0, max=pp - 1)
    layers = stage_layers(m.layers, pp)[stage]
    n_moe = sum(1 for i in layers if m.is_moe_layer(i))
    local = batch / ep * m.hidden * m.act_dtype_bytes
    out: list[CollectiveNeed] = []
    if tp > 1:
        out.append(CollectiveNeed("all_reduce", "tp", local, 2 * len(layers), "tp_layer_outputs"))
    if ep > 1 and n_moe:
        a2a = local * m.experts_per_token * (ep - 1) / ep
        out.append(CollectiveNeed("all_to_all", "ep", a2a, n_moe, "moe_dispatch"))
        out.append(CollectiveNeed("all_to_all", "ep", a2a, n_moe, "moe_combine"))
    if stage < pp - 1:
        out.append(
            CollectiveNeed("send", "pp", local / tp if tp > 1 else local, 1, "pp_activations")
        )
    return out
