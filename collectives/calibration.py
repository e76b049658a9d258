"""Software costs of a collective library per link type, with the source of every number.

The network models time bytes on links. A collective library adds costs of its own, which
:func:`collectives.run_collective` takes from here when the caller does not give them
(``step_overhead=None`` etc.), keyed by link type (:mod:`netsim.core.linktypes`). Costs are per
link type and applied per route, never as one fabric-wide minimum: a transfer is charged the
efficiency, step cost and striping of the link types its own route crosses (a route crossing
several types takes the largest step cost and smallest efficiency among *them*, and stripes
only if every one of them does), and a collective's launch cost is the largest among the link
types its transfers cross. So on a DGX SuperPOD an intra-node transfer is striped over all
NVLinks with NVLink's protocol efficiency while an inter-node one pays InfiniBand's costs
(:class:`CostModel`):

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

:func:`cost_model` is the one way callers resolve these costs for a fabric: the library
by name (:data:`LIBRARIES`: ``nccl`` = this table by link type, ``none`` = hardware only),
the fabric's link types (:func:`link_types`), explicit values overriding every link type.
:func:`collectives.run_collective` applies ``nccl`` per route (:func:`collectives.runner.run`
with ``costs=``). :func:`library_costs` folds a cost model into one :class:`LibraryCosts`
over the link types given (for callers that need one number per fabric: the decode and
training workloads, which take a ``library`` option).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypedDict, Unpack

from netsim.core.validate import require_choice

__all__ = [
    "HARDWARE_ONLY",
    "LIBRARIES",
    "LIBRARY_COSTS",
    "NCCL_LINK_CLASS",
    "CostModel",
    "CostOverrides",
    "LibraryCosts",
    "ProtocolCosts",
    "cost_model",
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

#: NCCL's payload rate through one NDR NIC over netsim's NDR payload rate: 47 GB/s (middle of
#: the 46-48 GB/s NCCL's maintainers quote, NVIDIA/nccl-tests issue 290) / 49.7 GB/s (NDR
#: payload after InfiniBand headers). A
#: calibration (see the ``ib`` entry's source).
_NIC_EFFICIENCY = round(47.0 / (50.0 * 4096 / 4122), 3)


@dataclass(frozen=True, slots=True)
class LibraryCosts:
    """Software costs of the collective library on one link type (see the module docstring)."""

    link: str
    launch: float
    step: float
    efficiency: float
    multipath: bool
    source: str


_NVLINK = LibraryCosts(
    "nvlink",
    launch=6.6e-6,
    step=0.6e-6,
    efficiency=0.874,
    multipath=True,
    source=(
        f"{_NCCL_TUNING}. Efficiency: S. Jeaugey (NCCL maintainer), NVIDIA/nccl-tests "
        "issue 212 (2024): '450GB/s is the line rate. With the protocol overhead (~20%) "
        "NCCL can get an effective NVLink bandwidth of 370GB/s' on H100; 370/450 = 0.822 "
        "of which the 16 B header per 256 B NVLink packet (netsim.core.linktypes) accounts "
        "for 256/272, leaving 0.822 * 272/256 = 0.874 for NCCL's protocol. Multipath: "
        "the same statement takes the 450 GB/s of all 18 links as the line rate of "
        "one GPU's traffic, i.e. one peer's traffic is spread over every NVLink."
    ),
)

_IB = LibraryCosts(
    "ib",
    launch=6.6e-6,
    step=2.7e-6,
    efficiency=_NIC_EFFICIENCY,
    multipath=False,
    source=(
        f"{_NCCL_TUNING}. Efficiency: a calibration, not fitted to any validation "
        "row: NCCL's maintainers quote 46-48 GB/s per ConnectX-7 NDR NIC through NCCL "
        "(NVIDIA/nccl-tests issue 290, 2025: 'For NDR @ 400Gbps you should see "
        "46-48GB/s per NIC'; issue 267: 'up to 48-49GB/s per NIC'); the network model "
        "gives an NDR link 50 GB/s * 4096/4122 = 49.7 GB/s of payload after the "
        "InfiniBand headers, so 47/49.7 = 0.946. One route per flow (ECMP/static "
        "routing)."
    ),
)

#: The costs of ``library="none"``: collectives timed on the hardware alone (no launch or
#: step cost, no protocol overhead). Striping a message over every equal-cost path is a
#: property of the hardware (NVLink spreads a peer's traffic over all links of a GPU), so
#: :func:`library_costs` keeps the link types' ``multipath`` for ``"none"`` as well; this
#: constant (one route per message) is what a fabric of unknown link types gets.
HARDWARE_ONLY = LibraryCosts(
    "none", 0.0, 0.0, 1.0, False, "library none: collectives timed on the hardware alone"
)

_WAFER = replace(
    HARDWARE_ONLY,
    link="wafer",
    source="Wafer-scale fabrics move data by hardware routers; hardware only (assumed).",
)

#: The library's costs per link type (:func:`costs_for`); an entry "as" another (the same
#: values) is made from it, with its own name and source.
LIBRARY_COSTS: dict[str, LibraryCosts] = {
    c.link: c
    for c in (
        _NVLINK,
        replace(
            _NVLINK,
            link="nvlink5",
            source=f"As nvlink (same NCCL tuning tables for NVLink generations). {_NCCL_TUNING}",
        ),
        _IB,
        replace(
            _IB,
            link="ethernet",
            source=(
                "As ib (NCCL uses the same 'network' latencies for RoCE, and the same "
                "ConnectX NICs and net transport over RoCE; the efficiency is assumed, not "
                f"measured on RoCE). {_NCCL_TUNING}"
            ),
        ),
        replace(
            HARDWARE_ONLY,
            link="ici",
            source=(
                "No published per-step software cost for TPU collectives (XLA compiles them "
                "into the program); hardware only."
            ),
        ),
        _WAFER,
        replace(_WAFER, link="wafer-die", source="As wafer (assumed)."),
    )
}


#: NCCL's latency class of each link type with NCCL costs (``tuning.cc`` ``hwLatencies``:
#: NVLink, PCI, network).
NCCL_LINK_CLASS = {"nvlink": "nvlink", "nvlink5": "nvlink", "ib": "net", "ethernet": "net"}


@dataclass(frozen=True)
class ProtocolCosts:
    """What NCCL's protocol changes in :data:`LIBRARY_COSTS` (see docs/collectives.md,
    "Protocols"; built by :func:`collectives.protocols.protocol_costs`).

    The calibrated entries are what they are for the protocol of their calibration: their
    latencies are NCCL's Ring/LL table entries, their efficiencies were calibrated on
    large messages, which NCCL moves with Simple. A protocol replaces the latencies by
    NCCL's table entries for the algorithm and protocol, and scales the efficiency by the
    protocol's payload fraction relative to Simple.

    Attributes
    ----------
    protocol : str
        ``LL``, ``LL128`` or ``Simple``.
    launch : float
        Seconds per call, every link type (NCCL's ``baseLat`` and per-call terms).
    step : mapping
        NCCL link class (:data:`NCCL_LINK_CLASS` values) -> seconds per dependent step.
    payload : float
        Payload fraction of the protocol relative to Simple (LL 0.5, LL128 120/128).
    source : str
        Where the numbers come from.
    """

    protocol: str
    launch: float
    step: Mapping[str, float]
    payload: float
    source: str

    def apply(self, c: LibraryCosts) -> LibraryCosts:
        """``c`` (a link type's calibrated costs) under this protocol; a link type
        without an NCCL latency class is left as it is."""
        cls = NCCL_LINK_CLASS.get(c.link)
        if cls is None:
            return c
        return replace(
            c,
            launch=self.launch,
            step=self.step[cls],
            efficiency=c.efficiency * self.payload,
            source=f"{c.source}; protocol {self.protocol}: {self.source}",
        )


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


def link_types(graph: Any) -> list[str]:
    """The link types (edge attribute ``link``) of ``graph``, sorted."""
    return sorted({str(lt) for _, _, lt in graph.edges(data="link") if lt})


@dataclass(frozen=True)
class CostModel:
    """A collective library's costs per link type, resolved per route.

    Attributes
    ----------
    library : str
        The library (:data:`LIBRARIES`).
    by_link : mapping
        Link type -> its :class:`LibraryCosts` (explicit overrides applied).
    default : LibraryCosts
        The costs of a link type without an entry (unknown or missing ``link``).
    """

    library: str
    by_link: Mapping[str, LibraryCosts] = field(default_factory=dict)
    default: LibraryCosts = HARDWARE_ONLY

    def for_links(self, links: Iterable[str]) -> LibraryCosts:
        """The costs of a route (or collective) crossing the link types ``links``.

        One type: its own costs. Several: the largest launch and step costs and the
        smallest efficiency among them; multipath only if every one stripes. None: no cost.

        Examples
        --------
        >>> m = cost_model("nccl", ["ib", "nvlink"])
        >>> m.for_links(["nvlink"]).multipath, m.for_links(["ib"]).efficiency
        (True, 0.946)
        """
        known = [self.by_link.get(t, self.default) for t in sorted(set(links))]
        if not known:
            return replace(HARDWARE_ONLY, source="no link crossed: no cost")
        if len(known) == 1:
            return known[0]
        return LibraryCosts(
            "+".join(dict.fromkeys(c.link for c in known)),
            launch=max(c.launch for c in known),
            step=max(c.step for c in known),
            efficiency=min(c.efficiency for c in known),
            multipath=all(c.multipath for c in known),
            source="; ".join(dict.fromkeys(c.source for c in known)),
        )


class CostOverrides(TypedDict, total=False):
    """Costs given explicitly (keywords of :func:`cost_model` and :func:`library_costs`):
    each replaces the library's for every link type; ``None`` keeps the library's."""

    launch: float | None
    step: float | None
    efficiency: float | None
    multipath: bool | None


def cost_model(
    library: str,
    links: Iterable[str],
    *,
    protocol: ProtocolCosts | None = None,
    **given: Unpack[CostOverrides],
) -> CostModel:
    """The costs ``library`` adds on a fabric of link types ``links``, per link type.

    ``"nccl"``: :data:`LIBRARY_COSTS` of every type (a type without an entry costs
    nothing), changed by NCCL's ``protocol`` where one is given
    (:meth:`ProtocolCosts.apply`); ``"none"``: :data:`HARDWARE_ONLY` with each type's
    ``multipath`` (striping is done by the hardware, not the library). A value given
    explicitly (not ``None``) replaces the library's for every link type; values are not
    validated here (:func:`collectives.runner.run` does).

    Raises
    ------
    ConfigError
        If ``library`` is not one of :data:`LIBRARIES`.

    Examples
    --------
    >>> m = cost_model("nccl", ["nvlink", "ib"])
    >>> m.for_links(["nvlink"]).step, m.for_links(["ib"]).step
    (6e-07, 2.7e-06)
    """
    require_choice("library", library, LIBRARIES)
    by_link: dict[str, LibraryCosts] = {}
    for t in dict.fromkeys(links):
        c = costs_for([t])
        if protocol is not None and library == "nccl":
            c = protocol.apply(c)
        if library == "none":
            c = HARDWARE_ONLY
            if costs_for([t]).multipath:
                note = f"{HARDWARE_ONLY.source}; multipath (hardware)"
                c = replace(HARDWARE_ONLY, multipath=True, source=note)
        by_link[t] = c
    names = CostOverrides.__annotations__  # in their order, for the source note
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise TypeError(f"cost_model() got an unexpected keyword argument {unknown[0]!r}")
    given = {k: given[k] for k in names if given.get(k) is not None}
    if "multipath" in given:
        given["multipath"] = bool(given["multipath"])
    default = costs_for([])
    if given:
        note = f"given explicitly: {', '.join(given)}"
        by_link = {t: replace(c, **given, source=f"{c.source}; {note}") for t, c in by_link.items()}
        default = replace(default, **given, source=f"{default.source}; {note}")
    return CostModel(library, by_link, default)


def library_costs(
    library: str, links: Iterable[str], **given: Unpack[CostOverrides]
) -> LibraryCosts:
    """One :class:`LibraryCosts` for a fabric: :func:`cost_model` folded over ``links``.

    For callers that need one number per fabric (``CostModel.for_links`` over every type
    given). Collectives are charged per route instead (:func:`cost_model`).

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
    links = list(links)
    model = cost_model(library, links, **given)
    known = [t for t in links if t in LIBRARY_COSTS]
    return model.for_links(known) if known else model.default
