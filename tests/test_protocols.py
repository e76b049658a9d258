"""NCCL's protocol of a run (collectives/protocols.py): which one, and where it is refused."""

from __future__ import annotations

import json

import pytest

from collectives import run_collective
from collectives.calibration import LIBRARY_COSTS
from collectives.protocols import P2P_LL_THRESHOLD, resolve
from collectives.tuner import nccl_steps, nccl_times, system
from netsim.app.cli import main
from netsim.core.engine.packetise import wire_bytes
from netsim.core.errors import ConfigError
from netsim.core.linktypes import LINK_TYPES
from topologies.registry import build as topology

TWO = topology("hierarchical:nodes=2,gpus=4")
RANKS = list(range(8))
DGX = topology("dgx-h100")


def _fastest(op, algo_key, nbytes, graph=TWO, ranks=RANKS):
    times = nccl_times(system(graph, ranks), nbytes, op)
    mine = {k: t for k, t in times.items() if k.startswith(algo_key + "/")}
    return min(mine, key=mine.get).split("/")[1]


@pytest.mark.parametrize("nbytes", [8, 64 << 10, 1 << 30])
@pytest.mark.parametrize("algo, key", [("ring", "ring"), ("tree", "tree")])
def test_named_algorithm_takes_its_fastest_protocol_in_nccls_model(algo, key, nbytes):
    got = resolve("allreduce", algo, TWO, RANKS, nbytes)
    assert got.protocol == _fastest("allreduce", key, nbytes) and got.nccl_algo == key


def test_small_messages_take_ll_and_large_ones_simple():
    assert resolve("allreduce", "ring", DGX, list(range(8)), 8).protocol == "LL"
    assert resolve("allreduce", "ring", DGX, list(range(8)), 1 << 30).protocol == "Simple"


def test_nvls_algorithms_run_simple_only():
    for algo in ("nvls-tree",):
        assert resolve("allreduce", algo, TWO, RANKS, 8).protocol == "Simple"
        with pytest.raises(ConfigError, match="protocol: NCCL runs nvls-tree with Simple only"):
            resolve("allreduce", algo, TWO, RANKS, 8, "LL")


def test_asked_protocol_is_used_and_restricts_auto():
    assert resolve("allreduce", "ring", TWO, RANKS, 1 << 30, "LL").protocol == "LL"
    r = run_collective("hierarchical:nodes=2,gpus=4", "allreduce", "auto", "8B",
                       backend="analytical", protocol="Simple")  # fmt: skip
    assert r["protocol"] == "Simple" and r["tuner"]["protocol"] == "Simple"
    times = nccl_times(system(TWO, RANKS), 8)
    simple = min((k for k in times if k.endswith("/Simple")), key=times.get)
    assert r["tuner"]["nccl_algo"] == simple.split("/")[0]


def test_ring_ops_other_than_allreduce_take_ncclss_ring_model():
    """tuning.cc: allgather has n-1 steps, latency baseLat + (n-1) hwLat on one node."""
    sy = system(DGX, list(range(8)))
    assert nccl_steps("allgather", 8) == 7 and nccl_steps("broadcast", 8) == 8
    t = nccl_times(sy, 0, "allgather")
    assert set(t) == {"ring/LL", "ring/LL128", "ring/Simple"}
    assert t["ring/LL"] == pytest.approx((6.6 + 7 * 0.6) * 1e-6)
    assert resolve("allgather", "ring", DGX, list(range(8)), 8).protocol == "LL"


def test_p2p_uses_ll_up_to_the_threshold_per_peer():
    k = 4
    at = resolve("alltoall", "direct", DGX, list(range(k)), k * P2P_LL_THRESHOLD)
    above = resolve("alltoall", "direct", DGX, list(range(k)), k * P2P_LL_THRESHOLD + k)
    assert (at.protocol, above.protocol) == ("LL", "Simple")
    assert resolve("sendrecv", "direct", DGX, [0, 1], 1 << 20).protocol == "Simple"
    with pytest.raises(ConfigError, match="p2p sends use LL or Simple"):
        resolve("sendrecv", "direct", DGX, [0, 1], 8, "LL128")


def test_no_protocol_outside_ncclss_algorithms_or_without_the_library():
    assert resolve("allreduce", "oneshot", DGX, list(range(8)), 8).protocol is None
    with pytest.raises(ConfigError, match="oneshot allreduce is not one of NCCL's algorithms"):
        resolve("allreduce", "oneshot", DGX, list(range(8)), 8, "LL")
    assert resolve("allreduce", "ring", DGX, list(range(8)), 8, library="none").protocol is None
    with pytest.raises(ConfigError, match="protocol: NCCL's protocols apply with library nccl"):
        resolve("allreduce", "ring", DGX, list(range(8)), 8, "LL", "none")
    with pytest.raises(ConfigError, match="protocol: must be one of"):
        resolve("allreduce", "ring", DGX, list(range(8)), 8, "ll")


