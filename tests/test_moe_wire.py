"""MoE wire formats: per-model dispatch and combine dtypes, overrides on the
API, the CLI and the decode sweep kind."""

from __future__ import annotations

import json

import pytest
from model_helpers import TINY_MOE

from netsim.app.cli import main
from netsim.core.errors import ConfigError
from workloads.collective_needs import decode_collectives
from workloads.decode import decode, decode_experiment
from workloads.models import model
from workloads.moe_bytes import parse_wire_dtype

TINY = TINY_MOE
# 8 chips on one InfiniBand switch: every pair one switch away, no shared links.
STAR = "tree:depth=1,radix=8"
KW = dict(ep=8, batch=4096, context=16, landing="sram", backend="flow")


def test_wire_bytes_follow_the_spec():
    # DeepSeek-V3: 7168 FP8 channels + 7168/128 = 56 FP32 scales.
    assert parse_wire_dtype("fp8/128").token_bytes(7168) == 7168 + 56 * 4
    assert parse_wire_dtype("bf16").token_bytes(7168) == 2 * 7168
    assert parse_wire_dtype("FP8").token_bytes(100) == 100
    assert parse_wire_dtype("fp8/128").token_bytes(129) == 129 + 2 * 4  # partial group
    for bad in ("fp4", "fp8/0", "fp8/x", "bf16/"):
        with pytest.raises(ConfigError, match="dispatch_dtype"):
            parse_wire_dtype(bad)


def test_presets_carry_their_wire_formats():
    ds = model("deepseek-v3")
    assert ds.dispatch_bytes_per_token() == 7392
    assert ds.combine_bytes_per_token() == 14336
    mix = model("mixtral-8x7b")  # no wire format given: the activation dtype both ways
    assert mix.dispatch_bytes_per_token() == mix.combine_bytes_per_token() == 4096 * 2
    with pytest.raises(ConfigError, match="combine_dtype"):
        TINY.replace(combine_dtype="e5m2")


def test_collective_sizes_use_the_wire_formats():
    needs = {n.name: n for n in decode_collectives("deepseek-v3", batch=64, ep=8)}
    copies = 64 / 8 * 8 * 7 / 8
    assert needs["moe_dispatch"].nbytes == copies * 7392
    assert needs["moe_combine"].nbytes == copies * 14336


def test_fp8_dispatch_is_faster_than_its_bf16_combine_by_the_byte_ratio():
    """On one switch with uniform routing every chip sends and receives the same bytes
    (512 tokens x 2 experts x 7/8 remote), so dispatch and combine times are bound by the
    50 GB/s links and scale with bytes per token (up to the fixed latency, ~1% here)."""
    r = decode(TINY, "h100", STAR, dispatch_dtype="fp8/128", combine_dtype="bf16", **KW)
    t = {s.name: s.time_s for s in r.sites}
    assert t["moe_combine"] / t["moe_dispatch"] == pytest.approx(2048 / 1056, rel=0.03)
    d = r.to_dict()
    assert (d["dispatch_dtype"], d["dispatch_bytes_per_token"]) == ("fp8/128", 1056)
    assert (d["combine_dtype"], d["combine_bytes_per_token"]) == ("bf16", 2048)
    same = decode(TINY, "h100", STAR, **KW).to_dict()
    assert same["dispatch_dtype"] == same["combine_dtype"] == "activation"
    assert same["moe_dispatch_s"] == pytest.approx(same["moe_combine_s"], rel=1e-6)
    assert same["moe_combine_s"] == pytest.approx(t["moe_combine"], rel=1e-6)


def test_wire_dtype_needs_an_moe_layer_with_ep():
    dense = model("llama3-8b")
    with pytest.raises(ConfigError, match="dispatch_dtype: applies to MoE"):
        decode(dense, "h100", "dgx-h100", dispatch_dtype="fp8", context=16)


def test_cli_dtype_options_and_per_layer_times(capsys):
    argv = ["decode", "--model", "deepseek-v3", "--chip", "h100:hbm.capacity=1TB"]
    argv += ["--topo", "dgx-h100", "--ep", "8", "--batch", "64", "--context", "8"]
    argv += ["--backend", "flow", "--dispatch-dtype", "bf16", "--json"]
    assert main(argv) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["dispatch_bytes_per_token"] == d["combine_bytes_per_token"] == 14336
    sites = {s["name"]: s["time_s"] for s in d["collective_sites"]}
    assert d["moe_dispatch_s"] == sites["moe_dispatch"]
    assert d["moe_combine_s"] == pytest.approx(d["moe_dispatch_s"], rel=1e-6)
    assert main(argv[:-1]) == 0
    out = capsys.readouterr().out
    assert "fp8/128" not in out and "bf16, 14336 B/token" in out
    line = next(x for x in out.splitlines() if "MoE per layer" in x)
    assert "combine/dispatch 1.00" in line
    assert main([*argv[:-3], "--combine-dtype", "fp7"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "combine_dtype" in err[0] and "fp7" in err[0]


def test_sweep_kind_takes_the_dtypes():
    rec = decode_experiment(
        model="deepseek-v3",
        chip="h100:hbm.capacity=1TB",
        topo="dgx-h100",
        ep=8,
        batch=64,
        context=8,
        backend="analytical",
        dispatch_dtype="fp8",
    )
    assert rec["dispatch_bytes_per_token"] == 7168
    assert rec["combine_bytes_per_token"] == 14336
