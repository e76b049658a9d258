"""Collective library costs in decode, prefill and training (``library=``, ``--library``)."""

from __future__ import annotations

import json

import pytest

from collectives import run_collective
from collectives.calibration import HARDWARE_ONLY, costs_for, library_costs, link_types
from collectives.protocols import protocol_costs, resolve
from netsim.app.cli import main
from netsim.core.errors import ConfigError
from topologies.registry import build
from workloads.decode import decode, decode_experiment, prefill
from workloads.models import TransformerModel
from workloads.train import train_experiment, train_step

TINY = TransformerModel(
    name="tiny", layers=2, hidden=64, heads=8, kv_heads=8, head_dim=8, ffn=128, vocab=256
)
#: TINY, tp=8 on dgx-h100, ring all-reduce: 2 layers x 2 all-reduces of 128 bytes.
RING = dict(tp=8, batch=1, context=16, allreduce="ring", landing="sram")
CALLS = 4
STEPS = 2 * (8 - 1) - 1  # dependent steps of an 8-rank ring all-reduce (14 messages)
KEYS = ("collective_launch", "step_overhead", "collective_efficiency", "multipath")


def test_library_costs_is_the_path_run_collective_takes():
    """nccl on dgx-h100 gives the values run_collective applies by default; none is zero."""
    g = build("dgx-h100")
    assert link_types(g) == ["nvlink"]
    nccl = library_costs("nccl", link_types(g))
    assert nccl == costs_for(["nvlink"])
    r = run_collective(g, "allreduce", "ring", "1KiB")
    # run_collective charges them under NCCL's protocol of the run (collectives.protocols)
    ranks = list(range(8))
    used = protocol_costs(resolve("allreduce", "ring", g, ranks, 1024), g, ranks).apply(nccl)
    assert r["protocol"] == "LL" and used.efficiency == nccl.efficiency * 0.5
    assert (r["launch_overhead"], r["step_overhead"], r["efficiency"], r["multipath"]) == (
        used.launch, used.step, used.efficiency, used.multipath,
    )  # fmt: skip
    # none: no software costs, but NVLink's striping over all links is the hardware's
    hw = library_costs("none", ["nvlink"])
    assert (hw.launch, hw.step, hw.efficiency, hw.multipath) == (0.0, 0.0, 1.0, True)
    assert library_costs("none", ["ici"]) == HARDWARE_ONLY
    over = library_costs("nccl", ["nvlink"], step=1e-6, multipath=False)
    assert (over.launch, over.step, over.multipath) == (6.6e-6, 1e-6, False)
    with pytest.raises(ConfigError, match=r"^library: must be one of nccl, none, got 'mpi'$"):
        library_costs("mpi", ["nvlink"])


def test_nccl_adds_calls_times_launch_plus_steps_to_the_token():
    """Ring all-reduce of 8 GPUs: 14 messages on the critical chain, 13 dependent steps.
    NCCL's costs add exactly calls x (launch + 13 x step) to the token latency over the
    same run with those two set to 0 (its efficiency and multipath kept); those two change
    the hardware time of these 16-byte messages by nanoseconds only."""
    none = decode(TINY, "h100", "dgx-h100", library="none", **RING)
    zero = dict(step_overhead=0, collective_launch=0)
    hw = decode(TINY, "h100", "dgx-h100", library="nccl", **zero, **RING)
    nccl = decode(TINY, "h100", "dgx-h100", library="nccl", **RING)
    c = costs_for(["nvlink"])
    assert nccl.collectives_per_token == {"tp_allreduce": CALLS}
    assert nccl.sites[0].run.critical_messages == STEPS + 1
    added = CALLS * (c.launch + STEPS * c.step)
    assert nccl.token_latency_s - hw.token_latency_s == pytest.approx(added, rel=1e-9)
    assert abs(hw.fabric_s - none.fabric_s) < 0.01 * added  # efficiency + multipath only
    assert nccl.token_latency_s - none.token_latency_s == pytest.approx(added, rel=0.01)
    for r in (hw, nccl):
        assert (r.compute_s, r.memory_s, r.launch_s) == (
            none.compute_s,
            none.memory_s,
            none.launch_s,
        )
    d, d0 = nccl.to_dict(), none.to_dict()
    assert (d["library"], d["library_links"]) == ("nccl", "nvlink")
    assert [d[k] for k in KEYS] == [c.launch, c.step, c.efficiency, c.multipath]
    assert (d0["library"], d0["library_links"]) == ("none", None)
    assert [d0[k] for k in KEYS] == [0.0, 0.0, 1.0, True]  # striping is the hardware's
    # the link bytes (energy) are the bytes on the wire: payload / efficiency
    assert d["energy_parts_j"]["network"] > d0["energy_parts_j"]["network"]


