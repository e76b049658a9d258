"""Option parsing shared by the topology families: checks and the declared parameter kinds.

Every family module declares the kind of each of its generators' parameters in a table
``PARAMETER_KINDS = {function name: {parameter: kind}}``; :mod:`topologies.registry`
converts spec values by that declaration (:func:`convert`), never by the parameter's name.
The kinds are :data:`KINDS`:

``bandwidth``
    :func:`~netsim.core.units.parse_bandwidth` (``100GB/s``, ``400Gbps``; bytes/s).
``time``
    :func:`~netsim.core.units.parse_time` (``500ns``; seconds).
``size``
    :func:`~netsim.core.units.parse_size` (``4KiB``; bytes).
``int``, ``float``
    A finite number (an ``int`` must be integral).
``bool``
    ``true/yes/on/1`` or ``false/no/off/0``.
``str``
    Passed through stripped (link names, arrangements, ``dims`` strings such as ``4x4x8``);
    the generator checks it.

The checks (:func:`opt_bandwidth`, :func:`opt_time`, :func:`require_bool`,
:func:`require_link`) are what the generators apply to their already converted arguments.
"""

from __future__ import annotations

import math
from typing import Any

from netsim.core.errors import ConfigError
from netsim.core.linktypes import LINK_TYPES
from netsim.core.units import parse_bandwidth, parse_size, parse_time
from netsim.core.validate import require_choice, require_float

__all__ = [
    "KINDS",
    "convert",
    "opt_bandwidth",
    "opt_time",
    "require_bool",
    "require_link",
]

#: The parameter kinds a family may declare (see the module docstring).
KINDS = ("bandwidth", "time", "size", "int", "float", "bool", "str")

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def opt_bandwidth(name: str, value: Any) -> float | None:
    """``None`` (the link type's default) or a bandwidth ``> 0`` bytes/s."""
    return None if value is None else require_float(name, value, min=0.0, min_open=True)


def opt_time(name: str, value: Any) -> float | None:
    """``None`` (the link type's default) or a time ``>= 0`` seconds."""
    return None if value is None else require_float(name, value, min=0.0)


def require_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool, else raise ConfigError naming ``name``."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name}: must be true or false, got {value!r}")
    return value


def require_link(name: str, value: Any) -> str:
    """Return ``value`` if it names a link type of :data:`netsim.core.linktypes.LINK_TYPES`."""
    return require_choice(name, value, sorted(LINK_TYPES))


def _number(name: str, value: Any, integral: bool) -> float | int:
    rule = "an integer" if integral else "a finite number"
    try:
        x = float(value) if not isinstance(value, bool) else math.nan
        if not math.isfinite(x) or (integral and x != int(x)):
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: must be {rule}, got {value!r}") from None
    return int(x) if integral else x


def _boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{name}: must be true or false, got {value!r}")


def convert(kind: str, name: str, value: Any) -> Any:
    """Convert one raw spec value (usually a string) by its declared ``kind``.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    name : str
        What to name in an error message (``"torus: bandwidth"``).
    value : Any
        The raw value.

    Raises
    ------
    ConfigError
        ``kind`` is not one of :data:`KINDS`, or the value does not convert.

    Examples
    --------
    >>> convert("bandwidth", "bandwidth", "400Gbps")
    50000000000.0
    >>> convert("int", "k", "4")
    4
    """
    if kind == "bandwidth":
        return parse_bandwidth(value, name)
    if kind == "time":
        return parse_time(value, name)
    if kind == "size":
        return parse_size(value, name)
    if kind == "bool":
        return _boolean(name, value)
    if kind in ("int", "float"):
        return _number(name, value, kind == "int")
    if kind == "str":
        return value.strip() if isinstance(value, str) else value
    raise ConfigError(f"{name}: declared kind must be one of {', '.join(KINDS)}, got {kind!r}")
