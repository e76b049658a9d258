"""Collective communication: schedules, algorithms, and a runner on any network backend.

Build a schedule with :func:`build`, time it on a backend from :func:`make_backend` with
:func:`run`, or do everything from a topology spec with :func:`run_collective`. See
``docs/collectives.md`` for the algorithms and the timing model.

Examples
--------
>>> from collectives import build, make_backend, run
>>> from topologies.torus import torus
>>> s = build("allreduce", "ring", [0, 1, 2, 3], 1024)
>>> r = run(make_backend(torus((4,)), "analytical"), s)
>>> r.transfers, r.model
(24, 'analytical/alpha-beta')
"""

from collectives.algorithms import ALGORITHMS, algorithms_for, busbw_factor
from collectives.api import run_collective
from collectives.backends import make_backend
from collectives.builder import build
from collectives.options import BACKENDS, CollectiveOptions, parse_ranks
from collectives.runner import RunResult, run
from collectives.schedule import OPS, Schedule, Transfer, execute, expected, merge

__all__ = [
    "ALGORITHMS",
    "BACKENDS",
    "OPS",
    "CollectiveOptions",
    "RunResult",
    "Schedule",
    "Transfer",
    "algorithms_for",
    "build",
    "busbw_factor",
    "execute",
    "expected",
    "make_backend",
    "merge",
    "parse_ranks",
    "run",
    "run_collective",
]
