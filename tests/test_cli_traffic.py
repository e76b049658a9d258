"""``netsim traffic``: text and JSON output of a synthetic-traffic run."""

from __future__ import annotations

import json

import pytest

from netsim.app.cli import main

ARGS = ["traffic", "--topo", "torus:dims=4x4", "--pattern", "uniform", "--packets", "400"]


def test_text_output_names_model_and_injection_bandwidth(capsys):
    assert main([*ARGS, "--loads", "0.1,0.2"]) == 0
    out = capsys.readouterr().out
    assert "model packet/cut-through" in out
    # injection = the chip's 4 ICI links of 50 GB/s (netsim.core.linktypes), the torus default
    assert "200GB/s per chip" in out
    assert len([ln for ln in out.splitlines() if ln.strip().startswith("0.")]) == 2


def test_json_below_saturation_accepts_what_is_offered(capsys):
    assert main([*ARGS, "--load", "0.1", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["injection_bandwidth"] == 4 * 50e9  # sum of a 2D torus chip's 4 ICI links
    # far below saturation every offered byte is delivered in the window, within sampling
    # noise (400 packets: about 5%, so 3 sigma; seeds 0-7 give 0.94-1.11)
    assert r["accepted_load"] == pytest.approx(r["offered_load"], rel=0.15)
    assert r["latency_p50_s"] <= r["latency_p99_s"] <= r["latency_max_s"]


def test_pattern_with_fixed_points_measures_only_sent_packets():
    """transpose on a 4x4 torus maps the 4 diagonal chips to themselves: they send nothing,
    and the run still measures exactly `packets` packets (it used to run forever)."""
    from netsim.core.traffic import run_traffic

    r = run_traffic("torus:dims=4x4", "transpose", 0.5, injection="poisson", packets=300, seed=3)
    assert r.packets == 300 and r.latency_mean_s > 0


def test_pattern_that_sends_nothing_is_refused_not_run_forever():
    import networkx as nx

    from netsim.core.errors import ConfigError
    from netsim.core.traffic import run_traffic
    from topologies.graph import add_chip, add_link, finish

    g = nx.Graph()
    add_chip(g, 0, (0.0, 0.0))
    add_chip(g, 1, (1.0, 0.0))
    add_link(g, 0, 1, link="ici")
    g = finish(g, "pair", {})
    # bitrev on 2 chips maps each chip to itself
    with pytest.raises(ConfigError, match="too few packets"):
        run_traffic(g, "bitrev", 0.5, packets=10, seed=0)


def test_cli_sweep_and_python_take_the_same_traffic_options(capsys):
    """TrafficOptions is the one list: each CLI option is a flag of ``netsim traffic``, and
    the CLI, the sweep kind and run_traffic with an options object give the same run."""
    import argparse

    from netsim.app.cli import build_parser
    from netsim.core.errors import ConfigError
    from netsim.core.options import fields_of, spec_of
    from netsim.core.traffic import TrafficOptions, run_traffic, traffic_experiment

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    flags = {a.dest: a.option_strings[0] for a in sub.choices["traffic"]._actions}
    for f in fields_of(TrafficOptions):
        assert (flags.get(f.name) == "--" + f.name.replace("_", "-")) == spec_of(f).cli
    assert main([*ARGS, "--load", "0.2", "--size", "512B", "--seed", "2", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    sweep = traffic_experiment(topo="torus:dims=4x4", load=0.2, packets=400, size="512B", seed=2)
    opts = TrafficOptions(packets=400, size="512B", seed=2)
    py = run_traffic("torus:dims=4x4", "uniform", 0.2, opts).to_dict()
    for r in (sweep, py):
        assert (r["size"], r["latency_mean_s"], r["events"]) == (
            512,
            cli["latency_mean_s"],
            cli["events"],
        )
    with pytest.raises(ConfigError, match=r"^paket: not an option of TrafficOptions \(did you"):
        traffic_experiment(topo="torus:dims=4x4", paket=10)
