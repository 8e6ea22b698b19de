"""The package layout: small files, no import circles, and argument parsers free of grpc."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from support.paths import ROOT

if TYPE_CHECKING:
    from pathlib import Path

PACKAGE = ROOT / "check_grpc_health"
MAX_LINES = 400
ARGUMENT_PARSERS = [
    "check_grpc_health.plugin.arguments",
    "check_grpc_health.probe_cli.flags",
    "check_grpc_health.fleet.file",
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path) -> set[str]:
    """Every project module ``path`` imports, at the top, in functions or for types."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(name for name in names if name.startswith("check_grpc_health"))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {
        name: {imported for imported in project_imports(path) if imported in modules} - {name}
        for name, path in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_file_is_longer_than_the_limit() -> None:
    long = {
        str(path.relative_to(PACKAGE)): count
        for path in PACKAGE.rglob("*.py")
        if (count := len(path.read_text("utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_no_import_circle_among_the_projects_modules() -> None:
    graph = import_graph()
    assert "check_grpc_health.plugin.check" in graph
    assert cycles(graph) == []


def test_the_circle_finder_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_core_imports_no_adapter() -> None:
    graph = import_graph()
    core = {name for name in graph if name.startswith("check_grpc_health.core")}
    outside = {
        (name, imported)
        for name in core
        for imported in graph[name]
        if not imported.startswith("check_grpc_health.core") and imported != "check_grpc_health"
    }
    assert outside == set()


def test_the_signal_helpers_import_nothing_of_the_project() -> None:
    assert import_graph()["check_grpc_health.signals"] == set()


@pytest.mark.parametrize("module", ARGUMENT_PARSERS)
def test_an_argument_parser_does_not_import_grpc(module: str) -> None:
    code = f"import sys, json\nimport {module}\nprint(json.dumps(sorted(sys.modules)))\n"
    loaded = json.loads(subprocess.check_output([sys.executable, "-c", code], text=True))
    assert module in loaded
    assert [name for name in loaded if name == "grpc" or name.startswith("grpc.")] == []


def test_the_public_face_loads_names_lazily() -> None:
    code = (
        "import sys\nimport check_grpc_health as c\n"
        "before = 'grpc' in sys.modules\nprobe = c.probe\n"
        "listed = sorted(c.__all__) == sorted(dir(c))\n"
        "every = all(getattr(c, name) is not None for name in c.__all__)\n"
        "print(before, 'grpc' in sys.modules, probe.__module__, listed, every)"
    )
    output = subprocess.check_output([sys.executable, "-c", code], text=True)
    assert output == "False True check_grpc_health.core.probe True True\n"
