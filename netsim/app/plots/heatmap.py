"""Heatmap figure: link utilisation drawn on the topology (meshes, tori).

:func:`plot_link_heatmap` colours the links of a graph by utilisation (wraparound links
as outward stubs); ``heatmap_panels`` is ``--kind heatmap`` of
:func:`netsim.app.plots.plot_results`: one panel per ``col`` value, each the mean utilisation
of its rows on their topology.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from netsim.app.plots._axes import short_names, value_label, value_text
from netsim.app.plots._data import group_rows, need_column
from netsim.app.plots._figure import finish_figure, save_figure
from netsim.app.plots._theme import RC_STYLE
from netsim.core.errors import ConfigError

__all__ = [
    "heatmap_panels",
    "plot_link_heatmap",
]


def _util_items(utilisation: Any) -> list[tuple[Any, Any, float]]:
    try:
        if isinstance(utilisation, str):
            utilisation = json.loads(utilisation)
        if isinstance(utilisation, Mapping):
            items = []
            for k, v in utilisation.items():
                u, w = k if isinstance(k, tuple) else str(k).split("-", 1)
                items.append((u, w, float(v)))
            return items
        return [(u, w, float(v)) for u, w, v in utilisation]
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"utilisation: expected [[u, v, value], ...] or {{(u, v): value}}, got "
            f"{str(utilisation)[:60]!r} ({exc})"
        ) from None


def plot_link_heatmap(
    graph: Any,
    utilisation: Any,
    *,
    ax: Any = None,
    out: str | os.PathLike[str] | None = None,
    title: str | None = None,
    vmax: float | None = 1.0,
) -> Figure:
    """Links of ``graph`` drawn at the nodes' ``pos``, coloured by utilisation (viridis).

    Wraparound links of tori (edge attribute ``wrap``) are drawn as two short stubs pointing
    outward from their ends, as in :func:`topologies.draw.draw`, not as lines across the grid.

    Parameters
    ----------
    graph : networkx.Graph or str
        The topology (or a spec for :func:`topologies.registry.build`); nodes need ``pos``.
    utilisation : mapping, list or JSON text
        ``{(u, v): value}``, ``{"u-v": value}`` or ``[[u, v, value], ...]``, fractions of
        the link bandwidth. Both directions of a link: the larger one is drawn.
    ax : matplotlib Axes, optional
        Draw into it (no colour bar, no title, not saved) instead of a new figure.
    vmax : float or None
        Top of the colour scale (``None``: the largest value).
    """
    if isinstance(graph, str):
        from topologies.registry import build

        graph = build(graph)
    best: dict[frozenset, float] = {}
    for u, w, v in _util_items(utilisation):
        key = frozenset((_node(graph, u), _node(graph, w)))
        best[key] = max(best.get(key, 0.0), v)
    pos = {n: graph.nodes[n].get("pos") for n in graph.nodes}
    if any(p is None for p in pos.values()):
        raise ConfigError("graph: every node needs a 'pos' attribute to draw a heatmap")
    plain = [
        np.hypot(*np.subtract(pos[u], pos[w]))
        for u, w, d in graph.edges(data=True)
        if not d.get("wrap") and pos[u] != pos[w]
    ]
    stub = 0.35 * (float(np.median(plain)) if plain else 1.0)
    segs, vals = [], []
    for u, w, d in graph.edges(data=True):
        value = best.get(frozenset((u, w)), 0.0)
        pu, pw = np.asarray(pos[u], dtype=float), np.asarray(pos[w], dtype=float)
        if d.get("wrap"):
            vec = pw - pu
            out_vec = vec / (float(np.hypot(*vec)) or 1.0) * stub
            segs += [[tuple(pu), tuple(pu - out_vec)], [tuple(pw), tuple(pw + out_vec)]]
            vals += [value, value]
        else:
            segs.append([tuple(pu), tuple(pw)])
            vals.append(value)
    with plt.rc_context(RC_STYLE):
        own = ax is None
        if own:
            fig, ax = plt.subplots(figsize=(3.6, 3.2))
        else:
            fig = ax.figure
        lc = LineCollection(segs, cmap="viridis", linewidths=3.0)
        lc.set_array(np.array(vals))
        lc.set_clim(0.0, vmax if vmax is not None else max(vals, default=1.0) or 1.0)
        ax.add_collection(lc)
        chips = [n for n, k in graph.nodes(data="kind") if k == "chip"]
        other = [n for n in graph.nodes if n not in set(chips)]
        for nodes, marker in ((chips, "s"), (other, "o")):
            if nodes:
                xy = np.array([pos[n] for n in nodes], dtype=float)
                ax.scatter(xy[:, 0], xy[:, 1], s=12, marker=marker, color="0.3", zorder=3)
        ax.autoscale()
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        if not own:
            return fig
        cb = fig.colorbar(lc, ax=ax, fraction=0.046, pad=0.04)
        cb.set_label("link utilisation (fraction of bandwidth)")
        return finish_figure(fig, out, title)


def _mean_utilisation(cells: Sequence[Any]) -> dict[tuple[Any, Any], float]:
    """Per directed link, the mean over rows (seeds, repetitions) of its utilisation."""
    total: dict[tuple[Any, Any], float] = {}
    for cell in cells:
        for u, w, v in _util_items(cell):
            total[(u, w)] = total.get((u, w), 0.0) + v
    return {k: v / len(cells) for k, v in total.items()}


def heatmap_panels(
    table: np.ndarray, y: str, col: str | None, out: Any, title: str | None
) -> Figure:
    """``--kind heatmap``: one panel per ``col`` value, each the mean link utilisation of
    its rows drawn on their (single) topology, one colour bar for all panels."""
    need_column(table, "topo", "heatmap")
    need_column(table, col, "col")
    if table[y].dtype != object or not any(str(v).startswith("[") for v in table[y]):
        raise ConfigError(
            f"y: a heatmap needs a column of [[u, v, utilisation], ...] lists, got {y!r}"
        )
    groups = group_rows(table, col)
    names = short_names([value_text(v) for v, _ in groups])
    if not groups or not len(table):
        raise ConfigError("data: no successful points to plot (after filtering)")
    with plt.rc_context(RC_STYLE):
        n = len(groups)
        fig, axes = plt.subplots(1, n, figsize=(0.6 + 3.4 * n, 3.2), squeeze=False)
        for ax, (value, sub) in zip(axes[0], groups, strict=True):
            topos = sorted({str(t) for t in sub["topo"]})
            if len(topos) != 1:
                raise ConfigError(
                    f"heatmap: a panel needs one topology, got {len(topos)} "
                    f"({', '.join(topos)}); add --where topo=... or --col topo"
                )
            cells = [c for c in sub[y] if c]
            if not cells:
                raise ConfigError(f"y: column {y!r} is empty in the rows to plot")
            plot_link_heatmap(topos[0], _mean_utilisation(cells), ax=ax)
            ax.set_title(value_label(col, value, names) if col is not None else topos[0])
        sm = plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(0.0, 1.0))
        cb = fig.colorbar(sm, ax=list(axes[0]), fraction=0.046, pad=0.04)
        cb.set_label("link utilisation (fraction of bandwidth)")
        if title:
            fig.suptitle(title)
        if out is not None:
            save_figure(fig, out)
        return fig


def _node(graph: Any, name: Any) -> Any:
    if name in graph.nodes:
        return name
    try:
        n = int(name)
    except (TypeError, ValueError):
        n = None
    if n in graph.nodes:
        return n
    raise ConfigError(f"utilisation: node {name!r} is not in the graph")
