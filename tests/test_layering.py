"""Import rules between modules, read from the source with :mod:`ast` (nothing is imported).

The rules (docs/architecture.md, "Layers"):

1. No module imports another module's ``_private`` name (``from m import _x``) or reads one
   from an imported module (``m._x``): a name another module needs is made public.
2. A private module (``pkg/_name.py``) is imported only by modules inside its package
   (``netsim.app.plots._axes`` by ``netsim.app.plots.*``); the names it shares with the
   package's other modules are public names.
3. No floor imports a floor above it, not even inside a function: the ground floor
   ``netsim.core`` and the topology generators ``topologies`` import nothing from
   ``netsim.app``, ``collectives`` or ``workloads`` (``netsim.core.traffic`` may build a
   topology from a spec string); ``collectives`` imports nothing from ``workloads`` or
   ``netsim.app``; ``workloads`` nothing from ``netsim.app`` (exceptions in ``ALLOWED``).

Every ``.py`` file of the packages, the tests, benchmarks and examples is checked.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TREES = ("netsim", "topologies", "collectives", "workloads", "tests", "benchmarks", "examples")
#: Each floor and the floors above it, which it never imports (not even inside a function).
FLOORS = {
    "netsim/core": ("netsim.app", "collectives", "workloads"),
    "topologies": ("netsim.app", "collectives", "workloads"),
    "collectives": ("netsim.app", "workloads"),
    "workloads": ("netsim.app",),
}

#: Known exceptions ``(file, message)``, each to be removed by its owner; an entry whose
#: import is gone is simply unused.
ALLOWED: set[tuple[str, str]] = {
    # The options-to-argparse generator lives in the package-private commands/_common.py.
    ("tests/test_options.py", "imports private module netsim.app.commands._common"),
    # The builders' shared signature template lives in the package-private collectives/_common.py.
    ("tests/test_builders.py", "imports private module collectives._common"),
    # reduce_bandwidth="h100" reads a chip preset's HBM bandwidth: the one place where
    # collectives reach up to workloads (a chip-name parser passed in would remove it).
    ("collectives/options.py", "imports workloads.chips"),
}


def _module_name(rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    if parts[0] in ("tests", "benchmarks", "examples"):
        return parts[-1]  # test modules and scripts import each other by bare name
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _ours(module: str) -> bool:
    """Whether ``module`` is a module of this repository (not the standard library's)."""
    top = module.split(".")[0]
    return top in TREES[:4] or (ROOT / "tests" / f"{top}.py").is_file()


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _imports(tree: ast.AST, package: str) -> list[tuple[int, str, str | None]]:
    """``(line, module, imported name or None)`` of every import, with absolute names."""
    out: list[tuple[int, str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                up = parts[: len(parts) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            out += [(node.lineno, base, a.name) for a in node.names]
    return out


def _check(rel: str, me: str, is_package: bool, source: str) -> list[str]:
    """Every breach of rules 1 and 2 in one module's ``source``."""
    tree = ast.parse(source, rel)
    package = me if is_package else me.rpartition(".")[0]
    found = []
    aliases: dict[str, str] = {}  # local name -> module it is bound to
    for line, module, name in _imports(tree, package):
        if not _ours(module):
            continue
        full = f"{module}.{name}" if name else module
        if name is None or _is_module(full):
            aliases[full.rpartition(".")[2] if name else full.split(".")[0]] = full
        elif _private(name):
            found.append(f"{rel}:{line}: imports private name {name} of {module}")
            continue
        else:
            full = module
        parts = full.split(".")
        for i, part in enumerate(parts):
            owner = ".".join(parts[:i])
            if _private(part) and not (me == owner or me.startswith(f"{owner}.")):
                found.append(f"{rel}:{line}: imports private module {'.'.join(parts[: i + 1])}")
                break
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases.update({a.asname: a.name for a in node.names if a.asname and _ours(a.name)})
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and _private(node.attr)
        ):
            found.append(f"{rel}:{node.lineno}: reads private {aliases[node.value.id]}.{node.attr}")
    return list(dict.fromkeys(found))


def _violations() -> list[str]:
    found = []
    for tree in TREES:
        for path in sorted((ROOT / tree).rglob("*.py")):
            rel = path.relative_to(ROOT)
            is_package = path.name == "__init__.py"
            found += _check(str(rel), _module_name(rel), is_package, path.read_text())
    return found


def _key(violation: str) -> tuple[str, str]:
    where, message = violation.split(": ", 1)
    return where.split(":")[0], message


def test_no_module_uses_another_modules_private_names():
    unexpected = [v for v in _violations() if _key(v) not in ALLOWED]
    assert not unexpected, "\n".join(unexpected)


@pytest.mark.parametrize("floor", FLOORS)
def test_no_floor_imports_a_floor_above_it(floor):
    found = []
    for path in sorted((ROOT / floor).rglob("*.py")):
        rel = path.relative_to(ROOT)
        me = _module_name(rel)
        package = me if path.name == "__init__.py" else me.rpartition(".")[0]
        for line, module, _ in _imports(ast.parse(path.read_text()), package):
            above = any(module == m or module.startswith(f"{m}.") for m in FLOORS[floor])
            if above and (str(rel), f"imports {module}") not in ALLOWED:
                found.append(f"{rel}:{line}: imports {module}")
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from netsim.app.plots._axes import _x\n", "imports private name _x"),
        ("from netsim.app.plots._axes import LABELS\n", "private module netsim.app.plots._axes"),
        ("from netsim.app.plots import _axes\n", "private module netsim.app.plots._axes"),
        ("import collectives.schedule as s\ns._hidden\n", "reads private collectives.schedule._"),
        ("from collectives import schedule\nschedule._x\n", "reads private collectives.schedule._"),
        ("from .schedule import _x\n", "imports private name _x of collectives.schedule"),
    ],
)
def test_the_checker_catches_each_kind(source, expected):
    """Each rule fires on a module outside the package that owns the private name."""
    found = _check("collectives/probe.py", "collectives.probe", False, source)
    assert any(expected in v for v in found), found


def test_the_checker_allows_a_private_module_inside_its_package():
    source = "from netsim.app.plots._axes import LABELS\nfrom ._data import select\n"
    assert _check("netsim/app/plots/x.py", "netsim.app.plots.x", False, source) == []
