"""DecodeOptions and TrainOptions: one list of options read the same way by the Python API,
the sweep kinds and the command line."""

from __future__ import annotations

import argparse
import json

import pytest

from netsim.app.cli import main
from netsim.app.commands import decode as decode_cmd
from netsim.app.commands import train as train_cmd
from netsim.core.errors import ConfigError
from netsim.core.options import fields_of, spec_of
from workloads.decode import decode, decode_experiment, prefill
from workloads.options import DecodeOptions, TrainOptions
from workloads.train import train_experiment, train_step

RUN = ("llama3-8b", "h100", "dgx-h100")
FAST = dict(tp=8, backend="analytical", allreduce="ring")


def test_an_options_object_and_keywords_are_the_same_run():
    by_keywords = decode(*RUN, context=64, batch=2, **FAST).to_dict()
    opts = DecodeOptions(**FAST)
    assert decode(*RUN, context=64, options=opts, batch=2).to_dict() == by_keywords
    assert decode_experiment(model=RUN[0], chip=RUN[1], topo=RUN[2], context=64, batch=2,
                             **FAST) == by_keywords  # fmt: skip


def test_unit_strings_are_read_once_for_every_entry():
    opts = DecodeOptions.from_mapping({"step_overhead": "2us", "kernel_launch": "0s", "tp": "8"})
    assert (opts.step_overhead, opts.kernel_launch, opts.tp) == (2e-6, 0.0, 8)
    assert TrainOptions(bucket="10MB").bucket == 10**7


def test_kernel_launch_zero_removes_the_launch_term():
    """The roofline charges the chip's ``kernel_launch`` per operator; kernel_launch=0 (CUDA graphs)
    leaves compute + memory + fabric only."""
    r = decode(*RUN, context=64, kernel_launch="0s", **FAST)
    assert r.launch_s == 0.0
    assert r.token_latency_s == pytest.approx(r.compute_s + r.memory_s + r.fabric_s)
    assert decode(*RUN, context=64, **FAST).launch_s > 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: decode(*RUN, tpp=8), r"^tpp: not an option of DecodeOptions \(did you mean tp\?\)"),
        (lambda: decode(*RUN, options={"tp": 8}), r"^options: must be a DecodeOptions"),
        (lambda: prefill(*RUN, stragglers="exp:1us"), r"^stragglers: applies to decode, not"),
        (lambda: decode(*RUN, tokens=0), r"^tokens: must be an integer >= 1"),
        (lambda: train_step(*RUN, efficiency=0), r"^efficiency: must be a finite number > 0"),
        (lambda: train_experiment(model="llama3-8b", chip="h100", topo="dgx-h100", bucket=0),
         r"^bucket: "),
        (lambda: decode_experiment(model="llama3-8b", chip="h100", topo="dgx-h100",
                                   phase="prefill", context=8), r"^context: not an option"),
    ],
)  # fmt: skip
def test_bad_options_are_one_line_naming_the_option(call, message):
    with pytest.raises(ConfigError, match=message):
        call()


@pytest.mark.parametrize(("cmd", "cls"), [(decode_cmd, DecodeOptions), (train_cmd, TrainOptions)])
def test_every_option_is_a_command_line_argument(cmd, cls):
    parser = argparse.ArgumentParser()
    cmd.register(parser.add_subparsers())
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    dests = {a.dest for p in sub.choices.values() for a in p._actions}
    assert {f.name for f in fields_of(cls) if spec_of(f).cli} <= dests


def test_the_former_launch_flag_still_works(capsys):
    argv = ["decode", *("--model", "llama3-8b", "--chip", "h100", "--topo", "dgx-h100"),
            *("--tp", "8", "--context", "64", "--backend", "analytical", "--json")]  # fmt: skip
    records = []
    for flag in ("--kernel-launch", "--launch-overhead"):
        assert main([*argv, flag, "0"]) == 0
        records.append(json.loads(capsys.readouterr().out))
    assert records[0]["launch_s"] == records[1]["launch_s"] == 0.0
