"""Parse and format quantities with units.

Inside netsim every quantity is SI: seconds, bytes, bytes per second. Users write
units at the boundary (CLI, YAML, spec strings) and this module converts them.

* sizes: ``8B``, ``4KiB``, ``1MB``, ``1.5GiB``; a bare number is bytes.
* bandwidths: ``400Gbps`` / ``400Gb/s`` (bits), ``50GB/s`` / ``50GBps`` (bytes),
  ``1.8TB/s``, ``100GiB/s``; a bare number is bytes per second.
* times: ``500ns``, ``1.5us`` (or ``µs``), ``2ms``, ``1s``; a bare number is seconds.

Decimal prefixes (k, M, G, T, P) are powers of 10; binary prefixes (Ki, Mi, Gi, Ti, Pi)
are powers of 2.

Examples
--------
>>> parse_size("4KiB")
4096
>>> parse_bandwidth("400Gbps")
50000000000.0
>>> parse_time("500ns")
5e-07
>>> format_size(1 << 20)
'1MiB'
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

from netsim.core.errors import ConfigError

__all__ = [
    "MAX_RANGE_VALUES",
    "check_range_count",
    "format_bandwidth",
    "format_size",
    "format_time",
    "parse_bandwidth",
    "parse_float_range",
    "parse_rate",
    "parse_size",
    "parse_size_range",
    "parse_time",
]

#: Most values a range (``"1KiB:1GiB:+1KiB"``, ``"0.1:0.9:0.01"``) may expand to: a larger
#: range is refused before it is built (raise it here for a study that really needs more).
MAX_RANGE_VALUES = 100_000

_DEC = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_BIN = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50}
_NUM = r"(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
_PREFIX = r"(?P<prefix>Ki|Mi|Gi|Ti|Pi|k|K|M|G|T|P|)"
_SIZE_RE = re.compile(rf"^{_NUM}\s*{_PREFIX}(?P<unit>B|bytes?|)$")
_BW_RE = re.compile(rf"^{_NUM}\s*{_PREFIX}(?P<unit>B/s|Bps|b/s|bps|bit/s|)$")
_RATE_RE = re.compile(rf"^{_NUM}\s*(?P<prefix>k|K|M|G|T|P|)(?P<unit>FLOP/s|FLOPS|OP/s|OPS|)$")
_TIME_RE = re.compile(r"^" + _NUM + r"\s*(?P<unit>ps|ns|us|µs|ms|s|)$")
# Times divide by exact powers of ten so "500ns" is the float nearest 5e-7, as written.
_TIME_DIV = {"ps": 10**12, "ns": 10**9, "us": 10**6, "µs": 10**6, "ms": 10**3, "s": 1, "": 1}


def _scale(prefix: str) -> float:
    return _BIN[prefix] if prefix in _BIN else _DEC[prefix]


def _times(num: str, prefix: str) -> float:
    """``num`` times the prefix's scale, rounded once (``"1.8T"`` is exactly 1.8e12)."""
    return float(Decimal(num) * Decimal(int(_scale(prefix))))


def _text(value: object, name: str) -> str | None:
    if isinstance(value, bool):
        raise ConfigError(f"{name}: expected a quantity, got {value!r}")
    if isinstance(value, int | float):
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{name}: expected a number or a string with a unit, got {value!r}")
    return value.strip().replace("_", "")


def _match(value: object, name: str, regex: re.Pattern[str], example: str) -> re.Match[str] | None:
    """The unit regex's match of ``value``; None for a plain number."""
    text = _text(value, name)
    if text is None:
        return None
    m = regex.match(text)
    if not m:
        raise ConfigError(f"{name}: expected {example}, got {value!r}")
    return m


def _check(x: float, name: str, value: object, allow_zero: bool) -> float:
    if math.isnan(x):
        raise ConfigError(f"{name}: must be a number, got {value!r}")
    if math.isinf(x) and x > 0:
        raise ConfigError(f"{name}: too large (overflows a 64-bit float), got {value!r}")
    if x < 0 or (x == 0 and not allow_zero):
        rule = "must be >= 0" if allow_zero else "must be > 0"
        raise ConfigError(f"{name}: {rule}, got {value!r}")
    return x


