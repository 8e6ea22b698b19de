"""The Ansible tools installed next to this Python, for the tests that run them.

Layer: tests (support). ``pip install -e '.[test]'`` installs ansible-core, ansible-lint,
ansible-builder and antsibull-changelog into the venv that runs the tests.
"""

from __future__ import annotations

import os
import shutil

import pytest

from support.paths import BIN


def tool(name: str) -> str:
    """The path of an Ansible tool next to this Python; skip without it (fail under CI)."""
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        message = f"{name} is not installed (pip install -e '.[test]' installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found
