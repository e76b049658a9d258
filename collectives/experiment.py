"""The ``collective`` experiment kind, size sweeps, and the latency / busbw figure.

:func:`collective_experiment` is what a sweep point of kind ``collective`` runs (a thin
wrapper over :func:`collectives.run_collective`); :func:`sweep_sizes` runs one collective
over a range of sizes and algorithms (its figure is
:func:`netsim.app.plots.plot_collective_sizes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from collectives.api import run_collective
from collectives.options import CollectiveOptions
from netsim.core.errors import ConfigError
from netsim.core.options import Parameters
from netsim.core.units import parse_size_range

__all__ = ["collective_experiment", "sweep_sizes"]


def collective_experiment(**params: Any) -> dict[str, Any]:
    """Sweep entry point (kind ``collective``): keyword parameters of :func:`run_collective`.

    ``topo``, ``op`` (default ``"allreduce"``), ``algo`` (default ``"ring"``) and ``size``
    are read by name; every other parameter is an option of
    :class:`~collectives.options.CollectiveOptions` (the names of ``netsim collective``'s
    flags, with ``_``), checked and unit-parsed by it; ``seed`` defaults to 0. A sweep does
    not compute the analytical estimate unless a point asks for it (``estimate: true``;
    ``analytical_time_s`` is None otherwise).

    Examples
    --------
    >>> r = collective_experiment(topo="torus:dims=4", size="1KiB", backend="analytical")
    >>> r["op"], r["algo"], r["size"]
    ('allreduce', 'ring', 1024)
    """
    p = dict(params)
    try:
        topo = p.pop("topo")
    except KeyError:
        raise ConfigError("topo: the collective experiment needs a topology, got none") from None
    op = p.pop("op", "allreduce")
    algo = p.pop("algo", "ring")
    size = p.pop("size", None)
    p.setdefault("estimate", False)
    return run_collective(topo, op, algo, size, CollectiveOptions.from_mapping(p))


collective_experiment.parameters = Parameters(  # type: ignore[attr-defined]
    ("topo",), ("op", "algo", "size"), CollectiveOptions
)


def sweep_sizes(
    topo: Any, op: str, algos: Sequence[str], sizes: Any, **kw: Any
) -> list[dict[str, Any]]:
    """Run ``op`` with every algorithm of ``algos`` at every size of ``sizes``.

    ``sizes`` is a list or a range string such as ``"8B:1GiB:x2"``; other keywords go to
    :func:`run_collective`. Returns one result dict per (algorithm, size).
    """
    size_list = parse_size_range(sizes, "sizes")
    return [run_collective(topo, op, a, n, **kw) for a in algos for n in size_list]
