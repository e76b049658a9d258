"""Tests of topologies.registry: spec parsing, conversion, presets, round trips and errors."""

from __future__ import annotations

import importlib
import inspect

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.core.errors import ConfigError
from netsim.core.units import parse_time
from topologies.dragonfly import dragonfly
from topologies.graph import LinkSpec
from topologies.hierarchical import hierarchical
from topologies.options import KINDS, convert
from topologies.registry import (
    FAMILY_MODULES,
    build,
    families,
    parse_spec,
    presets,
    spec_string,
)


def _func(family: str):
    mod, name = FAMILY_MODULES[family]
    return getattr(importlib.import_module(f"topologies.{mod}"), name)


# One small instance of every family, as the brief's examples write them.
SMALL = {
    "torus": "torus:dims=4x4",
    "mesh": "mesh:dims=3x4",
    "fat_tree": "fat_tree:k=4",
    "tree": "tree:depth=2,radix=4,taper=2",
    "dragonfly": "dragonfly:a=4,p=2,h=2",
    "nvswitch": "nvswitch:gpus=8",
    "wafer": "wafer:dies=2x2,tiles=4x4",
    "hierarchical": "hierarchical:nodes=2",
}


def test_every_family_has_an_example_and_a_generator():
    assert set(SMALL) == set(FAMILY_MODULES)
    fams = families()
    for name, info in fams.items():
        assert info["description"], name
        assert info["parameters"], name
        assert any(p["required"] for p in info["parameters"].values()) or name in (
            "nvswitch",
            "hierarchical",
        )


@pytest.mark.parametrize("family", sorted(SMALL))
def test_build_each_family(family):
    spec = SMALL[family]
    G = build(spec)
    assert isinstance(G, nx.Graph)
    assert G.graph["family"] == family
    assert G.graph["name"] == spec
    chips = [v for v, k in G.nodes(data="kind") if k == "chip"]
    assert chips == list(range(len(chips))) == list(range(G.graph["chips"]))
    assert nx.is_connected(G)


def test_spec_equals_direct_call():
    G = build("torus:dims=4x4,bandwidth=100GB/s,latency=500ns,wrap=false")
    H = _func("torus")("4x4", bandwidth=100e9, latency=parse_time("500ns"), wrap=False)
    assert G.graph["params"] == H.graph["params"]
    assert nx.utils.graphs_equal(nx.Graph(G.edges), nx.Graph(H.edges))
    assert {d["bandwidth"] for *_, d in G.edges(data=True)} == {100e9}
    assert {d["latency"] for *_, d in G.edges(data=True)} == {parse_time("500ns")}


def test_bits_and_bytes_in_specs():
    # 400Gbps = 50 GB/s: eight bits per byte.
    a = build("torus:dims=4x4,bandwidth=400Gbps")
    b = build("torus:dims=4x4,bandwidth=50GB/s")
    assert a.graph["params"]["bandwidth"] == b.graph["params"]["bandwidth"] == 50e9


def test_parse_spec_converts_by_parameter():
    fam, params = parse_spec("torus:dims=4x4,bandwidth=1.8TB/s,latency=1.5us,wrap=no")
    assert fam == "torus"
    assert params == {
        "dims": "4x4",
        "bandwidth": 1.8e12,
        "latency": pytest.approx(1.5e-6),
        "wrap": False,
    }
    fam, params = parse_spec("fat-tree:k=4")
    assert (fam, params) == ("fat_tree", {"k": 4})
    assert isinstance(params["k"], int)


def test_none_means_default():
    _, params = parse_spec("torus:dims=4x4,latency=none")
    assert params["latency"] is None


def test_mapping_form():
    G = build({"family": "torus", "dims": [4, 4], "bandwidth": "100GB/s"})
    assert G.graph["params"]["bandwidth"] == 100e9
    assert G.graph["name"] == "torus:dims=4x4,bandwidth=100GB/s"
    assert build({"family": "fat-tree", "k": 4}).graph["chips"] == 16


def test_presets_are_cited_and_build():
    table = presets()
    for name in ("dgx-h100", "nvl72", "tpu-v4-cube"):
        assert name in table, sorted(table)
    for name, info in table.items():
        assert info["source"] and info["description"], name
        assert info["family"] in FAMILY_MODULES
        G = build(name)
        assert G.graph["name"] == name
        assert G.graph["family"] == info["family"]


