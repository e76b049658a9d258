"""Checking a collective on data: random inputs and a comparison with the expected buffers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from collectives.schedule import Schedule, expected
from netsim.core.errors import SimulationError

__all__ = ["check_result", "random_inputs"]


def random_inputs(s: Schedule, seed: int = 0) -> dict[int, np.ndarray]:
    """Random small-integer float64 inputs for every rank of ``s`` (exact sums)."""
    rng = np.random.default_rng(seed)
    name = "send" if s.op == "alltoall" else "x"
    groups = s.groups or [s]
    out = {}
    for g in groups:
        for r in g.ranks:
            n = s.buffers.get((r, name), g.count)
            out[r] = rng.integers(-8, 9, size=n).astype(np.float64)
    return out


def check_result(s: Schedule, inputs: Mapping[int, np.ndarray], bufs: Mapping[Any, Any]) -> None:
    """Compare buffers after a run with :func:`collectives.schedule.expected`.

    Raises
    ------
    SimulationError
        Naming the first node, buffer and slice that differ.
    """
    for key, sl, vals in expected(s, inputs):
        got = np.asarray(bufs[key])[sl]
        if not np.array_equal(got, vals):
            raise SimulationError(
                f"check: {s.op}/{s.algo} left wrong values in {key[1]!r} of node {key[0]} "
                f"[{sl.start}:{sl.stop}]"
            )
