"""Bad input never gives a traceback, a hang or a silent wrong answer.

Every command runs in-process on the table :data:`CASES` of bad inputs and must end with
exit code 2 and one ``error: ...`` line naming the problem, within :data:`TIME_BOUND`
seconds. Inputs that would need a lot of memory if they were not refused run in a
subprocess under an address-space limit (:data:`MEMORY_CASES`). Hypothesis adds generated
unit strings, topology specs and YAML sweep specs.

To add a case, add a row to a table: ``(id, argv, needle)``; ``{tmp}`` in an argument is the
test's temporary directory, which holds the files of :func:`_files`.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netsim.app.cli import main
from netsim.app.results import ResultsWriter
from netsim.app.sweep import load_spec
from netsim.core.errors import NetsimError
from netsim.core.units import parse_bandwidth, parse_size, parse_time

ROOT = Path(__file__).resolve().parents[1]
#: Seconds any one case may take (a refusal takes well under one; a hang is the failure).
TIME_BOUND = 60
#: Address-space limit of the memory cases, bytes (the interpreter with numpy, h5py and
#: simpy loaded uses well under 1 GB of it).
MEMORY_BOUND = 3 * 2**30


def _alias_bomb(levels: int = 9) -> str:
    """A YAML "billion laughs": each anchor is a list of nine aliases of the previous one."""
    lines = ["kind: probe", "description:", '  - &a0 ["lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"  - &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join([*lines, "fixed:", f"  y: *a{levels - 1}", "sweep:", "  x: [1, 2]", ""])


def _files(tmp: Path) -> None:
    """The input files the cases refer to, in ``tmp``."""
    (tmp / "afile").write_text("not a directory\n")
    (tmp / "binary.yaml").write_bytes(b"\x00\x01\x02kind: probe\xff\xfe\x00")
    (tmp / "bomb.yaml").write_text(_alias_bomb())
    (tmp / "bigaxis.yaml").write_text('kind: probe\nsweep:\n  x: {ints: "1:1000000000:+1"}\n')
    axes = {k: {"ints": "1:1000:+1"} for k in "abc"}
    (tmp / "product.yaml").write_text(yaml.safe_dump({"kind": "probe", "sweep": axes}))
    (tmp / "zen.yaml").write_text('kind: "this:x"\nsweep:\n  x: [1]\n')
    (tmp / "probe.yaml").write_text("kind: probe\nsweep:\n  x: [1, 2]\n")
    (tmp / "other.yaml").write_text("kind: probe\nsweep:\n  x: [3, 4]\n")
    with h5py.File(tmp / "norecords.h5", "w") as f:
        f.attrs["format"] = "netsim-results/1"
    recs = [  # "rec": a column of records (JSON objects); "gone": no value in any point
        {"point_id": f"p{i}", "kind": "probe", "params": {"x": i}, "seed": 0, "repetition": 0,
         "metrics": {"u": 0.5 * i, "rec": [{"name": "tp", "a": i}], "gone": None}, "wall_s": 0.0,
         "error": None}
        for i in range(3)
    ]  # fmt: skip
    with ResultsWriter(tmp / "probe.h5", "kind: probe\n") as w:
        for r in recs:
            w.add(r)


T2 = "torus:dims=2x2"
NAN_MATRIX = "0,nan,1,1;3,0,1,1;1,1,0,1;1,1,1,0"
A = ("--backend", "analytical")

#: (id, argv, needle): exit 2 and one error line that contains ``needle``.
CASES = [
    # outputs that cannot be written, refused before the work
    ("topo-plot-parent-file", ["topo", T2, "--plot", "{tmp}/afile/x.png"], "not a directory"),
    ("topo-plot-readonly", ["topo", T2, "--plot", "/proc/netsim/x.png"], "cannot write"),
    ("topo-plot-ext", ["topo", T2, "--plot", "{tmp}/x.txt"], "extension"),
    (
        "collective-plot-ext",
        ["collective", "--topo", T2, "--sizes", "1KiB:4KiB:x2", "--plot", "{tmp}/x.txt", *A],
        "extension",
    ),
    (
        "collective-plot-parent-file",
        ["collective", "--topo", T2, "--sizes", "1KiB,2KiB", "--plot", "{tmp}/afile/x.png", *A],
        "not a directory",
    ),
    ("sweep-out-parent-file", ["sweep", "{tmp}/probe.yaml", "--out", "{tmp}/afile/r.h5"], "afile"),
    ("sweep-out-readonly", ["sweep", "{tmp}/probe.yaml", "--out", "/proc/r.h5"], "cannot write"),
    ("quickstart-out-file", ["quickstart", "--out", "{tmp}/afile"], "must be a directory"),
    ("quickstart-out-parent", ["quickstart", "--out", "{tmp}/afile/q"], "not a directory"),
    # numbers: the real rule, not argparse's "expected one argument"; overflow said so
    ("size-negative", ["collective", "--topo", T2, "--size", "-1B", *A], "must be >= 0"),
    ("size-overflow", ["collective", "--topo", T2, "--size", "1e400GB", *A], "overflows"),
    ("load-negative", ["traffic", "--topo", T2, "--load", "-0.5"], "load"),
    # traffic: empty or endless curves, endless runs
    ("loads-empty", ["traffic", "--topo", T2, "--loads", ""], "loads"),
    ("loads-tiny-step", ["traffic", "--topo", T2, "--loads", "0.1:0.9:1e-9"], "MAX_RANGE_VALUES"),
    ("loads-nan", ["traffic", "--topo", T2, "--loads", "nan"], "loads"),
    ("loads-too-many", ["traffic", "--topo", T2, "--loads", "0.001:0.9:0.001"], "MAX_LOADS"),
    ("packets-huge", ["traffic", "--topo", T2, "--packets", "1000000000000"], "MAX_PACKETS"),
    (
        "matrix-nan",
        ["collective", "--topo", T2, "--op", "alltoall", "--matrix", NAN_MATRIX, *A],
        "finite",
    ),
    # work beyond stated limits: refused with the limit's name
    ("topo-2^21-chips", ["topo", "torus:dims=2048x1024"], "MAX_GRID_CHIPS"),
    ("topo-wafer-2^20-tiles", ["topo", "wafer:dies=1024x1024"], "65536"),
    ("topo-fat-tree-k128", ["topo", "fat_tree:k=128"], "MAX_CHIPS"),
    ("topo-nvswitch-huge", ["topo", "nvswitch:gpus=1000000"], "MAX_CHIPS"),
    (
        "size-1TiB-every-packet",
        ["collective", "--topo", T2, "--size", "1TiB", "--max-segments", "none"],
        "MAX_MESSAGE_PACKETS",
    ),
    (
        "sizes-tiny-factor",
        ["collective", "--topo", T2, "--sizes", "1B:1TiB:x1.0000001", *A],
        "MAX_RANGE_VALUES",
    ),
    (
        "chunks-huge",
        [
            "collective",
            "--topo",
            T2,
            "--size",
            "1MiB",
            "--algo",
            "ring",
            "--chunks",
            "1000000000",
            *A,
        ],
        "MAX_CHUNKS",
    ),
    ("compare-binary-log", ["compare", "{tmp}/binary.yaml", "--topo", T2], "not a text file"),
    ("compare-endless-log", ["compare", "/dev/zero", "--topo", T2], "file larger than"),
    # sweep specs
    ("spec-binary", ["sweep", "{tmp}/binary.yaml", "--out", "{tmp}/r.h5"], "not a text file"),
    ("spec-alias-bomb", ["sweep", "{tmp}/bomb.yaml", "--out", "{tmp}/r.h5"], "alias"),
    ("spec-big-axis", ["sweep", "{tmp}/bigaxis.yaml", "--out", "{tmp}/r.h5"], "1000000000 values"),
    (
        "spec-big-axis-dry",
        ["sweep", "{tmp}/bigaxis.yaml", "--out", "{tmp}/r.h5", "--dry-run"],
        "1000000000 values",
    ),
    ("spec-product", ["sweep", "{tmp}/product.yaml", "--out", "{tmp}/r.h5"], "1000000000 points"),
    (
        "spec-product-dry",
        ["sweep", "{tmp}/product.yaml", "--out", "{tmp}/r.h5", "--dry-run"],
        "1000000000 points",
    ),
    ("spec-import-kind", ["sweep", "{tmp}/zen.yaml", "--out", "{tmp}/r.h5"], "kind: must be"),
    (
        "sweep-workers",
        ["sweep", "{tmp}/probe.yaml", "--out", "{tmp}/r.h5", "--workers", "100000"],
        "per CPU",
    ),
    (
        "plot-hue-unknown",
        ["plot", "{tmp}/probe.h5", "--y", "u", "--hue", "nope", "--out", "{tmp}/p.png"],
        "no column 'nope'",
    ),
    (
        "plot-col-unknown",
        ["plot", "{tmp}/probe.h5", "--y", "u", "--col", "nope", "--out", "{tmp}/p.png"],
        "no column 'nope'",
    ),
    ("plot-y-records", ["plot", "{tmp}/probe.h5", "--y", "rec", "--out", "{tmp}/p.png"], "records"),
    ("plot-y-empty", ["plot", "{tmp}/probe.h5", "--y", "gone", "--out", "{tmp}/p.png"], "empty"),
    (
        "plot-out-parent-file",
        ["plot", "{tmp}/probe.h5", "--y", "u", "--out", "{tmp}/afile/p.png"],
        "out",
    ),
    (
        "results-no-records",
        ["plot", "{tmp}/norecords.h5", "--y", "u", "--out", "{tmp}/p.png"],
        "no records",
    ),
]


@contextlib.contextmanager
def _time_bound(seconds: int):
    """Fail the test (instead of hanging) if the body takes longer than ``seconds``."""

    def expired(signum, frame):
        raise TimeoutError(f"took longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """Run ``netsim ARGV`` in-process within TIME_BOUND; return (code, stdout, stderr)."""
    with _time_bound(TIME_BOUND):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    out, err = capsys.readouterr()
    return int(code or 0), out, err


def assert_refused(code: int, err: str, needle: str) -> None:
    """Exit 2, no traceback, one ``error:`` line that contains ``needle``."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert needle in lines[0], lines[0]


