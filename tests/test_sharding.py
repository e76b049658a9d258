"""Parallel layouts partition the ranks; per-chip memory conserves bytes; capacity verdicts."""

from __future__ import annotations

import pytest

from netsim.core.errors import CapacityError, ConfigError
from workloads.chips import chip
from workloads.models import model
from workloads.sharding import (
    Parallelism,
    check_capacity,
    per_chip_bytes,
    plan_memory,
    require_fit,
    stage_layers,
)

LAYOUTS = [(1, 1, 1, 1), (2, 1, 1, 1), (2, 3, 1, 2), (4, 2, 2, 4), (1, 2, 4, 4), (3, 1, 2, 2)]


def _is_partition(groups, world):
    flat = sorted(r for g in groups for r in g)
    return flat == list(range(world))


@pytest.mark.parametrize(("tp", "pp", "ep", "dp"), LAYOUTS)
def test_groups_partition_the_ranks(tp, pp, ep, dp):
    p = Parallelism(tp=tp, pp=pp, ep=ep, dp=dp)
    w = p.world_size
    assert w == tp * pp * dp
    for groups, size in (
        (p.tp_groups(), tp),
        (p.pp_groups(), pp),
        (p.dp_groups(), dp),
        (p.ep_groups(), ep),
        (p.instance_groups(), tp * ep * pp),
    ):
        assert _is_partition(groups, w)
        assert all(len(g) == size for g in groups)
    assert _is_partition([p.stage_ranks(s) for s in range(pp)], w)


@pytest.mark.parametrize(("tp", "pp", "ep", "dp"), LAYOUTS)
def test_rank_and_coords_are_inverse(tp, pp, ep, dp):
    p = Parallelism(tp=tp, pp=pp, ep=ep, dp=dp)
    for r in range(p.world_size):
        c = p.coords(r)
        assert p.rank(tp_i=c["tp_i"], dp_i=c["dp_i"], pp_i=c["pp_i"]) == r
        assert c["ep_i"] == c["dp_i"] % ep


def test_tp_innermost_and_ep_contiguous():
    p = Parallelism(tp=4, pp=2, ep=2, dp=4)
    assert p.tp_groups()[0] == [0, 1, 2, 3]
    # EP ranks at stride tp; a tp*ep block of 8 consecutive ranks is one stage of an instance
    assert p.ep_groups()[0] == [0, 4]
    assert p.instance_groups()[0] == [*range(8), *range(16, 24)]
    # pipeline stages outermost
    assert p.pp_groups()[0] == [0, 16]


def test_parallelism_validation():
    with pytest.raises(ConfigError, match=r"ep: must divide dp \(3\), got 2"):
        Parallelism(ep=2, dp=3)
    with pytest.raises(ConfigError, match="tp: must be an integer >= 1, got 0"):
        Parallelism(tp=0)


def test_stage_layers_cover_all_layers():
    for layers, pp in ((80, 1), (80, 3), (61, 4), (126, 8)):
        ranges = stage_layers(layers, pp)
        assert [i for r in ranges for i in r] == list(range(layers))
        assert max(map(len, ranges)) - min(map(len, ranges)) <= 1


@pytest.mark.parametrize("name", ["llama3-8b", "mixtral-8x7b", "deepseek-v3"])
def test_stage_weights_sum_to_model_weights(name):
    # Conservation: with tp = ep = 1 the stages hold every weight exactly once.
    m = model(name)
    pp = 4
    total = sum(per_chip_bytes(m, batch=1, context=0, pp=pp, stage=s)["weights"] for s in range(pp))
    assert total == pytest.approx(m.weight_bytes(), rel=1e-12)


