"""What the algorithm builders of this package share: validation, the signature and the
docstring template (:func:`builder`, :func:`builder_doc`)."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
from collections.abc import Callable, Sequence
from typing import Any

from netsim.core.errors import ConfigError
from netsim.core.validate import require_int

__all__ = [
    "BUILDER_PARAMETERS",
    "BUILDER_RETURNS",
    "BuildRequest",
    "builder",
    "builder_doc",
    "check_ranks",
    "no_chunks",
    "no_opts",
    "pow2",
]


def check_ranks(ranks: Sequence[int], *, min_ranks: int = 1) -> tuple[int, ...]:
    """Return ``ranks`` as a tuple of distinct ints, or raise ConfigError."""
    try:
        out = tuple(int(r) for r in ranks)
    except (TypeError, ValueError):
        raise ConfigError(f"ranks: must be a sequence of chip ids, got {ranks!r}") from None
    if len(out) < min_ranks:
        raise ConfigError(f"ranks: need at least {min_ranks} rank(s), got {list(out)}")
    if len(set(out)) != len(out):
        raise ConfigError(f"ranks: must be distinct, got {list(out)}")
    return out


def no_opts(algo: str, opts: dict[str, Any]) -> None:
    """Refuse options the algorithm does not know."""
    if opts:
        name = sorted(opts)[0]
        raise ConfigError(f"{name}: not an option of the {algo} algorithm, got {opts[name]!r}")


def no_chunks(algo: str, chunks: Any) -> None:
    """Refuse ``chunks`` other than None/1 for an algorithm that does not pipeline."""
    if chunks is None:
        return
    c = require_int("chunks", chunks, min=1)
    if c != 1:
        raise ConfigError(f"chunks: {algo} does not pipeline, must be 1 or unset, got {chunks!r}")


def pow2(algo: str, p: int) -> int:
    """Return log2(p), or raise ConfigError if ``p`` is not a power of two."""
    if p < 1 or p & (p - 1):
        raise ConfigError(f"ranks: {algo} needs a power-of-two number of ranks, got {p}")
    return p.bit_length() - 1


@dataclasses.dataclass(frozen=True)
class BuildRequest:
    """The arguments every schedule builder takes (see :func:`builder`): its attributes are
    the shared signature's arguments, described in :data:`BUILDER_PARAMETERS`."""

    ranks: Sequence[int]
    count: int
    itemsize: int = 1
    graph: Any = None
    chunks: int | None = None
    root: int = 0
    matrix: Any = None


#: The numpydoc entries of the arguments every builder takes, by name; :func:`builder` adds
#: those a builder's docstring does not describe itself.
BUILDER_PARAMETERS: dict[str, str] = {
    "ranks": "ranks : sequence of int\n    Chips taking part, in rank order.",
    "count": "count : int\n    Elements per rank buffer (the gathered size for all-gather).",
    "itemsize": "itemsize : int\n    Bytes per element (default 1).",
    "graph": "graph : networkx.Graph, optional\n    The topology (read by the topology-aware "
    "algorithms).",
    "chunks": "chunks : int, optional\n    Pipeline pieces (an algorithm that does not "
    "pipeline refuses more than 1).",
    "root": "root : int\n    Rank index of the root (broadcast and reduce; 0 for the others).",
    "matrix": "matrix : array_like, optional\n    Per-pair element counts (alltoall only).",
}

#: The Returns section of a builder's docstring that has none of its own.
BUILDER_RETURNS = """Returns
-------
Schedule
    The collective as a DAG of transfers."""

Builder = Callable[..., Any]
_ENTRY = re.compile(r"^(\**\w+(?:, \w+)*)(?: :|$)")
_SECTIONS = ("Returns", "Raises", "Examples", "Notes", "References", "See Also")


def builder(algo: str, *, options: Sequence[str] = ()) -> Callable[[Builder], Builder]:
    """Make ``body(request, **options)`` a schedule builder with the shared signature.

    The builder is ``fn(ranks, count, *, itemsize=1, graph=None, chunks=None, root=0,
    matrix=None, **opts) -> Schedule``, what :func:`collectives.builder.build` calls. It
    refuses an option outside ``options`` (``dims: not an option of the ring algorithm``),
    calls ``body`` with a :class:`BuildRequest` and the options given, and has the body's
    docstring with the entries of :data:`BUILDER_PARAMETERS` it lacks added to its
    Parameters section.

    Parameters
    ----------
    algo : str
        The algorithm's name, for the refusal.
    options : sequence of str
        The algorithm's own keyword options (e.g. ``("channels", "pxn")``).
    """

    def wrap(body: Builder) -> Builder:
        def fn(
            ranks: Sequence[int],
            count: int,
            *,
            itemsize: int = 1,
            graph: Any = None,
            chunks: int | None = None,
            root: int = 0,
            matrix: Any = None,
            **opts: Any,
        ) -> Any:
            no_opts(algo, {k: v for k, v in opts.items() if k not in options})
            return body(BuildRequest(ranks, count, itemsize, graph, chunks, root, matrix), **opts)

        functools.update_wrapper(fn, body)
        del fn.__wrapped__  # its signature is the shared one, not the body's
        fn.__doc__ = builder_doc(body.__doc__ or "")
        return fn

    return wrap


def builder_doc(doc: str, *, first: Sequence[str] = ()) -> str:
    """``doc`` (a builder's docstring, cleaned as :func:`inspect.cleandoc` cleans it) with
    a complete Parameters section and a Returns section.

    The Parameters section lists the docstring's own entries named in ``first``, then the
    shared arguments in signature order (the docstring's own entry where it has one, else
    :data:`BUILDER_PARAMETERS`), then the algorithm's options (a section is made if there
    is none). :data:`BUILDER_RETURNS` follows it where the docstring has no Returns.
    """
    lines = inspect.cleandoc(doc).splitlines()
    if "Parameters" not in (ln.strip() for ln in lines):  # made before the first section
        k = next((i for i, ln in enumerate(lines) if ln.strip() in _SECTIONS), len(lines))
        made = ["", "Parameters", "----------", ""]
        lines[k:k] = made[1:] if k < len(lines) else made[:-1]
    at = next(i for i, ln in enumerate(lines) if ln.strip() == "Parameters") + 2
    end = next((i for i in range(at, len(lines)) if lines[i].strip() in _SECTIONS), len(lines))
    while end > at and not lines[end - 1].strip():
        end -= 1
    entries: list[tuple[list[str], list[str]]] = []  # (names, lines)
    for ln in lines[at:end]:
        if _ENTRY.match(ln):
            entries.append((_ENTRY.match(ln)[1].split(", "), [ln]))
        elif entries and ln.strip():
            entries[-1][1].append(ln)
    out = [ln for names, body in entries if names[0] in first for ln in body]
    for name, text in BUILDER_PARAMETERS.items():
        own = next((e for e in entries if name in e[0]), None)
        if own is None:
            out += text.splitlines()
        elif own[0][0] == name:  # an entry for several names stands at its first name
            out += own[1]
    shared = set(BUILDER_PARAMETERS).union(first)
    out += [ln for names, body in entries if not set(names) & shared for ln in body]
    tail = lines[end:]  # the blank line and the sections after Parameters
    if "Returns" not in (ln.strip() for ln in tail):
        tail = ["", *BUILDER_RETURNS.splitlines(), *tail]
    return "\n".join([*lines[:at], *out, *tail]) + "\n"
