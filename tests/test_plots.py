"""Figures: files written, axes labelled with units, plotted data equal to the results."""

from __future__ import annotations

import json

import matplotlib.colors as mcolors
import networkx as nx
import numpy as np
import pytest

from netsim.app.cli import main
from netsim.app.plots import (
    OKABE_ITO,
    axis_label,
    plot_breakdown,
    plot_cdf,
    plot_latency_vs_size,
    plot_link_heatmap,
    plot_load_latency,
    plot_results,
    select,
)
from netsim.app.results import ResultsWriter, column_arrays, load_results
from netsim.core.errors import ConfigError

N = 8
ALPHA = {"ring": 2e-6, "tree": 1e-6}  # seconds per step
BETA = 100e9  # bytes/s per link
SIZES = [8 * 4**k for k in range(10)]  # 8 B .. 2 MiB


def _ring_time(size, algo):
    """Alpha-beta all-reduce time: ring 2(p-1)(a + s/(p B)), a binary-tree-like 2 log2 p
    steps of the full size (Thakur, Rabenseifner & Gropp, IJHPCA 2005, section 4)."""
    if algo == "ring":
        return 2 * (N - 1) * (ALPHA[algo] + size / (N * BETA))
    return 2 * np.log2(N) * (ALPHA[algo] + size / BETA)


def _records():
    out = []
    for topo in ("torus:dims=2x4", "fat-tree-k4"):
        for algo in ("ring", "tree"):
            for size in SIZES:
                for seed in (0, 1):
                    t = _ring_time(size, algo) * (1.0 + 0.01 * seed)
                    algbw = size / t
                    out.append(
                        {
                            "point_id": f"{topo}-{algo}-{size}-{seed}",
                            "kind": "collective",
                            "params": {"topo": topo, "algo": algo, "size": size},
                            "seed": seed,
                            "repetition": 0,
                            # nccl-tests PERFORMANCE.md: busbw = algbw * 2(n-1)/n (all-reduce)
                            "metrics": {
                                "time_s": t,
                                "algbw": algbw,
                                "busbw": algbw * 2 * (N - 1) / N,
                            },
                            "wall_s": 0.01,
                            "error": None,
                        }
                    )
    out.append({**out[0], "point_id": "bad", "metrics": {}, "error": "boom"})
    return out


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    path = tmp_path_factory.mktemp("plots") / "r.h5"
    with ResultsWriter(path, "synthetic") as w:
        for r in _records():
            w.add(r)
    return path


def test_palette_is_okabe_ito():
    # Okabe & Ito (2008), https://jfly.uni-koeln.de/color/: RGB of the eight CUD colours.
    published = {
        (0, 0, 0),
        (230, 159, 0),
        (86, 180, 233),
        (0, 158, 115),
        (240, 228, 66),
        (0, 114, 178),
        (213, 94, 0),
        (204, 121, 167),
    }
    got = {tuple(round(255 * c) for c in mcolors.to_rgb(h)) for h in OKABE_ITO}
    assert got == published


def test_axis_labels_carry_units():
    assert axis_label("time_s", np.array([3e-3])) == ("time (ms)", 1e-3)
    assert axis_label("token_latency_s", np.array([40e-9]))[0] == "token latency (ns)"
    assert axis_label("busbw") == ("bus bandwidth (GB/s)", 1e9)
    assert axis_label("size")[0] == "size (bytes)"
    assert axis_label("tokens_per_s")[0] == "tokens/s"
    assert "fraction of injection bandwidth" in axis_label("offered_load")[0]


