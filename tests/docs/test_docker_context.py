"""The example image's build context: .dockerignore keeps the checkout's clutter out.

No Docker engine is needed: the test applies Docker's ignore-file rules (Go
``filepath.Match`` patterns, ``**`` for any depth, ``!`` exceptions, the last matching
line wins, a pattern matching a directory covers everything below it) to real paths,
and checks that everything the Dockerfile copies is in the context.
"""

from __future__ import annotations

import re
import subprocess

from support.paths import ROOT

DOCKERFILE = ROOT / "docs" / "examples" / "Dockerfile"
IGNORE_FILE = ROOT / ".dockerignore"


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            parts.append("(.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            parts.append("[^/]")
            index += 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(parts))


def ignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """(is an exception, pattern) per line of .dockerignore, as Docker reads them."""
    rules = []
    for raw in IGNORE_FILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = line.removeprefix("!").strip().strip("/")
        rules.append((exception, _pattern_regex(pattern)))
    return rules


def in_context(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker sends ``path`` (relative to the context root) to the builder."""
    parents = [path]
    while "/" in parents[-1]:
        parents.append(parents[-1].rpartition("/")[0])
    excluded = False
    for exception, regex in rules:
        if any(regex.fullmatch(candidate) for candidate in parents):
            excluded = not exception
    return not excluded


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
    )
    return listed.stdout.splitlines()


def copied_sources() -> list[str]:
    """The context paths the Dockerfile's COPY lines name."""
    sources = []
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY "):
            *names, _destination = line.split()[1:]
            sources.extend(name for name in names if not name.startswith("--"))
    return sources


def test_the_rules_behave_as_dockers() -> None:
    rules = [
        (False, _pattern_regex("*")),
        (True, _pattern_regex("src")),
        (False, _pattern_regex("**/__pycache__")),
    ]
    assert in_context("src/a/b.py", rules)
    assert not in_context("src/a/__pycache__/b.pyc", rules)
    assert not in_context(".git/HEAD", rules)
    assert not in_context("docs/x.md", rules)


def test_the_checkout_clutter_stays_out_of_the_build_context() -> None:
    rules = ignore_rules()
    for path in (
        ".git/HEAD",
        ".git/objects/pack/pack-1.pack",
        ".venv/bin/python",
        ".venv/lib/python3.12/site-packages/grpc/__init__.py",
        ".mypy_cache/3.12/cache.db",
        ".hypothesis/examples/x",
        "check_grpc_health/__pycache__/text.cpython-312.pyc",
        "check_grpc_health.egg-info/PKG-INFO",
        "ansible_collections/grpc_health/probe/tests/output/x",
        "build/lib/check_grpc_health/text.py",
        "dist/check_grpc_health-0.1.0.tar.gz",
        "tests/test_layout.py",
    ):
        assert not in_context(path, rules), path


def test_everything_the_dockerfile_copies_is_in_the_context() -> None:
    rules = ignore_rules()
    sources = copied_sources()
    assert "." not in sources, "copy only what the image needs"
    assert {"pyproject.toml", "README.md", "check_grpc_health"} <= set(sources)
    files = tracked_files()
    for source in sources:
        covered = [path for path in files if path == source or path.startswith(source + "/")]
        assert covered, source
        for path in covered:
            assert in_context(path, rules), path


def test_the_package_builds_from_what_the_context_holds() -> None:
    # pip builds from pyproject.toml: its readme and the package must be there.
    pyproject = (ROOT / "pyproject.toml").read_text()
    readme = re.search(r'^readme = "(.+)"$', pyproject, re.MULTILINE)
    assert readme is not None
    rules = ignore_rules()
    assert in_context(readme.group(1), rules)
    assert in_context("LICENSE", rules)
    assert in_context("check_grpc_health/py.typed", rules)
