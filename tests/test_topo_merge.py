"""Merged NVSwitch planes (``merge_switches``): a node's S symmetric switch chips as one
switch with all the NVLinks and S times one chip's reduction bandwidth.

The claim (topologies.nvswitch.merged_switch): the same collective times as the S chips on
every backend when the chips are symmetric, because striping puts 1/S of every message on
each chip. Checked here against the unmerged graph on small systems; the one difference,
NCCL's per-channel pacing (it serialises a channel's S stripes, a merged plane sends them
as one), is bounded separately.
"""

from __future__ import annotations

import pytest

from collectives.api import run_collective
from netsim.core.errors import ConfigError
from netsim.core.linktypes import LINK_TYPES, REDUCTION_ENGINES
from topologies.graph import LinkSpec
from topologies.hierarchical import hierarchical
from topologies.nvswitch import nvswitch
from topologies.registry import build

NVL5 = LINK_TYPES["nvlink5"].bandwidth
ENGINE5 = REDUCTION_ENGINES["nvlink5"].bandwidth
SMALL = "hierarchical:nodes=2,gpus=4,switches=2,links_per_gpu=4,scale_up_link=nvlink5"


def _switches(G, role="nvswitch"):
    return [v for v, d in G.nodes(data=True) if d.get("role") == role]


def test_merged_graph_keeps_links_bandwidth_and_engines():
    """One switch per node carrying every NVLink; the node's reduction bandwidth, the
    chips' injection and the bisection are those of the S chips."""
    full = hierarchical(3, gpus=4, switches=2, links_per_gpu=4, scale_up=_nvl5())
    merged = hierarchical(3, gpus=4, switches=2, links_per_gpu=4, scale_up=_nvl5(),
                          merge_switches=True)  # fmt: skip
    assert (len(_switches(full)), len(_switches(merged))) == (6, 3)
    for c in range(12):
        (sw,) = [v for v in merged.adj[c] if merged.nodes[v].get("role") == "nvswitch"]
        e = merged.edges[c, sw]
        assert (e["count"], e["bandwidth"]) == (4, pytest.approx(4 * NVL5))
        assert merged.nodes[c]["injection_bandwidth"] == full.nodes[c]["injection_bandwidth"]
    for sw in _switches(merged):
        assert merged.nodes[sw]["merged"] == 2
        assert merged.nodes[sw]["reduction_bandwidth"] == pytest.approx(2 * ENGINE5)
    for key in ("bisection_bandwidth", "bisection_links"):
        assert merged.graph[key] == full.graph[key]
    assert len(_switches(merged, "leaf")) == len(_switches(full, "leaf"))


def test_merged_single_domain_and_explicit_engine():
    G = nvswitch(8, 2, 18, link="nvlink5", reduction_bandwidth=1e12, merge_switches=True)
    (sw,) = _switches(G)
    assert sw == 8 and G.edges[0, 8]["count"] == 18
    assert G.nodes[sw]["reduction_bandwidth"] == pytest.approx(2e12)
    off = nvswitch(8, 2, 18, link="nvlink5", reduction=False, merge_switches=True)
    assert "reduction_bandwidth" not in off.nodes[8]


def test_uneven_chips_cannot_merge():
    # DGX H100 wires 5, 4, 4, 5 links to its four NVSwitch chips: not symmetric.
    with pytest.raises(ConfigError, match="merge_switches"):
        build("dgx-h100:merge_switches=true")
    with pytest.raises(ConfigError, match="merge_switches"):
        hierarchical(2, merge_switches=True)


@pytest.mark.parametrize("backend", ["flow", "analytical", "packet"])
@pytest.mark.parametrize("algo", ["nvls-tree", "ring", "tree"])
def test_merged_plane_gives_the_same_times(algo, backend):
    """Library costs per transfer (step cost, protocol efficiency, striping) but no
    per-channel pacing: merging changes no arrival time beyond the stripes' whole-byte
    rounding (one stripe may carry a byte more: ~1e-11 s per step at these rates) on the
    flow and analytical models. The packet model serialises a message's packets on one
    port of S times the rate instead of S ports: up to 1% apart here."""
    kw = dict(backend=backend, library="none", step_overhead=2e-6, efficiency=0.9,
              multipath=True, estimate=False)  # fmt: skip
    full = run_collective(f"{SMALL},merge_switches=false", "allreduce", algo, "4MiB", **kw)
    merged = run_collective(f"{SMALL},merge_switches=true", "allreduce", algo, "4MiB", **kw)
    tolerance = 1e-2 if backend == "packet" else 1e-4
    assert merged["time_s"] == pytest.approx(full["time_s"], rel=tolerance)
    if algo == "nvls-tree":  # the stripes over the 2 chips are one transfer
        assert merged["transfers"] < full["transfers"]


@pytest.mark.parametrize("algo", ["innetwork", "nvls"])
def test_merged_single_rack_switch_reduction(algo):
    """In-network reduction inside one domain: the merged engine (S times the rate, fed
    the whole piece) finishes when the S engines (each fed 1/S) do."""
    kw = dict(backend="flow", library="none", estimate=False)
    spec = "nvswitch:gpus=8,switches=3,links_per_gpu=6,link=nvlink5"
    full = run_collective(spec, "allreduce", algo, "16MiB", **kw)
    merged = run_collective(f"{spec},merge_switches=true", "allreduce", algo, "16MiB", **kw)
    assert merged["time_s"] == pytest.approx(full["time_s"], rel=1e-4)  # stripes' rounding


@pytest.mark.parametrize("backend", ["flow", "analytical"])
def test_nccl_channel_pacing_is_the_only_difference(backend):
    """With NCCL's per-channel cap (nvls-tree), a channel's S stripes are paced one after
    the other while the merged plane sends them at once: the times differ, within 5% on
    this 2-chip case (0.2% on two NVL72 racks at 1 GiB, docs/validation.md)."""
    kw = dict(backend=backend, library="nccl", estimate=False)
    full = run_collective(f"{SMALL},merge_switches=false", "allreduce", "nvls-tree", "4MiB", **kw)
    merged = run_collective(f"{SMALL},merge_switches=true", "allreduce", "nvls-tree", "4MiB", **kw)
    assert full["channel_cap_busbw"] is not None
    assert merged["time_s"] == pytest.approx(full["time_s"], rel=0.05)


def _nvl5() -> LinkSpec:
    return LinkSpec("nvlink5")