def test_latency_vs_size_plots_the_file_data(results, tmp_path):
    out = tmp_path / "lat.pdf"
    fig = plot_latency_vs_size(results, hue="algo", col="topo", out=out)
    assert out.read_bytes().startswith(b"%PDF")
    axes = fig.axes
    assert len(axes) == 4  # 2 rows (latency, busbw) x 2 topologies
    top, bottom = axes[0], axes[2]
    assert top.get_xscale() == "log" and top.get_yscale() == "log"
    assert top.get_ylabel() == "time (µs)" and bottom.get_ylabel() == "bus bandwidth (GB/s)"
    assert bottom.get_xlabel() == "size (bytes)"
    assert top.get_title() == "torus:dims=2x4"
    table = load_results(results, ok_only=True)
    ring = select(table, {"topo": "torus:dims=2x4", "algo": "ring"})
    lines = {ln.get_label(): ln for ln in top.get_lines()}
    xy = lines["ring"].get_xydata()
    assert xy[:, 0].tolist() == [float(s) for s in SIZES]
    mean = [ring["time_s"][ring["size"] == s].mean() / 1e-6 for s in SIZES]
    np.testing.assert_allclose(xy[:, 1], mean, rtol=1e-12)
    bw = {ln.get_label(): ln for ln in bottom.get_lines()}["ring"].get_xydata()
    busbw = [ring["busbw"][ring["size"] == s].mean() / 1e9 for s in SIZES]
    np.testing.assert_allclose(bw[:, 1], busbw, rtol=1e-12)


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_formats_and_cli(results, tmp_path, fmt):
    out = tmp_path / f"fig.{fmt}"
    code = main(
        [
            *("plot", str(results), "--x", "size", "--y", "time_s", "--hue", "algo"),
            *("--where", "topo=fat-tree-k4", "--out", str(out)),
        ]
    )
    assert code == 0 and out.stat().st_size > 1000
    data = out.read_bytes()
    assert {"png": b"\x89PNG", "svg": b"<?xml", "pdf": b"%PDF"}[fmt] in data[:200]
    if fmt == "pdf":  # fonts embedded as TrueType (Type 42), not Type 3 bitmaps
        assert b"/FontFile2" in data and b"/Type3" not in data
    if fmt == "svg":  # text kept as text (editable, searchable), not paths
        assert b"<text" in data and b"bus bandwidth (GB/s)" in data


def test_bad_requests_are_config_errors(results, tmp_path):
    with pytest.raises(ConfigError, match="no column 'nope'"):
        plot_results(results, "size", "nope")
    with pytest.raises(ConfigError, match="suffix"):
        plot_results(results, "size", "time_s", out=tmp_path / "f.jpg")
    with pytest.raises(ConfigError, match="kind"):
        plot_results(results, "size", "time_s", kind="pie")
    with pytest.raises(ConfigError, match="no successful points"):
        plot_results(results, "size", "time_s", where={"topo": "absent"})
    with pytest.raises(ConfigError, match="neither numbers nor lists"):
        plot_results(results, None, "topo", kind="cdf", aggregate="mean")
    with pytest.raises(ConfigError, match=r"a heatmap needs a column of \[\[u, v"):
        plot_results(
            results, None, "time_s", kind="heatmap", where={"topo": "fat-tree-k4"}, aggregate="mean"
        )
    with pytest.raises(ConfigError, match="components: the results have none of"):
        plot_results(results, "topo", "time_s", kind="breakdown", aggregate="mean")


def test_auto_kind_and_line_categorical(results):
    fig = plot_results(results, "size", "time_s", hue="algo", where={"topo": "fat-tree-k4"})
    assert len(fig.axes) == 2  # latency-size chosen: busbw panel below
    fig = plot_results(results, "topo", "busbw", hue="algo", where={"size": 8})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["torus:dims=2x4", "fat-tree-k4"]
    assert ax.get_ylabel() == "bus bandwidth (GB/s)"


def _decode_records():
    rows = []
    for i, topo in enumerate(("dgx-h100", "torus:dims=4x4")):
        for seed in (0, 1):
            c, m, f = 10e-6, 20e-6 + seed * 2e-6, (5 + 10 * i) * 1e-6
            rows.append(
                {
                    "point_id": f"{topo}{seed}",
                    "kind": "decode",
                    "params": {"topo": topo},
                    "seed": seed,
                    "metrics": {
                        "compute_s": c,
                        "memory_s": m,
                        "fabric_s": f,
                        "token_latency_s": c + m + f,
                        "samples_s": list(np.linspace(1, 2, 5) * (c + m + f)),
                    },
                    "error": None,
                }
            )
    return rows


