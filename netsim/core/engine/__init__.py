"""The packet-level network engine (see :mod:`netsim.core.engine.network`)."""

from netsim.core.engine.network import FORWARDING, PacketNetwork
from netsim.core.engine.routing import ROUTINGS

__all__ = ["FORWARDING", "ROUTINGS", "PacketNetwork"]
