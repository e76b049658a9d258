"""Checks shared by the schedule-builder tests (test_collectives_hierarchical, _innetwork,
_tree): the result on numpy data in list order and in random dependency orders, and the
depth of a schedule."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from collectives.schedule import Schedule, Transfer, execute, expected

__all__ = ["check", "longest_chain"]


def check(s: Schedule, inputs: dict, seeds=(None, 1, 2, 3)) -> None:
    """Validate ``s`` and compare its result with :func:`expected` for each execution order."""
    s.validate()
    for seed in seeds:
        out = execute(s, inputs, seed=seed)
        for key, sl, want in expected(s, inputs):
            np.testing.assert_array_equal(out[key][sl], want, err_msg=f"{key} seed={seed}")


def longest_chain(s: Schedule, weight: Callable[[Transfer], int] = lambda t: 1) -> int:
    """Weight of the heaviest dependency chain (transfers on it, with the default weight)."""
    level: list[int] = []
    for t in s.transfers:
        level.append(weight(t) + max((level[d] for d in t.deps), default=0))
    return max(level, default=0)