def test_breakdown_bars_stack_components(tmp_path):
    fig = plot_breakdown(_decode_records(), x="topo", out=tmp_path / "b.png")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "time per token (µs)"
    heights = np.array([p.get_height() for p in ax.patches]).reshape(3, 2)  # component x topo
    np.testing.assert_allclose(heights[:, 0], [10, 21, 5])  # means over the two seeds, µs
    np.testing.assert_allclose(heights[:, 1], [10, 21, 15])
    total = ax.collections[0].get_segments()
    np.testing.assert_allclose([s[0][1] for s in total], [36, 46])  # = sum of the components
    assert (tmp_path / "b.png").exists()


def test_cdf_pools_samples(tmp_path):
    recs = _decode_records()
    fig = plot_cdf(recs, y="samples_s", hue="topo", out=tmp_path / "c.svg")
    ax = fig.axes[0]
    line = {ln.get_label(): ln for ln in ax.get_lines()}["dgx-h100"]
    x, y = line.get_xdata(), line.get_ydata()
    pooled = np.sort(np.concatenate([r["metrics"]["samples_s"] for r in recs[:2]])) / 1e-6
    np.testing.assert_allclose(x, pooled)
    np.testing.assert_allclose(y, np.arange(1, 11) / 10)
    assert ax.get_xlabel() == "samples (µs)" and "CDF" in ax.get_ylabel()
    fig = plot_results(recs, None, "samples_s", hue="topo")  # auto: a list column: a CDF
    assert "CDF" in fig.axes[0].get_ylabel()


def test_load_latency_linear_load_axis():
    recs = [
        {
            "point_id": str(i),
            "kind": "traffic",
            "params": {"pattern": "uniform"},
            "metrics": {"offered_load": load, "latency_mean_s": 1e-6 / (1 - load)},
            "error": None,
        }
        for i, load in enumerate((0.1, 0.3, 0.5, 0.7, 0.9))
    ]
    fig = plot_load_latency(recs, hue="pattern")
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear" and ax.get_yscale() == "linear"  # 1.1 .. 10 us: < 10x
    xy = ax.get_lines()[0].get_xydata()
    np.testing.assert_allclose(xy[:, 1], [1 / (1 - v) for v in (0.1, 0.3, 0.5, 0.7, 0.9)])
    assert ax.get_xlabel().startswith("offered load (fraction")


def test_link_heatmap_colours_each_link(tmp_path):
    G = nx.grid_2d_graph(3, 3)
    G = nx.convert_node_labels_to_integers(G, label_attribute="coord")
    for _, d in G.nodes(data=True):
        d["pos"], d["kind"] = d["coord"], "chip"
    util = [[u, v, 0.1 * (i + 1)] for i, (u, v) in enumerate(G.edges())]
    util.append([util[0][1], util[0][0], 0.95])  # the other direction, larger: drawn
    fig = plot_link_heatmap(G, util, out=tmp_path / "h.pdf")
    lc = fig.axes[0].collections[0]
    expect = [0.95] + [0.1 * (i + 1) for i in range(1, G.number_of_edges())]
    np.testing.assert_allclose(lc.get_array(), expect)
    assert fig.axes[1].get_ylabel() == "link utilisation (fraction of bandwidth)"
    with pytest.raises(ConfigError, match="not in the graph"):
        plot_link_heatmap(G, [[0, 99, 0.5]])


