"""nccl-tests logs in and out: read the table ``all_reduce_perf`` and its siblings print,
and write simulated results in the same format.

`nccl-tests <https://github.com/NVIDIA/nccl-tests>`_ prints, per message size, one row::

    #       size         count      type   redop    root     time   algbw   busbw #wrong ...
    #        (B)    (elements)                               (us)  (GB/s)  (GB/s)        ...
         1048576        262144     float     sum      -1    22.15   47.34   82.85      0 ...

``size`` is the largest buffer of a rank in bytes (the gathered buffer of all-gather, the
input of reduce-scatter), ``count`` the per-rank element count the NCCL call takes (``size``
over the element size, and over the rank count for all-gather, reduce-scatter and
all-to-all), ``time`` the mean time of one operation in microseconds, ``algbw = size / time``
and ``busbw = algbw x`` the op's factor (nccl-tests doc/PERFORMANCE.md; the same factors
as :data:`collectives.algorithms.BUSBW_FACTOR`), both in GB/s = 1e9 bytes/s. The first
``time algbw busbw #wrong`` group is out-of-place, the second in-place. The log ends with
``# Avg bus bandwidth : X`` (the mean busbw of all rows, out- and in-place). These facts are
read from nccl-tests 2.19 (``src/util.cu``: ``writeResultHeader``,
``writeBenchmarkLinePreamble``, ``writeBenchmarkLineBody``; ``src/common.cu``: ``setupArgs``).

* :func:`parse_nccl_tests` / :func:`read_nccl_tests`: a log as a :class:`NcclTestsLog`.
  Comment lines (``#``, including the per-rank ``#  Rank  3 Group ...`` lines, which give
  the rank count), blank lines and NCCL debug lines (``NCCL INFO``/``WARN``) are skipped;
  in-place, per-iteration and timestamp columns are read by the column header; a line that
  is none of these is refused with its line number.
* :func:`format_nccl_tests`: results of :func:`collectives.run_collective` as an
  nccl-tests table (out-of-place columns; ``#wrong`` is 0 when the run was checked on data,
  ``N/A`` otherwise, as nccl-tests prints without validation).

* :func:`compare_nccl_tests`: simulate the sizes of a log on a topology and return, per row,
  measured and simulated time and busbw and their ratios (simulated / measured): how a user
  checks netsim against their own cluster (``netsim compare``).
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netsim._version import __version__
from netsim.core.errors import ConfigError
from netsim.core.validate import read_text

__all__ = [
    "NCCL_TESTS_PROGRAMS",
    "NcclTestsComparison",
    "NcclTestsLog",
    "NcclTestsRow",
    "compare_nccl_tests",
    "format_nccl_tests",
    "parse_nccl_tests",
    "read_nccl_tests",
]

#: nccl-tests program of each netsim op (``sendrecv_perf`` is a ring of sends over all ranks,
#: netsim's ``sendrecv`` one pair: the name is read, but the two are not the same test).
NCCL_TESTS_PROGRAMS: dict[str, str] = {
    "allreduce": "all_reduce_perf",
    "allgather": "all_gather_perf",
    "reduce_scatter": "reduce_scatter_perf",
    "alltoall": "alltoall_perf",
    "broadcast": "broadcast_perf",
    "reduce": "reduce_perf",
    "sendrecv": "sendrecv_perf",
}
_OPS_OF_PROGRAM = {v.removesuffix("_perf"): k for k, v in NCCL_TESTS_PROGRAMS.items()}
#: Bytes per element of nccl-tests' type names (``src/common.cu``: ``test_typenames``).
TYPE_SIZES = {
    "int8": 1, "uint8": 1, "char": 1, "f8e4m3": 1, "f8e5m2": 1,
    "half": 2, "bfloat16": 2,
    "int32": 4, "uint32": 4, "int": 4, "float": 4,
    "int64": 8, "uint64": 8, "double": 8,
}  # fmt: skip
_TYPE_OF_SIZE = {1: "int8", 2: "half", 4: "float", 8: "double"}
_REDUCING = ("allreduce", "reduce_scatter", "reduce")
_PER_RANK_COUNT = ("allgather", "reduce_scatter", "alltoall")
#: Largest nccl-tests log read, in bytes.
MAX_LOG_BYTES = 64 * 2**20
_DEBUG_RE = re.compile(r"\bNCCL (INFO|WARN|TRACE|ABORT)\b|^NCCL version\b")
_PROGRAM_RE = re.compile(r"\b([a-z_]+)_perf(?:_mpi)?\b")
_RANK_RE = re.compile(r"^#\s*Rank\s+(\d+)\s+Group\s+(\d+)\b")
_DEFAULT_COLUMNS = ("size", "count", "type", "redop", "root") + ("time", "algbw", "busbw",
                                                                  "#wrong") * 2  # fmt: skip


@dataclass(frozen=True, slots=True)
class NcclTestsRow:
    """One result row of an nccl-tests log (SI units: seconds, bytes/s).

    ``time_s``, ``algbw``, ``busbw`` and ``wrong`` are the first (out-of-place) group;
    ``inplace_*`` the second, ``None`` when the log has none. ``wrong`` is ``None`` for
    ``N/A`` (no validation). ``line`` is the 1-based line number in the log.
    """

    op: str | None
    size: int
    count: int
    type: str
    redop: str
    root: int
    time_s: float
    algbw: float
    busbw: float
    wrong: int | None
    inplace_time_s: float | None
    inplace_busbw: float | None
    line: int

    @property
    def itemsize(self) -> int:
        """Bytes per element of ``type`` (4 for a type nccl-tests does not name)."""
        return TYPE_SIZES.get(self.type, 4)


@dataclass(slots=True)
class NcclTestsLog:
    """The result rows of an nccl-tests log and what its header says.

    ``nranks`` is the number of distinct ``#  Rank N`` lines (``None`` without them);
    ``avg_busbw`` the ``# Avg bus bandwidth`` line in bytes/s (the last one, ``None``
    without it); ``programs`` the test programs named (``# Collective test starting:`` or a
    ``*_perf`` command line), in order.
    """

    rows: list[NcclTestsRow]
    nranks: int | None = None
    avg_busbw: float | None = None
    programs: list[str] = field(default_factory=list)
    source: str = "log"

    def ops(self) -> list[str | None]:
        """The ops of the rows, in order of first appearance."""
        return list(dict.fromkeys(r.op for r in self.rows))


def read_nccl_tests(path: str | os.PathLike[str], *, op: str | None = None) -> NcclTestsLog:
    """Read an nccl-tests log file (see :func:`parse_nccl_tests`)."""
    p = Path(path)
    text = read_text("log", p, MAX_LOG_BYTES)
    return parse_nccl_tests(text, op=op, source=str(path))


def parse_nccl_tests(text: str, *, op: str | None = None, source: str = "log") -> NcclTestsLog:
    """Parse the text an nccl-tests program printed.

    Parameters
    ----------
    text : str
        The log: stdout of ``all_reduce_perf`` and siblings (several tests one after the
        other are read too; each row takes the op of the last program named before it).
    op : str, optional
        The netsim op of rows whose program the log does not name (older logs lack the
        ``# Collective test starting:`` line).
    source : str
        Name used in error messages.

    Raises
    ------
    ConfigError
        A line that is not a comment, blank, NCCL debug output or a result row (the message
        names the line number), a log without rows, or an unknown program.

    Examples
    --------
    >>> log = parse_nccl_tests('''# Collective test starting: all_reduce_perf
    ... #  Rank  0 Group  0 Pid 1 on h device  0 [0000:07:00] GPU
    ... #  Rank  1 Group  0 Pid 1 on h device  1 [0000:0f:00] GPU
    ...      1048576        262144     float     sum      -1    20.00   52.43   52.43      0
    ... ''')
    >>> (log.nranks, log.rows[0].op, log.rows[0].time_s, log.rows[0].busbw)
    (2, 'allreduce', 2e-05, 52430000000.0)
    """
    state = _State(op, source)
    for number, raw in enumerate(text.splitlines(), start=1):
        state.line(number, raw.strip())
    if not state.rows:
        raise ConfigError(f"{source}: no nccl-tests result rows (lines 'size count type ...')")
    ranks = len(state.ranks) or None
    return NcclTestsLog(state.rows, ranks, state.avg_busbw, state.programs, source)


class _State:
    """What the parser knows so far: op, column layout, ranks and rows."""

    def __init__(self, op: str | None, source: str) -> None:
        self.op = op
        self.source = source
        self.columns: tuple[str, ...] = _DEFAULT_COLUMNS
        self.rows: list[NcclTestsRow] = []
        self.ranks: set[int] = set()
        self.avg_busbw: float | None = None
        self.programs: list[str] = []

    def line(self, number: int, line: str) -> None:
        if not line or _DEBUG_RE.search(line):
            return
        if line.startswith("#"):
            self.comment(line)
            return
        if self.program(line, number):  # the command line that ran the test
            return
        self.rows.append(self.row(line, number))

    def comment(self, line: str) -> None:
        body = line.lstrip("#").split()
        if body[:4] == ["size", "count", "type", "redop"]:  # older versions: no root
            self.columns = tuple("#wrong" if c == "error" else c for c in body)
            return
        m = _RANK_RE.match(line)
        if m:
            self.ranks.add(int(m[1]))
            return
        if line.lstrip("#").strip().startswith("Avg bus bandwidth"):
            value = line.split(":", 1)[-1].split()
            self.avg_busbw = float(value[0]) * 1e9 if value else None
            return
        if "Collective test starting" in line:
            self.program(line, 0)

    def program(self, line: str, number: int) -> bool:
        m = _PROGRAM_RE.search(line)
        if not m or (number and _looks_like_row(line)):
            return False
        name = m[1]
        if name not in _OPS_OF_PROGRAM:
            known = ", ".join(NCCL_TESTS_PROGRAMS.values())
            where = f"line {number}: " if number else ""
            raise ConfigError(
                f"{self.source}: {where}test {name}_perf is not one netsim simulates ({known})"
            )
        self.op = _OPS_OF_PROGRAM[name]
        self.programs.append(f"{name}_perf")
        return True

    def row(self, line: str, number: int) -> NcclTestsRow:
        cols = [c for c in self.columns if c != "timestamp"]
        tokens = line.split()
        try:
            first = cols.index("#wrong") + 1 if "#wrong" in cols else 9
            if len(tokens) < first or (len(tokens) < len(cols) and len(tokens) != first):
                raise ValueError(f"{len(tokens)} fields")
            return self._row(dict(_pairs(cols, tokens)), tokens, number)
        except ValueError as exc:
            raise ConfigError(
                f"{self.source}: line {number}: expected a comment or a result row 'size count "
                f"type redop root time algbw busbw #wrong ...', got {line[:70]!r} ({exc})"
            ) from None

    def _row(self, values: dict[str, list[str]], tokens: list[str], number: int) -> NcclTestsRow:
        time_key = "time" if "time" in values else "cputime"
        times, busbw = values[time_key], values["busbw"]
        size, count = int(tokens[0]), int(tokens[1])
        if size < 0 or count < 0:
            raise ValueError("negative size or count")
        if not re.fullmatch(r"[A-Za-z_][\w]*", tokens[2]):
            raise ValueError(f"type {tokens[2]!r}")
        t = _number(times[0]) / 1e6
        if not (math.isfinite(t) and t >= 0):
            raise ValueError(f"time {times[0]!r}")
        return NcclTestsRow(
            op=self.op,
            size=size,
            count=count,
            type=tokens[2],
            redop=tokens[3],
            root=int(values.get("root", ["-1"])[0]),
            time_s=t,
            algbw=_number(values["algbw"][0]) * 1e9,
            busbw=_number(busbw[0]) * 1e9,
            wrong=_wrong(values["#wrong"][0]),
            inplace_time_s=_number(times[1]) / 1e6 if len(times) > 1 else None,
            inplace_busbw=_number(busbw[1]) * 1e9 if len(busbw) > 1 else None,
            line=number,
        )


def _pairs(cols: Sequence[str], tokens: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, tok in zip(cols, tokens, strict=False):
        out.setdefault(name, []).append(tok)
    return out


def _looks_like_row(line: str) -> bool:
    tokens = line.split()
    return len(tokens) >= 9 and tokens[0].isdigit() and tokens[1].isdigit()


def _number(text: str) -> float:
    return float(text)  # ValueError names the text


def _wrong(text: str) -> int | None:
    return None if text == "N/A" else int(float(text))


def _float_str(value: float, width: int) -> str:
    """A number in ``width`` characters as nccl-tests prints it (``getFloatStr``)."""
    for fmt in (".2f", ".1f", ".0f"):
        s = f"{value:{width}{fmt}}"
        if len(s) <= width:
            return s
    return f"{value:{width}.1e}" if width >= 7 else f"{value:{width}.0e}"


def _count(r: dict[str, Any]) -> int:
    """The per-rank element count nccl-tests prints for a netsim result ``r``."""
    n = r["group_size"] if r["op"] in _PER_RANK_COUNT else 1
    return r["size"] // r["itemsize"] // max(1, n)


def format_nccl_tests(results: Sequence[dict[str, Any]]) -> str:
    """Results of :func:`collectives.run_collective` (one op, one algorithm) as the text an
    nccl-tests program prints: header comments, one row per size (out-of-place columns:
    size, count, type, redop, root, time in us, algbw and busbw in GB/s, #wrong) and the
    ``# Avg bus bandwidth`` footer.

    The header says that netsim simulated the table (model, topology, algorithm, library),
    lists the ranks as ``#  Rank`` lines (``device`` = chip number) and reads back with
    :func:`parse_nccl_tests`.

    Raises
    ------
    ConfigError
        No results, or results of several ops, algorithms or rank sets.
    """
    if not results:
        raise ConfigError("results: nothing to format")
    r0 = results[0]
    for key in ("op", "algo_requested" if "algo_requested" in r0 else "algo", "topo", "ranks"):
        if any(r.get(key) != r0.get(key) for r in results):
            raise ConfigError(f"format: an nccl-tests table has one {key}, got several")
    ran = ", ".join(dict.fromkeys(r["algo"] for r in results))
    algo = r0.get("algo_requested", r0["algo"])
    algo = ran if algo == ran else f"{algo} (ran {ran})"
    program = NCCL_TESTS_PROGRAMS[r0["op"]]
    sizes = [r["size"] for r in results]
    lines = [
        f"# netsim {__version__}: simulated {program}, {r0['op']} by {algo} on "
        f"{r0['topo']} (model {r0['network_model']}, library {r0.get('library', 'nccl')}, "
        f"seed {r0['seed']})",
        f"# Collective test starting: {program}",
        f"# nThread 1 nGpus {len(r0['ranks'])} minBytes {min(sizes)} maxBytes {max(sizes)} "
        f"step: {_step(sizes)} warmup iters: 0 iters: 1 agg iters: 1 validation: "
        f"{int(bool(r0['check']))} graph: 0",
        "#",
        "# Using devices",
    ]
    k = r0["group_size"]
    for i, chip in enumerate(r0["ranks"]):
        lines.append(
            f"#  Rank {i:2d} Group {i // k:2d} Pid {0:6d} on {'netsim':>10s} device "
            f"{chip:2d} [0000:00:00] simulated chip {chip}"
        )
    pad = f"# {'':>10s}  {'':>12s}  {'':>8s}  {'':>6s}  {'':>6s}"
    lines += [
        "#",
        f"{pad}           out-of-place",
        f"# {'size':>10s}  {'count':>12s}  {'type':>8s}  {'redop':>6s}  {'root':>6s}  "
        f"{'time':>7s}  {'algbw':>6s}  {'busbw':>6s}  {'#wrong':>6s}",
        f"# {'(B)':>10s}  {'(elements)':>12s}  {'':>8s}  {'':>6s}  {'':>6s}  "
        f"{'(us)':>7s}  {'(GB/s)':>6s}  {'(GB/s)':>6s}  {'':>6s}",
    ]
    lines += [_format_row(r) for r in results]
    bus = [r["busbw"] for r in results if math.isfinite(r["busbw"])]
    avg = sum(bus) / len(bus) / 1e9 if bus else 0.0
    ok = "OK" if all(r["check"] is not False for r in results) else "FAILED"
    lines += [
        f"# {'Out of bounds values':<20s} : 0 {ok}",
        f"# {'Avg bus bandwidth':<20s} : {avg:g} ",
        "#",
        f"# Collective test concluded: {program}",
    ]
    return "\n".join(lines) + "\n"


def _format_row(r: dict[str, Any]) -> str:
    op = r["op"]
    ctype = _TYPE_OF_SIZE.get(r["itemsize"], f"x{r['itemsize']}B")
    redop = "sum" if op in _REDUCING else "none"
    root = r["root"] if op in ("broadcast", "reduce") else -1
    wrong = f"{0:6g}" if r["check"] else "   N/A"
    return (
        f"{r['size']:12d}  {_count(r):12d}  {ctype:>8s}  {redop:>6s}  {root:6d}  "
        f"{_float_str(r['time_s'] * 1e6, 7)}  {_float_str(r['algbw'] / 1e9, 6)}  "
        f"{_float_str(r['busbw'] / 1e9, 6)}  {wrong}"
    )


def _step(sizes: Sequence[int]) -> str:
    """nccl-tests' ``step:`` field: a factor if the sizes grow geometrically, else bytes."""
    if len(sizes) < 2 or sizes[0] <= 0:
        return "0(bytes)"
    ratio = sizes[1] / sizes[0]
    if (
        ratio > 1
        and ratio.is_integer()
        and all(b == a * ratio for a, b in itertools.pairwise(sizes))
    ):
        return f"{int(ratio)}(factor)"
    return f"{sizes[1] - sizes[0]}(bytes)"


@dataclass(slots=True)
class NcclTestsComparison:
    """Measured (an nccl-tests log) against simulated, one row per log row.

    ``rows``: dicts with ``op, size, count, type, line, measured_time_s, measured_busbw,
    simulated_time_s, simulated_busbw, time_ratio, busbw_ratio`` (ratios are simulated /
    measured; ``nan`` where the measured value is 0). ``meta``: ``topo, algo, network_model,
    library, backend, nranks, ranks`` (the chips simulated), ``ranks_from`` (how the rank
    count was found) and ``source`` (the log).
    """

    rows: list[dict[str, Any]]
    meta: dict[str, Any]


def compare_nccl_tests(
    log: NcclTestsLog | str | os.PathLike[str],
    topo: str,
    *,
    op: str | None = None,
    algo: str | None = None,
    ranks: Any = None,
    backend: str = "packet",
    library: str = "nccl",
    **options: Any,
) -> NcclTestsComparison:
    """Simulate every size of an nccl-tests log on ``topo`` and compare.

    Parameters
    ----------
    log : NcclTestsLog or path
        The measurement (:func:`read_nccl_tests`).
    topo : str
        Topology spec or preset the log's cluster is modelled by.
    op : str, optional
        netsim op of rows whose program the log does not name.
    algo : str, optional
        Algorithm (default ``"auto"``: the one NCCL's tuner picks, as ``netsim collective``;
        each row says which ran).
    ranks : str or sequence, optional
        Chips simulated. Default: the first ``nranks`` chips of the topology, ``nranks`` from
        the log's ``#  Rank`` lines, else inferred from busbw/algbw of its largest row, else
        every chip.
    backend, library, **options
        Passed to :func:`collectives.run_collective` (``library`` defaults to ``"nccl"``: the
        log is NCCL's).

    Raises
    ------
    ConfigError
        Rows without an op, an op netsim cannot compare (``sendrecv``), more ranks in the log
        than chips in the topology, or bad simulation options.
    """
    from collectives.api import run_collective
    from topologies.registry import build

    if not isinstance(log, NcclTestsLog):
        log = read_nccl_tests(log, op=op)
    rows = [r if r.op is not None or op is None else _with_op(r, op) for r in log.rows]
    if any(r.op is None for r in rows):
        raise ConfigError(
            f"op: {log.source} does not name its test (no '# Collective test starting:' line "
            "or *_perf command); give op (--op)"
        )
    if any(r.op == "sendrecv" for r in rows):
        raise ConfigError(
            "op: sendrecv_perf sends around a ring of all ranks, netsim's sendrecv is one pair; "
            "they cannot be compared"
        )
    graph = build(topo)
    chips = sum(1 for _, k in graph.nodes(data="kind") if k == "chip")
    nranks, ranks_from = _nranks(log, rows)
    if ranks is None and nranks is not None:
        if nranks > chips:
            raise ConfigError(
                f"topo: the log has {nranks} ranks ({ranks_from}), {topo!r} has {chips} chips"
            )
        ranks = f"0-{nranks - 1}"
    elif ranks is None:
        ranks_from = f"not in the log: every chip of {topo!r}"
    else:
        ranks_from = "given"
    sims: dict[tuple, dict[str, Any]] = {}
    out = []
    for r in rows:
        a = algo if algo is not None else "auto"
        root = r.root if r.op in ("broadcast", "reduce") and r.root >= 0 else 0
        key = (r.op, a, r.size, r.itemsize, root)
        if key not in sims:
            sims[key] = run_collective(
                graph, r.op, a, r.size, ranks=ranks, root=root, itemsize=r.itemsize,
                backend=backend, library=library, **options,
            )  # fmt: skip
        out.append(_compared(r, sims[key]))
    s0 = next(iter(sims.values()))
    meta = {
        "source": log.source,
        "topo": topo,
        "algo": sorted({s["algo"] for s in sims.values()}),
        "ops": sorted({s["op"] for s in sims.values()}),
        "network_model": s0["network_model"],
        "backend": backend,
        "library": library,
        "nranks": len(s0["ranks"]),
        "ranks": s0["ranks"],
        "ranks_from": ranks_from,
        "seed": s0["seed"],
    }
    return NcclTestsComparison(out, meta)


def _with_op(r: NcclTestsRow, op: str) -> NcclTestsRow:
    from dataclasses import replace

    from collectives.schedule import OPS

    if op not in OPS:
        raise ConfigError(f"op: must be one of {', '.join(OPS)}, got {op!r}")
    return replace(r, op=op)


def _nranks(log: NcclTestsLog, rows: Sequence[NcclTestsRow]) -> tuple[int | None, str]:
    """The log's rank count and where it came from (``#  Rank`` lines or busbw/algbw)."""
    if log.nranks is not None:
        return log.nranks, "'#  Rank' lines"
    from collectives.algorithms import busbw_factor

    best = max(rows, key=lambda r: r.algbw)
    if best.algbw < 1e9 or best.op in ("broadcast", "reduce", "sendrecv"):
        return None, ""  # two decimals of GB/s: too few digits to read the factor from
    ratio = best.busbw / best.algbw
    n = next((n for n in range(2, 1 << 16) if busbw_factor(best.op, n) >= ratio - 0.005), None)
    if n is None or abs(busbw_factor(best.op, n) - ratio) > 0.01:
        return None, ""
    return n, f"inferred from busbw/algbw = {ratio:.3f} on line {best.line}"


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def _compared(r: NcclTestsRow, sim: dict[str, Any]) -> dict[str, Any]:
    return {
        "op": r.op,
        "algo": sim["algo"],
        "size": r.size,
        "count": r.count,
        "type": r.type,
        "line": r.line,
        "measured_time_s": r.time_s,
        "measured_busbw": r.busbw,
        "simulated_time_s": sim["time_s"],
        "simulated_busbw": sim["busbw"],
        "time_ratio": _ratio(sim["time_s"], r.time_s),
        "busbw_ratio": _ratio(sim["busbw"], r.busbw),
    }
