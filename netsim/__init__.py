"""netsim: a packet-level simulator of accelerator interconnects for LLM workloads.

The public API is re-exported here; see the documentation of each name.
"""

from netsim._version import __version__
from netsim.errors import (
    CapacityError,
    ConfigError,
    DeadlockError,
    NetsimError,
    ResultsError,
    SimulationError,
)

__all__ = [
    "CapacityError",
    "ConfigError",
    "DeadlockError",
    "NetsimError",
    "ResultsError",
    "SimulationError",
    "__version__",
]
