"""Software costs of a collective library per link type, with the source of every number.

The network models time bytes on links. A collective library adds costs of its own, which
:func:`collectives.run_collective` takes from here when the caller does not give them
(``step_overhead=None`` etc.), keyed by the link type of the topology (:mod:`netsim.linktypes`;
a topology mixing types takes the largest overhead and smallest efficiency among them):

``launch``      seconds before the first message of a collective leaves (kernel launch and
                set-up): NCCL's ``baseLat``.
``step``        seconds between the arrival of a step's data and the next dependent send
                (synchronisation flags, kernel loop): NCCL's per-hop ``hwLat``.
``efficiency``  fraction of the bytes on the wire that are payload *after* the link's own
                packet headers (which the network model already charges): the library's
                protocol overhead (flags, fifo slots). Messages carry ``n / efficiency``
                bytes.
``multipath``   whether the hardware stripes one message over every equal-cost path (all
                NVLinks of a GPU, whichever NVSwitch they land on) instead of one route
                per flow.

Change a value by passing the parameter explicitly, or by editing a copy of
:data:`LIBRARY_COSTS`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["LIBRARY_COSTS", "LibraryCosts", "costs_for"]

_NCCL_TUNING = (
    "NCCL src/graph/tuning.cc (v2.18 and later): baseLat Ring/LL = 6.6 us; hwLat Ring/LL = "
    "0.6 us per step over NVLink and 2.7 us over the network (LL is the protocol NCCL picks "
    "for small messages)"
)


@dataclass(frozen=True, slots=True)
class LibraryCosts:
    """Software costs of the collective library on one link type (see the module docstring)."""

    link: str
    launch: float
    step: float
    efficiency: float
    multipath: bool
    source: str


LIBRARY_COSTS: dict[str, LibraryCosts] = {
    c.link: c
    for c in (
        LibraryCosts(
            "nvlink",
            launch=6.6e-6,
            step=0.6e-6,
            efficiency=0.874,
            multipath=True,
            source=(
                f"{_NCCL_TUNING}. Efficiency: S. Jeaugey (NCCL maintainer), NVIDIA/nccl-tests "
                "issue 212 (2024): '450GB/s is the line rate. With the protocol overhead (~20%) "
                "NCCL can get an effective NVLink bandwidth of 370GB/s' on H100; 370/450 = 0.822 "
                "of which the 16 B header per 256 B NVLink packet (netsim.linktypes) accounts "
                "for 256/272, leaving 0.822 * 272/256 = 0.874 for NCCL's protocol. Multipath: "
                "the same statement takes the 450 GB/s of all 18 links as the line rate of "
                "one GPU's traffic, i.e. one peer's traffic is spread over every NVLink."
            ),
        ),
        LibraryCosts(
            "nvlink5",
            launch=6.6e-6,
            step=0.6e-6,
            efficiency=0.874,
            multipath=True,
            source=f"As nvlink (same NCCL tuning tables for NVLink generations). {_NCCL_TUNING}",
        ),
        LibraryCosts(
            "ib",
            launch=6.6e-6,
            step=2.7e-6,
            efficiency=1.0,
            multipath=False,
            source=(
                f"{_NCCL_TUNING}. Efficiency 1 (no published figure; the InfiniBand headers "
                "are charged by the network model); one route per flow (ECMP/static routing)."
            ),
        ),
        LibraryCosts(
            "ethernet",
            launch=6.6e-6,
            step=2.7e-6,
            efficiency=1.0,
            multipath=False,
            source=f"As ib (NCCL uses the same 'network' latencies for RoCE). {_NCCL_TUNING}",
        ),
        LibraryCosts(
            "ici",
            launch=0.0,
            step=0.0,
            efficiency=1.0,
            multipath=False,
            source=(
                "No published per-step software cost for TPU collectives (XLA compiles them "
                "into the program); hardware only."
            ),
        ),
        LibraryCosts(
            "wafer",
            launch=0.0,
            step=0.0,
            efficiency=1.0,
            multipath=False,
            source="Wafer-scale fabrics move data by hardware routers; hardware only (assumed).",
        ),
        LibraryCosts(
            "wafer-die",
            launch=0.0,
            step=0.0,
            efficiency=1.0,
            multipath=False,
            source="As wafer (assumed).",
        ),
    )
}


def costs_for(links: Iterable[str]) -> LibraryCosts:
    """Combine the costs of the link types ``links`` (unknown types are ignored).

    The largest launch and step costs and the smallest efficiency win; multipath only if
    every type sprays. No known type gives zero costs.
    """
    known = [LIBRARY_COSTS[t] for t in dict.fromkeys(links) if t in LIBRARY_COSTS]
    if not known:
        return LibraryCosts("none", 0.0, 0.0, 1.0, False, "no known link type: no overhead")
    return LibraryCosts(
        "+".join(c.link for c in known),
        launch=max(c.launch for c in known),
        step=max(c.step for c in known),
        efficiency=min(c.efficiency for c in known),
        multipath=all(c.multipath for c in known),
        source="; ".join(c.source for c in known),
    )
