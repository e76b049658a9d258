"""Workloads: transformer models, sharding and capacity, roofline compute, and the
end-to-end decode / prefill / training timings on a fabric.

Modules are imported on demand (``from workloads.decode import decode``); the names below
are the entry points most scripts need.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "decode",
    "decode_experiment",
    "prefill",
    "train_experiment",
    "train_step",
]

_LAZY = {
    "decode": "workloads.decode",
    "decode_experiment": "workloads.decode",
    "prefill": "workloads.decode",
    "train_step": "workloads.train",
    "train_experiment": "workloads.train",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'workloads' has no attribute {name!r}")
