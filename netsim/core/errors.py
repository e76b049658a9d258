"""The exception hierarchy of netsim.

Every error netsim raises on purpose derives from :class:`NetsimError`, so a script
can catch them all with one clause and the CLI can turn them into one line on stderr.
"""

from __future__ import annotations

__all__ = [
    "CapacityError",
    "ConfigError",
    "DeadlockError",
    "NetsimError",
    "ResultsError",
    "SimulationError",
]


class NetsimError(Exception):
    """Base class of every error netsim raises on purpose."""


class ConfigError(NetsimError, ValueError):
    """A parameter, spec string or configuration file is invalid.

    The message names the parameter, the rule it breaks and the value it got,
    e.g. ``dims: each radix must be >= 2, got 1``.
    """


class SimulationError(NetsimError, RuntimeError):
    """The simulation reached an inconsistent state (e.g. bytes were lost)."""


class DeadlockError(SimulationError):
    """The packet engine stopped making progress while packets were in flight."""


class CapacityError(NetsimError):
    """A workload does not fit in the memory of the chips it is mapped on."""


class ResultsError(NetsimError):
    """A results file is missing, corrupted, or was not written by netsim."""
