"""Roofline times against closed forms: memory-bound decode, compute-bound prefill, MoE."""

from __future__ import annotations

import pytest

from netsim.core.errors import CapacityError, ConfigError
from workloads.chips import chip
from workloads.models import model
from workloads.roofline import (
    Operator,
    decode_collectives,
    decode_compute,
    decode_operators,
    expected_experts_touched,
    op_time,
    prefill_compute,
    train_compute,
)

H100 = chip("h100").replace(name="h100-nolaunch", kernel_launch=0.0)
BW = 3.35e12


def test_op_time_roofline():
    op = Operator("x", flops=1e12, reads={"hbm": 1e9}, writes={"hbm": 1e9})
    t = op_time(H100, op)
    assert t.compute_time == pytest.approx(1e12 / 989.4e12)
    assert t.memory_time == pytest.approx(2e9 / BW)
    assert t.bound == "compute" and t.time == t.compute_time
    t = op_time(chip("h100"), Operator("y", flops=1.0, reads={"hbm": 1e9}, count=3))
    assert t.bound == "memory" and t.bottleneck == "hbm"
    assert t.total == pytest.approx(3 * (1e9 / BW + 4e-6))
    with pytest.raises(ConfigError, match="tier: chip 'h100-nolaunch' has tiers hbm, got 'sram'"):
        op_time(H100, Operator("z", 1.0, reads={"sram": 1.0}))


def test_tiers_stream_concurrently():
    c = chip("hbf-inference").replace(kernel_launch=0.0)
    t = op_time(c, Operator("w", 0.0, reads={"hbm": 1e9, "hbf": 3e9}))
    assert t.memory_time == pytest.approx(3e9 / 1638.4e9)
    assert t.bottleneck == "hbf"


def test_llama3_8b_batch1_decode_is_weight_streaming():
    """Batch-1 decode on one H100 reads every weight once (except the embedding table, of
    which one row is read) plus the KV cache. The rule of thumb 16 GB / 3.35 TB/s = 4.8 ms
    counts the 1.05 GB embedding table too; the true floor is ~4.48 ms."""
    m = model("llama3-8b")
    ctx = 2048
    est = decode_compute(m, H100, batch=1, context=ctx)
    streamed = (m.weight_bytes() - m.embedding_params() * 2) + ctx * m.kv_bytes_per_token()
    assert est.time == pytest.approx(streamed / BW, rel=1e-3)  # activations are ~MBs
    assert est.time < m.weight_bytes() / BW  # below the 4.8 ms rule of thumb
    assert est.compute_bound_time == 0.0
    assert est.memory_bound_time == pytest.approx(est.time)
    assert est.time * 1e3 == pytest.approx(4.48 + ctx * 131072 / BW * 1e3, abs=0.01)


def test_decode_slope_in_context_is_kv_read():
    m = model("llama3-8b")
    t1 = decode_compute(m, H100, batch=4, context=1000).time
    t2 = decode_compute(m, H100, batch=4, context=3000).time
    assert t2 - t1 == pytest.approx(4 * 2000 * m.kv_bytes_per_token() / BW, rel=1e-9)


def test_kernel_launch_adds_per_operator():
    m = model("llama3-8b")
    ops = decode_operators(m, H100, batch=1, context=16)
    n_ops = sum(op.count for op in ops)
    assert n_ops == 32 * 7 + 3  # 7 operators per layer + embedding, final_norm, lm_head
    slow = decode_compute(m, chip("h100"), batch=1, context=16)
    fast = decode_compute(m, H100, batch=1, context=16)
    assert slow.launch_time == pytest.approx(n_ops * 4e-6)
    assert slow.time - fast.time == pytest.approx(slow.launch_time)


def test_breakdown_adds_up():
    est = decode_compute("mixtral-8x7b", "h200", batch=32, context=4096, tp=2, ep=2)
    assert sum(est.breakdown().values()) == pytest.approx(est.time)
    assert est.compute_bound_time + est.memory_bound_time + est.launch_time == pytest.approx(
        est.time
    )


def test_tensor_parallel_halves_weight_streaming():
    m = model("llama3-70b")
    t2 = decode_compute(m, H100, batch=1, context=1, tp=2)
    t4 = decode_compute(m, H100, batch=1, context=1, tp=4)
    # Weights per chip shrink by tp (norms are replicated but ~1e-4 of the bytes).
    assert t2.time / t4.time == pytest.approx(2.0, rel=1e-3)


