"""DeepSeek-V3 dispatch and combine against DeepEP's published tables.

Held out: no netsim constant was set from these tables. The per-call costs of DeepEP's
kernels (``--moe-kernels deepep``, the default of ``low-latency`` and ``normal``) come from
the kernels' structure and published hardware numbers (:mod:`workloads.moe_kernels`); the
NIC's payload rate is the NCCL calibration of nccl-tests issue 290, the NVLink rate of its
SM copies DeepEP's own ~160 GB/s on H800 (README), other measurements.

Source: DeepEP (github.com/deepseek-ai/DeepEP), H800 with one ConnectX-7 400 Gb/s NIC per
GPU, hidden 7168, top-8 experts, FP8 dispatch (7168 + 56 x 4 B + a 16 B header per copy),
BF16 combine, 128 tokens per GPU, kernel durations (``bench_kineto``):

* **pure RDMA** (README of the initial commit ebfe47e, 2025-02-24): every peer, intra-node
  ones included, reached through the NIC. netsim: one GPU per node (every peer through its
  NIC), ``hierarchical:nodes=EP,gpus=1,switches=1,links_per_gpu=8``.
* **NVLink + RDMA** (``docs/legacy.md`` at dd758caf; numbers of commit de8cfca, 2025-06-05,
  after PR 173 made intra-node peers use NVLink): ``hierarchical:nodes=EP/8,switches=1,
  links_per_gpu=8`` (8 NVLink4 links per H800 into one switch).

DeepEP's benchmark draws random routes (``tests/test_low_latency.py``), so the comparison
samples routes (``moe_mode="sample"``): the per-rank load imbalance of one draw counts.
Normal kernels: "bottleneck bandwidth" = tokens x distinct target nodes x bytes / time
(DeepEP ``tests/test_internode.py``), EP16 43 / 43 GB/s. The flow backend keeps the tests
fast (the packet engine is within 6%, docs/decode.md).
"""

from __future__ import annotations

import numpy as np
import pytest

from netsim.core.errors import ConfigError
from workloads import moe
from workloads.decode import decode
from workloads.models import model
from workloads.moe_kernels import MECHANISMS, parse_moe_kernels

PURE_RDMA = {8: (163e-6, 318e-6), 16: (173e-6, 329e-6)}
NVLINK = {8: (77e-6, 114e-6), 16: (118e-6, 195e-6)}
BYTES = {"dispatch": 7168 + 56 * 4, "combine": 7168 * 2}  # FP8 + FP32 scales; BF16
HBM = 3.35e12  # H100 / H800 SXM HBM3 (the chip preset)


def _run(
    ep: int, topo: str, tokens: int = 128, dispatch: str = "low-latency", llm="deepseek-v3", **kw
) -> dict:
    return decode(
        llm,
        "h100:hbm.capacity=1TB",  # the benchmark holds no weights; only the fabric is timed
        topo,
        ep=ep,
        batch=tokens * ep,
        context=1,
        dispatch=dispatch,
        backend="flow",
        **kw,
    ).to_dict()


def _times(r: dict) -> tuple[float, float]:
    return r["moe_dispatch_s"], r["moe_combine_s"]


def _rdma(ep: int) -> str:
    return f"hierarchical:nodes={ep},gpus=1,switches=1,links_per_gpu=8"


def _nvl(ep: int) -> str:
    return f"hierarchical:nodes={ep // 8},switches=1,links_per_gpu=8"


def test_kernel_costs_are_their_closed_forms_and_add_to_the_transfers():
    """SM work as HBM rooflines, the NIC's message floor from its message rate, and the
    transfers unchanged when the NIC efficiency is 1 and the header 0: the mechanisms add
    up to the reported time."""
    r = _run(16, _nvl(16), moe_mode="expected")
    assert r["moe_kernels"] == "deepep" and "deepep kernels" in r["network_model"]
    cost = r["moe_kernel_costs_s"]
    wire = BYTES["dispatch"] + 16
    assert cost["moe_dispatch"]["cast"] == pytest.approx(128 * (14336 + wire) / HBM)
    assert cost["moe_combine"]["reduce"] == pytest.approx(128 * 9 * 14336 / HBM)
    assert cost["moe_dispatch"]["message_floor"] == pytest.approx((128 * 8 + 256) / 330e6)
    assert 0 < cost["moe_dispatch"]["signal"] < 2e-6  # one route's link latencies
    bare = _run(16, _nvl(16), moe_mode="expected", moe_kernels="none")
    plain = "deepep:nic_efficiency=1,header_bytes=0"
    r1 = _run(16, _nvl(16), moe_mode="expected", moe_kernels=plain)
    for name in ("moe_dispatch", "moe_combine"):
        parts = r1["moe_kernel_costs_s"][name]
        extra = sum(v for k, v in parts.items() if k != "message_floor")
        assert r1[f"{name}_s"] == pytest.approx(bare[f"{name}_s"] + extra, rel=1e-9)


