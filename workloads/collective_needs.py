"""The collectives a decode step needs per chip: kind, group, bytes and calls.

:func:`decode_collectives` lists them (:class:`CollectiveNeed`) for one chip of a pipeline
stage under the Megatron-style split: TP all-reduces, MoE dispatch/combine all-to-alls and
the pipeline send. Only sizes are here; :mod:`workloads.decode` times them on a fabric.
"""

from __future__ import annotations

from dataclasses import dataclass

from netsim.core.validate import require_int
from workloads.models import TransformerModel
from workloads.models import model as get_model
from workloads.sharding import stage_layers, validate_sharding

__all__ = ["CollectiveNeed", "decode_collectives"]


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
      ``batch/ep * k`` tokens times ``(ep-1)/ep`` (uniform routing), each of the model's
      dispatch or combine wire size (:meth:`TransformerModel.dispatch_bytes_per_token`).
    * PP: one send of the chip's ``batch/ep * hidden`` activations to the next stage (not
      on the last), divided by ``tp`` (Megatron's scatter/gather optimisation: each TP
      rank sends a slice and the next stage all-gathers it).
    """
    m = get_model(m)
    validate_sharding(m, tp=tp, pp=pp, ep=ep, batch=batch)
    require_int("stage", stage, min=0, max=pp - 1)
    layers = stage_layers(m.layers, pp)[stage]
    n_moe = sum(1 for i in layers if m.is_moe_layer(i))
    local = batch / ep * m.hidden * m.act_dtype_bytes
    out: list[CollectiveNeed] = []
    if tp > 1:
        out.append(CollectiveNeed("all_reduce", "tp", local, 2 * len(layers), "tp_layer_outputs"))
    if ep > 1 and n_moe:
        copies = batch / ep * m.experts_per_token * (ep - 1) / ep
        for name, per_token in (
            ("moe_dispatch", m.dispatch_bytes_per_token()),
            ("moe_combine", m.combine_bytes_per_token()),
        ):
            out.append(CollectiveNeed("all_to_all", "ep", copies * per_token, n_moe, name))
    if stage < pp - 1:
        out.append(
            CollectiveNeed("send", "pp", local / tp if tp > 1 else local, 1, "pp_activations")
        )
    return out
