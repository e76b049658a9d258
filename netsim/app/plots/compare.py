"""Comparison figure: an nccl-tests measurement against netsim (``netsim compare --out``).

:func:`plot_comparison` draws two panels, time and bus bandwidth against message size,
the measurement as points and the simulation as a line, one colour per op, one legend.
"""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from netsim.app.nccltests import NcclTestsComparison
from netsim.app.plots._axes import axis_label, log_axis, size_axis
from netsim.app.plots._figure import figure_legend, finish_figure
from netsim.app.plots._theme import OKABE_ITO, RC_STYLE
from netsim.core.errors import ConfigError

__all__ = ["plot_comparison"]


def plot_comparison(
    cmp: NcclTestsComparison,
    *,
    out: str | os.PathLike[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Time (log-log) and busbw (GB/s) against size: measured points, simulated line.

    Parameters
    ----------
    cmp : NcclTestsComparison
        From :func:`netsim.app.nccltests.compare_nccl_tests`.
    out : path, optional
        Save to this ``.pdf``/``.svg``/``.png``.
    title : str, optional
        Figure title (default: the topology, algorithm and model).
    """
    if not cmp.rows:
        raise ConfigError("comparison: no rows to plot")
    m = cmp.meta
    times = np.array([r[k] for r in cmp.rows for k in ("measured_time_s", "simulated_time_s")])
    tlabel, tscale = axis_label("time_s", times)
    several = len(m["ops"]) > 1
    with plt.rc_context(RC_STYLE):
        fig, (ax_t, ax_b) = plt.subplots(1, 2, figsize=(6.8, 2.8))
        for i, op in enumerate(m["ops"]):
            rows = sorted((r for r in cmp.rows if r["op"] == op), key=lambda r: r["size"])
            size = np.array([r["size"] for r in rows], dtype=float)
            keep = size > 0
            color = OKABE_ITO[i % len(OKABE_ITO)]
            who = f"{op}: " if several else ""
            for ax, key, scale in (
                (ax_t, "time_s", tscale),
                (ax_b, "busbw", 1e9),
            ):
                meas = np.array([r[f"measured_{key}"] for r in rows]) / scale
                sim = np.array([r[f"simulated_{key}"] for r in rows]) / scale
                ax.plot(size[keep], meas[keep], "o", color=color, mfc="none",
                        label=f"{who}measured ({os.path.basename(m['source'])})")  # fmt: skip
                ax.plot(size[keep], sim[keep], "-", color=color,
                        label=f"{who}netsim {'/'.join(m['algo'])}")  # fmt: skip
        for ax in (ax_t, ax_b):
            size_axis(ax, "x")
            ax.set_xlabel("message size (bytes)")
        log_axis(ax_t, "y")
        ax_t.set_ylabel(tlabel)
        ax_b.set_ylabel("bus bandwidth (GB/s)")
        ax_b.set_ylim(bottom=0)
        figure_legend(fig)
        default = (
            f"{', '.join(m['ops'])} on {m['topo']}, {m['nranks']} ranks: {m['network_model']}, "
            f"library {m['library']}"
        )
        return finish_figure(fig, out, title if title is not None else default)
