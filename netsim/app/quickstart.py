"""``netsim quickstart``: a small built-in study run on the local machine.

:data:`QUICKSTART_SPEC` is the sweep (a module constant, so it can be tuned in one place):
all-reduce latency and bus bandwidth vs message size across the five fabric families and
the main algorithms, and decode token latency of a preset model on several fabrics.
:func:`quickstart` runs it with :func:`netsim.app.sweep.run_sweep` into ``DIR/results.h5`` and
draws the figures (``DIR/*.png`` and ``DIR/*.pdf``) with :mod:`netsim.app.plots`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from netsim.app.plots import plot_breakdown, plot_latency_vs_size, plot_line
from netsim.app.results import load_results
from netsim.app.sweep import SweepSummary, run_sweep
from netsim.core.errors import NetsimError

__all__ = ["QUICKSTART_FIGURES", "QUICKSTART_SPEC", "draw_figures", "quickstart"]

_FABRICS = [
    "dgx-h100",  # NVSwitch scale-up node: 8 H100, 4 NVSwitch, 18 NVLink4 (topologies.nvswitch)
    "fat-tree-k4:reduction=true",  # 16 hosts, Al-Fares et al. 2008; SHARP-capable switches
    "torus:dims=4x4",  # 16-chip 2D torus (TPU-style ICI links)
    "dragonfly:a=4,p=2,h=1",  # 5 groups of 4 routers, 40 chips (Kim et al. 2008 a, p, h)
    "wafer:dies=4x4",  # 16-die wafer-scale mesh
]

#: The collective study times the hardware alone (``library="none"``: no launch or step
#: cost, no protocol, no NCCL channel ceiling) so the curves compare fabrics, not
#: communication libraries (``netsim collective`` applies NCCL's costs and protocols of
#: :mod:`collectives.calibration` and :mod:`collectives.protocols` by default). Zeroing only
#: the latencies would keep the protocol NCCL's tuner picks with its latencies (LL up to a
#: few MiB on a DGX H100) and halve the payload of the mid sizes.
_FABRIC_ONLY = {"library": "none"}

#: The quickstart study: about 220 points, about two minutes on two cores. Collectives run
#: on the packet engine (cut-through, credit flow control) from 8 B to 32 MiB; the decode
#: study times Llama 3 70B with tensor parallelism 8 on each fabric, also on the packet
#: engine.
QUICKSTART_SPEC: dict[str, Any] = {
    "name": "quickstart",
    "description": "all-reduce latency vs size on five fabric families; Llama 3 70B decode",
    "seeds": [0],
    "sweep": [
        {
            "kind": "collective",
            "fixed": {"op": "allreduce", "backend": "packet", **_FABRIC_ONLY},
            "sweep": {
                "topo": _FABRICS,
                "algo": ["ring", "tree", "oneshot"],
                "size": {"sizes": "8B:32MiB:x4"},
            },
        },
        {
            "kind": "collective",
            "fixed": {
                "op": "allreduce",
                "backend": "packet",
                "algo": "innetwork",
                **_FABRIC_ONLY,
            },
            "sweep": {
                "topo": ["dgx-h100", "fat-tree-k4:reduction=true"],
                "size": {"sizes": "8B:32MiB:x4"},
            },
        },
        {
            "kind": "decode",
            "fixed": {
                "model": "llama3-70b",
                "chip": "h100",
                "context": 4096,
                "tp": 8,
                "backend": "packet",
            },
            "sweep": {"topo": _FABRICS, "batch": [1, 16, 64]},
        },
    ],
}

#: Figures drawn when their columns are present: file stem -> (figure kind, experiment
#: kind whose points it uses, options of the plotting function).
QUICKSTART_FIGURES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "allreduce_latency": (
        "latency-size",
        "collective",
        {"x": "size", "y": "time_s", "hue": "algo", "col": "topo"},
    ),
    "decode_breakdown": (
        "breakdown",
        "decode",
        {
            "x": "topo",
            "components": ("compute_s", "memory_s", "launch_s", "fabric_s"),
            "total": "token_latency_s",
            "col": "batch",
        },
    ),
}


def _draw(table: np.ndarray, stem: str, how: str, opts: Mapping[str, Any], out: Path) -> list[Path]:
    names = set(table.dtype.names or ())
    needed = [v for k, v in opts.items() if k in ("x", "y", "col", "total", "hue")]
    if not len(table) or not set(needed) <= names:
        return []
    paths = []
    for ext in ("png", "pdf"):
        path = out / f"{stem}.{ext}"
        if how == "latency-size":
            plot_latency_vs_size(table, **opts, out=path)
        elif how == "breakdown":
            plot_breakdown(table, **opts, out=path)
        else:
            plot_line(table, opts["x"], opts["y"], hue=opts.get("hue"), out=path)
        paths.append(path)
    return paths


def draw_figures(
    results: str | os.PathLike[str],
    outdir: str | os.PathLike[str],
    figures: Mapping[str, tuple[str, str, dict[str, Any]]] | None = None,
) -> tuple[list[Path], dict[str, str]]:
    """Draw each figure of ``figures`` (default :data:`QUICKSTART_FIGURES`) from the
    successful points of its kind in ``results``, as ``outdir/<stem>.png`` and ``.pdf``.

    Returns
    -------
    (paths, skipped)
        The files written, and ``{stem: reason}`` for the figures not drawn (no points of
        that kind or missing columns).
    """
    table = load_results(results, ok_only=True)
    out = Path(outdir)
    paths: list[Path] = []
    skipped: dict[str, str] = {}
    for stem, (how, kind, opts) in (figures or QUICKSTART_FIGURES).items():
        sub = table[table["kind"] == kind] if len(table) else table
        try:
            drawn = _draw(sub, stem, how, opts, out)
        except NetsimError as exc:
            skipped[stem] = str(exc)
            continue
        if drawn:
            paths.extend(drawn)
        else:
            skipped[stem] = f"no successful '{kind}' points with the needed columns"
    return paths, skipped


def quickstart(
    out: str | os.PathLike[str] = "netsim-quickstart",
    *,
    workers: int | None = None,
    spec: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the quickstart study into directory ``out`` and draw its figures.

    Parameters
    ----------
    out : path
        Directory for ``results.h5`` and the figures (created; re-running resumes).
    workers : int, optional
        Worker processes (default: the CPU count).
    spec : mapping, optional
        Another sweep to run instead of :data:`QUICKSTART_SPEC` (e.g. a tiny one in tests).
    progress : bool
        Show the progress bar.

    Returns
    -------
    dict
        ``summary`` (:class:`~netsim.app.sweep.SweepSummary`), ``results`` (path), ``figures``
        (paths) and ``skipped_figures`` ({stem: reason}).
    """
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    results = outdir / "results.h5"
    summary: SweepSummary = run_sweep(
        dict(spec or QUICKSTART_SPEC), results, workers=workers, progress=progress
    )
    figures, skipped = draw_figures(results, outdir)
    return {
        "summary": summary,
        "results": results,
        "figures": figures,
        "skipped_figures": skipped,
    }
