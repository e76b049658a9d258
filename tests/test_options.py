"""The options-object mechanism (:mod:`netsim.core.options`) and the command-line arguments
generated from it (:func:`netsim.app.commands._common.add_options`)."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from netsim.app.commands._common import add_options, options_from_args
from netsim.core.errors import ConfigError
from netsim.core.options import Options, fields_of, option


def _even(value, name):
    n = int(value)
    if n % 2:
        raise ConfigError(f"{name}: must be even, got {value!r}")
    return n


@dataclasses.dataclass(frozen=True, kw_only=True)
class Demo(Options):
    size: int = option(1024, kind="size", help="message size")
    rate: float | None = option(None, kind="bandwidth", help="link rate")
    delay: float = option(0.0, kind="time", help="start delay")
    count: int = option(4, kind="int", min=1, max=64, help="how many")
    share: float = option(0.5, kind="float", min=0, max=1, help="a fraction")
    mode: str = option("fast", choices=("fast", "slow"), help="speed")
    verbose: bool = option(False, kind="bool", help="say more")
    estimate: bool = option(True, kind="bool", help="estimate too")
    pairs: int | None = option(None, kind=_even, help="an even number")
    detail: bool = option(False, kind="bool", cli=False, help="Python only")

    def validate(self) -> None:
        if self.mode == "slow" and self.count > 8:
            raise ConfigError(f"count: at most 8 in slow mode, got {self.count}")


def test_unit_strings_are_parsed_to_si():
    d = Demo.from_mapping({"size": "4KiB", "rate": "400Gbps", "delay": "2us", "count": "8"})
    assert (d.size, d.rate, d.delay, d.count) == (4096, 50e9, pytest.approx(2e-6), 8)
    assert d.pairs is None and d.verbose is False  # defaults kept


@pytest.mark.parametrize(
    ("params", "line"),
    [
        ({"size": "-1B"}, "size: must be >= 0"),
        ({"rate": "fast"}, "rate: "),
        ({"delay": "1parsec"}, "delay: "),
        ({"count": 0}, "count: must be an integer in [1, 64], got 0"),
        ({"count": 2.5}, "count: must be an integer in [1, 64], got 2.5"),
        ({"share": 1.5}, "share: must be a finite number >= 0 and <= 1, got 1.5"),
        ({"share": "nan"}, "share: must be a finite number"),
        ({"mode": "medium"}, "mode: must be one of fast, slow, got 'medium'"),
        ({"verbose": "maybe"}, "verbose: must be true or false, got 'maybe'"),
        ({"pairs": 3}, "pairs: must be even, got 3"),
        ({"size": None}, "size: "),  # None only where the default is None
        ({"mode": "slow", "count": 9}, "count: at most 8 in slow mode, got 9"),
    ],
)
def test_each_rule_fails_with_one_line_naming_the_option(params, line):
    with pytest.raises(ConfigError) as exc:
        Demo.from_mapping(params)
    msg = str(exc.value)
    assert msg.startswith(line) and "\n" not in msg


def test_bools_read_yaml_and_cli_words():
    assert Demo.from_mapping(verbose="yes").verbose is True
    assert Demo.from_mapping(estimate="off").estimate is False


def test_unknown_key_is_refused_with_the_closest_name():
    with pytest.raises(ConfigError, match=r"^sise: not an option of Demo \(did you mean size\?\)"):
        Demo.from_mapping({"sise": 1})
    with pytest.raises(ConfigError, match=r"^zzz: not an option of Demo, got 1$"):
        Demo.from_mapping(zzz=1)


def test_frozen_and_replace_checks_like_from_mapping():
    d = Demo(count=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.count = 3  # type: ignore[misc]
    e = d.replace(size="1KiB", mode="slow")
    assert (e.size, e.mode, e.count, d.mode) == (1024, "slow", 2, "fast")
    assert d.replace() is d and e == Demo(size=1024, mode="slow", count=2)
    with pytest.raises(ConfigError, match=r"^count: "):
        d.replace(count=-1)
    with pytest.raises(ConfigError, match="did you mean count"):
        d.replace(cont=1)


def test_constructor_checks_too():
    with pytest.raises(ConfigError, match=r"^count: "):
        Demo(count=0)


def _parser():
    p = argparse.ArgumentParser()
    add_options(p, Demo, skip=("share",))
    return p


def test_cli_arguments_are_generated_with_defaults_choices_and_switches():
    acts = {a.dest: a for a in _parser()._actions if a.dest != "help"}
    names = [f.name for f in fields_of(Demo)]
    assert set(acts) == set(names) - {"share", "detail"}  # skipped, and cli=False
    assert acts["size"].option_strings == ["--size"] and acts["size"].default == 1024
    assert acts["mode"].choices == ("fast", "slow") and "(default fast)" in acts["mode"].help
    assert acts["verbose"].option_strings == ["--verbose"] and acts["verbose"].nargs == 0
    assert acts["estimate"].option_strings == ["--estimate", "--no-estimate"]
    assert acts["size"].metavar == "SIZE" and acts["pairs"].metavar == "PAIRS"


def test_cli_values_are_read_as_the_sweep_reads_them():
    args = _parser().parse_args(
        ["--size", "2KiB", "--rate", "100GB/s", "--count", "3", "--mode", "slow",
         "--verbose", "--no-estimate", "--pairs", "6"]
    )  # fmt: skip
    got = options_from_args(args, Demo, detail=True)
    want = Demo.from_mapping(
        {"size": "2KiB", "rate": "100GB/s", "count": "3", "mode": "slow", "verbose": True,
         "estimate": False, "pairs": 6, "detail": True}
    )  # fmt: skip
    assert got == want and got.size == 2048 and got.rate == 100e9


def test_cli_bad_value_is_the_options_one_line_error():
    args = _parser().parse_args(["--count", "many"])
    with pytest.raises(ConfigError, match=r"^count: must be an integer in \[1, 64\], got 'many'$"):
        options_from_args(args, Demo)


def test_option_refuses_an_unknown_kind():
    with pytest.raises(ConfigError, match=r"^kind: must be one of"):
        option(1, kind="colour")
