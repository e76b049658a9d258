"""Large collectives: coarse segments keep a 1 GiB all-reduce on 1,024 chips at about a minute.

The packet engine simulates a message of ``n`` bytes as ``ceil(n / segment)`` packets with
``segment = max(mtu, ceil(n / max_segments))`` (see :mod:`netsim.core.engine.network`). This script

1. times the same ring all-reduce fine-grained (``max_segments=None``: every real MTU packet)
   and coarse (``max_segments=4``) on an 8x8 torus, 64 MiB per rank, and prints the relative
   difference of the simulated times (the goal: within 2% on bandwidth-bound
   cases), and the wall time of each, next to the flow-level model (:mod:`netsim.core.flow`);
2. runs a 1 GiB ring all-reduce on a 32x32 torus (1,024 chips, ICI links) with one segment
   per message, printing wall time, peak memory, the simulated time and the bandwidth bound
   ``2(p-1)/p * n / B``.

Run: ``python benchmarks/large_collective.py [--quick]`` (``--quick`` skips part 2).
"""

from __future__ import annotations

import argparse
import resource
import time

from collectives import build, make_backend, run
from topologies.torus import torus


def ring_allreduce(
    k: int, size: int, max_segments: int | None, backend: str = "packet"
) -> tuple[float, float, int]:
    """(simulated s, wall s, packets) of a ring all-reduce of ``size`` bytes per rank."""
    g = torus((k, k))
    t0 = time.perf_counter()
    s = build("allreduce", "ring", ranks=range(k * k), count=size // 4, itemsize=4)
    if backend == "packet":
        be = make_backend(g, "packet", max_segments=max_segments)
    else:
        be = make_backend(g, backend)
    r = run(be, s)
    return r.time_s, time.perf_counter() - t0, be.stats()["packets"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the 1,024-chip run")
    args = ap.parse_args()

    fine = ring_allreduce(8, 64 << 20, None)
    coarse = ring_allreduce(8, 64 << 20, 4)
    diff = abs(coarse[0] - fine[0]) / fine[0]
    print(f"8x8 torus, 64MiB ring all-reduce, fine  : {fine[0] * 1e3:.4f} ms simulated, "
          f"{fine[2]:>9,} packets, {fine[1]:6.1f} s wall")  # fmt: skip
    print(f"8x8 torus, 64MiB ring all-reduce, coarse: {coarse[0] * 1e3:.4f} ms simulated, "
          f"{coarse[2]:>9,} packets, {coarse[1]:6.1f} s wall")  # fmt: skip
    print(f"coarse vs fine                          : {diff:.2%} (goal <= 2%)")
    flow = ring_allreduce(8, 64 << 20, None, "flow")
    print(f"8x8 torus, 64MiB ring all-reduce, flows : {flow[0] * 1e3:.4f} ms simulated, "
          f"{flow[2]:>9,} messages, {flow[1]:6.1f} s wall (max-min flow model)")  # fmt: skip
    if args.quick:
        return
    p, n = 32 * 32, 1 << 30
    t, wall, packets = ring_allreduce(32, n, 1)
    bw = torus((4, 4)).edges[0, 1]["bandwidth"]  # one ICI link (radix 2 would aggregate two)
    bound = 2 * (p - 1) / p * n / bw
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"32x32 torus, 1GiB ring all-reduce       : {t * 1e3:.3f} ms simulated "
          f"(bandwidth bound {bound * 1e3:.3f} ms), {packets:,} packets, "
          f"{wall:.0f} s wall, peak RSS {rss:.2f} GiB (goal: about a minute)")  # fmt: skip


if __name__ == "__main__":
    main()
