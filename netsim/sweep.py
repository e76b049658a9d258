"""Parameter sweeps: a YAML spec expanded into points, run on a process pool or Dask.

Spec (YAML or a dict)::

    name: allreduce-vs-size        # optional
    kind: collective               # experiment kind (netsim.experiments.KINDS)
    fixed: {op: allreduce, backend: analytical}
    mode: product                  # product (default) or zip
    sweep:                         # param -> values: a list, a scalar, or a range
      size: {sizes: "8B:1GiB:x4"}  #   sizes with units -> bytes (int)
      load: {floats: "0.1:0.9:0.2"}
      ranks: {ints: "2:64:x2"}
      algo: [ring, tree]
    seeds: 2                       # a count (0..n-1) or a list; default [0]
    repetitions: 1                 # repeats of each (params, seed); default 1

``sweep`` may instead be a list of *cases*, each a mapping with ``sweep`` and optional
``kind``, ``fixed`` and ``mode`` (overriding the top level); the points of all cases are
concatenated, so one study can mix kinds or exclude combinations that do not apply.

Every point has a stable ``point_id`` (a hash of kind, parameters with seed, repetition);
:func:`run_sweep` skips points already in the results file, so re-running the same command
resumes a sweep. See ``docs/sweeps.md``.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import itertools
import json
import os
import time
import traceback
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from netsim._version import __version__
from netsim.errors import ConfigError, NetsimError
from netsim.experiments import check_kind, run_point
from netsim.results import ResultsWriter, check_results_file
from netsim.units import parse_float_range, parse_size_range
from netsim.validate import require_choice, require_int

__all__ = [
    "Point",
    "SweepSpec",
    "SweepSummary",
    "execute_point",
    "expand_values",
    "load_spec",
    "point_id",
    "run_sweep",
]

_TOP_KEYS = ("name", "description", "kind", "fixed", "mode", "sweep", "seeds", "repetitions")
_CASE_KEYS = ("kind", "fixed", "mode", "sweep")
_MODES = ("product", "zip")
_RANGES = ("sizes", "floats", "ints")


@dataclass(frozen=True)
class Point:
    """One point of a sweep: the experiment ``kind`` on ``params`` (``seed`` included)."""

    kind: str
    params: Mapping[str, Any]
    repetition: int
    point_id: str


def point_id(kind: str, params: Mapping[str, Any], repetition: int = 0) -> str:
    """Stable identity of a point: SHA-256 (first 16 hex digits) of its canonical JSON.

    Examples
    --------
    >>> point_id("topo", {"topo": "ring:n=4", "seed": 0}) == point_id(
    ...     "topo", {"seed": 0, "topo": "ring:n=4"})
    True
    """
    text = json.dumps(
        {"kind": kind, "params": dict(params), "repetition": int(repetition)},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _ints(text: Any, name: str) -> list[int]:
    if isinstance(text, list | tuple):
        return [require_int(name, v) for v in text]
    parts = str(text).split(":")
    if len(parts) == 1:
        return [require_int(name, v.strip()) for v in str(text).split(",") if v.strip()]
    if len(parts) != 3:
        raise ConfigError(f"{name}: expected START:STOP:STEP or START:STOP:xFACTOR, got {text!r}")
    lo, hi = require_int(name, parts[0].strip()), require_int(name, parts[1].strip())
    step = parts[2].strip()
    if step.startswith("x"):
        factor = require_int(name, step[1:], min=2)
        if lo < 1 or hi < lo:
            raise ConfigError(f"{name}: geometric range needs 1 <= START <= STOP, got {text!r}")
        out, x = [], lo
        while x <= hi:
            out.append(x)
            x *= factor
        return out
    inc = require_int(name, step.lstrip("+"), min=1)
    if hi < lo:
        raise ConfigError(f"{name}: STOP must be >= START, got {text!r}")
    return list(range(lo, hi + 1, inc))


def expand_values(name: str, value: Any) -> list[Any]:
    """The values of one swept parameter.

    A list gives its items; ``{sizes: "8B:1GiB:x4"}`` sizes in bytes
    (:func:`netsim.units.parse_size_range`); ``{floats: "0.1:0.9:0.2"}`` floats (inclusive);
    ``{ints: "1:64:x2"}`` integers; any other scalar a single value.

    Examples
    --------
    >>> expand_values("size", {"sizes": "1KiB:4KiB:x2"})
    [1024, 2048, 4096]
    >>> expand_values("ranks", {"ints": "2:16:x2"})
    [2, 4, 8, 16]
    """
    if isinstance(value, list | tuple):
        if not value:
            raise ConfigError(f"{name}: swept values must not be empty, got {value!r}")
        return list(value)
    if isinstance(value, Mapping):
        if len(value) != 1 or next(iter(value)) not in _RANGES:
            raise ConfigError(
                f"{name}: a range must be one of {{sizes: ...}}, {{floats: ...}}, {{ints: ...}}, "
                f"got {dict(value)!r}"
            )
        rkind, text = next(iter(value.items()))
        if rkind == "sizes":
            out: list[Any] = parse_size_range(text, name)
        elif rkind == "floats":
            out = parse_float_range(text, name)
        else:
            out = _ints(text, name)
        if not out:
            raise ConfigError(f"{name}: range gives no values, got {dict(value)!r}")
        return out
    return [value]


def _mapping(where: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {value!r}")
    return {str(k): v for k, v in value.items()}


@dataclass
class SweepSpec:
    """A parsed sweep spec (see the module docstring); :meth:`points` expands it."""

    cases: list[dict[str, Any]]
    seeds: list[int]
    repetitions: int = 1
    name: str = ""
    text: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    def points(self) -> list[Point]:
        """Every point in order (cases, then product/zip order, then seed, repetition);
        duplicates (same point_id) appear once."""
        seen: set[str] = set()
        out: list[Point] = []
        for case in self.cases:
            for params in _combinations(case):
                for seed in self.seeds:
                    for rep in range(self.repetitions):
                        p = {**case["fixed"], **params, "seed": seed}
                        pid = point_id(case["kind"], p, rep)
                        if pid not in seen:
                            seen.add(pid)
                            out.append(Point(case["kind"], p, rep, pid))
        return out


def _combinations(case: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    names = list(case["sweep"])
    lists = [case["sweep"][n] for n in names]
    combos: Iterable[tuple[Any, ...]]
    if case["mode"] == "zip":
        lengths = {n: len(v) for n, v in zip(names, lists, strict=True)}
        if len(set(lengths.values())) > 1:
            raise ConfigError(f"sweep: zip mode needs lists of equal length, got {lengths}")
        combos = zip(*lists, strict=True)
    else:
        combos = itertools.product(*lists)
    for combo in combos:
        yield dict(zip(names, combo, strict=True))


def _case(raw: Mapping[str, Any], defaults: Mapping[str, Any], where: str) -> dict[str, Any]:
    unknown = sorted(set(raw) - set(_CASE_KEYS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r}; a case has keys {', '.join(_CASE_KEYS)}"
        )
    kind = raw.get("kind", defaults.get("kind"))
    if kind is None:
        raise ConfigError(f"kind: required (an experiment kind) in {where}, got None")
    check_kind(kind)
    mode = require_choice(f"{where}.mode", raw.get("mode", defaults.get("mode", "product")), _MODES)
    fixed = {
        **_mapping("fixed", defaults.get("fixed")),
        **_mapping(f"{where}.fixed", raw.get("fixed")),
    }
    swept = {
        k: expand_values(k, v) for k, v in _mapping(f"{where}.sweep", raw.get("sweep")).items()
    }
    for name in (*fixed, *swept):
        if name == "seed":
            raise ConfigError("seed: set seeds with the top-level 'seeds' key, not as a parameter")
    both = sorted(set(fixed) & set(swept))
    if both:
        raise ConfigError(f"{both[0]}: is both fixed and swept in {where}")
    return {"kind": kind, "mode": mode, "fixed": fixed, "sweep": swept}


def load_spec(spec: Mapping[str, Any] | str | os.PathLike[str]) -> SweepSpec:
    """Parse a sweep spec from a dict, a YAML file path, or YAML text (with a newline).

    Raises
    ------
    ConfigError
        With one line naming the bad key and value.
    """
    text = ""
    if isinstance(spec, Mapping):
        raw = dict(spec)
    else:
        text = str(spec)
        if "\n" not in text:
            path = Path(text)
            if not path.is_file():
                raise ConfigError(f"spec: no such file, got {text!r}")
            text = path.read_text(encoding="utf-8")
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0] if str(exc) else "invalid YAML"
            raise ConfigError(f"spec: invalid YAML ({first})") from None
        if not isinstance(raw, Mapping):
            raise ConfigError(f"spec: expected a YAML mapping at the top, got {raw!r}")
        raw = dict(raw)
    unknown = sorted(set(raw) - set(_TOP_KEYS))
    if unknown:
        raise ConfigError(f"spec: unknown key {unknown[0]!r}; keys are {', '.join(_TOP_KEYS)}")
    seeds_raw = raw.get("seeds", [0])
    if isinstance(seeds_raw, int) and not isinstance(seeds_raw, bool):
        seeds = list(range(require_int("seeds", seeds_raw, min=1)))
    elif isinstance(seeds_raw, list | tuple) and seeds_raw:
        seeds = [require_int("seeds", s, min=0) for s in seeds_raw]
    else:
        raise ConfigError(f"seeds: expected a count >= 1 or a non-empty list, got {seeds_raw!r}")
    reps = require_int("repetitions", raw.get("repetitions", 1), min=1)
    sweep = raw.get("sweep", {})
    if isinstance(sweep, list):
        if not sweep:
            raise ConfigError("sweep: a list of cases must not be empty, got []")
        cases = [_case(_mapping(f"sweep[{i}]", c), raw, f"sweep[{i}]") for i, c in enumerate(sweep)]
    else:
        cases = [_case({"sweep": sweep}, raw, "spec")]
    text = text or yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)
    return SweepSpec(cases, seeds, reps, str(raw.get("name", "")), text, raw)


def execute_point(point: Point) -> dict[str, Any]:
    """Run ``point`` and return its record; an exception becomes the record's ``error``.

    The record has ``point_id``, ``kind``, ``params`` (without ``seed``), ``seed``,
    ``repetition``, ``metrics``, ``wall_s``, ``error`` (``None`` or one line),
    ``netsim_version`` (of the process that ran it) and, on error, ``traceback``.
    Importable and picklable: process-pool and Dask workers run it.
    """
    t0 = time.perf_counter()
    metrics: dict[str, Any] = {}
    error = tb = None
    try:
        metrics = run_point(point.kind, point.params)
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else ""
        error = msg if isinstance(exc, NetsimError) else f"{type(exc).__name__}: {msg}"
        tb = traceback.format_exc(limit=-8)
    record = _base_record(point, error)
    record.update(metrics=metrics, wall_s=time.perf_counter() - t0)
    if tb:
        record["traceback"] = tb
    return record


def _base_record(point: Point, error: str | None) -> dict[str, Any]:
    params = dict(point.params)
    return {
        "point_id": point.point_id,
        "kind": point.kind,
        "params": {k: v for k, v in params.items() if k != "seed"},
        "seed": params.get("seed", 0),
        "repetition": point.repetition,
        "metrics": {},
        "wall_s": 0.0,
        "error": error,
        "netsim_version": __version__,
    }


@dataclass
class SweepSummary:
    """What :func:`run_sweep` did; ``errors`` counts the points of this run that failed by
    their one-line error message."""

    out: str
    total: int
    skipped: int
    ran: int
    failed: int
    wall_s: float
    executor: str
    errors: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict."""
        return {**self.__dict__, "errors": dict(self.errors)}


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="pt", desc="sweep", disable=not enabled, dynamic_ncols=True)


