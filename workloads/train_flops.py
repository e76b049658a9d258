"""Compute time of one training step: the ``6 N D`` estimate on one or more chips.

:func:`train_compute` charges ``6 * params * tokens`` FLOPs (forward ``2ND`` + backward
``4ND``) to ``chips`` chips at a model-FLOPs utilisation (:class:`TrainEstimate`); the
fabric is not here (:mod:`workloads.train` adds the collectives).
"""

from __future__ import annotations

from dataclasses import dataclass

from netsim.core.validate import require_float, require_int
from workloads.chips import Chip
from workloads.chips import chip as get_chip
from workloads.models import TransformerModel
from workloads.models import model as get_model

__all__ = ["TrainEstimate", "train_compute"]


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
    m, c = get_model(m), get_chip(c)
    require_int("tokens", tokens, min=1)
    require_int("chips", chips, min=1)
    eff = require_float("efficiency", efficiency, min=0.0, max=1.0, min_open=True)
    n = float(m.matrix_params())
    flops = 6.0 * n * tokens
    peak = c.peak(dtype or m.compute_dtype)
    return TrainEstimate(m.name, c.name, tokens, chips, n, flops, eff, flops / (chips * peak * eff))
