"""Prometheus tools for tests: node_exporter serving a textfile folder, promtool, and the
Prometheus server itself.

node_exporter (Debian's prometheus-node-exporter) runs with only the textfile collector.
It gets its listening socket already bound and listening, as systemd socket activation
hands it over (``--web.systemd-socket``): the port is known before the process starts,
no other process can take it, and a scrape sent at once waits in the socket's backlog
instead of being refused, so there is nothing to wait for.

The Prometheus server (Debian's ``prometheus``) runs on 127.0.0.1 on a port of its own,
with its data in the test's temporary folder, and is stopped after the test; its HTTP
API answers the tests' queries.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

from support.daemons.process import Daemon, DaemonError, find_binary

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

SCRAPE_TIMEOUT = 10.0
PROMETHEUS_START_TIMEOUT = 30.0
#: How long a test waits for Prometheus to have scraped what it expects.
PROMETHEUS_WAIT = 30.0

# sh -c: move the listening socket from standard input to descriptor 3, where systemd
# puts the first one, and name the process that gets it (LISTEN_PID must be its pid).
_SOCKET_ACTIVATION = 'exec 3<&0 </dev/null; LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"'


def node_exporter_binary() -> str:
    return find_binary(
        "prometheus-node-exporter",
        "prometheus-node-exporter",
        "/usr/bin/prometheus-node-exporter",
        "/usr/bin/node_exporter",
    )


def promtool_binary() -> str:
    return find_binary("promtool", "prometheus", "/usr/bin/promtool")


class NodeExporter:
    """A running node_exporter whose textfile collector reads ``textfile_dir``."""

    def __init__(self, base: Path) -> None:
        self.textfile_dir = base / "textfiles"
        self.textfile_dir.mkdir()
        binary = node_exporter_binary()
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(64)
            self.port = listener.getsockname()[1]
            self.daemon = Daemon(
                "node_exporter",
                [
                    "sh",
                    "-c",
                    _SOCKET_ACTIVATION,
                    binary,
                    "--web.systemd-socket",
                    "--collector.disable-defaults",
                    "--collector.textfile",
                    f"--collector.textfile.directory={self.textfile_dir}",
                ],
                log=base / "node_exporter.log",
                stdin=listener.fileno(),
            )
        self.url = f"http://127.0.0.1:{self.port}/metrics"

    def scrape(self) -> str:
        """GET /metrics; the exposition text (an assertion error on a status other than 200)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=SCRAPE_TIMEOUT)
        try:
            connection.request("GET", "/metrics")
            answer = connection.getresponse()
            text = answer.read().decode("utf-8")
        finally:
            connection.close()
        assert answer.status == 200, f"node_exporter answered {answer.status}: {text}"
        return text

    def stop(self) -> int:
        return self.daemon.stop()


def running_node_exporter(base: Path) -> Iterator[NodeExporter]:
    """Generator form for fixtures: start, yield, stop."""
    exporter = NodeExporter(base)
    try:
        yield exporter
    finally:
        exporter.stop()


def promtool_check_metrics(text: str) -> tuple[int, str]:
    """``promtool check metrics`` on ``text``: its exit code and its output.

    0: accepted; 3: lint problems (one line each, such as ``NAME counter metrics should
    have "_total" suffix``); 1: not parsable (``error while linting: ...``).
    """
    done = subprocess.run(
        [promtool_binary(), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return done.returncode, done.stdout + done.stderr


def prometheus_binary() -> str:
    return find_binary("prometheus", "prometheus", "/usr/bin/prometheus")


class PrometheusServer:
    """The Prometheus server on 127.0.0.1, with ``config`` (a dict, written as YAML) and its
    data in ``base``; :meth:`query` asks its HTTP API."""

    def __init__(self, base: Path, config: dict[str, Any]) -> None:
        import yaml

        self.base = base
        self.config_file = base / "prometheus.yml"
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        binary = prometheus_binary()
        # Prometheus cannot take a listening socket: a free port is picked, and a start
        # that loses it to another process is tried again.
        for attempt in range(3):
            self.port = _free_port()
            self.daemon = Daemon(
                "prometheus",
                [
                    binary,
                    f"--config.file={self.config_file}",
                    f"--storage.tsdb.path={base / f'data-{attempt}'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--web.enable-lifecycle",
                ],
                log=base / "prometheus.log",
            )
            try:
                self.daemon.wait_for(
                    r"Server is ready to receive web requests|address already in use",
                    timeout=PROMETHEUS_START_TIMEOUT,
                )
            except BaseException:
                self.daemon.stop()
                raise
            if not any("address already in use" in line for line in self.daemon.output.lines):
                break
            self.daemon.stop()
        else:
            raise DaemonError(f"prometheus found no free port:\n{self.daemon.output.tail()}")
        self.url = f"http://127.0.0.1:{self.port}"

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/PATH; the ``data`` of a successful answer."""
        query = urllib.parse.urlencode(params)
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=SCRAPE_TIMEOUT)
        try:
            connection.request("GET", f"/api/v1/{path}?{query}")
            answer = connection.getresponse()
            body = json.loads(answer.read())
        finally:
            connection.close()
        assert body.get("status") == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, expression: str) -> list[tuple[dict[str, str], float]]:
        """An instant query: each series' labels and value."""
        data = self.api("query", query=expression)
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    def wait_for(
        self,
        expression: str,
        found: Callable[[list[tuple[dict[str, str], float]]], bool],
        what: str,
        timeout: float = PROMETHEUS_WAIT,
    ) -> list[tuple[dict[str, str], float]]:
        """Query ``expression`` until ``found`` holds for its result (within ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expression)
            if found(result):
                return result
            self.daemon.check_alive()
            if time.monotonic() > deadline:
                targets = [
                    (item["labels"].get("job"), item["health"], item["lastError"])
                    for item in self.api("targets")["activeTargets"]
                ]
                raise DaemonError(
                    f"no {what} within {timeout}s: {expression} = {result}; targets: {targets}"
                )
            time.sleep(0.1)

    def stop(self) -> int:
        return self.daemon.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
