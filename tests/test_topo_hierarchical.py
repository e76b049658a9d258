"""Tests of topologies.hierarchical: NVSwitch nodes on a rail-optimised leaf-spine fabric,
against closed forms and the DGX SuperPOD (H100) reference architecture."""

from __future__ import annotations

import math
from collections import Counter

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from topo_helpers import brute_bisection, chip_distances, chips_of

from collectives import make_backend
from netsim.core.errors import ConfigError
from netsim.core.linktypes import LINK_TYPES
from topologies.graph import LinkSpec
from topologies.hierarchical import PRESETS, fabric_size, hierarchical
from topologies.nvswitch import link_split

NVLINK = LINK_TYPES["nvlink"].bandwidth
IB = LINK_TYPES["ib"].bandwidth


def by_role(G: nx.Graph, role: str) -> list[int]:
    return [v for v, d in G.nodes(data=True) if d.get("role") == role]


def closed_bisection(nodes, gpus, links, nic_bw, su_bw):
    m = nodes * gpus // 2
    r = m % gpus
    return m * nic_bw + min(r, gpus - r) * links * su_bw


# --------------------------------------------------------------------------- sizing


@pytest.mark.parametrize(
    ("sus", "nodes", "gpus", "leaves", "spines", "cables"),
    [
        (1, 31, 248, 8, 4, 256),
        (2, 63, 504, 16, 8, 512),
        (3, 95, 760, 24, 16, 768),
        (4, 127, 1016, 32, 16, 1024),
    ],
)
def test_superpod_table_4(sus, nodes, gpus, leaves, spines, cables):
    # NVIDIA DGX SuperPOD reference architecture with DGX H100 (RA-11333-001), Table 4:
    # SU count, node count, GPU count, leaf and spine switches, spine-leaf cables.
    size = fabric_size(nodes, 8, 64)
    assert (size["groups"], size["leaves"], size["spines"]) == (sus, leaves, spines)
    assert size["spine_leaf_links"] == cables
    if sus <= 2:
        G = hierarchical(nodes)
        assert G.graph["chips"] == gpus
        assert len(by_role(G, "leaf")) == leaves and len(by_role(G, "spine")) == spines
        fabric = [d["count"] for *_, d in G.edges(data=True) if d["role"] == "fabric"]
        assert sum(fabric) == cables
        assert sum(1 for *_, d in G.edges(data=True) if d["role"] == "nic") == gpus


@pytest.mark.parametrize(("nodes", "gpus", "switches", "links"), [(4, 8, 4, 18), (3, 4, 2, 3)])
def test_structure(nodes, gpus, switches, links):
    G = hierarchical(nodes, gpus=gpus, switches=switches, links_per_gpu=links, leaf_radix=8)
    n = nodes * gpus
    size = fabric_size(nodes, gpus, 8)
    assert G.graph["chips"] == n and chips_of(G) == list(range(n))
    nvs = by_role(G, "nvswitch")
    assert len(nvs) == nodes * switches and nvs == list(range(n, n + nodes * switches))
    leaves, spines = by_role(G, "leaf"), by_role(G, "spine")
    assert (len(leaves), len(spines)) == (size["leaves"], size["spines"])
    assert leaves + spines == list(range(n + len(nvs), G.number_of_nodes()))
    split = link_split(links, switches)
    down = size["nodes_per_leaf"]
    for c in range(n):
        d = G.nodes[c]
        node, rank = divmod(c, gpus)
        assert (d["node"], d["local_rank"], d["rail"]) == (node, rank, rank)
        assert d["injection_bandwidth"] == pytest.approx(links * NVLINK + IB)
        assert d["nic_bandwidth"] == IB
        assert G.degree(c) == switches + 1
        (leaf,) = [v for v in G.adj[c] if G.nodes[v]["role"] == "leaf"]
        assert G.nodes[leaf]["rail"] == rank and G.nodes[leaf]["group"] == node // down
        assert G.edges[c, leaf]["bandwidth"] == IB and G.edges[c, leaf]["link"] == "ib"
        mine = [v for v in G.adj[c] if G.nodes[v]["role"] == "nvswitch"]
        assert {G.nodes[v]["node"] for v in mine} == {node}
        assert [G.edges[c, v]["count"] for v in sorted(mine)] == split
    for s in nvs:
        assert G.nodes[s]["level"] == 0 and G.nodes[s]["reduction"] is True
    for s in leaves:
        assert G.nodes[s]["level"] == 0 and G.nodes[s]["reduction"] is False
    for s in spines:
        assert G.nodes[s]["level"] == 1
    # Port budgets: leaves use leaf_radix/2 ports down at most and exactly leaf_radix/2 up;
    # spines use at most leaf_radix ports.
    for s in leaves:
        ports = Counter(
            G.edges[s, v]["role"] for v in G.adj[s] for _ in range(G.edges[s, v]["count"])
        )
        assert ports["nic"] <= down and ports["fabric"] == down
    for s in spines:
        assert sum(G.edges[s, v]["count"] for v in G.adj[s]) <= 8
    assert nx.is_connected(G)