def parse_size(value: object, name: str = "size", *, allow_zero: bool = True) -> int:
    """Return a size in bytes (an int) from ``value`` such as ``"4KiB"`` or ``4096``.

    Raises
    ------
    ConfigError
        If the text is not a size, is negative, or is not a whole number of bytes.
    """
    m = _match(value, name, _SIZE_RE, "a size such as 8B, 4KiB or 1MB")
    x = float(value) if m is None else _times(m["num"], m["prefix"])  # type: ignore[arg-type]
    _check(x, name, value, allow_zero)
    if abs(x - round(x)) > 1e-6 * max(1.0, x):
        raise ConfigError(f"{name}: must be a whole number of bytes, got {value!r}")
    return round(x)


def parse_bandwidth(value: object, name: str = "bandwidth") -> float:
    """Return a bandwidth in bytes per second from ``value`` such as ``"400Gbps"``.

    ``b``/``bps``/``b/s``/``bit/s`` mean bits, ``B``/``Bps``/``B/s`` bytes.

    Raises
    ------
    ConfigError
        If the text is not a bandwidth or is not positive.
    """
    m = _match(value, name, _BW_RE, "a bandwidth such as 400Gbps, 50GB/s or 1.8TB/s")
    if m is None:
        return _check(float(value), name, value, False)  # type: ignore[arg-type]
    x = _times(m["num"], m["prefix"])
    if m["unit"] in ("b/s", "bps", "bit/s"):
        x /= 8.0
    return _check(x, name, value, False)


def parse_rate(value: object, name: str = "rate") -> float:
    """Return operations per second from ``value`` such as ``"989TFLOPS"`` or ``"1.98e15"``.

    Decimal prefixes k, M, G, T, P; the unit (``FLOPS``, ``FLOP/s``, ``OPS``, ``OP/s``) may
    be left out.

    Raises
    ------
    ConfigError
        If the text is not a rate or is not positive.
    """
    m = _match(value, name, _RATE_RE, "a rate such as 989TFLOPS, 1.98PFLOP/s or 2e15")
    x = float(value) if m is None else _times(m["num"], m["prefix"])  # type: ignore[arg-type]
    return _check(x, name, value, False)


def parse_time(value: object, name: str = "time", *, allow_zero: bool = True) -> float:
    """Return a time in seconds from ``value`` such as ``"500ns"`` or ``"1.5us"``.

    Raises
    ------
    ConfigError
        If the text is not a time or is negative.
    """
    m = _match(value, name, _TIME_RE, "a time such as 500ns, 1.5us or 2ms")
    if m is None:
        return _check(float(value), name, value, allow_zero)  # type: ignore[arg-type]
    x = float(Decimal(m["num"]) / Decimal(_TIME_DIV[m["unit"]]))
    return _check(x, name, value, allow_zero)


