"""CollectiveOptions is the one list of the collective study's options: the CLI's flags are
generated from it, and the CLI, the sweep kind and run_collective read a value the same way."""

from __future__ import annotations

import argparse
import json

import pytest

from collectives import CollectiveOptions, run_collective
from collectives.experiment import collective_experiment
from netsim.app.cli import build_parser, main
from netsim.core.errors import ConfigError
from netsim.core.options import fields_of, spec_of

T = "torus:dims=4"
A = {"backend": "analytical", "library": "none"}  # no library costs but the one set


def _collective_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["collective"]


def test_every_cli_option_is_a_flag_of_netsim_collective():
    flags = {a.dest: a.option_strings[0] for a in _collective_parser()._actions}
    for f in fields_of(CollectiveOptions):
        if spec_of(f).cli:
            assert flags[f.name] == "--" + f.name.replace("_", "-")
        else:
            assert f.name not in flags


def test_cli_sweep_and_python_read_unit_strings_alike(capsys):
    """A 2 us step overhead and 3 ranks: the three entry points give one time, and it is
    2 us per dependent step more than without it (ring all-reduce: 2 (p - 1) = 4 steps, the
    first without a step cost as it waits for no transfer, collectives.runner)."""
    code = main(["collective", "--topo", T, "--algo", "ring", "--size", "1KiB", "--ranks",
                 "0-2", "--step-overhead", "2us", "--backend", "analytical", "--library", "none", "--json"])  # fmt: skip
    cli = json.loads(capsys.readouterr().out)
    sweep = collective_experiment(
        topo=T, algo="ring", size="1KiB", ranks="0-2", step_overhead="2us", **A
    )
    opts = CollectiveOptions(ranks="0-2", step_overhead="2us", **A)
    py = run_collective(T, "allreduce", "ring", 1024, opts)
    base = run_collective(T, "allreduce", "ring", 1024, ranks=[0, 1, 2], **A)
    assert code == 0 and cli["time_s"] == sweep["time_s"] == py["time_s"]
    assert py["time_s"] - base["time_s"] == pytest.approx(3 * 2e-6, rel=1e-9)
    assert py["ranks"] == [0, 1, 2] and py["step_overhead"] == pytest.approx(2e-6)


def test_overrides_apply_over_an_options_object():
    opts = CollectiveOptions(backend="analytical", seed=3)
    r = run_collective(T, "allreduce", "ring", "1KiB", opts, seed=5)
    assert r["seed"] == 5 and r["network_model"] == "analytical/alpha-beta"
    assert opts.seed == 3  # frozen: the caller's object is unchanged


@pytest.mark.parametrize(
    ("call", "line"),
    [
        (lambda: run_collective(T, "allreduce", "ring", "1KiB", chunk=2), "chunk: not an option "
         "of CollectiveOptions (did you mean chunks?), got 2"),
        (lambda: collective_experiment(topo=T, size="1KiB", seeed=1), "seeed: not an option of "
         "CollectiveOptions (did you mean seed?), got 1"),
        (lambda: collective_experiment(topo=T, size="1KiB", step_overhead="fast"),
         "step_overhead: "),
        (lambda: CollectiveOptions(backend="analytical", forwarding="cut-through"),
         "forwarding: applies to the packet backend only"),
        (lambda: CollectiveOptions(routing="nope"), "routing: must be one of auto, "),
    ],
)  # fmt: skip
def test_bad_options_are_one_line_errors_naming_the_option(call, line):
    with pytest.raises(ConfigError) as exc:
        call()
    assert str(exc.value).startswith(line) and "\n" not in str(exc.value)


def test_bad_cli_option_value_is_one_line_exit_2(capsys):
    code = main(["collective", "--topo", T, "--size", "1KiB", "--itemsize", "0"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: itemsize: must be an integer >= 1")
    assert err.count("\n") == 1
