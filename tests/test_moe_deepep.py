"""DeepSeek-V3 dispatch and combine against DeepEP's published tables (issue 12, item 5),
held out: no netsim constant was set from them, except the one fixed cost per call of
``test_fixed_cost_fitted_on_ep32_predicts_ep16_and_ep64``, fitted to the EP32 low-latency
row (a calibration) and validated on EP16 and EP64.

Source: DeepEP, docs/legacy.md, "Performance" (github.com/deepseek-ai/DeepEP at dd758caf,
2026-07-14). H800 GPUs, one ConnectX-7 400 Gb/s NIC each, hidden 7168, top-8 of 256
experts, FP8 dispatch, BF16 combine.

Low-latency kernels ("with pure RDMA"; numbers unchanged since commit de8cfca, 2025-06-05,
when the kernels started to "leverage NVLink as much as possible", i.e. intra-node peers over
NVLink, as netsim routes them), 128 tokens per GPU:

| EP | dispatch | combine |      | EP | dispatch | combine |
|----|----------|---------|------|----|----------|---------|
| 8  | 77 us    | 114 us  |      | 64 | 173 us   | 314 us  |
| 16 | 118 us   | 195 us  |      | 128| 192 us   | 369 us  |
| 32 | 155 us   | 273 us  |      | 256| 194 us   | 360 us  |

Normal kernels ("with NVLink and RDMA forwarding"), 4096 tokens per GPU, node-limited
routing to 4 nodes (not binding at EP16 and EP32); "bottleneck bandwidth" = tokens x distinct
target nodes (own node included) x bytes per token / time (DeepEP tests/test_internode.py):
EP16 43 / 43 GB/s, EP32 58 / 57 GB/s, EP64 51 / 50 GB/s (dispatch / combine).

System: ``hierarchical:nodes=EP/8,switches=1,links_per_gpu=8``: 8 NVLink4 links per H800
(400 GB/s both directions, NVIDIA H800 SXM5 specifications) into one NVSwitch, i.e. a GPU's
NVLink traffic spread over all its links as the hardware does (decode's fabric does not
stripe a message over the four NVSwitch planes of the default yet); NDR 400 Gb/s NICs on a
rail-optimised fabric. The flow backend keeps the tests fast; the packet engine gives times
within 6% (docs/decode.md).
"""

from __future__ import annotations

import numpy as np
import pytest

from workloads import moe
from workloads.decode import decode

PUBLISHED = {16: (118e-6, 195e-6), 32: (155e-6, 273e-6), 64: (173e-6, 314e-6)}
BYTES = {"dispatch": 7168 + 56 * 4, "combine": 7168 * 2}  # FP8 + FP32 scales; BF16


NORMAL_GBS = {16: (43.0, 43.0)}  # EP: (dispatch, combine) GB/s


def _run(ep: int, tokens: int, dispatch: str, **kw) -> tuple[float, float]:
    r = decode(
        "deepseek-v3",
        "h100:hbm.capacity=1TB",  # the benchmark holds no weights; only the fabric is timed
        f"hierarchical:nodes={ep // 8},switches=1,links_per_gpu=8",
        ep=ep,
        batch=tokens * ep,
        context=1,
        dispatch=dispatch,
        backend="flow",
        **kw,
    ).to_dict()
    return r["moe_dispatch_s"], r["moe_combine_s"]


def _ll(ep: int, **kw) -> tuple[float, float]:
    return _run(ep, 128, "low-latency", **kw)


@pytest.fixture(scope="module")
def hardware_only() -> dict[int, tuple[float, float]]:
    return {ep: _ll(ep) for ep in PUBLISHED}


def test_hardware_alone_is_a_lower_bound(hardware_only):
    """netsim times the links alone: faster than every measurement, never slower."""
    for ep, (d, c) in hardware_only.items():
        assert d < PUBLISHED[ep][0] and c < PUBLISHED[ep][1]


def test_low_latency_within_25_percent_where_bandwidth_dominates(hardware_only):
    """On the links alone netsim gives 0.65 / 0.76 (EP16), 0.74 / 0.82 (EP32) and 0.78 /
    0.83 (EP64) of the measured dispatch / combine. Held here: the rows where the RDMA bytes
    dominate (EP32 combine, EP64 both). The EP16 and EP32 dispatches miss: their bytes take
    ~75-115 us and the kernels' fixed cost per call (~30 us, next test) is a quarter of the
    measured time; netsim has no such cost unless given one."""
    held = [(32, 1), (64, 0), (64, 1)]
    for ep, which in held:
        assert hardware_only[ep][which] / PUBLISHED[ep][which] == pytest.approx(1.0, abs=0.25)
    for ep in (16, 32):
        assert hardware_only[ep][0] / PUBLISHED[ep][0] < 0.8  # the named miss


def test_fixed_cost_fitted_on_ep32_predicts_ep16_and_ep64():
    """Calibration: with t = a + bytes/B for both dispatch and combine, the EP32 row alone
    gives a = (r t_d - t_c) / (r - 1) with r = 14336/7392 the byte ratio: 29.4 us (kernel
    launch, the count exchange and completion signalling of DeepEP's kernels). Charged as
    the collective launch cost, it brings the held-out EP16 and EP64 rows within 15%
    (0.90 / 0.91 and 0.95 / 0.92; the rest is the NIC's RDMA efficiency, ~90%)."""
    r = BYTES["combine"] / BYTES["dispatch"]
    t_d, t_c = PUBLISHED[32]
    a = (r * t_d - t_c) / (r - 1)
    assert a == pytest.approx(29.4e-6, abs=0.1e-6)
    for ep in (16, 64):
        d, c = _ll(ep, collective_launch=a)
        assert d / PUBLISHED[ep][0] == pytest.approx(1.0, abs=0.15)
        assert c / PUBLISHED[ep][1] == pytest.approx(1.0, abs=0.15)
        assert c / d == pytest.approx(PUBLISHED[ep][1] / PUBLISHED[ep][0], rel=0.1)


def test_normal_bottleneck_bandwidth_within_25_percent():
    """netsim's normal mode, read as DeepEP reads its own runs: EP16 at 1.18 / 1.13 of the
    published bandwidths (EP32, 1.02 / 0.98, is in docs/decode.md: too slow for the suite).
    1024 tokens per GPU instead of 4096 keep the test fast: the run is bandwidth-bound there
    (4096 tokens move the figures by < 1%)."""
    ep, tokens = 16, 1024
    d, c = _run(ep, tokens, "normal", seed=0)
    routes = moe.route_tokens("uniform", tokens, 256, 8, np.random.default_rng(0), ranks=ep)
    # DeepEP's num_rdma_token_sent per rank: a token is sent once to each node (8 GPUs) that
    # holds one of its experts; counted here from the routes (distinct nodes per token).
    place = moe.place_experts(256, ep)
    nodes = [np.sort(place[r] // 8, axis=1) for r in routes]
    sent = np.mean([(1 + (np.diff(n, axis=1) != 0).sum(axis=1)).sum() for n in nodes])
    got = (sent * BYTES["dispatch"] / d / 1e9, sent * BYTES["combine"] / c / 1e9)
    for g, want in zip(got, NORMAL_GBS[ep], strict=True):
        assert g / want == pytest.approx(1.0, abs=0.25)
