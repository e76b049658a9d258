"""Energy, cost and CO2e per token: sums of parts, closed forms, cited presets."""

from __future__ import annotations

import numpy as np
import pytest

from netsim.core.errors import ConfigError
from netsim.core.linktypes import LINK_TYPES
from workloads import cost_presets as presets
from workloads.cost import (
    SECONDS_PER_YEAR,
    CostModel,
    EnergyModel,
    co2e_per_token,
    cost_per_mtok,
    energy_per_token,
)


def test_every_preset_is_positive_and_sourced():
    for table in (
        presets.FLOP_PJ,
        presets.MEMORY_PJ_PER_BIT,
        presets.LINK_PJ_PER_BIT,
        presets.ECONOMICS,
    ):
        for name, c in table.items():
            assert c.value > 0, name
            assert len(c.source) > 20, name
            assert c.unit, name


def test_every_link_type_has_an_energy():
    assert set(LINK_TYPES) <= set(presets.LINK_PJ_PER_BIT)


def test_published_numbers():
    # O'Connor et al. MICRO 2017: HBM2 3.97 pJ/bit; Horowitz ISSCC 2014 (45 nm):
    # 16b FP mult 1.1 pJ + add 0.4 pJ per FMA (2 FLOPs); 32b FP mult 3.7 + add 0.9.
    assert presets.MEMORY_PJ_PER_BIT["hbm"].value == 3.97
    assert presets.FLOP_PJ["fp16"].value == pytest.approx((1.1 + 0.4) / 2)
    assert presets.FLOP_PJ["fp32"].value == pytest.approx((3.7 + 0.9) / 2)
    # EIA 2023: 0.81 lb CO2/kWh
    assert presets.ECONOMICS["grid_g_per_kwh"].value == pytest.approx(0.81 * 453.59237, rel=2e-3)


def test_closed_form_parts():
    e = energy_per_token({"fp16": 1e12}, {"hbm": 1e9}, {"nvlink": 1e6}, 2e-3, 4, 100.0)
    assert e["compute"] == pytest.approx(1e12 * 0.75e-12)
    assert e["memory"] == pytest.approx(8e9 * 3.97e-12)
    assert e["network"] == pytest.approx(8e6 * 1.3e-12)
    assert e["static"] == pytest.approx(100.0 * 4 * 2e-3)


def test_total_is_sum_of_parts():
    rng = np.random.default_rng(0)
    m = EnergyModel.default()
    for _ in range(20):
        flops = {k: float(rng.uniform(0, 1e13)) for k in m.pj_per_flop}
        mem = {k: float(rng.uniform(0, 1e10)) for k in m.pj_per_bit_memory}
        link = {k: float(rng.uniform(0, 1e8)) for k in m.pj_per_bit_link}
        e = energy_per_token(flops, mem, link, float(rng.uniform(0, 1e-2)), 8, 300.0, model=m)
        assert e["total"] == pytest.approx(e["compute"] + e["memory"] + e["network"] + e["static"])
        assert e["compute"] == pytest.approx(sum(e["by_dtype"].values()))
        assert e["memory"] == pytest.approx(sum(e["by_tier"].values()))
        assert e["network"] == pytest.approx(sum(e["by_link"].values()))


def test_overrides_do_not_touch_presets():
    m = EnergyModel.default(pj_per_bit_memory={"hbm": 2.0}, pj_per_flop={"fp4": 0.1})
    assert m.pj_per_bit_memory["hbm"] == 2.0
    assert m.pj_per_flop["fp4"] == 0.1
    assert EnergyModel().pj_per_bit_memory["hbm"] == 3.97
    e = energy_per_token({}, {"hbm": 1e9}, {}, 0.0, 1, 0.0, model=m)
    assert e["memory"] == pytest.approx(8e9 * 2e-12)
    with pytest.raises(ConfigError, match="pj_per_flop"):
        EnergyModel.default(pj_per_flop={"fp16": -1})


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (({"fp6": 1}, {}, {}), "dtype"),
        (({}, {"tape": 1}, {}), "memory tier"),
        (({}, {}, {"carrier-pigeon": 1}), "link"),
        (({"fp16": -1}, {}, {}), "dtype"),
    ],
)
def test_energy_rejects_bad_keys_and_values(args, match):
    with pytest.raises(ConfigError, match=match):
        energy_per_token(*args, 1e-3, 1, 0.0)


def test_cost_closed_form_and_linearity():
    cm = CostModel(
        chip_price_usd=30_000,
        lifetime_years=5,
        utilisation=0.5,
        electricity_usd_per_kwh=0.1,
        pue=1.2,
    )
    c = cost_per_mtok(2.0, 1e-3, 8, cm)
    assert c["capex"] == pytest.approx(8 * 30_000 * 1e-3 / (5 * SECONDS_PER_YEAR * 0.5) * 1e6)
    assert c["energy"] == pytest.approx(2.0 * 1.2 / 3.6e6 * 0.1 * 1e6)
    assert c["total"] == pytest.approx(c["capex"] + c["energy"])
    c2 = cost_per_mtok(2.0, 1e-3, 8, CostModel(60_000, 5, 0.5, 0.1, 1.2))
    assert c2["capex"] == pytest.approx(2 * c["capex"])  # linear in chip price
    assert c2["energy"] == c["energy"]
    c3 = cost_per_mtok(2.0, 1e-3, 8, CostModel(30_000, 5, 0.5, 0.3, 1.2))
    assert c3["energy"] == pytest.approx(3 * c["energy"])  # linear in electricity price
    c4 = cost_per_mtok(2.0, 1e-3, 8, CostModel(30_000, 10, 0.5, 0.1, 1.2))
    assert c4["capex"] == pytest.approx(c["capex"] / 2)  # inverse in lifetime


def test_co2e():
    assert co2e_per_token(3.6e6, pue=1.0, grid_g_per_kwh=400.0) == pytest.approx(400.0)
    assert co2e_per_token(3.6e6, pue=1.5, grid_g_per_kwh=400.0) == pytest.approx(600.0)
    default = presets.ECONOMICS
    assert co2e_per_token(3.6e6) == pytest.approx(
        default["pue"].value * default["grid_g_per_kwh"].value
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(pue=0.9),
        dict(utilisation=0.0),
        dict(utilisation=1.5),
        dict(lifetime_years=0),
        dict(chip_price_usd=-1.0),
        dict(grid_g_per_kwh=float("nan")),
    ],
)
def test_cost_model_validation(kwargs):
    base = dict(chip_price_usd=1.0)
    base.update(kwargs)
    with pytest.raises(ConfigError):
        CostModel(**base)
