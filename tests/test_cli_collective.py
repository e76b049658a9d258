"""``netsim collective`` end to end."""

from __future__ import annotations

import json

import pytest

from netsim.cli import main


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
    assert r["model"] == "analytical/alpha-beta" and "netsim_version" in r and r["seed"] == 0


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