def _run_pool(pending: list[Point], workers: int, on_done) -> None:
    window = 4 * workers
    todo = iter(pending)
    with cf.ProcessPoolExecutor(max_workers=workers) as pool:
        running: set[cf.Future] = set()
        try:
            for p in itertools.islice(todo, window):
                running.add(pool.submit(execute_point, p))
            while running:
                done, running = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    on_done(fut.result())
                    nxt = next(todo, None)
                    if nxt is not None:
                        running.add(pool.submit(execute_point, nxt))
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


#: Seconds to wait for a Dask scheduler (``--scheduler``) to answer.
CONNECT_TIMEOUT = 10.0


def _dask_client(scheduler: str | None, cluster: str | None, workers: int | None):
    """A connected ``dask.distributed.Client`` and the LocalCluster it owns (or ``None``)."""
    if scheduler is not None and not isinstance(scheduler, str):
        raise ConfigError(f"scheduler: expected an address like tcp://host:8786, got {scheduler!r}")
    if cluster is not None:
        require_choice("cluster", cluster, ("local",))
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        opt = "scheduler" if scheduler is not None else "cluster"
        raise ConfigError(
            f"{opt}: needs Dask, which is not installed; pip install 'netsim[cluster]'"
        ) from None
    if scheduler is not None:
        try:
            return Client(scheduler, timeout=CONNECT_TIMEOUT), None
        except (OSError, ValueError, TypeError) as exc:  # refused, timed out, bad address
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(f"scheduler: cannot connect to {scheduler!r} ({first})") from None
    n = workers or os.cpu_count() or 1
    lc = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0")
    try:
        return Client(lc), lc
    except BaseException:
        lc.close()
        raise


