"""Tests of the GB200 SuperPOD compute fabric (hierarchical with ``rails_per_leaf``) against
closed forms and the cited numbers of the DGX SuperPOD GB200 reference architecture."""

from __future__ import annotations

from collections import Counter

import networkx as nx
import pytest
from topo_helpers import brute_bisection, chip_distances

from collectives.api import run_collective
from netsim.core.errors import ConfigError
from netsim.core.linktypes import LINK_TYPES
from topologies.graph import LinkSpec
from topologies.hierarchical import PRESETS, fabric_size, hierarchical
from topologies.registry import build

IB = LINK_TYPES["ib"].bandwidth


def _roles(G: nx.Graph) -> Counter:
    return Counter(d.get("role") for _, d in G.nodes(data=True) if d["kind"] == "switch")


@pytest.mark.parametrize(
    ("racks", "sus", "leaves", "spines"),
    [(1, 1, 18, 16), (2, 1, 18, 16), (8, 1, 18, 16), (9, 2, 36, 32), (20, 3, 54, 32)],
)
def test_gb200_su_sizing(racks, sus, leaves, spines):
    """A 64-port non-blocking leaf has 32 NIC ports: one compute tray's 4 NICs from each of
    the SU's 8 racks (RA: 8 racks per SU, one 400G NIC per GPU). 18 trays per rack give
    18 leaves per SU; the fabric is cabled for whole SUs (RA, 'Network Fabrics')."""
    size = fabric_size(racks, 72, 64, 4)
    assert (size["nodes_per_leaf"], size["groups"]) == (8, sus)
    assert (size["leaves"], size["spines"]) == (leaves, spines)
    # non-blocking: every leaf has 32 uplinks, spread evenly over the spines
    assert size["links_per_spine_edge"] * spines == 32
    assert size["spine_leaf_links"] == 32 * leaves


def test_two_tiers_end_at_three_sus():
    # 4 SUs = 72 leaves > 64 spine ports: a third tier would be needed (not modelled).
    with pytest.raises(ConfigError, match="at most 24 nodes"):
        fabric_size(25, 72, 64, 4)
    with pytest.raises(ConfigError, match="rails_per_leaf: must divide gpus"):
        hierarchical(2, gpus=6, switches=1, links_per_gpu=1, rails_per_leaf=4)
    with pytest.raises(ConfigError, match="rails_per_leaf"):
        hierarchical(2, gpus=8, switches=1, links_per_gpu=1, leaf_radix=4, rails_per_leaf=4)


def test_preset_follows_the_reference_architecture():
    G = build("gb200-superpod")
    assert G.graph["chips"] == 576  # one SU: 8 racks x 72 GPUs
    roles = _roles(G)
    assert (roles["leaf"], roles["spine"], roles["nic"], roles["nvswitch"]) == (18, 16, 576, 8)
    assert {G.nodes[v]["merged"] for v, d in G.nodes(data=True) if d.get("role") == "nvswitch"} == {
        18
    }
    # one ConnectX-7 400 Gb/s NIC per GPU: 4 per compute tray (DGX GB200 User Guide)
    assert G.nodes[0]["nic_bandwidth"] * 8 == pytest.approx(400e9)
    nic_ports = Counter()
    for u, v, d in G.edges(data=True):
        if d["role"] == "nic":
            leaf = u if G.nodes[u].get("role") == "leaf" else v
            nic = v if leaf == u else u
            chip = G.nodes[nic]["chip"]
            assert G.nodes[leaf]["rail"] == (chip % 72) // 4 * 4  # its tray's leaf
            nic_ports[leaf] += 1
    assert set(nic_ports.values()) == {32}  # 4 NICs x 8 racks, half of 64 ports
    assert PRESETS["gb200-superpod"]["params"]["rails_per_leaf"] == 4


@pytest.mark.parametrize(
    ("nodes", "gpus", "rails", "radix"), [(3, 4, 2, 8), (2, 4, 4, 8), (5, 2, 2, 8)]
)
def test_distances_with_nic_nodes(nodes, gpus, rails, radix):
    """2 links inside a node (NVSwitch; the 4-link route through a shared leaf never ties
    with it), 4 between nodes on one leaf (GPU-NIC-leaf-NIC-GPU), 6 through a spine."""
    G = hierarchical(
        nodes, gpus=gpus, switches=1, links_per_gpu=1, leaf_radix=radix, rails_per_leaf=rails
    )
    per_group = radix // 2 // rails
    for (a, b), hops in chip_distances(G).items():
        (na, ra), (nb, rb) = divmod(a, gpus), divmod(b, gpus)
        same_leaf = ra // rails == rb // rails and na // per_group == nb // per_group
        assert hops == (2 if na == nb else 4 if same_leaf else 6), (a, b)


@pytest.mark.parametrize(("nodes", "gpus", "rails"), [(2, 4, 2), (3, 2, 2)])
def test_bisection_unchanged_by_shared_leaves(nodes, gpus, rails):
    """Non-blocking leaves: the closed form of hierarchical (NICs of half the chips, plus
    the NVLinks of a split node) still holds; checked by brute force."""
    G = hierarchical(nodes, gpus=gpus, switches=1, links_per_gpu=1, leaf_radix=8, rails_per_leaf=rails,
                     nic=LinkSpec("ib", bandwidth=30e9), scale_up=LinkSpec("nvlink", bandwidth=10e9))  # fmt: skip
    assert brute_bisection(G) == pytest.approx(G.graph["bisection_bandwidth"])


def test_nvlink_traffic_stays_on_nvlink():
    """A ring inside one node never crosses a NIC although its GPUs share leaves."""
    spec = "hierarchical:nodes=2,gpus=4,switches=1,links_per_gpu=2,leaf_radix=8,rails_per_leaf=4"
    out = run_collective(spec, "allreduce", "ring", "1MiB", ranks="0-3", backend="flow",
                         estimate=False, detail=True)  # fmt: skip
    G = build(spec)
    for u, v, busy in out["link_utilisation"]:
        if busy > 0:
            assert G.edges[u, v]["role"] == "scale_up", (u, v)


def test_rail_aligned_nvls_tree_sees_the_same_fabric_inside_an_su():
    """Two racks of one SU: NVLS+tree's inter-rack traffic stays on its rail's leaf, one
    leaf hop on both the reference-architecture fabric and the one-leaf-per-rail stand-in
    (docs/validation.md uses either for the 2-rack rows): the same time."""
    kw = dict(backend="flow", estimate=False, ranks="0-7,72-79")  # two trays per rack
    ra = run_collective("gb200-superpod:nodes=2", "allreduce", "nvls-tree", "64MiB", **kw)
    stand_in = run_collective("nvl72-superpod-2", "allreduce", "nvls-tree", "64MiB", **kw)
    assert ra["transfers"] == stand_in["transfers"] > 0
    assert ra["time_s"] == pytest.approx(stand_in["time_s"], rel=1e-9)
