"""A node's network interface: per-port injection queues sharing one injection bandwidth.

A node's interface keeps one injection queue per output port (:class:`Injector`). Messages
that leave by the same port are injected one after the other; queues of different ports
inject concurrently, together capped at the node's ``injection_bandwidth`` (the sharing
rule is in the docstring of :mod:`netsim.core.engine.network`). :func:`make_emit` builds the
handler that starts a queue's next packet; :func:`default_injection` is the injection
bandwidth of a node without the attribute.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappush
from typing import TYPE_CHECKING

from netsim.core.engine.packets import Injector, Packet
from netsim.core.engine.simpy_adapter import event_counter, event_queue

if TYPE_CHECKING:
    from netsim.core.engine.network import PacketNetwork
    from netsim.core.engine.routing import PortTable

__all__ = ["default_injection", "make_emit"]


def default_injection(ports: PortTable, node: int, kind: str | None) -> float:
    """Injection bandwidth of a node without an ``injection_bandwidth`` attribute.

    A switch's ports run in parallel, so a switch that originates messages (the results of
    an in-network reduction) may feed all of them at once: the sum of its output ports. Any
    other node: its fastest output port (the contract's default for a chip's interface).
    """
    bws = [ports.bandwidth[p] for p in ports.out[node]]
    if not bws:
        return 1.0
    return float(sum(bws) if kind == "switch" else max(bws))


def make_emit(net: PacketNetwork) -> Callable[[Injector], None]:
    """Build the handler that starts the next packet of a port's injection queue.

    The packet is pushed at the port's share of the interface (see the module
    docstring) and moved onto its first link at once (no event of its own for that).
    """
    env, hop, hop_mc = net.env, net._hop, net._hop_mc
    queue, eid = event_queue(env), event_counter(env)  # bound once (simpy_adapter)

    def emit(inj: Injector) -> None:
        now = env._now
        q = inj.queue
        nic = inj.nic
        if not q:  # the last packet of a burst has been pushed: stop sharing
            nic.active -= 1
            nic.active_bw = nic.active_bw - inj.bw if nic.active else 0.0
            return
        msg = q[0]
        k = msg.k
        left = msg.bleft
        seg = msg.seg
        payload = seg if left > seg else left
        size = msg.wleft // (msg.count - k)
        msg.bleft = left - payload
        msg.wleft -= size
        k += 1
        msg.k = k
        inj.pending -= size
        a = nic.active_bw
        if nic.linger_until > now:
            a += nic.linger_bw
        x = a * nic.inv_bw  # > 1: the ports together would outrun the interface
        tail = now + size * inj.inv_bw * (x if x > 1.0 else 1.0)
        inj.until = tail
        if k == msg.count:
            q.popleft()
        if q or nic.active > 1:
            inj.callbacks = inj.cbl
            heappush(queue, (tail, 1, next(eid), inj))
        else:  # the only active port goes idle: let it linger instead of an event
            nic.active = 0
            nic.active_bw = 0.0
            nic.linger_bw = inj.bw
            nic.linger_until = tail
        pkt = Packet(msg, size, payload, msg.path, msg.vcs, msg.cbl)
        pkt.tail = tail
        tree = msg.tree
        if tree is None:
            hop(pkt)
        else:
            pkt.tree = tree
            hop_mc(pkt)

    return emit
