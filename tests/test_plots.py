"""Figures: files written, axes labelled with units, plotted data equal to the results."""

from __future__ import annotations

import matplotlib.colors as mcolors
import networkx as nx
import numpy as np
import pytest

from netsim.cli import main
from netsim.errors import ConfigError
from netsim.plots import (
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
from netsim.results import ResultsWriter, load_results

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
    head = out.read_bytes()[:200]
    assert {"png": b"\x89PNG", "svg": b"<?xml", "pdf": b"%PDF"}[fmt] in head


def test_bad_requests_are_config_errors(results, tmp_path):
    with pytest.raises(ConfigError, match="no column 'nope'"):
        plot_results(results, "size", "nope")
    with pytest.raises(ConfigError, match="suffix"):
        plot_results(results, "size", "time_s", out=tmp_path / "f.jpg")
    with pytest.raises(ConfigError, match="kind"):
        plot_results(results, "size", "time_s", kind="pie")
    with pytest.raises(ConfigError, match="no successful points"):
        plot_results(results, "size", "time_s", where={"topo": "absent"})


def test_auto_kind_and_line_categorical(results):
    fig = plot_results(results, "size", "time_s", hue="algo")
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
    fig = plot_results(recs, None, "samples_s")  # auto: a list column gives a CDF
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
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["8"]
