"""Figures a reviewer accepts: tick labels that do not overlap (every figure kind, measured
with matplotlib's text bounding boxes), one legend per figure, shared axes, label and title
options, short panel names, and no silent averaging over swept parameters."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from netsim.app.cli import main
from netsim.app.plots import (
    Layout,
    averaged_parameters,
    plot_breakdown,
    plot_cdf,
    plot_comparison,
    plot_latency_vs_size,
    plot_line,
    plot_load_latency,
    plot_results,
)
from netsim.core.errors import ConfigError

SIZES = [2**k for k in range(3, 34)]  # 8 B .. 8 GiB: 31 powers of two on one axis
TOPOS = ("fat_tree:k=4,bandwidth=400Gbps", "torus:dims=4x4,bandwidth=400Gbps")


def _records():
    out = []
    for i, (topo, algo, size, seed) in enumerate(
        itertools.product(TOPOS, ("ring", "tree"), SIZES, (0, 1))
    ):
        t = 2e-6 * (1 + (algo == "tree")) + size / 100e9 * (1 + 0.01 * seed)
        out.append(
            {
                "point_id": str(i),
                "kind": "collective",
                "params": {"topo": topo, "algo": algo, "size": size},
                "seed": seed,
                "metrics": {"time_s": t, "busbw": size / t, "load": size / SIZES[-1],
                            "samples_s": [t, 2 * t, 30 * t]},
            }
        )  # fmt: skip
    return out


def _decode_records():
    names = ("dgx-h100", "dgx-h100-superpod-su", "torus:dims=8x8", "dragonfly-72", "nvl72")
    return [
        {
            "point_id": f"d{i}",
            "kind": "decode",
            "params": {"topo": topo},
            "metrics": {"compute_s": 1e-5, "memory_s": 2e-5 * (i + 1), "fabric_s": 3e-6,
                        "token_latency_s": 1.3e-5 + 2e-5 * (i + 1)},
        }
        for i, topo in enumerate(names)
    ]  # fmt: skip


def _tick_labels(axis, renderer):
    lo, hi = sorted(axis.get_view_interval())
    out = []
    for tick in axis.get_major_ticks() + axis.get_minor_ticks():
        for label in (tick.label1, tick.label2):
            if label.get_visible() and label.get_text() and lo <= tick.get_loc() <= hi:
                out.append(label)
    return out


def assert_no_overlap(fig):
    """No two tick labels of one axis share a pixel (bounding boxes from the renderer)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels = _tick_labels(axis, renderer)
            boxes = [lb.get_window_extent(renderer) for lb in labels]
            for (a, ta), (b, tb) in itertools.combinations(zip(boxes, labels, strict=True), 2):
                assert not a.overlaps(b), (
                    f"{ax.get_title() or ax.get_ylabel()}: tick labels {ta.get_text()!r} and "
                    f"{tb.get_text()!r} overlap"
                )


def _compare():
    from netsim.app.nccltests import NcclTestsComparison

    rows = [
        {"op": "allreduce", "size": s, "measured_time_s": 1e-5 + s / 3e11,
         "simulated_time_s": 1.1e-5 + s / 3.5e11, "measured_busbw": s / (1e-5 + s / 3e11),
         "simulated_busbw": s / (1.1e-5 + s / 3.5e11)}
        for s in SIZES
    ]  # fmt: skip
    meta = {"ops": ["allreduce"], "algo": ["ring"], "source": "ar.log", "topo": "dgx-h100",
            "nranks": 8, "network_model": "packet", "library": "nccl"}  # fmt: skip
    return NcclTestsComparison(rows, meta)


FIGURES = {
    "line": lambda: plot_line(_records(), "size", "time_s", hue="algo", col="topo"),
    "latency-size": lambda: plot_latency_vs_size(_records(), hue="algo", col="topo"),
    "load-latency": lambda: plot_load_latency(
        _records(), x="load", y="time_s", hue="algo", col="topo"
    ),
    "cdf": lambda: plot_cdf(_records(), y="samples_s", hue="algo", col="topo"),
    "breakdown": lambda: plot_breakdown(_decode_records(), x="topo"),
    "heatmap": lambda: plot_results(
        [
            {
                "point_id": "h",
                "params": {"topo": "torus:dims=4x4"},
                "metrics": {"util": [[0, 1, 0.5], [1, 2, 0.25]]},
            }
        ],
        None,
        "util",
        kind="heatmap",
    ),
    "compare": lambda: plot_comparison(_compare()),
}


@pytest.mark.parametrize("kind", sorted(FIGURES))
def test_tick_labels_do_not_overlap(kind):
    fig = FIGURES[kind]()
    assert_no_overlap(fig)


