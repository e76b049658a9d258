"""The ``netsim`` command line.

Each subcommand lives in its own module of :mod:`netsim.app.commands` and is a thin layer over
a public Python function: the module defines ``register(subparsers)``, which adds a parser
(:func:`netsim.app.commands._common.add_command`) whose default ``func`` takes the parsed
arguments and returns an exit code; that function's docstring is the command's help line
and description.

Errors that netsim raises on purpose (:class:`netsim.core.errors.NetsimError`) are printed as one
line, ``error: ...``, on stderr, and the exit code is 2; there is never a traceback for them.
An error of the environment (``OSError``: a full disk, a permission) or running out of
memory is one line too, with exit code 1.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
import sys
from collections.abc import Sequence
from typing import Any

from netsim._version import __version__
from netsim.core.errors import NetsimError

__all__ = ["build_parser", "main"]

_NEGATIVE_VALUE = re.compile(r"^-\.?\d")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit code 2.

    A value that starts with a minus sign and a digit (``--size -1B``, ``--load -0.5``) is
    taken as a value, not as an option, so that the option's own check refuses it with its
    real rule (no netsim option name starts with a digit).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE_VALUE

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand of :mod:`netsim.app.commands`."""
    parser = _Parser(
        prog="netsim",
        description="Packet-level simulator of accelerator interconnects for LLM workloads.",
    )
    parser.add_argument("--version", action="version", version=f"netsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    import netsim.app.commands as commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"netsim.app.commands.{info.name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 failure, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except NetsimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except MemoryError:  # a limit netsim does not check yet: still one line, not a traceback
        print("error: out of memory (a smaller problem, or a limit to report)", file=sys.stderr)
        return 1
    except OSError as exc:  # the environment (disk full, permissions), not the input
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