@pytest.mark.parametrize(
    ("nodes", "gpus", "radix"), [(1, 4, 8), (3, 2, 4), (2, 1, 4), (3, 1, 4), (4, 4, 8)]
)
def test_distances(nodes, gpus, radix):
    G = hierarchical(nodes, gpus=gpus, switches=2, links_per_gpu=2, leaf_radix=radix)
    down = radix // 2
    d = chip_distances(G)
    for (a, b), hops in d.items():
        na, ra = divmod(a, gpus)
        nb, rb = divmod(b, gpus)
        same_leaf = ra == rb and na // down == nb // down
        assert hops == (2 if na == nb or same_leaf else 4), (a, b)
    single = nodes == 1 or fabric_size(nodes, gpus, radix)["leaves"] == 1
    assert max(d.values()) == (2 if single else 4)


# --------------------------------------------------------------------------- bisection


@pytest.mark.parametrize(
    ("nodes", "gpus", "switches", "links", "radix", "nic_bw", "su_bw"),
    [
        (2, 2, 1, 2, 4, 30e9, 10e9),
        (3, 2, 1, 2, 4, 30e9, 10e9),
        (3, 3, 2, 3, 6, 30e9, 10e9),
        (5, 2, 1, 1, 6, 30e9, 10e9),  # two groups of nodes
        (3, 2, 1, 1, 4, 100e9, 10e9),  # NIC faster than the NVLinks
        (1, 6, 2, 2, 8, 30e9, 10e9),  # a single node
    ],
)
def test_bisection_matches_brute_force(nodes, gpus, switches, links, radix, nic_bw, su_bw):
    G = hierarchical(
        nodes,
        gpus=gpus,
        switches=switches,
        links_per_gpu=links,
        leaf_radix=radix,
        nic=LinkSpec("ib", bandwidth=nic_bw),
        scale_up=LinkSpec("nvlink", bandwidth=su_bw),
    )
    expect = closed_bisection(nodes, gpus, links, nic_bw, su_bw)
    assert G.graph["bisection_bandwidth"] == pytest.approx(expect)
    assert brute_bisection(G) == pytest.approx(expect)


def test_bisection_links_of_dgx_pod():
    G = hierarchical(4)
    # 32 GPUs: 16 NICs of 400 Gb/s cross the cut between nodes {0,1} and {2,3}.
    assert G.graph["bisection_bandwidth"] == pytest.approx(16 * 50e9)
    assert G.graph["bisection_links"] == 16
    G = hierarchical(3)
    # 24 GPUs, 12 per side: one node is split 4|4 and its 4 GPUs' 18 NVLinks cross too.
    assert G.graph["bisection_bandwidth"] == pytest.approx(12 * IB + 4 * 18 * NVLINK)
    assert G.graph["bisection_links"] == 12 + 4 * 18


@settings(max_examples=30, deadline=None)
@given(
    nodes=st.integers(1, 6),
    gpus=st.integers(1, 4),
    radix=st.sampled_from([2, 4, 6, 8]),
)
def test_fabric_properties(nodes, gpus, radix):
    down = radix // 2
    leaves = math.ceil(nodes / down) * gpus
    if leaves > radix:
        with pytest.raises(ConfigError, match=r"^nodes: a two-tier rail-optimised fabric"):
            hierarchical(nodes, gpus=gpus, switches=1, links_per_gpu=1, leaf_radix=radix)
        return
    G = hierarchical(nodes, gpus=gpus, switches=1, links_per_gpu=1, leaf_radix=radix)
    assert nx.is_connected(G)
    spines = by_role(G, "spine")
    for s in by_role(G, "leaf"):
        attached = [v for v in G.adj[s] if G.nodes[v]["kind"] == "chip"]
        up = sum(G.edges[s, v]["count"] for v in spines if v in G.adj[s])
        assert len(attached) <= down
        # Non-blocking: uplink bandwidth covers the downlinks (when there are spines).
        assert up == (down if spines else 0)
        assert all(G.has_edge(s, v) for v in spines)
    for s in spines:
        assert sum(G.edges[s, v]["count"] for v in G.adj[s]) <= radix
    assert G.graph["bisection_bandwidth"] == pytest.approx(
        closed_bisection(nodes, gpus, 1, IB, NVLINK)
    )


