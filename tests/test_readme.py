"""The README's Python example runs as written, and its quick-start commands are the ones CI
runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_python_example_runs(tmp_path, monkeypatch):
    code = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    code = code.replace('"examples/', f'"{ROOT}/examples/')
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)
    assert ns["r"].time_s > 0
    assert ns["row"]["algo"] == "innetwork" and ns["row"]["busbw"] > 0
    assert ns["tok"].token_latency_s > 0
    assert len(ns["table"]) == 48  # the points of examples/stragglers.yaml


def test_quick_start_test_command_is_what_ci_runs():
    first_block = re.search(r"```bash\n(.*?)```", README, re.S).group(1).splitlines()
    assert first_block[0].startswith("pip install . && netsim quickstart")
    test_cmd = first_block[1].split("&&", 1)[1].split("#", 1)[0].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_cmd in ci.splitlines()
