"""Draw a topology to PNG, PDF or SVG.

Nodes are placed at their ``pos`` attribute (every generator sets one that suits its
family: tori and meshes on a grid, dragonfly groups on a circle, trees in tiers, NVSwitch
systems as GPUs over switches, hierarchical systems by node and rail). Graphs without
``pos`` get a layout from their structural attributes (``group``, ``level``, ``node``) or,
failing that, a seeded spring layout.

Chips are circles, switches squares; edges are coloured by link type with the
colour-blind-safe Okabe-Ito palette [1]_ and named in the legend. Wraparound links of tori
(edge attribute ``wrap``) are drawn as short stubs pointing outward from both ends instead
of long lines across the grid. The title gives the name and the counts.

References
----------
.. [1] M. Okabe and K. Ito, "Color Universal Design (CUD): how to make figures and
   presentations that are friendly to colorblind people", 2008.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from netsim.core.errors import ConfigError

__all__ = ["FORMATS", "OKABE_ITO", "draw", "layout"]

#: File extensions :func:`draw` writes.
FORMATS = (".png", ".pdf", ".svg")

#: Okabe-Ito colours (black omitted: used for chips), in legend order.
OKABE_ITO = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#D55E00",  # vermillion
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
)


def _circle(n: int, radius: float, centre: tuple[float, float] = (0.0, 0.0)) -> list:
    return [
        (
            centre[0] + radius * math.cos(2 * math.pi * i / max(n, 1)),
            centre[1] + radius * math.sin(2 * math.pi * i / max(n, 1)),
        )
        for i in range(n)
    ]


def layout(G: nx.Graph) -> dict[Any, tuple[float, float]]:
    """Positions for drawing: the ``pos`` attributes if every node has one, else a layout
    from the structure (dragonfly groups on a circle, tree levels in tiers, nodes of a
    hierarchical system side by side), else a spring layout with seed 0."""
    if all("pos" in d for _, d in G.nodes(data=True)):
        return {v: tuple(map(float, d["pos"])) for v, d in G.nodes(data=True)}
    nodes = G.nodes
    if all("group" in nodes[v] for v in G):
        groups: dict[Any, list[Any]] = defaultdict(list)
        for v in G:
            groups[nodes[v]["group"]].append(v)
        centres = _circle(len(groups), 10.0)
        pos = {}
        for (_, members), c in zip(sorted(groups.items()), centres, strict=True):
            for v, p in zip(members, _circle(len(members), 2.0, c), strict=True):
                pos[v] = p
        return pos
    if all(nodes[v].get("kind") == "chip" or "level" in nodes[v] for v in G):
        tiers: dict[int, list[Any]] = defaultdict(list)
        for v in G:
            tiers[-1 if nodes[v].get("kind") == "chip" else int(nodes[v]["level"])].append(v)
        width = max(len(t) for t in tiers.values())
        return {
            v: ((i + 0.5) * width / len(members), float(lvl + 1))
            for lvl, members in tiers.items()
            for i, v in enumerate(sorted(members))
        }
    if all(nodes[v].get("kind") != "chip" or "node" in nodes[v] for v in G):
        chips = [v for v in G if nodes[v].get("kind") == "chip"]
        others = [v for v in G if nodes[v].get("kind") != "chip"]
        pos = {v: (nodes[v]["node"] * 10.0 + nodes[v].get("local_rank", 0), 0.0) for v in chips}
        span = max((p[0] for p in pos.values()), default=1.0)
        for i, v in enumerate(others):
            pos[v] = ((i + 0.5) * span / max(len(others), 1), 3.0)
        return pos
    return {v: tuple(p) for v, p in nx.spring_layout(G, seed=0).items()}


def _spacing(pos: dict[Any, tuple[float, float]], G: nx.Graph) -> float:
    lengths = [
        math.dist(pos[u], pos[v])
        for u, v, d in G.edges(data=True)
        if not d.get("wrap") and pos[u] != pos[v]
    ]
    return float(np.median(lengths)) if lengths else 1.0


def _draw_on(G: nx.Graph, ax: Axes) -> None:
    pos = layout(G)
    V = G.number_of_nodes()
    scale = 1.0 / math.sqrt(max(V, 1) / 16.0) if V > 16 else 1.0
    types = sorted({str(d.get("link", "?")) for *_, d in G.edges(data=True)})
    colour = {t: OKABE_ITO[i % len(OKABE_ITO)] for i, t in enumerate(types)}
    wrapped = _draw_links(G, ax, pos, colour, lw=max(0.3, 1.6 * scale))
    chips = [v for v in G if G.nodes[v].get("kind") == "chip"]
    switches = [v for v in G if G.nodes[v].get("kind") != "chip"]
    _draw_nodes(ax, pos, chips, switches, scale)
    _legend(ax, len(chips), len(switches), colour, wrapped)
    name = G.graph.get("name", "topology")
    ax.set_title(
        f"{name}\n{len(chips)} chips, {len(switches)} switches, {G.number_of_edges()} links"
    )
    if all("coord" in G.nodes[c] for c in chips):  # grids keep square cells
        ax.set_aspect("equal", adjustable="datalim")
    ax.autoscale_view()
    ax.margins(0.08)
    ax.set_axis_off()


def _draw_links(
    G: nx.Graph, ax: Axes, pos: dict[Any, tuple[float, float]], colour: dict[str, str], lw: float
) -> bool:
    """Draw the links coloured by link type, wraparound links as dotted outward stubs;
    return whether there were any."""
    stub = 0.35 * _spacing(pos, G)
    segs: dict[str, list] = defaultdict(list)
    wraps: dict[str, list] = defaultdict(list)
    for u, v, d in G.edges(data=True):
        t = str(d.get("link", "?"))
        pu, pv = np.asarray(pos[u]), np.asarray(pos[v])
        if d.get("wrap"):
            vec = pv - pu
            norm = float(np.hypot(*vec)) or 1.0
            out = vec / norm * stub
            wraps[t].append([tuple(pu), tuple(pu - out)])
            wraps[t].append([tuple(pv), tuple(pv + out)])
        else:
            segs[t].append([tuple(pu), tuple(pv)])
    for t in colour:
        if segs[t]:
            ax.add_collection(LineCollection(segs[t], colors=colour[t], linewidths=lw, zorder=1))
        if wraps[t]:
            ax.add_collection(
                LineCollection(wraps[t], colors=colour[t], linewidths=lw, linestyles=":", zorder=1)
            )
    return any(wraps.values())


def _draw_nodes(
    ax: Axes, pos: dict[Any, tuple[float, float]], chips: list, switches: list, scale: float
) -> None:
    """Chips as black dots, switches as white squares."""
    size = max(2.0, 120.0 * scale)
    for members, marker, face, label in (
        (chips, "o", "#000000", "chip"),
        (switches, "s", "#FFFFFF", "switch"),
    ):
        if members:
            xy = np.array([pos[v] for v in members])
            ax.scatter(
                xy[:, 0],
                xy[:, 1],
                s=size * (1.6 if marker == "s" else 1.0),
                marker=marker,
                c=face,
                edgecolors="#000000",
                linewidths=0.6 * max(scale, 0.5),
                zorder=2,
                label=label,
            )


def _legend(ax: Axes, chips: int, switches: int, colour: dict[str, str], wrapped: bool) -> None:
    """Legend outside the axes: node counts, one entry per link type, the wraparound stubs."""
    handles = [Line2D([], [], color="#000000", marker="o", linestyle="", label=f"chip ({chips})")]
    if switches:
        handles.append(
            Line2D(
                [],
                [],
                color="#000000",
                markerfacecolor="#FFFFFF",
                marker="s",
                linestyle="",
                label=f"switch ({switches})",
            )
        )
    for t, c in colour.items():
        handles.append(Line2D([], [], color=c, label=f"{t} link"))
    if wrapped:
        handles.append(Line2D([], [], color="#555555", linestyle=":", label="wraparound (stubs)"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def draw(G: nx.Graph, path: str | os.PathLike[str] | None, *, ax: Axes | None = None) -> None:
    """Draw ``G`` and write it to ``path`` (format from the extension: png, pdf or svg).

    Parameters
    ----------
    G : networkx.Graph
        A topology following the :mod:`topologies` attribute contract.
    path : str, path-like or None
        Output file. The figure is written to a temporary file next to it and renamed,
        so a failure never leaves a half-written file. ``None`` (only with ``ax``) just
        draws.
    ax : matplotlib.axes.Axes, optional
        Draw into these axes (and save their figure); by default a new figure is made.

    Raises
    ------
    ConfigError
        If the extension is not one of :data:`FORMATS`, or neither ``path`` nor ``ax`` is
        given.
    """
    if path is None:
        if ax is None:
            raise ConfigError("plot: give a file path or an ax, got neither")
        _draw_on(G, ax)
        return
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(
            f"plot: file extension must be one of {', '.join(FORMATS)}, got {str(path)!r}"
        )
    if not target.parent.is_dir():
        raise ConfigError(f"plot: directory does not exist, got {str(path)!r}")
    if ax is None:
        xy = np.array(list(layout(G).values()) or [(0.0, 0.0)])
        span = np.ptp(xy, axis=0) + 1e-9
        aspect = float(np.clip(span[0] / span[1], 0.6, 2.5))
        side = min(14.0, 4.0 + 0.5 * math.sqrt(G.number_of_nodes()))
        w, h = (side, side / aspect) if aspect >= 1 else (side * aspect, side)
        fig = Figure(figsize=(w + 2.5, max(h, 3.5)), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    _draw_on(G, ax)
    fd, tmp = tempfile.mkstemp(suffix=suffix, prefix=f".{target.stem}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format=suffix[1:], dpi=150)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
