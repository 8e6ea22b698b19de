"""Foreground daemons for tests: find the binary, start it, watch its output, stop it.

Every wait here has a deadline. Waiting for a daemon means waiting for a line it writes
(a log line on its standard output, a record in a FIFO): a thread copies the lines to a
file in the daemon's temporary folder and wakes whoever waits for one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from typing import IO, TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path


class DaemonError(AssertionError):
    """A daemon did not start, did not answer in time, or died; the message has its last words."""


def find_binary(name: str, package: str, *candidates: str) -> str:
    """The path of a daemon's binary; under ``CI`` a missing one fails the test, else skips it."""
    found = shutil.which(name) or next((path for path in candidates if os.path.exists(path)), None)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(f"{name} is missing, and CI must run this test: apt-get install {package}")
    pytest.skip(f"{name} is not installed (apt-get install --no-install-recommends {package})")


class LineWatcher:
    """Reads lines from a stream in a thread, copies them to a file, and lets callers wait."""

    def __init__(self, stream: IO[bytes], copy: Path, name: str) -> None:
        self.copy = copy
        self._stream = stream
        self._lines: list[str] = []
        self._ended = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self.copy.open("a", encoding="utf-8") as copy:
            for raw in iter(self._stream.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                copy.write(line + "\n")
                copy.flush()
                with self._changed:
                    self._lines.append(line)
                    self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    @property
    def lines(self) -> list[str]:
        with self._changed:
            return list(self._lines)

    def tail(self, count: int = 25, width: int = 300) -> str:
        """The last lines, each cut to ``width`` characters, for an error message."""
        return "\n".join(
            line if len(line) <= width else line[:width] + "..." for line in self.lines[-count:]
        )

    def wait_for(
        self, pattern: re.Pattern[str], *, after: int = 0, timeout: float
    ) -> tuple[int, re.Match[str]]:
        """The first line from index ``after`` on that matches, and the index after it."""
        deadline = time.monotonic() + timeout
        index = after
        with self._changed:
            while True:
                while index < len(self._lines):
                    match = pattern.search(self._lines[index])
                    index += 1
                    if match:
                        return index, match
                if self._ended:
                    raise DaemonError(
                        f"{self._thread.name}: output ended before a line matched "
                        f"{pattern.pattern!r}:\n{self.tail()}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DaemonError(
                        f"{self._thread.name}: no line matched {pattern.pattern!r} "
                        f"within {timeout}s:\n{self.tail()}"
                    )
                self._changed.wait(remaining)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


class Daemon:
    """A process in the foreground whose standard output and error go to a watched log."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log: Path,
        stdin: int = subprocess.DEVNULL,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        self.output = LineWatcher(self.process.stdout, log, name)

    def wait_for(self, pattern: str, *, timeout: float) -> re.Match[str]:
        """The first output line matching ``pattern``; a DaemonError if it dies or is late."""
        return self.output.wait_for(re.compile(pattern), timeout=timeout)[1]

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            self.output.join(1.0)
            raise DaemonError(f"{self.name} exited with {code}:\n{self.output.tail()}")

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL past ``timeout``; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        # Whatever the daemon left behind in its session (workers, helpers) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.output.join(timeout)
        return self.process.returncode


def wait_for_fifo_reader(path: Path, *, timeout: float, daemon: Daemon) -> None:
    """Wait until some process holds the FIFO open for reading.

    A daemon opens its command pipe in a thread or a worker process after it says it
    started, and nothing tells when: opening for writing without blocking is the test
    (ENXIO while nobody reads). The wait is short and bounded.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            if error.errno not in (errno.ENXIO, errno.ENOENT):
                raise
        else:
            os.close(fd)
            return
        daemon.check_alive()
        if time.monotonic() > deadline:
            raise DaemonError(f"{daemon.name}: nobody reads {path} after {timeout}s")
        time.sleep(0.01)


def current_user_and_group() -> tuple[str, str]:
    import grp
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
