"""Fixtures of the monitor's tests: health servers in processes of their own, monitors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from support.health_process import HealthProcess
from support.watching import WatchingFleet

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


@pytest.fixture
def health_process() -> Iterator[Callable[..., HealthProcess]]:
    """Factory: ``health_process(services, watch=..., max_streams=...)``; killed after."""
    started: list[HealthProcess] = []

    def start(*args: Any, **kwargs: Any) -> HealthProcess:
        server = HealthProcess(*args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def watching(tmp_path: Path) -> Iterator[Callable[..., WatchingFleet]]:
    """Factory: ``watching("line\\nline", *options, interval=...)``.

    Each monitor is stopped after the test, which checks that it stopped cleanly and
    never printed a traceback.
    """
    started: list[WatchingFleet] = []

    def start(text: str, *options: str, **kwargs: Any) -> WatchingFleet:
        path = tmp_path / f"fleet-{len(started)}.txt"
        path.write_text(text)
        monitor = WatchingFleet(path, *options, **kwargs)
        started.append(monitor)
        return monitor

    yield start
    for monitor in started:
        code = monitor.stop()
        assert monitor.tracebacks() == [], "\n".join(monitor.lines)
        assert code == 0, monitor.lines[-10:]
