"""Every subcommand's text comes from its run function's docstring
(``add_command`` of ``netsim.app.commands``): the summary line is the help line, the rest
the description."""

from __future__ import annotations

import argparse

from netsim.app.cli import build_parser


def _subcommands() -> argparse._SubParsersAction:
    return next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))


def test_the_summary_is_the_help_line_and_the_rest_the_description():
    sub = _subcommands()
    line = next(a.help for a in sub._choices_actions if a.dest == "quickstart")
    assert line == "run a small built-in study (all-reduce vs size, decode) and draw figures"
    assert sub.choices["quickstart"].description == (
        "All-reduce latency vs message size on five fabric families and decode token latency "
        "on several fabrics; writes DIR/results.h5 and DIR/*.png, *.pdf. Re-running resumes."
    )


def test_every_command_has_an_argparse_style_help_line_and_a_description():
    sub = _subcommands()
    lines = {a.dest: a.help for a in sub._choices_actions}
    assert set(lines) == set(sub.choices) and len(lines) >= 9
    for name, line in lines.items():
        assert line and line[0].islower() and not line.endswith("."), name
        assert sub.choices[name].description, name
