"""Cost estimates of sweep points (netsim.app.sweep_cost) and the expensive-first order."""

from __future__ import annotations

import json

import pytest
import yaml

from collectives.api import run_collective
from netsim.app.cli import main
from netsim.app.sweep import by_cost, load_spec
from netsim.app.sweep_cost import estimate_cost


@pytest.mark.parametrize(
    ("topo", "op", "size"),
    [
        ("torus:dims=4x4", "allreduce", "1MiB"),  # 2p(p-1) = 480 messages of 64 KiB
        ("torus:dims=4x4", "reduce_scatter", "100KiB"),
        ("fat-tree-k4", "allgather", "3MiB"),
        ("torus:dims=2x2", "allreduce", "8B"),  # one packet per message
        ("torus:dims=4x4", "allreduce", "64MiB"),  # capped at max_segments = 256
    ],
)
def test_ring_estimate_is_the_engines_packet_count(topo, op, size):
    """For ring algorithms on one link type the closed form is exact: the engine's count."""
    r = run_collective(topo, op, "ring", size, estimate=False)
    assert estimate_cost("collective", {"topo": topo, "op": op, "size": size}) == r["packets"]
    flows = {"topo": topo, "op": op, "size": size, "backend": "flow"}
    assert estimate_cost("collective", flows) == r["transfers"]


def test_estimates_that_cannot_be_made_are_none():
    assert estimate_cost("collective", {"topo": "no-such-fabric", "size": "1KiB"}) is None
    bad = {"topo": "torus:dims=2x2", "size": "1KiB", "itemsize": 0}  # would divide by zero
    assert estimate_cost("collective", bad) is None
    assert estimate_cost("train", {"model": "llama3-8b"}) is None
    # options are read as the sweep kind reads them: a misspelled one is refused, so no estimate
    assert estimate_cost("collective", {"topo": "torus:dims=2x2", "rnaks": "0-1"}) is None
    assert estimate_cost("decode", {"model": "llama3-8b", "topo": "dgx-h100", "tq": 8}) is None
    assert estimate_cost("traffic", {"topo": "torus:dims=4x4", "packets": 500}) == 1000
    assert estimate_cost("topo", {"topo": "torus:dims=8x8"}) == 64


def test_decode_estimate_is_its_tp_allreduces():
    """Two ring all-reduces of ``batch * hidden * 2`` bytes per layer on ``tp`` ranks."""
    from workloads.models import MODELS

    m = MODELS["llama3-8b"]
    params = {"model": "llama3-8b", "chip": "h100", "topo": "dgx-h100", "tp": 8, "batch": 4}
    chunk = 4 * m.hidden * 2 // 8  # bytes per ring chunk, cut into 256 B NVLink packets
    per_allreduce = 2 * 7 * 8 * (chunk // 256)  # 2(p-1) sends of each of p chunks
    assert estimate_cost("decode", params) == 2 * m.layers * per_allreduce


def test_points_run_most_expensive_first():
    spec = load_spec(
        {"kind": "collective", "fixed": {"topo": "torus:dims=4x4", "backend": "packet"},
         "sweep": {"size": ["1KiB", "1MiB", "8B", "64KiB"]}}
    )  # fmt: skip
    order = [p.params["size"] for p in by_cost(spec.points())]
    assert order == ["1MiB", "64KiB", "1KiB", "8B"]


def test_dry_run_prints_each_cost_and_the_total(tmp_path, capsys):
    spec = {"kind": "collective", "fixed": {"topo": "torus:dims=2x2", "backend": "flow"},
            "sweep": {"size": ["1KiB", "2KiB"], "op": ["allreduce", "allgather"]}}  # fmt: skip
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["sweep", str(path), "--out", str(tmp_path / "r.h5"), "--dry-run", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    # flows: all-reduce 2p(p-1) = 24, all-gather p(p-1) = 12, p = 4, for each of two sizes
    assert sorted(r["cost"] for r in d["costs"]) == [12, 12, 24, 24]
    assert (d["points"], d["cost_total"], d["not_estimated"]) == (4, 72, 0)
    assert not (tmp_path / "r.h5").exists()
    assert main(["sweep", str(path), "--out", str(tmp_path / "r.h5"), "--dry-run"]) == 0
    assert "estimated cost 72 packets or flows" in capsys.readouterr().out