def test_explicit_overheads_override_the_library():
    zero = dict(step_overhead=0, collective_launch=0)
    base = decode(TINY, "h100", "dgx-h100", library="nccl", **zero, **RING)
    given = dict(step_overhead="1us", collective_launch="2us")
    r = decode(TINY, "h100", "dgx-h100", library="nccl", **given, **RING)
    d = r.to_dict()
    assert (d["step_overhead"], d["collective_launch"]) == (1e-6, 2e-6)
    assert (d["collective_efficiency"], d["multipath"]) == (0.874, True)  # the library's
    added = CALLS * (2e-6 + STEPS * 1e-6)
    assert r.token_latency_s - base.token_latency_s == pytest.approx(added, rel=1e-9)
    # with no library, an explicit step cost is applied alone
    plain = decode(TINY, "h100", "dgx-h100", step_overhead=1e-6, **RING).to_dict()
    assert [plain[k] for k in ("library", "step_overhead", "collective_launch")] == [
        "none",
        1e-6,
        0.0,
    ]
    # the sweep kind takes the same options, with units
    rec = decode_experiment(model=TINY, chip="h100", topo="dgx-h100", library="nccl",
                            collective_launch="2us", **RING)  # fmt: skip
    assert [rec[k] for k in ("library", "collective_launch", "step_overhead")] == [
        "nccl",
        2e-6,
        0.6e-6,
    ]


def test_prefill_and_train_take_the_library():
    kw = dict(tp=8, prompt=4, allreduce="ring", landing="sram")
    p0 = prefill(TINY, "h100", "dgx-h100", **kw)
    p1 = prefill(TINY, "h100", "dgx-h100", library="nccl", step_overhead=0, **kw)
    p2 = prefill(TINY, "h100", "dgx-h100", library="nccl", **kw)
    assert (p0.to_dict()["library"], p2.to_dict()["library"]) == ("none", "nccl")
    added = CALLS * (6.6e-6 + STEPS * 0.6e-6)
    assert p2.fabric_s - p1.fabric_s == pytest.approx(CALLS * STEPS * 0.6e-6, rel=1e-9)
    assert p2.fabric_s - p0.fabric_s == pytest.approx(added, rel=0.01)
    kw = dict(tp=8, global_batch=1, seq_len=1, tp_allreduce="ring", backend="analytical")
    t0 = train_step(TINY, "h100", "dgx-h100", **kw)
    t1 = train_step(TINY, "h100", "dgx-h100", library="nccl", step_overhead=0, **kw)
    t2 = train_step(TINY, "h100", "dgx-h100", library="nccl", **kw)
    calls = t2.runs["tp_allreduce"]["count"]
    assert t2.tp_comm_s - t1.tp_comm_s == pytest.approx(calls * STEPS * 0.6e-6, rel=1e-9)
    assert t1.tp_comm_s > t0.tp_comm_s  # + launch 6.6 us per call
    assert (t0.to_dict()["library"], t2.to_dict()["library_links"]) == ("none", "nvlink")
    rec = train_experiment(model=TINY, chip="h100", topo="dgx-h100", library="nccl", **kw)
    assert [rec[k] for k in KEYS] == [6.6e-6, 0.6e-6, 0.874, True]


def test_a_fabric_without_library_costs_says_so():
    r = decode(TINY, "h100", "torus:dims=2x4", library="nccl", backend="analytical", **RING)
    d = r.to_dict()
    assert d["library_links"] == "ici" and d["collective_launch"] == d["step_overhead"] == 0.0
    note = "library: nccl has no software costs on link types ici"
    assert any(n.startswith(note) for n in d["notes"])


def test_cli_library_json_and_text(capsys):
    argv = ["decode", "--model", "llama3-8b", "--chip", "h100", "--topo", "dgx-h100", "--tp", "8",
            "--allreduce", "ring", "--backend", "analytical"]  # fmt: skip
    assert main([*argv, "--library", "nccl", "--step-overhead", "1us", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [d[k] for k in ("library", *KEYS)] == ["nccl", 6.6e-6, 1e-6, 0.874, True]
    assert main([*argv, "--library", "nccl"]) == 0
    out = capsys.readouterr().out
    line = "collective library nccl on nvlink: launch 6.6us, step 600ns, efficiency 0.874"
    assert f"{line}, multipath on" in out
    assert main(argv) == 0
    assert "collective library none (hardware only)" in capsys.readouterr().out
    assert main(["train", "--model", "llama3-8b", "--chip", "h100", "--topo", "dgx-h100", "--zero",
                 "1", "--global-batch", "8", "--seq-len", "128", "--backend", "analytical",
                 "--library", "nccl"]) == 0  # fmt: skip
    assert "collective library nccl on nvlink" in capsys.readouterr().out


@pytest.mark.parametrize("verb", ["decode", "train"])
def test_cli_bad_library_is_one_line_exit_2(verb, capsys):
    code = main([verb, "--model", "llama3-8b", "--chip", "h100", "--topo", "dgx-h100",
                 "--library", "mpi"])  # fmt: skip
    assert code == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert err == ["error: library: must be one of nccl, none, got 'mpi'"]
    with pytest.raises(ConfigError, match=r"^library: "):
        decode_experiment(model="llama3-8b", chip="h100", topo="dgx-h100", library="NCCL")