def test_preset_with_override():
    base = build("tpu-v4-cube")
    G = build("tpu-v4-cube:latency=20ns")
    assert G.graph["name"] == "tpu-v4-cube:latency=20ns"
    assert G.graph["params"]["latency"] == pytest.approx(20e-9)
    assert G.graph["chips"] == base.graph["chips"] == 64
    with pytest.raises(ConfigError, match="unknown parameter 'nope'"):
        build("dgx-h100:nope=1")


def test_preset_dicts_are_not_shared():
    presets()["tpu-v4-cube"]["params"]["dims"] = "2x2"
    assert build("tpu-v4-cube").graph["chips"] == 64


@pytest.mark.parametrize("family", sorted(SMALL))
def test_round_trip_through_spec_string(family):
    G = build(SMALL[family])
    params = G.graph["params"]
    names = families()[family]["parameters"]  # as specs name them
    spec = spec_string(family, {k: v for k, v in params.items() if k in names})
    H = build(spec)
    assert H.graph["params"] == params
    assert H.number_of_edges() == G.number_of_edges()
    assert H.graph["name"] == spec


@settings(max_examples=25, deadline=None)
@given(
    dims=st.lists(st.integers(min_value=2, max_value=5), min_size=1, max_size=3),
    wrap=st.booleans(),
    bw=st.floats(min_value=1e6, max_value=1e13, allow_nan=False),
    lat=st.one_of(st.none(), st.floats(min_value=0.0, max_value=1e-3, allow_nan=False)),
)
def test_round_trip_property(dims, wrap, bw, lat):
    direct = _func("torus")(tuple(dims), wrap=wrap, bandwidth=bw, latency=lat)
    spec = spec_string(
        "torus", {"dims": tuple(dims), "wrap": wrap, "bandwidth": bw, "latency": lat}
    )
    G = build(spec)
    assert G.graph["params"] == direct.graph["params"]
    assert G.number_of_edges() == direct.number_of_edges()


def test_spec_string_uses_units_when_exact():
    assert spec_string("torus", {"dims": (8, 8), "bandwidth": 1e11, "latency": 2e-8}) == (
        "torus:dims=8x8,bandwidth=100GB/s,latency=20ns"
    )
    assert spec_string("torus", {"dims": "4x4", "latency": None}) == "torus:dims=4x4"
    # parse_time("500ns") is exactly 5e-07, so the unit form round-trips.
    assert spec_string("torus", {"dims": "4x4", "latency": 5e-7}) == "torus:dims=4x4,latency=500ns"
    # A value with no exact short unit form keeps the SI number.
    assert spec_string("torus", {"dims": "4x4", "latency": 1 / 3}) == (
        f"torus:dims=4x4,latency={1 / 3!r}"
    )


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ("torrus:dims=4x4", r"unknown family or preset 'torrus' \(did you mean 'torus'\?\)"),
        ("nosuch", r"unknown family or preset 'nosuch'.*families: .*torus.*presets: .*dgx-h100"),
        (
            "torus:dimz=4x4",
            r"^torus: unknown parameter 'dimz' \(did you mean 'dims'\?\); known: dims, ",
        ),
        ("torus:dims=4x4,bandwidth=fast", r"^torus: bandwidth: .*got 'fast'"),
        ("torus:dims=4x4,latency=-1ns", r"^torus: latency: must be >= 0, got '-1ns'"),
        ("torus:dims=4x4,wrap=maybe", r"^torus: wrap: must be true or false, got 'maybe'"),
        ("fat_tree:k=four", r"^fat_tree: k: must be an integer, got 'four'"),
        ("fat_tree:k=4.5", r"^fat_tree: k: must be an integer, got '4.5'"),
        ("torus", r"^torus: missing required parameter 'dims'"),
        ("torus:dims", r"^torus: expected NAME=VALUE, got 'dims'"),
        ("torus:dims=4x4,dims=2x2", r"parameter 'dims' given twice"),
        ("fat_tree:k=3", r"^fat_tree: .*k.*3"),  # the generator's own check, prefixed
        (":dims=4", r"expected FAMILY:NAME=VALUE"),
    ],
)
def test_errors_are_one_line_and_name_the_parameter(spec, pattern):
    with pytest.raises(ConfigError, match=pattern) as exc:
        build(spec)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(
    "spec", [{"dims": "4x4"}, {"family": 3}, 42, ["torus"], {"family": "torus", "dimz": "4"}]
)
def test_bad_mappings(spec):
    with pytest.raises(ConfigError):
        build(spec)


# --------------------------------------------------------------------------- declared kinds


def _declared(family: str) -> dict[str, str]:
    mod, name = FAMILY_MODULES[family]
    return importlib.import_module(f"topologies.{mod}").PARAMETER_KINDS[name]


