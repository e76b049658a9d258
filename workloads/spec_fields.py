"""Numbers in the fields of spec strings (``zipf:1.2:7``, ``lognormal:20us:0.5``).

The workload specs (:func:`workloads.moe.parse_routing`, :func:`workloads.stragglers.
parse_stragglers`) refuse a bad field with one line that quotes the whole spec;
:func:`spec_number` reads one field that way.
"""

from __future__ import annotations

import math

from netsim.core.errors import ConfigError

__all__ = ["spec_number"]


def spec_number(field: str, error: str, *, hi: float = math.inf, integer: bool = False) -> float:
    """``field`` as a finite number in ``[0, hi]`` (an integer if ``integer``).

    Raises
    ------
    ConfigError
        With the message ``error`` if it is not one.

    Examples
    --------
    >>> spec_number("0.25", "FRACTION: bad", hi=1.0)
    0.25
    >>> spec_number("2.5", "seed: must be an integer >= 0", integer=True)
    Traceback (most recent call last):
    ...
    netsim.core.errors.ConfigError: seed: must be an integer >= 0
    """
    try:
        x = int(field) if integer else float(field)
    except ValueError:
        raise ConfigError(error) from None
    if not (math.isfinite(x) and 0 <= x <= hi):
        raise ConfigError(error)
    return x
