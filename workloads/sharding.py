"""Parallelism layouts, rank groups, and the per-chip memory capacity check.

Rank order
----------
:class:`Parallelism` maps ``(tp_i, dp_i, pp_i)`` to a chip rank the way Megatron-LM does by
default (``order="tp-cp-ep-dp-pp"``, first listed = fastest varying, ``cp = 1``)::

    rank = (pp_i * dp + dp_i) * tp + tp_i

Tensor parallel is innermost, so a TP group is ``tp`` consecutive ranks: topologies number
chips so that consecutive ranks share a scale-up domain (an NVLink switch, a torus row),
which is where TP's per-layer all-reduces belong. Expert parallelism is carved out of data
parallelism (``ep`` divides ``dp``): an EP group is ``ep`` consecutive DP indices, i.e.
ranks at stride ``tp``, so a model instance of ``tp * ep`` chips is also contiguous.
Pipeline stages are outermost (slowest links carry the least traffic).

Model instance and batch
------------------------
A *model instance* is the ``tp * ep * pp`` chips that serve one batch (``dp / ep`` instances
run side by side). Inside it, attention is tensor-parallel over ``tp`` and data-parallel
over ``ep`` (each EP rank attends for ``batch / ep`` sequences), while the routed experts
are split over the ``ep`` ranks and each expert over ``tp`` (Megatron-Core MoE with expert
tensor parallel size ``tp``).

Megatron tensor-parallel split
------------------------------
Q/K/V and MLP gate/up matrices are column-parallel (output features split over ``tp``:
``heads / tp`` query heads per chip), the attention output and MLP down matrices are
row-parallel (input features split); the embedding and LM head are vocabulary-parallel.
Norms and the MoE router are replicated. With GQA, K/V heads are split when ``kv_heads``
is a multiple of ``tp``; when ``kv_heads < tp`` each chip keeps one K/V head, replicated
``tp / kv_heads`` times (weights and KV cache). MLA's latent KV and its down-projections are
shared by all heads, so they are replicated on every TP rank.

Memory placement policy
-----------------------
Per chip, three items need memory: the KV cache, the activation working set (both written
every step) and the weights (read-only during inference). They are placed in that order,
each filling the tiers it may use **fastest tier first** and spilling into the next:

* KV cache and activations may use ``sram``, ``hbm`` and ``ddr`` but not ``hbf`` (flash
  has limited write endurance and slow writes; Ma & Patterson 2026 propose HBF for
  read-mostly data such as weights);
* weights may use every tier.

Whatever fits nowhere is *overflow*; the report then says ``fits = False``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from netsim.core.errors import CapacityError, ConfigError
from netsim.core.validate import require_float, require_int
from workloads.chips import Chip
from workloads.chips import chip as get_chip
from workloads.models import TransformerModel
from workloads.models import model as get_model

__all__ = [
    "CapacityReport",
    "Parallelism",
    "check_capacity",
    "kv_elems_per_token_layer",
    "kv_heads_per_chip",
    "per_chip_bytes",
    "plan_memory",
    "require_fit",
    "stage_layers",
    "validate_sharding",
]

_WRITABLE = ("sram", "hbm", "ddr")


def _gb(nbytes: float) -> str:
    """Bytes with a decimal prefix and four significant digits (``'141.1 GB'``,
    ``'619.5 kB'``): memory sizes as the datasheets give them."""
    for prefix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(nbytes) >= scale:
            return f"{nbytes / scale:.4g} {prefix}B"
    return f"{nbytes:.4g} B"


_ITEM_ORDER = ("kv_cache", "activations", "weights")


@dataclass(frozen=True, slots=True)
class Parallelism:
    """Degrees of tensor (``tp``), pipeline (``pp``), expert (``ep``) and data (``dp``)
    parallelism; ``world_size = tp * pp * dp`` and ``ep`` must divide ``dp``.

    Examples
    --------
    >>> p = Parallelism(tp=2, pp=2, dp=2)
    >>> p.rank(tp_i=1, dp_i=1, pp_i=1)
    7
    >>> p.tp_groups()
    [[0, 1], [2, 3], [4, 5], [6, 7]]
    >>> p.pp_groups()
    [[0, 4], [1, 5], [2, 6], [3, 7]]
    """

    tp: int = 1
    pp: int = 1
    ep: int = 1
    dp: int = 1

    def __post_init__(self) -> None:
        for name in ("tp", "pp", "ep", "dp"):
            object.__setattr__(self, name, require_int(name, getattr(self, name), min=1))
        if self.dp % self.ep:
            raise ConfigError(f"ep: must divide dp ({self.dp}), got {self.ep}")

    @property
    def world_size(self) -> int:
        """Number of chips: ``tp * pp * dp``."""
        return self.tp * self.pp * self.dp

    @property
    def instance_size(self) -> int:
        """Chips of one model instance: ``tp * ep * pp``."""
        return self.tp * self.ep * self.pp

    def rank(self, *, tp_i: int = 0, dp_i: int = 0, pp_i: int = 0) -> int:
        """Rank of the chip at coordinates ``(tp_i, dp_i, pp_i)``."""
        require_int("tp_i", tp_i, min=0, max=self.tp - 1)
        require_int("dp_i", dp_i, min=0, max=self.dp - 1)
        require_int("pp_i", pp_i, min=0, max=self.pp - 1)
        return (pp_i * self.dp + dp_i) * self.tp + tp_i

    def coords(self, rank: int) -> dict[str, int]:
        """Coordinates ``tp_i, dp_i, pp_i, ep_i`` of ``rank`` (``ep_i = dp_i % ep``)."""
        require_int("rank", rank, min=0, max=self.world_size - 1)
        tp_i = rank % self.tp
        dp_i = (rank // self.tp) % self.dp
        pp_i = rank // (self.tp * self.dp)
        return {"tp_i": tp_i, "dp_i": dp_i, "pp_i": pp_i, "ep_i": dp_i % self.ep}

    def grid(self) -> np.ndarray:
        """Every rank at its coordinates: an array of shape ``(pp, dp / ep, ep, tp)``
        indexed ``[pp_i, dp_i // ep, dp_i % ep, tp_i]``; every group below is a
        permutation of its axes cut into rows."""
        return np.arange(self.world_size).reshape(self.pp, self.dp // self.ep, self.ep, self.tp)

    def _rows(self, order: tuple[int, ...], width: int) -> list[list[int]]:
        """The grid with its axes in ``order`` (outermost first), cut into rows of ``width``."""
        return self.grid().transpose(order).reshape(-1, width).tolist()

    def tp_groups(self) -> list[list[int]]:
        """Tensor-parallel groups (``tp`` consecutive ranks each)."""
        return self._rows((0, 1, 2, 3), self.tp)

    def pp_groups(self) -> list[list[int]]:
        """Pipelines: for each ``(dp_i, tp_i)``, its ranks in stage order."""
        return self._rows((1, 2, 3, 0), self.pp)

    def dp_groups(self) -> list[list[int]]:
        """Data-parallel groups: for each ``(pp_i, tp_i)``, ranks over ``dp_i``."""
        return self._rows((0, 3, 1, 2), self.dp)

    def ep_groups(self) -> list[list[int]]:
        """Expert-parallel groups: ``ep`` consecutive DP indices with the same ``tp_i, pp_i``."""
        return self._rows((0, 1, 3, 2), self.ep)

    def stage_ranks(self, stage: int) -> list[int]:
        """All ranks of pipeline stage ``stage`` (a contiguous block)."""
        require_int("stage", stage, min=0, max=self.pp - 1)
        start = stage * self.dp * self.tp
        return list(range(start, start + self.dp * self.tp))

    def instance_groups(self) -> list[list[int]]:
        """Model instances: the ``tp * ep * pp`` ranks serving one batch, in rank order."""
        return self._rows((1, 0, 2, 3), self.instance_size)


def stage_layers(layers: int, pp: int) -> list[range]:
    """Split ``layers`` into ``pp`` contiguous stages as evenly as possible (the first
    ``layers % pp`` stages get one more layer).

    Examples
    --------
    >>> stage_layers(10, 3)
    [range(0, 4), range(4, 7), range(7, 10)]
    """
    require_int("pp", pp, min=1, max=layers)
    base, extra = divmod(layers, pp)
    out, start = [], 0
    for s in range(pp):
        n = base + (1 if s < extra else 0)
        out.append(range(start, start + n))
        start += n
    return out


def validate_sharding(m: TransformerModel, *, tp: int, pp: int, ep: int, batch: int) -> None:
    """Raise ConfigError unless ``tp, pp, ep, batch`` are a valid split of model ``m``."""
    require_int("tp", tp, min=1)
    require_int("pp", pp, min=1, max=m.layers)
    require_int("ep", ep, min=1)
    require_int("batch", batch, min=1)
    if m.heads % tp:
        raise ConfigError(f"tp: must divide heads ({m.heads}) of {m.name}, got {tp}")
    if m.attention == "gqa" and m.kv_heads % tp and tp % m.kv_heads:
        raise ConfigError(
            f"tp: kv_heads ({m.kv_heads}) of {m.name} must be a multiple or a divisor of tp, got {tp}"
        )
    for name, width in (("ffn", m.ffn), ("expert_ffn", m.expert_ffn), ("vocab", m.vocab)):
        if width and width % tp:
            raise ConfigError(f"tp: must divide {name} ({width}) of {m.name}, got {tp}")
    if not m.is_moe and ep != 1:
        raise ConfigError(f"ep: must be 1 for dense model {m.name}, got {ep}")
    if m.is_moe and m.experts % ep:
        raise ConfigError(f"ep: must divide experts ({m.experts}) of {m.name}, got {ep}")
    if batch % ep:
        raise ConfigError(f"batch: must be a multiple of ep ({ep}), got {batch}")


def kv_heads_per_chip(m: TransformerModel, tp: int) -> tuple[float, bool]:
    """K/V heads (GQA) or latent copies (MLA: 1) held per chip, and whether replicated.

    GQA with ``kv_heads >= tp``: ``kv_heads / tp``, not replicated. GQA with
    ``kv_heads < tp``: 1 head per chip, replicated ``tp / kv_heads`` times. MLA: the
    latent is shared by all heads, so every TP rank keeps all of it (replicated if tp > 1).
    """
    if m.attention == "mla":
        return 1.0, tp > 1
    if m.kv_heads >= tp:
        return m.kv_heads / tp, False
    return 1.0, True


def kv_elems_per_token_layer(m: TransformerModel, tp: int) -> float:
    """KV-cache elements one chip holds per token and layer: ``2 * kv_heads_per_chip *
    head_dim`` (GQA: K and V) or the MLA latent and rope key, ``kv_lora_rank +
    qk_rope_dim``."""
    if m.attention == "mla":
        return float(m.kv_lora_rank + m.qk_rope_dim)
    heads, _ = kv_heads_per_chip(m, tp)
    return 2.0 * heads * m.head_dim


def _attention_weight_params(m: TransformerModel, tp: int) -> float:
    """Attention matrix parameters held by one TP rank (see module notes)."""
    h = m.hidden
    if m.attention == "gqa":
        kvh, _ = kv_heads_per_chip(m, tp)
        return h * (m.heads / tp) * m.head_dim * 2 + 2 * h * kvh * m.head_dim
    # down-projections into the shared latents are replicated; per-head matrices are split
    replicated = h * (m.kv_lora_rank + m.qk_rope_dim) + h * m.q_lora_rank
    q_b = (m.q_lora_rank or h) * m.q_dim()
    kv_b = m.kv_lora_rank * m.heads * (m.head_dim + m.v_head_dim)
    out = m.heads * m.v_head_dim * h
    return replicated + (q_b + kv_b + out) / tp


def _layer_weight_params(m: TransformerModel, index: int, tp: int, ep: int) -> float:
    p = _attention_weight_params(m, tp) + m.norm_params()
    if m.is_moe_layer(index):
        p += m.router_params()
        p += (m.experts / ep) * m.expert_params() / tp
        p += m.shared_experts * m.expert_params() / tp
    else:
        p += m.mlp_params() / tp
    return p


def per_chip_bytes(
    m: TransformerModel | str,
    *,
    batch: int,
    context: int,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    step_tokens: int = 1,
    stage: int | None = None,
) -> dict[str, float]:
    """Bytes one chip needs for weights, KV cache and activations.

    Parameters
    ----------
    m : TransformerModel or str
        Model or preset name.
    batch : int
        Sequences in flight on one model instance (each EP rank attends for
        ``batch / ep`` of them).
    context : int
        Tokens held in the KV cache per sequence.
    tp, pp, ep : int
        Parallel degrees.
    step_tokens : int
        Tokens per sequence processed in one step (1 for decode, the prompt length for
        prefill); sizes the activation working set.
    stage : int, optional
        Pipeline stage; default: the stage needing the most bytes.

    Returns
    -------
    dict
        ``weights``, ``kv_cache``, ``activations`` (bytes), and ``stage``.

    Notes
    -----
    The activation working set is an estimate for inference: two residual-stream buffers
    plus the widest intermediate of a layer (QKV, MLP or routed-expert input) for the
    tokens of one step, plus fp32 logits on the last stage. Training activations are not
    modelled.
    """
    m = get_model(m)
    validate_sharding(m, tp=tp, pp=pp, ep=ep, batch=batch)
    require_int("context", context, min=0)
    require_int("step_tokens", step_tokens, min=1)
    ranges = stage_layers(m.layers, pp)
    stages = range(pp) if stage is None else [require_int("stage", stage, min=0, max=pp - 1)]
    local_seqs = batch / ep
    tokens = local_seqs * step_tokens
    kv_per_token_layer = kv_elems_per_token_layer(m, tp) * m.kv_dtype_bytes
    best: dict[str, float] | None = None
    for s in stages:
        layers = ranges[s]
        params = sum(_layer_weight_params(m, i, tp, ep) for i in layers)
        if s == 0:
            params += m.embedding_params() / tp
        if s == pp - 1:
            params += m.head_params() / tp + m.hidden
        kv = local_seqs * context * kv_per_token_layer * len(layers)
        act = tokens * m.act_dtype_bytes * (2 * m.hidden + _widest_activation(m, tp))
        if s == pp - 1:
            act += tokens * m.vocab / tp * 4
        total = {
            "weights": params * m.weight_dtype_bytes,
            "kv_cache": kv,
            "activations": act,
            "stage": float(s),
        }
        if best is None or _sum_items(total) > _sum_items(best):
            best = total
    assert best is not None
    return best


def _widest_activation(m: TransformerModel, tp: int) -> float:
    """Elements per token of a layer's widest intermediate on one TP rank: the QKV
    projection's output, the MLP's or the routed experts' input."""
    kvh, _ = kv_heads_per_chip(m, tp)
    widths = [
        (m.q_dim() / tp + 2 * kvh * m.head_dim),
        (m.mlp_matrices - 1) * m.ffn / tp,
    ]
    if m.is_moe:
        widths.append(m.experts_per_token * (m.mlp_matrices - 1) * m.expert_ffn / tp)
    return max(widths)


def _sum_items(items: Mapping[str, float]) -> float:
    return sum(items[k] for k in _ITEM_ORDER)


@dataclass(frozen=True)
class CapacityReport:
    """Where one chip's bytes go, tier by tier.

    Attributes
    ----------
    model, chip : str
        Names.
    tp, pp, ep, batch, context, stage : int
        The split, the load, and the pipeline stage checked (the fullest one).
    items : Mapping[str, float]
        Bytes needed per item: ``weights``, ``kv_cache``, ``activations``.
    placement : Mapping[str, Mapping[str, float]]
        Item -> tier -> bytes placed there.
    needed : Mapping[str, float]
        Tier -> bytes placed (sum over items).
    available : Mapping[str, float]
        Tier -> usable capacity (capacity times ``usable_fraction``).
    overflow : Mapping[str, float]
        Item -> bytes that fit nowhere.
    fits : bool
        True when nothing overflows.
    kv_replicated : bool
        The KV cache is replicated across TP ranks (GQA with kv_heads < tp, or MLA).
    """

    model: str
    chip: str
    tp: int
    pp: int
    ep: int
    batch: int
    context: int
    stage: int
    items: Mapping[str, float]
    placement: Mapping[str, Mapping[str, float]]
    needed: Mapping[str, float]
    available: Mapping[str, float]
    overflow: Mapping[str, float]
    fits: bool
    kv_replicated: bool
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def total_needed(self) -> float:
        """Bytes the chip needs over all items."""
        return sum(self.items.values())

    @property
    def total_available(self) -> float:
        """Usable bytes over all tiers."""
        return sum(self.available.values())

    def fractions(self, item: str) -> dict[str, float]:
        """Fraction of ``item`` per tier; overflow counts in the slowest tier it may use."""
        total = self.items[item]
        if total <= 0:
            return {}
        out = {t: b / total for t, b in self.placement[item].items() if b > 0}
        over = self.overflow.get(item, 0.0)
        if over > 0:
            last = list(self.placement[item])[-1]
            out[last] = out.get(last, 0.0) + over / total
        return out

    def summary(self) -> str:
        """One line: what is needed against what is available, per item and per tier.

        Sizes are decimal GB (10**9 bytes), as chip datasheets state capacities.
        """
        items = ", ".join(f"{k} {_gb(v)}" for k, v in self.items.items())
        tiers = ", ".join(
            f"{t} {_gb(self.needed.get(t, 0.0))} of {_gb(v)}" for t, v in self.available.items()
        )
        verdict = "fits" if self.fits else f"short by {_gb(sum(self.overflow.values()))}"
        return (
            f"{self.model} on {self.chip} (tp={self.tp}, pp={self.pp}, ep={self.ep}, "
            f"batch={self.batch}, context={self.context}, stage={self.stage}) needs "
            f"{_gb(self.total_needed)} per chip ({items}); placed of available per tier: "
            f"{tiers}; {verdict}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-data view."""
        return {
            "model": self.model,
            "chip": self.chip,
            "tp": self.tp,
            "pp": self.pp,
            "ep": self.ep,
            "batch": self.batch,
            "context": self.context,
            "stage": self.stage,
            "items": dict(self.items),
            "placement": {k: dict(v) for k, v in self.placement.items()},
            "needed": dict(self.needed),
            "available": dict(self.available),
            "overflow": dict(self.overflow),
            "fits": self.fits,
            "kv_replicated": self.kv_replicated,
            "notes": list(self.notes),
        }


def plan_memory(
    m: TransformerModel | str,
    c: Chip | str,
    *,
    batch: int,
    context: int,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    step_tokens: int = 1,
    usable_fraction: float = 1.0,
) -> CapacityReport:
    """Place one chip's weights, KV cache and activations into its memory tiers.

    See the module notes for the placement policy (write-heavy items first, fastest tier
    first, HBF only for weights). Parameters are those of :func:`per_chip_bytes`, plus:

    Parameters
    ----------
    c : Chip or str
        Chip or preset name.
    usable_fraction : float
        Fraction of each tier usable for these items (runtime, fragmentation), in (0, 1].

    Returns
    -------
    CapacityReport
    """
    m = get_model(m)
    c = get_chip(c)
    frac = require_float("usable_fraction", usable_fraction, min=0.0, max=1.0, min_open=True)
    items = per_chip_bytes(
        m, batch=batch, context=context, tp=tp, pp=pp, ep=ep, step_tokens=step_tokens
    )
    stage = int(items.pop("stage"))
    available = {t.name: t.capacity * frac for t in c.tiers}
    placement, overflow = _place(items, c, available)
    needed = {t.name: sum(placement[i].get(t.name, 0.0) for i in _ITEM_ORDER) for t in c.tiers}
    _, kv_rep = kv_heads_per_chip(m, tp)
    return CapacityReport(
        model=m.name,
        chip=c.name,
        tp=tp,
        pp=pp,
        ep=ep,
        batch=batch,
        context=context,
        stage=stage,
        items=MappingProxyType({k: items[k] for k in ("weights", "kv_cache", "activations")}),
        placement=MappingProxyType(placement),
        needed=MappingProxyType(needed),
        available=MappingProxyType(available),
        overflow=MappingProxyType(overflow),
        fits=not any(v > 0 for v in overflow.values()),
        kv_replicated=kv_rep,
        notes=_notes(m, c, tp),
    )


def _place(
    items: Mapping[str, float], c: Chip, available: Mapping[str, float]
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Bytes of each item per tier, filling the tiers it may use fastest first in
    :data:`_ITEM_ORDER`, and the bytes of each item that fit nowhere."""
    free = dict(available)
    placement: dict[str, dict[str, float]] = {}
    overflow: dict[str, float] = {}
    for item in _ITEM_ORDER:
        allowed = [t.name for t in c.tiers if item == "weights" or t.name in _WRITABLE]
        left = items[item]
        placed: dict[str, float] = {}
        for name in allowed:
            take = min(left, free[name])
            placed[name] = take
            free[name] -= take
            left -= take
        # tiny float residue is not overflow
        overflow[item] = left if left > 1e-9 * max(1.0, items[item]) else 0.0
        placement[item] = placed
    return placement, overflow


def _notes(m: TransformerModel, c: Chip, tp: int) -> tuple[str, ...]:
    """Caveats of the plan: a replicated KV cache, a chip with no writable tier."""
    _, kv_rep = kv_heads_per_chip(m, tp)
    notes = []
    if kv_rep and m.attention == "gqa":
        notes.append(
            f"kv_heads ({m.kv_heads}) < tp ({tp}): KV cache replicated {tp // m.kv_heads}x"
        )
    if kv_rep and m.attention == "mla":
        notes.append(f"MLA latent KV replicated on all {tp} TP ranks")
    if not any(t.name in _WRITABLE for t in c.tiers):
        notes.append("chip has no writable tier (sram/hbm/ddr) for the KV cache")
    return tuple(notes)


def require_fit(report: CapacityReport) -> CapacityReport:
    """Return ``report`` if it fits, else raise CapacityError with the numbers in one line."""
    if not report.fits:
        raise CapacityError("capacity: " + report.summary())
    return report


def check_capacity(m: TransformerModel | str, c: Chip | str, **kwargs: Any) -> CapacityReport:
    """:func:`plan_memory` followed by :func:`require_fit`."""
    return require_fit(plan_memory(m, c, **kwargs))
