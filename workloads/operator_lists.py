"""The operators one chip runs per decode step or prefill: per layer, per pipeline stage.

:func:`decode_operators` and :func:`prefill_operators` list the
:class:`workloads.operators.Operator` objects one chip of a pipeline stage runs (the
per-layer operators, the Megatron-style split and the MoE routing estimate
:func:`expected_experts_touched` are described in :mod:`workloads.roofline`). The private
helpers build the lists from a context (``_Ctx``: model, split, tier fractions of the memory
plan) and are shared with :func:`workloads.roofline.decode_compute` and
:func:`workloads.roofline.prefill_compute`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from netsim.core.validate import require_float, require_int
from workloads.chips import Chip
from workloads.chips import chip as _chip
from workloads.models import TransformerModel
from workloads.models import model as _model
from workloads.operators import Operator
from workloads.sharding import CapacityReport, kv_heads_per_chip, plan_memory, stage_layers
from workloads.sharding import require_fit as _require_fit

__all__ = ["decode_operators", "expected_experts_touched", "prefill_operators"]


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
