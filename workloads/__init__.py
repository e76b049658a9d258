"""Workloads: transformer models, sharding and capacity, roofline compute, and the
end-to-end decode / prefill / training timings on a fabric.

The names below are the entry points most scripts need (chips: `workloads.chip("h100")`). They are imported eagerly: the
function ``decode`` shares its name with the module ``workloads.decode``, and a lazy
attribute would be shadowed by the submodule once anything imported it.
"""

from __future__ import annotations

from workloads.chips import Chip, chip, chip_names
from workloads.decode import decode, decode_experiment, prefill
from workloads.options import DecodeOptions, TrainOptions
from workloads.train import train_experiment, train_step

__all__ = [
    "Chip",
    "DecodeOptions",
    "TrainOptions",
    "chip",
    "chip_names",
    "decode",
    "decode_experiment",
    "prefill",
    "train_experiment",
    "train_step",
]
