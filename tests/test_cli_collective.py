"""``netsim collective`` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from netsim.app.cli import main


def run_cli(capsys, *argv):
    code = main(["collective", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_text_output_names_time_bandwidths_model_and_busiest_link(capsys):
    code, out, _ = run_cli(capsys, "--topo", "dgx-h100", "--algo", "ring", "--size", "1MiB",
                           "--check")  # fmt: skip
    assert code == 0
    for word in ("time", "algbw", "busbw", "analytical", "busiest", "packet/cut-through", "ok"):
        assert word in out


def test_json_matches_nccl_tests_definitions(capsys):
    code, out, _ = run_cli(capsys, "--topo", "torus:dims=8", "--op", "allgather", "--size",
                           "64KiB", "--ranks", "0-3", "--backend", "analytical", "--json")  # fmt: skip
    assert code == 0
    r = json.loads(out)
    assert r["ranks"] == [0, 1, 2, 3]
    assert r["algbw"] == pytest.approx(65536 / r["time_s"])
    assert r["busbw"] == pytest.approx(r["algbw"] * 3 / 4)
    assert r["time_s"] == r["analytical_time_s"]
    assert (
        r["network_model"] == "analytical/alpha-beta" and "netsim_version" in r and r["seed"] == 0
    )


def test_size_sweep_table_and_plot(capsys, tmp_path):
    fig = tmp_path / "ar.png"
    code, out, _ = run_cli(capsys, "--topo", "dgx-h100", "--algo", "ring,oneshot", "--sizes",
                           "8B:8KiB:x32", "--backend", "analytical", "--plot", str(fig))  # fmt: skip
    assert code == 0
    assert fig.exists() and fig.with_suffix(".pdf").exists()
    rows = [ln for ln in out.splitlines() if ln.startswith(("ring", "oneshot"))]
    assert len(rows) == 2 * 3


def test_concurrent_groups(capsys):
    code, out, _ = run_cli(capsys, "--topo", "fat_tree:k=4", "--algo", "twoshot", "--size",
                           "4KiB", "--groups", "4", "--json", "--check")  # fmt: skip
    r = json.loads(out)
    assert code == 0 and r["groups"] == 4 and r["group_size"] == 4 and r["check"] is True


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--algo", "recursive-doubling", "--ranks", "0-5", "--size", "1KiB"], "power-of-two"),
        (["--algo", "nope", "--size", "1KiB"], "must be one of"),
        (["--algo", "ring,tree", "--size", "1KiB"], "--sizes"),
        (["--algo", "ring"], "size"),
        (["--algo", "oneshot", "--chunks", "4", "--size", "1KiB"], "does not pipeline"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, argv, match):
    code, _, err = run_cli(capsys, "--topo", "dgx-h100", *argv)
    assert code == 2
    assert match in err and err.count("\n") == 1


ISSUE_KEYS = ("time_s", "algbw", "busbw", "analytical_time_s", "ranks", "size", "algo", "op",
              "packets", "packet_hops", "events", "wall_s")  # fmt: skip


def test_json_has_every_key_of_the_issue_on_the_packet_engine(capsys):
    code, out, _ = run_cli(capsys, "--topo", "torus:dims=4", "--algo", "ring", "--size", "4KiB",
                           "--json")  # fmt: skip
    r = json.loads(out)
    assert code == 0 and all(k in r for k in ISSUE_KEYS)
    assert r["packets"] > 0 and r["packet_hops"] >= r["packets"] and r["events"] > 0
    assert r["size"] == 4096 and r["op"] == "allreduce" and r["algo"] == "ring"
    assert r["analytical_time_s"] <= r["time_s"]


def test_full_size_range_table_and_plot_of_two_algorithms(capsys, tmp_path):
    fig = tmp_path / "ar.svg"
    code, out, _ = run_cli(capsys, "--topo", "torus:dims=4", "--algo", "ring,tree", "--sizes",
                           "8B:1GiB:x2", "--backend", "analytical", "--plot", str(fig))  # fmt: skip
    assert code == 0 and fig.exists()
    rows = [ln.split() for ln in out.splitlines() if ln.startswith(("ring ", "tree "))]
    assert len(rows) == 2 * 28  # 8 B .. 1 GiB by doubling: 28 sizes per algorithm
    assert rows[0][1] == "8B" and rows[27][1] == "1GiB"


def test_zero_bytes_reports_zero_bandwidth(capsys):
    code, out, _ = run_cli(capsys, "--topo", "torus:dims=4", "--size", "0B", "--json")
    r = json.loads(out)
    assert code == 0 and r["algbw"] == 0 and r["busbw"] == 0


@pytest.mark.parametrize("form", ["inline", "npy", "csv", "json"])
def test_alltoall_matrix_from_the_command_line(capsys, tmp_path, form):
    m = np.array([[0, 8, 8, 8], [1, 0, 1, 1], [1, 1, 0, 1], [2, 2, 2, 0]])
    if form == "inline":
        arg = ";".join(",".join(str(x) for x in row) for row in m)
    else:
        path = tmp_path / f"m.{form}"
        if form == "npy":
            np.save(path, m)
        elif form == "csv":
            np.savetxt(path, m, delimiter=",", fmt="%d")
        else:
            path.write_text(json.dumps(m.tolist()))
        arg = str(path)
    code, out, _ = run_cli(capsys, "--topo", "fat_tree:k=4", "--op", "alltoall", "--algo",
                           "direct", "--ranks", "0-3", "--matrix", arg, "--itemsize", "1",
                           "--check", "--json")  # fmt: skip
    r = json.loads(out)
    assert code == 0 and r["check"] is True
    assert r["size"] == 24  # the largest row sum, as nccl-tests counts the send buffer


def test_hierarchical_dims_and_library_costs_from_the_command_line(capsys):
    code, out, _ = run_cli(capsys, "--topo", "dgx-h100", "--algo", "hierarchical", "--dims",
                           "4x2", "--size", "64KiB", "--check", "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["check"] is True
    code, out, _ = run_cli(capsys, "--topo", "dgx-h100", "--size", "64KiB", "--no-multipath",
                           "--efficiency", "1", "--step-overhead", "0s", "--json")  # fmt: skip
    r = json.loads(out)
    assert code == 0 and r["multipath"] is False and r["efficiency"] == 1
    assert r["step_overhead"] == 0


def test_reduce_bandwidth_from_a_chip_preset_adds_the_local_sums(capsys):
    base = ["--topo", "torus:dims=4", "--algo", "ring", "--size", "1MiB", "--backend",
            "analytical", "--json"]  # fmt: skip
    _, out, _ = run_cli(capsys, *base)
    t0 = json.loads(out)["time_s"]
    _, out, _ = run_cli(capsys, *base, "--reduce-bandwidth", "h100")
    r = json.loads(out)
    # Ring all-reduce: p - 1 dependent local sums of a chunk n/p, 3 n/p bytes of HBM traffic.
    assert r["time_s"] == pytest.approx(t0 + 3 * 3 * (2**20 / 4) / r["reduce_bandwidth"])
    assert r["reduce_bandwidth"] == pytest.approx(3.35e12, rel=0.01)


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--op", "allgather", "--size", "1KiB", "--reduce-bandwidth", "h100"], "reduce_bandwidth"),
        (
            ["--size", "1KiB", "--backend", "analytical", "--forwarding", "store-and-forward"],
            "forwarding: applies to the packet backend only",
        ),
        (["--size", "1KiB", "--matrix", "0,1;1,0", "--ranks", "0-1"], "only alltoall"),
        (
            ["--op", "alltoall", "--matrix", "0,1;1,0", "--ranks", "0-1", "--size", "1KiB"],
            "largest row sum",
        ),
        (
            ["--op", "alltoall", "--matrix", "0,1;1,0", "--ranks", "0-1", "--sizes", "8B:64B:x2"],
            "fixes the size",
        ),
        (["--op", "alltoall", "--matrix", "0,1;1,0", "--ranks", "0-2"], "3x3"),
        (["--op", "alltoall", "--matrix", "0,1;1,x", "--ranks", "0-1"], "matrix: expected rows"),
        (["--op", "alltoall", "--matrix", "missing.npy", "--ranks", "0-1"], "no such file"),
        (["--size", "1KiB", "--dims", "4x2"], "dims: not an option of the ring"),
        (["--size", "1KiB", "--efficiency", "1.5"], "efficiency"),
        (["--op", "broadcast", "--algo", "tree", "--size", "1KiB", "--root", "9"], "root"),
        (["--algo", "innetwork", "--size", "1KiB"], "reduction-capable"),
        (["--size", "1KiB", "--groups", "3"], "groups"),
    ],
)
def test_options_that_do_not_apply_are_one_line_errors(capsys, argv, match):
    topo = "torus:dims=8" if "innetwork" in argv else "dgx-h100"
    code, _, err = run_cli(capsys, "--topo", topo, *argv)
    assert code == 2
    assert match in err and err.startswith("error: ") and err.count("\n") == 1


def test_max_segments_coarsens_packets_but_not_the_time(capsys):
    """A 64 KiB ring step (1 MiB all-reduce over 16 ranks) as every real packet or as two
    segments: same simulated time (one hop per step on a torus ring), 1/k of the packets."""
    base = ("--topo", "torus:dims=4x4", "--size", "1MiB", "--json")
    code, out, _ = run_cli(capsys, *base, "--max-segments", "none")
    fine = json.loads(out)
    code2, out2, _ = run_cli(capsys, *base, "--max-segments", "2")
    coarse = json.loads(out2)
    assert code == code2 == 0
    assert (fine["max_segments"], coarse["max_segments"]) == (None, 2)
    assert coarse["time_s"] == pytest.approx(fine["time_s"], rel=1e-9)
    assert coarse["packets"] == 2 * coarse["transfers"] < fine["packets"]
    code, out, err = run_cli(capsys, "--topo", "torus:dims=4x4", "--size", "1MiB",
                             "--max-segments", "0")  # fmt: skip
    assert code == 2 and err.startswith("error: max_segments:") and err.count("\n") == 1


def test_detail_returns_every_link_utilisation_and_it_adds_up():
    """Ring all-reduce of 1 MiB on a 4x4 torus (rank order row-major): each of the 2(p-1) = 30
    steps moves 64 KiB over 12 one-hop and 4 two-hop neighbour pairs (row ends wrap to the
    next row), 20 link traversals; the links' busy time adds up to 30 * 20 messages."""
    from collectives import make_backend, run_collective
    from topologies.torus import torus

    r = run_collective("torus:dims=4x4", "allreduce", "ring", "1MiB", detail=True)
    util = r["link_utilisation"]
    assert len(util) == 64  # 32 links, both directions
    assert max(x for _, _, x in util) == pytest.approx(r["max_link_utilisation"])
    be = make_backend(torus((4, 4)), "packet")
    wire = 65536 + -(-65536 // be.mtu) * be.header
    busy = sum(x for _, _, x in util) * r["time_s"] * 50e9  # ICI links: 50 GB/s
    assert busy / wire == pytest.approx(30 * 20, rel=1e-9)
    assert "link_utilisation" not in run_collective("torus:dims=4x4", "allreduce", "ring", "1KiB")


def test_flow_backend_from_the_command_line_sees_contention(capsys):
    # One-shot on a 4x4 torus at 4 MiB: links are shared, so the flow model is slower than
    # the contention-free alpha-beta estimate printed beside it.
    code, out, _ = run_cli(capsys, "--topo", "torus:dims=4x4", "--algo", "oneshot", "--size",
                           "4MiB", "--backend", "flow", "--json")  # fmt: skip
    assert code == 0
    r = json.loads(out)
    assert r["network_model"] == "flow/max-min" and r["forwarding"] is None
    assert r["time_s"] > 5 * r["analytical_time_s"]