@pytest.mark.parametrize("family", sorted(SMALL))
def test_every_family_parameter_declares_a_known_kind(family):
    sig = inspect.signature(_func(family)).parameters
    declared = _declared(family)
    spec_names = set()  # a LinkSpec parameter ``nic`` is written nic_link, nic_bandwidth, ...
    for name, p in sig.items():
        if isinstance(p.default, LinkSpec):
            keys = {f"{name.rstrip('_')}_{f}" for f in ("link", "bandwidth", "latency")}
            assert keys & set(declared), f"{name}: no spec key declared"
            spec_names |= keys & set(declared)
        else:
            spec_names.add(name)
    assert set(declared) == spec_names
    assert set(declared.values()) <= set(KINDS)
    assert {k: v["kind"] for k, v in families()[family]["parameters"].items()} == declared


def test_an_undeclared_or_unknown_kind_is_refused(monkeypatch):
    kinds = dict(_declared("torus"))
    del kinds["latency"]
    monkeypatch.setitem(importlib.import_module("topologies.torus").PARAMETER_KINDS, "torus", kinds)
    with pytest.raises(ConfigError, match="'latency' has no declared kind"):
        parse_spec("torus:dims=4x4")
    with pytest.raises(ConfigError, match="no declared kind"):
        families()
    kinds["latency"] = "duration"
    with pytest.raises(ConfigError, match=r"kind of 'latency' must be one of .*'duration'"):
        parse_spec("torus:dims=4x4")


def test_conversion_follows_the_declaration_not_the_name(monkeypatch):
    # Declared as a time, a parameter called "bandwidth" takes "2us" as 2e-6 s; declared as a
    # size, "latency" takes "4KiB" as 4096 bytes: the name plays no part.
    kinds = {**_declared("torus"), "bandwidth": "time", "latency": "size"}
    monkeypatch.setitem(importlib.import_module("topologies.torus").PARAMETER_KINDS, "torus", kinds)
    _, params = parse_spec("torus:dims=4x4,bandwidth=2us,latency=4KiB")
    assert params["bandwidth"] == pytest.approx(2e-6)
    assert params["latency"] == 4096


_RAW = {"bandwidth": "400Gbps", "time": "1.5us", "size": "4KiB", "int": "3", "float": "2.5"}
_SI = {"bandwidth": 50e9, "time": 1.5e-6, "size": 4096, "int": 3, "float": 2.5}


@pytest.mark.parametrize("family", sorted(SMALL))
def test_every_declared_quantity_converts_by_its_kind(family):
    # Each parameter on its own: the value the units of its declared kind give (400 Gb/s is
    # 50 GB/s, 1.5 us, 4 KiB = 4096 B), whatever the parameter is called.
    head, _, rest = SMALL[family].partition(":")
    base = dict(item.split("=") for item in rest.split(","))
    for name, kind in _declared(family).items():
        if kind in _RAW:
            _, params = parse_spec({"family": head, **base, name: _RAW[kind]})
            assert params[name] == pytest.approx(_SI[kind]), (family, name)
            assert isinstance(params[name], int) == (kind in ("int", "size")), (family, name)


def test_convert_rejects_an_unknown_kind():
    assert convert("bool", "x", "on") is True
    with pytest.raises(ConfigError, match="declared kind must be one of"):
        convert("length", "x", "1")


@pytest.mark.parametrize(
    ("spec", "call"),
    [
        (
            "hierarchical:nodes=2,gpus=4,nic_bandwidth=25GB/s,scale_up_link=nvlink5",
            lambda: hierarchical(
                2, gpus=4, nic=LinkSpec("ib", bandwidth=25e9), scale_up=LinkSpec("nvlink5")
            ),
        ),
        (
            "dragonfly:a=2,p=2,h=1,global_bandwidth=10GB/s,terminal_latency=5ns",
            lambda: dragonfly(
                2, 2, 1, global_=LinkSpec(bandwidth=10e9), terminal=LinkSpec(latency=5e-9)
            ),
        ),
    ],
)
def test_spec_keys_of_a_link_class_fill_its_linkspec(spec, call):
    G, H = build(spec), call()
    assert list(G.nodes(data=True)) == list(H.nodes(data=True))
    assert list(G.edges(data=True)) == list(H.edges(data=True))
    assert G.graph["params"] == H.graph["params"]
    assert spec_string(G.graph["family"], G.graph["params"]).startswith(spec.split(":")[0])
    assert (
        build(spec_string(G.graph["family"], G.graph["params"])).graph["params"]
        == (G.graph["params"])
    )
