"""Library costs per link type, charged per route (collectives.calibration.cost_model).

On a DGX SuperPOD-style system (NVSwitch nodes on InfiniBand) an intra-node transfer must be
charged NVLink's costs and an inter-node one InfiniBand's, never one fabric-wide minimum.
"""

import pytest

from collectives import run_collective
from collectives.calibration import LIBRARY_COSTS, cost_model, library_costs
from netsim.core.errors import ConfigError

NVL, IB = LIBRARY_COSTS["nvlink"], LIBRARY_COSTS["ib"]


def test_cost_model_keeps_every_link_type_its_own_costs():
    m = cost_model("nccl", ["ib", "nvlink"])
    assert m.for_links(["nvlink"]) == NVL
    assert m.for_links(["ib"]) == IB
    both = m.for_links(["nvlink", "ib"])  # a route crossing both: the worse of the two
    assert (both.step, both.efficiency, both.multipath) == (IB.step, NVL.efficiency, False)
    given = cost_model("nccl", ["ib", "nvlink"], efficiency=0.5)
    assert {given.for_links([t]).efficiency for t in ("ib", "nvlink")} == {0.5}
    # The folded single value stays available for callers that need one number.
    assert library_costs("nccl", ["ib", "nvlink"]) == both


def test_intra_node_collective_on_a_superpod_pays_nvlink_costs():
    r = run_collective(
        "hierarchical:nodes=2", "allreduce", "ring", "1MiB", ranks="0-7", backend="analytical"
    )
    assert list(r["link_costs"]) == ["nvlink"]
    # under the run's NCCL protocol (LL here: half the payload, NCCL's LL step over NVLink)
    assert r["protocol"] == "LL"
    assert (r["efficiency"], r["multipath"], r["step_overhead"]) == (
        NVL.efficiency * 0.5,
        True,
        NVL.step,
    )


def test_inter_node_send_on_a_superpod_pays_infiniband_costs():
    r = run_collective(
        "hierarchical:nodes=2", "sendrecv", "direct", "1MiB", ranks="0,8", backend="analytical"
    )
    assert list(r["link_costs"]) == ["ib"]
    assert (r["efficiency"], r["multipath"]) == (IB.efficiency, False)


def test_a_ring_across_nodes_charges_each_hop_its_own_step_cost():
    """8 B ring all-reduce over 2 ranks, one per node, vs the same on one node: the
    inter-node ring pays IB's step cost per step, the intra-node one NVLink's."""
    kw = dict(backend="analytical", launch_overhead=0.0)
    inter = run_collective("hierarchical:nodes=2", "allreduce", "ring", "8B", ranks="0,8", **kw)
    intra = run_collective("hierarchical:nodes=2", "allreduce", "ring", "8B", ranks="0,1", **kw)
    steps = 2 * (2 - 1) - 1  # dependent steps after the first send
    assert inter["time_s"] - intra["time_s"] > steps * (IB.step - NVL.step) * 0.99


def test_bad_explicit_costs_are_refused_per_route():
    with pytest.raises(ConfigError, match="efficiency"):
        run_collective("hierarchical:nodes=2", "sendrecv", "direct", "1KiB", efficiency=1.5)


def test_decode_on_a_superpod_charges_the_tensor_parallel_allreduce_nvlink_costs():
    """TP8 inside one node of a 2-node SuperPOD: the same all-reduce time as on a lone
    DGX H100 (NVLink striping and step cost), not the InfiniBand costs of the fabric."""
    from workloads.decode import decode
    from workloads.models import TransformerModel

    tiny = TransformerModel(
        name="tiny", layers=2, hidden=4096, heads=8, kv_heads=8, head_dim=512, ffn=128, vocab=256
    )
    kw = dict(tp=8, batch=64, context=16, allreduce="ring", landing="sram", library="nccl")
    dgx = decode(tiny, "h100", "dgx-h100", **kw)
    pod = decode(tiny, "h100", "hierarchical:nodes=2", dp=2, **kw)
    assert pod.sites[0].run.time_s == pytest.approx(dgx.sites[0].run.time_s, rel=1e-12)
    assert any("charged the costs of its own route" in n for n in pod.notes)