# --------------------------------------------------------------------------- presets


def _preset(name: str) -> nx.Graph:
    entry = PRESETS[name]
    assert entry["func"] == "hierarchical" and entry["source"] and entry["description"]
    return hierarchical(**entry["params"])


@pytest.mark.parametrize("backend", ["flow", "packet"])
def test_a_gpu_drives_its_nvlinks_and_its_nic_at_once(backend):
    """The NIC hangs off the GPU's PCIe switch (DGX H100), outside the NVLink budget: an
    NVLink send (GPU 0 -> 1) and a NIC send (GPU 0 -> 2, other node, same rail) started
    together each take the time they take alone, its wire bytes (payload plus one header
    per MTU) over its link's bandwidth plus < 1 us of latencies. With the NIC inside the
    NVLink budget (50 GB/s here) the two would share it and each take about twice as long."""
    G = hierarchical(2, gpus=2, switches=1, links_per_gpu=2)
    n = 2**24
    alone = {}
    for dst, name, bw in ((1, "nvlink", 2 * NVLINK), (2, "ib", IB)):
        lt = LINK_TYPES[name]
        wire = n + math.ceil(n / lt.mtu) * lt.header
        (alone[dst],) = _arrivals(G, backend, [(0, dst, n)])
        assert alone[dst] == pytest.approx(wire / bw, abs=1e-6)
    both = _arrivals(G, backend, [(0, 1, n), (0, 2, n)])
    assert both == pytest.approx([alone[1], alone[2]], rel=1e-9)


def _arrivals(G: nx.Graph, backend: str, sends: list[tuple[int, int, int]]) -> list[float]:
    """Start ``sends`` = [(src, dst, nbytes)] together; each message's arrival time."""
    net = make_backend(G, backend)
    out: dict[int, float] = {}
    for i, (s, d, n) in enumerate(sends):
        net.send(s, d, n).callbacks.append(lambda _, i=i: out.setdefault(i, net.env.now))
    net.run()
    return [out[i] for i in range(len(sends))]


def test_superpod_presets():
    G = _preset("dgx-h100-superpod-4")
    # 4 DGX H100: 32 GPUs, 16 NVSwitch chips, one SU fabric of 8 rail leaves + 4 spines;
    # NDR = 400 Gb/s per NIC; NVLink 450 GB/s per direction per GPU, plus the NIC (on PCIe).
    assert G.graph["chips"] == 32
    assert (len(by_role(G, "nvswitch")), len(by_role(G, "leaf")), len(by_role(G, "spine"))) == (
        16,
        8,
        4,
    )
    assert G.nodes[0]["nic_bandwidth"] * 8 == pytest.approx(400e9)
    assert G.nodes[0]["injection_bandwidth"] == pytest.approx(450e9 + 50e9)
    G = _preset("dgx-h100-superpod-su")
    assert G.graph["chips"] == 248  # RA Table 4: 31 nodes, 248 GPUs per SU


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"nodes": 0}, r"^nodes: must be an integer >= 1, got 0$"),
        (
            {"nodes": 257},
            r"^nodes: a two-tier rail-optimised fabric of leaf_radix=64 holds at most 256 "
            r"nodes of 8 GPUs, got 257$",
        ),
        ({"nodes": 2, "leaf_radix": 7}, r"^leaf_radix: must be an even integer >= 2, got 7$"),
        ({"nodes": 2, "links_per_gpu": 2}, r"^links_per_gpu: must be an integer >= 4, got 2$"),
        ({"nodes": 2, "nic": LinkSpec("pcie")}, r"^nic_link: must be one of .*, got 'pcie'$"),
        ({"nodes": 2, "scale_up": LinkSpec("x")}, r"^scale_up_link: must be one of .*, got 'x'$"),
        (
            {"nodes": 2, "nic": LinkSpec("ib", bandwidth=0)},
            r"^nic_bandwidth: must be a finite number > 0, got 0$",
        ),
        (
            {"nodes": 2, "fabric_reduction": "no"},
            r"^fabric_reduction: must be true or false, got 'no'$",
        ),
    ],
)
def test_errors_name_the_parameter(kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern) as exc:
        hierarchical(**kwargs)
    assert "\n" not in str(exc.value)
