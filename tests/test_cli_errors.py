"""Bad values of the options and parameters added with NCCL's protocols, the GB200 SuperPOD
fabric, merged NVSwitch chips, DeepEP's NVLink efficiency and results format 2.

Each is refused as the error contract says (tests/test_errors_cli.py): exit code 2, one
``error: ...`` line on stderr naming the parameter, the rule and the value given, no
traceback, nothing on stdout and no output file.
"""

from __future__ import annotations

import re

import h5py
import numpy as np
import pytest

from netsim.app.cli import main
from netsim.app.results import ResultsWriter
from netsim.core.errors import ConfigError
from workloads.moe_kernels import KernelModel, parse_moe_kernels

A = ("--backend", "analytical")
COLL = ["collective", "--topo", "dgx-h100", "--size", "1MiB", *A]
TWO_NODES = ["collective", "--topo", "hierarchical:nodes=2", "--size", "1MiB", *A]
SHARP = ["collective", "--topo", "hierarchical:nodes=2,fabric_reduction=true", "--size", "1MiB"]
DECODE = [
    "decode",
    "--model",
    "deepseek-v3",
    "--chip",
    "h100:hbm.capacity=1TB",
    "--topo",
    "hierarchical:nodes=1,switches=1,links_per_gpu=8",
    "--ep",
    "8",
    "--batch",
    "64",
    "--context",
    "1",
    "--dispatch",
    "low-latency",
    *A,
    "--moe-kernels",
]