def test_overlap_check_fails_on_crowded_labels():
    # the check itself: every power of two labelled on a narrow axis must be caught
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot(SIZES, SIZES)
    ax.set_xscale("log", base=2)
    ax.set_xticks(SIZES, [f"{s}B" for s in SIZES])
    with pytest.raises(AssertionError, match="overlap"):
        assert_no_overlap(fig)
    plt.close(fig)


def test_size_ticks_are_powers_of_1024_on_a_wide_range():
    fig = plot_latency_vs_size(_records(), hue="algo", col="topo")
    fig.canvas.draw()
    labels = [t.get_text() for t in fig.axes[-1].get_xticklabels() if t.get_text()]
    assert labels == ["1KiB", "1MiB", "1GiB"]


def test_one_legend_short_panel_names_and_labels():
    layout = Layout(sharey=True, xlabel="message (B)", ylabel="latency")
    fig = plot_results(_records(), "size", "time_s", hue="algo", col="topo", layout=layout,
                       title="T")  # fmt: skip
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["ring", "tree"]
    # axes: row-major, latency row over the busbw row, one column per topology
    assert [ax.get_title() for ax in fig.axes[:2]] == ["fat_tree:k=4", "torus:dims=4x4"]
    top = fig.axes[0]
    assert top.get_ylabel() == "latency" and fig.axes[2].get_ylabel() == "bus bandwidth (GB/s)"
    assert fig.axes[1].get_ylabel() == "" and fig.axes[-1].get_xlabel() == "message (B)"
    assert top.get_shared_y_axes().joined(top, fig.axes[1])
    assert not top.get_shared_y_axes().joined(top, fig.axes[2])
    assert fig.get_suptitle() == "T"


def test_rows_of_panels():
    fig = plot_results(_records(), "size", "time_s", hue="algo", col="topo",
                       layout=Layout(row="seed"), kind="line")  # fmt: skip
    assert len(fig.axes) == 4
    assert fig.axes[3].get_title() == "seed=1, torus:dims=4x4"


def test_silent_averaging_is_refused_unless_asked():
    recs = _records()
    with pytest.raises(ConfigError, match="differ in topo, which is on no axis"):
        plot_results(recs, "size", "time_s", hue="algo")
    fig = plot_results(recs, "size", "time_s", hue="algo", aggregate="max", kind="line")
    ring = fig.axes[0].get_lines()[0].get_ydata()
    want = [max(r["metrics"]["time_s"] for r in recs
                if r["params"]["algo"] == "ring" and r["params"]["size"] == s) for s in SIZES]  # fmt: skip
    np.testing.assert_allclose(ring * 1e-6 if fig.axes[0].get_ylabel().endswith("(µs)") else ring,
                               want, rtol=1e-12)  # fmt: skip
    # seeds are averaged without asking: they are repetitions, not parameters
    plot_results(recs, "size", "time_s", hue="algo", col="topo")


def test_averaged_parameters_groups_by_every_drawn_column():
    t = np.array([(1, "a", 8.0), (2, "a", 16.0), (2, "b", np.nan)],
                 dtype=[("size", int), ("topo", object), ("y", float)])  # fmt: skip
    assert averaged_parameters(t, "y", ["topo"], ["size"]) == ["size"]
    assert averaged_parameters(t, "y", ["size"], ["topo"]) == []  # the NaN row is not drawn
    assert averaged_parameters(t, "y", ["size", "topo"], ["size", "topo"]) == []


def test_cli_plot_refusals(tmp_path, capsys):
    from netsim.app.results import ResultsWriter

    path = tmp_path / "r.h5"
    with ResultsWriter(path, "x") as w:
        w.add(
            {
                "point_id": "a",
                "kind": "decode",
                "params": {"batch": 1},
                "metrics": {"token_latency_s": 1e-3, "sites": [{"name": "tp", "time_s": 1e-6}]},
            }
        )
        w.add({"point_id": "b", "kind": "traffic", "params": {"load": 0.5},
               "metrics": {"latency_mean_s": 1e-6}})  # fmt: skip
    (tmp_path / "file").write_text("")
    cases = [
        (["--y", "sites", "--x", "batch"], "holds records"),
        (["--y", "latency_mean_s", "--x", "load", "--where", "kind=decode"], "is empty in the 1"),
        (["--y", "token_latency_s", "--x", "batch", "--out", str(tmp_path / "file" / "f.pdf")],
         "is a file"),
    ]  # fmt: skip
    for argv, match in cases:
        out = [] if "--out" in argv else ["--out", str(tmp_path / "f.pdf")]
        assert main(["plot", str(path), *argv, *out]) == 2
        err = capsys.readouterr().err
        assert match in err and err.count("\n") == 1, err
    assert not (tmp_path / "f.pdf").exists()