def test_nvlink_efficiency_is_deepeps_h800_rate_over_netsims_nvlink_payload():
    """``nvlink_efficiency``: DeepEP's "~160 GB/s NVLink maximum bandwidth" on H800 (README,
    ebfe47e) over netsim's payload rate of H800's 8 NVLink4 links (25 GB/s each, 16 B
    header per 256 B packet: 188.2 GB/s) = 0.85. NVLink-only EP8 with expected counts: each
    GPU's 7 x 128 remote copies cross its NVLinks at 188.2 GB/s x 0.85 (closed form, 2%:
    link latencies), and the transfers are those of ``nvlink_efficiency=1`` over 0.85."""
    eff = MECHANISMS["nvlink_efficiency"]
    assert eff == pytest.approx(160e9 / (8 * 25e9 * 256 / 272))
    assert eff == pytest.approx(0.85)
    bare = {}
    for spec in ("deepep:nvlink_efficiency=1", "deepep"):
        e = 1.0 if "=" in spec else eff
        r = _run(8, _nvl(8), moe_mode="expected", moe_kernels=spec)
        assert r["moe_kernel_mechanisms"]["nvlink_efficiency"] == pytest.approx(e)
        for name, size in (
            ("moe_dispatch", BYTES["dispatch"] + 16),
            ("moe_combine", BYTES["combine"]),
        ):
            costs = r["moe_kernel_costs_s"][name]
            t = r[f"{name}_s"] - sum(v for k, v in costs.items() if k != "message_floor")
            assert t == pytest.approx(128 * 7 * size / (8 * 25e9 * 256 / 272 * e), rel=0.02)
            bare.setdefault(name, t)
            assert t == pytest.approx(bare[name] / e, rel=0.005)


def test_pure_rdma_table_within_15_percent():
    """Every copy through the NIC (DeepEP before PR 173): netsim 0.91 / 0.91 (EP8) and
    0.94 / 0.96 (EP16) of the measured dispatch / combine, and the combine/dispatch ratio
    (1.95; measured 1.95 and 1.90), from the bytes, the NIC's payload rate and the routing
    imbalance; the kernel costs add ~1 us (dispatch) and ~5 us (combine's reduction)."""
    for ep, (pd, pc) in PURE_RDMA.items():
        d, c = _times(_run(ep, _rdma(ep), moe_mode="sample"))
        assert d / pd == pytest.approx(1.0, abs=0.15)
        assert c / pc == pytest.approx(1.0, abs=0.15)
        assert (c / d) / (pc / pd) == pytest.approx(1.0, abs=0.05)


def test_hardware_alone_is_a_lower_bound():
    """The transfers alone (``moe_kernels="none"``) are faster than every measurement."""
    for table, topo in ((PURE_RDMA, _rdma), (NVLINK, _nvl)):
        for ep, (pd, pc) in table.items():
            d, c = _times(_run(ep, topo(ep), moe_mode="expected", moe_kernels="none"))
            assert d < pd and c < pc


def test_nvlink_table_ep16_within_25_percent_and_the_named_misses():
    """NVLink + RDMA (DeepEP after PR 173): EP16 0.76 / 0.90 of the measured dispatch /
    combine; EP8 (NVLink only) combine 0.78 with the SM copies' NVLink rate
    (``nvlink_efficiency``). The misses, held so that this page is updated when they close:
    the EP8 dispatch (0.59) and the EP16 combine/dispatch ratio (1.95; measured 1.65). Read
    against DeepEP's February pure-RDMA table scaled to each row's RDMA bytes, the June rows
    are slower in the *dispatch* (+23, +14, +7 us at EP16, 32, 64) and not in the combine
    (+17, +2, -1 us): the one ``a`` of ``t = a + bytes / B`` fitted to both calls (22-37 us)
    is mostly this dispatch excess, amplified ~2x by the fit (docs/validation.md)."""
    d, c = _times(_run(16, _nvl(16), moe_mode="sample"))
    assert d / NVLINK[16][0] == pytest.approx(1.0, abs=0.25)
    assert c / NVLINK[16][1] == pytest.approx(1.0, abs=0.25)
    assert c / d > 1.1 * NVLINK[16][1] / NVLINK[16][0]  # the ratio miss
    d8, c8 = _times(_run(8, _nvl(8), moe_mode="sample"))
    assert d8 / NVLINK[8][0] < 0.75  # the EP8 dispatch miss
    assert c8 / NVLINK[8][1] == pytest.approx(1.0, abs=0.25)