def _run_dask(client, pending: list[Point], on_done) -> None:
    from dask.distributed import as_completed

    window = 4 * max(1, sum(client.nthreads().values()))
    todo = iter(pending)
    points: dict[str, Point] = {}

    def submit(p: Point):
        fut = client.submit(execute_point, p, pure=False)
        points[fut.key] = p
        return fut

    ac = as_completed([submit(p) for p in itertools.islice(todo, window)])
    try:
        for fut in ac:
            p = points.pop(fut.key)
            try:
                record = fut.result()
            except Exception as exc:  # the worker died (e.g. KilledWorker): record, go on
                record = _base_record(p, f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
            on_done(record)
            nxt = next(todo, None)
            if nxt is not None:
                ac.add(submit(nxt))
            fut.release()
    except BaseException:
        client.cancel(list(ac.futures))
        raise


def _check_out(out: Any) -> Path:
    """The results path, its directory created; a directory is refused."""
    if not isinstance(out, str | os.PathLike) or not str(out):
        raise ConfigError(f"out: expected a results file path (.h5), got {out!r}")
    path = Path(out)
    if path.is_dir():
        raise ConfigError(f"out: must be a file (.h5), got the directory {str(out)!r}")
    if path.exists():
        check_results_file(path)  # a foreign file is refused before any cluster starts
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def run_sweep(
    spec: Mapping[str, Any] | str | os.PathLike[str] | SweepSpec,
    out: str | os.PathLike[str],
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    cluster: str | None = None,
    progress: bool = True,
    retry_failed: bool = True,
    flush_interval: float = 2.0,
) -> SweepSummary:
    """Run every point of ``spec`` not yet in ``out`` and write the results (HDF5).

    Parameters
    ----------
    spec : dict, path, YAML text or SweepSpec
        The sweep (see the module docstring).
    out : path
        The HDF5 results file; created (with its directory), or resumed if it exists
        (finished points are skipped).
    workers : int, optional
        Worker processes (default: the CPU count). ``1`` runs in this process (debugging).
        With ``cluster="local"``, the number of Dask workers.
    scheduler : str, optional
        Address of a running Dask scheduler, e.g. ``"tcp://10.0.0.1:8786"``.
    cluster : {"local"}, optional
        Start a Dask ``LocalCluster`` for this sweep.
    progress : bool
        Show a tqdm progress bar (points done, rate, ETA) on stderr.
    retry_failed : bool
        Run again the points whose stored record is an error (default) or skip them.
    flush_interval : float
        Seconds between atomic rewrites of the HDF5 file (every point is journaled at once).

    Returns
    -------
    SweepSummary

    Raises
    ------
    ConfigError
        For a bad spec or options. :class:`~netsim.errors.ResultsError` if ``out`` exists
        but is not a netsim results file.
    """
    sp = spec if isinstance(spec, SweepSpec) else load_spec(spec)
    if workers is not None:
        workers = require_int("workers", workers, min=1)
    if scheduler is not None and cluster is not None:
        raise ConfigError(f"cluster: give --scheduler or --cluster, not both, got {cluster!r}")
    points = sp.points()
    out = _check_out(out)
    t0 = time.perf_counter()
    errors: dict[str, int] = {}
    # Connect first: a scheduler that cannot be reached leaves no results file behind.
    client = lc = None
    if scheduler is not None or cluster is not None:
        client, lc = _dask_client(scheduler, cluster, workers)
    try:
        with ResultsWriter(out, sp.text, flush_interval=flush_interval) as writer:
            skip = writer.done_ids() if retry_failed else writer.ids()
            pending = [p for p in points if p.point_id not in skip]
            bar = _progress(len(pending), progress and bool(pending))

            def on_done(record: dict[str, Any]) -> None:
                writer.add(record)
                if record["error"] is not None:
                    errors[record["error"]] = errors.get(record["error"], 0) + 1
                    bar.set_postfix(failed=sum(errors.values()), refresh=False)
                bar.update(1)

            try:
                if client is not None:
                    executor = f"dask:{scheduler or 'local'}"
                    _run_dask(client, pending, on_done)
                elif (workers or os.cpu_count() or 1) == 1 or len(pending) <= 1:
                    executor = "serial"
                    for p in pending:
                        on_done(execute_point(p))
                else:
                    executor = f"pool:{workers or os.cpu_count()}"
                    _run_pool(pending, workers or os.cpu_count() or 1, on_done)
            finally:
                bar.close()
    finally:
        if client is not None:
            client.close()
        if lc is not None:
            lc.close()
    failed = sum(errors.values())
    return SweepSummary(
        out=str(out),
        total=len(points),
        skipped=len(points) - len(pending),
        ran=len(pending),
        failed=failed,
        wall_s=time.perf_counter() - t0,
        executor=executor,
        errors=errors,
    )
