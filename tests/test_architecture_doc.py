"""docs/architecture.md matches the code: its module map lists every module of the four
packages and nothing else, and it names every member of the Backend protocol."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "architecture.md").read_text()
PACKAGES = ("netsim", "topologies", "collectives", "workloads")


def _listed() -> list[str]:
    block = re.search(r"## Module map\n.*?```text\n(.*?)```", DOC, re.S)
    assert block, "docs/architecture.md: no ```text block under '## Module map'"
    return [line.split()[0] for line in block.group(1).splitlines() if line.strip()]


def _modules() -> set[str]:
    return {str(p.relative_to(ROOT)) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def test_every_listed_module_exists():
    missing = [p for p in _listed() if p not in _modules()]
    assert not missing, f"listed in docs/architecture.md but not in the code: {missing}"


def test_every_module_is_listed_once():
    listed = _listed()
    unlisted = sorted(_modules() - set(listed))
    assert not unlisted, f"add these modules to the module map of docs/architecture.md: {unlisted}"
    twice = sorted({p for p in listed if listed.count(p) > 1})
    assert not twice, f"listed twice: {twice}"


def test_backend_members_are_named_in_the_seam_section():
    tree = ast.parse((ROOT / "netsim" / "core" / "backend.py").read_text())
    (backend,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Backend"]
    members = [n.name for n in backend.body if isinstance(n, ast.FunctionDef)]
    members += [n.target.id for n in backend.body if isinstance(n, ast.AnnAssign)]
    section = DOC.split("## The Backend seam", 1)[1].split("\n## ", 1)[0]
    unnamed = [m for m in members if f"`{m}" not in section]
    assert not unnamed, f"Backend members not described in docs/architecture.md: {unnamed}"
