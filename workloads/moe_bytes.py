"""Wire formats of MoE dispatch and combine: bytes a token's hidden state takes on the fabric.

A wire dtype is a spec string ``DTYPE`` or ``DTYPE/GROUP``:

``bf16``, ``fp16``, ``fp32``, ``fp8``, ``int8``
    ``hidden`` elements of that size (2, 2, 4, 1, 1 bytes).
``fp8/128``
    FP8 elements plus one FP32 (4-byte) scale per ``GROUP`` consecutive channels, the
    fine-grained (1 x 128 tile-wise) activation quantisation of DeepSeek-V3 (DeepSeek-AI,
    "DeepSeek-V3 Technical Report", arXiv:2412.19437, 2024, §3.3.2) that its dispatch sends
    (§3.3.3: "we quantize the activation before MoE up-projections into FP8 and then apply
    dispatch components"; DeepEP's ``low_latency_dispatch`` returns FP32 scales of shape
    ``[..., hidden / 128]``). A hidden state of 7168 channels takes 7168 + 56 x 4 = 7392 bytes.

The empty string means "the model's activation dtype" (see
:meth:`workloads.models.TransformerModel.dispatch_bytes_per_token`).

Examples
--------
>>> parse_wire_dtype("fp8/128").token_bytes(7168)
7392
>>> parse_wire_dtype("bf16").token_bytes(7168)
14336
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from netsim.core.errors import ConfigError

__all__ = [
    "SCALE_BYTES",
    "WIRE_DTYPES",
    "WireDtype",
    "moe_wire_record",
    "parse_wire_dtype",
    "with_wire_dtypes",
]

#: Bytes per element of the wire dtypes.
WIRE_DTYPES: dict[str, int] = {"fp8": 1, "int8": 1, "bf16": 2, "fp16": 2, "fp32": 4}
#: Bytes of one quantisation scale (FP32, as DeepEP and DeepSeek-V3 keep them).
SCALE_BYTES = 4


@dataclass(frozen=True)
class WireDtype:
    """A parsed wire dtype.

    Attributes
    ----------
    name : str
        Element dtype (a key of :data:`WIRE_DTYPES`).
    group : int
        Channels per FP32 scale; 0 means no scales.
    """

    name: str
    group: int = 0

    @property
    def itemsize(self) -> int:
        """Bytes per element."""
        return WIRE_DTYPES[self.name]

    def token_bytes(self, hidden: int) -> int:
        """Bytes of one ``hidden``-channel vector: elements plus ``ceil(hidden/group)`` scales."""
        scales = math.ceil(hidden / self.group) if self.group else 0
        return hidden * self.itemsize + scales * SCALE_BYTES

    def __str__(self) -> str:
        return f"{self.name}/{self.group}" if self.group else self.name


def parse_wire_dtype(text: str, *, name: str = "dispatch_dtype") -> WireDtype:
    """Parse ``DTYPE`` or ``DTYPE/GROUP`` (see the module docstring).

    Raises
    ------
    ConfigError
        Naming ``name`` on an unknown dtype or a group that is not an integer >= 1.
    """
    if not isinstance(text, str):
        raise ConfigError(f"{name}: expected a dtype such as bf16 or fp8/128, got {text!r}")
    dtype, sep, group = text.strip().lower().partition("/")
    if dtype not in WIRE_DTYPES:
        raise ConfigError(
            f"{name}: dtype must be one of {', '.join(WIRE_DTYPES)} (optionally /GROUP for "
            f"per-GROUP-channel FP32 scales, e.g. fp8/128), got {text!r}"
        )
    if not sep:
        return WireDtype(dtype)
    if not group.isdigit() or int(group) < 1:
        raise ConfigError(
            f"{name}: scale group after '/' must be an integer >= 1 (e.g. fp8/128), got {text!r}"
        )
    return WireDtype(dtype, int(group))


def with_wire_dtypes(
    m: Any, dispatch_dtype: str | None = None, combine_dtype: str | None = None
) -> Any:
    """Return the model ``m`` with its dispatch/combine wire dtypes overridden (``None``: keep).

    Raises
    ------
    ConfigError
        Naming ``dispatch_dtype`` or ``combine_dtype`` on a bad spec.
    """
    given = (("dispatch_dtype", dispatch_dtype), ("combine_dtype", combine_dtype))
    over = {k: str(parse_wire_dtype(v, name=k)) for k, v in given if v is not None}
    return m.replace(**over) if over else m


def moe_wire_record(m: Any, active: bool) -> dict[str, Any]:
    """The result keys naming the wire formats: dtype spec (``"activation"`` when unset) and
    bytes per token of dispatch and combine; all ``None`` when ``active`` is false."""
    return {
        "dispatch_dtype": (m.dispatch_dtype or "activation") if active else None,
        "combine_dtype": (m.combine_dtype or "activation") if active else None,
        "dispatch_bytes_per_token": m.dispatch_bytes_per_token() if active else None,
        "combine_bytes_per_token": m.combine_bytes_per_token() if active else None,
    }
