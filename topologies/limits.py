"""The largest fabric netsim builds: one named constant for every topology family.

:data:`MAX_CHIPS` is a limit of the tools, not of the hardware: it is what ``netsim topo``
(build plus the structural metrics) finishes in bounded time on a small machine. Measured
on the 2-core development machine (December 2026): ``torus:dims=128x128`` (16,384 chips)
2.9 s and 0.14 GB, ``torus:dims=256x256`` (65,536 chips) 22 s and 0.28 GB,
``wafer:dies=256x256`` 23 s, ``fat_tree:k=64`` (65,536 hosts) 3.4 s;
``torus:dims=1024x1024`` (2^20 chips) did not finish in 150 s (2.9 GB) while its metrics
were searched.

Tori and meshes have closed-form metrics (``hops_method: closed-form``) and a cheaper build,
so they get :data:`MAX_GRID_CHIPS`: ``netsim topo torus:dims=1024x1024`` takes 17 s and
1.6 GiB peak RSS on the same machine (the networkx graph is most of both). Every family's
check and message follow these constants.
"""

from __future__ import annotations

from netsim.core.errors import ConfigError

__all__ = ["MAX_CHIPS", "MAX_GRID_CHIPS", "check_chips"]

#: Most chips of any topology (see the module docstring for the measurement behind it).
MAX_CHIPS = 1 << 16

#: Most chips of a torus or mesh (closed-form metrics; see the module docstring).
MAX_GRID_CHIPS = 1 << 20


def check_chips(name: str, chips: int, got: str, limit: int = MAX_CHIPS) -> int:
    """Return ``chips`` if it is at most ``limit`` (a constant of this module), else raise.

    Examples
    --------
    >>> check_chips("dims", 16, "4x4")
    16
    """
    if chips > limit:
        const = "MAX_GRID_CHIPS" if limit == MAX_GRID_CHIPS else "MAX_CHIPS"
        raise ConfigError(
            f"{name}: at most {limit} chips (topologies.limits.{const}, what netsim "
            f"builds and measures in bounded time), got {got}"
        )
    return chips
