"""Helpers shared by the CLI subcommands: JSON output and argument types with units."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

import numpy as np

from netsim.core.errors import ConfigError
from netsim.core.units import parse_bandwidth, parse_size, parse_time

__all__ = ["arg_bandwidth", "arg_size", "arg_time", "print_json", "to_jsonable"]


def _argtype(parse, label: str):
    def convert(text: str):
        try:
            return parse(text, label)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = label
    return convert


arg_size = _argtype(parse_size, "size")
arg_bandwidth = _argtype(parse_bandwidth, "bandwidth")
arg_time = _argtype(parse_time, "time")


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and non-finite floats into plain JSON values."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def print_json(obj: Any) -> None:
    """Print one JSON object on stdout."""
    json.dump(to_jsonable(obj), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
