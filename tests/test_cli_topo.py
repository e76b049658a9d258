"""Tests of ``netsim topo`` through netsim.app.cli.main."""

from __future__ import annotations

import json

import pytest

import netsim
from netsim.app.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_text_summary(capsys):
    code, out, err = run(capsys, "topo", "torus:dims=4x4,bandwidth=100GB/s")
    assert code == 0 and err == ""
    assert "topology torus:dims=4x4,bandwidth=100GB/s (family torus)" in out
    assert "chips 16, switches 0" in out
    assert "diameter 4 links" in out
    # 4 x 4 torus: 8 links of 100 GB/s across the bisection.
    assert "bisection 800GB/s one way" in out
    # Injection defaults to the sum of a chip's links: 4 links of 100 GB/s in a 2D torus.
    assert "injection 400GB/s per chip" in out


def test_json_shape(capsys):
    code, out, _ = run(capsys, "topo", "fat-tree:k=4", "--json")
    assert code == 0
    d = json.loads(out)
    for key in (
        "name",
        "family",
        "chips",
        "switches",
        "links",
        "physical_links",
        "diameter",
        "avg_hops",
        "bisection_bandwidth",
        "bisection_method",
        "injection_bandwidth",
        "netsim_version",
    ):
        assert key in d, key
    assert d["netsim_version"] == netsim.__version__
    assert d["name"] == "fat-tree:k=4" and d["family"] == "fat_tree"
    assert (d["chips"], d["diameter"]) == (16, 6)


def test_json_of_a_preset(capsys):
    code, out, _ = run(capsys, "topo", "dgx-h100", "--json")
    assert code == 0
    assert json.loads(out)["chips"] == 8


@pytest.mark.parametrize("ext", ["png", "pdf", "svg"])
def test_plot_writes_a_valid_file(tmp_path, capsys, ext):
    path = tmp_path / f"t.{ext}"
    code, out, _ = run(capsys, "topo", "dragonfly:a=4,p=2,h=2", "--plot", str(path))
    assert code == 0
    assert f"drawn to {path}" in out
    data = path.read_bytes()
    magic = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF-", "svg": b"<?xml"}[ext]
    assert data.startswith(magic)
    if ext == "svg":
        assert b"</svg>" in data
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_plot_bad_extension_writes_nothing(tmp_path, capsys):
    path = tmp_path / "t.jpg"
    code, _, err = run(capsys, "topo", "torus:dims=4x4", "--plot", str(path))
    assert code == 2
    assert err.startswith("error: plot: file extension must be one of .png, .pdf, .svg")
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_list(capsys):
    code, out, _ = run(capsys, "topo", "--list")
    assert code == 0
    assert "families" in out and "presets" in out
    for name in ("torus", "fat_tree", "dragonfly", "nvswitch", "dgx-h100", "tpu-v4-cube"):
        assert name in out
    assert "source:" in out
    assert "dims" in out  # parameters are listed


def test_list_json(capsys):
    code, out, _ = run(capsys, "topo", "--list", "--json")
    assert code == 0
    d = json.loads(out)
    assert "torus" in d["families"] and "dgx-h100" in d["presets"]
    assert d["families"]["torus"]["parameters"]["dims"]["required"] is True


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["topo", "--list", "torus:dims=4x4"], "--list takes no SPEC"),
        (["topo", "torus:dims=4x4", "--seed", "-1"], "seed"),
        (["topo", "dragonfly:a=4,p=2"], "missing required parameter 'h'"),
    ],
)
def test_errors(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and needle in err
