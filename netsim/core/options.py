"""Options objects: one frozen dataclass per study is the single list of its options.

A study (a collective, a traffic run, a decode step, ...) declares its options once, as the
fields of a frozen dataclass deriving from :class:`Options`, each made with :func:`option`
(its default, kind, rule and help). From that one declaration:

- the object parses unit strings and checks every field when it is made, with one-line
  :class:`~netsim.core.errors.ConfigError` messages ``name: rule, got value``;
- :meth:`Options.from_mapping` builds it from a mapping (a sweep point's parameters, keyword
  overrides), refusing unknown names with the closest known one;
- :func:`netsim.app.commands._common.add_options` generates the command line's arguments
  (``--dispatch-dtype`` from ``dispatch_dtype``), so the CLI, the sweep kinds and the Python
  API accept exactly the same names.

The kinds (:data:`KINDS`):

``size``, ``bandwidth``, ``time``
    A number (SI: bytes, bytes/s, seconds) or a unit string (``"4KiB"``, ``"400Gbps"``,
    ``"2us"``), by :mod:`netsim.core.units`.
``int``, ``float``
    A finite number (an ``int`` must be integral); strings such as ``"4"`` are read.
``bool``
    ``True``/``False`` or ``true/yes/on/1``, ``false/no/off/0``.
``str``
    A string (one of ``choices`` when given).
a callable ``parse(value, name) -> value``
    A kind of the study's own (rank lists, matrices, ...), raising ConfigError.

``None`` is accepted, and kept, for every option whose default is ``None`` (meaning "not
set": the study picks its default); ``min``/``max`` bound numeric kinds (inclusive).

Examples
--------
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True, kw_only=True)
... class Demo(Options):
...     size: int = option(1024, kind="size", help="message size")
...     mode: str = option("fast", choices=("fast", "slow"), help="speed")
>>> Demo.from_mapping({"size": "4KiB"})
Demo(size=4096, mode='fast')
>>> Demo(size=1).replace(mode="slow").mode
'slow'
>>> Demo.from_mapping({"sise": 1})
Traceback (most recent call last):
...
netsim.core.errors.ConfigError: sise: not an option of Demo (did you mean size?), got 1
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self

from netsim.core.errors import ConfigError
from netsim.core.units import parse_bandwidth, parse_size, parse_time
from netsim.core.validate import require_choice, require_float, require_int

__all__ = [
    "KINDS",
    "OptionSpec",
    "Options",
    "Parameters",
    "fields_of",
    "option",
    "parse_bool",
    "spec_of",
]

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def parse_bool(value: Any, name: str = "value") -> bool:
    """``value`` as a bool: a bool, or ``true/yes/on/1`` / ``false/no/off/0`` (any case).

    Raises
    ------
    ConfigError
        Anything else, e.g. ``check: must be true or false, got 'maybe'``.
    """
    if isinstance(value, bool):
        return value
    text = value.strip().lower() if isinstance(value, str) else None
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ConfigError(f"{name}: must be true or false, got {value!r}")


def _parse_str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{name}: must be a string, got {value!r}")
    return value


#: The named kinds of :func:`option` and their parsers ``parse(value, name)``.
KINDS: dict[str, Callable[[Any, str], Any]] = {
    "size": parse_size,
    "bandwidth": parse_bandwidth,
    "time": parse_time,
    "int": lambda v, n: require_int(n, v),
    "float": lambda v, n: require_float(n, v),
    "bool": parse_bool,
    "str": _parse_str,
}

_NUMBERS = {"int": require_int, "float": require_float}


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    """What :func:`option` records about one option (in the field's metadata).

    Attributes
    ----------
    kind : str or callable
        A name of :data:`KINDS` or a parser ``parse(value, name) -> value``.
    help : str
        One line for the command line's ``--help`` and the docs.
    choices : tuple or None
        The allowed values (checked after parsing).
    min, max : float or None
        Inclusive bounds of a numeric kind.
    cli : bool
        Whether :func:`netsim.app.commands._common.add_options` makes a command-line argument.
    """

    kind: str | Callable[[Any, str], Any]
    help: str
    choices: tuple[Any, ...] | None
    min: float | None
    max: float | None
    cli: bool

    def parse(self, name: str, value: Any, default: Any) -> Any:
        """``value`` parsed by the kind and checked against choices and bounds.

        ``None`` passes unchanged when the option's ``default`` is ``None``.

        Raises
        ------
        ConfigError
            ``name: rule, got value``.
        """
        if value is None and default is None:
            return None
        if self.kind in _NUMBERS:  # one message with the whole rule, bounds included
            out = _NUMBERS[self.kind](name, value, min=self.min, max=self.max)
        else:
            out = (KINDS[self.kind] if isinstance(self.kind, str) else self.kind)(value, name)
            if self.min is not None or self.max is not None:
                check = require_int if isinstance(out, int) else require_float
                out = check(name, out, min=self.min, max=self.max)
        if self.choices is not None:
            require_choice(name, out, self.choices)
        return out


def option(
    default: Any = None,
    *,
    kind: str | Callable[[Any, str], Any] = "str",
    help: str = "",
    choices: Sequence[Any] | None = None,
    min: float | None = None,
    max: float | None = None,
    cli: bool = True,
) -> Any:
    """Declare one field of an :class:`Options` dataclass.

    Parameters
    ----------
    default : object
        The value when the option is not given (``None``: not set, the study decides).
        Must be immutable (a tuple, not a list).
    kind : str or callable
        How values are read: a name of :data:`KINDS` or a parser ``parse(value, name)``
        that returns the value or raises ConfigError.
    help : str
        One line for ``--help``; the default is added to it on the command line.
    choices : sequence, optional
        The allowed values.
    min, max : float, optional
        Inclusive bounds of a numeric value.
    cli : bool
        Make a command-line argument for it (False for options only the Python API and
        sweeps take, e.g. a graph or a detail switch).

    Returns
    -------
    dataclasses.Field
        A field carrying an :class:`OptionSpec` in its metadata (:func:`spec_of`).

    Raises
    ------
    ConfigError
        An unknown kind name.
    """
    if isinstance(kind, str):
        require_choice("kind", kind, KINDS)
    spec = OptionSpec(kind, help, None if choices is None else tuple(choices), min, max, cli)
    return dataclasses.field(default=default, metadata={"option": spec})


def spec_of(field: dataclasses.Field) -> OptionSpec:
    """The :class:`OptionSpec` of a field made by :func:`option`."""
    return field.metadata["option"]


def fields_of(cls: type[Options] | Options) -> tuple[dataclasses.Field, ...]:
    """The option fields of an :class:`Options` class (or instance), in declaration order."""
    return tuple(f for f in dataclasses.fields(cls) if "option" in f.metadata)


class Options:
    """Base class of the options objects: frozen dataclasses whose fields are :func:`option`.

    Declare a study's options as ``@dataclass(frozen=True, kw_only=True) class
    XOptions(Options)``. Making one parses and checks every field (units, kinds, choices,
    bounds), then calls :meth:`validate` for rules between fields.
    """

    def __post_init__(self) -> None:
        for f in fields_of(self):
            value = spec_of(f).parse(f.name, getattr(self, f.name), f.default)
            object.__setattr__(self, f.name, value)
        self.validate()

    def validate(self) -> None:
        """Rules between fields (override; raise ConfigError). The default checks nothing.

        (Named ``validate``, not ``check``: ``check`` is an option of several studies.)
        """

    @classmethod
    def from_mapping(cls, params: Mapping[str, Any] | None = None, /, **kw: Any) -> Self:
        """Make the options from ``params`` and keywords (keywords win).

        Raises
        ------
        ConfigError
            A name that is not an option (with the closest option's name), or a value
            that breaks its option's rule.
        """
        values = {**(params or {}), **kw}
        names = [f.name for f in fields_of(cls)]
        for key in values:
            if key not in names:
                close = difflib.get_close_matches(str(key), names, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise ConfigError(
                    f"{key}: not an option of {cls.__name__}{hint}, got {values[key]!r}"
                )
        return cls(**values)

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied, checked as :meth:`from_mapping` checks."""
        return self.from_mapping(self.to_dict(), **changes) if changes else self

    def to_dict(self) -> dict[str, Any]:
        """``{name: value}`` of every option."""
        return {f.name: getattr(self, f.name) for f in fields_of(self)}


@dataclasses.dataclass(frozen=True)
class Parameters:
    """The parameter names a study's sweep kind takes: required, optional and its options.

    A sweep checks every case's names with :meth:`check` when it loads the spec, before any
    point runs or any file is written, so a misspelt name is one error, not a failed point
    each. (Values are checked when each point runs: an option that breaks a rule between
    fields at one point is that point's failure, not the spec's.)

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True, kw_only=True)
    ... class Demo(Options):
    ...     seed: int = option(0, kind="int")
    >>> Parameters(("topo",), ("size",), Demo).check({"topo": "x", "sise": 1}, "demo")
    Traceback (most recent call last):
    ...
    netsim.core.errors.ConfigError: sise: not a parameter of the demo experiment (did you mean size?), got 1
    """

    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    options: type[Options] | None = None

    def names(self) -> tuple[str, ...]:
        """Every name the kind takes, in order (required, optional, options)."""
        opts = tuple(f.name for f in fields_of(self.options)) if self.options else ()
        return (*self.required, *self.optional, *opts)

    def check(self, params: Mapping[str, Any], kind: str) -> None:
        """Refuse a missing required name or an unknown one (with the closest known name).

        Raises
        ------
        ConfigError
            ``name: not a parameter of the KIND experiment (did you mean ...?), got value``
            or ``name: required parameter of the KIND experiment``.
        """
        names = self.names()
        for key, value in params.items():
            if key not in names:
                close = difflib.get_close_matches(str(key), names, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise ConfigError(
                    f"{key}: not a parameter of the {kind} experiment{hint}, got {value!r}"
                )
        for key in self.required:
            if key not in params:
                raise ConfigError(f"{key}: required parameter of the {kind} experiment")
