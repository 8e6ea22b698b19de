"""Prometheus tools for tests: a real node_exporter serving a textfile folder, and promtool.

node_exporter (Debian's prometheus-node-exporter) runs with only the textfile collector.
It gets its listening socket already bound and listening, as systemd socket activation
hands it over (``--web.systemd-socket``): the port is known before the process starts,
no other process can take it, and a scrape sent at once waits in the socket's backlog
instead of being refused, so there is nothing to wait for.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
from typing import TYPE_CHECKING

from support.daemons.process import Daemon, find_binary

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

SCRAPE_TIMEOUT = 10.0

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
