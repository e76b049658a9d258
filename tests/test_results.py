"""HDF5 results: layout, column types, crash-safe journal, refusal of foreign files."""

from __future__ import annotations

import datetime as dt
import json
import math

import h5py
import numpy as np
import pytest

from netsim import __version__
from netsim.app.results import (
    FORMAT,
    ResultsWriter,
    build_table,
    column_arrays,
    load_dataframe,
    load_records,
    load_results,
    results_info,
)
from netsim.core.errors import ResultsError


def rec(pid, *, params=None, metrics=None, error=None, seed=0):
    return {
        "point_id": pid,
        "kind": "probe",
        "params": params or {},
        "seed": seed,
        "repetition": 0,
        "metrics": metrics or {},
        "wall_s": 0.5,
        "error": error,
    }


RECORDS = [
    rec("a", params={"size": 1024, "algo": "ring"}, metrics={"t": 1.5, "n": 3, "ok": True}),
    rec(
        "b",
        params={"size": 2048, "algo": "tree"},
        metrics={"t": 2.5, "n": 4, "ok": False, "samples": [1.0, 2.0]},
    ),
    rec("c", params={"size": 4096, "algo": "tree"}, error="ConfigError: boom"),
]


def test_table_column_types_and_missing_values():
    t, info = build_table(RECORDS)
    assert t.dtype.names[:6] == ("point_id", "kind", "seed", "repetition", "wall_s", "error")
    assert t["size"].dtype == np.int64 and t["size"].tolist() == [1024, 2048, 4096]
    assert t["algo"].tolist() == ["ring", "tree", "tree"]
    assert t["t"].dtype == np.float64 and math.isnan(t["t"][2])
    assert t["n"].dtype == np.float64  # ints with a missing value become float with NaN
    assert t["ok"].dtype == np.float64 and t["ok"][0] == 1.0 and math.isnan(t["ok"][2])
    assert t["error"].tolist() == ["", "", "ConfigError: boom"]
    assert info["roles"]["size"] == "param" and info["roles"]["t"] == "metric"
    assert info["json_columns"] == ["samples"]
    arrays = column_arrays(t, "samples")
    assert [a.tolist() for a in arrays] == [[], [1.0, 2.0], []]


def test_metric_named_like_a_param():
    same = rec("a", params={"size": 256}, metrics={"size": 256, "t": 1.0})
    other = rec("b", params={"size": "256B"}, metrics={"size": 256, "t": 1.0})
    t, _ = build_table([same])
    assert "result.size" not in t.dtype.names  # equal value: dropped
    t, _ = build_table([other])
    assert t["size"][0] == "256B" and t["result.size"][0] == 256


def test_writer_layout_and_attrs(tmp_path):
    path = tmp_path / "r.h5"
    with ResultsWriter(path, "kind: probe\n", flush_interval=1e9) as w:
        for r in RECORDS:
            w.add(r)
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == FORMAT
        assert f.attrs["netsim_version"] == __version__
        assert f.attrs["spec"] == "kind: probe\n"
        dt.datetime.fromisoformat(f.attrs["started"])  # ISO 8601
        assert f.attrs["points"] == 3
        cols = json.loads(f["table"].attrs["columns"])
        assert f["table/size"][()].tolist() == [1024, 2048, 4096]
        assert f["table/algo"].asstr()[()].tolist() == ["ring", "tree", "tree"]
        assert len(f["records"]) == 3
    t = load_results(path)
    assert list(t.dtype.names) == cols
    assert load_records(path) == RECORDS
    assert not (tmp_path / "r.h5.journal").exists()
    info = results_info(path)
    assert (info["points"], info["failed"]) == (3, 1)


def test_journal_makes_unflushed_points_visible_and_torn_line_is_ignored(tmp_path):
    path = tmp_path / "r.h5"
    w = ResultsWriter(path, "s", flush_interval=1e9)  # never rewrites on its own
    w.add(RECORDS[0])
    w.add(RECORDS[1])
    # As after kill -9: the .h5 is the empty snapshot taken at open, the journal has 2 points.
    with h5py.File(path, "r") as f:
        assert f.attrs["points"] == 0
    assert [r["point_id"] for r in load_records(path)] == ["a", "b"]
    with open(tmp_path / "r.h5.journal", "ab") as j:
        j.write(b'{"point_id": "c", "kind": "pro')  # torn mid-write
    assert [r["point_id"] for r in load_records(path)] == ["a", "b"]
    w._journal.close()  # the process "dies" without close(): lock released
    with ResultsWriter(path, "s") as w2:  # resume: file + journal, torn line dropped
        assert w2.ids() == {"a", "b"}
        w2.add(RECORDS[2])
    assert [r["point_id"] for r in load_records(path)] == ["a", "b", "c"]
    assert not (tmp_path / "r.h5.journal").exists()


def test_resume_keeps_started_and_dedupes(tmp_path):
    path = tmp_path / "r.h5"
    with ResultsWriter(path, "one") as w:
        w.add(RECORDS[0])
    started = results_info(path)["started"]
    with ResultsWriter(path, "two") as w:
        assert w.done_ids() == {"a"}
        w.add(RECORDS[0])  # the same point again replaces, never duplicates
        w.add(RECORDS[2])
        assert w.done_ids() == {"a"} and w.ids() == {"a", "c"}
    info = results_info(path)
    assert (info["started"], info["spec"], info["points"]) == (started, "two", 2)


def test_second_writer_is_refused(tmp_path):
    path = tmp_path / "r.h5"
    with ResultsWriter(path, "s"), pytest.raises(ResultsError, match="another sweep"):
        ResultsWriter(path, "s")


