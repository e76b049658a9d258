"""Sample periods of an open-loop traffic run: when it has warmed up, when its latency
estimate has converged and when it is unstable (saturated), as BookSim decides them.

Method
------
Simulated time is cut into sample periods of equal length. Every delivered packet is
counted in the period of its arrival (its latency, from generation to the last byte,
summed there), every generated packet in the period of its generation. After each
period (Jiang et al., *A detailed and flexible cycle-accurate network-on-chip simulator*,
ISPASS 2013, sec. 3; BookSim's ``TrafficManager``):

- **warm-up** ends when the mean latency and the accepted throughput of the period each
  differ from the previous period's by less than ``tolerance`` (relative), after at least
  ``MIN_PERIODS`` periods;
- **measurement** then accumulates the arrivals of every period; it ends when the estimate
  (the mean latency of all measured arrivals) has converged: the 95% confidence interval
  of the mean of the per-period mean latencies (batch means, Student's t) is within
  ``tolerance`` of the estimate, after at least ``MIN_PERIODS`` measured periods;
- the run is **unstable** (saturated) when the packets generated but not delivered (the
  backlog) grew in each of the last ``WINDOW`` periods, by more than ``tolerance`` of the
  packets generated over them in all, while the period latency rose (queues grow without
  bound: offered load exceeds what the network accepts), at once if a period (after the
  first, which fills the network) delivered less than half the packets it generated while
  the backlog grew by a quarter of them, or when the backlog exceeds
  ``BACKLOG_PERIODS`` periods' worth of packets (a memory bound);
- a run that neither converges nor saturates stops after ``MAX_WARMUP`` warm-up and
  ``MAX_MEASURE`` measurement periods, and says it did not converge.

So time and memory are bounded by ``MAX_WARMUP + MAX_MEASURE`` periods' packets.
"""

from __future__ import annotations

import itertools
import math
from array import array

__all__ = [
    "BACKLOG_PERIODS",
    "MAX_MEASURE",
    "MAX_WARMUP",
    "MIN_PERIODS",
    "WINDOW",
    "SamplePeriods",
    "Stop",
    "half_width",
]

MIN_PERIODS = 3
WINDOW = 3
MAX_WARMUP = 20
MAX_MEASURE = 30
BACKLOG_PERIODS = 25


# Student's t, 97.5% quantile, by degrees of freedom (two-sided 95% interval).
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
         9: 2.262}  # fmt: skip


def half_width(means: list[float]) -> float:
    """Half-width of the 95% confidence interval of the mean of ``means`` (batch means:
    one per sample period, taken as independent), ``inf`` if fewer than two or any nan.

    Parameters
    ----------
    means : list of float
        Per-period mean latencies.

    Returns
    -------
    float
        ``t(m - 1) * s / sqrt(m)`` with ``s`` the sample standard deviation.
    """
    m = len(means)
    if m < 2 or any(math.isnan(x) for x in means):
        return math.inf
    mu = sum(means) / m
    s = math.sqrt(sum((x - mu) ** 2 for x in means) / (m - 1))
    t = _T975.get(m - 1, 1.96 + 2.4 / (m - 1))  # the asymptote within 1% for m > 10
    return t * s / math.sqrt(m)


class Stop(Exception):
    """Raised at a period boundary to end the run (caught by the traffic runner)."""


