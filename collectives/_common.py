"""Validation shared by the algorithm builders of this package (B1's modules)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from netsim.core.errors import ConfigError
from netsim.core.validate import require_int

__all__ = ["check_ranks", "no_chunks", "no_opts", "pow2"]


def check_ranks(ranks: Sequence[int], *, min_ranks: int = 1) -> tuple[int, ...]:
    """Return ``ranks`` as a tuple of distinct ints, or raise ConfigError."""
    try:
        out = tuple(int(r) for r in ranks)
    except (TypeError, ValueError):
        raise ConfigError(f"ranks: must be a sequence of chip ids, got {ranks!r}") from None
    if len(out) < min_ranks:
        raise ConfigError(f"ranks: need at least {min_ranks} rank(s), got {list(out)}")
    if len(set(out)) != len(out):
        raise ConfigError(f"ranks: must be distinct, got {list(out)}")
    return out


def no_opts(algo: str, opts: dict[str, Any]) -> None:
    """Refuse options the algorithm does not know."""
    if opts:
        name = sorted(opts)[0]
        raise ConfigError(f"{name}: not an option of the {algo} algorithm, got {opts[name]!r}")


def no_chunks(algo: str, chunks: Any) -> None:
    """Refuse ``chunks`` other than None/1 for an algorithm that does not pipeline."""
    if chunks is None:
        return
    c = require_int("chunks", chunks, min=1)
    if c != 1:
        raise ConfigError(f"chunks: {algo} does not pipeline, must be 1 or unset, got {chunks!r}")


def pow2(algo: str, p: int) -> int:
    """Return log2(p), or raise ConfigError if ``p`` is not a power of two."""
    if p < 1 or p & (p - 1):
        raise ConfigError(f"ranks: {algo} needs a power-of-two number of ranks, got {p}")
    return p.bit_length() - 1
