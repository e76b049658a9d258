"""The largest fabric netsim builds: one named constant for every topology family.

:data:`MAX_CHIPS` is a limit of the tools, not of the hardware: it is what ``netsim topo``
(build plus the structural metrics) finishes in bounded time on a small machine. Measured
on the 2-core development machine (December 2026): ``torus:dims=128x128`` (16,384 chips)
2.9 s and 0.14 GB, ``torus:dims=256x256`` (65,536 chips) 22 s and 0.28 GB,
``wafer:dies=256x256`` 23 s, ``fat_tree:k=64`` (65,536 hosts) 3.4 s;
``torus:dims=1024x1024`` (2^20 chips) did not finish in 150 s (2.9 GB). Raise it here when
the metrics get faster (issue 13); every family's check and message follow it.
"""

from __future__ import annotations

from netsim.errors import ConfigError

__all__ = ["MAX_CHIPS", "check_chips"]

#: Most chips of any topology (see the module docstring for the measurement behind it).
MAX_CHIPS = 1 << 16


def check_chips(name: str, chips: int, got: str) -> int:
    """Return ``chips`` if it is at most :data:`MAX_CHIPS`, else raise ConfigError.

    Examples
    --------
    >>> check_chips("dims", 16, "4x4")
    16
    """
    if chips > MAX_CHIPS:
        raise ConfigError(
            f"{name}: at most {MAX_CHIPS} chips (topologies.limits.MAX_CHIPS, what netsim "
            f"builds and measures in bounded time), got {got}"
        )
    return chips
