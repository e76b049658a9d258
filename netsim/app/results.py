"""Sweep results in HDF5: crash-safe writing by the driver, loading as a table.

Layout of a results file (``FORMAT = "netsim-results/2"``)::

    /                 attrs: format, netsim_version, spec (YAML text), started (ISO 8601,
                      first run), updated, points; previous_specs (JSON list of the
                      specs of earlier runs, when a different spec was appended)
    /records          one JSON text per point (the source of truth, see below)
    /table/<column>   one dataset per column, all of the same length: float64, int64, bool,
                      or variable-length UTF-8 strings; attrs ``columns`` (JSON list, in
                      order), ``roles`` (JSON {column: "meta"|"param"|"metric"}) and
                      ``json_columns`` (columns holding JSON text, e.g. latency samples)

A point's record is ``{"point_id", "point_index", "kind", "params", "seed", "repetition", "metrics",
"wall_s", "error", "netsim_version"}`` (the version of the process that ran the point; the
root attribute is the driver's, of the last run). ``point_index`` is the point's position in
the expanded spec: records are stored in completion order (expensive points run first), and
:func:`build_table` puts rows back in spec order when every record has it (files written
before it existed keep their stored order; after ``--append`` the indices of the two specs
interleave). Columns: the meta fields (``error`` is
``""`` when the point succeeded), then every parameter, then every metric. A metric named like a parameter or a
meta field is dropped if it holds the same value and stored as ``result.<name>`` otherwise.
Nested metric dicts are flattened with ``"."``; list metrics (samples for a CDF, per-link
utilisation ``[[u, v, value], ...]``) are JSON text columns (:func:`column_arrays`).

Versions. ``netsim-results/2`` names the network model that ran (``packet/cut-through``,
``analytical/alpha-beta``, ...) ``network_model`` in a record's metrics; version 1 named it
``model``, which in a decode or train sweep clashed with the LLM parameter ``model`` (the
table then held it as ``result.model``). A version 1 file is still read: its records, and
those of its journal, get ``network_model`` for ``model`` as they are loaded, and a resumed
sweep rewrites the file as version 2 (:data:`READ_FORMATS`).

Crash safety. HDF5 files are not safe against ``kill -9`` in the middle of a write, so the
driver never updates the file in place. Each finished point is appended as one JSON line to
``<file>.journal`` (flushed and fsync'ed); every few seconds and at the end the whole file is
rewritten to ``<file>.tmp``, fsync'ed and atomically renamed over ``<file>``, and then the
journal is emptied. The file is therefore always a complete, readable snapshot; loading and
resuming read the file and the journal (a torn last journal line is ignored), so a killed
sweep loses at most the points that were running.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from netsim._version import __version__
from netsim.core.errors import ResultsError

__all__ = [
    "FORMAT",
    "META_COLUMNS",
    "READ_FORMATS",
    "ResultsWriter",
    "build_table",
    "check_results_file",
    "column_arrays",
    "load_dataframe",
    "load_records",
    "load_results",
    "results_info",
    "spec_order",
]

FORMAT = "netsim-results/2"
#: The formats this version reads: version 1 records are upgraded as they are loaded.
READ_FORMATS = ("netsim-results/1", FORMAT)
META_COLUMNS = ("point_id", "kind", "seed", "repetition", "wall_s", "error", "netsim_version")


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _h5py():
    import h5py

    return h5py


# --------------------------------------------------------------------------- journal


def _journal_path(path: Path) -> Path:
    return path.with_name(path.name + ".journal")


def _check_record(rec: Any, where: str) -> dict[str, Any]:
    if not isinstance(rec, dict) or not isinstance(rec.get("point_id"), str):
        raise ResultsError(f"results: {where} holds a record without point_id: {str(rec)[:80]}")
    return rec


def _read_journal(path: Path) -> list[dict[str, Any]]:
    """Records of a journal; a torn (unterminated or unparsable) last line is ignored."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        last = i == len(lines) - 1  # no newline after it: torn by a kill
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            if last:
                break
            raise ResultsError(f"results: journal {path} is corrupted at line {i + 1}") from None
        if last:
            break
        out.append(_check_record(rec, f"journal {path}"))
    return out


# --------------------------------------------------------------------------- reading


def _open_checked(path: Path):
    h5py = _h5py()
    if not path.exists():
        raise ResultsError(f"results: no such file {str(path)!r}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ResultsError(
            f"results: {str(path)!r} is not a readable HDF5 file (corrupted or foreign: {exc})"
        ) from None
    fmt = _format_of(f)
    if fmt in READ_FORMATS and "records" not in f:
        f.close()
        raise ResultsError(
            f"results: {str(path)!r} has the netsim format attribute but no records "
            f"(truncated or not written by netsim)"
        )
    if fmt not in READ_FORMATS:
        f.close()
        raise ResultsError(_format_refused(path, fmt))
    return f


