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
from netsim.errors import ConfigError
from netsim.units import parse_size_range

__all__ = ["collective_experiment", "plot_sizes", "sweep_sizes"]


def collective_experiment(**params: Any) -> dict[str, Any]:
    """Sweep entry point (kind ``collective``): keyword parameters of :func:`run_collective`.

    ``topo``, ``op`` (default ``"allreduce"``), ``algo`` (default ``"ring"``) and ``size``
    are read by name; quantities may be unit strings; ``seed`` defaults to 0. A sweep does
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
    return run_collective(topo, op, algo, size, **p)


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, (ax_t, ax_b) = plt.subplots(1, 2, figsize=(10, 4))
    by_algo: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        # One line for auto, whichever algorithm it picked at each size.
        auto = r.get("algo_requested") == "auto"
        by_algo.setdefault("auto" if auto else str(r["algo"]), []).append(r)
    for algo, rs in by_algo.items():
        rs = sorted(rs, key=lambda r: r["size"])
        x = [r["size"] for r in rs]
        ax_t.plot(x, [r["time_s"] * 1e6 for r in rs], marker="o", ms=3, label=algo)
        ax_b.plot(x, [r["busbw"] / 1e9 for r in rs], marker="o", ms=3, label=algo)
    r0 = rows[0]
    title = f"{r0['op']} on {r0['topo']} ({r0['group_size']} ranks, {r0['model']})"
    ax_t.set(xscale="log", yscale="log", xlabel="size per rank (bytes)", ylabel="time (us)")
    ax_b.set(xscale="log", xlabel="size per rank (bytes)", ylabel="bus bandwidth (GB/s)")
    for ax in (ax_t, ax_b):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(title="algorithm")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    written = [path]
    fig.savefig(path)
    if path.suffix.lower() not in (".pdf", ".svg"):
        pdf = path.with_suffix(".pdf")
        fig.savefig(pdf)
        written.append(pdf)
    plt.close(fig)
    return written
