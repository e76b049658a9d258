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

from netsim.errors import ConfigError

__all__ = ["LINK_TYPES", "LinkType", "link_type"]


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


LINK_TYPES: dict[str, LinkType] = {
    lt.name: lt
    for lt in (
        LinkType(
            "nvlink",
            bandwidth=25e9,
            latency=10e-9,
            mtu=256,
            header=16,
            switch_latency=100e-9,
            source=(
                "NVLink4: 18 links x 50 GB/s bidirectional = 900 GB/s per H100, i.e. 25 GB/s per "
                "direction per link (NVIDIA H100 Tensor Core GPU Architecture whitepaper, 2022). "
                "Packets of up to 256 B payload with a 16 B header flit (Foley & Danskin, "
                "'Ultra-Performance Pascal GPU and NVLink Interconnect', IEEE Micro 37(2), 2017). "
                "Switch and link latency: assumed order of magnitude (~100 ns port to port)."
            ),
        ),
        LinkType(
            "nvlink5",
            bandwidth=50e9,
            latency=10e-9,
            mtu=256,
            header=16,
            switch_latency=100e-9,
            source=(
                "NVLink5: 18 links x 100 GB/s bidirectional = 1.8 TB/s per B200/GB200, i.e. 50 GB/s "
                "per direction per link (NVIDIA GB200 NVL72 and Blackwell architecture pages, "
                "2024); packet format as NVLink4."
            ),
        ),
        LinkType(
            "ib",
            bandwidth=50e9,
            latency=25e-9,
            mtu=4096,
            header=26,
            switch_latency=130e-9,
            source=(
                "InfiniBand NDR 400 Gb/s = 50 GB/s per direction; MTU 4096 B and LRH 8 + BTH 12 + "
                "ICRC 4 + VCRC 2 = 26 header bytes (InfiniBand Architecture Specification vol. 1); "
                "130 ns port-to-port is the figure of the HDR Quantum QM8700 datasheet; NVIDIA does "
                "not publish one for NDR Quantum-2 and third-party reports range from ~150 to "
                "~330 ns, so treat it as a lower bound. ~5 m of cable at 5 ns/m."
            ),
        ),
        LinkType(
            "ethernet",
            bandwidth=50e9,
            latency=25e-9,
            mtu=4096,
            header=82,
            switch_latency=600e-9,
            source=(
                "400 GbE with RoCEv2: 50 GB/s per direction; 4096 B RoCE MTU; on the wire per "
                "packet: preamble+SFD 8 + IFG 12, Ethernet header 14 + FCS 4, IPv4 20, UDP 8, "
                "IB BTH 12 and ICRC 4 = 82 bytes (InfiniBand Architecture Specification vol. 1, "
                "annex A17 RoCEv2; IEEE 802.3). Switch latency: assumed order of magnitude for "
                "51.2 Tb/s Ethernet ASICs (vendors do not publish a comparable port-to-port figure)."
            ),
        ),
        LinkType(
            "ici",
            bandwidth=50e9,
            latency=50e-9,
            mtu=512,
            header=32,
            switch_latency=0.0,
            source=(
                "TPU v4 inter-chip interconnect: 6 links per chip at 50 GB/s per direction "
                "(Jouppi et al., 'TPU v4: An Optically Reconfigurable Supercomputer for Machine "
                "Learning', ISCA 2023); consistent with the 24 TB/s bisection bandwidth of a "
                "4096-chip 16x16x16 torus pod (512 links across the cut; Google Cloud TPU v4 "
                "documentation). Direct network, routing in the chip. Link latency and packet "
                "size assumed."
            ),
        ),
        LinkType(
            "wafer",
            bandwidth=100e9,
            latency=2e-9,
            mtu=64,
            header=4,
            switch_latency=1e-9,
            source=(
                "On-wafer mesh between tiles: short wires, ~1 cycle per router hop at ~1 GHz "
                "(Cerebras WSE fabric, Lie, 'Cerebras Architecture Deep Dive', Hot Chips 2022); "
                "bandwidth per tile link assumed."
            ),
        ),
        LinkType(
            "wafer-die",
            bandwidth=50e9,
            latency=5e-9,
            mtu=64,
            header=4,
            switch_latency=1e-9,
            source=(
                "Links that cross a die (reticle) boundary on a wafer: lower bandwidth and a few "
                "more ns than intra-die wires (Tesla Dojo training tile, Talpes et al., Hot Chips "
                "2022; Cerebras scribe-line stitching, Hot Chips 2022). Values assumed."
            ),
        ),
    )
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
