"""Channels shared between fleet lines: one connection per target and transport settings.

Layer: adapter (the fleet). Lines that name the same target with the same transport
settings (TLS files, server name, metadata, user agent, authority, gzip, timeouts) probe
on one open :class:`~check_grpc_health.core.channel.HealthChannel` instead of each
opening, connecting and closing its own: a fleet of 10,000 lines over 20 servers makes
20 connections. A line that judges the connect time (``--connect-warning`` or
``--connect-critical``) keeps its own channel, so that its connect time is a real one.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from check_grpc_health.core.channel import HealthChannel
    from check_grpc_health.core.options import ProbeOptions


class _Slot:
    __slots__ = ("channel", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.channel: HealthChannel | None = None


class SharedChannels:
    """Open channels by transport settings, each opened by the first line that needs it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[ProbeOptions, _Slot] = {}

    def __call__(self, options: ProbeOptions) -> HealthChannel:
        """The open channel for ``options``' target and transport (services do not count)."""
        key = replace(options, services=("",))
        with self._lock:
            slot = self._slots.setdefault(key, _Slot())
        with slot.lock:
            if slot.channel is None:
                from check_grpc_health.core.channel import HealthChannel

                # May raise (an unreadable CA file, a failed certificate pin): then the
                # next line that needs the channel tries again and reports its own error.
                slot.channel = HealthChannel(key)
            return slot.channel

    def __len__(self) -> int:
        return sum(slot.channel is not None for slot in self._slots.values())
