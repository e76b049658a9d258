"""Parameter sweeps: a YAML spec expanded into points, run on a process pool or Dask.

Spec (YAML or a dict)::

    name: allreduce-vs-size        # optional
    kind: collective               # experiment kind (netsim.app.experiments.KINDS)
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
import itertools
import os
import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netsim._version import __version__
from netsim.app.experiments import run_point
from netsim.app.results import ResultsWriter, check_results_file
from netsim.app.sweep_cost import estimate_cost
from netsim.app.sweep_spec import (
    MAX_POINTS,
    Point,
    SweepSpec,
    expand_values,
    load_spec,
    load_yaml,
    point_id,
)
from netsim.core.errors import ConfigError, NetsimError
from netsim.core.validate import require_choice, require_int, require_writable

__all__ = [
    "CONNECT_TIMEOUT",
    "MAX_POINTS",
    "WORKERS_PER_CPU",
    "Point",
    "SweepSpec",
    "SweepSummary",
    "execute_point",
    "expand_values",
    "load_spec",
    "max_workers",
    "point_id",
    "run_sweep",
]


def execute_point(point: Point) -> dict[str, Any]:
    """Run ``point`` and return its record; an exception becomes the record's ``error``.

    The record has ``point_id``, ``point_index`` (position in the spec), ``kind``, ``params`` (without ``seed``), ``seed``,
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
        "point_index": point.index,
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


#: Seconds between a pool worker's checks that the sweep driver is still alive.
PARENT_POLL_S = 0.5


def _exit_with_parent(parent: int) -> None:
    """Pool-worker initializer: a daemon thread ends the worker soon after the driver
    ``parent`` is gone (``kill -9`` of the driver leaves no orphan simulating on)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="netsim-parent-watchdog", daemon=True).start()


def _run_pool(pending: list[Point], workers: int, on_done) -> None:
    window = 4 * workers
    todo = iter(pending)
    with cf.ProcessPoolExecutor(
        max_workers=workers, initializer=_exit_with_parent, initargs=(os.getpid(),)
    ) as pool:
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


#: Seconds to wait for a Dask scheduler (``--scheduler``) to answer, handshake included.
CONNECT_TIMEOUT = 10.0
#: Local workers (pool processes or LocalCluster workers) per CPU at most: more only add
#: memory and start-up time on a CPU-bound simulation.
WORKERS_PER_CPU = 4


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
        _probe_scheduler(scheduler)
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


def _probe_scheduler(address: str) -> None:
    """Connect to ``address`` and complete Dask's handshake within CONNECT_TIMEOUT (the
    Client's own timeout does not cover the handshake, so a listener that is not a Dask
    scheduler could hang it or send garbage)."""
    import asyncio

    from distributed.comm import connect

    async def handshake() -> None:
        comm = await connect(address, timeout=CONNECT_TIMEOUT)
        await comm.close()

    try:
        asyncio.run(asyncio.wait_for(handshake(), CONNECT_TIMEOUT + 1.0))
    except TimeoutError:
        raise ConfigError(
            f"scheduler: cannot connect to {address!r} (no Dask handshake within "
            f"{CONNECT_TIMEOUT:g} s, netsim.app.sweep.CONNECT_TIMEOUT: is it a Dask scheduler?)"
        ) from None
    except Exception as exc:  # refused, bad address, or an answer that is not Dask's
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"scheduler: cannot connect to {address!r} ({first})") from None


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


def by_cost(points: list[Point]) -> list[Point]:
    """``points`` with the most expensive first (:func:`netsim.app.sweep_cost.estimate_cost`;
    points not estimated last, ties in spec order), so the progress bar's ETA is honest."""
    costs = [estimate_cost(p.kind, p.params) for p in points]
    order = sorted(range(len(points)), key=lambda i: (costs[i] is None, -(costs[i] or 0), i))
    return [points[i] for i in order]


def _check_out(out: Any, sp: SweepSpec, append: bool) -> Path:
    """The results path, its directory created. A directory, an unwritable path, a foreign
    file, or a results file of a different spec (unless ``append``) is refused."""
    path = require_writable("out", out)
    if path.exists():
        old = check_results_file(path)  # a foreign file is refused before any cluster starts
        if old and not append and not _same_spec(old, sp.text):
            raise ConfigError(
                f"out: {str(out)!r} holds the results of a different spec; resume it with the "
                f"same spec, add these points to it with --append (append=True), or choose "
                f"another file"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _same_spec(old_text: str, new_text: str) -> bool:
    """Whether two spec texts parse to the same spec (comments and layout aside)."""
    if old_text == new_text:
        return True
    try:
        return load_yaml(old_text) == load_yaml(new_text)
    except ConfigError:
        return False


def max_workers() -> int:
    """Most local worker processes a sweep may start: :data:`WORKERS_PER_CPU` per CPU."""
    return WORKERS_PER_CPU * (os.cpu_count() or 1)


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
    append: bool = False,
) -> SweepSummary:
    """Run every point of ``spec`` not yet in ``out`` and write the results (HDF5).

    Parameters
    ----------
    spec : dict, path, YAML text or SweepSpec
        The sweep (see the module docstring).
    out : path
        The HDF5 results file; created (with its directory), or resumed if it exists
        (finished points are skipped). An existing file made from a different spec is
        refused unless ``append``.
    workers : int, optional
        Worker processes (default: the CPU count; at most :func:`max_workers`). ``1`` runs
        in this process (debugging). With ``cluster="local"``, the number of Dask workers.
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
    append : bool
        Add the points of ``spec`` to a results file made from another spec (the file keeps
        every spec: ``spec`` is the latest, ``previous_specs`` the others).

    Returns
    -------
    SweepSummary

    Raises
    ------
    ConfigError
        For a bad spec or options. :class:`~netsim.core.errors.ResultsError` if ``out`` exists
        but is not a netsim results file.
    """
    sp = spec if isinstance(spec, SweepSpec) else load_spec(spec)
    if workers is not None:
        limit = f"{WORKERS_PER_CPU} per CPU, netsim.app.sweep.WORKERS_PER_CPU"
        workers = require_int("workers", workers, min=1, max=max_workers(), hint=limit)
    if scheduler is not None and cluster is not None:
        raise ConfigError(f"cluster: give --scheduler or --cluster, not both, got {cluster!r}")
    out = _check_out(out, sp, append)
    points = sp.points()
    t0 = time.perf_counter()
    errors: dict[str, int] = {}
    # Connect first: a scheduler that cannot be reached leaves no results file behind.
    client = lc = None
    if scheduler is not None or cluster is not None:
        client, lc = _dask_client(scheduler, cluster, workers)
    try:
        with ResultsWriter(out, sp.text, flush_interval=flush_interval) as writer:
            skip = writer.done_ids() if retry_failed else writer.ids()
            pending = by_cost([p for p in points if p.point_id not in skip])
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