class SamplePeriods:
    """Per-period statistics and the phase decisions of the module docstring.

    Parameters
    ----------
    period : float
        Sample period length in seconds.
    tolerance : float
        Relative tolerance of the warm-up and convergence tests and of the backlog growth.

    Attributes
    ----------
    phase : str
        ``"warmup"``, ``"measure"`` or ``"done"``.
    saturated, converged : bool
        How the run ended.
    measure_from : int or None
        First measured period.
    """

    def __init__(self, period: float, tolerance: float) -> None:
        self.period = period
        self.tolerance = tolerance
        self.count: list[int] = []  # arrivals per period
        self.latsum: list[float] = []  # their latency sum
        self.samples: dict[int, array] = {}  # latencies per period (kept ones only)
        self.generated: list[int] = []  # packets generated per period
        self.backlog: list[int] = []  # generated - delivered at each period's end
        self.estimates: list[float] = []  # running mean latency after each measured period
        self.phase = "warmup"
        self.measure_from: int | None = None
        self.saturated = False
        self.converged = False
        self._inv = 1.0 / period

    def arrival(self, t_sent: float, t_arrived: float) -> None:
        """Count one delivered packet (may be reported before ``t_arrived`` is reached)."""
        k = int(t_arrived * self._inv)
        count = self.count
        while len(count) <= k:
            count.append(0)
            self.latsum.append(0.0)
        count[k] += 1
        lat = t_arrived - t_sent
        self.latsum[k] += lat
        s = self.samples.get(k)
        if s is None:
            s = self.samples[k] = array("d")
        s.append(lat)

    def mean(self, k: int) -> float:
        """Mean latency of the arrivals of period ``k`` (nan if none)."""
        n = self.count[k] if k < len(self.count) else 0
        return self.latsum[k] / n if n else math.nan

    def close(self, k: int, generated: int, delivered: int) -> None:
        """Period ``k`` has ended with ``generated`` and ``delivered`` packets so far;
        raise :class:`Stop` when the run should end."""
        self.generated.append(generated - sum(self.generated))
        self.backlog.append(generated - delivered)
        while len(self.count) <= k:
            self.count.append(0)
            self.latsum.append(0.0)
        if self.unstable(k):
            self.saturated = True
            self._stop()
        if self.phase == "warmup":
            self._warmup(k)
        else:
            self._measure(k)

    def _stop(self) -> None:
        self.phase = "done"
        raise Stop

    def _warmup(self, k: int) -> None:
        for j in [j for j in self.samples if j < k - WINDOW]:
            del self.samples[j]  # warm-up latencies are not kept beyond the window
        if (
            k + 1 >= MIN_PERIODS
            and self._close_to(self.mean(k), self.mean(k - 1))
            and (self._close_to(self.count[k], self.count[k - 1]))
        ) or k + 1 >= MAX_WARMUP:
            self.phase, self.measure_from = "measure", k + 1
        elif self.generated[-1] == 0 and self.backlog[-1] == 0:
            self._stop()  # nothing is sent: the caller reports too few packets

    def _measure(self, k: int) -> None:
        assert self.measure_from is not None
        if k < self.measure_from:
            return
        first = self.measure_from
        n = sum(self.count[first : k + 1])
        est = sum(self.latsum[first : k + 1]) / n if n else math.nan
        self.estimates.append(est)
        m = len(self.estimates)
        if m >= MIN_PERIODS and half_width([self.mean(j) for j in range(first, k + 1)]) <= (
            self.tolerance * est
        ):
            self.converged = True
            self._stop()
        if m >= MAX_MEASURE:
            self._stop()

    def _close_to(self, a: float, b: float) -> bool:
        return abs(a - b) <= self.tolerance * abs(a)  # False if either is nan

    def unstable(self, k: int) -> bool:
        """Whether the backlog grows without bound (see the module docstring)."""
        b = self.backlog
        per_period = max(1.0, sum(self.generated) / len(self.generated))
        if b[-1] > BACKLOG_PERIODS * per_period:
            return True
        if len(b) < 2:
            return False  # the first period fills the network
        made = self.generated[-1]
        if self.count[k] < 0.5 * made and b[-1] - b[-2] > 0.25 * made:
            return True  # far past saturation: less than half the offered load delivered
        if len(b) <= WINDOW + 1:
            return False
        w = b[-WINDOW - 1 :]
        grows = all(y > x for x, y in itertools.pairwise(w))
        made = sum(self.generated[-WINDOW:])
        late, early = self.mean(k), self.mean(k - WINDOW)
        rising = math.isnan(late) or not late < early
        return grows and w[-1] - w[0] > self.tolerance * made and rising

    def span(self, last: int) -> tuple[int, int]:
        """``(first, last)``: the measured periods up to ``last`` or, if measurement has
        not started by then, the last ``WINDOW`` periods up to ``last``."""
        first = self.measure_from
        if first is None or first > last:
            first = max(0, last - WINDOW + 1)
        return first, last

    def kept(self, last: int) -> array:
        """Latencies of the arrivals in :meth:`span` ``(last)``."""
        first, _ = self.span(last)
        out = array("d")
        for j in range(first, last + 1):
            out.extend(self.samples.get(j, ()))
        return out
