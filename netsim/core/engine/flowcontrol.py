"""Finite buffers with credit-based flow control (``PacketNetwork(buffer=N)``).

Every input port holds ``N`` bytes per virtual channel. An output port sends the packet at
the head of one of its per-VC queues (deques, served round-robin) only if the input buffer
at the far end has credits for it, as NVLink and InfiniBand do (lossless). Credits return
upstream one link latency after a packet's tail leaves the buffer it occupied. A port that
is busy or out of credits is retried ("kicked") when it frees up or credits arrive. Packets
are delivered by an event at their arrival, which frees their last buffer.

The port timing (bandwidth, latency, cut-through or store-and-forward) is that of the
infinite-buffer model in :mod:`netsim.core.engine.network`, whose state this model shares.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from netsim.core.engine.packets import Call, Packet
from netsim.core.engine.simpy_adapter import schedule_at

if TYPE_CHECKING:
    from netsim.core.engine.network import PacketNetwork

__all__ = ["CreditFlowControl"]


class CreditFlowControl:
    """Credits and per-VC output queues of every port of ``net``, ``buffer`` bytes per VC."""

    def __init__(self, net: PacketNetwork, buffer: int) -> None:
        n, nvcs = len(net.ports), net.nvcs
        self.net = net
        self.credits = [[buffer] * nvcs for _ in range(n)]
        self.vcq: list[list[deque[Packet]]] = [[deque() for _ in range(nvcs)] for _ in range(n)]
        self.rr = [0] * n  # the VC each port serves first next time
        self.kick_at = [-1.0] * n  # when a retry of the port is scheduled (-1: none)

    def hop(self, pkt: Packet) -> None:
        """The packet has reached its next node: deliver it, or queue it at its next port."""
        i = pkt.hop
        if i == len(pkt.path):
            self._free(pkt, self.net.env._now)
            self.net._deliver(pkt)
            return
        port = pkt.path[i]
        self.vcq[port][pkt.vcs[i]].append(pkt)
        self._try_send(port)

    def queued_bytes(self, port: int) -> int:
        """Wire bytes waiting in the output queues of ``port``."""
        return sum(p.size for q in self.vcq[port] for p in q)

    def blocked(self) -> list[str]:
        """The links whose head packet waits for credits, as ``"u->v (vc k)"``."""
        src, dst = self.net.ports.src, self.net.ports.dst
        return [
            f"{src[p]}->{dst[p]} (vc {vc})"
            for p, queues in enumerate(self.vcq)
            for vc, q in enumerate(queues)
            if q and q[0].size > self.credits[p][vc]
        ]

    def _schedule(self, t: float, event: Call | Packet) -> None:
        schedule_at(self.net.env, t, event)

    def _free(self, pkt: Packet, t: float) -> None:
        """The packet leaves the input buffer it occupies at ``t``: credits go back upstream
        one link latency later."""
        prev = pkt.prev
        if prev >= 0:
            arg = (prev, pkt.vcs[pkt.hop - 1], pkt.size)
            self._schedule(t + self.net._wire[prev], Call(self._credit, arg))

    def _credit(self, arg: tuple[int, int, int]) -> None:
        port, vc, size = arg
        self.credits[port][vc] += size
        self._try_send(port)

    def _kick(self, port: int) -> None:
        self.kick_at[port] = -1.0
        self._try_send(port)

    def _try_send(self, port: int) -> None:
        net = self.net
        now = net.env._now
        busy = net._busy[port]
        if busy > now:
            if self.kick_at[port] != busy:
                self.kick_at[port] = busy
                self._schedule(busy, Call(self._kick, port))
            return
        queues = self.vcq[port]
        credits = self.credits[port]
        nv = len(queues)
        r = self.rr[port]
        for k in range(nv):
            vc = (r + k) % nv
            q = queues[vc]
            if q and q[0].size <= credits[vc]:
                break
        else:
            return
        pkt = q.popleft()
        self.rr[port] = (vc + 1) % nv
        credits[vc] -= pkt.size
        end = now + pkt.size * net._inv_bw[port]
        if end < pkt.tail:
            end = pkt.tail
        net._busy[port] = end
        net._busy_time[port] += end - now
        net.packet_hops += 1
        self._free(pkt, end)  # its tail leaves this node's input buffer at `end`
        pkt.prev = port
        pkt.hop = i = pkt.hop + 1
        if i == len(pkt.path):
            pkt.tail = t = end + net._lat[port]
        else:
            d = net._delay[port]
            pkt.tail = end + d
            t = now + d if net.cut_through else end + d
        self._schedule(t, pkt)
        if any(queues):
            self.kick_at[port] = end
            self._schedule(end, Call(self._kick, port))
