"""The test suite on the oldest and the newest Python the package is tested on.

Layer: build tooling. ``.ci/run`` runs these sessions before the README's test command, which
runs the whole suite on the machine's own Python. They leave out, to keep CI short, what tests
the same things on any Python: the slow end-to-end tests, tests/collection/ (ansible-test and
the collection tarball, which test the collection rather than the Python that runs pytest),
tests/daemons/ (the shipped configurations, read by Icinga 2 and Nagios) and tests/docs/ (the
commands of the pages). The README's command runs all of them. Run ``nox`` from the repository
root with python3.10 and python3.13 on PATH, or ``nox -s tests-3.13`` for one of them;
arguments after ``--`` go to pytest.
"""

from __future__ import annotations

import nox

# uv builds a session's venv in seconds where pip takes about 40 s; venv where uv is missing.
nox.options.default_venv_backend = "uv|venv"

# The lower bound of requires-python in pyproject.toml, and the newest Python CI has.
PYTHONS = ["3.10", "3.13"]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Every test but the slow ones, the Ansible collection's tool runs, the daemons' and the
    docs'."""
    # The versions CI pins (constraints.txt); its markers pick each Python's lines.
    session.install("-c", "constraints.txt", "-e", ".[test]")
    session.run(
        "python",
        "-m",
        "pytest",
        "-m",
        "not slow",
        "--ignore=tests/collection",
        "--ignore=tests/daemons",
        "--ignore=tests/docs",
        # Sessions may run at once (.ci/run does): no shared .pytest_cache to write.
        "-p",
        "no:cacheprovider",
        *session.posargs,
    )
