"""The operator model: one kernel's FLOPs and bytes per memory tier, and its roofline time.

An :class:`Operator` does ``flops`` in one data type and moves bytes from/to memory tiers;
:func:`op_time` gives its time on a chip as an :class:`OpTime`, the hierarchical roofline
described in :mod:`workloads.roofline`::

    t = max(flops / peak[dtype], max over tiers (read + written bytes) / bandwidth) + launch
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from netsim.core.validate import require_float, require_int
from workloads.chips import Chip
from workloads.chips import chip as get_chip

__all__ = ["OpTime", "Operator", "op_time"]


Bound = Literal["compute", "memory"]


@dataclass(frozen=True, slots=True)
class Operator:
    """One kernel: FLOPs and bytes moved per memory tier.

    Attributes
    ----------
    name : str
        Label, e.g. ``"qkv_proj"``.
    flops : float
        Floating-point (or integer) operations.
    reads, writes : Mapping[str, float]
        Tier name -> bytes read / written.
    dtype : str
        Data type of the arithmetic (selects the chip's peak).
    count : int
        Times the operator runs back to back per step (e.g. once per layer).
    """

    name: str
    flops: float
    reads: Mapping[str, float] = field(default_factory=dict)
    writes: Mapping[str, float] = field(default_factory=dict)
    dtype: str = "bf16"
    count: int = 1

    def __post_init__(self) -> None:
        require_float(f"{self.name}.flops", self.flops, min=0.0)
        require_int(f"{self.name}.count", self.count, min=0)
        for kind in ("reads", "writes"):
            for tier, nbytes in getattr(self, kind).items():
                require_float(f"{self.name}.{kind}[{tier}]", nbytes, min=0.0)

    @property
    def bytes_moved(self) -> float:
        """Bytes read plus written over all tiers."""
        return sum(self.reads.values()) + sum(self.writes.values())


@dataclass(frozen=True, slots=True)
class OpTime:
    """Roofline time of one operator (per run; ``total`` multiplies by ``op.count``)."""

    op: Operator
    compute_time: float
    memory_time: float
    tier_times: Mapping[str, float]
    launch: float
    bound: Bound

    @property
    def time(self) -> float:
        """Seconds per run: ``max(compute, memory) + launch``."""
        return max(self.compute_time, self.memory_time) + self.launch

    @property
    def total(self) -> float:
        """Seconds over ``op.count`` runs."""
        return self.time * self.op.count

    @property
    def bottleneck(self) -> str:
        """``"compute"`` or the name of the slowest memory tier."""
        if self.bound == "compute" or not self.tier_times:
            return "compute"
        return max(self.tier_times, key=lambda t: self.tier_times[t])


def op_time(c: Chip | str, op: Operator) -> OpTime:
    """Roofline time of ``op`` on chip ``c``.

    Raises
    ------
    ConfigError
        If the operator touches a tier the chip lacks, or the chip has no peak for its dtype.

    Examples
    --------
    >>> from workloads.chips import chip
    >>> h100 = chip("h100").replace(kernel_launch=0.0)
    >>> t = op_time(h100, Operator("gemv", flops=2e9, reads={"hbm": 2e9}))
    >>> t.bound, round(t.time * 1e3, 3)   # 2 GB / 3.35 TB/s
    ('memory', 0.597)
    """
    c = get_chip(c)
    compute = op.flops / c.peak(op.dtype) if op.flops else 0.0
    tiers: dict[str, float] = {}
    for tier in set(op.reads) | set(op.writes):
        nbytes = op.reads.get(tier, 0.0) + op.writes.get(tier, 0.0)
        if nbytes:
            tiers[tier] = nbytes / c.tier(tier).bandwidth
    memory = max(tiers.values(), default=0.0)
    bound: Bound = "compute" if compute >= memory and compute > 0 else "memory"
    return OpTime(op, compute, memory, MappingProxyType(tiers), c.kernel_launch, bound)