#: (id, argv, words the one error line contains: the parameter, the rule, the value given)
CASES = [
    ("protocol-unknown", [*COLL, "--protocol", "LL64"], ["--protocol", "choose from", "'LL64'"]),
    ("protocol-case", [*COLL, "--protocol", "ll"], ["--protocol", "'ll'"]),
    (
        "protocol-LL-nvls",
        [*COLL, "--algo", "nvls", "--protocol", "LL"],
        ["protocol", "Simple only", "'LL'"],
    ),
    (
        "protocol-LL128-nvls-tree",
        [*TWO_NODES, "--algo", "nvls-tree", "--protocol", "LL128"],
        ["protocol", "Simple only", "'LL128'"],
    ),
    (
        "protocol-LL-collnet",
        [*SHARP, "--algo", "collnet", "--protocol", "LL", *A],
        ["protocol", "Simple only", "'LL'"],
    ),
    (
        "protocol-library-none",
        [*COLL, "--protocol", "Simple", "--library", "none"],
        ["protocol", "library nccl", "'Simple'", "'none'"],
    ),
    (
        "protocol-netsim-only",
        [*COLL, "--algo", "hierarchical", "--protocol", "LL"],
        ["protocol", "not one of NCCL's algorithms", "'LL'"],
    ),
    (
        "protocol-netsim-only-in-list",
        [*COLL[:3], "--sizes", "1KiB,1MiB", "--algo", "ring,direct", "--protocol", "LL", *A],
        ["protocol", "direct allreduce", "'LL'"],
    ),
    (
        "collnet-chain-one-node",
        [*SHARP, "--algo", "collnet-chain", "--ranks", "0-7", *A],
        ["ranks", "two or more nodes", "got 8 ranks on one node"],
    ),
    (
        "nvls-tree-no-nodes",
        [*COLL, "--algo", "nvls-tree"],
        ["ranks", "two or more nodes", "got chips without 'node'"],
    ),
    (
        "collnet-without-sharp",
        [*TWO_NODES, "--algo", "collnet"],
        ["cannot reduce in-network", "got reduction=False", "fabric_reduction=true"],
    ),
    (
        "chip-launch-alias-twice",
        [
            "decode",
            "--model",
            "llama3-8b",
            "--chip",
            "h100:launch_overhead=2us,kernel_launch=3us",
            "--topo",
            "dgx-h100",
            *A,
        ],
        ["chip kernel_launch:", "given once", "launch_overhead= and kernel_launch="],
    ),
    ("nic-link", ["topo", "hierarchical:nodes=2,nic_link=roce"], ["nic_link", "one of", "'roce'"]),
    ("rails-0", ["topo", "hierarchical:nodes=2,rails_per_leaf=0"], ["rails_per_leaf", "[1, 32]"]),
    ("rails-neg", ["topo", "hierarchical:nodes=2,rails_per_leaf=-2"], ["rails_per_leaf", "-2"]),
    (
        "rails-not-dividing",
        ["topo", "hierarchical:nodes=2,rails_per_leaf=3"],
        ["rails_per_leaf", "must divide gpus=8", "3"],
    ),
    (
        "rails-text",
        ["topo", "hierarchical:nodes=2,rails_per_leaf=two"],
        ["rails_per_leaf", "'two'"],
    ),
    (
        "merge-hierarchical",
        ["topo", "hierarchical:nodes=2,merge_switches=maybe"],
        ["merge_switches", "true or false", "'maybe'"],
    ),
    (
        "merge-nvswitch",
        ["topo", "nvswitch:merge_switches=2"],
        ["merge_switches", "true or false", "'2'"],
    ),
    (
        "merge-asymmetric-preset",
        ["topo", "dgx-h100:merge_switches=true"],
        ["dgx-h100: merge_switches:", "symmetric", "[5, 4, 4, 5] links per switch (18 over 4)"],
    ),
    ("gb200-nodes-0", ["topo", "gb200-superpod:nodes=0"], ["gb200-superpod: nodes:", ">= 1", "0"]),
    (
        "gb200-nodes-text",
        ["topo", "gb200-superpod:nodes=many"],
        ["gb200-superpod: nodes:", "integer", "'many'"],
    ),
    (
        "gb200-nodes-huge",
        ["topo", "gb200-superpod:nodes=100000000"],
        ["gb200-superpod: nodes", "MAX_CHIPS"],
    ),
    (
        "gb200-rails",
        ["topo", "gb200-superpod:rails_per_leaf=5"],
        ["gb200-superpod: rails_per_leaf:", "gpus=72"],
    ),
    (
        "nvl72x2-nodes-neg",
        ["topo", "nvl72-superpod-2:nodes=-3"],
        ["nvl72-superpod-2: nodes:", ">= 1", "-3"],
    ),
    (
        "nvl72x2-nodes-text",
        ["topo", "nvl72-superpod-2:nodes=1.5"],
        ["nvl72-superpod-2: nodes:", "integer", "'1.5'"],
    ),
    ("nvl72x2-merge", ["topo", "nvl72-superpod-2:merge_switches=x"], ["merge_switches", "'x'"]),
    (
        "deepep-nvlink-0",
        [*DECODE, "deepep:nvlink_efficiency=0"],
        ["nvlink_efficiency", "(0, 1]", "got 0.0"],
    ),
    (
        "deepep-nvlink-above-1",
        [*DECODE, "deepep:nvlink_efficiency=1.5"],
        ["nvlink_efficiency", "(0, 1]", "got 1.5"],
    ),
    (
        "deepep-nvlink-text",
        [*DECODE, "deepep:nvlink_efficiency=fast"],
        ["nvlink_efficiency", "a number", "'fast'"],
    ),
    (
        "deepep-unknown-key",
        [*DECODE, "deepep:nvlink_eficiency=0.5"],
        ["mechanisms are", "nvlink_efficiency", "'nvlink_eficiency=0.5'"],
    ),
    ("deepep-msg-rate-nan", [*DECODE, "deepep:msg_rate=nan"], ["msg_rate", "finite", "got nan"]),
    ("deepep-msg-rate-inf", [*DECODE, "deepep:msg_rate=inf"], ["msg_rate", "finite", "got inf"]),
]


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({}, "msg_rate: must be a finite number > 0, got 0.0"),  # no ZeroDivisionError later
        ({"msg_rate": 1e6, "nvlink_efficiency": 0.0}, "nvlink_efficiency: must be in (0, 1]"),
        ({"msg_rate": 1e6, "header_bytes": 2.5}, "header_bytes: must be an integer >= 0"),
    ],
)
def test_kernel_model_built_directly_checks_its_mechanisms(fields, words):
    with pytest.raises(ConfigError, match=re.escape(f"moe_kernels.{words}")):
        KernelModel("deepep", **fields)
    assert not KernelModel("none").active  # 'none' charges nothing: nothing to check


