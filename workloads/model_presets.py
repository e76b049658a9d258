"""Transformer model presets as plain data, with sources.

:mod:`workloads.models` builds a :class:`~workloads.models.TransformerModel` from each entry
of :data:`MODEL_DATA`. Shape values are copied from each model's Hugging Face
``config.json`` (URL in ``sources["config"]``); data-type sizes are the released checkpoint
formats. Published parameter totals live in ``published`` (used by the tests). MoE models
may set ``dispatch_dtype`` and ``combine_dtype`` (wire formats of the expert-parallel
all-to-alls, :mod:`workloads.moe_bytes`); without them both move the activation dtype.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MODEL_DATA"]

_LLAMA3_CARD = (
    "Meta Llama 3 / 3.1 model cards and 'The Llama 3 Herd of Models' (arXiv:2407.21783), "
    "Table 3: GQA with 8 KV heads, SwiGLU FFN, vocabulary 128,256, untied embeddings."
)

MODEL_DATA: dict[str, dict[str, Any]] = {
    "llama3-8b": {
        "description": "Meta Llama 3 8B (dense, GQA)",
        "shape": {
            "layers": 32,
            "hidden": 4096,
            "heads": 32,
            "kv_heads": 8,
            "head_dim": 128,
            "ffn": 14336,
            "vocab": 128256,
        },
        "weight_dtype_bytes": 2,
        "kv_dtype_bytes": 2,
        "act_dtype_bytes": 2,
        "compute_dtype": "bf16",
        "published": {"total": 8.03e9},
        "sources": {
            "config": "https://huggingface.co/meta-llama/Meta-Llama-3-8B/blob/main/config.json",
            "dtype": "released in bfloat16 (config.json torch_dtype).",
            "published.total": "Hugging Face model page: 8.03B parameters. " + _LLAMA3_CARD,
        },
    },
    "llama3-70b": {
        "description": "Meta Llama 3 70B (dense, GQA)",
        "shape": {
            "layers": 80,
            "hidden": 8192,
            "heads": 64,
            "kv_heads": 8,
            "head_dim": 128,
            "ffn": 28672,
            "vocab": 128256,
        },
        "weight_dtype_bytes": 2,
        "kv_dtype_bytes": 2,
        "act_dtype_bytes": 2,
        "compute_dtype": "bf16",
        "published": {"total": 70.6e9},
        "sources": {
            "config": "https://huggingface.co/meta-llama/Meta-Llama-3-70B/blob/main/config.json",
            "dtype": "released in bfloat16 (config.json torch_dtype).",
            "published.total": "Hugging Face model page: 70.6B parameters. " + _LLAMA3_CARD,
        },
    },
    "llama3-405b": {
        "description": "Meta Llama 3.1 405B (dense, GQA)",
        "shape": {
            "layers": 126,
            "hidden": 16384,
            "heads": 128,
            "kv_heads": 8,
            "head_dim": 128,
            "ffn": 53248,
            "vocab": 128256,
        },
        "weight_dtype_bytes": 2,
        "kv_dtype_bytes": 2,
        "act_dtype_bytes": 2,
        "compute_dtype": "bf16",
        "published": {"total": 405e9},
        "sources": {
            "config": "https://huggingface.co/meta-llama/Llama-3.1-405B/blob/main/config.json",
            "dtype": "released in bfloat16 (an FP8 variant also exists).",
            "published.total": "'The Llama 3 Herd of Models' (arXiv:2407.21783): 405B parameters. "
            + _LLAMA3_CARD,
        },
    },
    "mixtral-8x7b": {
        "description": "Mistral AI Mixtral 8x7B (MoE, 8 experts, top-2, GQA)",
        "shape": {
            "layers": 32,
            "hidden": 4096,
            "heads": 32,
            "kv_heads": 8,
            "head_dim": 128,
            "ffn": 14336,
            "vocab": 32000,
            "experts": 8,
            "experts_per_token": 2,
            "expert_ffn": 14336,
        },
        "weight_dtype_bytes": 2,
        "kv_dtype_bytes": 2,
        "act_dtype_bytes": 2,
        "compute_dtype": "bf16",
        "published": {"total": 46.7e9, "active": 12.9e9},
        "sources": {
            "config": "https://huggingface.co/mistralai/Mixtral-8x7B-v0.1/blob/main/config.json",
            "dtype": "released in bfloat16.",
            "published.total": (
                "Mistral AI, 'Mixtral of experts' (blog, Dec 2023) and Jiang et al. "
                "arXiv:2401.04088: 46.7B total, 12.9B active parameters per token."
            ),
        },
    },
    "deepseek-v3": {
        "description": "DeepSeek-V3 (MoE 256 routed + 1 shared, top-8, MLA attention)",
        "shape": {
            "layers": 61,
            "hidden": 7168,
            "heads": 128,
            "kv_heads": 128,
            "head_dim": 128,
            "ffn": 18432,
            "vocab": 129280,
            "experts": 256,
            "experts_per_token": 8,
            "shared_experts": 1,
            "expert_ffn": 2048,
            "first_dense_layers": 3,
            "attention": "mla",
            "q_lora_rank": 1536,
            "kv_lora_rank": 512,
            "qk_rope_dim": 64,
            "v_head_dim": 128,
        },
        "weight_dtype_bytes": 1,
        "kv_dtype_bytes": 2,
        "act_dtype_bytes": 2,
        "compute_dtype": "fp8",
        "dispatch_dtype": "fp8/128",
        "combine_dtype": "bf16",
        "published": {"total": 671e9, "active": 37e9},
        "sources": {
            "config": (
                "https://huggingface.co/deepseek-ai/DeepSeek-V3/blob/main/config.json "
                "(head_dim = qk_nope_head_dim 128; first_k_dense_replace 3; "
                "moe_intermediate_size 2048; the 1 multi-token-prediction layer is excluded)."
            ),
            "dtype": (
                "weights released in FP8 e4m3 with 128x128 block scales (config.json "
                "quantization_config; scales not counted); KV cache and activations bf16."
            ),
            "moe_wire": (
                "dispatch in FP8 with one FP32 scale per 128 channels (7168 + 56 x 4 = 7392 B per "
                "token), combine in BF16 (14336 B): DeepSeek-V3 Technical Report "
                "(arXiv:2412.19437) Sec. 3.3.2 (1x128 tile-wise activation scales) and 3.3.3 "
                "('we quantize the activation before MoE up-projections into FP8 and then apply "
                "dispatch components'; combine retained in BF16); DeepEP README 'FP8 dispatching "
                "and BF16 combining' (github.com/deepseek-ai/DeepEP, docs/legacy.md)."
            ),
            "kv_cache": (
                "MLA caches the compressed latent (kv_lora_rank 512) plus the decoupled RoPE key "
                "(64) per token per layer: (512 + 64) x layers elements (DeepSeek-V2, "
                "arXiv:2405.04434, Sec. 2.1 and Table 1; DeepSeek-V3, arXiv:2412.19437)."
            ),
            "published.total": (
                "DeepSeek-V3 Technical Report (arXiv:2412.19437): 671B total parameters, 37B "
                "activated per token (the Hugging Face checkpoint's 685B adds the 14B MTP module)."
            ),
        },
    },
}
