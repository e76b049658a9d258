"""Default parameters of each link type, with the source of every number.

A topology edge names its type in the ``link`` attribute; where a generator or the engine
needs a parameter the user did not give (bandwidth, propagation latency, MTU, header bytes,
switch traversal latency), it takes it from here. Every value is SI (bytes, seconds,
bytes/s); ``bandwidth`` is per direction of one physical full-duplex link.

Override any of them per topology (spec-string parameters such as ``bandwidth=100GB/s``),
per run (engine options ``mtu=``, ``header=``), or by editing a copy of :data:`LINK_TYPES`.
"""

from __future__ import annotations

from dataclasses import dataclass

from netsim.core.errors import ConfigError

__all__ = ["LINK_TYPES", "REDUCTION_ENGINES", "LinkType", "ReductionEngine", "link_type"]


@dataclass(frozen=True, slots=True)
class LinkType:
    """Defaults for one link technology.

    Attributes
    ----------
    name : str
        The name used in the ``link`` edge attribute.
    bandwidth : float
        Bytes/s per direction of one physical link.
    latency : float
        Propagation plus PHY/SerDes latency of one link, seconds.
    mtu : int
        Largest payload of one packet, bytes.
    header : int
        Header/trailer bytes added to every packet on the wire.
    switch_latency : float
        Traversal latency of a switch of this technology (input to output port), seconds.
    source : str
        Where the numbers come from.
    """

    name: str
    bandwidth: float
    latency: float
    mtu: int
    header: int
    switch_latency: float
    source: str


# One row per link type (the fields of LinkType, SI units); each row's sources are in _SOURCES.
# fmt: off
_TABLE: tuple[tuple[str, float, float, int, int, float], ...] = (
    # name        bandwidth latency mtu   header switch_latency
    ("nvlink",    25e9,     10e-9,  256,  16,  100e-9),
    ("nvlink5",   50e9,     10e-9,  256,  16,  100e-9),
    ("ib",        50e9,     25e-9,  4096, 26,  130e-9),
    ("ethernet",  50e9,     25e-9,  4096, 82,  600e-9),
    ("ici",       50e9,     50e-9,  512,  32,  0.0),
    ("wafer",     100e9,    2e-9,   64,   4,   1e-9),
    ("wafer-die", 50e9,     5e-9,   64,   4,   1e-9),
)
# fmt: on

_SOURCES: dict[str, str] = {
    "nvlink": (
        "NVLink4: 18 links x 50 GB/s bidirectional = 900 GB/s per H100, i.e. 25 GB/s per "
        "direction per link (NVIDIA H100 Tensor Core GPU Architecture whitepaper, 2022). "
        "Packets of up to 256 B payload with a 16 B header flit (Foley & Danskin, "
        "'Ultra-Performance Pascal GPU and NVLink Interconnect', IEEE Micro 37(2), 2017). "
        "Switch and link latency: assumed order of magnitude (~100 ns port to port)."
    ),
    "nvlink5": (
        "NVLink5: 18 links x 100 GB/s bidirectional = 1.8 TB/s per B200/GB200, i.e. 50 GB/s "
        "per direction per link (NVIDIA GB200 NVL72 and Blackwell architecture pages, "
        "2024); packet format as NVLink4."
    ),
    "ib": (
        "InfiniBand NDR 400 Gb/s = 50 GB/s per direction; MTU 4096 B and LRH 8 + BTH 12 + "
        "ICRC 4 + VCRC 2 = 26 header bytes (InfiniBand Architecture Specification vol. 1); "
        "130 ns port-to-port is the figure of the HDR Quantum QM8700 datasheet; NVIDIA does "
        "not publish one for NDR Quantum-2 and third-party reports range from ~150 to "
        "~330 ns, so treat it as a lower bound. ~5 m of cable at 5 ns/m."
    ),
    "ethernet": (
        "400 GbE with RoCEv2: 50 GB/s per direction; 4096 B RoCE MTU; on the wire per "
        "packet: preamble+SFD 8 + IFG 12, Ethernet header 14 + FCS 4, IPv4 20, UDP 8, "
        "IB BTH 12 and ICRC 4 = 82 bytes (InfiniBand Architecture Specification vol. 1, "
        "annex A17 RoCEv2; IEEE 802.3). Switch latency: assumed order of magnitude for "
        "51.2 Tb/s Ethernet ASICs (vendors do not publish a comparable port-to-port figure)."
    ),
    "ici": (
        "TPU v4 inter-chip interconnect: 6 links per chip at 50 GB/s per direction "
        "(Jouppi et al., 'TPU v4: An Optically Reconfigurable Supercomputer for Machine "
        "Learning', ISCA 2023); consistent with the 24 TB/s bisection bandwidth of a "
        "4096-chip 16x16x16 torus pod (512 links across the cut; Google Cloud TPU v4 "
        "documentation). Direct network, routing in the chip. Link latency and packet "
        "size assumed."
    ),
    "wafer": (
        "On-wafer mesh between tiles: short wires, ~1 cycle per router hop at ~1 GHz "
        "(Cerebras WSE fabric, Lie, 'Cerebras Architecture Deep Dive', Hot Chips 2022); "
        "bandwidth per tile link assumed."
    ),
    "wafer-die": (
        "Links that cross a die (reticle) boundary on a wafer: lower bandwidth and a few "
        "more ns than intra-die wires (Tesla Dojo training tile, Talpes et al., Hot Chips "
        "2022; Cerebras scribe-line stitching, Hot Chips 2022). Values assumed."
    ),
}

