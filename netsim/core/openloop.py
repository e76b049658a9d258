"""Open-loop sources on the packet engine and the two ways a traffic run is measured.

Every chip injects packets at an offered load (a fraction of its injection bandwidth), with
Bernoulli slots or Poisson arrivals, to destinations drawn from a pattern; nothing reacts
to deliveries. Two measurements (:func:`netsim.core.traffic.run_traffic` picks one):

- :meth:`OpenLoop.until_converged` (the default): sample periods of ``PERIOD_PACKETS``
  generated packets, warm-up and measurement until the mean latency converges, or a stop
  when the backlog grows without bound (saturated), as :mod:`netsim.core.sampling` describes.
  Latency and accepted load are those of the arrivals in the measured periods.
- :meth:`OpenLoop.fixed_count`: after ``warmup`` packets, ``packets`` labelled packets are
  generated and drained (sources keep injecting until the last one arrives), as in BookSim's
  three phases. Accepted load is the wire bytes of all packets delivered between the first
  and the last arrival of a labelled packet. If the labelled packets have not all arrived
  ``DRAIN_PERIODS`` sample periods after the last was generated, or the backlog passes the
  bound of :mod:`netsim.core.sampling`, the run stops and reports saturated.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
from array import array
from collections.abc import Callable
from typing import Any

import numpy as np

from netsim.core.engine import PacketNetwork
from netsim.core.errors import ConfigError
from netsim.core.sampling import BACKLOG_PERIODS, SamplePeriods, Stop

__all__ = [
    "DRAIN_PERIODS",
    "LATENCY_PERIODS",
    "PERIOD_PACKETS",
    "TOLERANCE",
    "OpenLoop",
    "zero_load_latency",
]

#: Packets generated (by all chips together) per sample period.
PERIOD_PACKETS = 2000
#: A sample period lasts at least this many zero-load packet latencies.
LATENCY_PERIODS = 5
#: Sample periods a fixed-count run waits, after its last labelled packet is generated,
#: for the labelled packets to arrive before it reports saturated.
DRAIN_PERIODS = 20
#: Default relative tolerance of the sample-period tests.
TOLERANCE = 0.05


class OpenLoop:
    """Open-loop sources on ``net`` (see the module docstring).

    Parameters
    ----------
    net : PacketNetwork
        The network (fresh: nothing sent yet).
    dest : callable
        ``dest(src) -> dst``; a source mapped to itself sends nothing that draw.
    rng : random.Random
        Draws arrival times (and whatever ``dest`` draws).
    load : float
        Offered load per chip, a fraction of its injection bandwidth.
    nbytes : int
        Payload bytes per packet.
    injection : str
        ``"bernoulli"`` or ``"poisson"``.
    tolerance : float
        Relative tolerance of :class:`netsim.core.sampling.SamplePeriods`.
    """

    def __init__(
        self,
        net: PacketNetwork,
        dest: Callable[[int], int],
        rng: random.Random,
        load: float,
        nbytes: int,
        injection: str,
        tolerance: float,
    ) -> None:
        G = net.graph
        self.net, self.dest, self.rng, self.nbytes = net, dest, rng, nbytes
        self.tolerance = tolerance
        self.chips = [v for v, k in G.nodes(data="kind") if k == "chip"]
        self.wire = wire = net.wire_bytes(nbytes)
        inj = {c: float(G.nodes[c]["injection_bandwidth"]) for c in self.chips}
        self.capacity = sum(inj.values())  # bytes/s all chips can inject
        # One period: PERIOD_PACKETS packets at the total generation rate, and at least
        # LATENCY_PERIODS zero-load latencies (so that filling the network is no trend).
        self.period = max(
            PERIOD_PACKETS * wire / (load * self.capacity),
            LATENCY_PERIODS * zero_load_latency(net, self.chips, wire),
        )
        self.periods = 0  # sample periods simulated
        self.backlog = 0  # packets generated and not delivered when the run ended
        # Set by _start: packets generated so far, stop injecting after t, nothing is sent.
        self.count: Callable[[], int] = lambda: 0
        self.stop: Callable[[float], None] = lambda t: None
        self.stopped: Callable[[], bool] = lambda: False
        self.next_gap = _gaps(rng, injection, load, {c: wire / b for c, b in inj.items()})

    # ------------------------------------------------------------------ sources
    def _start(self, labelled: range, on_labelled, on_other) -> None:
        """Arm every source; packet number ``k`` in ``labelled`` reports to ``on_labelled``."""
        net, env, dest, nbytes = self.net, self.net.env, self.dest, self.nbytes
        next_gap = self.next_gap
        send = net.launch
        lo, hi = labelled.start, labelled.stop
        # A pattern that sends (almost) nothing is stopped after this many draws.
        max_draws = 100 * max(hi, PERIOD_PACKETS) + 1000
        # Run state in closure cells (cheaper than attributes on this per-packet path).
        draws = generated = 0
        stop_at = math.inf  # sources stop injecting after this time

        def generate(c: int) -> None:
            nonlocal draws, generated, stop_at
            if env._now > stop_at:
                return
            draws += 1
            d = dest(c)
            if d != c:
                k = generated
                generated = k + 1
                send(c, d, nbytes, c, None, None, on_labelled if lo <= k < hi else on_other)
            elif draws > max_draws:
                stop_at = -math.inf
                return
            timers[c](env._now + next_gap(c))

        def count() -> int:
            return generated

        def stop(t: float) -> None:
            nonlocal stop_at
            stop_at = t

        def stopped() -> bool:
            return stop_at == -math.inf

        self.count, self.stop, self.stopped = count, stop, stopped
        timers = {c: net.timer(generate, c) for c in self.chips}
        for c in self.chips:
            timers[c](next_gap(c) * self.rng.random())

    def _every_period(self, fn: Callable[[int], None]) -> None:
        """Call ``fn(k)`` at the end of every sample period ``k`` until it returns or raises
        :class:`netsim.core.sampling.Stop`."""
        net, period = self.net, self.period

        def tick(k: int) -> None:
            if fn(k) is not False:
                net.call_at((k + 2) * period, tick, k + 1)

        net.call_at(period, tick, 0)

    def _run(self) -> None:
        with contextlib.suppress(Stop):  # abandoned mid-run: packets in flight stay there
            self.net.run()

    # ------------------------------------------------------------------ measurements
    def until_converged(self) -> dict[str, Any]:
        """Sample periods until convergence or saturation; the figures of the run."""
        mon = SamplePeriods(self.period, self.tolerance)
        self._start(range(0), mon.arrival, mon.arrival)
        last = [-1]

        def boundary(k: int) -> None:
            last[0] = k
            mon.close(k, self.count(), sum(mon.count))

        self._every_period(boundary)
        self._run()
        self.periods = last[0] + 1
        self.backlog = mon.backlog[-1] if mon.backlog else 0
        first, k = mon.span(last[0])
        lat = np.frombuffer(mon.kept(k), dtype=float)
        if self.count() == 0:
            raise ConfigError(
                "pattern: generated too few packets to measure (0); every source maps to itself?"
            )
        arrived = sum(mon.count[first : k + 1])
        span = (k - first + 1) * self.period
        warm = mon.measure_from if mon.measure_from is not None else k + 1
        how = (
            f"sample periods of {self.period:.4g} s: {warm} warm-up, {k + 1 - min(warm, k + 1)} "
            f"measured, tolerance {self.tolerance:g}"
        )
        return _figures(lat, arrived * self.wire / (self.capacity * span), mon, how)

    def fixed_count(self, warmup: int, packets: int) -> dict[str, Any]:
        """``warmup`` packets, then ``packets`` labelled ones drained; the figures."""
        arrivals = array("d")
        keep = arrivals.append
        latencies: list[float] = []
        span = [math.inf, -math.inf]

        def labelled(t_sent: float, t_arrived: float) -> None:
            keep(t_arrived)
            latencies.append(t_arrived - t_sent)
            span[0] = min(span[0], t_arrived)
            span[1] = max(span[1], t_arrived)
            if len(latencies) == packets:
                self.stop(span[1])

        def other(t_sent: float, t_arrived: float) -> None:
            keep(t_arrived)

        self._start(range(warmup, warmup + packets), labelled, other)
        state = {"saturated": False, "generated_by": None}

        def boundary(k: int) -> bool | None:
            if len(latencies) == packets or self.stopped():
                return False  # drained (or nothing is sent): the run ends by itself
            if state["generated_by"] is None and self.count() >= warmup + packets:
                state["generated_by"] = k
            backlog = self.count() - len(arrivals)
            late = state["generated_by"] is not None and k - state["generated_by"] > DRAIN_PERIODS
            if late or backlog > BACKLOG_PERIODS * PERIOD_PACKETS:
                state["saturated"] = True
                raise Stop
            return None

        self._every_period(boundary)
        self._run()
        self.periods = math.ceil(self.net.env.now / self.period)
        self.backlog = self.count() - len(arrivals)
        if not latencies or (len(latencies) < packets and not state["saturated"]):
            raise ConfigError(
                f"pattern: generated too few packets to measure ({len(latencies)} of "
                f"{packets}); every source maps to itself?"
            )
        a0, a1 = span
        arrived = np.frombuffer(arrivals, dtype=float)
        n = int(np.count_nonzero((arrived >= a0) & (arrived <= a1)))
        window = a1 - a0
        accepted = n * self.wire / (self.capacity * window) if window > 0 else math.nan
        how = f"fixed count: {packets} labelled packets after {warmup} warm-up, drained"
        fig = _figures(np.asarray(latencies), accepted, None, how)
        fig["saturated"] = state["saturated"]
        return fig


def zero_load_latency(net: PacketNetwork, chips: list[int], wire: int, pairs: int = 64) -> float:
    """Largest store-and-forward latency of a ``wire``-byte packet alone on the network over
    up to ``pairs`` source-destination pairs spread over ``chips`` (an upper estimate).

    Parameters
    ----------
    net : PacketNetwork
        The network (its routes and the graph's link and node latencies).
    chips : list of int
        The chips.
    wire : int
        Bytes of one packet on the wire.
    pairs : int
        Pairs sampled (deterministically, spread over the chips).

    Returns
    -------
    float
        Seconds.
    """
    G, n, worst = net.graph, len(chips), 0.0
    for i in range(min(n, pairs)):
        src = chips[i * n // min(n, pairs)]
        dst = chips[(i * n // min(n, pairs) + n // 2 + 1) % n]
        if src == dst:
            continue
        nodes = net.route(src, dst)
        t = sum(float(G.nodes[v].get("latency", 0.0)) for v in nodes[1:-1])
        for u, v in itertools.pairwise(nodes):
            e = G.edges[u, v]
            t += float(e["latency"]) + wire / float(e["bandwidth"])
        worst = max(worst, t)
    return worst


def _gaps(rng: random.Random, injection: str, load: float, slot: dict[int, float]):
    """``next_gap(chip)``: seconds to the chip's next packet at ``load``."""
    if injection == "poisson":
        mean = {c: s / load for c, s in slot.items()}

        def poisson(c: int) -> float:
            return rng.expovariate(1.0 / mean[c])

        return poisson
    # Slots until the next packet: geometric on {1, 2, ...} with success probability
    # `load`, drawn by inversion (P(K > m) = (1 - load)**m) with one uniform.
    log_miss = math.log1p(-load) if load < 1.0 else -math.inf
    log = math.log

    def bernoulli(c: int) -> float:
        return (1 + int(log(1.0 - rng.random()) / log_miss)) * slot[c]

    return bernoulli


def _figures(
    lat: np.ndarray, accepted: float, mon: SamplePeriods | None, how: str
) -> dict[str, Any]:
    """The latency and load fields of a :class:`netsim.core.traffic.TrafficResult`."""
    some = lat.size > 0
    return {
        "accepted_load": float(accepted),
        "latency_mean_s": float(lat.mean()) if some else math.nan,
        "latency_p50_s": float(np.percentile(lat, 50)) if some else math.nan,
        "latency_p99_s": float(np.percentile(lat, 99)) if some else math.nan,
        "latency_max_s": float(lat.max()) if some else math.nan,
        "packets": int(lat.size),
        "saturated": mon.saturated if mon is not None else False,
        "converged": mon.converged if mon is not None else None,
        "measurement": how,
        "samples": lat,
    }
