"""nccl-tests logs in and out (netsim.app.nccltests, ``collective --format nccl-tests``,
``netsim compare``).

The hand-written logs below follow the layout nccl-tests 2.x prints (src/util.cu:
writeDeviceReport, writeResultHeader, writeBenchmarkLinePreamble/Body, writeResultFooter):
header comments, one ``#  Rank`` line per GPU, a column header, rows with out-of-place and
in-place groups, and the footer. The numbers are made up but consistent with nccl-tests'
definitions (algbw = size / time, busbw = algbw * 2(n-1)/n for all-reduce).
"""

from __future__ import annotations

import json

import pytest

from netsim.app.cli import main
from netsim.app.nccltests import (
    compare_nccl_tests,
    format_nccl_tests,
    parse_nccl_tests,
    read_nccl_tests,
)
from netsim.core.errors import ConfigError

RANKS4 = "".join(
    f"#  Rank {i:2d} Group  0 Pid  40914 on    node001 device {i:2d} [0000:{i:02x}:00] "
    "NVIDIA H100 80GB HBM3\n"
    for i in range(4)
)

ALL_REDUCE_LOG = (
    "$ mpirun -np 4 ./build/all_reduce_perf -b 8 -e 16M -f 64 -g 1\n"
    "# nThread 1 nGpus 1 minBytes 8 maxBytes 16777216 step: 64(factor) warmup iters: 5 "
    "iters: 20 agg iters: 1 validation: 1 graph: 0\n"
    "#\n"
    "# Using devices\n" + RANKS4 + "node001:40914:40914 [0] NCCL INFO Bootstrap : Using eth0\n"
    "#\n"
    "#                                                              out-of-place"
    "                       in-place          \n"
    "#       size         count      type   redop    root     time   algbw   busbw #wrong"
    "     time   algbw   busbw #wrong\n"
    "#        (B)    (elements)                               (us)  (GB/s)  (GB/s)       "
    "     (us)  (GB/s)  (GB/s)       \n"
    "           8             2     float     sum      -1    12.50    0.00    0.00      0"
    "    12.10    0.00    0.00      0\n"
    "         512           128     float     sum      -1    13.00    0.04    0.06      0"
    "    12.80    0.04    0.06      0\n"
    "       32768          8192     float     sum      -1    16.00    2.05    3.07      0"
    "    15.90    2.06    3.09      0\n"
    "     2097152        524288     float     sum      -1    40.00   52.43   78.64      0"
    "    39.00   53.77   80.66      0\n"
    "   134217728      33554432     float     sum      -1   1600.0   83.89  125.83      0"
    "   1590.0   84.41  126.62      0\n"
    "# Out of bounds values : 0 OK\n"
    "# Avg bus bandwidth    : 41.803 \n"
    "#\n"
)


def test_parse_reads_rows_ranks_op_and_footer():
    log = parse_nccl_tests(ALL_REDUCE_LOG)
    assert log.nranks == 4 and log.programs == ["all_reduce_perf"]
    assert [r.size for r in log.rows] == [8, 512, 32768, 2097152, 134217728]
    r = log.rows[3]
    assert r.op == "allreduce" and r.count == 524288 and r.type == "float" and r.itemsize == 4
    assert r.time_s == pytest.approx(40e-6) and r.busbw == pytest.approx(78.64e9)
    assert r.inplace_time_s == pytest.approx(39e-6) and r.inplace_busbw == pytest.approx(80.66e9)
    assert r.wrong == 0 and r.root == -1 and r.redop == "sum"
    assert ALL_REDUCE_LOG.splitlines()[r.line - 1].split()[0] == "2097152"
    assert log.avg_busbw == pytest.approx(41.803e9)


def test_parse_per_iteration_and_timestamp_columns():
    head = (
        "# Collective test starting: all_gather_perf\n"
        "#       size         count      type   redop    root     time   algbw   busbw #wrong"
        "    i_min    i_max    i_p99    i_cv%     time   algbw   busbw #wrong    i_min    i_max"
        "    i_p99    i_cv%           timestamp\n"
    )
    row = (
        "     1048576         32768     float    none      -1    30.00   34.95   26.21    N/A"
        "    29.00    31.00    30.90     1.20    29.50   35.54   26.66    N/A    28.00    31.00"
        "    30.80     1.10 2026-12-04 10:00:00\n"
    )
    log = parse_nccl_tests(head + row)
    r = log.rows[0]
    assert r.op == "allgather" and r.wrong is None and r.inplace_time_s == pytest.approx(29.5e-6)
    assert log.nranks is None


