"""Results-table helpers of :mod:`netsim.app.plots`: load, filter, group and average rows.

A figure takes a results path, a structured array or a list of records (``as_table``; failed
rows are left out), checks its columns (``need_column``), keeps rows by value (:func:`select`),
reads columns as numbers (``numeric_column``: sizes with units parsed) and splits them into
groups (``group_rows``) whose repeated points are averaged (``aggregate_points``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from netsim.app.results import META_COLUMNS, build_table, load_records, load_results
from netsim.core.errors import ConfigError
from netsim.core.units import parse_size

__all__ = [
    "AGGREGATES",
    "aggregate_points",
    "as_table",
    "averaged_parameters",
    "checked_table",
    "group_rows",
    "is_missing",
    "is_size_name",
    "need_column",
    "numeric_column",
    "order_rank",
    "same_value",
    "select",
    "swept_parameters",
]

#: Reductions of repeated points ``--aggregate`` accepts.
AGGREGATES = ("mean", "min", "max")


def as_table(data: Any) -> np.ndarray:
    """The results as a structured array (a path is loaded, records are tabulated)."""
    if isinstance(data, np.ndarray):
        table = data
    elif isinstance(data, str | os.PathLike):
        table = load_results(data)
    elif isinstance(data, Sequence):
        table, _ = build_table(list(data))
    else:
        raise ConfigError(f"data: expected a results path, table or records, got {data!r}")
    if table.dtype.names and "error" in table.dtype.names and len(table):
        table = table[table["error"] == ""]
    return table


def swept_parameters(data: Any) -> list[str] | None:
    """The parameter columns (role ``param``) of a results path or records; ``None`` for
    a bare table, whose roles are unknown."""
    if isinstance(data, str | os.PathLike):
        records = load_records(data)
    elif isinstance(data, Sequence) and not isinstance(data, str | np.ndarray):
        records = list(data)
    else:
        return None
    _, info = build_table(records)
    return [c for c, role in info["roles"].items() if role == "param" and c not in META_COLUMNS]


def averaged_parameters(
    table: np.ndarray, y: str, by: Sequence[str | None], params: Sequence[str]
) -> list[str]:
    """Parameters in ``params`` that take several values among rows drawn as one point.

    Rows are one point when they agree on every column of ``by`` (x, hue, col, row); rows
    without a value of ``y`` are left out. A parameter listed here would be averaged over
    silently. Seeds and repetitions are not parameters (they are meant to be averaged).

    Examples
    --------
    >>> t = np.array([(1, "a", 8, 1.0), (1, "b", 8, 2.0)],
    ...              dtype=[("size", int), ("topo", object), ("batch", int), ("y", float)])
    >>> averaged_parameters(t, "y", ["size"], ["topo", "batch"])
    ['topo']
    >>> averaged_parameters(t, "y", ["size", "topo"], ["topo", "batch"])
    []
    """
    keys = [k for k in by if k is not None]
    names = table.dtype.names or ()
    rows = table[[not is_missing(v) for v in table[y]]] if y in names else table
    out = []
    for p in params:
        if p in keys or p not in names:
            continue
        seen: dict[tuple, str] = {}
        for r in rows:
            v = r[p]
            if is_missing(v):
                continue
            cell = tuple(str(r[k]) for k in keys)
            if seen.setdefault(cell, str(v)) != str(v):
                out.append(p)
                break
    return out


def need_column(table: np.ndarray, name: str | None, role: str) -> None:
    """Refuse a column ``name`` (given as ``role``) that the table does not have."""
    names = table.dtype.names or ()
    if name is not None and name not in names:
        raise ConfigError(f"{role}: no column {name!r} in the results; columns: {', '.join(names)}")


def checked_table(data: Any, *names: tuple[str | None, str]) -> np.ndarray:
    """``data`` as a table (:func:`as_table`) that has every ``(column, role)`` of ``names``
    (:func:`need_column`; a ``None`` column is not required)."""
    table = as_table(data)
    for name, role in names:
        need_column(table, name, role)
    return table


def select(table: np.ndarray, where: Mapping[str, Any] | None) -> np.ndarray:
    """Rows of ``table`` whose columns equal the values of ``where`` (compared as text).

    Examples
    --------
    >>> t = np.array([(1, "ring"), (2, "tree")], dtype=[("x", int), ("algo", object)])
    >>> select(t, {"algo": "tree"})["x"].tolist()
    [2]
    """
    if not where:
        return table
    mask = np.ones(len(table), dtype=bool)
    for key, value in where.items():
        need_column(table, key, "where")
        col = table[key]
        mask &= np.array([same_value(v, value) for v in col], dtype=bool)
    return table[mask]


def same_value(a: Any, b: Any) -> bool:
    """Whether two cells are equal as text or as numbers."""
    if str(a) == str(b):
        return True
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def is_size_name(name: str) -> bool:
    """Whether a column named ``name`` holds message sizes in bytes."""
    return name in ("size", "nbytes", "bytes") or "size" in name or name.endswith("_bytes")


def numeric_column(table: np.ndarray, name: str) -> np.ndarray | None:
    """The column as floats (sizes with units parsed), or None if it is categorical."""
    col = table[name]
    if col.dtype.kind in "biuf":
        return col.astype(float)
    parse = (lambda v: float(parse_size(v, name))) if is_size_name(name) else float
    try:  # "" is a missing value (a row of another kind), not a category
        values = np.array([math.nan if is_missing(v) else parse(v) for v in col], dtype=float)
    except (ConfigError, TypeError, ValueError):
        return None
    return values if np.isfinite(values).any() else None


def is_missing(v: Any) -> bool:
    """Whether a cell is empty (NaN or an empty string)."""
    return (isinstance(v, float | np.floating) and np.isnan(v)) or (isinstance(v, str) and not v)


def group_rows(table: np.ndarray, key: str | None) -> list[tuple[Any, np.ndarray]]:
    """The rows of ``table`` grouped by the values of ``key``, in first-seen order (one
    group if ``key`` is None)."""
    if key is None:
        return [(None, table)]
    values = table[key]
    order: list[Any] = []
    for v in values:
        if is_missing(v):  # rows without this column (another kind, a failed point)
            continue
        if not any(same_value(v, o) for o in order):
            order.append(v)
    if all(isinstance(v, int | float | np.number) for v in order):
        order.sort()
    return [(v, table[np.array([same_value(x, v) for x in values], dtype=bool)]) for v in order]


def order_rank(order: list[Any], v: Any) -> int:
    """Position of ``v`` in ``order`` (compared as :func:`group_rows` does)."""
    return next(i for i, o in enumerate(order) if same_value(v, o))


def aggregate_points(x: np.ndarray, y: np.ndarray, how: str = "mean") -> tuple[np.ndarray, ...]:
    """``how`` (mean, min or max), min and max of ``y`` for each distinct ``x`` (sorted),
    NaNs left out."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    xs = np.unique(x)
    fn = {"mean": np.mean, "min": np.min, "max": np.max}[how]
    mean = np.array([fn(y[x == v]) for v in xs])
    lo = np.array([y[x == v].min() for v in xs])
    hi = np.array([y[x == v].max() for v in xs])
    return xs, mean, lo, hi
