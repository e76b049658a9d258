"""Tests of topologies.nvswitch: NVLink/NVSwitch scale-up domains against closed forms and
published figures."""

from __future__ import annotations

from collections import Counter

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from topo_helpers import brute_bisection, chip_distances

from netsim.core.errors import ConfigError
from netsim.core.linktypes import LINK_TYPES
from topologies.nvswitch import PRESETS, link_split, nvswitch

NVLINK = LINK_TYPES["nvlink"].bandwidth


# --------------------------------------------------------------------------- link_split


def test_link_split_published_wirings():
    # DGX H100: 18 NVLinks over 4 NVSwitch chips as 5, 4, 4, 5 (Ishii & Wells, Hot Chips 34).
    assert link_split(18, 4) == [5, 4, 4, 5]
    # DGX A100: 12 NVLinks, 2 to each of 6 NVSwitches (A100 whitepaper, 2020).
    assert link_split(12, 6) == [2] * 6
    # GB200 NVL72: one link to each of the 18 NVLink Switch chips.
    assert link_split(18, 18) == [1] * 18


@given(switches=st.integers(1, 20), extra=st.integers(0, 40))
def test_link_split_is_even(switches, extra):
    links = switches + extra
    split = link_split(links, switches)
    assert len(split) == switches and sum(split) == links
    assert max(split) - min(split) <= 1 and min(split) >= 1
    if (links % switches) % 2 == 0:
        assert split == split[::-1]  # extras go to both ends alike


def test_link_split_errors():
    with pytest.raises(ConfigError, match=r"^links_per_gpu: must be an integer >= 4, got 3$"):
        link_split(3, 4)
    with pytest.raises(ConfigError, match=r"^switches: must be an integer >= 1, got 0$"):
        link_split(3, 0)


# --------------------------------------------------------------------------- structure


@pytest.mark.parametrize(("gpus", "switches", "links"), [(8, 4, 18), (8, 6, 12), (5, 3, 7)])
def test_counts_degrees_and_attributes(gpus, switches, links):
    G = nvswitch(gpus, switches, links)
    split = link_split(links, switches)
    assert G.graph["chips"] == gpus
    assert [v for v, k in G.nodes(data="kind") if k == "chip"] == list(range(gpus))
    sw = list(range(gpus, gpus + switches))
    assert [G.nodes[s]["kind"] for s in sw] == ["switch"] * switches
    assert G.number_of_edges() == gpus * switches  # parallel links aggregated
    assert sum(d["count"] for *_, d in G.edges(data=True)) == gpus * links
    assert Counter(dict(G.degree(range(gpus))).values()) == {switches: gpus}
    assert Counter(dict(G.degree(sw)).values()) == {gpus: switches}
    for g in range(gpus):
        assert [G.edges[g, s]["count"] for s in sw] == split
        assert G.nodes[g]["injection_bandwidth"] == pytest.approx(links * NVLINK)
    for *_, d in G.edges(data=True):
        assert d["link"] == "nvlink"
        assert d["bandwidth"] == pytest.approx(d["count"] * NVLINK)
        assert d["latency"] == LINK_TYPES["nvlink"].latency
    for s in sw:
        n = G.nodes[s]
        assert n["reduction"] is True and n["role"] == "nvswitch" and n["level"] == 0
        assert n["latency"] == LINK_TYPES["nvlink"].switch_latency
    assert nx.is_connected(G)


def test_every_chip_pair_is_two_links_apart():
    G = nvswitch(6, 3, 5)
    d = chip_distances(G)
    assert set(d.values()) == {2} and len(d) == 6 * 5


def test_options_reach_the_graph():
    G = nvswitch(
        4,
        2,
        4,
        link="nvlink5",
        link_bandwidth=10e9,
        latency=3e-9,
        switch_latency=7e-8,
        reduction=False,
    )
    assert {d["bandwidth"] for *_, d in G.edges(data=True)} == {20e9}
    assert {d["latency"] for *_, d in G.edges(data=True)} == {3e-9}
    assert {d["link"] for *_, d in G.edges(data=True)} == {"nvlink5"}
    assert {G.nodes[s]["latency"] for s in (4, 5)} == {7e-8}
    assert not any(G.nodes[s]["reduction"] for s in (4, 5))
    assert G.nodes[0]["injection_bandwidth"] == pytest.approx(40e9)
    assert G.graph["params"]["link_bandwidth"] == 10e9