@pytest.mark.parametrize(("argv", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(argv, needle, tmp_path, capsys):
    _files(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, _, err = run_cli(argv, capsys)
    assert_refused(code, err, needle)
    assert not (tmp_path / "r.h5").exists()  # refused before any results file was made


def test_utf16_spec_with_byte_order_mark_is_read(tmp_path, capsys):
    spec = tmp_path / "u16.yaml"
    spec.write_text("kind: probe\nsweep:\n  x: [1, 2, 3]\n", encoding="utf-16")
    code, out, err = run_cli(
        ["sweep", str(spec), "--out", str(tmp_path / "r.h5"), "--dry-run"], capsys
    )
    assert (code, err) == (0, "")
    assert out.startswith("3 points")


def test_results_of_another_spec_are_refused_unless_appended(tmp_path, capsys):
    _files(tmp_path)
    out = str(tmp_path / "r.h5")
    base = ["--out", out, "--workers", "1", "--no-progress"]
    assert run_cli(["sweep", str(tmp_path / "probe.yaml"), *base], capsys)[0] == 0
    assert run_cli(["sweep", str(tmp_path / "probe.yaml"), *base], capsys)[0] == 0  # resume
    same = tmp_path / "same.yaml"  # the same spec with a comment and another layout
    same.write_text("# the probe again\nsweep: {x: [1, 2]}\nkind: probe\n")
    assert run_cli(["sweep", str(same), *base], capsys)[0] == 0
    code, _, err = run_cli(["sweep", str(tmp_path / "other.yaml"), *base], capsys)
    assert_refused(code, err, "different spec")
    code, out_text, _ = run_cli(["sweep", str(tmp_path / "other.yaml"), *base, "--append"], capsys)
    assert code == 0 and "2 points run" in out_text


# --------------------------------------------------------------------------- scheduler


@contextlib.contextmanager
def _listener(reply: bytes):
    """A TCP listener on 127.0.0.1 that is not Dask: it accepts and sends ``reply``."""
    srv = socket.create_server(("127.0.0.1", 0))
    conns = []

    def serve():
        with contextlib.suppress(OSError):
            while True:
                c, _ = srv.accept()
                conns.append(c)
                if reply:
                    c.sendall(reply)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"tcp://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        srv.close()
        for c in conns:
            c.close()


@pytest.mark.parametrize("reply", [b"", b"HTTP/1.1 200 OK\r\n\r\n" * 64], ids=["silent", "http"])
def test_scheduler_that_is_not_dask_is_refused_in_bounded_time(
    reply, tmp_path, capsys, monkeypatch
):
    import netsim.app.sweep as sweep_module

    monkeypatch.setattr(sweep_module, "CONNECT_TIMEOUT", 1.0)
    _files(tmp_path)
    with _listener(reply) as address:
        argv = ["sweep", str(tmp_path / "probe.yaml"), "--out", str(tmp_path / "r.h5")]
        code, _, err = run_cli([*argv, "--scheduler", address], capsys)
    assert_refused(code, err, f"cannot connect to {address!r}")
    assert not (tmp_path / "r.h5").exists()


# --------------------------------------------------------------------------- memory

#: (id, argv, needle): as CASES, run in a subprocess under MEMORY_BOUND.
LLAMA8 = ["decode", "--model", "llama3-8b", "--chip", "h100", "--topo", "dgx-h100", "--tp", "8", *A]
MEMORY_CASES = [
    (
        "spec-long-list",
        ["sweep", "{tmp}/flat.yaml", "--out", "{tmp}/r.h5", "--dry-run"],
        "MAX_YAML_NODES",
    ),
    (
        "decode-tokens",
        [*LLAMA8, "--stragglers", "exp:1us", "--tokens", "1000000000"],
        "MAX_DRAWS",
    ),
    (
        "train-bucket",
        ["train", *LLAMA8[1:], "--bucket", "1B"],
        "MAX_BUCKETS",
    ),
    (
        "sweep-big-axis",
        ["sweep", "{tmp}/bigaxis.yaml", "--out", "{tmp}/r.h5", "--dry-run"],
        "values",
    ),
    (
        "sweep-product",
        ["sweep", "{tmp}/product.yaml", "--out", "{tmp}/r.h5", "--dry-run"],
        "points",
    ),
]


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BOUND, MEMORY_BOUND))


@pytest.mark.parametrize(
    ("argv", "needle"), [c[1:] for c in MEMORY_CASES], ids=[c[0] for c in MEMORY_CASES]
)
def test_memory_blowups_are_refused_under_a_memory_limit(argv, needle, tmp_path):
    _files(tmp_path)
    # 10 MB of one YAML list (five million values): refused after MAX_YAML_NODES of them
    (tmp_path / "flat.yaml").write_text("kind: probe\nsweep:\n  x: [" + "1," * 5_000_000 + "1]\n")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "netsim", *argv],
        capture_output=True,
        text=True,
        timeout=TIME_BOUND,
        env=env,
        preexec_fn=_limit_memory,
    )
    assert_refused(proc.returncode, proc.stderr, needle)


