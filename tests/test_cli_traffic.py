"""``netsim traffic``: text and JSON output of a synthetic-traffic run."""

from __future__ import annotations

import json

import pytest

from netsim.cli import main

ARGS = ["traffic", "--topo", "torus:dims=4x4", "--pattern", "uniform", "--packets", "400"]


def test_text_output_names_model_and_injection_bandwidth(capsys):
    assert main([*ARGS, "--loads", "0.1,0.2"]) == 0
    out = capsys.readouterr().out
    assert "model packet/cut-through" in out
    assert "50GB/s per chip" in out  # ICI link, 50 GB/s (netsim.linktypes)
    assert len([ln for ln in out.splitlines() if ln.strip().startswith("0.")]) == 2


def test_json_below_saturation_accepts_what_is_offered(capsys):
    assert main([*ARGS, "--load", "0.1", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["injection_bandwidth"] == 50e9
    # far below saturation every offered byte is delivered in the window (within sampling)
    assert r["accepted_load"] == pytest.approx(r["offered_load"], rel=0.25)
    assert r["latency_p50_s"] <= r["latency_p99_s"] <= r["latency_max_s"]
