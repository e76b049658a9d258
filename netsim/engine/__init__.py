"""The packet-level network engine (see :mod:`netsim.engine.network`)."""

from netsim.engine.network import FORWARDING, PacketNetwork
from netsim.engine.routing import ROUTINGS

__all__ = ["FORWARDING", "ROUTINGS", "PacketNetwork"]
