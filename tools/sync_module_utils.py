"""Copy the core into the Ansible collection's module_utils, or check that the copy is current.

Layer: build tooling. The collection must work from a Galaxy tarball with only grpcio and
grpcio-health-checking on the managed node, so it carries its own copy of the core
(every module of ``check_grpc_health/core/``) under ``plugins/module_utils/core/``.
The copy is generated, never edited by hand:

* ``from check_grpc_health.core.X import`` becomes ``from .X import``, which AnsiballZ ships;
* top-level ``grpc`` imports are wrapped in a guard that records ``GRPC_IMPORT_ERROR``,
  because a module must report a missing library with ``missing_required_lib`` (and
  ``ansible-test sanity``'s import test loads every module_utils file without grpcio);
* ``assert`` statements become explicit ``raise AssertionError``: sanity forbids ``assert``
  in plugins, and an explicit raise also survives ``python -O``;
* a throw-away ``_`` target becomes ``_unused``: sanity's pylint reserves ``_``.

Usage: ``python tools/sync_module_utils.py`` rewrites the copy; ``--check`` exits 1 and
names the stale files when the copy differs from what the core would generate.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "check_grpc_health/core"
DESTINATION = ROOT / "ansible_collections/grpc_health/probe/plugins/module_utils/core"
# Every module of the core, so a new one is carried without another edit here.
MODULES = tuple(sorted(path.stem for path in SOURCE.glob("*.py")))
GUARDED_PACKAGES = frozenset({"grpc", "grpc_health"})
THROWAWAY = "_unused"
_CORE_IMPORT = re.compile(r"^(\s*)from check_grpc_health\.core\.(\w+) import", re.MULTILINE)


class SyncError(Exception):
    """The core uses a construct this generator cannot translate safely."""


def header(name: str) -> str:
    """The comment that opens every generated file."""
    return (
        f"# Generated from check_grpc_health/core/{name}.py by tools/sync_module_utils.py.\n"
        "# Do not edit: change the core, then run `python tools/sync_module_utils.py`.\n"
    )


def generate(name: str, source: str) -> str:
    """Translate one core module into its module_utils form."""
    text = _CORE_IMPORT.sub(r"\1from .\2 import", source)
    text = _replace_asserts(text)
    text = _rename_throwaway_targets(text)
    text = _guard_third_party_imports(text)
    _refuse_leftover_core_imports(name, text)
    return header(name) + text


def _replace_asserts(text: str) -> str:
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    asserts = sorted(
        (node for node in ast.walk(tree) if isinstance(node, ast.Assert)),
        key=lambda node: node.lineno,
        reverse=True,
    )
    for node in asserts:
        if node.end_lineno is None:
            raise SyncError(f"cannot read the assert on line {node.lineno}")
        indent = " " * node.col_offset
        message = ast.unparse(node.msg) if node.msg is not None else repr(ast.unparse(node.test))
        replacement = (
            f"{indent}if {ast.unparse(_negate(node.test))}:\n"
            f"{indent}    raise AssertionError({message})\n"
        )
        lines[node.lineno - 1 : node.end_lineno] = [replacement]
    return "".join(lines)


def _rename_throwaway_targets(text: str) -> str:
    names = [node for node in ast.walk(ast.parse(text)) if isinstance(node, ast.Name)]
    if any(node.id == "_" and not isinstance(node.ctx, ast.Store) for node in names):
        raise SyncError("'_' is read as a variable; only throw-away targets can be renamed")
    lines = text.splitlines(keepends=True)
    targets = sorted(
        ((node.lineno, node.col_offset) for node in names if node.id == "_"), reverse=True
    )
    for lineno, column in targets:
        line = lines[lineno - 1]
        lines[lineno - 1] = f"{line[:column]}{THROWAWAY}{line[column + 1 :]}"
    return "".join(lines)


def _negate(test: ast.expr) -> ast.expr:
    """``x is not None`` becomes ``x is None``; anything else gets a ``not``."""
    inverse = {ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and type(test.ops[0]) in inverse:
        return ast.Compare(test.left, [inverse[type(test.ops[0])]()], test.comparators)
    return ast.UnaryOp(ast.Not(), test)


def _guard_third_party_imports(text: str) -> str:
    tree = ast.parse(text)
    guarded = [node for node in tree.body if _imports_guarded_package(node)]
    if not guarded:
        return text
    lines = text.splitlines(keepends=True)
    block = "".join(
        "    " + line if line.strip() else line
        for node in guarded
        for line in lines[node.lineno - 1 : node.end_lineno]
    )
    guard = (
        "try:\n"
        f"{block}"
        "except ImportError:\n"
        "    import traceback\n"
        "\n"
        "    GRPC_IMPORT_ERROR: str | None = traceback.format_exc()\n"
        "else:\n"
        "    GRPC_IMPORT_ERROR = None\n"
    )
    for node in reversed(guarded[1:]):
        del lines[node.lineno - 1 : node.end_lineno]
    first = guarded[0]
    lines[first.lineno - 1 : first.end_lineno] = [guard]
    return "".join(lines)


def _imports_guarded_package(node: ast.stmt) -> bool:
    if isinstance(node, ast.Import):
        return any(alias.name.split(".")[0] in GUARDED_PACKAGES for alias in node.names)
    if isinstance(node, ast.ImportFrom):
        return node.level == 0 and (node.module or "").split(".")[0] in GUARDED_PACKAGES
    return False


def _refuse_leftover_core_imports(name: str, text: str) -> None:
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        if any(module.split(".")[0] == "check_grpc_health" for module in names):
            raise SyncError(
                f"check_grpc_health/core/{name}.py line {node.lineno}: only "
                "'from check_grpc_health.core.<module> import ...' can be made relative"
            )


def expected_files() -> dict[Path, str]:
    """Every generated file and the text it must have.

    The package's ``__init__.py`` stays empty: ansible-core 2.17's sanity test empty-init
    wants that of every module_utils package, and nothing imports from it.
    """
    return {
        DESTINATION / f"{name}.py": (
            "" if name == "__init__" else generate(name, (SOURCE / f"{name}.py").read_text("utf-8"))
        )
        for name in MODULES
    }


def stale_files(expected: dict[Path, str]) -> list[Path]:
    """Generated files that are missing, different, or no longer generated."""
    stale = [
        path
        for path, text in expected.items()
        if not path.is_file() or path.read_text("utf-8") != text
    ]
    if DESTINATION.is_dir():
        stale.extend(path for path in sorted(DESTINATION.glob("*.py")) if path not in expected)
    return stale


def main(argv: list[str] | None = None) -> int:
    """Write the copy, or with ``--check`` report whether it is current."""
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--check"]):
        print("usage: sync_module_utils.py [--check]", file=sys.stderr)
        return 2
    try:
        expected = expected_files()
    except (SyncError, SyntaxError, OSError) as error:
        print(f"sync_module_utils: {error}", file=sys.stderr)
        return 2
    stale = stale_files(expected)
    if args == ["--check"]:
        if stale:
            names = ", ".join(str(path.relative_to(ROOT)) for path in stale)
            print(
                f"module_utils copy of the core is stale: {names}\n"
                "run: python tools/sync_module_utils.py",
                file=sys.stderr,
            )
            return 1
        print("module_utils copy of the core is current")
        return 0
    DESTINATION.mkdir(parents=True, exist_ok=True)
    for path in stale:
        if path in expected:
            path.write_text(expected[path], "utf-8")
        else:
            path.unlink()
        print(f"wrote {path.relative_to(ROOT)}" if path in expected else f"removed {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
