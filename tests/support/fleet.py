"""check_grpc_health_fleet run as a process, with the options that point it at a real daemon.

Layer: tests (support). The fleet's delivery tests share these: a run of the installed
console script, a fleet file, the ``--icinga2-*`` options for the test harness's Icinga 2
(``support.daemons.icinga2_api``), and the times that differ from run to run.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from typing import TYPE_CHECKING

from support.paths import FLEET

if TYPE_CHECKING:
    from pathlib import Path

    from support.daemons.icinga2_api import Icinga2Api

PREFIX = "check_grpc_health_fleet: "


def fleet(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The fleet with ``arguments``, without the API password of the calling environment."""
    environment = {k: v for k, v in os.environ.items() if k != "ICINGA2_API_PASSWORD"}
    environment.update(env or {})
    return subprocess.run(
        [FLEET, *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=environment,
    )


def api_options(api: Icinga2Api, *, ca: Path | None = None, url: str | None = None) -> list[str]:
    """``--icinga2-api`` and its user, password file and CA for the harness's Icinga 2."""
    return [
        "--icinga2-api",
        url or api.url,
        "--icinga2-user",
        api.user,
        "--icinga2-password-file",
        str(api.password_file),
        "--icinga2-ca",
        str(ca or api.ca_file),
    ]


def timing(text: str) -> str:
    """``0.0021s`` -> ``Ts``: a time that differs from run to run."""
    return re.sub(r"[0-9.]+s\b", "Ts", text)


def fleet_file(tmp_path: Path, text: str, name: str = "fleet.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


class FifoReader:
    """A FIFO whose reader is this process, and reads only when the test says so.

    It stands for a daemon's command pipe: a writer can open it (a reader holds it), and
    what the writer wrote stays in the pipe until :meth:`read`.
    """

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path
        # Without O_NONBLOCK, opening a FIFO for reading waits for a writer.
        self.handle: int | None = os.open(path, os.O_RDONLY | os.O_NONBLOCK)

    def unread(self) -> int:
        """Bytes in the pipe that no one has read yet."""
        import fcntl
        import struct
        import termios

        assert self.handle is not None
        return int(struct.unpack("i", fcntl.ioctl(self.handle, termios.FIONREAD, b"\0" * 4))[0])

    def capacity(self) -> int:
        import fcntl

        assert self.handle is not None
        return fcntl.fcntl(self.handle, fcntl.F_GETPIPE_SZ)

    def wait_for_unread(self, at_least: int, timeout: float = 20.0) -> None:
        """Wait until the pipe holds ``at_least`` unread bytes (a writer filled it)."""
        deadline = time.monotonic() + timeout
        while self.unread() < at_least:
            waited = f"{self.unread()} bytes in the pipe after {timeout}s"
            assert time.monotonic() < deadline, waited
            time.sleep(0.01)

    def wait_until_full(self, timeout: float = 20.0) -> None:
        """Wait until the pipe has no room for another command of up to 4096 bytes."""
        self.wait_for_unread(self.capacity() - 4096, timeout)

    def read(self, size: int = 1 << 20) -> bytes:
        """One read of what is there, at most ``size`` bytes."""
        assert self.handle is not None
        try:
            return os.read(self.handle, size)
        except BlockingIOError:
            return b""

    def close(self) -> None:
        """The reader goes away."""
        if self.handle is not None:
            os.close(self.handle)
            self.handle = None
