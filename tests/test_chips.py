"""Chip presets: published figures, sources for every number, validation, variants."""

from __future__ import annotations

import math

import pytest

from netsim.core.errors import ConfigError
from workloads.chips import CHIPS, Chip, MemoryTier, chip, chip_names

REQUIRED_SOURCES = (
    "peak_flops",
    "kernel_launch",
    "injection_bandwidth",
    "landing_latency",
    "power",
    "price",
)


def test_presets_listed():
    assert chip_names() == sorted(
        [
            "h100",
            "h200",
            "b200",
            "mi300x",
            "tpu-v4",
            "tpu-v5p",
            "groq-lpu",
            "wse-3",
            "hbf-inference",
        ]
    )


@pytest.mark.parametrize("name", sorted(CHIPS))
def test_every_number_has_a_source(name):
    c = chip(name)
    for key in REQUIRED_SOURCES:
        assert c.sources.get(key, "").strip(), f"{name}: no source for {key}"
    for t in c.tiers:
        assert c.sources.get(f"tiers.{t.name}", "").strip(), f"{name}: no source for tier {t.name}"
    if c.price is not None and c.price_is_estimate:
        assert "estimate" in c.sources["price"]


@pytest.mark.parametrize(
    ("name", "dtype", "flops", "tier", "capacity", "bandwidth"),
    [
        # NVIDIA H100 datasheet / whitepaper: 989.4 TFLOPS dense BF16, 80 GB HBM3 at 3.35 TB/s
        ("h100", "bf16", 989.4e12, "hbm", 80e9, 3.35e12),
        # NVIDIA H200 datasheet: same compute, 141 GB HBM3e at 4.8 TB/s
        ("h200", "bf16", 989.4e12, "hbm", 141e9, 4.8e12),
        # HGX B200: 2.25 PFLOPS dense BF16, 180 GB at 8 TB/s per GPU
        ("b200", "bf16", 2.25e15, "hbm", 180e9, 8e12),
        # AMD MI300X datasheet: 1307.4 TFLOPS dense FP16, 192 GB HBM3 at 5.3 TB/s
        ("mi300x", "bf16", 1307.4e12, "hbm", 192e9, 5.3e12),
        # Google Cloud TPU docs
        ("tpu-v4", "bf16", 275e12, "hbm", 32 * 2**30, 1200e9),
        ("tpu-v5p", "bf16", 459e12, "hbm", 95e9, 2765e9),
        # Groq LPU: 230 MB SRAM at 80 TB/s, 188 TFLOPS FP16
        ("groq-lpu", "fp16", 188e12, "sram", 230e6, 80e12),
        # Cerebras WSE-3: 44 GB SRAM at 21 PB/s, 125 PFLOPS
        ("wse-3", "fp16", 125e15, "sram", 44e9, 21e15),
        # Ma & Patterson 2026: one HBF stack of 512 GB at 1638.4 GB/s
        ("hbf-inference", "bf16", 989.4e12, "hbf", 512e9, 1638.4e9),
    ],
)
def test_published_figures(name, dtype, flops, tier, capacity, bandwidth):
    c = chip(name)
    assert c.peak(dtype) == pytest.approx(flops)
    assert c.tier(tier).capacity == pytest.approx(capacity)
    assert c.tier(tier).bandwidth == pytest.approx(bandwidth)


@pytest.mark.parametrize("name", ["h100", "h200", "b200", "mi300x"])
def test_dense_fp8_is_twice_bf16(name):
    # Vendor tables: FP8 tensor throughput is exactly 2x FP16/BF16 (dense and sparse alike).
    c = chip(name)
    assert c.peak("fp8") == pytest.approx(2 * c.peak("bf16"), rel=1e-3)


def test_h100_ridge_point():
    # 989.4 TFLOPS / 3.35 TB/s ~= 295 FLOP/byte, the commonly quoted H100 ridge point.
    assert chip("h100").ridge_point("bf16") == pytest.approx(295.3, abs=0.1)


def test_tiers_sorted_fastest_first_and_landing_zone_exists():
    for c in CHIPS.values():
        bws = [t.bandwidth for t in c.tiers]
        assert bws == sorted(bws, reverse=True)
        assert c.has_tier(c.landing_zone)
        if c.landing_zone == "sram":
            assert c.landing_latency == 0.0


def test_sram_only_chips():
    for name in ("groq-lpu", "wse-3"):
        assert [t.name for t in chip(name).tiers] == ["sram"]
        assert chip(name).landing_zone == "sram"


def test_bf16_falls_back_to_fp16():
    assert chip("groq-lpu").peak("bf16") == chip("groq-lpu").peak("fp16")


def test_missing_dtype_is_config_error():
    with pytest.raises(ConfigError, match=r"dtype: chip 'tpu-v4'.*'fp32'"):
        chip("tpu-v4").peak("fp32")


def test_unknown_chip_lists_names():
    with pytest.raises(ConfigError, match=r"chip: must be one of b200, .*wse-3, got 'h1000'"):
        chip("h1000")