def test_issue_target_row_ep32_on_four_dgx_h100_packet_engine():
    """The row of the issue that asked for this model, as its users run it: DeepSeek-V3,
    EP32 over 4 DGX H100 (``hierarchical:nodes=4``), 4,096 tokens, low-latency dispatch, the
    packet engine and expected routes (the CLI's defaults). Published: DeepEP's NVLink + RDMA
    EP32 row, 155 / 273 us (``docs/legacy.md``, H800). Dispatch and combine each within 25%
    (0.80 / 0.88); the combine/dispatch ratio stays at the byte ratio (7168 x 2 B against
    7168 + 56 x 4 + 16 B = 1.935) plus the kernels' costs, above the measured 1.76 and the
    issue's 1.7-1.9: the named miss of docs/validation.md (the June dispatch excess)."""
    r = decode(
        "deepseek-v3",
        "h100",
        "hierarchical:nodes=4",
        ep=32,
        batch=4096,
        context=1024,
        dispatch="low-latency",
    ).to_dict()
    d, c = _times(r)
    assert d / 155e-6 == pytest.approx(1.0, abs=0.25)
    assert c / 273e-6 == pytest.approx(1.0, abs=0.25)
    byte_ratio = (7168 * 2) / (7168 + 56 * 4 + 16)
    assert c / d == pytest.approx(byte_ratio, rel=0.02)
    assert c / d > 1.9  # the miss: held so that the page is updated when it closes


def test_deepeps_288_experts_move_netsim_by_under_2_percent():
    """DeepEP's benchmark routes over 288 experts (``num_experts = 288``,
    tests/test_low_latency.py since ebfe47e), netsim's rows over DeepSeek-V3's 256: every
    GPU still sends 128 x 8 copies, and netsim's EP16 times (both tables) move by < 2%, so
    the expert count is not what the misses are made of."""
    m288 = model("deepseek-v3").replace(experts=288)
    for topo in (_rdma(16), _nvl(16)):
        base = _times(_run(16, topo, moe_mode="sample"))
        got = _times(_run(16, topo, moe_mode="sample", llm=m288))
        assert got == pytest.approx(base, rel=0.02)


def test_normal_bottleneck_bandwidth_is_a_named_miss_high():
    """netsim's normal mode with DeepEP's kernel costs, read as DeepEP reads its own runs:
    EP16 54.9 / 46.9 GB/s against 43 / 43 GB/s (1.28 / 1.09; 1.50 / 1.25 before the NVLink
    forwarding paid DeepEP's own NVLink rate, ``nvlink_efficiency``): the dispatch misses
    high. 1024 tokens per GPU instead of 4096 keep the test fast: the run is bandwidth-bound
    there (4096 tokens move the figures by < 1%). What is left: DeepEP's normal kernels run
    on a fixed SM budget (24 SMs) that also paces the RDMA chunks (docs/validation.md).
    Held so that the page is updated when the miss closes."""
    ep, tokens = 16, 1024
    d, c = _times(_run(ep, _nvl(ep), tokens, "normal", seed=0))
    routes = moe.route_tokens("uniform", tokens, 256, 8, np.random.default_rng(0), ranks=ep)
    # DeepEP's num_rdma_token_sent per rank: a token is sent once to each node (8 GPUs) that
    # holds one of its experts; counted here from the routes (distinct nodes per token).
    place = moe.place_experts(256, ep)
    nodes = [np.sort(place[r] // 8, axis=1) for r in routes]
    sent = np.mean([(1 + (np.diff(n, axis=1) != 0).sum(axis=1)).sum() for n in nodes])
    got = (sent * BYTES["dispatch"] / d / 1e9, sent * BYTES["combine"] / c / 1e9)
    assert got[0] / 43.0 > 1.25  # the miss
    assert got[1] / 43.0 > 1.0


@pytest.mark.parametrize(
    "spec, match",
    [
        ("nccl", "model must be one of"),
        ("none:signal=1us", "takes no mechanisms"),
        ("deepep:speed=1", "mechanisms are"),
        ("deepep:nic_efficiency=1.5", r"nic_efficiency: must be in \(0, 1\]"),
        ("deepep:nvlink_efficiency=0", r"nvlink_efficiency: must be in \(0, 1\]"),
        ("deepep:signal=fast", "signal"),
        ("deepep:header_bytes=2.5", "header_bytes"),
    ],
)
def test_bad_kernel_specs_name_the_parameter(spec, match):
    with pytest.raises(ConfigError, match=match):
        parse_moe_kernels(spec, default="none", hbm=HBM)


def test_kernel_model_refused_without_expert_parallelism():
    with pytest.raises(ConfigError, match="moe_kernels"):
        decode("llama3-8b", "h100", "dgx-h100", moe_kernels="deepep")