@pytest.mark.parametrize(
    "text,match",
    [
        ("# Collective test starting: all_reduce_perf\n  8  2  float  sum  -1  1.0  0.0  0.0\n",
         "line 2:"),
        ("#\n\n         8    2  float  sum  -1  abc  0.00  0.00  0\n", "line 3:.*'abc'"),
        ("#\nhello world\n", "line 2:"),
        ("# only comments\n", "no nccl-tests result rows"),
        ("# Collective test starting: hypercube_perf\n", "hypercube_perf is not one"),
    ],
)  # fmt: skip
def test_malformed_logs_name_the_line(text, match):
    with pytest.raises(ConfigError, match=match):
        parse_nccl_tests(text)


def test_read_refuses_missing_and_binary_files(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        read_nccl_tests(tmp_path / "none.log")
    bad = tmp_path / "bin.log"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")  # a PNG header: binary
    with pytest.raises(ConfigError, match="not a text file"):
        read_nccl_tests(bad)


def _simulate(op, sizes, **kw):
    from collectives.api import run_collective

    return [
        run_collective("torus:dims=4", op, "ring", n, backend="analytical", **kw) for n in sizes
    ]


@pytest.mark.parametrize("op,n_div", [("allreduce", 1), ("allgather", 4), ("reduce_scatter", 4)])
def test_format_follows_nccl_tests_columns(op, n_div):
    rows = _simulate(op, [4096, 1 << 20])
    text = format_nccl_tests(rows)
    data = [ln.split() for ln in text.splitlines() if not ln.startswith("#")]
    assert len(data) == 2
    for fields, r in zip(data, rows, strict=True):
        size, count, ctype, redop, root, t, algbw, busbw, wrong = fields
        assert int(size) == r["size"] and int(count) == r["size"] // 4 // n_div
        assert ctype == "float" and redop == ("none" if op == "allgather" else "sum")
        assert root == "-1" and wrong == "N/A"
        assert float(t) == pytest.approx(r["time_s"] * 1e6, abs=0.006)
        assert float(algbw) == pytest.approx(r["size"] / r["time_s"] / 1e9, abs=0.006)
        factor = 2 * 3 / 4 if op == "allreduce" else 3 / 4
        assert float(busbw) == pytest.approx(float(algbw) * factor, abs=0.011)
    avg = float(text.split("Avg bus bandwidth    :")[1].split()[0])
    assert avg == pytest.approx(sum(r["busbw"] for r in rows) / 2e9, rel=1e-5)


def test_format_reads_back_and_compares_to_ratio_one():
    rows = _simulate("allreduce", [1 << 10, 1 << 16, 1 << 22])
    log = parse_nccl_tests(format_nccl_tests(rows))
    assert log.nranks == 4 and [r.size for r in log.rows] == [1024, 65536, 4194304]
    cmp = compare_nccl_tests(log, "torus:dims=4", backend="analytical", algo="ring")
    assert cmp.meta["nranks"] == 4 and cmp.meta["library"] == "nccl"
    for r in cmp.rows:  # the table rounds times to 0.01 us: ratio 1 within that
        assert r["time_ratio"] == pytest.approx(1.0, abs=0.01e-6 / r["measured_time_s"])


def test_compare_infers_ranks_from_busbw_and_refuses_sendrecv():
    log = parse_nccl_tests(ALL_REDUCE_LOG.replace(RANKS4, ""))
    assert log.nranks is None
    cmp = compare_nccl_tests(log, "torus:dims=8", backend="analytical")
    assert cmp.meta["ranks"] == [0, 1, 2, 3] and "busbw/algbw" in cmp.meta["ranks_from"]
    sr = (
        "# Collective test starting: sendrecv_perf\n" + "  8  2  float  sum  -1  1.0  0.0  0.0  0\n"
    )
    with pytest.raises(ConfigError, match="sendrecv"):
        compare_nccl_tests(parse_nccl_tests(sr), "torus:dims=4", backend="analytical")


def test_compare_needs_the_op_and_enough_chips():
    text = ALL_REDUCE_LOG.replace(
        "$ mpirun -np 4 ./build/all_reduce_perf -b 8 -e 16M -f 64 -g 1\n", ""
    )
    with pytest.raises(ConfigError, match="--op"):
        compare_nccl_tests(parse_nccl_tests(text), "torus:dims=4", backend="analytical")
    with pytest.raises(ConfigError, match=r"4 ranks.*2 chips"):
        compare_nccl_tests(parse_nccl_tests(ALL_REDUCE_LOG), "torus:dims=2", backend="analytical")


def test_cli_compare_text_json_and_figure(tmp_path, capsys):
    path = tmp_path / "ar.log"
    path.write_text(ALL_REDUCE_LOG)
    fig = tmp_path / "cmp.png"
    code = main(["compare", str(path), "--topo", "torus:dims=4", "--backend", "analytical",
                 "--out", str(fig)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and fig.stat().st_size > 0
    assert "ratio = simulated / measured" in out and "128MiB" in out and "None" not in out
    assert main(["compare", str(path), "--topo", "torus:dims=4", "--backend", "analytical",
                 "--json"]) == 0  # fmt: skip
    d = json.loads(capsys.readouterr().out)
    r = d["rows"][-1]
    assert r["time_ratio"] == pytest.approx(r["simulated_time_s"] / 1600e-6)
    assert r["busbw_ratio"] == pytest.approx(r["simulated_busbw"] / 125.83e9)
    assert d["meta"]["network_model"] == "analytical/alpha-beta"


def test_cli_compare_refuses_bad_figure_path_before_work(tmp_path, capsys):
    path = tmp_path / "ar.log"
    path.write_text(ALL_REDUCE_LOG)
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file" / "x.png", tmp_path / "x.txt"):
        assert main(["compare", str(path), "--topo", "torus:dims=4", "--out", str(out)]) == 2
        assert "out:" in capsys.readouterr().err


def test_collective_format_and_library(capsys):
    argv = ["collective", "--topo", "dgx-h100", "--backend", "analytical", "--size", "1MiB"]
    assert main([*argv, "--format", "nccl-tests"]) == 0
    text = capsys.readouterr().out
    assert "# Avg bus bandwidth" in text and parse_nccl_tests(text).rows[0].size == 1 << 20
    assert main([*argv, "--json", "--library", "none"]) == 0
    none = json.loads(capsys.readouterr().out)
    assert main([*argv, "--json"]) == 0
    nccl = json.loads(capsys.readouterr().out)
    assert none["library"] == "none" and nccl["library"] == "nccl"
    assert none["launch_overhead"] == 0 and none["step_overhead"] == 0
    assert nccl["launch_overhead"] > 0 and nccl["time_s"] > none["time_s"]


def test_older_layout_and_concatenated_tests():
    # nccl-tests before the root column (2.0-era layout: "error" instead of "#wrong"), a
    # "NCCL version" line, then a second test after a separator naming its program
    text = (
        "# Collective test starting: all_gather_perf\n"
        "NCCL version 2.20.3+cuda12.3\n"
        "#       size         count      type   redop     time   algbw   busbw  error"
        "     time   algbw   busbw  error\n"
        "     1048576         32768     float    none    30.00   34.95   30.58  0e+00"
        "    29.00   36.16   31.64  0e+00\n"
        "======== reduce_scatter_perf ========\n"
        "#       size         count      type   redop    root     time   algbw   busbw #wrong\n"
        "     1048576         32768     float     sum      -1    25.00   41.94   36.70      0\n"
    )
    log = parse_nccl_tests(text)
    assert [(r.op, r.root, r.wrong) for r in log.rows] == [
        ("allgather", -1, 0),
        ("reduce_scatter", -1, 0),
    ]
    assert log.rows[0].busbw == pytest.approx(30.58e9) and log.ops() == [
        "allgather",
        "reduce_scatter",
    ]


def test_example_log_is_a_consistent_nccl_tests_table():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples/nccl-tests/dgx_h100_all_reduce_ring.log"
    log = read_nccl_tests(path)
    assert log.nranks == 8 and log.ops() == ["allreduce"] and len(log.rows) == 10
    for r in log.rows:  # nccl-tests' definitions within the table's two decimals
        assert r.algbw == pytest.approx(r.size / r.time_s, abs=0.006e9)
        assert r.busbw == pytest.approx(r.size / r.time_s * 2 * 7 / 8, abs=0.006e9)
    mean = sum(r.busbw + r.inplace_busbw for r in log.rows) / (2 * len(log.rows))
    assert log.avg_busbw == pytest.approx(mean, abs=0.01e9)
