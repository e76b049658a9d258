"""Every subcommand's text comes from its run function's docstring
(:func:`netsim.app.commands._common.add_command`)."""

from __future__ import annotations

import argparse

from netsim.app.cli import build_parser
from netsim.app.commands._common import add_command


def test_the_summary_is_the_help_line_and_the_rest_the_description():
    def run(args: argparse.Namespace) -> int:
        """Draw a thing.

        It draws the   thing
        on two lines.
        """
        return 0

    sub = argparse.ArgumentParser().add_subparsers()
    p = add_command(sub, "thing", run)
    assert sub.choices["thing"] is p and p.get_default("func") is run
    assert p.description == "It draws the thing on two lines."
    assert [a.help for a in sub._choices_actions] == ["draw a thing"]


def test_every_command_has_an_argparse_style_help_line_and_a_description():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    lines = {a.dest: a.help for a in sub._choices_actions}
    assert set(lines) == set(sub.choices) and len(lines) >= 9
    for name, line in lines.items():
        assert line and line[0].islower() and not line.endswith("."), name
        assert sub.choices[name].description, name
