"""The experiment kinds a sweep can run, and the function a worker executes for one point.

An *experiment* is a function taking keyword parameters (quantities may be strings with
units, e.g. ``size="1MiB"``, ``topo="torus:dims=4x4"``) plus ``seed``, and returning one
flat dict of JSON-able metrics. :data:`KINDS` maps each kind name to the import path of its
function; paths are resolved lazily, so a kind whose module is missing only fails when a
sweep uses it, with a one-line :class:`~netsim.core.errors.ConfigError`.

A user-defined experiment is a *plugin*: a package declares it in the entry-point group
:data:`PLUGIN_GROUP` (``netsim.app.experiments``), e.g. in its ``pyproject.toml``::

    [project.entry-points."netsim.app.experiments"]
    my-study = "my_package.study:experiment"

and a spec then uses ``kind: my-study`` (the package must be installed on every worker).
Only these names run: a spec cannot import an arbitrary ``module:function``. From Python, a
kind can also be added to :data:`KINDS` before the sweep (local pool workers inherit it).

Examples
--------
>>> sorted(KINDS)
['collective', 'decode', 'probe', 'topo', 'traffic', 'train']
"""

from __future__ import annotations

import importlib
import importlib.metadata
import math
import os
import random
import socket
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from netsim.core.errors import ConfigError
from netsim.core.units import parse_time

__all__ = [
    "KINDS",
    "PLUGIN_GROUP",
    "check_kind",
    "check_parameters",
    "flatten_metrics",
    "probe_experiment",
    "resolve_kind",
    "run_point",
]

#: Experiment kind -> ``"module:function"`` of its entry point.
KINDS: dict[str, str] = {
    "topo": "topologies.metrics:topo_experiment",
    "traffic": "netsim.core.traffic:traffic_experiment",
    "collective": "collectives.experiment:collective_experiment",
    "decode": "workloads.decode:decode_experiment",
    "train": "workloads.train:train_experiment",
    "probe": "netsim.app.experiments:probe_experiment",
}

#: Entry-point group where installed packages declare experiment kinds (plugins).
PLUGIN_GROUP = "netsim.app.experiments"


def _plugins() -> dict[str, str]:
    """Kinds declared by installed packages: name -> ``"module:function"``."""
    return {ep.name: ep.value for ep in importlib.metadata.entry_points(group=PLUGIN_GROUP)}


def check_kind(kind: Any) -> str:
    """Return ``kind`` if it names a kind of :data:`KINDS` or an installed plugin (entry
    point group :data:`PLUGIN_GROUP`), without importing it, else raise
    :class:`~netsim.core.errors.ConfigError`."""
    if isinstance(kind, str) and kind in KINDS:
        return kind
    plugins = _plugins()
    if not isinstance(kind, str) or kind not in plugins:
        names = ", ".join(sorted({*KINDS, *plugins}))
        raise ConfigError(
            f"kind: must be one of {names} (or a plugin declared in the entry-point group "
            f"{PLUGIN_GROUP!r}), got {kind!r}"
        )
    return kind


def resolve_kind(kind: str) -> Callable[..., Mapping[str, Any]]:
    """Return the experiment function of ``kind`` (a name of :data:`KINDS` or a plugin).

    Raises
    ------
    ConfigError
        If the kind is unknown, or its module or function cannot be imported.
    """
    path = KINDS.get(check_kind(kind)) or _plugins()[kind]
    modname, _, funcname = path.partition(":")
    try:
        module = importlib.import_module(modname)
    except ImportError as exc:
        raise ConfigError(f"kind: {kind!r} is unavailable ({path}: {exc})") from None
    func = getattr(module, funcname, None)
    if not callable(func):
        raise ConfigError(f"kind: {kind!r} is unavailable ({path}: no function {funcname!r})")
    return func