LINK_TYPES: dict[str, LinkType] = {
    row[0]: LinkType(*row, source=_SOURCES[row[0]]) for row in _TABLE
}


def link_type(name: str) -> LinkType:
    """Return the defaults of link type ``name``.

    Raises
    ------
    ConfigError
        If the name is unknown; the message lists the known types.
    """
    try:
        return LINK_TYPES[name]
    except KeyError:
        known = ", ".join(sorted(LINK_TYPES))
        raise ConfigError(f"link: must be one of {known}, got {name!r}") from None


@dataclass(frozen=True, slots=True)
class ReductionEngine:
    """The in-network reduction engine of one switch generation (a switch with
    ``reduction=True``; its node attributes ``reduction_bandwidth`` and
    ``reduction_latency`` default to these).

    Attributes
    ----------
    name : str
        The switch generation.
    bandwidth : float
        Operand bytes/s one switch chip reduces: the incoming data of ``sum`` transfers
        that its reduction engines consume (a reduction of ``k`` inputs of ``c`` bytes
        costs ``k c / bandwidth``).
    latency : float
        Seconds added to every reduction operation (pipeline latency, not throughput).
    source : str
        Where the numbers come from; ``calibration`` says which were fitted.
    """

    name: str
    bandwidth: float
    latency: float
    source: str


# NVLink Switch (gen4, GB200 NVL72): CALIBRATION. Fitted to the plateau of CoreWeave's GB200
# NVL72 nccl-tests all-reduce (72 GPUs, NVLS): 423-429 GB/s algbw at 4-8 GiB
# (coreweave/nccl-tests PR 43, 2025). In netsim's in-network all-reduce on nvl72 each of the 18
# switch chips reduces 72 x S/18 = 4 S operand bytes, so algbw -> bandwidth / 4 at large S:
# 4 x 425 GB/s = 1.70 TB/s. Held out: the 1 GiB point of the same table and the H100 NVLS
# measurement (see gen3).
_NVL72_REDUCTION = 1.70e12

REDUCTION_ENGINES: dict[str, ReductionEngine] = {
    "nvlink5": ReductionEngine(
        "NVLink Switch (gen4, NVLink SHARP, GB200 NVL72)",
        bandwidth=_NVL72_REDUCTION,
        latency=0.0,
        source=(
            "bandwidth: CALIBRATION on the GB200 NVL72 all-reduce plateau of "
            "coreweave/nccl-tests PR 43 (423-429 GB/s algbw at 4-8 GiB, 72 GPUs): 1.70 TB/s of "
            "operands per switch chip, 0.47 of the chip's 72 x 50 GB/s port bandwidth; NVIDIA "
            "publishes no reduction throughput. latency: no published per-operation figure; "
            "0 beyond the switch traversal latency charged to every packet."
        ),
    ),
    "nvlink": ReductionEngine(
        "NVSwitch gen3 (NVLink SHARP, DGX/HGX H100)",
        bandwidth=_NVL72_REDUCTION * (64 * 25e9) / (72 * 50e9),
        latency=0.0,
        source=(
            "bandwidth: assumed the same fraction (0.47) of the chip's port bandwidth as the "
            "calibrated NVLink Switch gen4: 64 NVLink4 ports x 25 GB/s (Hot Chips 34, Ishii & "
            "Wells 2022) -> 0.76 TB/s; not fitted to any H100 measurement (DGX H100 NVLS stays "
            "link-bound, checked against the ~480 GB/s busbw of NVIDIA/nccl-tests issue 212). "
            "latency: as gen4."
        ),
    ),
    "ib": ReductionEngine(
        "Quantum-2 NDR with SHARPv3",
        bandwidth=64 * 50e9,
        latency=0.0,
        source=(
            "assumed line rate: 64 ports x 50 GB/s (QM9700); NVIDIA describes SHARPv3 streaming "
            "aggregation as reducing large messages at line rate but publishes no throughput "
            "figure; latency: no published per-operation figure, 0 beyond the switch latency."
        ),
    ),
}
