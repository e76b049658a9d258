"""How a packet crosses a link: port timing and the infinite-buffer hop handler.

Ports
    Each output port (directed link) is a FIFO server: it serialises packets at its
    ``bandwidth`` and delivers them after its ``latency``. A switch adds its traversal
    ``latency`` (node attribute) to every packet passing through it or ending in it
    (in-network reduction), and the router of a chip in a direct network (chip ``latency``,
    default 0) to every packet it forwards, not to those it ejects (:func:`port_timing`).

Forwarding
    ``store-and-forward``: a node forwards a packet once its last byte has arrived.
    ``cut-through`` (virtual cut-through): a node forwards a packet once its head has arrived;
    the packet cannot leave a link faster than its tail arrives. Zero-load latency of one
    packet of ``s`` wire bytes over hops ``i`` with bandwidths ``B_i``, link latencies ``l_i``
    and node latencies ``d_i`` (of the nodes entered, the destination chip excluded) is::

        store-and-forward:  sum_i (s / B_i + l_i) + sum_i d_i
        cut-through:        s / min_i B_i + sum_i l_i + sum_i d_i

One event per packet-hop
    With infinite buffers a port's next free time is known, so a packet's departure is fixed
    the moment it reaches the port (:func:`make_hop`), and so is its arrival once it starts
    its last link: it is then *settled* (booked as delivered, its message completed for the
    arrival time) without an event of its own. Finite buffers
    (:mod:`netsim.core.engine.flowcontrol`) and multicast copies
    (:mod:`netsim.core.engine.multicast`) use the same port timing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from heapq import heappush
from typing import TYPE_CHECKING

import networkx as nx

from netsim.core.engine.packets import Call, Packet
from netsim.core.engine.routing import PortTable

if TYPE_CHECKING:
    from netsim.core.engine.network import PacketNetwork

__all__ = ["make_hop", "port_timing"]


def port_timing(graph: nx.Graph, ports: PortTable) -> tuple[list[float], list[float], list[float]]:
    """``(inv_bw, delay, last)`` per port: seconds per wire byte; seconds from a departure
    to readiness at the far end (link plus node latency); seconds from the last departure
    to delivery (link latency, plus the traversal latency of a switch that is itself the
    destination: in-network reduction enters the switch's pipeline; a chip's router
    latency is not charged on ejection)."""
    node_lat = {v: float(graph.nodes[v].get("latency", 0.0)) for v in graph.nodes}
    is_switch = {v: graph.nodes[v].get("kind") == "switch" for v in graph.nodes}
    inv_bw = [1.0 / b for b in ports.bandwidth]
    delay = [lat + node_lat[v] for lat, v in zip(ports.latency, ports.dst, strict=True)]
    last = [
        lat + (node_lat[v] if is_switch[v] else 0.0)
        for lat, v in zip(ports.latency, ports.dst, strict=True)
    ]
    return inv_bw, delay, last


def make_hop(net: PacketNetwork, inv_bw: Sequence[float] | None = None) -> Callable[[Packet], None]:
    """Build the infinite-buffer hop handler of ``net``: one event per packet-hop.

    The packet takes its port at the port's next free time (FIFO) and keeps it for its
    wire bytes, not less than until its tail has arrived; at its last port it is settled
    (see the module docstring), else it moves on at its head's (cut-through) or tail's
    (store-and-forward) arrival. A closure over local lists keeps attribute look-ups off
    the hot path. ``inv_bw`` (port -> seconds per wire byte of the packet's first link)
    replaces the ports' own for a route whose links have different headers
    (:mod:`netsim.core.engine.packetise`).
    """
    busy, busy_time = net._busy, net._busy_time
    inv_bw = net._inv_bw if inv_bw is None else inv_bw
    delay, lat, queue, eid = net._delay, net._lat, net._heap, net._seq
    env, complete, cut_through = net.env, net._complete, net.cut_through

    def hop(pkt: Packet) -> None:
        now = env._now
        i = pkt.hop
        path = pkt.path
        port = path[i]
        start = busy[port]
        if start < now:
            start = now
        end = start + pkt.size * inv_bw[port]
        if end < pkt.tail:
            end = pkt.tail
        busy[port] = end
        busy_time[port] += end - start
        i += 1
        if i == len(path):  # its last link: the arrival time is final, settle it
            net.in_flight -= 1
            net.bytes_delivered += pkt.payload
            msg = pkt.msg
            if msg is None:  # a message of its own
                msg = pkt
            else:
                msg.left -= 1
                if msg.left:
                    return
            event = msg.event
            if msg.observe is None and type(event) is Call:  # transfer(): _complete inlined
                t = end + lat[port]
                heappush(queue, (t if t > now else now, 1, next(eid), event))
            else:
                complete(msg, end + lat[port])
            return
        pkt.hop = i
        d = delay[port]
        pkt.tail = end + d
        heappush(queue, (start + d if cut_through else end + d, 1, next(eid), pkt))

    return hop