# --------------------------------------------------------------------------- bisection


@pytest.mark.parametrize(
    ("gpus", "switches", "links"), [(2, 1, 1), (3, 2, 3), (4, 2, 3), (5, 3, 4), (6, 2, 5)]
)
def test_bisection_matches_brute_force(gpus, switches, links):
    G = nvswitch(gpus, switches, links)
    expect = (gpus // 2) * links * NVLINK
    assert G.graph["bisection_bandwidth"] == pytest.approx(expect)
    assert G.graph["bisection_links"] == (gpus // 2) * links
    assert brute_bisection(G) == pytest.approx(expect)


@settings(max_examples=30, deadline=None)
@given(gpus=st.integers(1, 12), switches=st.integers(1, 5), extra=st.integers(0, 6))
def test_properties(gpus, switches, extra):
    links = switches + extra
    G = nvswitch(gpus, switches, links)
    assert G.number_of_nodes() == gpus + switches
    assert nx.is_connected(G)
    # Conservation: every switch carries as many links as the GPUs send it.
    split = link_split(links, switches)
    for j, s in enumerate(range(gpus, gpus + switches)):
        assert sum(G.edges[s, g]["count"] for g in G.adj[s]) == gpus * split[j]
    # Full bisection: half the GPUs' injection bandwidth.
    assert G.graph["bisection_bandwidth"] == pytest.approx(
        (gpus // 2) * G.nodes[0]["injection_bandwidth"]
    )


# --------------------------------------------------------------------------- presets


def _preset(name: str) -> nx.Graph:
    entry = PRESETS[name]
    assert entry["func"] == "nvswitch" and entry["source"] and entry["description"]
    return nvswitch(**entry["params"])


def test_dgx_h100_preset():
    G = _preset("dgx-h100")
    # 8 GPUs, 4 NVSwitch chips, 900 GB/s per GPU both directions summed, 7.2 TB/s in all
    # (NVIDIA H100 whitepaper, 2022).
    assert G.graph["chips"] == 8 and G.number_of_nodes() == 12
    assert 2 * G.nodes[0]["injection_bandwidth"] == pytest.approx(900e9)
    assert 2 * sum(G.nodes[g]["injection_bandwidth"] for g in range(8)) == pytest.approx(7.2e12)
    assert [G.edges[0, s]["count"] for s in range(8, 12)] == [5, 4, 4, 5]
    assert all(G.nodes[s]["reduction"] for s in range(8, 12))  # NVLink SHARP


def test_nvl72_preset():
    G = _preset("nvl72")
    # 72 GPUs, 18 switch chips, 1.8 TB/s per GPU, 130 TB/s for the rack (NVIDIA GB200 NVL72).
    assert G.graph["chips"] == 72 and G.number_of_nodes() == 90
    assert 2 * G.nodes[0]["injection_bandwidth"] == pytest.approx(1.8e12)
    total = 2 * sum(G.nodes[g]["injection_bandwidth"] for g in range(72))
    assert total == pytest.approx(130e12, rel=0.01)
    assert {d["count"] for *_, d in G.edges(data=True)} == {1}
    assert Counter(dict(G.degree(range(72, 90))).values()) == {72: 18}


def test_dgx_a100_preset():
    G = _preset("dgx-a100")
    # 600 GB/s per A100 both directions summed (A100 whitepaper, 2020); no NVLink SHARP.
    assert 2 * G.nodes[0]["injection_bandwidth"] == pytest.approx(600e9)
    assert not any(G.nodes[s]["reduction"] for s in range(8, 14))


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"gpus": 0}, r"^gpus: must be an integer >= 1, got 0$"),
        ({"switches": 0}, r"^switches: must be an integer >= 1, got 0$"),
        ({"links_per_gpu": 3}, r"^links_per_gpu: must be an integer >= 4, got 3$"),
        ({"link": "pcie"}, r"^link: must be one of .*nvlink.*, got 'pcie'$"),
        ({"link_bandwidth": 0}, r"^link_bandwidth: must be a finite number > 0, got 0$"),
        ({"latency": -1e-9}, r"^latency: must be a finite number >= 0, got -1e-09$"),
        ({"switch_latency": "x"}, r"^switch_latency: must be a finite number >= 0, got 'x'$"),
        ({"reduction": "yes"}, r"^reduction: must be true or false, got 'yes'$"),
    ],
)
def test_errors_name_the_parameter(kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern):
        nvswitch(**kwargs)
