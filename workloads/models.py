"""Decoder-only transformer descriptions: shapes, parameter counts, weight and KV bytes.

A :class:`TransformerModel` holds the shape of a model (as in its Hugging Face
``config.json``) and the byte sizes of its weights, KV cache and activations. It counts
parameters (total and active per token), weight bytes and KV-cache bytes per token, and
forward FLOPs per token. :func:`model` returns a preset (data in
:mod:`workloads.model_presets`).

Conventions
-----------
* Attention ``"gqa"`` (grouped-query; multi-head attention is ``kv_heads == heads``): Q, K, V
  and output projections without biases, ``head_dim`` per head.
* Attention ``"mla"`` (DeepSeek multi-head latent attention): queries through a low-rank
  ``q_lora_rank`` bottleneck, keys/values through a shared ``kv_lora_rank`` latent plus a
  decoupled RoPE key of ``qk_rope_dim``; ``head_dim`` is the no-RoPE query/key head size and
  ``v_head_dim`` the value head size. The KV cache holds only the latent and the RoPE key.
* MLP: gated (SwiGLU, three matrices) unless ``gated_mlp=False`` (two matrices).
* MoE: layers ``first_dense_layers..layers-1`` replace the MLP by ``experts`` routed experts
  of width ``expert_ffn`` (``experts_per_token`` chosen per token) plus ``shared_experts``
  always-active experts, and a linear router.
* Parameters counted: every matrix, RMSNorm weights, input embedding and output head (once
  if ``tied_embeddings``). "Active" counts both embedding and head, as the published Mixtral
  and DeepSeek figures do.

Examples
--------
>>> m = model("llama3-8b")
>>> round(m.total_params() / 1e9, 2)
8.03
>>> m.kv_bytes_per_token()   # 2 (K,V) x 8 heads x 128 x 32 layers x 2 bytes
131072
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from netsim.core.errors import ConfigError
from netsim.core.validate import replace_fields, require_int
from workloads.chips import DTYPES
from workloads.model_presets import MODEL_DATA
from workloads.moe_bytes import parse_wire_dtype

__all__ = ["MODELS", "WEIGHT_DTYPES", "TransformerModel", "model", "model_names", "with_dtype"]

_ATTENTION = ("gqa", "mla")


@dataclass(frozen=True)
class TransformerModel:
    """Shape and data types of a decoder-only transformer.

    Attributes
    ----------
    name : str
        Preset name or user label.
    layers, hidden, heads, kv_heads, head_dim, ffn, vocab : int
        Transformer blocks, model width, query heads, key/value heads, head size, dense
        MLP intermediate size, vocabulary size.
    weight_dtype_bytes, kv_dtype_bytes, act_dtype_bytes : float
        Bytes per weight, per KV-cache element and per activation element.
    compute_dtype : str
        Data type the matrix units run in (selects the chip's peak, e.g. ``"bf16"``).
    dispatch_dtype, combine_dtype : str
        Wire formats of MoE dispatch and combine (:func:`workloads.moe_bytes.parse_wire_dtype`,
        e.g. ``"fp8/128"``: FP8 with an FP32 scale per 128 channels); ``""`` means the
        activation dtype (``act_dtype_bytes`` per channel).
    tied_embeddings, gated_mlp : bool
        Output head shares the embedding; MLP has a gate matrix (SwiGLU).
    experts, experts_per_token, shared_experts, expert_ffn, first_dense_layers : int
        Mixture-of-experts shape; ``experts == 0`` means a dense model.
    attention : str
        ``"gqa"`` or ``"mla"``.
    q_lora_rank, kv_lora_rank, qk_rope_dim, v_head_dim : int
        MLA shape (``q_lora_rank == 0``: full-rank query projection).
    sources : Mapping[str, str]
        Field group -> citation.
    published : Mapping[str, float]
        Published parameter totals (``total``, ``active``) for checks.
    description : str
        Human-readable name.
    """

    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    vocab: int
    weight_dtype_bytes: float = 2
    kv_dtype_bytes: float = 2
    act_dtype_bytes: float = 2
    compute_dtype: str = "bf16"
    dispatch_dtype: str = ""
    combine_dtype: str = ""
    tied_embeddings: bool = False
    gated_mlp: bool = True
    experts: int = 0
    experts_per_token: int = 0
    shared_experts: int = 0
    expert_ffn: int = 0
    first_dense_layers: int = 0
    attention: str = "gqa"
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_rope_dim: int = 0
    v_head_dim: int = 0
    sources: Mapping[str, str] = field(default_factory=dict)
    published: Mapping[str, float] = field(default_factory=dict)
    description: str = ""

    __hash__ = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        for name in ("layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab"):
            object.__setattr__(self, name, require_int(name, getattr(self, name), min=1))
        for name in (
            "experts",
            "experts_per_token",
            "shared_experts",
            "expert_ffn",
            "first_dense_layers",
            "q_lora_rank",
            "kv_lora_rank",
            "qk_rope_dim",
            "v_head_dim",
        ):
            object.__setattr__(self, name, require_int(name, getattr(self, name), min=0))
        for name in ("weight_dtype_bytes", "kv_dtype_bytes", "act_dtype_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigError(f"{name}: must be a number of bytes > 0, got {value!r}")
        if self.compute_dtype not in DTYPES:
            raise ConfigError(
                f"compute_dtype: must be one of {', '.join(DTYPES)}, got {self.compute_dtype!r}"
            )
        for name in ("dispatch_dtype", "combine_dtype"):
            value = getattr(self, name)
            if value != "":
                object.__setattr__(self, name, str(parse_wire_dtype(value, name=name)))
        if self.attention not in _ATTENTION:
            raise ConfigError(f"attention: must be one of gqa, mla, got {self.attention!r}")
        if self.attention == "gqa" and self.heads % self.kv_heads:
            raise ConfigError(
                f"kv_heads: must divide heads ({self.heads}) for gqa, got {self.kv_heads}"
            )
        if self.attention == "mla" and (self.kv_lora_rank < 1 or self.v_head_dim < 1):
            raise ConfigError(
                f"kv_lora_rank, v_head_dim: must be >= 1 for mla, got "
                f"{self.kv_lora_rank}, {self.v_head_dim}"
            )
        if self.experts:
            if not 1 <= self.experts_per_token <= self.experts:
                raise ConfigError(
                    f"experts_per_token: must be in [1, experts={self.experts}], "
                    f"got {self.experts_per_token}"
                )
            if self.expert_ffn < 1:
                raise ConfigError(
                    f"expert_ffn: must be >= 1 for an MoE model, got {self.expert_ffn}"
                )
            if self.first_dense_layers >= self.layers:
                raise ConfigError(
                    f"first_dense_layers: must be < layers ({self.layers}), "
                    f"got {self.first_dense_layers}"
                )
        elif self.experts_per_token or self.shared_experts or self.first_dense_layers:
            raise ConfigError(
                "experts: experts_per_token, shared_experts and first_dense_layers need "
                f"experts >= 1, got experts={self.experts}"
            )
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))
        object.__setattr__(self, "published", MappingProxyType(dict(self.published)))

    # ------------------------------------------------------------------ structure
    @property
    def is_moe(self) -> bool:
        """Whether the model has mixture-of-experts layers."""
        return self.experts > 0

    @property
    def moe_layers(self) -> int:
        """Number of MoE layers."""
        return self.layers - self.first_dense_layers if self.is_moe else 0

    @property
    def dense_layers(self) -> int:
        """Number of layers with a dense MLP."""
        return self.layers - self.moe_layers

    def is_moe_layer(self, index: int) -> bool:
        """Whether layer ``index`` (0-based) is an MoE layer."""
        return self.is_moe and index >= self.first_dense_layers

    @property
    def mlp_matrices(self) -> int:
        """Matrices per MLP or expert: 3 when gated (SwiGLU), else 2."""
        return 3 if self.gated_mlp else 2

    # ------------------------------------------------------------------ parameters
    def q_dim(self) -> int:
        """Width of the query projection output (all heads)."""
        if self.attention == "mla":
            return self.heads * (self.head_dim + self.qk_rope_dim)
        return self.heads * self.head_dim

    def attention_params(self) -> int:
        """Matrix parameters of one attention block."""
        h = self.hidden
        if self.attention == "gqa":
            return (
                h * (self.heads + 2 * self.kv_heads) * self.head_dim
                + self.heads * self.head_dim * h
            )
        q = (
            h * self.q_lora_rank + self.q_lora_rank * self.q_dim()
            if self.q_lora_rank
            else h * self.q_dim()
        )
        kv_a = h * (self.kv_lora_rank + self.qk_rope_dim)
        kv_b = self.kv_lora_rank * self.heads * (self.head_dim + self.v_head_dim)
        out = self.heads * self.v_head_dim * h
        return q + kv_a + kv_b + out

    def norm_params(self) -> int:
        """RMSNorm weights of one layer (two per block, plus MLA's latent norms)."""
        extra = self.q_lora_rank + self.kv_lora_rank if self.attention == "mla" else 0
        return 2 * self.hidden + extra

    def mlp_params(self) -> int:
        """Parameters of one dense MLP."""
        return self.mlp_matrices * self.hidden * self.ffn

    def expert_params(self) -> int:
        """Parameters of one expert (routed or shared)."""
        return self.mlp_matrices * self.hidden * self.expert_ffn

    def router_params(self) -> int:
        """Parameters of one MoE router."""
        return self.hidden * self.experts

    def dense_layer_params(self) -> int:
        """Parameters of one layer with a dense MLP."""
        return self.attention_params() + self.norm_params() + self.mlp_params()

    def moe_layer_params(self, *, active: bool = False) -> int:
        """Parameters of one MoE layer (only those a token touches if ``active``)."""
        n = (self.experts_per_token if active else self.experts) + self.shared_experts
        return (
            self.attention_params()
            + self.norm_params()
            + self.router_params()
            + n * self.expert_params()
        )

    def embedding_params(self) -> int:
        """Input embedding parameters."""
        return self.vocab * self.hidden

    def head_params(self) -> int:
        """Output head (LM head) parameters; 0 when tied to the embedding."""
        return 0 if self.tied_embeddings else self.vocab * self.hidden

    def total_params(self) -> int:
        """All parameters."""
        return (
            self.dense_layers * self.dense_layer_params()
            + self.moe_layers * self.moe_layer_params()
            + self.embedding_params()
            + self.head_params()
            + self.hidden
        )

    def active_params(self) -> int:
        """Parameters touched per token (routed experts: ``experts_per_token`` of them)."""
        return (
            self.dense_layers * self.dense_layer_params()
            + self.moe_layers * self.moe_layer_params(active=True)
            + self.embedding_params()
            + self.head_params()
            + self.hidden
        )

    def matrix_params(self) -> int:
        """Active parameters that take part in matrix multiplies per token: active
        parameters minus the embedding table (a lookup) and the norm weights."""
        norms = self.layers * self.norm_params() + self.hidden
        return self.active_params() - self.embedding_params() - norms

    def weight_bytes(self) -> float:
        """Bytes of all weights at ``weight_dtype_bytes``."""
        return self.total_params() * self.weight_dtype_bytes

    # ------------------------------------------------------------------ KV cache
    def kv_elements_per_token_layer(self) -> int:
        """KV-cache elements one token adds to one layer.

        GQA: ``2 * kv_heads * head_dim``. MLA: ``kv_lora_rank + qk_rope_dim`` (the latent
        and the decoupled RoPE key; DeepSeek-V2, arXiv:2405.04434, Table 1).
        """
        if self.attention == "mla":
            return self.kv_lora_rank + self.qk_rope_dim
        return 2 * self.kv_heads * self.head_dim

    def kv_bytes_per_token(self) -> float:
        """KV-cache bytes per token over all layers."""
        return self.kv_elements_per_token_layer() * self.layers * self.kv_dtype_bytes

    # ------------------------------------------------------------------ MoE wire bytes
    def dispatch_bytes_per_token(self) -> float:
        """Bytes one token's hidden state takes in the MoE dispatch (per destination).

        ``dispatch_dtype`` if set, else ``hidden * act_dtype_bytes``.
        """
        return self._wire_bytes(self.dispatch_dtype)

    def combine_bytes_per_token(self) -> float:
        """Bytes one expert output (or partial sum) takes in the MoE combine."""
        return self._wire_bytes(self.combine_dtype)

    def _wire_bytes(self, spec: str) -> float:
        if not spec:
            return self.hidden * self.act_dtype_bytes
        return parse_wire_dtype(spec).token_bytes(self.hidden)

    # ------------------------------------------------------------------ FLOPs
    def attention_flops_per_token_layer(self, context: int) -> float:
        """Score and value FLOPs of one query token attending to ``context`` keys in one layer.

        GQA: ``4 * heads * head_dim * context``. MLA (decode with the up-projections
        absorbed, attention in latent space): ``2 * heads * (kv_lora_rank + qk_rope_dim) *
        context`` for scores plus ``2 * heads * kv_lora_rank * context`` for values.
        """
        if self.attention == "mla":
            return 2.0 * self.heads * (2 * self.kv_lora_rank + self.qk_rope_dim) * context
        return 4.0 * self.heads * self.head_dim * context

    def flops_per_token(self, context: int = 0) -> float:
        """Forward FLOPs for one token at position ``context``: ``2 *``
        :meth:`matrix_params` plus attention over ``context`` keys (norms not counted)."""
        return 2.0 * self.matrix_params() + self.layers * self.attention_flops_per_token_layer(
            context
        )

    # ------------------------------------------------------------------ variants
    def replace(self, **overrides: Any) -> TransformerModel:
        """Return a validated copy with ``overrides`` (e.g. ``weight_dtype_bytes=1``)."""
        return replace_fields(self, overrides)

    def summary(self) -> dict[str, Any]:
        """Headline numbers: parameters, weight bytes, KV bytes per token."""
        return {
            "name": self.name,
            "total_params": self.total_params(),
            "active_params": self.active_params(),
            "weight_bytes": self.weight_bytes(),
            "kv_bytes_per_token": self.kv_bytes_per_token(),
            "attention": self.attention,
            "moe": self.is_moe,
        }


def _build(name: str, data: Mapping[str, Any]) -> TransformerModel:
    """The preset ``name``: its ``shape`` (the config.json values) and its other entries
    are :class:`TransformerModel` fields."""
    rest = {k: v for k, v in data.items() if k != "shape"}
    return TransformerModel(name=name, **data["shape"], **rest)


#: Preset models by name, built from :data:`workloads.model_presets.MODEL_DATA`.
MODELS: Mapping[str, TransformerModel] = MappingProxyType(
    {n: _build(n, d) for n, d in MODEL_DATA.items()}
)


def model_names() -> list[str]:
    """Names of the preset models, sorted."""
    return sorted(MODELS)


def model(name: str | TransformerModel) -> TransformerModel:
    """Return the preset model ``name`` (a :class:`TransformerModel` passes through).

    Raises
    ------
    ConfigError
        If the name is unknown; the message lists the known names.
    """
    if isinstance(name, TransformerModel):
        return name
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"model: must be one of {', '.join(model_names())}, got {name!r}"
        ) from None


#: ``--dtype`` choices: (weight bytes, activation bytes, compute dtype). FP4 is 4-bit
#: weights with FP8 activations and compute (no chip preset lists an FP4 peak).
WEIGHT_DTYPES: Mapping[str, tuple[float, float, str]] = MappingProxyType(
    {
        "fp8": (1.0, 1.0, "fp8"),
        "bf16": (2.0, 2.0, "bf16"),
        "fp16": (2.0, 2.0, "fp16"),
        "fp4": (0.5, 1.0, "fp8"),
    }
)


def with_dtype(m: TransformerModel, dtype: str) -> TransformerModel:
    """``m`` with weights (and activations, and the compute) in ``dtype``
    (:data:`WEIGHT_DTYPES`); the KV cache and MoE wire formats stay the model's.

    Examples
    --------
    >>> m = with_dtype(model("llama3-8b"), "fp8")
    >>> (m.weight_dtype_bytes, m.act_dtype_bytes, m.compute_dtype)
    (1.0, 1.0, 'fp8')
    """
    if dtype not in WEIGHT_DTYPES:
        raise ConfigError(f"dtype: must be one of {', '.join(WEIGHT_DTYPES)}, got {dtype!r}")
    weight, act, compute = WEIGHT_DTYPES[dtype]
    return m.replace(weight_dtype_bytes=weight, act_dtype_bytes=act, compute_dtype=compute)