def parse_size_range(value: object, name: str = "sizes") -> list[int]:
    """Parse ``"8B:1GiB:x2"`` (geometric), ``"1KiB:8KiB:+1KiB"`` (arithmetic) or a
    comma list ``"8B,1KiB,1MiB"`` into a list of sizes in bytes.

    Examples
    --------
    >>> parse_size_range("1KiB:8KiB:x2")
    [1024, 2048, 4096, 8192]
    """
    if isinstance(value, list | tuple):
        return [parse_size(v, name) for v in value]
    text = str(value).strip()
    if ":" not in text:
        return [parse_size(v, name) for v in text.split(",") if v.strip()]
    parts = text.split(":")
    if len(parts) != 3:
        raise ConfigError(f"{name}: expected START:STOP:xFACTOR or START:STOP:+STEP, got {value!r}")
    lo, hi = parse_size(parts[0], name), parse_size(parts[1], name)
    step = parts[2].strip()
    if hi < lo:
        raise ConfigError(f"{name}: STOP must be >= START, got {value!r}")
    out: list[int] = []
    if step.startswith("x"):
        try:
            factor = float(step[1:])
        except ValueError:
            factor = 0.0
        if not math.isfinite(factor) or factor <= 1 or lo == 0:
            raise ConfigError(
                f"{name}: geometric range needs START > 0 and factor > 1, got {value!r}"
            )
        check_range_count(name, math.floor(math.log(hi / lo) / math.log(factor)) + 1, value)
        x = float(lo)
        while x <= hi * (1 + 1e-9):
            out.append(round(x))
            x *= factor
    else:
        inc = parse_size(step.lstrip("+"), name, allow_zero=False)
        check_range_count(name, (hi - lo) // inc + 1, value)
        out = list(range(lo, hi + 1, inc))
    return out


def check_range_count(name: str, count: int, value: object) -> None:
    """Raise ConfigError if a range of ``count`` values is over :data:`MAX_RANGE_VALUES`."""
    if count > MAX_RANGE_VALUES:
        raise ConfigError(
            f"{name}: the range has {count} values, more than the limit of {MAX_RANGE_VALUES} "
            f"(netsim.core.units.MAX_RANGE_VALUES; use a larger step), got {value!r}"
        )


def parse_float_range(value: object, name: str = "range") -> list[float]:
    """Parse ``"0.1:0.9:0.1"`` (inclusive) or ``"0.1,0.5"`` into a list of finite floats.

    Raises
    ------
    ConfigError
        If the text is empty or malformed, a value is not finite, or the range has more than
        :data:`MAX_RANGE_VALUES` values.

    Examples
    --------
    >>> parse_float_range("0.1:0.5:0.2")
    [0.1, 0.3, 0.5]
    """
    bad = f"{name}: expected START:STOP:STEP or a comma list of numbers, got {value!r}"
    if isinstance(value, bool):
        raise ConfigError(bad)
    items = value if isinstance(value, list | tuple) else [value]
    if isinstance(value, str):
        text = value.strip()
        items = text.split(":") if ":" in text else [v for v in text.split(",") if v.strip()]
    try:
        nums = [float(v) for v in items if not isinstance(v, bool)]
    except (TypeError, ValueError):
        raise ConfigError(bad) from None
    if not nums or len(nums) != len(items) or not all(map(math.isfinite, nums)):
        raise ConfigError(bad)
    if not (isinstance(value, str) and ":" in value):
        return nums
    if len(nums) != 3:
        raise ConfigError(bad)
    lo, hi, step = nums
    if step <= 0 or hi < lo:
        raise ConfigError(f"{name}: need STEP > 0 and STOP >= START, got {value!r}")
    n = math.floor((hi - lo) / step + 1e-9) + 1
    check_range_count(name, n, value)
    return [round(lo + i * step, 12) for i in range(n)]


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def format_size(nbytes: float) -> str:
    """Format bytes so that :func:`parse_size` gives the same number back.

    A whole number of bytes is written exactly with at most three decimals, by the prefix
    that gives the shortest text (binary first on a tie: ``1536 -> '1.5KiB'``,
    ``10**6 -> '1MB'``, ``10**12 -> '1TB'``, not ``'976562500KiB'``; ``1025 -> '1.025kB'``);
    a fractional one (a mean) is rounded to four digits.
    """
    if float(nbytes).is_integer():
        n = int(nbytes)
        exact = [
            f"{n / scale:.3f}".rstrip("0").rstrip(".") + f"{prefix}B"
            for prefix, scale in (*_SIZE_BIN, *_SIZE_DEC)
            if abs(n) >= scale and (n * 1000) % scale == 0
        ]
        return min(exact, key=len) if exact else f"{n}B"
    for prefix, scale in _SIZE_BIN:
        if abs(nbytes) >= scale:
            return f"{_fmt(nbytes / scale)}{prefix}B"
    return f"{_fmt(nbytes)}B"


_SIZE_BIN = (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10))
_SIZE_DEC = (("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3))


def format_bandwidth(bps: float) -> str:
    """Format bytes/s with a decimal prefix: ``4.5e11 -> '450GB/s'``."""
    for prefix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(bps) >= scale:
            return f"{_fmt(bps / scale)}{prefix}B/s"
    return f"{_fmt(bps)}B/s"


def format_time(seconds: float) -> str:
    """Format seconds with the largest unit that keeps the number >= 1: ``'1.5us'``."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if abs(seconds) >= scale:
            return f"{_fmt(seconds / scale)}{unit}"
    return f"{_fmt(seconds / 1e-12)}ps" if seconds else "0s"