def test_moe_batch1_reads_only_active_experts():
    m = model("mixtral-8x7b")
    c = chip("h200").replace(kernel_launch=0.0)
    est = decode_compute(m, c, batch=1, context=1)
    active = (m.active_params() - m.embedding_params()) * m.weight_dtype_bytes
    assert est.time == pytest.approx(active / 4.8e12, rel=1e-3)
    # a large batch touches (almost) every expert: all weights are streamed
    big = decode_compute(m, c, batch=512, context=1, require_fit=False)
    assert big.bytes_by_tier["hbm"] > (m.weight_bytes() - m.embedding_params() * 2) * 0.999


def test_expected_experts_touched():
    assert expected_experts_touched(8, 2, 1) == pytest.approx(2.0)
    assert expected_experts_touched(256, 8, 0) == 0.0
    assert expected_experts_touched(256, 8, 10_000) == pytest.approx(256.0)
    # two tokens: 2k minus the expected overlap k*k/E
    assert expected_experts_touched(8, 2, 2) == pytest.approx(4 - 2 * 2 / 8)


def test_prefill_compute_bound_is_flops_over_peak():
    """With memory made infinitely fast, prefill time is exactly FLOPs / peak, and the
    FLOPs match the closed form 2 N P + causal attention + norms."""
    m = model("llama3-8b")
    P = 2048
    c = H100.with_tier("hbm", bandwidth=1e30)
    est = prefill_compute(m, c, batch=1, prompt=P)
    matrix = m.total_params() - m.embedding_params() - (m.layers * 2 + 1) * m.hidden
    attn = m.layers * 4 * m.heads * m.head_dim * P * (P + 1) / 2
    norms = 4 * P * m.hidden * (2 * m.layers + 1)
    flops = 2 * matrix * P + attn + norms
    assert est.flops == pytest.approx(flops, rel=1e-12)
    assert est.time == pytest.approx(flops / 989.4e12, rel=1e-9)
    # on the real H100 the big matrix multiplies are compute-bound
    real = prefill_compute(m, H100, batch=1, prompt=P)
    assert real.compute_bound_time > 0.9 * real.time
    assert real.time == pytest.approx(flops / 989.4e12, rel=0.05)


def test_pipeline_stages_sum():
    m = model("llama3-70b")
    one = decode_compute(m, H100, batch=2, context=512, tp=4)
    four = decode_compute(m, H100, batch=2, context=512, tp=4, pp=4)
    assert len(four.stage_times) == 4
    assert four.time == pytest.approx(one.time, rel=1e-9)  # same work, split in stages
    assert four.stage_time == pytest.approx(one.time / 4, rel=0.1)


def test_capacity_enforced():
    with pytest.raises(CapacityError, match="llama3-70b on h100"):
        decode_compute("llama3-70b", "h100", batch=1, context=128)
    est = decode_compute("llama3-70b", "h100", batch=1, context=128, require_fit=False)
    assert not est.capacity.fits


def test_train_step_is_6nd():
    m = model("llama3-8b")
    est = train_compute(m, "h100", tokens=1_000_000, chips=8, efficiency=0.5)
    n = m.total_params() - m.embedding_params() - (2 * m.layers + 1) * m.hidden
    assert est.flops == 6 * n * 1_000_000
    assert est.time == pytest.approx(est.flops / (8 * 989.4e12 * 0.5))
    moe = train_compute("deepseek-v3", "h100", tokens=1)
    assert moe.params < 0.06 * model("deepseek-v3").total_params()  # active only
    with pytest.raises(ConfigError, match="efficiency"):
        train_compute(m, "h100", tokens=1, efficiency=0)


def test_decode_collectives_sizes():
    needs = {n.name: n for n in decode_collectives("mixtral-8x7b", batch=16, tp=2, ep=2, pp=2)}
    local = 16 / 2 * 4096 * 2
    assert needs["tp_layer_outputs"].nbytes == local and needs["tp_layer_outputs"].count == 32
    assert needs["moe_dispatch"].nbytes == local * 2 * (2 - 1) / 2
    assert needs["moe_dispatch"].count == 16
    assert needs["pp_activations"].nbytes == local / 2
    last = decode_collectives("mixtral-8x7b", batch=16, tp=2, ep=2, pp=2, stage=1)
    assert "pp_activations" not in {n.name for n in last}
    assert decode_collectives("llama3-8b", batch=1) == []