def test_foreign_and_corrupted_files_are_refused(tmp_path):
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["data"] = np.arange(3)
    with pytest.raises(ResultsError, match="not written by netsim"):
        load_results(foreign)
    with pytest.raises(ResultsError, match="not written by netsim"):
        ResultsWriter(foreign, "s")
    with h5py.File(foreign, "r") as f:  # refused, not overwritten
        assert f["data"][()].tolist() == [0, 1, 2]
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    with pytest.raises(ResultsError, match="not a readable HDF5 file"):
        load_results(garbage)
    with pytest.raises(ResultsError, match="no such file"):
        load_results(tmp_path / "missing.h5")
    good = tmp_path / "good.h5"
    with ResultsWriter(good, "s") as w:
        w.add(RECORDS[0])
    truncated = tmp_path / "trunc.h5"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(ResultsError):
        load_results(truncated)
    (tmp_path / "good.h5.journal").write_bytes(b"not json\n" + json.dumps(RECORDS[1]).encode())
    with pytest.raises(ResultsError, match=r"journal .* corrupted at line 1"):
        load_results(good)


def _decode_rec(pid, network_key):
    # A decode point as the sweep records it: the LLM is the parameter "model".
    return rec(pid, params={"model": "llama3-8b", "tp": 8},
               metrics={network_key: "packet/cut-through", "llm": "llama3-8b"})  # fmt: skip


def test_version_1_files_are_read_with_network_model(tmp_path):
    """Version 1 named the network model ``model``; it loads as ``network_model`` (file and
    journal), no longer clashing with the LLM parameter, and a resumed sweep writes v2."""
    old = tmp_path / "v1.h5"
    with h5py.File(old, "w") as f:
        f.attrs["format"] = "netsim-results/1"
        f.attrs["spec"] = "kind: decode\n"
        text = [json.dumps(_decode_rec("a", "model"))]
        f.create_dataset("records", data=np.array(text, dtype=object),
                         dtype=h5py.string_dtype("utf-8"))  # fmt: skip
    (tmp_path / "v1.h5.journal").write_text(json.dumps(_decode_rec("b", "model")) + "\n")
    t = load_results(old)
    assert t["model"].tolist() == ["llama3-8b"] * 2  # the parameter: the LLM
    assert t["network_model"].tolist() == ["packet/cut-through"] * 2
    assert "result.model" not in t.dtype.names
    assert results_info(old)["format"] == "netsim-results/1"  # what the file says
    with ResultsWriter(old, "kind: decode\n") as w:
        w.add(_decode_rec("c", "network_model"))
    assert results_info(old)["format"] == FORMAT == "netsim-results/2"
    got = {r["point_id"]: r["metrics"] for r in load_records(old)}
    assert {k: m["network_model"] for k, m in got.items()} == dict.fromkeys(
        "abc", "packet/cut-through"
    )
    assert not any("model" in m for m in got.values())


def test_load_dataframe_needs_pandas(tmp_path):
    path = tmp_path / "r.h5"
    with ResultsWriter(path, "s") as w:
        for r in RECORDS:
            w.add(r)
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="needs pandas"):
            load_dataframe(path)
    else:
        df = load_dataframe(path, ok_only=True)
        assert len(df) == 2 and df["size"].tolist() == [1024, 2048]


def test_dataframe_has_the_table_columns_and_types(tmp_path):
    pd = pytest.importorskip("pandas")  # in the test extra: runs in CI
    path = tmp_path / "r.h5"
    with ResultsWriter(path, "s") as w:
        for r in RECORDS:
            w.add(r)
    df = load_dataframe(path)
    t = load_results(path)
    assert isinstance(df, pd.DataFrame) and list(df.columns) == list(t.dtype.names)
    assert df["size"].dtype == np.int64 and df["t"].dtype == np.float64
    assert df["algo"].tolist() == ["ring", "tree", "tree"]
    assert df["error"].tolist() == ["", "", "ConfigError: boom"]


def _cli(argv, capsys):
    from netsim.app.cli import main

    code = main(argv)
    return code, capsys.readouterr().err


def test_cli_refuses_foreign_and_corrupted_files_in_one_line(tmp_path, capsys):
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["data"] = np.arange(3)
    before = foreign.read_bytes()
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    spec = tmp_path / "s.yaml"
    spec.write_text("kind: probe\nsweep: {x: [1, 2]}\n")
    for path, rule in ((foreign, "was not written by netsim"), (garbage, "not a readable HDF5")):
        for argv in (
            ["sweep", str(spec), "--out", str(path), "--workers", "1"],
            ["sweep", str(spec), "--out", str(path), "--cluster", "local"],  # before Dask
            ["plot", str(path), "--x", "x", "--y", "u", "--out", str(tmp_path / "f.pdf")],
        ):
            code, err = _cli(argv, capsys)
            assert code == 2, argv
            assert err.startswith(f"error: results: {str(path)!r}") and rule in err
            assert err.count("\n") == 1 and "Traceback" not in err
    assert foreign.read_bytes() == before  # refused, never overwritten
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign.h5", "garbage.h5", "s.yaml"]


def test_points_record_the_version_that_ran_them(tmp_path):
    from netsim.app.sweep import run_sweep

    path = tmp_path / "r.h5"
    run_sweep({"kind": "probe", "sweep": {"x": [1, 2]}, "seeds": [3]}, path, workers=1)
    recs = load_records(path)
    assert {r["netsim_version"] for r in recs} == {__version__}
    assert {r["seed"] for r in recs} == {3} and [r["params"]["x"] for r in recs] == [1, 2]
    t = load_results(path)
    assert t.dtype.names[6] == "netsim_version" and set(t["netsim_version"]) == {__version__}
    info = results_info(path)
    assert info["netsim_version"] == __version__ and "kind: probe" in info["spec"]