def test_json_and_cli_report_the_protocol(capsys):
    argv = ["collective", "--topo", "hierarchical:nodes=2,gpus=4", "--algo", "nvls-tree",
            "--size", "8B", "--backend", "analytical"]  # fmt: skip
    assert main([*argv, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert (r["protocol"], r["protocol_requested"]) == ("Simple", "auto")
    assert main(argv) == 0
    assert "protocol    Simple" in capsys.readouterr().out
    assert main([*argv, "--protocol", "LL"]) == 2
    err = capsys.readouterr().err
    assert "protocol: NCCL runs nvls-tree with Simple only" in err and "Traceback" not in err


# (topology, netsim algo, NCCL key, protocol): on these the schedule's critical path has
# NCCL's step counts (one node: 2(p-1) ring steps; tree: 2(ppn-1) NVLink + 2 log2(nodes)
# network steps; NVLS+tree: one in-node NVLS phase + 2 log2(nodes) network steps).
EXACT = [
    ("dgx-h100", "ring", "ring", "LL"),
    ("dgx-h100", "ring", "ring", "LL128"),
    ("dgx-h100", "ring", "ring", "Simple"),
    ("hierarchical:nodes=2,gpus=4", "tree", "tree", "LL"),
    ("hierarchical:nodes=4,gpus=2", "tree", "tree", "LL128"),
    ("hierarchical:nodes=2,gpus=4", "nvls-tree", "nvls_tree", "Simple"),
    ("hierarchical:nodes=2,gpus=1", "ring", "ring", "LL"),
]


@pytest.mark.parametrize("topo, algo, key, proto", EXACT)
def test_library_latency_of_a_small_message_is_nccls_modelled_latency(topo, algo, key, proto):
    """What NCCL's protocol adds to the hardware time of an 8 B all-reduce is NCCL's own
    modelled latency (tuning.cc: baseLat once per call + hwLat per step), counted once."""
    a = run_collective(topo, "allreduce", algo, "8B", backend="analytical", protocol=proto)
    hw = run_collective(topo, "allreduce", algo, "8B", backend="analytical", library="none")
    sy = system(topology(topo), a["ranks"])
    nccl = nccl_times(sy, 0)[f"{key}/{proto}"]  # latency alone: 0 bytes
    assert a["protocol"] == proto
    assert a["time_s"] - hw["time_s"] == pytest.approx(nccl, abs=1e-9)  # wire of 8 B: < 1 ns


@pytest.mark.parametrize("proto, payload", [("LL", 0.5), ("Simple", 1.0)])
def test_protocol_payload_fraction_sets_the_wire_bytes(proto, payload):
    """One InfiniBand send of n bytes carries ceil(n / (efficiency * payload)) bytes in 4 KiB
    packets (26 B headers), after NCCL's per-call cost: the alpha-beta closed form (NCCL's
    p2p has no LL128)."""
    n, ib = 1 << 20, LINK_TYPES["ib"]
    r = run_collective("hierarchical:nodes=2", "sendrecv", "direct", n, ranks="0,8",
                       backend="analytical", protocol=proto)  # fmt: skip
    eff = LIBRARY_COSTS["ib"].efficiency * payload
    assert r["efficiency"] == pytest.approx(eff)
    wire = wire_bytes(-(-n // eff), ib.mtu, ib.header)
    closed = r["launch_overhead"] + 2 * ib.latency + ib.switch_latency + wire / ib.bandwidth
    assert r["time_s"] == pytest.approx(closed, rel=1e-9)


def test_explicit_costs_still_override_the_protocol():
    r = run_collective("dgx-h100", "allreduce", "ring", "8B", backend="analytical",
                       step_overhead="1us", efficiency=0.9)  # fmt: skip
    assert (r["protocol"], r["step_overhead"], r["efficiency"]) == ("LL", 1e-6, 0.9)
    assert r["launch_overhead"] == pytest.approx(7.2e-6)  # LL: baseLat 6.6 + first step 0.6


def test_size_table_names_each_rows_protocol(capsys):
    argv = ["collective", "--topo", "hierarchical:nodes=2,gpus=2", "--sizes", "8B:2MiB:x512",
            "--backend", "analytical", "--algo", "ring,oneshot"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "collective library nccl, protocol LL" in out
    assert "ring/LL " in out and "ring/LL128 " in out  # 8 B LL, 2 MiB LL128 (NCCL's model)
    assert "oneshot/" not in out  # not an NCCL algorithm: no protocol
