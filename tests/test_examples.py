"""Every examples/*.yaml is a valid study: its header is honest (point count, commands), it
expands with the real spec parser, representative points run without error on the real
experiment kinds, and the plot commands of its header draw from those results."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

import netsim.app.commands.plot as plot_command
from netsim.app.cli import main
from netsim.app.results import ResultsWriter, load_results
from netsim.app.sweep import SweepSpec, execute_point, load_spec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def _header(path: Path) -> str:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return "\n".join(lines)


def _commands(path: Path, verb: str) -> list[list[str]]:
    return [
        shlex.split(line.strip())[1:]
        for line in _header(path).splitlines()
        if line.startswith(f"netsim {verb} ")
    ]


def _representative(spec: SweepSpec) -> list:
    """Per case, on its first topology and first seed: points that together take every
    value of every swept parameter (other than topo) at least once."""
    chosen = []
    for case in spec.cases:
        one = SweepSpec([case], spec.seeds[:1], 1).points()
        first_topo = case["sweep"]["topo"][0] if "topo" in case["sweep"] else None
        if first_topo is not None:
            one = [p for p in one if p.params["topo"] == first_topo]
        todo = {(k, str(v)) for k, vs in case["sweep"].items() if k != "topo" for v in vs}
        todo = {kv for kv in todo if any(str(p.params[kv[0]]) == kv[1] for p in one)}
        chosen.append(one[0])
        todo -= {(k, str(v)) for k, v in one[0].params.items()}
        for p in one[1:]:
            new = {(k, str(v)) for k, v in p.params.items()} & todo
            if new:
                chosen.append(p)
                todo -= new
    return chosen


def test_there_are_the_five_studies_of_the_issue():
    names = {p.stem for p in EXAMPLES}
    assert names >= {
        "train_vs_decode",
        "decode_topology_scale",
        "innetwork_vs_ring",
        "stragglers",
        "moe_skew",
    }


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_header_is_honest(path):
    head = _header(path)
    assert "Reproduces:" in head, "say what the study reproduces"
    m = re.search(r"Points:[^=]*= (\d[\d,]*)", head)
    assert m, "give the point count as 'Points: ... = N'"
    points = load_spec(path).points()
    assert len(points) == int(m.group(1).replace(",", "")), "the point count in the header"
    assert re.search(r"\d+ (s|seconds|minutes?)\s+on\s+2 cores", head), "the expected runtime"
    sweeps = _commands(path, "sweep")
    assert sweeps and sweeps[0][1] == f"examples/{path.name}"
    assert _commands(path, "plot"), "a command that plots the results"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_sweep_command_of_the_header_is_valid(path, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    for argv in _commands(path, "sweep"):
        out = tmp_path / "r.h5"
        argv = [a if not a.endswith(".h5") else str(out) for a in argv]
        assert main([*argv, "--dry-run"]) == 0
        assert capsys.readouterr().out.startswith(f"{len(load_spec(path).points())} points")
        assert not out.exists()  # a dry run writes nothing


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_representative_points_run_and_header_plots_draw(path, tmp_path, monkeypatch):
    spec = load_spec(path)
    points = _representative(spec)
    assert points[0] == spec.points()[0]  # the first point of the study is among them
    results = tmp_path / "results.h5"
    with ResultsWriter(results, spec.text) as writer:
        for p in points:
            record = execute_point(p)
            assert record["error"] is None, (p.params, record["error"])
            # a configuration that does not fit in memory gives NaN times: not a study
            assert record["metrics"].get("fits", True) is True, p.params
            writer.add(record)
    table = load_results(results)
    assert len(table) == len(points) and set(table["error"]) == {""}
    drawn = []
    real = plot_command.plot_results

    def spy(*args, **kw):
        fig = real(*args, **kw)
        drawn.append(fig)
        return fig

    monkeypatch.setattr(plot_command, "plot_results", spy)
    for i, argv in enumerate(_commands(path, "plot")):
        argv = [str(results) if a.endswith(".h5") else a for a in argv]
        k = argv.index("--out")
        argv[k + 1] = str(tmp_path / f"fig{i}{Path(argv[k + 1]).suffix}")
        assert main(argv) == 0, argv
        assert Path(argv[k + 1]).stat().st_size > 1000
        fig = drawn[-1]
        plotted = [ln for ax in fig.axes for ln in ax.get_lines() if len(ln.get_xdata())]
        assert plotted or any(ax.patches for ax in fig.axes), f"nothing drawn by {argv}"
