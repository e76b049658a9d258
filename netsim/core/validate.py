"""Validation helpers for public entry points.

Each raises :class:`~netsim.core.errors.ConfigError` with one line naming the parameter, the
rule and the value it got: ``k: must be an even integer >= 2, got 3``. Internal callers
skip them and call the unchecked private twins of public functions.
"""

from __future__ import annotations

import codecs
import dataclasses
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from netsim.core.errors import ConfigError

__all__ = [
    "read_text",
    "replace_fields",
    "require_choice",
    "require_float",
    "require_int",
    "require_writable",
]


def require_int(
    name: str,
    value: Any,
    *,
    min: int | None = None,
    max: int | None = None,
    even: bool = False,
    hint: str = "",
) -> int:
    """Return ``value`` as an int, or raise ConfigError naming ``name`` and the rule.

    ``hint`` is added to the message in parentheses (e.g. how to raise a limit).
    """
    ok = isinstance(value, int | float | str) and not isinstance(value, bool)
    try:
        ivalue = int(value) if ok else None
        if ivalue is not None and isinstance(value, float | str) and float(value) != ivalue:
            ivalue = None
    except (TypeError, ValueError, OverflowError):  # OverflowError: inf, "1e400"
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
        raise ConfigError(f"{name}: {rule}{f' ({hint})' if hint else ''}, got {value!r}")
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


def replace_fields(obj: Any, overrides: dict[str, Any]) -> Any:
    """:func:`dataclasses.replace` of the dataclass instance ``obj``, an unknown field name
    refused with one line (``replace: unknown field 'x'; fields are ...``).

    Raises
    ------
    ConfigError
        If a key of ``overrides`` is not a field of ``obj``; the field's own checks (its
        ``__post_init__``) raise for bad values.
    """
    names = {f.name for f in dataclasses.fields(obj)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ConfigError(
            f"replace: unknown field {unknown[0]!r}; fields are {', '.join(sorted(names))}"
        )
    return dataclasses.replace(obj, **overrides)


def _existing_ancestor(path: Path) -> Path:
    """The nearest ancestor of ``path`` (itself excluded) that exists."""
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def require_writable(
    name: str,
    path: Any,
    *,
    suffixes: Sequence[str] | None = None,
    directory: bool = False,
) -> Path:
    """Return ``path`` as a Path if it can be written, or raise ConfigError before any work.

    The check is done by the filesystem itself: a probe file is created (and removed) in
    the nearest existing ancestor directory, so read-only directories and file systems are
    refused for every user, root included. Missing parent directories are not created.

    Parameters
    ----------
    name : str
        The parameter, for the message (e.g. ``"plot"``).
    path : path-like
        The output file (or directory, with ``directory=True``).
    suffixes : sequence of str, optional
        Allowed file suffixes, lower case with the dot (e.g. ``(".png", ".pdf", ".svg")``).
    directory : bool
        ``path`` is an output directory (it may exist, as a directory).

    Raises
    ------
    ConfigError
        If the suffix is not allowed, ``path`` is (or is not) a directory, an ancestor is
        a file, or the directory cannot be written.
    """
    if not isinstance(path, str | os.PathLike) or not str(path).strip():
        raise ConfigError(f"{name}: expected a file path, got {path!r}")
    target = Path(path)
    if suffixes is not None and target.suffix.lower() not in suffixes:
        raise ConfigError(
            f"{name}: file extension must be one of {', '.join(suffixes)}, got {str(path)!r}"
        )
    if target.exists() and target.is_dir() != directory:
        what = "a file, got the directory" if not directory else "a directory, got the file"
        raise ConfigError(f"{name}: must be {what} {str(path)!r}")
    where = target if directory and target.is_dir() else _existing_ancestor(target)
    if not where.is_dir():
        raise ConfigError(f"{name}: {str(where)!r} is a file, not a directory, in {str(path)!r}")
    try:
        fd, probe = tempfile.mkstemp(prefix=".netsim-write-probe.", dir=where)
    except OSError as exc:
        raise ConfigError(
            f"{name}: cannot write in {str(where)!r} ({exc.strerror or exc}), got {str(path)!r}"
        ) from None
    os.close(fd)
    os.unlink(probe)
    if target.is_file() and not os.access(target, os.W_OK):
        raise ConfigError(f"{name}: the file is not writable, got {str(path)!r}")
    return target


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def read_text(name: str, path: Any, max_bytes: int) -> str:
    """The text of an input file, read within ``max_bytes``, or ConfigError.

    UTF-8 (a byte-order mark allowed), or UTF-16/32 with a byte-order mark. A file that is
    larger (``/dev/zero`` included: at most ``max_bytes + 1`` bytes are read), binary (a
    NUL byte), not decodable, missing or unreadable is refused with one line.
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise ConfigError(f"{name}: no such file {str(path)!r}") from None
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {str(path)!r} ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise ConfigError(f"{name}: file larger than {max_bytes} bytes, got {str(path)!r}")
    encoding = next((enc for bom, enc in _BOMS if data.startswith(bom)), "utf-8-sig")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        text = "\x00"
    if "\x00" in text:
        raise ConfigError(
            f"{name}: not a text file (UTF-8, or UTF-16 with a byte-order mark), got {str(path)!r}"
        )
    return text
