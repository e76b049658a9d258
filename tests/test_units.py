"""Tests of netsim.core.units: parsing sizes, bandwidths, times and ranges, and formatting."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netsim.core.errors import ConfigError
from netsim.core.units import (
    format_bandwidth,
    format_size,
    format_time,
    parse_bandwidth,
    parse_float_range,
    parse_size,
    parse_size_range,
    parse_time,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8B", 8),
        ("8", 8),
        (8, 8),
        ("0B", 0),
        ("4KiB", 4096),
        ("4 KiB", 4096),
        ("4kB", 4000),
        ("4KB", 4000),
        ("1MB", 10**6),
        ("1MiB", 2**20),
        ("1.5GiB", 3 * 2**29),
        ("2TB", 2 * 10**12),
        ("1_000B", 1000),
        ("16bytes", 16),
        ("1e3B", 1000),
    ],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected
    assert isinstance(parse_size(text), int)


@pytest.mark.parametrize("bad", ["-1B", "1.5B", "4KB/s", "abc", "4XB", "", "nan"])
def test_parse_size_errors_name_the_parameter_and_value(bad):
    with pytest.raises(ConfigError, match=r"^buffer: .*" + repr(bad).replace("\\", "\\\\")):
        parse_size(bad, "buffer")


@pytest.mark.parametrize("bad", [True, None, [1], float("inf"), -3])
def test_parse_size_rejects_non_quantities(bad):
    with pytest.raises(ConfigError, match=r"^size: "):
        parse_size(bad)


def test_parse_size_zero_can_be_refused():
    with pytest.raises(ConfigError, match="must be > 0"):
        parse_size("0B", allow_zero=False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # bits: 400 Gb/s is 50 GB/s (one byte is eight bits)
        ("400Gbps", 50e9),
        ("400Gb/s", 50e9),
        ("400Gbit/s", 50e9),
        ("8bit/s", 1.0),
        ("800 Gbps", 100e9),
        # bytes
        ("50GB/s", 50e9),
        ("50GBps", 50e9),
        ("1.8TB/s", 1.8e12),
        ("100GiB/s", 100 * 2.0**30),
        ("900GB/s", 900e9),
        ("2.5e9", 2.5e9),
        (25e9, 25e9),
    ],
)
def test_parse_bandwidth_bits_and_bytes(text, expected):
    assert parse_bandwidth(text) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("bad", ["0GB/s", "-1GB/s", "fast", "50GB", "50 G B/s", "1e999GB/s"])
def test_parse_bandwidth_errors(bad):
    with pytest.raises(ConfigError, match=r"^link_bw: "):
        parse_bandwidth(bad, "link_bw")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500ns", 500e-9),
        ("1.5us", 1.5e-6),
        ("1.5µs", 1.5e-6),
        ("2ms", 2e-3),
        ("1s", 1.0),
        ("10ps", 10e-12),
        ("0", 0.0),
        ("3e-7", 3e-7),
        (0.25, 0.25),
    ],
)
def test_parse_time(text, expected):
    assert parse_time(text) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("bad", ["5min", "-1ns", "ns", "1 hour", "1.2.3us"])
def test_parse_time_errors(bad):
    with pytest.raises(ConfigError, match=r"^latency: "):
        parse_time(bad, "latency")


def test_parse_time_zero_can_be_refused():
    with pytest.raises(ConfigError, match=r"latency: must be > 0, got '0ns'"):
        parse_time("0ns", "latency", allow_zero=False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1KiB:8KiB:x2", [1024, 2048, 4096, 8192]),
        ("8B:100B:x3", [8, 24, 72]),
        ("1KiB:4KiB:+1KiB", [1024, 2048, 3072, 4096]),
        ("8B,1KiB,1MiB", [8, 1024, 2**20]),
        ("64B", [64]),
        (["1KiB", 8], [1024, 8]),
    ],
)
def test_parse_size_range(text, expected):
    assert parse_size_range(text) == expected


def test_geometric_size_range_has_closed_form_length():
    # START * 2**i <= STOP for i = 0..log2(STOP/START): 8B..1GiB is 28 sizes.
    sizes = parse_size_range("8B:1GiB:x2")
    assert len(sizes) == 28
    assert sizes[0] == 8 and sizes[-1] == 2**30
    assert all(b == 2 * a for a, b in itertools.pairwise(sizes))


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("8KiB:1KiB:x2", "STOP must be >= START"),
        ("0B:1KiB:x2", "START > 0 and factor > 1"),
        ("1B:1KiB:x1", "START > 0 and factor > 1"),
        ("1B:1KiB:xz", "START > 0 and factor > 1"),
        ("1B:1KiB:+0B", "must be > 0"),
        ("1B:2B", "START:STOP:xFACTOR"),
    ],
)
def test_parse_size_range_errors(bad, match):
    with pytest.raises(ConfigError, match=match):
        parse_size_range(bad, "sizes")


def test_parse_float_range():
    assert parse_float_range("0.1:0.5:0.2") == [0.1, 0.3, 0.5]
    assert parse_float_range("0.1:0.9:0.1") == pytest.approx([0.1 * i for i in range(1, 10)])
    assert parse_float_range("0.2,0.7") == [0.2, 0.7]
    assert parse_float_range(0.5) == [0.5]
    for bad in ("0.5:0.1:0.1", "0.1:0.5:0", "a:b:c", "0.1:0.5:0.1:1"):
        with pytest.raises(ConfigError, match=r"^loads: "):
            parse_float_range(bad, "loads")


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        (1536, format_size, "1.5KiB"),
        (2**20, format_size, "1MiB"),
        (100, format_size, "100B"),
        (4.5e11, format_bandwidth, "450GB/s"),
        (1.8e12, format_bandwidth, "1.8TB/s"),
        (1.5e-6, format_time, "1.5us"),
        (5e-7, format_time, "500ns"),
        (0.0, format_time, "0s"),
        (2.0, format_time, "2s"),
    ],
)
def test_format(value, fmt, expected):
    assert fmt(value) == expected


# format_* keep 4 significant digits, so a round trip is exact to 5e-4 relative.
@given(st.floats(min_value=1.0, max_value=1e17, allow_nan=False))
def test_bandwidth_round_trip(x):
    assert parse_bandwidth(format_bandwidth(x)) == pytest.approx(x, rel=5e-4)


@given(st.floats(min_value=1e-13, max_value=1e4, allow_nan=False))
def test_time_round_trip(x):
    assert parse_time(format_time(x)) == pytest.approx(x, rel=5e-4)


@given(st.integers(min_value=0, max_value=999), st.integers(min_value=0, max_value=3))
def test_size_round_trip_exact_when_formatted_exactly(m, k):
    # Sizes that format_size writes without rounding parse back exactly.
    n = m * 2 ** (10 * k)
    assert parse_size(format_size(n)) == n


@given(st.integers(min_value=0, max_value=2**50))
def test_size_round_trip_of_any_size(n):
    assert parse_size(format_size(n)) == n


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (1536, "1.5KiB"),
        (10**6, "1MB"),
        (1025, "1.025kB"),
        (999, "999B"),
        (2**30, "1GiB"),
        (0, "0B"),
    ],
)
def test_format_size_picks_exact_prefix(n, text):
    assert format_size(n) == text


@pytest.mark.parametrize(("text", "seconds"), [("500ns", 5e-7), ("1.5us", 1.5e-6), ("2ms", 2e-3)])
def test_time_parses_to_the_nearest_float(text, seconds):
    assert parse_time(text) == seconds
