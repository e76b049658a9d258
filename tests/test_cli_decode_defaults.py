"""``netsim decode`` defaults that run: --ep without --batch, one instance unless --dp, and
--dtype (with a refusal that suggests it)."""

from __future__ import annotations

import json

import pytest

from netsim.app.cli import main
from workloads.models import model, with_dtype

BASE = ["decode", "--chip", "h100", "--topo", "dgx-h100", "--backend", "analytical"]


def _run(capsys, *argv):
    code = main([*BASE, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_ep_without_batch_runs_at_the_smallest_batch(capsys):
    code, out, _ = _run(capsys, "--model", "mixtral-8x7b", "--ep", "8", "--json")
    d = json.loads(out)
    assert code == 0 and d["batch"] == 8 and d["dp"] == 8  # batch % ep == 0; one instance
    code, out, _ = _run(capsys, "--model", "mixtral-8x7b", "--ep", "8")
    assert code == 0 and "batch 8 (default: the smallest the sharding allows)" in out
    assert "None" not in out and "e-0" not in out


def test_one_instance_unless_asked(capsys):
    code, out, _ = _run(capsys, "--model", "llama3-8b", "--json")
    assert code == 0 and json.loads(out)["dp"] == 1  # 8 chips, tp=1: one replica, not 8
    code, out, _ = _run(capsys, "--model", "llama3-8b", "--dp", "4", "--json")
    assert code == 0 and json.loads(out)["dp"] == 4


def test_dtype_sets_weight_bytes():
    m = model("llama3-70b")
    assert with_dtype(m, "fp8").weight_bytes() == pytest.approx(m.weight_bytes() / 2)
    assert with_dtype(m, "fp4").weight_bytes() == pytest.approx(m.weight_bytes() / 4)
    assert with_dtype(m, "fp8").compute_dtype == "fp8"


def test_dtype_halves_the_weight_reads_of_a_memory_bound_token(capsys):
    argv = ["--model", "llama3-8b", "--context", "1", "--json"]
    _, out, _ = _run(capsys, *argv)
    bf16 = json.loads(out)
    _, out, _ = _run(capsys, *argv, "--dtype", "fp8")
    fp8 = json.loads(out)
    # batch 1, one token of context: the HBM reads are the weights (KV of 1 token is ~0.01%)
    assert fp8["memory_s"] == pytest.approx(bf16["memory_s"] / 2, rel=0.01)


def test_chip_without_the_models_dtype_suggests_dtype(capsys):
    argv = ["decode", "--model", "deepseek-v3", "--chip", "tpu-v4", "--topo", "tpu-v4-pod",
            "--ep", "64", "--backend", "analytical"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "has no fp8 rate" in err and "--dtype bf16" in err and err.count("\n") == 1
    assert main([*argv, "--dtype", "bf16"]) == 0