def _format_of(f: Any) -> Any:
    """The open file's format attribute: text, a Python number, None if absent, or the
    repr of whatever else a foreign file holds there (an array, a compound value)."""
    try:
        fmt = f.attrs.get("format")
    except (OSError, TypeError, ValueError) as exc:  # a type h5py cannot read
        return f"<unreadable: {exc}>"
    if isinstance(fmt, np.generic):
        fmt = fmt.item()
    if isinstance(fmt, bytes):
        fmt = fmt.decode("utf-8", "replace")
    return fmt if fmt is None or isinstance(fmt, str | int | float) else repr(fmt)


def _format_refused(path: Path, fmt: Any) -> str:
    """The one line that refuses a file of format ``fmt`` (not one of :data:`READ_FORMATS`)."""
    reads = f"this netsim reads {', '.join(READ_FORMATS)}"
    if isinstance(fmt, str) and fmt.startswith("netsim-results/"):
        return (
            f"results: {str(path)!r} has format {fmt!r} (another netsim version wrote it); {reads}"
        )
    return f"results: {str(path)!r} was not written by netsim (format attribute {fmt!r}; {reads})"


def check_results_file(path: str | os.PathLike[str]) -> str:
    """Raise :class:`~netsim.core.errors.ResultsError` unless ``path`` is a readable netsim
    results file (checks the format attribute only; the records are not read).

    Returns
    -------
    str
        The spec (YAML text) the file records, ``""`` if none.
    """
    with _open_checked(Path(path)) as f:
        return str(_attrs(f, Path(path)).get("spec", ""))


def _attrs(f: Any, path: Path) -> dict[str, Any]:
    """The open file's attributes, text decoded and numpy scalars as Python values."""
    out = {}
    for k in f.attrs:
        try:
            v = f.attrs[k]
            out[k] = v.decode() if isinstance(v, bytes) else v
        except (UnicodeDecodeError, OSError, TypeError) as exc:
            raise ResultsError(
                f"results: {str(path)!r} has a corrupted attribute {k!r} ({exc})"
            ) from None
        if isinstance(out[k], np.generic):
            out[k] = out[k].item()
    return out