def test_replace_validates_and_keeps_original():
    h = chip("h100")
    g = h.replace(name="h100-graphs", kernel_launch=0.0)
    assert g.kernel_launch == 0.0 and h.kernel_launch > 0
    assert chip("h100") is h
    with pytest.raises(ConfigError, match="replace: unknown field 'bandwith'"):
        h.replace(bandwith=1)
    with pytest.raises(ConfigError, match="injection_bandwidth: must be a finite number > 0"):
        h.replace(injection_bandwidth=-1)
    with pytest.raises(ConfigError, match="landing_zone"):
        h.replace(landing_zone="sram")  # the H100 preset has no sram tier


def test_with_tier():
    big = chip("h100").with_tier("hbm", capacity=160e9)
    assert big.tier("hbm").capacity == 160e9
    assert big.tier("hbm").bandwidth == chip("h100").tier("hbm").bandwidth
    with pytest.raises(ConfigError, match="tier: chip 'h100' has tiers hbm, got 'hbf'"):
        chip("h100").with_tier("hbf", capacity=1)


def test_memory_tier_validation():
    with pytest.raises(ConfigError, match="tier: name must be one of sram, hbm, hbf, ddr"):
        MemoryTier("l2", 1, 1)
    with pytest.raises(ConfigError, match=r"hbm\.bandwidth: must be a finite number > 0, got 0"):
        MemoryTier("hbm", 1, 0)
    with pytest.raises(ConfigError, match=r"hbm\.capacity"):
        MemoryTier("hbm", math.nan, 1)


def test_custom_chip_and_duplicate_tiers():
    c = Chip(
        name="toy",
        peak_flops={"bf16": 1e12},
        tiers=(("hbm", 1e9, 1e11, 0.0), ("sram", 1e6, 1e12, 0.0)),
        kernel_launch=0.0,
        injection_bandwidth=1e9,
        landing_zone="sram",
    )
    assert [t.name for t in c.tiers] == ["sram", "hbm"]
    assert c.memory_capacity == 1e9 + 1e6
    with pytest.raises(ConfigError, match="tiers: names must be unique"):
        c.replace(tiers=(("hbm", 1, 1, 0), ("hbm", 2, 2, 0)))
    with pytest.raises(ConfigError, match="peak_flops: data type must be one of"):
        c.replace(peak_flops={"tf32": 1e12})


def test_to_dict_round_trips_numbers():
    d = chip("b200").to_dict()
    assert d["peak_flops"]["fp8"] == 4.5e15
    assert d["tiers"][0]["name"] == "hbm"
    assert d["sources"]["price"].startswith("estimate")


# -- chip specs: a preset with overrides, from the command line or a sweep file
def test_spec_overrides_fields_with_units_and_names_the_variant():
    spec = "h100:hbm.bandwidth=6.7TB/s, hbm.capacity=141GB, peak.fp8=2PFLOPS, kernel_launch=0"
    c = chip(spec)
    base = chip("h100")
    assert c.tier("hbm").bandwidth == 6.7e12 and c.tier("hbm").capacity == 141e9
    assert c.peak("fp8") == 2e15 and c.peak("bf16") == base.peak("bf16")
    assert c.kernel_launch == 0.0 and c.injection_bandwidth == base.injection_bandwidth
    assert c.name == spec
    assert c.sources["tiers.hbm"].startswith("overridden")
    assert not base.sources["tiers.hbm"].startswith("overridden")
    assert base.tier("hbm").bandwidth == 3.35e12  # the preset is untouched


def test_spec_accepts_the_former_name_of_kernel_launch():
    """``launch_overhead`` was the field's name before ``kernel_launch`` (collectives call
    the library's cost "launch"); chip specs written with it keep working."""
    old, new = chip("h100:launch_overhead=1us"), chip("h100:kernel_launch=1us")
    assert old.kernel_launch == new.kernel_launch == 1e-6
    assert old.sources["kernel_launch"].startswith("overridden")


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("h100:hbm.speed=1", "unknown override 'hbm.speed'"),
        ("h100:wat=1", "unknown override 'wat'"),
        ("h100:hbm.bandwidth=fast", "chip hbm.bandwidth: expected a bandwidth"),
        ("h100:sram.bandwidth=1TB/s", "h100 has no sram tier"),
        ("h100:peak.fp8=-1", "chip peak.fp8: must be > 0"),
        ("h100:price", "overrides are key=value"),
        ("nope:price=1", "chip: must be one of"),
    ],
)
def test_bad_spec_is_one_clear_line(spec, match):
    with pytest.raises(ConfigError, match=match) as err:
        chip(spec)
    assert "\n" not in str(err.value)


def test_doubling_hbm_bandwidth_halves_a_memory_bound_token():
    import networkx as nx

    from topologies.graph import add_chip, finish
    from workloads import decode

    G = nx.Graph()
    add_chip(G, 0, (0, 0))
    G = finish(G, "single", {})
    slow = decode("llama3-8b", "h100:kernel_launch=0", G, batch=1, context=1024)
    fast = decode("llama3-8b", "h100:kernel_launch=0,hbm.bandwidth=6.7TB/s", G, batch=1,
                  context=1024)  # fmt: skip
    assert slow.compute_s == fast.compute_s == 0.0  # memory-bound at batch 1
    assert fast.memory_s == pytest.approx(slow.memory_s / 2, rel=1e-12)
    assert fast.to_dict()["chip"] == "h100:kernel_launch=0,hbm.bandwidth=6.7TB/s"
