"""Small models shared by the decode and MoE tests (test_decode_studies, test_moe_*.py)."""

from __future__ import annotations

from workloads.models import TransformerModel

__all__ = ["TINY_MOE"]

#: A two-layer MoE model, 8 experts, top-2: small enough for every fabric of the tests.
TINY_MOE = TransformerModel(
    name="tinymoe",
    layers=2,
    hidden=1024,
    heads=8,
    kv_heads=8,
    head_dim=128,
    ffn=2048,
    vocab=256,
    experts=8,
    experts_per_token=2,
    expert_ffn=512,
)