def _read_file(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    with _open_checked(path) as f:
        attrs = _attrs(f, path)
        try:
            texts = f["records"].asstr()[()]
            recs = [_check_record(json.loads(t), str(path)) for t in texts]
        except (json.JSONDecodeError, TypeError, ValueError, OSError) as exc:
            raise ResultsError(f"results: {str(path)!r} has corrupted records ({exc})") from None
    return attrs, recs


def _merge(*groups: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for group in groups:
        for rec in group:
            out[rec["point_id"]] = rec
    return out


def _upgrade_v1(rec: dict[str, Any]) -> dict[str, Any]:
    """A version 1 record as version 2 writes it: its metric ``model`` (the network model)
    is ``network_model``."""
    metrics = rec.get("metrics")
    if isinstance(metrics, dict) and "model" in metrics and "network_model" not in metrics:
        metrics = {("network_model" if k == "model" else k): v for k, v in metrics.items()}
        rec = {**rec, "metrics": metrics}
    return rec


def _as_current(fmt: Any, records: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``records`` (by point_id) of a file of format ``fmt`` and of its journal, in the
    current format.

    A journal is written by the version that wrote its file: a writer rewrites the file in
    the current format and empties the journal as soon as it opens it."""
    if fmt == FORMAT:
        return records
    return {k: _upgrade_v1(r) for k, r in records.items()}


def _read_all(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The file's attributes and every record of the file and its journal, by point_id,
    in the current format."""
    attrs, recs = _read_file(path)
    merged = _merge(recs, _read_journal(_journal_path(path)))
    return attrs, _as_current(attrs.get("format"), merged)


def load_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every point record of a results file, including points still in its journal.

    Raises
    ------
    ResultsError
        If the file is missing, corrupted, or not a netsim results file.
    """
    return list(_read_all(Path(path))[1].values())


def results_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The file's attributes (``format``, ``netsim_version``, ``spec``, ``started``, ...)
    plus ``points`` and ``failed`` counted over file and journal."""
    attrs, merged = _read_all(Path(path))
    attrs["points"] = len(merged)
    attrs["failed"] = sum(1 for r in merged.values() if r.get("error"))
    return attrs


# --------------------------------------------------------------------------- table


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _column(values: Sequence[Any]) -> tuple[np.ndarray, bool]:
    """Typed array of one column and whether it holds JSON text.

    All bools: bool; all ints: int64; numbers (bools and ints with a missing value
    included): float64 with NaN for missing; otherwise strings ("" for missing), lists and
    dicts as JSON text.
    """
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present) and len(present) == len(values):
        return np.array(values, dtype=bool), False
    if all(_is_num(v) or isinstance(v, bool) for v in present):
        ints = present and all(isinstance(v, int) and -(2**63) <= v < 2**63 for v in present)
        if ints and len(present) == len(values):
            return np.array(values, dtype=np.int64), False
        return np.array([math.nan if v is None else float(v) for v in values]), False
    is_json = any(isinstance(v, list | dict) for v in present)
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if v is None:
            out[i] = ""
        elif isinstance(v, str):
            out[i] = v
        else:
            out[i] = json.dumps(v)
    return out, is_json


def _rows(records: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    roles: dict[str, str] = {c: "meta" for c in META_COLUMNS}
    rows = []
    for rec in records:
        row = {c: rec.get(c) for c in META_COLUMNS}
        row["error"] = row["error"] or ""
        for k, v in (rec.get("params") or {}).items():
            k = str(k).replace("/", "_")
            roles.setdefault(k, "param")
            row[k] = v
        for k, v in (rec.get("metrics") or {}).items():
            if k in row or roles.get(k) in ("meta", "param"):
                if k in row and row[k] == v:
                    continue
                k = f"result.{k}"
            roles.setdefault(k, "metric")
            row[k] = v
        rows.append(row)
    return rows, roles


def spec_order(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """``records`` sorted by ``point_index`` (their order in the sweep spec, whatever the
    completion order) when every record has one; otherwise in the given order.

    Examples
    --------
    >>> [r["point_id"] for r in spec_order([{"point_id": "b", "point_index": 1},
    ...                                     {"point_id": "a", "point_index": 0}])]
    ['a', 'b']
    >>> [r["point_id"] for r in spec_order([{"point_id": "b", "point_index": 1},
    ...                                     {"point_id": "a"}])]
    ['b', 'a']
    """
    recs = list(records)
    if all(isinstance(r.get("point_index"), int) for r in recs):
        return sorted(recs, key=lambda r: r["point_index"])
    return recs


def build_table(records: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, dict[str, Any]]:
    """Columns of ``records`` as a numpy structured array, and column info.

    Returns
    -------
    table : numpy.ndarray
        Structured array, one row per point (in spec order, see :func:`spec_order`); fields float64, int64, bool or object (str).
    info : dict
        ``roles`` ({column: "meta"|"param"|"metric"}) and ``json_columns`` (list).
    """
    rows, roles = _rows(spec_order(records))
    arrays, json_cols = {}, []
    for name in roles:
        arr, is_json = _column([r.get(name) for r in rows])
        arrays[name] = arr
        if is_json:
            json_cols.append(name)
    dtype = [(n, a.dtype) for n, a in arrays.items()]
    table = np.empty(len(rows), dtype=dtype)
    for n, a in arrays.items():
        table[n] = a
    return table, {"roles": roles, "json_columns": json_cols}


def load_results(path: str | os.PathLike[str], *, ok_only: bool = False) -> np.ndarray:
    """Load a results file as a numpy structured array (one row per point).

    Parameters
    ----------
    path : path
        A file written by :func:`netsim.app.sweep.run_sweep` (its journal, if any, is read too).
    ok_only : bool
        Drop the points whose ``error`` is not empty.

    Raises
    ------
    ResultsError
        If the file is missing, corrupted, or not a netsim results file.
    """
    table, _ = build_table(load_records(path))
    if ok_only and len(table):
        table = table[table["error"] == ""]
    return table


def load_dataframe(path: str | os.PathLike[str], *, ok_only: bool = False):
    """Load a results file as a pandas DataFrame (pandas is optional).

    Raises
    ------
    ImportError
        If pandas is not installed.
    """
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(
            "load_dataframe needs pandas (pip install pandas); "
            "load_results() returns a numpy structured array without it"
        ) from None
    return pd.DataFrame.from_records(load_results(path, ok_only=ok_only))


def column_arrays(table: np.ndarray, name: str) -> list[np.ndarray]:
    """Decode a JSON text column (e.g. latency samples) into one float array per row."""
    out = []
    for text in table[name]:
        out.append(np.asarray(json.loads(text) if text else [], dtype=float))
    return out


# --------------------------------------------------------------------------- writing


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_file(path: Path, attrs: Mapping[str, Any], records: Sequence[Mapping]) -> None:
    h5py = _h5py()
    tmp = path.with_name(path.name + ".tmp")
    text = h5py.string_dtype("utf-8")
    table, info = build_table(records)
    with h5py.File(tmp, "w") as f:
        for k, v in attrs.items():
            f.attrs[k] = v
        f.attrs["points"] = len(records)
        f.create_dataset(
            "records",
            data=np.array([json.dumps(r, default=str) for r in records], dtype=object),
            dtype=text,
        )
        g = f.create_group("table")
        g.attrs["columns"] = json.dumps(list(table.dtype.names or ()))
        g.attrs["roles"] = json.dumps(info["roles"])
        g.attrs["json_columns"] = json.dumps(info["json_columns"])
        for name in table.dtype.names or ():
            col = table[name]
            g.create_dataset(name, data=col, dtype=text if col.dtype == object else col.dtype)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path)


def _previous_specs(attrs: Mapping[str, Any], path: Path) -> list[str]:
    """The specs of earlier runs appended to the file (its ``previous_specs``)."""
    try:
        history = json.loads(str(attrs.get("previous_specs") or "[]"))
    except json.JSONDecodeError:
        history = None
    if not isinstance(history, list):
        raise ResultsError(
            f"results: {str(path)!r} has a corrupted attribute 'previous_specs' (must be a "
            f"JSON list of specs, got {str(attrs.get('previous_specs'))[:80]!r})"
        )
    return history


class ResultsWriter:
    """The driver's writer: journal every record at once, rewrite the HDF5 file atomically.

    Opening an existing file resumes it (its records and journal are read; a foreign or
    corrupted file raises :class:`~netsim.core.errors.ResultsError`). Only one writer may hold a
    file (an exclusive lock on the journal). Use as a context manager.

    Parameters
    ----------
    path : path
        The HDF5 file.
    spec_text : str
        The sweep spec (YAML) recorded in the file.
    flush_interval : float
        Minimum seconds between rewrites of the HDF5 file (a rewrite of a large file pushes
        the next one back to ten times its own duration).
    """

    def __init__(
        self, path: str | os.PathLike[str], spec_text: str = "", *, flush_interval: float = 2.0
    ) -> None:
        self.path = Path(path)
        self.flush_interval = float(flush_interval)
        self._journal_path = _journal_path(self.path)
        attrs: dict[str, Any] = {"format": FORMAT}
        old: list[dict[str, Any]] = []
        if self.path.exists():
            attrs, old = _read_file(self.path)
        history = _previous_specs(attrs, self.path)
        self._journal = open(self._journal_path, "ab")  # noqa: SIM115 (closed in close())
        try:
            fcntl.flock(self._journal.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._journal.close()
            raise ResultsError(
                f"results: {str(self.path)!r} is being written by another sweep "
                f"(its journal is locked)"
            ) from None
        merged = _merge(old, _read_journal(self._journal_path))
        self._records = _as_current(attrs.get("format"), merged)
        old_spec = str(attrs.get("spec", ""))
        if spec_text and old_spec and old_spec != spec_text:
            history.append(old_spec)  # an appended study: keep the spec of every run
        self.attrs = {
            "format": FORMAT,
            "netsim_version": __version__,
            "spec": spec_text or old_spec,
            "started": str(attrs.get("started") or _now()),
        }
        if history:
            self.attrs["previous_specs"] = json.dumps(history)
        self._last = 0.0
        self._gap = self.flush_interval
        self.flush()

    def ids(self) -> set[str]:
        """point_ids of every stored record (failed ones included)."""
        return set(self._records)

    def done_ids(self) -> set[str]:
        """point_ids of the records without an error."""
        return {k for k, r in self._records.items() if not r.get("error")}

    def add(self, record: Mapping[str, Any]) -> None:
        """Journal ``record`` durably, then rewrite the file if ``flush_interval`` passed."""
        rec = _check_record(dict(record), "add()")
        self._journal.write(json.dumps(rec, default=str).encode() + b"\n")
        self._journal.flush()
        os.fsync(self._journal.fileno())
        self._records[rec["point_id"]] = rec
        if time.monotonic() - self._last >= self._gap:
            self.flush()

    def flush(self) -> None:
        """Rewrite the HDF5 file atomically with every record, then empty the journal."""
        t0 = time.monotonic()
        attrs = {**self.attrs, "updated": _now()}
        _write_file(self.path, attrs, list(self._records.values()))
        self._journal.truncate(0)
        self._journal.flush()
        os.fsync(self._journal.fileno())
        self._last = time.monotonic()
        # Large files: keep rewriting under ~10% of the time (the journal holds the rest).
        self._gap = max(self.flush_interval, 10.0 * (self._last - t0))

    def close(self) -> None:
        """Final rewrite; remove the journal and release the lock."""
        if self._journal.closed:
            return
        try:
            self.flush()
            self._journal_path.unlink(missing_ok=True)
        finally:
            self._journal.close()

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
