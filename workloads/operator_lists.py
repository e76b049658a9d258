"""The operators one chip runs per decode step or prefill: per layer, per pipeline stage.

:func:`decode_operators` and :func:`prefill_operators` list the
:class:`workloads.operators.Operator` objects one chip of a pipeline stage runs (the
per-layer operators, the Megatron-style split and the MoE routing estimate
:func:`expected_experts_touched` are described in :mod:`workloads.roofline`).
:func:`step_operators` lists them for every stage at once, with the memory plan they were
placed by; :func:`workloads.roofline.decode_compute` and
:func:`workloads.roofline.prefill_compute` time those lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypedDict, Unpack

from netsim.core.validate import require_float, require_int
from workloads import sharding
from workloads.chips import Chip
from workloads.chips import chip as get_chip
from workloads.models import TransformerModel
from workloads.models import model as get_model
from workloads.operators import Operator
from workloads.sharding import (
    CapacityReport,
    kv_elems_per_token_layer,
    kv_heads_per_chip,
    plan_memory,
    stage_layers,
)

__all__ = [
    "Split",
    "decode_operators",
    "expected_experts_touched",
    "prefill_operators",
    "step_operators",
]


class Split(TypedDict, total=False):
    """The keywords that split one step over chips and plan its memory (PEP 692).

    :func:`step_operators` takes them and holds their defaults; the functions built on it
    (:func:`decode_operators`, :func:`prefill_operators`,
    :func:`workloads.roofline.decode_compute`, ...) pass them through as ``**split``.

    Attributes
    ----------
    tp, pp, ep : int
        Tensor, pipeline and expert parallel degrees (default 1).
    require_fit : bool
        Raise CapacityError when the chip's memory cannot hold its share (default True);
        when False, the overflow is read from the slowest tier it may use (a what-if).
    usable_fraction : float
        Fraction of each memory tier usable (default 1.0, see
        :func:`workloads.sharding.plan_memory`).
    """

    tp: int
    pp: int
    ep: int
    require_fit: bool
    usable_fraction: float


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

    def act(self, width: float) -> dict[str, float]:
        """Bytes per tier of ``width`` activations of every local token."""
        return _split(self.tokens * width * self.m.act_dtype_bytes, self.af)

    def weights(self, params: float) -> dict[str, float]:
        """Bytes per tier of ``params`` weights."""
        return _split(params * self.m.weight_dtype_bytes, self.wf)


def _layer_ops(
    x: _Ctx, *, moe: bool, count: int, attn_flops_tok: float, kv_read_tok: float
) -> list[Operator]:
    """Operators of ``count`` layers of one kind (dense or MoE); ``attn_flops_tok`` and
    ``kv_read_tok`` are per local token."""
    ops = _attention_ops(x, count, attn_flops_tok, kv_read_tok)
    return ops + (_moe_mlp_ops(x, count) if moe else _dense_mlp_ops(x, count))


def _attention_ops(
    x: _Ctx, count: int, attn_flops_tok: float, kv_read_tok: float
) -> list[Operator]:
    """The attention half of a layer: norm, QKV projection (appending the new K/V to the
    cache), attention over the KV cache, output projection, and the MLP's norm."""
    m, tp, n = x.m, x.tp, x.tokens
    h, dt = m.hidden, m.compute_dtype
    kvh, _ = kv_heads_per_chip(m, tp)
    act, wts = x.act, x.weights
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
    kv_new = _split(n * kv_elems_per_token_layer(m, tp) * m.kv_dtype_bytes, x.kf)
    kv_read = _split(n * kv_read_tok, x.kf)
    return [
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
            "attention", n * attn_flops_tok, _merge(kv_read, act(qkv_out)), act(o_in), dt, count
        ),
        Operator("o_proj", 2 * n * o_in * h, _merge(wts(o_in * h), act(o_in)), act(h), dt, count),
        Operator("mlp_norm", 4 * n * h, _merge(act(h), wts(h)), act(h), dt, count),
    ]


def _dense_mlp_ops(x: _Ctx, count: int) -> list[Operator]:
    """The dense MLP of a layer (column-parallel up, row-parallel down)."""
    m, n, h, dt = x.m, x.tokens, x.m.hidden, x.m.compute_dtype
    act, wts = x.act, x.weights
    up, f = m.mlp_matrices - 1, m.ffn / x.tp
    return [
        Operator("mlp_up", 2 * n * up * h * f, _merge(wts(up * h * f), act(h)), act(f), dt, count),
        Operator("mlp_down", 2 * n * h * f, _merge(wts(h * f), act(f)), act(h), dt, count),
    ]


