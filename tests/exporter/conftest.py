"""Fixtures of the exporter's tests: ``check_grpc_health_exporter`` processes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from support.exporting import RunningExporter

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[Callable[..., RunningExporter]]:
    """Factory: ``exporter("grpc: -t 5\\n", "--allow-target", "127.0.0.1:*")``.

    The first argument is the modules file's text. Each exporter is stopped after the
    test, which checks that it stopped cleanly and never printed a traceback.
    """
    started: list[RunningExporter] = []

    def start(modules: str, *options: str) -> RunningExporter:
        path = tmp_path / f"modules-{len(started)}.txt"
        path.write_text(modules)
        running = RunningExporter("--listen", "127.0.0.1:0", "--modules", str(path), *options)
        started.append(running)
        return running

    yield start
    for running in started:
        code = running.stop()
        assert [line for line in running.lines if "Traceback" in line] == [], running.lines
        assert code == 0, running.lines[-10:]