def test_whole_floats_are_labelled_as_ints():
    # "batch" is float64 (NaN where a point lacks it); labels must read batch=8, not 8.0.
    recs = [
        {"point_id": "a", "params": {"batch": 8}, "metrics": {"x": 1.0, "y": 2.0}, "error": None},
        {"point_id": "b", "params": {"batch": 16}, "metrics": {"x": 2.0, "y": 3.0}, "error": None},
        {"point_id": "c", "params": {}, "metrics": {"x": 2.0, "y": 3.0}, "error": None},
    ]
    fig = plot_results(recs, "x", "y", hue="batch", col="batch", kind="line")
    assert [ax.get_title() for ax in fig.axes] == ["batch=8", "batch=16"]  # no "nan" panel
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["8", "16"]  # one legend


# --------------------------------------------------------------------------- CLI, real data

REAL_SPEC = {
    "name": "plots-from-real-kinds",
    "seeds": 2,
    "sweep": [
        {
            "kind": "traffic",
            "fixed": {"packets": 100, "size": "256B", "detail": True},
            "sweep": {"topo": ["mesh:dims=4x4", "torus:dims=4x4"], "load": [0.2, 0.6]},
        },
        {
            "kind": "decode",
            "fixed": {"model": "llama3-70b", "chip": "h100", "tp": 8, "backend": "analytical"},
            "sweep": {"topo": ["dgx-h100", "torus:dims=4x4"], "batch": [1, 8]},
        },
        {
            "kind": "collective",
            "fixed": {"op": "allreduce", "topo": "dgx-h100", "backend": "analytical"},
            "sweep": {"algo": ["ring", "tree"], "size": {"sizes": "1KiB:1MiB:x4"}},
        },
    ],
}
_UNIT = {"(ns)": 1e-9, "(µs)": 1e-6, "(ms)": 1e-3, "(s)": 1.0}


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    from netsim.app.sweep import run_sweep

    path = tmp_path_factory.mktemp("real") / "real.h5"
    summary = run_sweep(REAL_SPEC, path, workers=1, progress=False)
    assert summary.failed == 0, summary.errors
    return path


def _cli_figure(monkeypatch, argv):
    """Run ``netsim plot ARGV`` and return the Figure it saved."""
    import netsim.app.commands.plot as plot_command

    drawn = []
    real_fn = plot_command.plot_results

    def spy(*args, **kw):
        drawn.append(real_fn(*args, **kw))
        return drawn[-1]

    monkeypatch.setattr(plot_command, "plot_results", spy)
    assert main(["plot", *map(str, argv)]) == 0
    out = argv[argv.index("--out") + 1]
    assert out.stat().st_size > 1000
    return drawn[0]


def _scale(label):
    return next(v for k, v in _UNIT.items() if label.endswith(k))


def test_cli_latency_size_from_a_real_collective_sweep(real, tmp_path, monkeypatch):
    out = tmp_path / "lat.pdf"
    fig = _cli_figure(
        monkeypatch, [real, "--x", "size", "--y", "time_s", "--hue", "algo", "--out", out]
    )
    top, bottom = fig.axes  # auto: latency-size, busbw panel below
    assert top.get_xscale() == "log" and top.get_yscale() == "log"
    assert bottom.get_ylabel() == "bus bandwidth (GB/s)"
    t = select(load_results(real), {"kind": "collective"})
    for algo in ("ring", "tree"):
        rows = t[t["algo"] == algo]
        # "size" is a text column here: the traffic points of the file have size="256B"
        sizes = np.array([float(v) for v in rows["size"]])
        rows = rows[np.argsort(sizes, kind="stable")]
        xy = {ln.get_label(): ln.get_xydata() for ln in top.get_lines()}[algo]
        np.testing.assert_array_equal(xy[:, 0], np.sort(sizes)[::2])  # 2 seeds per size
        means = rows["time_s"].reshape(-1, 2).mean(axis=1)
        np.testing.assert_allclose(xy[:, 1] * _scale(top.get_ylabel()), means, rtol=1e-12)
        bw = {ln.get_label(): ln.get_xydata() for ln in bottom.get_lines()}
        busbw = rows["busbw"].reshape(-1, 2).mean(axis=1)
        np.testing.assert_allclose(bw[algo][:, 1] * 1e9, busbw, rtol=1e-12)