def test_kv_cache_closed_form_and_sharding():
    m = model("llama3-70b")
    b, t = 8, 4096
    kv = per_chip_bytes(m, batch=b, context=t)["kv_cache"]
    assert kv == b * t * m.kv_bytes_per_token()
    assert per_chip_bytes(m, batch=b, context=t, tp=2)["kv_cache"] == kv / 2
    assert per_chip_bytes(m, batch=b, context=t, tp=8)["kv_cache"] == kv / 8
    # kv_heads = 8 < tp = 16: one KV head per chip, replicated twice -> same as tp = 8
    assert per_chip_bytes(m, batch=b, context=t, tp=16)["kv_cache"] == kv / 8
    assert plan_memory(m, "h100", batch=b, context=t, tp=16).kv_replicated


def test_mla_latent_replicated_over_tp_and_split_over_ep():
    m = model("deepseek-v3")
    one = per_chip_bytes(m, batch=8, context=1000)["kv_cache"]
    assert one == 8 * 1000 * m.kv_bytes_per_token()
    assert per_chip_bytes(m, batch=8, context=1000, tp=8)["kv_cache"] == one
    assert per_chip_bytes(m, batch=8, context=1000, ep=8)["kv_cache"] == one / 8


def test_llama3_70b_needs_two_h100():
    # ~141 GB of bf16 weights: not on one 80 GB H100, but on tp=2 with a small batch's KV.
    one = plan_memory("llama3-70b", "h100", batch=1, context=4096)
    assert not one.fits
    assert one.items["weights"] == pytest.approx(141.1e9, rel=1e-3)
    assert one.overflow["weights"] == pytest.approx(one.total_needed - 80e9, rel=1e-9)
    two = plan_memory("llama3-70b", "h100", batch=8, context=4096, tp=2)
    assert two.fits
    assert two.needed["hbm"] == pytest.approx(two.total_needed)
    assert two.needed["hbm"] <= two.available["hbm"]
    with pytest.raises(CapacityError, match=r"capacity: llama3-70b on h100 \(tp=1.*short by"):
        check_capacity("llama3-70b", "h100", batch=1, context=4096)
    assert require_fit(two) is two


def test_usable_fraction_tightens_the_check():
    r = plan_memory("llama3-8b", "h100", batch=1, context=128, usable_fraction=0.1)
    assert not r.fits and r.available["hbm"] == pytest.approx(8e9)


def test_hbf_chip_keeps_kv_out_of_flash():
    r = plan_memory("llama3-405b", "hbf-inference", batch=16, context=8192, tp=2)
    assert r.placement["kv_cache"].get("hbf", 0.0) == 0.0
    assert r.placement["kv_cache"]["hbm"] == r.items["kv_cache"]
    # weights fill the rest of HBM first, then flash
    assert r.placement["weights"]["hbm"] == pytest.approx(
        48e9 - r.items["kv_cache"] - r.items["activations"]
    )
    assert r.placement["weights"]["hbf"] > 0 and r.fits
    # placement conserves bytes
    for item, total in r.items.items():
        assert sum(r.placement[item].values()) + r.overflow[item] == pytest.approx(total)


def test_sram_only_chip_overflow():
    r = plan_memory("llama3-8b", chip("groq-lpu"), batch=1, context=2048)
    assert not r.fits
    assert r.needed["sram"] == pytest.approx(230e6)
    assert r.fractions("weights")["sram"] == pytest.approx(1.0)  # overflow charged to sram


def test_invalid_splits():
    with pytest.raises(ConfigError, match=r"tp: must divide heads \(32\) of llama3-8b, got 3"):
        per_chip_bytes("llama3-8b", batch=1, context=1, tp=3)
    with pytest.raises(ConfigError, match="ep: must be 1 for dense model llama3-8b, got 2"):
        per_chip_bytes("llama3-8b", batch=2, context=1, ep=2)
    with pytest.raises(ConfigError, match=r"ep: must divide experts \(8\) of mixtral-8x7b, got 3"):
        per_chip_bytes("mixtral-8x7b", batch=3, context=1, ep=3)
    with pytest.raises(ConfigError, match=r"batch: must be a multiple of ep \(2\), got 3"):
        per_chip_bytes("mixtral-8x7b", batch=3, context=1, ep=2)
