"""Records of a decode or prefill run: the collective sites a token waits for, and the result.

:class:`FabricSite` is one collective at one pipeline stage (a simulated
:class:`workloads.fabric.CollectiveRun`, charged ``count`` times per token);
:class:`DecodeResult` is the latency of one step with its breakdown, capacity report,
straggler percentiles and cost, and its flat record (:meth:`DecodeResult.to_dict`, what the
``decode`` sweep kind returns).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from netsim import __version__
from workloads.fabric import CollectiveRun

__all__ = ["DecodeResult", "FabricSite"]


@dataclass(frozen=True)
class FabricSite:
    """A collective a token waits for at one pipeline stage.

    Attributes
    ----------
    name, kind : str
        ``tp_allreduce`` / ``moe_dispatch`` / ``moe_combine`` / ``pp_send`` and the
        :class:`workloads.collective_needs.CollectiveNeed` kind.
    stage : int
        Pipeline stage.
    nbytes : float
        Bytes per chip per call.
    count : int
        Calls per token at this stage.
    chips : tuple[int, ...]
        Chips of instance 0 the token waits for.
    run : CollectiveRun
        The simulated merged schedule.
    """

    name: str
    kind: str
    stage: int
    nbytes: float
    count: int
    chips: tuple[int, ...]
    run: CollectiveRun

    @property
    def time_s(self) -> float:
        """Seconds per call: the slowest tail among :attr:`chips` (their group's finish)."""
        vals = [self.run.tails[c] for c in self.chips if c in self.run.tails]
        return max(vals) if vals else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain-data view."""
        return {
            "name": self.name,
            "kind": self.kind,
            "stage": self.stage,
            "algo": self.run.algo,
            "nbytes": self.nbytes,
            "count": self.count,
            "time_s": self.time_s,
            "total_s": self.time_s * self.count,
            "critical_messages": self.run.critical_messages,
            "merged_time_s": self.run.time_s,
            "transfers": self.run.transfers,
            "candidates": dict(self.run.candidates),
        }


@dataclass(frozen=True)
class DecodeResult:
    """Latency of one decode step (or one prefill) with its breakdown.

    Attributes
    ----------
    phase : str
        ``"decode"`` or ``"prefill"``.
    params : Mapping[str, Any]
        The inputs (model, chip, topo, tp, pp, ep, dp, batch, context/prompt, options).
    fits : bool
        Whether the per-chip share fits the chip's memory; if not, nothing else was run.
    capacity : Mapping[str, Any]
        The capacity report (:meth:`workloads.sharding.CapacityReport.to_dict`) and its
        ``summary`` line.
    token_latency_s : float
        Mean latency of one step (decode: per output token; prefill: time to first token).
    compute_s, memory_s, launch_s, fabric_s : float
        The parts of ``token_latency_s``.
    tokens_per_s : float
        Per user (sequence): ``1 / token_latency_s`` (prefill: ``prompt / latency``).
    tokens_per_s_per_chip : float
        Tokens per step of one instance over latency and the instance's chips.
    sites : tuple[FabricSite, ...]
        Collectives per stage.
    allreduce : str or None
        The all-reduce algorithm that ran (None when ``tp == 1``).
    model : str
        Backend model.
    latency_percentiles : Mapping[str, float]
        ``p50``/``p99``/``p99.9`` of token latency over ``tokens`` steps, ``substituted_fraction``.
    token_latencies_s : tuple[float, ...]
        The ``tokens`` per-step latencies the percentiles are taken over (in the JSON as
        ``token_latency_samples_s`` when more than one step was drawn).
    cost : Mapping[str, Any]
        Energy, dollars and CO2e per token with their parts.
    notes : tuple[str, ...]
        Caveats of this run.

    In :meth:`to_dict`, ``moe_dispatch_s`` and ``moe_combine_s`` are the time of one MoE
    layer's dispatch and combine (the slowest stage's; ``None`` without MoE expert
    parallelism); the sites' ``count`` says how many layers call them per step.
    """

    phase: str
    params: Mapping[str, Any]
    fits: bool
    capacity: Mapping[str, Any]
    token_latency_s: float = math.nan
    compute_s: float = math.nan
    memory_s: float = math.nan
    launch_s: float = math.nan
    fabric_s: float = math.nan
    tokens_per_s: float = math.nan
    tokens_per_s_per_chip: float = math.nan
    sites: tuple[FabricSite, ...] = ()
    allreduce: str | None = None
    model: str = ""
    latency_percentiles: Mapping[str, float] = field(default_factory=dict)
    token_latencies_s: tuple[float, ...] = ()
    cost: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def collectives_per_token(self) -> dict[str, int]:
        """Calls per token by collective name, summed over stages."""
        out: dict[str, int] = {}
        for s in self.sites:
            out[s.name] = out.get(s.name, 0) + s.count
        return out

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-friendly record (the ``decode`` sweep kind returns this)."""
        p = self.percentiles_or_nan()
        out: dict[str, Any] = {
            **dict(self.params),
            "phase": self.phase,
            "fits": self.fits,
            "capacity": dict(self.capacity),
            "per_chip_bytes": dict(self.capacity.get("items", {})),
            "token_latency_s": self.token_latency_s,
            "compute_s": self.compute_s,
            "memory_s": self.memory_s,
            "launch_s": self.launch_s,
            "fabric_s": self.fabric_s,
            "tokens_per_s": self.tokens_per_s,
            "tokens_per_s_per_chip": self.tokens_per_s_per_chip,
            "collectives": self.collectives_per_token,
            "collective_sites": [s.to_dict() for s in self.sites],
            "allreduce": self.allreduce,
            "network_model": self.model,
            "token_latency_p50_s": p["p50"],
            "token_latency_p99_s": p["p99"],
            "token_latency_p999_s": p["p99.9"],
            "substituted_fraction": p["substituted_fraction"],
            "notes": list(self.notes),
            "netsim_version": __version__,
        }
        for key in ("energy_per_token_j", "cost_per_mtok_usd", "co2e_per_token_g"):
            out[key] = self.cost.get(key, math.nan)
        out["energy_parts_j"] = dict(self.cost.get("energy_parts_j", {}))
        out["cost_parts_usd"] = dict(self.cost.get("cost_parts_usd", {}))
        for name in ("moe_dispatch", "moe_combine"):  # one MoE layer's call, slowest stage
            times = [s.time_s for s in self.sites if s.name == name]
            out[f"{name}_s"] = max(times) if times else None
        if len(self.token_latencies_s) > 1:
            out["token_latency_samples_s"] = list(self.token_latencies_s)
        if self.phase == "prefill":
            out["ttft_s"] = self.token_latency_s
        return out

    def percentiles_or_nan(self) -> dict[str, float]:
        """Latency percentiles, NaN where not run."""
        keys = ("p50", "p99", "p99.9", "substituted_fraction")
        return {k: float(self.latency_percentiles.get(k, math.nan)) for k in keys}