def test_cli_breakdown_stacks_to_the_token_latency(real, tmp_path, monkeypatch):
    out = tmp_path / "b.svg"
    argv = [real, "--kind", "breakdown", "--x", "topo", "--y", "token_latency_s"]
    fig = _cli_figure(
        monkeypatch, [*argv, "--col", "batch", "--where", "kind=decode", "--out", out]
    )
    assert [ax.get_title() for ax in fig.axes] == ["batch=1", "batch=8"]
    t = select(load_results(real), {"kind": "decode"})
    parts = ("compute_s", "memory_s", "launch_s", "fabric_s")
    for ax, batch in zip(fig.axes, (1, 8), strict=True):
        scale = _scale(ax.get_ylabel())
        topos = [tick.get_text() for tick in ax.get_xticklabels()]
        assert topos == ["dgx-h100", "torus:dims=4x4"]
        heights = np.array([p.get_height() for p in ax.patches]).reshape(len(parts), 2) * scale
        for j, topo in enumerate(topos):
            rows = t[(t["batch"] == batch) & (t["topo"] == topo)]
            want = [rows[c].mean() for c in parts]
            np.testing.assert_allclose(heights[:, j], want, rtol=1e-9)
            # the decode parts add up to the token latency: the stack reaches the total line
            total = ax.collections[0].get_segments()[j][0][1] * scale
            np.testing.assert_allclose(heights[:, j].sum(), total, rtol=1e-9)
            np.testing.assert_allclose(total, rows["token_latency_s"].mean(), rtol=1e-9)
    (legend,) = fig.legends  # one legend for the figure
    assert [x.get_text() for x in legend.get_texts()] == [
        "token latency (total)",
        "compute",
        "memory",
        "launch",
        "fabric",
    ]


