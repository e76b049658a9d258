"""netsim: a packet-level simulator of accelerator interconnects for LLM workloads.

The curated public API, for sweep scripts and notebooks::

    import netsim
    net = netsim.PacketNetwork(graph)                  # the packet engine (Backend seam)
    net = netsim.AnalyticalNetwork(graph)              # the alpha-beta model, same seam
    net = netsim.FlowNetwork(graph)                    # flows sharing links max-min fairly
    netsim.run_sweep("examples/stragglers.yaml", "out.h5")
    table = netsim.load_results("out.h5")              # numpy structured array
    netsim.app.quickstart("netsim-quickstart")             # the built-in study and its figures
    netsim.parse_size("4KiB"), netsim.parse_bandwidth("400Gbps"), netsim.parse_time("500ns")

Topology generators live in :mod:`topologies`, collective algorithms in :mod:`collectives`
and workloads (decode, prefill, train) in :mod:`workloads`. Names other than the exceptions
and the unit parsers are imported on first use, so ``import netsim`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from netsim._version import __version__
from netsim.core.errors import (
    CapacityError,
    ConfigError,
    DeadlockError,
    NetsimError,
    ResultsError,
    SimulationError,
)
from netsim.core.units import (
    format_bandwidth,
    format_size,
    format_time,
    parse_bandwidth,
    parse_size,
    parse_size_range,
    parse_time,
)

#: Lazily imported public names: name -> module.
_LAZY = {
    "PacketNetwork": "netsim.core.engine",
    "AnalyticalNetwork": "netsim.core.analytical",
    "FlowNetwork": "netsim.core.flow",
    "run_traffic": "netsim.core.traffic",
    "run_sweep": "netsim.app.sweep",
    "load_spec": "netsim.app.sweep",
    "load_results": "netsim.app.results",
    "load_dataframe": "netsim.app.results",
    "plot_results": "netsim.app.plots",
    "quickstart": "netsim.app.quickstart",
}

__all__ = [
    "AnalyticalNetwork",
    "CapacityError",
    "ConfigError",
    "DeadlockError",
    "FlowNetwork",
    "NetsimError",
    "PacketNetwork",
    "ResultsError",
    "SimulationError",
    "__version__",
    "format_bandwidth",
    "format_size",
    "format_time",
    "load_dataframe",
    "load_results",
    "load_spec",
    "parse_bandwidth",
    "parse_size",
    "parse_size_range",
    "parse_time",
    "plot_results",
    "quickstart",
    "run_sweep",
    "run_traffic",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'netsim' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