# --------------------------------------------------------------------------- hypothesis

#: ``NETSIM_FUZZ_EXAMPLES=5000`` runs a longer, random (not derandomized) search locally.
_EXAMPLES = int(os.environ.get("NETSIM_FUZZ_EXAMPLES", "0"))
_FUZZ = settings(
    max_examples=_EXAMPLES or 150,
    deadline=None,
    derandomize=not _EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
_UNIT_TEXT = st.text(alphabet="0123456789.eE+-_ kKMGTPiBbpsu/µnmFLOPS", max_size=16)


@_FUZZ
@given(_UNIT_TEXT)
def test_unit_strings_parse_or_refuse(text):
    for parse in (parse_size, parse_bandwidth, parse_time):
        try:
            x = parse(text)
        except NetsimError:
            continue
        assert x >= 0 and x == x and x != float("inf")


_YAML_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(["probe", "topo", "1:9:+1", "1KiB:4KiB:x2", "0.1:0.9:0.2", "this:x"]),
)
_YAML_VALUES = st.recursive(
    _YAML_SCALARS,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4),
        st.dictionaries(
            st.sampled_from(["ints", "sizes", "floats", "x", "seed", "kind", "sweep", "mode"]),
            kids,
            max_size=3,
        ),
    ),
    max_leaves=12,
)
_SPECS = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.one_of(st.just("probe"), _YAML_SCALARS),
        "sweep": st.one_of(_YAML_VALUES, st.dictionaries(st.text(max_size=4), _YAML_VALUES)),
        "fixed": _YAML_VALUES,
        "mode": st.sampled_from(["product", "zip", "diagonal"]),
        "seeds": _YAML_VALUES,
        "repetitions": _YAML_SCALARS,
        "extra": _YAML_SCALARS,
    },
)


