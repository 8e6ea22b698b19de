"""The exporter's HTTP endpoints as Prometheus and a person reach them.

Layer: tests (support). :class:`RunningExporter` starts ``check_grpc_health_exporter`` as
its users start it and reads the address it serves from its first line; :func:`get`
sends one HTTP GET (TLS and basic auth optional) and returns the status, headers and
text. :func:`samples` reads the text exposition format into ``{series: value}``.
"""

from __future__ import annotations

import base64
import http.client
import re
import signal
import subprocess
import threading
import time
import urllib.parse
from typing import TYPE_CHECKING, NamedTuple

from support.paths import BIN

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable, Mapping

EXPORTER = str(BIN / "check_grpc_health_exporter")
START_TIMEOUT = 20.0
REQUEST_TIMEOUT = 30.0
SERVING = re.compile(r"serving (\S+) .*on (https?://\S+)")


class Answer(NamedTuple):
    status: int
    headers: dict[str, str]
    text: str


def get(
    url: str,
    headers: Mapping[str, str] | None = None,
    *,
    context: ssl.SSLContext | None = None,
    auth: tuple[str, str] | None = None,
    method: str = "GET",
    timeout: float = REQUEST_TIMEOUT,
) -> Answer:
    """One request; the answer whatever its status (never an exception for a 4xx)."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "", parts.port or 80
    if parts.scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, context=context, timeout=timeout
        )
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    sent = dict(headers or {})
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        sent["Authorization"] = f"Basic {token}"
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, path or "/", headers=sent)
        answer = connection.getresponse()
        text = answer.read().decode("utf-8")
    finally:
        connection.close()
    return Answer(answer.status, {key.lower(): value for key, value in answer.getheaders()}, text)


def samples(text: str) -> dict[str, float]:
    """``{'name{labels}': value}`` for every sample line of a text exposition."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            found[series] = float(value)
    return found


def scrape_until(
    url: str, found: Callable[[dict[str, float]], bool], what: str, timeout: float = 20.0
) -> dict[str, float]:
    """Scrape ``url`` until ``found`` holds for its samples (every 50 ms, within ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = get(url)
        current = samples(answer.text) if answer.status == 200 else {}
        if found(current):
            return current
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout:g}s: {answer.status} {answer.text}")
        time.sleep(0.05)


def series(metric: str, /, **labels: str) -> str:
    """A series as the text format writes it, labels sorted: ``name{a="1",b="2"}``."""
    inside = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    return f"{metric}{{{inside}}}" if labels else metric


def probe_url(base: str, target: str, module: str, **more: str | list[str]) -> str:
    query = [("target", target), ("module", module)]
    for key, value in more.items():
        query += [(key, item) for item in (value if isinstance(value, list) else [value])]
    return f"{base}/probe?{urllib.parse.urlencode(query)}"


class RunningExporter:
    """``check_grpc_health_exporter`` with ``arguments``; :attr:`url` once it serves."""

    def __init__(self, *arguments: str) -> None:
        self.process = subprocess.Popen(
            [EXPORTER, *arguments],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = SERVING.search(self.line("serving ")).group(2)  # type: ignore[union-attr]

    def _read(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            with self._changed:
                self.lines.append(raw.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def line(self, text: str, *, after: int = 0, timeout: float = START_TIMEOUT) -> str:
        """The first stderr line from index ``after`` on that holds ``text``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[after:]:
                    if text in line:
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.process.poll() is not None:
                    raise AssertionError(
                        f"no line with {text!r} within {timeout:g}s (exit code "
                        f"{self.process.poll()}): {self.lines[-10:]}"
                    )
                self._changed.wait(min(remaining, 0.5))

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self._reader.join(timeout)
        return code