def _moe_mlp_ops(x: _Ctx, count: int) -> list[Operator]:
    """The MoE MLP of a layer: router, the routed experts (reading the weights of the
    experts the step touches) and the shared experts."""
    m, n, h, a, dt = x.m, x.tokens, x.m.hidden, x.m.act_dtype_bytes, x.m.compute_dtype
    act, wts = x.act, x.weights
    up, k, e_local = m.mlp_matrices - 1, m.experts_per_token, m.experts / x.ep
    f = m.expert_ffn / x.tp
    routed = n * k  # token-expert pairs computed on this chip (balanced routing)
    touched = expected_experts_touched(m.experts, k, x.routed) * (e_local / m.experts)
    ops = [
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
        flops = 2 * n * s * m.mlp_matrices * h * f
        reads = _merge(wts(s * m.mlp_matrices * h * f), act(h))
        ops.append(Operator("shared_experts", flops, reads, act(h), dt, count))
    return ops


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


def step_operators(
    m: TransformerModel | str,
    c: Chip | str,
    phase: str,
    batch: int,
    seq: int,
    *,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    require_fit: bool = True,
    usable_fraction: float = 1.0,
) -> tuple[list[list[Operator]], CapacityReport]:
    """The operators of every pipeline stage of one decode step (``phase="decode"``, ``seq``
    = context) or prefill (``"prefill"``, ``seq`` = prompt), and the memory plan.

    Decode: each new token attends to ``seq`` keys and reads their KV. Prefill (causal): the
    average query attends to ``(seq + 1) / 2`` keys; the KV of the prompt is written once
    and read once (a fused, flash-style kernel streams K/V through on-chip memory).
    ``m`` and ``c`` are models and chips or their preset names; the keywords are
    :class:`Split`'s.

    Raises
    ------
    ConfigError
        An invalid ``seq`` (named ``context`` or ``prompt``) or split.
    CapacityError
        If ``require_fit`` and the chip's share does not fit.
    """
    m, c = get_model(m), get_chip(c)
    decode = phase == "decode"
    require_int("context" if decode else "prompt", seq, min=1)
    report = plan_memory(
        m,
        c,
        batch=batch,
        context=seq,
        tp=tp,
        pp=pp,
        ep=ep,
        step_tokens=1 if decode else seq,
        usable_fraction=usable_fraction,
    )
    if require_fit:
        sharding.require_fit(report)
    per_seq = 1 if decode else seq  # tokens per sequence in the step
    fractions = (report.fractions(t) for t in ("weights", "kv_cache", "activations"))
    x = _Ctx(m, tp, ep, batch * per_seq, batch / ep * per_seq, *fractions)
    per_key = _attn_flops_per_key(m, tp)
    attn = per_key * seq if decode else per_key * (seq + 1) / 2
    kv_read = kv_elems_per_token_layer(m, tp) * m.kv_dtype_bytes * (seq if decode else 1)
    return [
        _stage_ops(
            x, layers, first=s == 0, last=s == pp - 1, attn_flops_tok=attn, kv_read_tok=kv_read
        )
        for s, layers in enumerate(stage_layers(m.layers, pp))
    ], report


def _stage(per_stage: list[list[Operator]], stage: int) -> list[Operator]:
    """The operators of pipeline stage ``stage`` (checked against the stages there are)."""
    require_int("stage", stage, min=0, max=len(per_stage) - 1)
    return per_stage[stage]


def decode_operators(
    m: TransformerModel | str,
    c: Chip | str,
    *,
    batch: int,
    context: int,
    stage: int = 0,
    **split: Unpack[Split],
) -> list[Operator]:
    """Operators one chip of pipeline ``stage`` runs to produce one token per sequence.

    Parameters are those of :func:`workloads.roofline.decode_compute`.
    """
    per_stage, _ = step_operators(m, c, "decode", batch, context, **split)
    return _stage(per_stage, stage)


def prefill_operators(
    m: TransformerModel | str,
    c: Chip | str,
    *,
    batch: int,
    prompt: int,
    stage: int = 0,
    **split: Unpack[Split],
) -> list[Operator]:
    """Operators one chip of pipeline ``stage`` runs to prefill ``prompt`` tokens per sequence
    (see :func:`step_operators` for the causal attention).
    """
    per_stage, _ = step_operators(m, c, "prefill", batch, prompt, **split)
    return _stage(per_stage, stage)