def test_cli_load_latency_from_a_real_traffic_sweep(real, tmp_path, monkeypatch):
    out = tmp_path / "ll.png"
    argv = [real, "--x", "load", "--y", "latency_mean_s", "--hue", "topo", "--out", out]
    fig = _cli_figure(monkeypatch, [*argv, "--where", "kind=traffic"])
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear" and ax.get_xlabel().startswith("load (fraction")
    t = select(load_results(real), {"kind": "traffic"})
    for topo in ("mesh:dims=4x4", "torus:dims=4x4"):
        # legend names leave out what every topology shares (dims=4x4)
        xy = {ln.get_label(): ln.get_xydata() for ln in ax.get_lines()}[topo.split(":")[0]]
        rows = t[t["topo"] == topo]
        assert xy[:, 0].tolist() == [0.2, 0.6]
        want = [rows["latency_mean_s"][rows["load"] == v].mean() for v in (0.2, 0.6)]
        np.testing.assert_allclose(xy[:, 1] * _scale(ax.get_ylabel()), want, rtol=1e-12)


def test_cli_cdf_of_latency_samples(real, tmp_path, monkeypatch):
    out = tmp_path / "cdf.pdf"
    argv = [real, "--y", "latency_samples_s", "--hue", "load", "--out", out]
    fig = _cli_figure(monkeypatch, [*argv, "--where", "topo=mesh:dims=4x4"])  # auto: cdf
    ax = fig.axes[0]
    assert "CDF" in ax.get_ylabel()
    t = select(load_results(real), {"topo": "mesh:dims=4x4", "kind": "traffic"})
    for load in (0.2, 0.6):
        rows = t[t["load"] == load]
        pooled = np.sort(np.concatenate(column_arrays(rows, "latency_samples_s")))
        assert len(pooled) == 2 * 100  # two seeds of 100 measured packets
        line = {ln.get_label(): ln for ln in ax.get_lines()}[str(load)]
        np.testing.assert_allclose(line.get_xdata() * _scale(ax.get_xlabel()), pooled)
        np.testing.assert_allclose(line.get_ydata(), np.arange(1, 201) / 200)


def test_cli_heatmap_on_a_mesh_and_a_torus(real, tmp_path, monkeypatch):
    from topologies.registry import build

    t = select(load_results(real), {"kind": "traffic"})
    for topo in ("mesh:dims=4x4", "torus:dims=4x4"):
        out = tmp_path / "h.pdf"
        argv = [real, "--kind", "heatmap", "--y", "link_utilisation", "--col", "load"]
        fig = _cli_figure(monkeypatch, [*argv, "--where", f"topo={topo}", "--out", out])
        panels = [ax for ax in fig.axes if ax.get_title()]
        assert [ax.get_title() for ax in panels] == ["load=0.2", "load=0.6"]
        assert fig.axes[-1].get_ylabel() == "link utilisation (fraction of bandwidth)"
        G = build(topo)
        for ax, load in zip(panels, (0.2, 0.6), strict=True):
            rows = t[(t["topo"] == topo) & (t["load"] == load)]
            mean: dict = {}
            for cell in rows["link_utilisation"]:  # [[u, v, busy fraction], ...] per seed
                for u, v, x in json.loads(cell):
                    mean[(u, v)] = mean.get((u, v), 0.0) + x / len(rows)
            want = []
            for u, v, d in G.edges(data=True):  # the busier direction; wraps as two stubs
                want += [max(mean[(u, v)], mean[(v, u)])] * (2 if d.get("wrap") else 1)
            got = ax.collections[0].get_array()
            np.testing.assert_allclose(got, want, rtol=1e-12)
            assert 0.0 < got.max() <= 1.0
        wraps = sum(1 for *_, d in G.edges(data=True) if d.get("wrap"))
        assert wraps == (8 if topo.startswith("torus") else 0)  # 2 dims x 4 rings, 1 wrap each
        assert len(ax.collections[0].get_segments()) == G.number_of_edges() + wraps


def test_cli_heatmap_refuses_mixed_topologies(real, tmp_path, capsys):
    code = main(
        [
            *("plot", str(real), "--kind", "heatmap", "--y", "link_utilisation"),
            *("--where", "kind=traffic", "--out", str(tmp_path / "h.pdf")),
        ]
    )
    assert code == 2 and not (tmp_path / "h.pdf").exists()
    err = capsys.readouterr().err
    assert (
        err.startswith("error: aggregate: the points differ in topo, load") and err.count("\n") == 1
    )
    code = main(
        [
            *("plot", str(real), "--kind", "heatmap", "--y", "link_utilisation"),
            *("--where", "kind=traffic", "--aggregate", "mean", "--out", str(tmp_path / "h.pdf")),
        ]
    )
    assert code == 2 and not (tmp_path / "h.pdf").exists()
    err = capsys.readouterr().err
    assert (
        err.startswith("error: heatmap: a panel needs one topology, got 2") and err.count("\n") == 1
    )


def test_breakdown_keeps_one_category_order_across_panels():
    recs = []
    for i, (batch, topo) in enumerate([(1, "a"), (1, "b"), (8, "b"), (8, "a")]):
        m = {"compute_s": 1e-6 * (i + 1), "memory_s": 0.0, "fabric_s": 0.0}
        recs.append(
            {
                "point_id": str(i),
                "kind": "decode",
                "seed": 0,
                "params": {"topo": topo, "batch": batch},
                "metrics": m,
            }
        )
    fig = plot_breakdown(recs, x="topo", col="batch", components=("compute_s",), total=None)
    labels = [[t.get_text() for t in ax.get_xticklabels()] for ax in fig.axes[:2]]
    assert labels == [["a", "b"], ["a", "b"]]
    # and the bar heights follow the labels: batch 8 has a = 4 us, b = 3 us
    np.testing.assert_allclose([p.get_height() for p in fig.axes[1].patches], [4, 3])
