"""Provide ansible-test's pip bootstrap script where its download host cannot be reached.

Layer: build tooling. Every ``ansible-test`` run (``--venv`` or ``--local``) first bootstraps
pip with a ``get-pip.py`` script that it downloads from its own CI file host, which an
offline or registry-only network cannot reach. ansible-test looks in its cache first, at
``~/.ansible/test/cache/get_pip_<pip version>.py``. This writes a stand-in there that
installs pip with the interpreter's own ``ensurepip`` and then the pip version ansible-test
asked for, from the package index pip is configured for.

A cached script that is not this stand-in (a real download) is left alone. Run it with the
Python that has ansible-core installed: ``python tools/ansible_test_get_pip.py``.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

MARKER = "# check-grpc-health: get-pip stand-in"
STAND_IN = f'''{MARKER}
"""Stand-in for get-pip.py: ensurepip, then ``pip install`` with ansible-test's arguments."""
import subprocess
import sys

# get-pip.py options that pip install does not know.
ARGS = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
subprocess.run([sys.executable, "-m", "ensurepip", "--upgrade"], check=True)
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *ARGS]))
'''
_PIP_VERSION = re.compile(r"""\bpip\s*=\s*['"]([0-9][0-9.]*)['"]""")


def wanted_pip_version() -> str:
    """The pip version the installed ansible-test bootstraps its environments with."""
    spec = importlib.util.find_spec("ansible_test")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("ansible-test is not installed for this Python")
    source = Path(next(iter(spec.submodule_search_locations)), "_internal/python_requirements.py")
    match = _PIP_VERSION.search(source.read_text("utf-8"))
    if match is None:
        raise SystemExit(f"cannot find the bootstrap pip version in {source}")
    return match.group(1)


def install(cache: Path) -> str:
    """Write the stand-in for the wanted pip version; return what was done."""
    path = cache / f"get_pip_{wanted_pip_version().replace('.', '_')}.py"
    if path.is_file() and MARKER not in path.read_text("utf-8", errors="replace"):
        return f"kept the downloaded {path}"
    if path.is_file() and path.read_text("utf-8") == STAND_IN:
        return f"stand-in already in place: {path}"
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(STAND_IN, "utf-8")
    return f"wrote {path}"


def main() -> int:
    """Install the stand-in into ansible-test's cache in the home directory."""
    print(install(Path.home() / ".ansible/test/cache"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
