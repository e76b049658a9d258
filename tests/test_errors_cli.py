"""The error contract of netsim: exception hierarchy, and CLI exit codes with one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import netsim
from netsim.app.cli import main
from netsim.core.errors import (
    CapacityError,
    ConfigError,
    DeadlockError,
    NetsimError,
    ResultsError,
    SimulationError,
)


def test_hierarchy():
    for cls in (ConfigError, SimulationError, DeadlockError, CapacityError, ResultsError):
        assert issubclass(cls, NetsimError)
    assert issubclass(ConfigError, ValueError)
    assert issubclass(DeadlockError, SimulationError)
    assert issubclass(SimulationError, RuntimeError)


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    return lines[0]


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"netsim {netsim.__version__}"


@pytest.mark.parametrize(
    "argv",
    [
        [],  # no subcommand
        ["no-such-command"],
        ["topo", "--no-such-option"],
        ["traffic"],  # --topo is required
    ],
)
def test_argparse_errors_exit_2_with_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["topo", "torrus:dims=4x4"], "did you mean 'torus'"),
        (["topo", "torus:dimz=4x4"], "unknown parameter 'dimz'"),
        (["topo", "torus:dims=4x4,bandwidth=fast"], "bandwidth"),
        (["topo"], "give a topology SPEC"),
        # an option's value is read by its options object (netsim.core.options), as a sweep's
        (["traffic", "--topo", "torus:dims=4x4", "--size", "4XB"], "size: "),
        (
            ["decode", "--model", "llama3-8b", "--chip", "h100:hbm.speed=1", "--topo", "dgx-h100"],
            "unknown override 'hbm.speed'",
        ),
        (
            [
                "train",
                "--model",
                "llama3-8b",
                "--chip",
                "h100:peak.fp8=lots",
                "--topo",
                "dgx-h100",
                "--dp",
                "8",
            ],
            "chip peak.fp8: expected a rate",
        ),
    ],
)
def test_netsim_errors_exit_2_with_one_line(argv, needle, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert needle in _one_error_line(captured.err)
    assert captured.out == ""


def _netsim() -> list[str]:
    script = Path(sys.executable).with_name("netsim")
    return [str(script)] if script.exists() else [sys.executable, "-m", "netsim"]


def test_console_script_runs_and_fails_cleanly():
    ok = subprocess.run(
        [*_netsim(), "topo", "torus:dims=4x4"], capture_output=True, text=True, timeout=120
    )
    assert ok.returncode == 0, ok.stderr
    assert "chips 16" in ok.stdout
    bad = subprocess.run(
        [*_netsim(), "topo", "torus:dims=4x4,latency=soon"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    line = _one_error_line(bad.stderr)
    assert "latency" in line and "'soon'" in line
    assert bad.stdout == ""
