"""Straggler delay models and the wait / substitute policies."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.core.errors import ConfigError
from workloads import stragglers as sg


@pytest.mark.parametrize(
    "text",
    [
        "",
        "slow",
        "chip",
        "chip:0.1",
        "chip:2:5us",
        "chip:-0.1:5us",
        "chip:0.1:-5us",
        "chip:0.1:5 parsecs",
        "exp",
        "exp:1us:2",
        "lognormal:0:1",
        "lognormal:1us:-1",
        "lognormal:1us:x",
        "link:0.5",
        "none:1",
        "exp:1us+bogus:2",
    ],
)
def test_parse_stragglers_rejects_bad_input(text):
    with pytest.raises(ConfigError, match="stragglers"):
        sg.parse_stragglers(text)


def test_parse_stragglers_grammar_and_units():
    spec = sg.parse_stragglers("chip:0.01:50us + exp:1.5us + lognormal:2ms:0.5 + link:0.1:200ns")
    kinds = [c.kind for c in spec.components]
    assert kinds == ["chip", "exp", "lognormal", "link"]
    chip, ex, ln, link = spec.components
    assert (chip.fraction, chip.delay) == (0.01, pytest.approx(50e-6))
    assert ex.delay == pytest.approx(1.5e-6)
    assert (ln.delay, ln.sigma) == (pytest.approx(2e-3), 0.5)
    assert (link.target, link.delay) == ("link", pytest.approx(200e-9))
    assert sg.parse_stragglers("none").components == ()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "waits",
        "wait:1us",
        "substitute",
        "substitute:x",
        "substitute:1us:ones",
        "substitute:1us:zeros:3",
        5,
    ],
)
def test_parse_policy_rejects_bad_input(text):
    with pytest.raises(ConfigError, match="straggler-policy"):
        sg.parse_policy(text)


def test_none_draws_zeros():
    np.testing.assert_array_equal(sg.draw_delays("none", 5, 3, 0), np.zeros((3, 5)))


def test_chip_fraction_is_a_fixed_seeded_set():
    d = sg.draw_delays("chip:0.25:50us", 8, 10, 1)
    slow = d > 0
    assert slow.sum(axis=1).tolist() == [2] * 10  # round(0.25 * 8) chips every step
    assert np.all(slow == slow[0])  # the same chips at every step
    np.testing.assert_allclose(d[slow], 50e-6)
    np.testing.assert_array_equal(d, sg.draw_delays("chip:0.25:50us", 8, 10, 1))
    assert not np.array_equal(slow[0], (sg.draw_delays("chip:0.25:50us", 8, 10, 2) > 0)[0])


def test_exponential_mean():
    d = sg.draw_delays("exp:5us", 100, 400, 3)  # 40 000 samples: sd of mean 0.5 %
    assert d.mean() == pytest.approx(5e-6, rel=0.03)
    assert d.min() >= 0


def test_lognormal_median_and_sigma():
    d = sg.draw_delays("lognormal:2us:0.5", 100, 400, 4)
    assert np.median(d) == pytest.approx(2e-6, rel=0.03)
    assert np.log(d).std() == pytest.approx(0.5, rel=0.03)


def test_targets_are_separate():
    spec = "link:0.5:1us+chip:0.5:2us"
    np.testing.assert_allclose(np.unique(sg.draw_delays(spec, 4, 2, 0)), [0.0, 2e-6])
    np.testing.assert_allclose(np.unique(sg.draw_delays(spec, 4, 2, 0, target="link")), [0.0, 1e-6])


def test_components_add():
    d = sg.draw_delays("chip:0.5:50us+exp:1us", 10, 50, 5)
    slow = d >= 50e-6
    assert np.all(slow.sum(axis=1) == 5)
    assert d[~slow].max() < 50e-6


def test_wait_is_max_arrival():
    t = np.array([[1.0, 3.0, 2.0], [5.0, 4.0, 4.5]])
    done, mask = sg.apply_policy(t, "wait")
    np.testing.assert_array_equal(done, [3.0, 5.0])
    assert not mask.any()
    assert sg.apply_policy(t[0], "wait")[0] == 3.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0, 1e-3), min_size=1, max_size=12),
    st.floats(0, 2e-4),
)
def test_substitute_never_waits_past_deadline(arrivals, deadline):
    t = np.array(arrivals)
    done, mask = sg.apply_policy(t, sg.Policy("substitute", deadline))
    assert done - t.min() <= deadline + 1e-18
    assert done <= t.max()  # never later than waiting
    np.testing.assert_array_equal(mask, t > t.min() + deadline)
    if not mask.any():
        assert done == t.max()  # nothing late: completes at the last arrival, no waiting


def test_substitute_without_stragglers_substitutes_nothing():
    rng = np.random.default_rng(0)
    base = 1e-3 + sg.draw_delays("exp:1us", 64, 200, rng)  # jitter only, well below deadline
    done, mask = sg.apply_policy(base, "substitute:100us")
    assert not mask.any()
    np.testing.assert_array_equal(done, base.max(axis=1))


def test_substitute_with_start_reference():
    t = np.array([10e-6, 12e-6, 40e-6])
    done, mask = sg.apply_policy(t, "substitute:20us", start=0.0)
    assert done == pytest.approx(20e-6)
    np.testing.assert_array_equal(mask, [False, False, True])


def test_substitute_reduce_numerics():
    rng = np.random.default_rng(1)
    prev = rng.normal(size=(8, 16))
    x = prev + 0.01 * rng.normal(size=(8, 16))  # consecutive tokens: slowly varying
    exact = x.sum(axis=0)
    none = np.zeros(8, dtype=bool)
    np.testing.assert_allclose(sg.substitute_reduce(x, None, none), exact)
    np.testing.assert_allclose(sg.substitute_reduce(x, prev, none, "previous"), exact)
    mask = np.zeros(8, dtype=bool)
    mask[[2, 5]] = True
    zeros = sg.substitute_reduce(x, None, mask)
    np.testing.assert_allclose(exact - zeros, x[mask].sum(axis=0))
    previous = sg.substitute_reduce(x, prev, mask, "previous")
    np.testing.assert_allclose(exact - previous, (x - prev)[mask].sum(axis=0))
    assert np.linalg.norm(exact - previous) < 0.1 * np.linalg.norm(exact - zeros)
    with pytest.raises(ConfigError, match="previous"):
        sg.substitute_reduce(x, None, mask, "previous")
    with pytest.raises(ConfigError, match="mask"):
        sg.substitute_reduce(x, None, mask[:3])


def test_report_percentiles_and_fractions():
    t = np.arange(1, 1001, dtype=float)
    mask = np.zeros((1000, 4), dtype=bool)
    mask[:10, 0] = True
    r = sg.straggler_report(t, mask)
    assert r["p50"] == pytest.approx(500.5)
    assert r["p99"] == pytest.approx(990.01)
    assert r["p99.9"] == pytest.approx(999.001)
    assert (r["mean"], r["max"], r["steps"]) == (500.5, 1000.0, 1000.0)
    assert r["substituted_fraction"] == pytest.approx(10 / 4000)
    assert r["steps_with_substitution"] == pytest.approx(0.01)


def test_end_to_end_tail_wait_vs_substitute():
    chips, steps, slow = 100, 500, 50e-6
    d = sg.draw_delays(f"chip:0.01:{slow * 1e6:g}us+exp:1us", chips, steps, 7)
    wait, _ = sg.apply_policy(d, "wait")
    sub, mask = sg.apply_policy(d, "substitute:10us")
    rw, rs = sg.straggler_report(wait), sg.straggler_report(sub, mask)
    assert rw["p50"] >= slow  # every step waits for the slow chip
    assert rs["max"] <= 10e-6 + d.min(axis=1).max()
    assert rs["substituted_fraction"] == pytest.approx(0.01, abs=0.002)
    assert math.isclose(rs["steps_with_substitution"], 1.0)
