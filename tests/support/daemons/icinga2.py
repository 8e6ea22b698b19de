"""Icinga 2 for tests: the binary, a configuration folder of its own, and the daemon.

Icinga 2 runs in the foreground with every file it writes under a temporary folder (the
``-D...Dir`` constants), as the current user. tests/daemons/test_icinga2.py runs the shipped
CheckCommand with these; ``support.daemons.icinga2_api`` adds the API and the command pipe.
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

from support.daemons.process import Daemon, current_user_and_group, find_binary

if TYPE_CHECKING:
    from pathlib import Path

START_TIMEOUT = 20.0


def icinga2_binary() -> str:
    return find_binary("icinga2", "icinga2", "/usr/sbin/icinga2", "/usr/bin/icinga2")


def quoted(text: str) -> str:
    """An Icinga 2 DSL string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def daemon_arguments(config: Path, data: Path) -> list[str]:
    """``icinga2 daemon`` arguments that keep every file of the daemon under ``data``."""
    user, group = current_user_and_group()
    return [
        "-c",
        str(config),
        f"-DDataDir={data}/lib",
        f"-DCacheDir={data}/cache",
        f"-DLogDir={data}/log",
        f"-DInitRunDir={data}/run",
        f"-DSpoolDir={data}/spool",
        f"-DRunAsUser={user}",
        f"-DRunAsGroup={group}",
    ]


def make_data_dir(base: Path) -> Path:
    data = base / "data"
    for sub in ("lib", "cache", "log", "run", "spool/tmp"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    return data


def validate(config: Path, data: Path) -> subprocess.CompletedProcess[str]:
    """``icinga2 daemon -C``: the configuration check, output captured."""
    return subprocess.run(
        [icinga2_binary(), "daemon", "-C", *daemon_arguments(config, data)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def start_daemon(config: Path, data: Path, *, name: str = "icinga2") -> Daemon:
    """Icinga 2 in the foreground, logging to its standard output (watched, and copied to a
    file in ``data``); returns once the configuration is active."""
    daemon = Daemon(
        name,
        [icinga2_binary(), "daemon", *daemon_arguments(config, data)],
        log=data / "log" / "console.log",
    )
    try:
        daemon.wait_for(r"information/ConfigItem: Activated all objects\.", timeout=START_TIMEOUT)
    except BaseException:
        daemon.stop()
        raise
    return daemon