def _one_line(code: int, out: str, err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert out == ""
    return lines[0]


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return int(code or 0), out, err


@pytest.mark.parametrize(("argv", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_new_options_refuse_bad_values_in_one_line(argv, words, capsys):
    line = _one_line(*_cli(argv, capsys))
    for word in words:
        assert word in line, line


def test_plot_file_is_not_written_when_the_protocol_is_refused(tmp_path, capsys):
    plot = tmp_path / "p.png"
    argv = [*COLL[:3], "--sizes", "1KiB,1MiB", "--algo", "ring,direct", "--protocol", "LL", *A]
    _one_line(*_cli([*argv, "--plot", str(plot)], capsys))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("key", ["nic_efficiency", "nvlink_efficiency", "msg_rate"])
def test_deepep_mechanisms_refuse_non_finite_numbers(key, value):
    with pytest.raises(ConfigError, match=f"moe_kernels.{key}: .*got {value}$"):
        parse_moe_kernels(f"deepep:{key}={value}", default="none", hbm=3.35e12)


def _probe_file(path, fmt) -> bytes:
    with ResultsWriter(path, "kind: probe\nsweep:\n  x: [0]\n") as w:
        w.add(
            {"point_id": "p0", "kind": "probe", "params": {"x": 0}, "seed": 0, "repetition": 0,
             "metrics": {"u": 1.0}, "wall_s": 0.0, "error": None}
        )  # fmt: skip
    with h5py.File(path, "a") as f:
        f.attrs["format"] = fmt
    return path.read_bytes()


@pytest.mark.parametrize(
    ("fmt", "words"),
    [
        ("netsim-results/3", ["format", "'netsim-results/3'", "another netsim version"]),
        ("garbage", ["format", "not written by netsim", "'garbage'"]),
        (7, ["format", "not written by netsim", "attribute 7;"]),
        (np.bytes_(b"\xff\xfe"), ["not written by netsim", "attribute '\ufffd\ufffd'"]),
        (np.void(b"\xff\xfe"), ["not written by netsim", "attribute '\ufffd\ufffd'"]),
        (np.array([1, 2]), ["not written by netsim", "attribute 'array([1, 2])'"]),
    ],
)
def test_results_of_an_unread_format_are_refused_and_left_alone(fmt, words, tmp_path, capsys):
    path = tmp_path / "r.h5"
    before = _probe_file(path, fmt)
    spec = tmp_path / "s.yaml"
    spec.write_text("kind: probe\nsweep:\n  x: [0, 1]\n")
    for argv in (
        ["plot", str(path), "--x", "x", "--y", "u", "--out", str(tmp_path / "f.png")],
        ["sweep", str(spec), "--out", str(path), "--workers", "1"],
    ):
        line = _one_line(*_cli(argv, capsys))
        for word in words:
            assert word in line, line
        assert "netsim-results/1, netsim-results/2" in line
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.h5", "s.yaml"]


def test_sweep_spec_with_a_misspelled_new_option_is_refused_before_running(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "kind: collective\nfixed: {op: allreduce, topo: dgx-h100, backend: analytical}\n"
        "sweep:\n  size: [1KiB]\n  protocl: [LL, Simple]\n"
    )
    line = _one_line(*_cli(["sweep", str(spec), "--out", str(tmp_path / "r.h5")], capsys))
    assert "protocl" in line and "did you mean protocol" in line and "'LL'" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


@pytest.mark.parametrize(
    ("attr", "value"),
    [
        ("spec", np.bytes_(b"\xff\xfe")),
        ("started", np.bytes_(b"\xff\xfe")),
        ("previous_specs", "not json"),
        ("previous_specs", '{"a": 1}'),
    ],
)
def test_results_with_a_corrupted_attribute_are_refused_and_left_alone(
    attr, value, tmp_path, capsys
):
    path = tmp_path / "r.h5"
    _probe_file(path, "netsim-results/2")
    with h5py.File(path, "a") as f:
        f.attrs[attr] = value
    before = path.read_bytes()
    spec = tmp_path / "s.yaml"
    spec.write_text("kind: probe\nsweep:\n  x: [0, 1]\n")
    argvs = [["sweep", str(spec), "--out", str(path), "--workers", "1", "--append"]]
    if attr != "previous_specs":  # read only by a writer
        argvs.append(["plot", str(path), "--x", "x", "--y", "u", "--out", str(tmp_path / "f.png")])
    for argv in argvs:
        line = _one_line(*_cli(argv, capsys))
        assert f"corrupted attribute '{attr}'" in line, line
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.h5", "s.yaml"]
