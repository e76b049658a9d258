"""Helpers shared by the CLI subcommands: JSON output, argument types with units, and the
arguments generated from an options object (:func:`add_options`, :func:`options_from_args`)."""

from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import numpy as np

from netsim.core.errors import ConfigError
from netsim.core.options import Options, fields_of, spec_of
from netsim.core.units import parse_bandwidth, parse_size, parse_time

__all__ = [
    "add_command",
    "add_options",
    "arg_bandwidth",
    "arg_size",
    "arg_time",
    "options_from_args",
    "print_json",
    "to_jsonable",
]

OptionsT = TypeVar("OptionsT", bound=Options)


def _argtype(parse, label: str):
    def convert(text: str):
        try:
            return parse(text, label)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = label
    return convert


arg_size = _argtype(parse_size, "size")
arg_bandwidth = _argtype(parse_bandwidth, "bandwidth")
arg_time = _argtype(parse_time, "time")


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and non-finite floats into plain JSON values."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def print_json(obj: Any) -> None:
    """Print one JSON object on stdout."""
    json.dump(to_jsonable(obj), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def add_command(
    sub: argparse._SubParsersAction, name: str, run: Callable[[argparse.Namespace], int]
) -> argparse.ArgumentParser:
    """Add subcommand ``name``, run by ``run(args)`` (its exit status), and return its parser.

    ``run``'s docstring is the command's text, as in click: its summary line (a sentence) is
    the command's line in the ``netsim --help`` list, written as argparse help is written
    (first letter lowercase, no final period); the paragraphs after it are the description
    of ``netsim NAME --help``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subcommands of the ``netsim`` parser.
    name : str
        The subcommand's name.
    run : callable
        Called with the parsed arguments; returns the exit status.

    Returns
    -------
    argparse.ArgumentParser
        The subcommand's parser, for its own arguments.
    """
    summary, _, body = inspect.cleandoc(run.__doc__ or "").partition("\n")
    line = summary[:1].lower() + summary[1:].removesuffix(".")
    p = sub.add_parser(name, help=line, description=" ".join(body.split()) or None)
    p.set_defaults(func=run)
    return p


def add_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type[Options],
    skip: Iterable[str] = (),
) -> None:
    """Add one argument per command-line option of ``cls`` (:mod:`netsim.core.options`).

    Option ``dispatch_dtype`` becomes ``--dispatch-dtype`` (dest ``dispatch_dtype``) with the
    option's default, choices (of a ``str`` option) and help (the default appended). A bool option is a switch:
    ``--x`` when its default is False, else ``--x/--no-x``. Values stay strings here: unit
    strings and numbers are read, and checked, by :func:`options_from_args`, so that the
    command line and a sweep file read a value the same way and fail with the same line.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser (or an argument group of it).
    cls : type
        An :class:`~netsim.core.options.Options` dataclass.
    skip : iterable of str
        Option names the command declares itself (or does not offer).
    """
    skip = set(skip)
    for f in fields_of(cls):
        spec = spec_of(f)
        if not spec.cli or f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        shown = "" if f.default is None or f.default is False else f" (default {f.default})"
        kw: dict[str, Any] = {"dest": f.name, "default": f.default, "help": spec.help + shown}
        if spec.kind == "bool":
            kw["action"] = "store_true" if f.default is False else argparse.BooleanOptionalAction
        elif spec.choices is not None and spec.kind == "str":
            kw["choices"] = spec.choices
        else:
            kw["metavar"] = (spec.kind if isinstance(spec.kind, str) else f.name).upper()
        parser.add_argument(flag, **kw)


def options_from_args(args: argparse.Namespace, cls: type[OptionsT], **extra: Any) -> OptionsT:
    """The ``cls`` options given on the command line (:func:`add_options`) and ``extra``.

    Raises
    ------
    ConfigError
        A value that breaks its option's rule (one line: ``name: rule, got value``).
    """
    names = {f.name for f in fields_of(cls) if spec_of(f).cli}
    given = {k: v for k, v in vars(args).items() if k in names}
    return cls.from_mapping(given, **extra)
