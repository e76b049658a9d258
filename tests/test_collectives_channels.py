"""Channels and rails: every ring and tree channel computes the collective on data, crosses
nodes on its own rail, and the channels add up their NICs' bandwidth."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from schedule_helpers import check

from collectives import build, run_collective
from collectives.channels import default_channels, layout, ring_orders
from collectives.verify import random_inputs
from netsim.app.cli import main
from netsim.core.errors import ConfigError
from topologies.registry import build as topology

H24 = topology("hierarchical:nodes=2,gpus=4")
H32 = topology("hierarchical:nodes=3,gpus=2")
H52 = topology("hierarchical:nodes=5,gpus=2")
ONE = topology("hierarchical:nodes=1,gpus=4")


def _node(G, chip):
    return G.nodes[chip]["node"]


def _inter(G, s):
    """Transfers between chips of different nodes."""
    return [t for t in s.transfers if _node(G, t.src) != _node(G, t.dsts[0])]


@pytest.mark.parametrize("op", ["allreduce", "reduce_scatter", "allgather"])
@pytest.mark.parametrize("G", [H24, H32], ids=["2x4", "3x2"])
@pytest.mark.parametrize("channels", [None, 1, 3])
@pytest.mark.parametrize("pxn", [False, True])
def test_ring_channels_compute_the_collective(op, G, channels, pxn):
    p = G.graph["chips"]
    for count, chunks in ((37, 1), (64, 2)):
        s = build(op, "ring", range(p), count, graph=G, channels=channels, pxn=pxn, chunks=chunks)
        check(s, random_inputs(s, 7))


@pytest.mark.parametrize("G", [H24, H32, H52], ids=["2x4", "3x2", "5x2"])
@pytest.mark.parametrize("channels", [None, 1, 3])
def test_tree_channels_compute_the_allreduce(G, channels):
    p = G.graph["chips"]
    for count, chunks in ((41, 1), (64, 3)):
        s = build("allreduce", "tree", range(p), count, graph=G, channels=channels, chunks=chunks)
        check(s, random_inputs(s, 7))


def test_default_is_one_channel_per_nic_on_several_nodes_else_one():
    assert default_channels(range(8), H24) == 4
    assert default_channels(range(6), H32) == 2
    assert default_channels(range(4), ONE) == 1
    assert default_channels(range(8), topology("dgx-h100")) == 1
    assert default_channels(range(8), topology("torus:dims=8")) == 1
    # Two ranks per node: one channel per NIC the collective has in a node.
    assert default_channels([0, 1, 4, 5], H24) == 2


def test_every_channel_ring_leaves_each_node_on_another_rail():
    rings = ring_orders(range(8), H24, 4)
    exits = [[o[n * 4 + 3] for n in range(2)] for o, _ in rings]
    rails = [H24.nodes[c]["rail"] for e in exits for c in e]
    assert Counter(rails) == {r: 2 for r in range(4)}  # each NIC sends once per node pair


def test_ring_nic_traffic_is_the_closed_form_on_every_nic():
    """Each chip is the exit of one channel: it sends 2 (p-1) chunks of count/(C p)."""
    count, p, C = 4 * 8 * 5, 8, 4
    s = build("allreduce", "ring", range(p), count, graph=H24)
    sent = Counter()
    for t in _inter(H24, s):
        sent[t.src] += t.count
    assert sent == {c: 2 * (p - 1) * count // (C * p) for c in range(p)}


def test_pxn_sends_are_rail_matched_and_direct_ones_cross_rails():
    rail = {c: H24.nodes[c]["rail"] for c in range(8)}
    direct = _inter(H24, build("allreduce", "ring", range(8), 64, graph=H24))
    pxn = _inter(H24, build("allreduce", "ring", range(8), 64, graph=H24, pxn=True))
    assert direct and all(rail[t.src] != rail[t.dsts[0]] for t in direct)
    assert pxn and all(rail[t.src] == rail[t.dsts[0]] for t in pxn)
    assert {t.src_buf for t in pxn} == {"pxn0", "pxg0"}  # sent from the proxy's scratch


def test_tree_crosses_nodes_between_heads_of_one_rail_per_channel():
    s = build("allreduce", "tree", range(8), 64, graph=H24, chunks=1)
    inter = _inter(H24, s)
    assert all(H24.nodes[t.src]["rail"] == H24.nodes[t.dsts[0]]["rail"] for t in inter)
    assert {H24.nodes[t.src]["rail"] for t in inter} == {0, 1, 2, 3}
    # Two nodes: per channel and tree one send up and one down of count/(2C) elements.
    assert sum(t.count for t in inter) == 2 * 64


def test_channels_multiply_the_nic_bound_bandwidth():
    """NICs slow, NVLink fast: C rails give C times the bandwidth of one (headers cancel)."""
    topo = "hierarchical:nodes=2,gpus=4,nic_bandwidth=1GB/s,scale_up_bandwidth=400GB/s"
    kw = dict(backend="flow", step_overhead=0, launch_overhead=0, efficiency=1.0, mtu=4096,
              header=26)  # fmt: skip
    one = run_collective(topo, "allreduce", "ring", "8MiB", channels=1, **kw)
    four = run_collective(topo, "allreduce", "ring", "8MiB", **kw)
    assert four["channels"] == 4 and one["channels"] == 1
    assert four["busbw"] / one["busbw"] == pytest.approx(4, rel=0.03)
    # And the closed form: busbw = C * NIC bandwidth * payload share of a 4 KiB IB packet.
    assert four["busbw"] == pytest.approx(4e9 * 4096 / (4096 + 26), rel=0.03)


def test_layout_and_channel_errors():
    with pytest.raises(ConfigError, match="same number of ranks in every node"):
        layout([0, 1, 4], H24)
    with pytest.raises(ConfigError, match="channels"):
        build("allreduce", "ring", range(8), 64, graph=H24, channels=0)
    with pytest.raises(ConfigError, match="pxn: needs ranks on two or more nodes"):
        build("allreduce", "ring", range(4), 64, graph=ONE, pxn=True)
    with pytest.raises(ConfigError, match="pxn: must be true or false"):
        build("allreduce", "ring", range(8), 64, graph=H24, pxn="yes")


def test_cli_channels_in_json_and_text(capsys):
    argv = ["collective", "--topo", "hierarchical:nodes=2,gpus=2", "--algo", "ring",
            "--size", "64KiB", "--backend", "analytical"]  # fmt: skip
    assert main([*argv, "--json", "--check"]) == 0
    assert json.loads(capsys.readouterr().out)["channels"] == 2
    assert main([*argv, "--json", "--channels", "1", "--pxn"]) == 0
    assert json.loads(capsys.readouterr().out)["channels"] == 1
    assert main(argv) == 0
    assert "channels    2" in capsys.readouterr().out
    assert main([*argv, "--channels", "0"]) == 2
    err = capsys.readouterr().err
    assert "channels" in err and "Traceback" not in err
