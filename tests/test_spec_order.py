"""Figures follow the sweep spec's order, whatever order the points completed in."""

from __future__ import annotations

import random

from netsim.app.plots import plot_breakdown, plot_results
from netsim.app.results import load_records, load_results
from netsim.app.sweep import load_spec, run_sweep

TOPOS = ["torus:dims=2x2", "torus:dims=4x4", "dgx-h100"]
ALGOS = ["tree", "ring"]
SPEC = {
    "kind": "collective",
    "fixed": {"op": "allreduce", "backend": "analytical"},
    "sweep": {"topo": TOPOS, "algo": ALGOS, "size": ["1KiB", "1MiB"]},
}


def _titles(fig):
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def _legend(fig):
    legends = [ax.get_legend() for ax in fig.axes] + list(fig.legends)
    return [t.get_text() for lg in legends if lg is not None for t in lg.get_texts()]


def test_expensive_first_sweep_plots_in_spec_order(tmp_path):
    path = tmp_path / "r.h5"
    assert run_sweep(SPEC, path, workers=1, progress=False).failed == 0
    spec_ids = [p.point_id for p in load_spec(SPEC).points()]
    stored = [r["point_id"] for r in load_records(path)]
    assert stored != spec_ids  # the file really is in completion (cost) order
    assert load_results(path)["point_id"].tolist() == spec_ids
    fig = plot_results(path, x="size", y="time_s", hue="algo", col="topo")
    assert all(any(t in title for t in TOPOS) for title in _titles(fig))
    order = [next(t for t in TOPOS if t in title) for title in _titles(fig)]
    assert order == TOPOS
    assert _legend(fig)[:2] == ALGOS


def _decode(i, topo, batch, index):
    rec = {
        "point_id": str(i),
        "kind": "decode",
        "seed": 0,
        "params": {"topo": topo, "batch": batch},
        "metrics": {"compute_s": 1e-6, "memory_s": 0.0, "fabric_s": 0.0},
    }
    if index is not None:
        rec["point_index"] = index
    return rec


def test_shuffled_records_keep_spec_category_order():
    grid = [(t, b) for b in (8, 1) for t in ("z", "a", "m")]  # spec order: not sorted
    recs = [_decode(i, t, b, i) for i, (t, b) in enumerate(grid)]
    random.Random(3).shuffle(recs)
    fig = plot_breakdown(recs, x="topo", col="batch", components=("compute_s",), total=None)
    labels = [[t.get_text() for t in ax.get_xticklabels()] for ax in fig.axes[:2]]
    assert labels == [["z", "a", "m"], ["z", "a", "m"]]


def test_records_without_index_keep_their_stored_order():
    grid = [("m", 1), ("z", 1), ("a", 1)]
    recs = [_decode(i, t, b, None) for i, (t, b) in enumerate(grid)]
    fig = plot_breakdown(recs, x="topo", components=("compute_s",), total=None)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["m", "z", "a"]