@_FUZZ
@given(_SPECS)
def test_generated_sweep_specs_load_or_refuse(spec):
    text = yaml.safe_dump(spec) + "\n"
    try:
        sp = load_spec(text)
    except NetsimError:
        return
    assert len(sp.points()) <= sp.count()


@_FUZZ
@given(
    st.sampled_from(["torus", "mesh", "tree", "fat_tree", "dragonfly", "wafer", "hierarchical"]),
    st.lists(
        st.tuples(
            st.sampled_from(
                ["dims", "k", "n", "a", "p", "h", "g", "nodes", "dies", "bandwidth", "x"]
            ),
            st.one_of(
                st.integers(min_value=-3, max_value=6).map(str),
                st.sampled_from(["2x2", "3x0", "1e400", "nan", "-1", "2x2x2", "", "fast"]),
            ),
        ),
        max_size=3,
    ),
)
def test_generated_topology_specs_build_or_refuse(family, params):
    from topologies.registry import build

    spec = family + (":" + ",".join(f"{k}={v}" for k, v in params) if params else "")
    with _time_bound(TIME_BOUND):
        try:
            G = build(spec)
        except NetsimError:
            return
    assert G.number_of_nodes() > 0


# --------------------------------------------------------------------------- processes


def _alive_children(pid: int) -> set[int]:
    """Live (not zombie) processes whose parent is ``pid``, from /proc."""
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                out.add(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_pool_workers_exit_when_the_driver_is_killed(tmp_path):
    spec = tmp_path / "slow.yaml"
    slow = {"kind": "probe", "fixed": {"delay": "50ms"}, "sweep": {"x": {"ints": "1:400:+1"}}}
    spec.write_text(yaml.safe_dump(slow))
    argv = ["sweep", str(spec), "--out", str(tmp_path / "r.h5"), "--workers", "2", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "netsim", *argv], env=env, cwd=tmp_path)
    workers: set[int] = set()
    try:
        with _time_bound(TIME_BOUND):
            while len(workers) < 2 or not (tmp_path / "r.h5").exists():
                workers |= _alive_children(proc.pid)
                time.sleep(0.05)
            proc.kill()  # kill -9 of the driver only: its workers are not signalled
            proc.wait()
            # PARENT_POLL_S is 0.5 s: the watchdogs end the workers in about that time
            while any(_alive(w) for w in workers):
                time.sleep(0.05)
    finally:
        for w in workers:  # only if the test failed: leave nothing behind
            if _alive(w):
                os.kill(w, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not any(_alive(w) for w in workers)


def test_moe_load_weights_near_overflow_are_normalised():
    from workloads.moe import parse_routing

    # the sum of two 1e308 weights overflows a float: normalising by the largest first
    # gives the exact halves (and no RuntimeWarning, which pytest would turn into an error
    # under -W error)
    assert parse_routing("load:1e308,1e308").load == (0.5, 0.5)
    assert parse_routing("load:1e308,0").load == (1.0, 0.0)


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (MemoryError(), "error: out of memory"),
        (
            OSError(28, "No space left on device", "/x/r.h5"),
            "error: No space left on device: /x/r.h5",
        ),
    ],
)
def test_environment_errors_are_one_line_and_exit_1(exc, line, monkeypatch, capsys):
    import netsim.app.commands.topo as topo_command

    def fail(args):
        raise exc

    monkeypatch.setattr(topo_command, "_run", fail)
    code, _, err = run_cli(["topo", T2], capsys)
    assert code == 1 and err.startswith(line) and err.count("\n") == 1


_SPEC_TEXT = st.text(alphabet="abcdefghiklmnoprstuwxyz0123456789.:,+-=_ eEµ", max_size=24)


@_FUZZ
@given(_SPEC_TEXT, st.sampled_from(["uniform", "zipf:", "load:", "chip:", "exp:", "h100:", ""]))
def test_generated_option_strings_parse_or_refuse(text, prefix):
    """The small languages of the options: stragglers, straggler policy, MoE routing, chip
    specs, rank lists, matrices and size ranges."""
    from collectives.options import parse_matrix, parse_ranks
    from netsim.core.units import parse_float_range, parse_size_range
    from workloads.chips import chip
    from workloads.moe import parse_routing
    from workloads.stragglers import parse_policy, parse_stragglers

    s = prefix + text
    parsers = [
        parse_stragglers,
        parse_policy,
        parse_routing,
        chip,
        lambda v: parse_ranks(v, 8),
        parse_matrix,
        parse_size_range,
        parse_float_range,
    ]
    with _time_bound(TIME_BOUND):
        for parse in parsers:
            with contextlib.suppress(NetsimError):
                parse(s)
