"""Energy, dollars and CO2e per token of a decode or prefill step.

``token_cost`` gathers the FLOPs per data type and the bytes per memory tier of the compute
estimate and the link bytes of the simulated collectives of one model instance, and prices
them with :mod:`workloads.cost` (energy presets in :mod:`workloads.cost_presets`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from workloads.chips import Chip
from workloads.cost import CostModel, co2e_per_token, cost_per_mtok, energy_per_token
from workloads.decode_result import FabricSite
from workloads.models import TransformerModel
from workloads.roofline import ComputeEstimate
from workloads.sharding import Parallelism

__all__ = ["token_cost"]


def token_cost(
    m: TransformerModel,
    c: Chip,
    est: ComputeEstimate,
    sites: Sequence[FabricSite],
    par: Parallelism,
    latency: float,
    per_step: int,
    chip_price: float | None,
) -> dict[str, Any]:
    """Energy, dollars and CO2e per token of one model instance (see :mod:`workloads.cost`)."""
    width = par.tp * par.ep  # chips per stage
    flops: dict[str, float] = {}
    for t in est.op_times:
        flops[t.op.dtype] = flops.get(t.op.dtype, 0.0) + t.op.flops * t.op.count * width / per_step
    tiers = {k: v * width / per_step for k, v in est.bytes_by_tier.items()}
    links: dict[str, float] = {}
    for s in sites:
        for lt, b in s.run.link_bytes.items():
            links[lt] = links.get(lt, 0.0) + b * s.count / per_step
    chips = par.instance_size
    token_time = latency / per_step
    idle = c.idle_power if c.idle_power is not None else 0.0
    from workloads.cost_presets import LINK_PJ_PER_BIT

    unknown = sorted(k for k in links if k not in LINK_PJ_PER_BIT)
    for k in unknown:
        links.pop(k)
    e = energy_per_token(flops, tiers, links, token_time, chips, idle)
    price = chip_price if chip_price is not None else c.price
    out: dict[str, Any] = {
        "energy_per_token_j": e["total"],
        "energy_parts_j": {k: e[k] for k in ("compute", "memory", "network", "static")},
        "co2e_per_token_g": co2e_per_token(float(e["total"])),  # type: ignore[arg-type]
        "cost_per_mtok_usd": math.nan,
        "cost_parts_usd": {},
        "idle_power_known": c.idle_power is not None,
        "unknown_link_types": unknown,
    }
    if price is not None:
        cm = cost_per_mtok(float(e["total"]), token_time, chips, CostModel(chip_price_usd=price))  # type: ignore[arg-type]
        out["cost_per_mtok_usd"] = cm["total"]
        out["cost_parts_usd"] = {"capex": cm["capex"], "energy": cm["energy"]}
    return out
