"""Multicast trees: the union of unicast routes, replicated where they diverge.

A packet multicast from a node follows the routes its router gives to every destination;
where two routes part, the switch copies the packet (as NVLink SHARP and InfiniBand
multicast do). :func:`multicast_tree` describes the tree by ports (directed links), which
the handler built by :func:`make_hop_mc` walks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from heapq import heappush
from typing import TYPE_CHECKING, Any

from netsim.core.engine.packets import Packet
from netsim.core.engine.simpy_adapter import NORMAL, event_counter, event_queue

if TYPE_CHECKING:
    from netsim.core.engine.network import PacketNetwork
    from netsim.core.engine.routing import PortTable, Router

__all__ = ["MulticastTree", "make_hop_mc", "multicast_tree"]

# (children, ends, destinations): children[port] lists the ports a packet arriving on `port`
# is copied to (-1: the source); ends are the ports that enter a destination.
MulticastTree = tuple[dict[int, tuple[int, ...]], frozenset[int], int]


def multicast_tree(
    router: Router, ports: PortTable, src: int, dsts: Sequence[int]
) -> MulticastTree:
    """Return the multicast tree from ``src`` to the distinct nodes ``dsts`` (not ``src``)."""
    children: dict[int, list[int]] = {}
    ends: set[int] = set()
    entered: dict[int, int] = {}  # node -> the port the tree enters it by
    for d in dsts:
        path, _ = router.route(src, d, 0)
        parent = -1
        for p in path:
            node = ports.dst[p]
            if node in entered and entered[node] != p:
                # Already reached by another branch: graft there.
                parent = entered[node]
                continue
            if p not in children.setdefault(parent, []):
                children[parent].append(p)
            entered[node] = p
            parent = p
        ends.add(entered[d])
    return {k: tuple(v) for k, v in children.items()}, frozenset(ends), len(dsts)


def make_hop_mc(net: PacketNetwork, inv_bw: Any = None) -> Callable[[Packet], None]:
    """Build the multicast hop handler of ``net``: copy a packet onto its tree's children.

    Both buffer modes use the infinite-buffer port model for copies (FIFO ports with a known
    next free time); every copy that enters a destination is delivered at its arrival.
    ``inv_bw`` (port -> seconds per wire byte of the tree's first link) replaces the ports'
    own for a tree whose links have different headers (:mod:`netsim.core.engine.packetise`).
    """
    busy, busy_time = net._busy, net._busy_time
    inv_bw = net._inv_bw if inv_bw is None else inv_bw
    delay, lat, deliver, cut_through = net._delay, net._lat, net._deliver, net.cut_through
    env = net.env
    queue, eid = event_queue(env), event_counter(env)  # bound once (simpy_adapter)

    def hop_mc(pkt: Packet) -> None:
        tree, ends, _ = pkt.tree
        port = pkt.prev
        if port != -1 and port in ends:
            deliver(pkt)
        kids = tree.get(port, ())
        if not kids:
            return
        now = env._now
        net.in_flight += len(kids) - (0 if port != -1 and port in ends else 1)
        for child in kids:
            start = busy[child]
            if start < now:
                start = now
            end = start + pkt.size * inv_bw[child]
            if end < pkt.tail:
                end = pkt.tail
            busy[child] = end
            busy_time[child] += end - start
            net.packet_hops += 1
            cp = Packet(pkt.msg, pkt.size, pkt.payload, None, None, pkt.cbl)
            cp.tree = pkt.tree
            cp.prev = child
            d = delay[child] if tree.get(child) else lat[child]
            cp.tail = end + d
            t = start + d if cut_through and tree.get(child) else end + d
            heappush(queue, (t, NORMAL, next(eid), cp))

    return hop_mc
