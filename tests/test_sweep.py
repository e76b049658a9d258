"""Sweeps: spec expansion, point identity, execution (serial, pool, Dask), resume after kill -9."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from netsim.app.cli import main
from netsim.app.experiments import KINDS, flatten_metrics, resolve_kind, run_point
from netsim.app.quickstart import QUICKSTART_FIGURES, QUICKSTART_SPEC, draw_figures, quickstart
from netsim.app.results import ResultsWriter, load_records, load_results, results_info
from netsim.app.sweep import expand_values, load_spec, point_id, run_sweep
from netsim.core.errors import ConfigError, ResultsError

ROOT = Path(__file__).resolve().parents[1]

PROBE = {
    "name": "probe",
    "kind": "probe",
    "sweep": {"x": {"ints": "1:4:1"}, "y": [0.5, 2.0]},
    "seeds": 2,
}


# --------------------------------------------------------------------------- spec


def test_product_count_and_order():
    spec = load_spec({**PROBE, "repetitions": 3})
    pts = spec.points()
    assert len(pts) == 4 * 2 * 2 * 3
    assert len({p.point_id for p in pts}) == len(pts)
    assert [p.params["x"] for p in pts[:12]] == [1] * 12  # x varies slowest
    assert pts[0].params == {"x": 1, "y": 0.5, "seed": 0}


def test_zip_pairs_values_and_rejects_unequal_lengths():
    pts = load_spec({"kind": "probe", "mode": "zip", "sweep": {"a": [1, 2, 3], "b": [4, 5, 6]}})
    assert [(p.params["a"], p.params["b"]) for p in pts.points()] == [(1, 4), (2, 5), (3, 6)]
    with pytest.raises(ConfigError, match="zip"):  # refused when the spec is loaded
        load_spec({"kind": "probe", "mode": "zip", "sweep": {"a": [1, 2], "b": [4]}})


def test_ranges_with_units():
    # 8 B * 4^k up to 1 GiB: k = 0..13 (8 * 4^13 = 2^29 = 512 MiB; 2^31 > 1 GiB).
    sizes = expand_values("size", {"sizes": "8B:1GiB:x4"})
    assert sizes == [8 * 4**k for k in range(14)]
    assert expand_values("load", {"floats": "0.1:0.5:0.2"}) == [0.1, 0.3, 0.5]
    assert expand_values("ranks", {"ints": "2:64:x2"}) == [2, 4, 8, 16, 32, 64]
    assert expand_values("n", {"ints": "1:7:+3"}) == [1, 4, 7]
    assert expand_values("topo", "ring:n=4") == ["ring:n=4"]


def test_cases_mix_kinds_and_dedupe():
    spec = load_spec(
        {
            "kind": "probe",
            "fixed": {"z": 1},
            "sweep": [
                {"sweep": {"x": [1, 2]}},
                {"sweep": {"x": [2, 3]}},  # x=2 repeats: same point once
                {"fixed": {"w": 2}, "sweep": {"x": [4]}},
            ],
        }
    )
    topo = load_spec({"kind": "topo", "sweep": {"topo": ["fat-tree-k4"]}})
    pts = spec.points() + topo.points()
    assert [(p.kind, p.params.get("x")) for p in pts] == [
        ("probe", 1),
        ("probe", 2),
        ("probe", 3),
        ("probe", 4),
        ("topo", None),
    ]
    # a case's fixed parameters are merged over the top-level ones
    assert pts[0].params == {"z": 1, "x": 1, "seed": 0}
    assert pts[3].params == {"z": 1, "w": 2, "x": 4, "seed": 0}
    assert pts[4].params == {"topo": "fat-tree-k4", "seed": 0}


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ({"kind": "topo", "fixed": {"w": 2}, "sweep": {"topo": ["fat-tree-k4"]}},
         r"^w: not a parameter of the topo experiment, got 2$"),
        ({"kind": "collective", "fixed": {"topo": "dgx-h100", "backnd": "flow"}},
         r"^backnd: not a parameter of the collective experiment \(did you mean backend\?\)"),
        ({"kind": "decode", "fixed": {"model": "llama3-8b", "topo": "dgx-h100"}},
         r"^chip: required parameter of the decode experiment$"),
        ({"kind": "traffic", "sweep": {"topo": ["torus:dims=4x4"], "lod": [0.1, 0.2]}},
         r"^lod: not a parameter of the traffic experiment \(did you mean load\?\), got \[0.1, 0.2\]$"),
    ],
)  # fmt: skip
def test_a_spec_with_a_name_its_kind_does_not_take_is_refused_at_load(case, match):
    with pytest.raises(ConfigError, match=match):
        load_spec(case)


def test_every_option_of_a_kind_is_a_parameter_it_takes():
    from collectives.options import CollectiveOptions
    from netsim.core.options import fields_of

    names = [f.name for f in fields_of(CollectiveOptions) if f.name != "seed"]  # seeds: top level
    spec = load_spec(
        {"kind": "collective", "fixed": {"topo": "dgx-h100", **{n: None for n in names}}}
    )
    assert set(names) <= set(spec.points()[0].params)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"kind": "probe", "bogus": 1}, "unknown key 'bogus'"),
        ({"kind": "nope"}, "kind: must be one of"),
        ({"sweep": {"x": [1]}}, "kind: required"),
        ({"kind": "probe", "sweep": {"seed": [1, 2]}}, "seeds"),
        ({"kind": "probe", "fixed": {"x": 1}, "sweep": {"x": [1]}}, "both fixed and swept"),
        ({"kind": "probe", "sweep": {"x": {"range": "1:2"}}}, "a range must be one of"),
        ({"kind": "probe", "sweep": {"x": []}}, "must not be empty"),
        ({"kind": "probe", "seeds": 0}, "seeds"),
        ({"kind": "probe", "mode": "grid"}, "mode"),
        ({"kind": "probe", "sweep": {"s": {"sizes": "1KiB:1B:x2"}}}, "STOP must be >= START"),
    ],
)
def test_bad_specs_are_one_line_config_errors(spec, match):
    with pytest.raises(ConfigError, match=match) as exc:
        load_spec(spec).points()
    assert "\n" not in str(exc.value)


def test_yaml_file_text_is_kept(tmp_path):
    text = "# my study\nkind: probe\nsweep:\n  x: [1, 2]\n"
    path = tmp_path / "s.yaml"
    path.write_text(text)
    spec = load_spec(path)
    assert spec.text == text and len(spec.points()) == 2
    with pytest.raises(ConfigError, match="no such file"):
        load_spec(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_spec("kind: [probe\nsweep: 1\n")


def test_point_id_is_hash_of_canonical_json():
    params = {"b": 2, "a": "x", "seed": 3}
    text = json.dumps(
        {"kind": "probe", "params": params, "repetition": 1}, sort_keys=True, separators=(",", ":")
    )
    expect = hashlib.sha256(text.encode()).hexdigest()[:16]
    assert point_id("probe", params, 1) == expect
    assert point_id("probe", dict(reversed(params.items())), 1) == expect
    assert point_id("probe", params, 0) != expect
    assert point_id("probe", {**params, "seed": 4}, 1) != expect


# --------------------------------------------------------------------------- kinds


def test_kinds_resolve_lazily_with_clear_errors():
    assert set(KINDS) >= {"topo", "traffic", "collective", "decode", "train"}
    assert callable(resolve_kind("probe"))
    with pytest.raises(ConfigError, match="must be one of"):  # no arbitrary imports
        resolve_kind("this:x")
    with pytest.raises(ConfigError, match="must be one of"):
        load_spec({"kind": "os:system", "sweep": {"x": [1]}})


def test_registered_kinds_that_cannot_import_fail_clearly(monkeypatch):
    monkeypatch.setitem(KINDS, "missing", "no_such_module_xyz:f")
    monkeypatch.setitem(KINDS, "nofunc", "netsim.core.units:nothing_here")
    with pytest.raises(ConfigError, match="unavailable"):
        resolve_kind("missing")
    with pytest.raises(ConfigError, match="no function"):
        resolve_kind("nofunc")


def test_run_point_flattens_metrics():
    m = run_point("probe", {"seed": 5, "x": 2, "y": 0.25, "samples": 3})
    assert m["u"] == random.Random(5).random()
    assert m["sum"] == 2.25
    assert len(m["samples"]) == 3
    assert flatten_metrics({"a": {"b": {"c": 1}}, "d/e": 2}) == {"a.b.c": 1, "d_e": 2}


# --------------------------------------------------------------------------- running


def _metrics(path):
    """{point_id: metrics without the worker-specific fields}."""
    out = {}
    for r in load_records(path):
        m = {k: v for k, v in r["metrics"].items() if k not in ("pid", "host", "wall_s")}
        out[r["point_id"]] = (r["params"], r["seed"], m, r["error"])
    return out


def test_serial_sweep_records_closed_form_and_resumes(tmp_path):
    out = tmp_path / "r.h5"
    s = run_sweep(PROBE, out, workers=1, progress=False)
    assert (s.total, s.ran, s.skipped, s.failed, s.executor) == (16, 16, 0, 0, "serial")
    t = load_results(out)
    assert len(t) == 16
    for row in t:
        assert row["u"] == random.Random(int(row["seed"])).random()
        assert row["sum"] == row["x"] + row["y"]
        assert row["wall_s"] >= 0 and row["error"] == ""
    again = run_sweep(PROBE, out, workers=1, progress=False)
    assert (again.ran, again.skipped) == (0, 16)
    bigger = {**PROBE, "sweep": {"x": {"ints": "1:5:1"}, "y": [0.5, 2.0]}}
    with pytest.raises(ConfigError, match=r"different spec.*--append"):  # two studies, one file
        run_sweep(bigger, out, workers=1, progress=False)
    more = run_sweep(bigger, out, workers=1, progress=False, append=True)
    assert (more.ran, more.skipped, more.total) == (4, 16, 20)
    assert len(load_results(out)) == 20
    info = results_info(out)
    assert yaml.safe_load(info["spec"]) == bigger  # the latest spec, and the earlier one kept
    assert [yaml.safe_load(t) for t in json.loads(info["previous_specs"])] == [PROBE]
    assert not Path(str(out) + ".journal").exists()


def test_failed_points_record_error_and_sweep_goes_on(tmp_path):
    spec = {"kind": "probe", "sweep": {"x": [1, 2, 3], "fail": [False, True]}}
    out = tmp_path / "f.h5"
    s = run_sweep(spec, out, workers=1, progress=False)
    assert (s.ran, s.failed) == (6, 3)
    t = load_results(out)
    bad = t[t["error"] != ""]
    assert len(bad) == 3 and set(bad["fail"]) == {True}
    assert all("fail: the probe was asked to fail" in e for e in bad["error"])
    assert all(v != v for v in bad["u"])  # NaN where a failed point has no metric
    assert len(load_results(out, ok_only=True)) == 3
    skip = run_sweep(spec, out, workers=1, progress=False, retry_failed=False)
    assert skip.ran == 0
    retry = run_sweep(spec, out, workers=1, progress=False)
    assert (retry.ran, retry.failed) == (3, 3)
    assert len(load_results(out)) == 6  # replaced, not duplicated


def test_pool_matches_serial(tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    run_sweep(PROBE, a, workers=1, progress=False)
    s = run_sweep(PROBE, b, workers=2, progress=False)
    assert s.executor == "pool:2"
    assert _metrics(a) == _metrics(b)
    assert len({r["metrics"]["pid"] for r in load_records(b)} - {os.getpid()}) >= 1


REAL = {
    "sweep": [
        {"kind": "topo", "sweep": {"topo": ["fat-tree-k4", "dgx-h100"]}},
        {
            "kind": "traffic",
            "fixed": {"topo": "dgx-h100", "packets": 40, "size": "256B"},
            "sweep": {"load": [0.1, 0.3]},
        },
    ],
    "seeds": [0, 1],
}


def _cli(args, cwd, timeout=120):
    """Run ``python -m netsim ARGS`` in a subprocess (a hang fails the test, not CI)."""
    cmd = [sys.executable, "-m", "netsim", *map(str, args)]
    return subprocess.run(
        cmd, env=_env(), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_cli_cluster_local_runs_real_kinds_like_the_local_pool(tmp_path):
    # Dask is in the test extra: this runs in CI (no importorskip).
    spec_path = tmp_path / "real.yaml"
    spec_path.write_text(yaml.safe_dump(REAL))
    pool, dask = tmp_path / "pool.h5", tmp_path / "dask.h5"
    s1 = run_sweep(REAL, pool, workers=2, progress=False)
    args = ["sweep", spec_path, "--out", dask, "--cluster", "local", "--workers", "2"]
    proc = _cli([*args, "--no-progress", "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    s2 = json.loads(proc.stdout)
    assert (s2["executor"], s2["ran"], s2["failed"]) == ("dask:local", 8, 0)
    assert s1.failed == 0, load_results(pool)["error"]
    a, b = _metrics(pool), _metrics(dask)
    assert a.keys() == b.keys() and len(a) == 8
    for pid in a:  # every metric except timings of the machine is identical
        ma = {k: v for k, v in a[pid][2].items() if "wall" not in k}
        mb = {k: v for k, v in b[pid][2].items() if "wall" not in k}
        assert ma == mb
    t = load_results(pool)
    topo = t[t["kind"] == "topo"]
    # fat-tree k=4: k^3/4 = 16 hosts, 5k^2/4 = 20 switches (Al-Fares et al., SIGCOMM 2008)
    row = topo[topo["topo"] == "fat-tree-k4"][0]
    assert (row["chips"], row["switches"]) == (16, 20)


def test_cli_scheduler_address_matches_serial(tmp_path, capsys):
    import dask.distributed as distributed  # in the test extra: no importorskip

    spec_path = tmp_path / "probe.yaml"
    spec_path.write_text(yaml.safe_dump(PROBE))
    serial, remote = tmp_path / "s.h5", tmp_path / "d.h5"
    run_sweep(PROBE, serial, workers=1, progress=False)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster:
        addr = cluster.scheduler_address
        code = main(["sweep", str(spec_path), "--out", str(remote), "--scheduler", addr, "--json"])
    assert code == 0
    s = json.loads(capsys.readouterr().out)
    assert (s["executor"], s["ran"], s["failed"]) == (f"dask:{addr}", 16, 0)
    assert _metrics(serial) == _metrics(remote)


@pytest.mark.parametrize(
    ("address", "match"),
    [("tcp://127.0.0.1:1", "cannot connect to 'tcp://127.0.0.1:1'"), ("foo", "missing port")],
)
def test_unreachable_scheduler_is_one_line_and_leaves_no_file(
    tmp_path, capsys, monkeypatch, address, match
):
    import netsim.app.sweep as sweep_module

    monkeypatch.setattr(sweep_module, "CONNECT_TIMEOUT", 0.5)
    spec_path = tmp_path / "probe.yaml"
    spec_path.write_text(yaml.safe_dump(PROBE))
    out = tmp_path / "r.h5"
    assert main(["sweep", str(spec_path), "--out", str(out), "--scheduler", address]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: scheduler: ") and match in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == [spec_path]  # no results file, no journal


def test_options_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="not both"):
        run_sweep(PROBE, tmp_path / "x.h5", scheduler="tcp://127.0.0.1:1", cluster="local")
    with pytest.raises(ConfigError, match="workers"):
        run_sweep(PROBE, tmp_path / "x.h5", workers=0)
    with pytest.raises(ConfigError, match="cluster"):
        run_sweep(PROBE, tmp_path / "x.h5", cluster="remote", progress=False)


# --------------------------------------------------------------------------- CLI, kill -9


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


SLOW = {"kind": "probe", "fixed": {"delay": "20ms"}, "sweep": {"x": {"ints": "1:120:1"}}}

# A driver that rewrites the HDF5 file after every point (flush_interval=0), so that a kill
# is likely to land in the middle of a rewrite of the file.
_EAGER_DRIVER = (
    "import sys; from netsim.app.sweep import run_sweep; "
    "run_sweep(sys.argv[1], sys.argv[2], workers=2, progress=False, flush_interval=0.0)"
)


def _stored(out: Path) -> int:
    """Points stored (file + journal) so far; 0 while the file does not exist yet."""
    try:
        return len(load_records(out))
    except ResultsError:
        return 0


@pytest.mark.parametrize("driver", ["cli", "eager-rewrite"])
def test_kill_9_then_resume_runs_every_point_exactly_once(tmp_path, driver):
    spec_path = tmp_path / "slow.yaml"
    spec_path.write_text(yaml.safe_dump(SLOW))
    out = tmp_path / "r.h5"
    cli = [sys.executable, "-m", "netsim", "sweep", str(spec_path), "--out", str(out)]
    cli += ["--workers", "2", "--no-progress", "--json"]
    first = cli if driver == "cli" else [sys.executable, "-c", _EAGER_DRIVER, spec_path, out]
    proc = subprocess.Popen(list(map(str, first)), env=_env(), start_new_session=True, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while _stored(out) < 5:  # a few points stored, the sweep still running
            if time.monotonic() > deadline:
                pytest.fail("the sweep stored no points in 60 s")
            time.sleep(0.03)
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its pool workers, mid-run
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    done = load_results(out)  # readable after the kill: the last snapshot + the journal
    assert 5 <= len(done) < 120
    assert len(set(done["point_id"])) == len(done)
    rerun = subprocess.run(cli, env=_env(), cwd=tmp_path, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    # the resumed run skips exactly the stored points and runs exactly the others
    assert (summary["skipped"], summary["ran"]) == (len(done), 120 - len(done))
    t = load_results(out)
    expect = {p.point_id for p in load_spec(SLOW).points()}
    assert sorted(t["point_id"]) == sorted(expect)  # each point exactly once
    assert sorted(t["x"]) == list(range(1, 121))
    assert set(done["point_id"]) <= expect
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.h5", "slow.yaml"]  # no leftovers


def test_cli_reports_failed_points_and_checks_out(tmp_path, capsys):
    spec_path = tmp_path / "s.yaml"
    spec_path.write_text(
        yaml.safe_dump({"kind": "probe", "sweep": {"x": [1, 2, 3], "fail": [False, True]}})
    )
    out = tmp_path / "deep" / "er" / "r.h5"  # the directory is created
    assert (
        main(["sweep", str(spec_path), "--out", str(out), "--workers", "1", "--no-progress"]) == 1
    )
    cap = capsys.readouterr()
    assert "6 points run (3 failed)" in cap.out
    assert cap.err == "failed (3 points): fail: the probe was asked to fail, got True\n"
    assert len(load_results(out)) == 6
    assert main(["sweep", str(spec_path), "--out", str(tmp_path), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: out: must be a file, got the directory {str(tmp_path)!r}\n"


def test_cli_sweep_dry_run_and_json(tmp_path, capsys):
    spec_path = tmp_path / "s.yaml"
    spec_path.write_text(yaml.safe_dump(PROBE))
    out = tmp_path / "r.h5"
    assert main(["sweep", str(spec_path), "--out", str(out), "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("16 points (probe)")
    code = main(["sweep", str(spec_path), "--out", str(out), "--workers", "1", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["ran"], summary["total"]) == (16, 16)
    assert main(["sweep", str(tmp_path / "none.yaml"), "--out", str(out)]) == 2
    assert "spec: no such file" in capsys.readouterr().err


# --------------------------------------------------------------------------- quickstart


def test_quickstart_spec_expands():
    pts = load_spec(QUICKSTART_SPEC).points()
    # 5 fabrics x 3 algorithms x 12 sizes (8 B to 32 MiB, x4) + 2 in-network fabrics x 12
    # sizes + 5 fabrics x 3 batches of decode
    assert len(pts) == 5 * 3 * 12 + 2 * 12 + 5 * 3
    assert {p.kind for p in pts} == {"collective", "decode"}


def test_quickstart_with_tiny_spec(tmp_path):
    res = quickstart(tmp_path / "qs", workers=1, spec=PROBE, progress=False)
    assert (res["summary"].ran, res["summary"].failed) == (16, 0)
    assert res["results"] == tmp_path / "qs" / "results.h5"
    assert len(load_results(res["results"])) == 16
    assert res["figures"] == []  # no collective or decode points in this spec
    assert set(res["skipped_figures"]) == set(QUICKSTART_FIGURES)
    again = quickstart(tmp_path / "qs", workers=1, spec=PROBE, progress=False)
    assert again["summary"].skipped == 16  # re-running resumes


def test_quickstart_figures_from_collective_and_decode_points(tmp_path):
    path = tmp_path / "r.h5"
    with ResultsWriter(path, "synthetic") as w:
        for i, (algo, size) in enumerate(itertools.product(("ring", "tree"), (8, 1024, 2**20))):
            t = 1e-6 + size / 1e11
            m = {"time_s": t, "busbw": size / t * 1.75}
            w.add(
                _record(f"c{i}", "collective", {"topo": "dgx-h100", "algo": algo, "size": size}, m)
            )
        for i, batch in enumerate((1, 8)):
            m = {
                "compute_s": 1e-5,
                "memory_s": 2e-5,
                "launch_s": 4e-6,
                "fabric_s": 5e-6,
                "token_latency_s": 3.9e-5,
            }
            w.add(_record(f"d{i}", "decode", {"topo": "dgx-h100", "batch": batch}, m))
    paths, skipped = draw_figures(path, tmp_path)
    assert sorted(p.name for p in paths) == [
        "allreduce_latency.pdf",
        "allreduce_latency.png",
        "decode_breakdown.pdf",
        "decode_breakdown.png",
    ]
    assert all(p.stat().st_size > 1000 for p in paths)
    assert skipped == {}


def _record(pid, kind, params, metrics):
    return {
        "point_id": pid,
        "kind": kind,
        "params": params,
        "seed": 0,
        "repetition": 0,
        "metrics": metrics,
        "wall_s": 0.0,
        "error": None,
    }
