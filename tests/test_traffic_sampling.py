"""Traffic runs measured by sample periods (netsim.core.sampling, netsim.core.openloop): convergence
below saturation against queueing closed forms, saturation detected and bounded above it."""

from __future__ import annotations

import math

import pytest
from test_engine import chain, md1_latency

from netsim.core.openloop import DRAIN_PERIODS, PERIOD_PACKETS
from netsim.core.sampling import (
    BACKLOG_PERIODS,
    MAX_MEASURE,
    MAX_WARMUP,
    MIN_PERIODS,
    SamplePeriods,
    Stop,
    half_width,
)
from netsim.core.traffic import run_traffic
from topologies.torus import torus


@pytest.mark.parametrize("rho", [0.3, 0.6])
def test_converged_run_meets_md1_within_its_tolerance(rho):
    """Poisson packets on one link (M/D/1, Kleinrock 1975, eq. 5.73): the default run
    measures until the 95% interval of its mean latency is within 5%; the closed form is
    within that of the estimate, and every offered byte is accepted."""
    bw, lat, size = 1e9, 50e-9, 1000
    G = chain([bw], [lat])
    r = run_traffic(G, "shift", rho, injection="poisson", size=size, mtu=size, header=0, seed=3)
    assert r.converged is True and r.saturated is False
    assert r.latency_mean_s == pytest.approx(md1_latency(rho, size / bw, lat), rel=0.05)
    assert r.accepted_load == pytest.approx(rho, rel=0.05)
    assert r.packets >= MIN_PERIODS * PERIOD_PACKETS * 0.9  # at least the minimum measured


def _torus_4x4():
    # Channel-load bound of uniform DOR traffic with injection 4b (see
    # test_routing_families.test_torus_uniform_saturates_at_the_channel_load_bound).
    k, b = 4, 1e9
    G = torus((k, k), bandwidth=b, latency=1e-7, injection_bandwidth=4 * b)
    return G, (k * k - 1) / (k * k) * 8 / (k + 2) / 4


def test_past_saturation_is_reported_with_the_accepted_throughput():
    G, bound = _torus_4x4()
    below = run_traffic(G, "uniform", 0.6 * bound, mtu=256, header=0, seed=1)
    assert below.saturated is False and below.converged is True
    assert below.accepted_load == pytest.approx(0.6 * bound, rel=0.05)
    above = run_traffic(G, "uniform", 1.3 * bound, mtu=256, header=0, seed=1)
    assert above.saturated is True and above.converged is False
    # What the network sustains, not what is offered (infinite buffers: flows that use no
    # + channel still get through, so accepted rises slowly above the bound).
    assert bound * 0.9 <= above.accepted_load <= 0.9 * 1.3 * bound
    # Bounded: it stopped within a few periods, its backlog under the memory bound.
    assert above.extra["periods"] < MAX_WARMUP
    assert above.extra["backlog_packets"] <= BACKLOG_PERIODS * PERIOD_PACKETS


def test_finite_buffers_past_saturation_stop_in_both_measurements():
    # The case that used to run without end: credit flow control, load 0.9.
    spec = "torus:dims=4x4"
    r = run_traffic(spec, "uniform", 0.9, buffer=4096, seed=2)
    assert r.saturated is True and 0 < r.accepted_load < 0.9
    fixed = run_traffic(spec, "uniform", 0.9, buffer=4096, packets=2000, seed=2)
    assert fixed.saturated is True
    assert fixed.extra["periods"] <= 2 + 2 * 4000 // PERIOD_PACKETS + DRAIN_PERIODS + 2


def _feed(mon, periods, *, made, delivered_per_period, latency):
    """Close ``periods`` periods in which ``made`` packets are generated and
    ``delivered_per_period(k)`` arrive with latency ``latency(k)``; return the period that
    stopped the run (or None)."""
    gen = dlv = 0
    for k in range(periods):
        n = delivered_per_period(k)
        for _ in range(n):
            t = (k + 0.5) * mon.period
            mon.arrival(t - latency(k), t)
        gen, dlv = gen + made, dlv + n
        try:
            mon.close(k, gen, dlv)
        except Stop:
            return k
    return None


def test_steady_periods_converge_after_the_minimum():
    mon = SamplePeriods(1e-6, 0.05)
    k = _feed(mon, 50, made=100, delivered_per_period=lambda k: 100, latency=lambda k: 1e-7)
    assert mon.converged and not mon.saturated
    assert k == 2 * MIN_PERIODS - 1  # MIN_PERIODS warm-up, then MIN_PERIODS measured


def test_growing_backlog_is_saturation_and_a_never_settling_run_is_capped():
    mon = SamplePeriods(1e-6, 0.05)
    k = _feed(mon, 50, made=100, delivered_per_period=lambda k: 80, latency=lambda k: k * 1e-7)
    assert mon.saturated and k < MAX_WARMUP
    # Latency alternating between two values never warms up (5% tolerance) but is stable.
    mon = SamplePeriods(1e-6, 0.05)
    alt = lambda k: (1 + k % 2) * 1e-7  # noqa: E731
    k = _feed(mon, 200, made=100, delivered_per_period=lambda k: 100, latency=alt)
    assert not mon.saturated
    assert k is not None and k < MAX_WARMUP + MAX_MEASURE


def test_half_width_is_students_t_interval():
    # 3 batches 1, 2, 3: s = 1, t(2) = 4.303 -> 4.303 / sqrt(3).
    assert half_width([1.0, 2.0, 3.0]) == pytest.approx(4.303 / math.sqrt(3))
    assert half_width([1.0]) == math.inf
