"""The collective study's options: :class:`CollectiveOptions` and the parsers of its kinds.

:class:`CollectiveOptions` is the single list of what :func:`collectives.api.run_collective`,
``netsim collective`` (its arguments are generated from it) and the sweep kind
``collective`` accept besides the topology, op, algorithm and size. Values may be unit
strings (``"2us"``, ``"3.35TB/s"``); each is checked when the object is made, with one line
naming the option, the rule and the value.

Examples
--------
>>> o = CollectiveOptions.from_mapping({"ranks": "0-3", "step_overhead": "1us"})
>>> o.ranks, o.step_overhead, o.backend
((0, 1, 2, 3), 1e-06, 'packet')
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from collectives.calibration import LIBRARIES
from collectives.hierarchical import parse_dims
from collectives.protocols import PROTOCOL_CHOICES
from netsim.core.engine import FORWARDING
from netsim.core.engine.routing import ROUTERS, parse_routing
from netsim.core.errors import ConfigError
from netsim.core.options import Options, option
from netsim.core.units import parse_bandwidth
from netsim.core.validate import require_int

__all__ = [
    "BACKENDS",
    "CollectiveOptions",
    "parse_matrix",
    "parse_max_segments",
    "parse_ranks",
    "parse_reduce_bandwidth",
]

#: Network models :func:`collectives.backends.make_backend` can make.
BACKENDS = ("packet", "analytical", "flow")

_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+))?\s*$")


def parse_ranks(value: Any, chips: int | None = None) -> list[int]:
    """Parse ``"0-7"``, ``"0-3,8-11"``, ``"0,2,4"`` or a sequence into distinct chip ids
    (each ``< chips`` when ``chips`` is given).

    Raises
    ------
    ConfigError
        A malformed list, a reversed range, a chip id out of range, or a repeated id.
    """
    if isinstance(value, str):
        out: list[int] = []
        for part in value.split(","):
            m = _RANGE.match(part)
            if not m:
                raise ConfigError(f"ranks: expected a list such as 0-7 or 0,2,4, got {value!r}")
            a, b = int(m[1]), int(m[2] if m[2] is not None else m[1])
            if b < a:
                raise ConfigError(f"ranks: range end must be >= start, got {part.strip()!r}")
            out.extend(range(a, b + 1))
    else:
        try:
            out = [require_int("ranks", r, min=0) for r in value]
        except TypeError:
            raise ConfigError(f"ranks: expected a list of chip ids, got {value!r}") from None
    bad = [r for r in out if chips is not None and r >= chips]
    if bad:
        raise ConfigError(f"ranks: chips are 0..{chips - 1} in this topology, got {bad[0]}")
    if len(set(out)) != len(out):
        raise ConfigError(f"ranks: must be distinct, got {value!r}")
    return out


def parse_matrix(value: Any) -> np.ndarray:
    """Parse an all-to-all matrix: an array, a file (``.npy``, ``.json``, or text/CSV with
    one row per line) or inline rows ``"0,4;4,0"`` (``;`` between rows, ``,`` within).

    Returns a 2-D array; :func:`collectives.direct.alltoall_matrix` checks the shape and the
    diagonal against the ranks.

    Raises
    ------
    ConfigError
        A missing or unreadable file, malformed rows, not 2-D, or an entry that is not a
        finite number.
    """
    if not isinstance(value, str | Path):
        return _finite_matrix(np.asarray(value), value)
    text = str(value).strip()
    path = Path(text)
    is_file = path.suffix.lower() in (".npy", ".json", ".csv", ".txt") or path.is_file()
    if is_file and not path.is_file():
        raise ConfigError(f"matrix: no such file, got {text!r}")
    try:
        if is_file:
            m = _read_matrix(path)
        else:
            rows = [r for r in text.split(";") if r.strip()]
            m = np.asarray([[float(x) for x in r.split(",")] for r in rows], dtype=float)
    except (ValueError, OSError) as exc:
        msg = " ".join(str(exc).split())
        raise ConfigError(
            f"matrix: expected rows such as '0,4;4,0' or a .npy/.json/.csv file, got {text!r} "
            f"({msg})"
        ) from None
    if m.ndim != 2:
        raise ConfigError(f"matrix: must be 2-D (one row per sending rank), got {text!r}")
    return _finite_matrix(m, text)


def _read_matrix(path: Path) -> np.ndarray:
    """The matrix in a ``.npy``, ``.json`` or CSV/text file (errors are the caller's)."""
    if path.suffix.lower() == ".npy":
        return np.load(path, allow_pickle=False)
    if path.suffix.lower() == ".json":
        return np.asarray(json.loads(path.read_text()), dtype=float)
    return np.loadtxt(path, delimiter=",", ndmin=2)


def _finite_matrix(m: np.ndarray, text: Any) -> np.ndarray:
    """``m`` if every entry is a finite number, else ConfigError (a NaN is not a count)."""
    try:
        finite = bool(np.all(np.isfinite(m.astype(float))))
    except (TypeError, ValueError):
        finite = False
    if not finite:
        raise ConfigError(f"matrix: every entry must be a finite number, got {text!r}")
    return m


def parse_reduce_bandwidth(value: Any, name: str = "reduce_bandwidth") -> float:
    """A local reduction bandwidth: bytes/s, ``"3.35TB/s"``, or a chip preset (its HBM).

    Raises
    ------
    ConfigError
        Neither a bandwidth nor a chip preset with an HBM tier.
    """
    try:
        return parse_bandwidth(value, name)
    except ConfigError:
        if not isinstance(value, str):
            raise
    from workloads.chips import chip

    try:
        return float(chip(value).tier("hbm").bandwidth)
    except ConfigError:
        raise ConfigError(
            f"{name}: expected a bandwidth (e.g. 3.35TB/s) or a chip preset with HBM, got {value!r}"
        ) from None


def parse_max_segments(value: Any, name: str = "max_segments") -> int | None:
    """``None`` or ``"none"`` (every real MTU packet), else an integer ``>= 1``."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    return require_int(name, value, min=1)


def _ranks_option(value: Any, name: str) -> tuple[int, ...]:
    return tuple(parse_ranks(value))


def _matrix_option(value: Any, name: str) -> tuple[tuple[Any, ...], ...]:
    # Rows of plain numbers (hashable, comparable); np.asarray gives the array back.
    return tuple(map(tuple, parse_matrix(value).tolist()))


@dataclasses.dataclass(frozen=True, kw_only=True)
class CollectiveOptions(Options):
    """Every option of one collective run (:func:`collectives.api.run_collective`).

    Attributes are the options below; ``None`` means "not set" (the library, topology or
    algorithm decides). Library costs left ``None`` take the library's value for the
    topology's link types (:func:`collectives.calibration.cost_model`).
    """

    ranks: tuple[int, ...] | None = option(
        None, kind=_ranks_option, help="chips taking part, e.g. 0-7 (default all)"
    )
    groups: int | None = option(
        None, kind="int", min=1, help="concurrent groups of this many ranks"
    )
    chunks: int | None = option(None, kind="int", help="pipeline chunks")
    channels: int | None = option(
        None,
        kind="int",
        help="ring/tree channels side by side (default: one per NIC of a node on multi-node "
        "systems, else 1)",
    )
    pxn: bool = option(
        False,
        kind="bool",
        help="ring: rail-matched inter-node sends through a proxy GPU on the receiver's rail",
    )
    root: int = option(0, kind="int", help="root rank (broadcast, reduce)")
    dims: tuple[int, ...] | None = option(
        None, kind=parse_dims, help="rank grid of --algo hierarchical or torus, e.g. 8x4"
    )
    matrix: tuple[tuple[Any, ...], ...] | None = option(
        None,
        kind=_matrix_option,
        help="alltoall per-pair element counts: rows '0,4;4,0' or a .npy/.json/.csv file "
        "(sets the size: its largest row sum)",
    )
    backend: str = option(
        "packet",
        choices=BACKENDS,
        help="packet engine, analytical (alpha-beta, no contention) or flow (links shared "
        "max-min fairly)",
    )
    forwarding: str | None = option(
        None, choices=FORWARDING, help="packet backend (default cut-through)"
    )
    routing: str = option(
        "auto",
        kind=parse_routing,
        help=f"route choice: auto (by topology family) or a registered routing ({', '.join(ROUTERS)})",
    )
    library: str = option(
        "nccl",
        choices=LIBRARIES,
        help="collective library costs: nccl = NCCL's launch, per-step cost, protocol "
        "efficiency and multipath for the topology's link types (as nccl-tests measures); "
        "none = hardware only",
    )
    protocol: str = option(
        "auto",
        choices=PROTOCOL_CHOICES,
        help="NCCL protocol (library nccl): auto = the one NCCL's tuner picks for the "
        "algorithm and size; LL, LL128 or Simple force it (as NCCL_PROTO does)",
    )
    step_overhead: float | None = option(
        None, kind="time", help="per-step software cost (e.g. 1us)"
    )
    launch_overhead: float | None = option(None, kind="time", help="cost before the first send")
    efficiency: float | None = option(None, kind="float", help="library payload fraction in (0, 1]")
    multipath: bool | None = option(
        None,
        kind="bool",
        help="stripe each message over all equal-cost routes (default by link type)",
    )
    reduce_bandwidth: float | None = option(
        None,
        kind=parse_reduce_bandwidth,
        help="local reduction bandwidth (e.g. 3.35TB/s) or a chip preset (its HBM bandwidth)",
    )
    max_segments: int | None = option(
        256,
        kind=parse_max_segments,
        help="packet engine: simulate a message as at most N packets ('none' = every real "
        "MTU packet)",
    )
    itemsize: int = option(4, kind="int", min=1, help="bytes per element")
    seed: int = option(0, kind="int", min=0, help="seeds routing choices and the check data")
    check: bool = option(False, kind="bool", help="verify the result on random data")
    estimate: bool = option(
        True, kind="bool", help="also compute the contention-free analytical estimate"
    )
    detail: bool = option(
        False, kind="bool", cli=False, help="also return every link's utilisation"
    )
    mtu: int | None = option(None, kind="size", cli=False, help="packet payload bytes")
    header: int | None = option(None, kind="size", cli=False, help="header bytes per packet")
    buffer: int | None = option(
        None, kind="size", cli=False, help="packet engine: input buffer per port"
    )

    def validate(self) -> None:
        """Refuse a forwarding mode with a backend that has none."""
        if self.backend != "packet" and self.forwarding is not None:
            raise ConfigError(
                f"forwarding: applies to the packet backend only, got {self.forwarding!r} "
                f"with the {self.backend} backend"
            )

    def algorithm_options(self) -> dict[str, Any]:
        """The options given to the algorithm's builder: ``dims``, ``channels``, ``pxn``
        when set (a builder refuses those it does not take)."""
        given = {"dims": self.dims, "channels": self.channels, "pxn": self.pxn or None}
        return {k: v for k, v in given.items() if v is not None}