def check_parameters(kind: str, params: Mapping[str, Any]) -> None:
    """Check a spec case's parameter names against what its built-in ``kind`` takes.

    A built-in kind's function declares its names as a
    :class:`~netsim.core.options.Parameters` in its ``parameters`` attribute (required
    names, optional names and its options object); a sweep calls this when it loads the
    spec, before any point runs. Plugin kinds are not imported here (they may be installed
    on the workers only), so their names are checked when their points run.

    Raises
    ------
    ConfigError
        An unknown name (with the closest known one) or a missing required one.
    """
    if kind in KINDS:
        declared = resolve_kind(kind).parameters  # type: ignore[attr-defined]
        if declared is not None:
            declared.check(params, kind)


def _jsonable(value: Any, name: str) -> Any:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v, name) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, name) for k, v in value.items()}
    return str(value)


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts with ``"."`` and convert values to JSON types.

    Lists and arrays stay lists (stored as JSON text columns); non-finite floats become
    ``None``; ``"/"`` in keys becomes ``"_"`` (HDF5 uses it as a path separator); any
    other object becomes its ``str``.

    Examples
    --------
    >>> flatten_metrics({"a": 1, "b": {"c": 2.5, "d": [1, 2]}, "e": float("nan")})
    {'a': 1, 'b.c': 2.5, 'b.d': [1, 2], 'e': None}
    """
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        name = prefix + str(key).replace("/", "_")
        if isinstance(value, Mapping):
            out.update(flatten_metrics(value, name + "."))
        else:
            out[name] = _jsonable(value, name)
    return out


def run_point(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Run one point: the experiment ``kind`` on keyword ``params`` (including ``seed``).

    This is what sweep workers execute; it is importable and picklable.

    Returns
    -------
    dict
        The experiment's metrics, flattened by :func:`flatten_metrics`.

    Raises
    ------
    ConfigError
        If the kind is unavailable or the experiment does not return a mapping.
    """
    func = resolve_kind(kind)
    result = func(**dict(params))
    if not isinstance(result, Mapping):
        raise ConfigError(
            f"kind: experiment {kind!r} must return a dict of metrics, got {type(result).__name__}"
        )
    return flatten_metrics(result)


def probe_experiment(
    *, seed: int = 0, delay: float | str = 0.0, fail: bool = False, samples: int = 8, **params: Any
) -> dict[str, Any]:
    """The ``probe`` kind: checks a sweep set-up (workers, cluster, results) without a model.

    Parameters
    ----------
    seed : int
        Seeds ``u`` and ``samples``.
    delay : float or str
        Sleep this long first (e.g. ``"50ms"``), to mimic a slow point.
    fail : bool
        Raise a :class:`~netsim.core.errors.ConfigError` (to exercise error records).
    samples : int
        Number of standard-normal draws returned in ``samples``.
    **params
        Echoed: ``sum`` is the sum of the numeric ones.

    Returns
    -------
    dict
        ``u`` (``random.Random(seed).random()``), ``sum``, ``samples`` (a list), ``host``,
        ``pid`` and ``python`` of the worker that ran it.

    Examples
    --------
    >>> r = probe_experiment(seed=1, x=2, y=3.5)
    >>> r["u"] == random.Random(1).random(), r["sum"]
    (True, 5.5)
    """
    wait = parse_time(delay, "delay")
    if wait:
        time.sleep(wait)
    if fail:
        raise ConfigError(f"fail: the probe was asked to fail, got {fail!r}")
    rng = random.Random(seed)
    u = rng.random()
    nums = [v for v in params.values() if isinstance(v, int | float) and not isinstance(v, bool)]
    return {
        "u": u,
        "sum": float(sum(nums)),
        "samples": [rng.gauss(0.0, 1.0) for _ in range(int(samples))],
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "python": sys.version.split()[0],
    }


#: The probe kind takes any names (extra ones are echoed in its record).
probe_experiment.parameters = None  # type: ignore[attr-defined]
