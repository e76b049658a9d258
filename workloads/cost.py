"""Energy, dollars and CO2e per generated token.

Energy of one token (joules, IT equipment only) is the sum of four parts:

* ``compute``: ``sum_dtype FLOPs * pJ/FLOP``;
* ``memory``: ``sum_tier bytes * 8 * pJ/bit`` (tiers ``sram``, ``hbm``, ``hbf``, ``ddr``);
* ``network``: ``sum_link bytes * 8 * pJ/bit``, where bytes are counted once per link
  traversed (a 3-hop path counts its bytes three times), per link type of
  :mod:`netsim.core.linktypes`;
* ``static``: ``idle_power_w * chips * token_time_s``, the power drawn regardless of activity
  over the wall-clock time the chips spend per token.

FLOPs and bytes are totals over all ``chips`` for one token. ``token_time_s`` is the time the
``chips`` are occupied per token, i.e. step time divided by tokens produced per step.

Cost per million tokens adds the amortised chip price,
``chips * price * token_time_s / (lifetime * utilisation)``, to the energy bill,
``energy * PUE * USD/kWh``. CO2e per token is operational only:
``energy * PUE * grid intensity`` (embodied carbon not included).

All constants come from :mod:`workloads.cost_presets` with a source each; override any of
them with :meth:`EnergyModel.default` keyword dictionaries or :class:`CostModel` fields.

Examples
--------
>>> m = EnergyModel.default()
>>> e = energy_per_token({"bf16": 2e9}, {"hbm": 1e9}, {}, 1e-3, 1, 0.0, model=m)
>>> round(e["memory"], 4)  # 1 GB of HBM at 3.97 pJ/bit
0.0318
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from netsim.core.errors import ConfigError
from netsim.core.validate import require_float, require_int
from workloads.cost_presets import ECONOMICS, FLOP_PJ, LINK_PJ_PER_BIT, MEMORY_PJ_PER_BIT

__all__ = [
    "SECONDS_PER_YEAR",
    "CostModel",
    "EnergyModel",
    "co2e_per_token",
    "cost_per_mtok",
    "energy_per_token",
]

SECONDS_PER_YEAR = 365.25 * 86400.0
_PJ = 1e-12
_J_PER_KWH = 3.6e6


def _table(name: str, base: Mapping[str, float], over: Mapping[str, float] | None) -> Mapping:
    out = dict(base)
    for key, val in (over or {}).items():
        out[key] = require_float(f"{name}[{key!r}]", val, min=0)
    return MappingProxyType(out)


@dataclass(frozen=True)
class EnergyModel:
    """Energy per operation and per bit moved.

    Attributes
    ----------
    pj_per_flop : mapping
        dtype -> pJ per FLOP.
    pj_per_bit_memory : mapping
        memory tier -> pJ per bit read or written.
    pj_per_bit_link : mapping
        link type -> pJ per bit per link traversal.
    """

    pj_per_flop: Mapping[str, float] = field(
        default_factory=lambda: _table(
            "pj_per_flop", {k: c.value for k, c in FLOP_PJ.items()}, None
        )
    )
    pj_per_bit_memory: Mapping[str, float] = field(
        default_factory=lambda: _table(
            "pj_per_bit_memory", {k: c.value for k, c in MEMORY_PJ_PER_BIT.items()}, None
        )
    )
    pj_per_bit_link: Mapping[str, float] = field(
        default_factory=lambda: _table(
            "pj_per_bit_link", {k: c.value for k, c in LINK_PJ_PER_BIT.items()}, None
        )
    )

    @classmethod
    def default(
        cls,
        *,
        pj_per_flop: Mapping[str, float] | None = None,
        pj_per_bit_memory: Mapping[str, float] | None = None,
        pj_per_bit_link: Mapping[str, float] | None = None,
    ) -> EnergyModel:
        """Return the preset model with some entries overridden (or added).

        Raises
        ------
        ConfigError
            If an override is negative or not a number.
        """
        base = cls()
        return cls(
            _table("pj_per_flop", base.pj_per_flop, pj_per_flop),
            _table("pj_per_bit_memory", base.pj_per_bit_memory, pj_per_bit_memory),
            _table("pj_per_bit_link", base.pj_per_bit_link, pj_per_bit_link),
        )


@dataclass(frozen=True)
class CostModel:
    """Prices and conversion factors for dollars and CO2e.

    Attributes
    ----------
    chip_price_usd : float
        Purchase price of one chip including its share of the system, USD. No default: prices
        vary widely and must be stated by the study.
    lifetime_years : float
        Amortisation period.
    utilisation : float
        Fraction of the lifetime the chips spend producing tokens, in (0, 1].
    electricity_usd_per_kwh : float
        Electricity price.
    pue : float
        Power usage effectiveness (facility energy / IT energy), >= 1.
    grid_g_per_kwh : float
        Grid carbon intensity, grams CO2e per kWh.
    """

    chip_price_usd: float
    lifetime_years: float = ECONOMICS["lifetime_years"].value
    utilisation: float = ECONOMICS["utilisation"].value
    electricity_usd_per_kwh: float = ECONOMICS["electricity_usd_per_kwh"].value
    pue: float = ECONOMICS["pue"].value
    grid_g_per_kwh: float = ECONOMICS["grid_g_per_kwh"].value

    def __post_init__(self) -> None:
        require_float("chip_price_usd", self.chip_price_usd, min=0)
        require_float("lifetime_years", self.lifetime_years, min=0, min_open=True)
        require_float("utilisation", self.utilisation, min=0, max=1, min_open=True)
        require_float("electricity_usd_per_kwh", self.electricity_usd_per_kwh, min=0)
        require_float("pue", self.pue, min=1)
        require_float("grid_g_per_kwh", self.grid_g_per_kwh, min=0)


def _parts(kind: str, amounts: Mapping[str, float], table: Mapping[str, float], scale: float):
    out: dict[str, float] = {}
    for key, amount in amounts.items():
        if key not in table:
            known = ", ".join(sorted(table))
            raise ConfigError(f"{kind}: must be one of {known}, got {key!r}")
        out[key] = require_float(f"{kind}[{key!r}]", amount, min=0) * scale * table[key] * _PJ
    return out


def energy_per_token(
    flops_by_dtype: Mapping[str, float],
    bytes_by_tier: Mapping[str, float],
    bytes_by_link: Mapping[str, float],
    token_time_s: float,
    chips: int,
    idle_power_w: float,
    *,
    model: EnergyModel | None = None,
) -> dict[str, object]:
    """Energy of one token in joules, by part.

    Parameters
    ----------
    flops_by_dtype : mapping
        FLOPs per token by dtype (``fp32``, ``fp16``, ``bf16``, ``fp8``, ``int8``).
    bytes_by_tier : mapping
        Bytes per token read/written by memory tier (``sram``, ``hbm``, ``hbf``, ``ddr``).
    bytes_by_link : mapping
        Bytes per token times links traversed, by link type (``nvlink``, ``ib``, ...).
    token_time_s : float
        Seconds the chips are occupied per token.
    chips : int
        Chips serving the model.
    idle_power_w : float
        Static power of one chip, watts.
    model : EnergyModel, optional
        Energy constants (default: the presets).

    Returns
    -------
    dict
        ``compute``, ``memory``, ``network``, ``static`` and ``total`` (J; ``total`` is the
        sum of the four), plus ``by_dtype``, ``by_tier``, ``by_link`` breakdowns.

    Raises
    ------
    ConfigError
        On an unknown dtype/tier/link or a negative amount.
    """
    m = model or EnergyModel()
    t = require_float("token_time_s", token_time_s, min=0)
    n = require_int("chips", chips, min=1)
    p = require_float("idle_power_w", idle_power_w, min=0)
    by_dtype = _parts("dtype", flops_by_dtype, m.pj_per_flop, 1.0)
    by_tier = _parts("memory tier", bytes_by_tier, m.pj_per_bit_memory, 8.0)
    by_link = _parts("link", bytes_by_link, m.pj_per_bit_link, 8.0)
    out: dict[str, object] = {
        "compute": sum(by_dtype.values(), 0.0),
        "memory": sum(by_tier.values(), 0.0),
        "network": sum(by_link.values(), 0.0),
        "static": p * n * t,
    }
    out["total"] = out["compute"] + out["memory"] + out["network"] + out["static"]  # type: ignore[operator]
    out.update(by_dtype=by_dtype, by_tier=by_tier, by_link=by_link)
    return out


def cost_per_mtok(
    energy_j_per_token: float, token_time_s: float, chips: int, cost: CostModel
) -> dict[str, float]:
    """Dollars per million tokens: amortised chips plus electricity.

    Returns
    -------
    dict
        ``capex``, ``energy`` and ``total`` (= capex + energy), USD per 10**6 tokens.
    """
    e = require_float("energy_j_per_token", energy_j_per_token, min=0)
    t = require_float("token_time_s", token_time_s, min=0)
    n = require_int("chips", chips, min=1)
    life_s = cost.lifetime_years * SECONDS_PER_YEAR * cost.utilisation
    capex = n * cost.chip_price_usd * t / life_s * 1e6
    energy = e * cost.pue / _J_PER_KWH * cost.electricity_usd_per_kwh * 1e6
    return {"capex": capex, "energy": energy, "total": capex + energy}


def co2e_per_token(
    energy_j_per_token: float,
    *,
    pue: float = ECONOMICS["pue"].value,
    grid_g_per_kwh: float = ECONOMICS["grid_g_per_kwh"].value,
) -> float:
    """Operational grams of CO2e per token: ``energy * PUE * grid intensity``."""
    e = require_float("energy_j_per_token", energy_j_per_token, min=0)
    pue = require_float("pue", pue, min=1)
    g = require_float("grid_g_per_kwh", grid_g_per_kwh, min=0)
    return e * pue / _J_PER_KWH * g
