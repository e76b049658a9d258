"""Model presets: parameter counts against published totals, KV-cache sizes, FLOPs."""

from __future__ import annotations

import pytest

from netsim.core.errors import ConfigError
from workloads.models import MODELS, TransformerModel, model, model_names

# Published totals (sources in workloads/model_presets.py). Our counts include every
# matrix, norm and both embedding tables; published figures are rounded, and "active"
# conventions differ by whether embeddings count, hence 2 % (DeepSeek-V3 active: 37.55B
# counted vs 37B published).
TOL = 0.02


@pytest.mark.parametrize(
    ("name", "total"),
    [
        ("llama3-8b", 8.03e9),
        ("llama3-70b", 70.6e9),
        ("llama3-405b", 405e9),
        ("mixtral-8x7b", 46.7e9),
        ("deepseek-v3", 671e9),
    ],
)
def test_total_params_match_published(name, total):
    assert model(name).total_params() == pytest.approx(total, rel=TOL)
    assert model(name).published["total"] == total


@pytest.mark.parametrize(("name", "active"), [("mixtral-8x7b", 12.9e9), ("deepseek-v3", 37e9)])
def test_active_params_match_published(name, active):
    assert model(name).active_params() == pytest.approx(active, rel=TOL)


def test_dense_active_equals_total():
    for name in ("llama3-8b", "llama3-70b", "llama3-405b"):
        m = model(name)
        assert m.active_params() == m.total_params()


def test_llama3_8b_exact_closed_form():
    # 32 x (attention 4096*(32+2*8)*128 + 32*128*4096, SwiGLU 3*4096*14336, 2 norms) +
    # 2 x 128256*4096 embeddings + final norm
    layer = 4096 * 48 * 128 + 4096 * 4096 + 3 * 4096 * 14336 + 2 * 4096
    assert model("llama3-8b").total_params() == 32 * layer + 2 * 128256 * 4096 + 4096


def test_kv_bytes_per_token():
    # GQA: 2 (K,V) x kv_heads x head_dim x layers x 2 bytes
    assert model("llama3-8b").kv_bytes_per_token() == 2 * 8 * 128 * 32 * 2
    assert model("llama3-70b").kv_bytes_per_token() == 2 * 8 * 128 * 80 * 2
    # MLA (DeepSeek-V2 Table 1): (kv_lora_rank 512 + rope 64) x 61 layers x 2 bytes
    assert model("deepseek-v3").kv_bytes_per_token() == (512 + 64) * 61 * 2


def test_mla_cache_is_much_smaller_than_mha_would_be():
    m = model("deepseek-v3")
    mha = 2 * m.heads * (m.head_dim + m.qk_rope_dim) * m.layers * m.kv_dtype_bytes
    assert mha / m.kv_bytes_per_token() > 50


def test_weight_bytes_follow_dtype():
    m = model("llama3-70b")
    assert m.weight_bytes() == pytest.approx(141.1e9, rel=1e-3)  # ~141 GB in bf16
    assert m.replace(weight_dtype_bytes=1).weight_bytes() == m.total_params()
    assert model("deepseek-v3").weight_bytes() == model("deepseek-v3").total_params()  # FP8


def test_flops_per_token_is_twice_matrix_params_plus_attention():
    m = model("llama3-8b")
    matrix = m.total_params() - m.embedding_params() - (2 * 32 + 1) * 4096  # minus norms
    assert m.matrix_params() == matrix
    assert m.flops_per_token(0) == 2 * matrix
    assert m.flops_per_token(1000) - m.flops_per_token(0) == 32 * 4 * 32 * 128 * 1000


def test_moe_layer_split():
    m = model("deepseek-v3")
    assert (m.dense_layers, m.moe_layers) == (3, 58)
    assert not m.is_moe_layer(2) and m.is_moe_layer(3)
    assert model("mixtral-8x7b").moe_layers == 32


def test_unknown_model_lists_names():
    with pytest.raises(ConfigError, match=r"model: must be one of deepseek-v3, .*, got 'gpt5'"):
        model("gpt5")
    assert model_names() == sorted(MODELS)


def test_validation():
    base = {
        "name": "t",
        "layers": 2,
        "hidden": 64,
        "heads": 4,
        "kv_heads": 2,
        "head_dim": 16,
        "ffn": 128,
        "vocab": 100,
    }
    TransformerModel(**base)
    with pytest.raises(ConfigError, match="kv_heads: must divide heads"):
        TransformerModel(**{**base, "kv_heads": 3})
    with pytest.raises(ConfigError, match="experts_per_token: must be in"):
        TransformerModel(**base, experts=4, experts_per_token=5, expert_ffn=8)
    with pytest.raises(ConfigError, match="experts: experts_per_token"):
        TransformerModel(**base, experts_per_token=2)
    with pytest.raises(ConfigError, match="layers: must be an integer >= 1, got 0"):
        TransformerModel(**{**base, "layers": 0})
    with pytest.raises(ConfigError, match="compute_dtype"):
        TransformerModel(**base, compute_dtype="fp4")
    with pytest.raises(ConfigError, match="replace: unknown field"):
        model("llama3-8b").replace(hiden=1)
