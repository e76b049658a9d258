"""Validation helpers for public entry points.

Each raises :class:`~netsim.errors.ConfigError` with one line naming the parameter, the
rule and the value it got: ``k: must be an even integer >= 2, got 3``. Internal callers
skip them and call the unchecked private twins of public functions.
"""

from __future__ import annotations

import math
from typing import Any

from netsim.errors import ConfigError

__all__ = ["require_choice", "require_float", "require_int"]


def require_int(
    name: str, value: Any, *, min: int | None = None, max: int | None = None, even: bool = False
) -> int:
    """Return ``value`` as an int, or raise ConfigError naming ``name`` and the rule."""
    ok = isinstance(value, int | float | str) and not isinstance(value, bool)
    try:
        ivalue = int(value) if ok else None
        if ivalue is not None and isinstance(value, float | str) and float(value) != ivalue:
            ivalue = None
    except (TypeError, ValueError):
        ivalue = None
    rule = "must be an " + ("even " if even else "") + "integer"
    if min is not None and max is not None:
        rule += f" in [{min}, {max}]"
    elif min is not None:
        rule += f" >= {min}"
    elif max is not None:
        rule += f" <= {max}"
    if (
        ivalue is None
        or (min is not None and ivalue < min)
        or (max is not None and ivalue > max)
        or (even and ivalue % 2)
    ):
        raise ConfigError(f"{name}: {rule}, got {value!r}")
    return ivalue


def require_float(
    name: str,
    value: Any,
    *,
    min: float | None = None,
    max: float | None = None,
    min_open: bool = False,
) -> float:
    """Return ``value`` as a finite float within bounds, or raise ConfigError."""
    try:
        x = float(value)
        good = not isinstance(value, bool) and math.isfinite(x)
    except (TypeError, ValueError):
        x, good = math.nan, False
    if good and min is not None:
        good = x > min if min_open else x >= min
    if good and max is not None:
        good = x <= max
    if not good:
        parts = []
        if min is not None:
            parts.append(f"{'>' if min_open else '>='} {min:g}")
        if max is not None:
            parts.append(f"<= {max:g}")
        rule = "must be a finite number" + (" " + " and ".join(parts) if parts else "")
        raise ConfigError(f"{name}: {rule}, got {value!r}")
    return x


def require_choice(name: str, value: Any, choices: Any) -> Any:
    """Return ``value`` if it is one of ``choices``, or raise ConfigError listing them."""
    choices = list(choices)
    if value not in choices:
        listed = ", ".join(str(c) for c in choices)
        raise ConfigError(f"{name}: must be one of {listed}, got {value!r}")
    return value
