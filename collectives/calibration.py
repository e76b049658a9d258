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

:func:`library_costs` is the one way callers resolve these costs for a fabric: the library
by name (:data:`LIBRARIES`: ``nccl`` = this table by link type, ``none`` = hardware only),
the fabric's link types (:func:`link_types`), explicit values overriding.
:func:`collectives.run_collective` applies ``nccl``; the decode and training workloads take
a ``library`` option.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from netsim.validate import require_choice

__all__ = [
    "HARDWARE_ONLY",
    "LIBRARIES",
    "LIBRARY_COSTS",
    "LibraryCosts",
    "costs_for",
    "library_costs",
    "link_types",
]

#: Collective libraries :func:`library_costs` knows: ``nccl`` (:data:`LIBRARY_COSTS` by link
#: type) and ``none`` (no software cost: the hardware alone).
LIBRARIES = ("nccl", "none")

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


#: The costs of ``library="none"``: collectives timed on the hardware alone (no launch or
#: step cost, no protocol overhead). Striping a message over every equal-cost path is a
#: property of the hardware (NVLink spreads a peer's traffic over all links of a GPU), so
#: :func:`library_costs` keeps the link types' ``multipath`` for ``"none"`` as well; this
#: constant (one route per message) is what a fabric of unknown link types gets.
HARDWARE_ONLY = LibraryCosts(
    "none", 0.0, 0.0, 1.0, False, "library none: collectives timed on the hardware alone"
)


def link_types(graph: Any) -> list[str]:
    """The link types (edge attribute ``link``) of ``graph``, sorted."""
    return sorted({str(lt) for _, _, lt in graph.edges(data="link") if lt})


def library_costs(
    library: str,
    links: Iterable[str],
    *,
    launch: float | None = None,
    step: float | None = None,
    efficiency: float | None = None,
    multipath: bool | None = None,
) -> LibraryCosts:
    """The costs ``library`` adds to collectives on a fabric of link types ``links``.

    ``"nccl"``: :func:`costs_for` ``(links)``; ``"none"``: :data:`HARDWARE_ONLY` with the
    ``multipath`` of the link types (striping is done by the hardware, not the library). A value
    given explicitly (not ``None``) replaces the library's; values are not validated here
    (:func:`collectives.runner.run` does).

    Raises
    ------
    ConfigError
        If ``library`` is not one of :data:`LIBRARIES`.

    Examples
    --------
    >>> library_costs("nccl", ["nvlink"]).launch
    6.6e-06
    >>> library_costs("nccl", ["nvlink"], step=0.0).step
    0.0
    >>> library_costs("none", ["nvlink"]).launch
    0.0
    """
    require_choice("library", library, LIBRARIES)
    if library == "nccl":
        costs = costs_for(links)
    else:
        hw = costs_for(links).multipath
        costs = (
            HARDWARE_ONLY
            if not hw
            else replace(
                HARDWARE_ONLY,
                multipath=True,
                source=f"{HARDWARE_ONLY.source}; multipath (hardware)",
            )
        )
    given = {
        "launch": launch,
        "step": step,
        "efficiency": efficiency,
        "multipath": None if multipath is None else bool(multipath),
    }
    given = {k: v for k, v in given.items() if v is not None}
    if not given:
        return costs
    note = f"{costs.source}; given explicitly: {', '.join(given)}"
    return replace(costs, **given, source=note)
