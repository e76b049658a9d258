"""The ``collective`` experiment kind, size sweeps, and the latency / busbw figure.

:func:`collective_experiment` is what a sweep point of kind ``collective`` runs (a thin
wrapper over :func:`collectives.run_collective`); :func:`sweep_sizes` runs one collective
over a range of sizes and algorithms; :func:`plot_sizes` draws latency (log-log) and bus
bandwidth against size, one line per algorithm.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from collectives.api import run_collective
from collectives.options import CollectiveOptions
from netsim.core.errors import ConfigError
from netsim.core.units import parse_size_range

__all__ = ["collective_experiment", "plot_sizes", "sweep_sizes"]


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


def sweep_sizes(
    topo: Any, op: str, algos: Sequence[str], sizes: Any, **kw: Any
) -> list[dict[str, Any]]:
    """Run ``op`` with every algorithm of ``algos`` at every size of ``sizes``.

    ``sizes`` is a list or a range string such as ``"8B:1GiB:x2"``; other keywords go to
    :func:`run_collective`. Returns one result dict per (algorithm, size).
    """
    size_list = parse_size_range(sizes, "sizes")
    return [run_collective(topo, op, a, n, **kw) for a in algos for n in size_list]


def plot_sizes(rows: Sequence[dict[str, Any]], path: str | Path) -> list[Path]:
    """Draw latency (log-log) and busbw vs size, one line per algorithm; return files written.

    Writes ``path`` and, next to a raster file, the same figure as PDF (vector).
    """
    if not rows:
        raise ConfigError("rows: nothing to plot, got no results")
    import matplotlib.pyplot as plt

    from netsim.app.plots import Layout, plot_latency_vs_size, save_figure

    # One line for auto, whichever algorithm it picked at each size.
    records = [
        {
            "point_id": str(i),
            "params": {
                "algo": "auto" if r.get("algo_requested") == "auto" else str(r["algo"]),
                "size": r["size"],
            },
            "metrics": {"time_s": r["time_s"], "busbw": r["busbw"]},
        }
        for i, r in enumerate(rows)
    ]
    r0 = rows[0]
    title = f"{r0['op']} on {r0['topo']} ({r0['group_size']} ranks, {r0['model']})"
    fig = plot_latency_vs_size(
        records, hue="algo", title=title, layout=Layout(xlabel="size per rank (bytes)")
    )
    path = Path(path)
    written = [save_figure(fig, path)]
    if path.suffix.lower() not in (".pdf", ".svg"):
        written.append(save_figure(fig, path.with_suffix(".pdf")))
    plt.close(fig)
    return written
