"""Channels shared between fleet lines: one connection per target and transport settings.

Layer: adapter (the fleet). Lines that name the same target with the same transport
settings (TLS files, server name, metadata, user agent, authority, gzip, timeouts, proxy
use, address family) probe on one open :class:`~check_grpc_health.core.channel.HealthChannel`
instead of each opening, connecting and closing its own: a fleet of 10,000 lines over 20
servers makes 20 connections.

The first line on a channel connects while the others on it wait for the verdict. If
the connection cannot be made, every line on that channel reports that same failure
at once, instead of each waiting out its own connect timeout. Once connected, lines
probe concurrently; a line then reports as its connect time only the wait for the
ready connection. A line that judges the connect time (``--connect-warning`` or
``--connect-critical``) does not share, so that its connect time is a real one.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from check_grpc_health.core.channel import HealthChannel
    from check_grpc_health.core.options import ProbeOptions
    from check_grpc_health.core.results import ConnectFailure, ProbeResult


def transport_key(options: ProbeOptions) -> tuple[object, ...]:
    """What lines must have in common to share a connection: target and transport."""
    return (
        options.target,
        options.connect_timeout,
        options.rpc_timeout,
        options.tls,
        options.alts,
        options.metadata,
        options.user_agent,
        options.authority,
        options.gzip,
        options.certificate_facts,
        options.use_proxy,
        options.family,
    )


class _Slot:
    __slots__ = ("channel", "failure", "lock", "ready")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.channel: HealthChannel | None = None
        self.failure: ConnectFailure | None = None
        self.ready = False


class SharedChannels:
    """A prober for the plugin's check that shares channels by transport settings."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[tuple[object, ...], _Slot] = {}

    def __call__(self, options: ProbeOptions, diagnose_within: float | None = None) -> ProbeResult:
        """Probe ``options.services`` on the shared channel; raises as the core's probe.

        A failure carries its diagnosis (found within ``diagnose_within`` seconds) once,
        for every line that shares it.
        """
        from check_grpc_health.core.probe import probe

        slot = self._slot(options)
        if not slot.ready:
            with slot.lock:
                if slot.failure is not None:
                    raise slot.failure
                if not slot.ready:
                    return self._first_probe(slot, options, diagnose_within)
        assert slot.channel is not None
        return probe(options, slot.channel, diagnose_within=diagnose_within)

    def _slot(self, options: ProbeOptions) -> _Slot:
        key = transport_key(options)
        with self._lock:
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = _Slot()
            return slot

    @staticmethod
    def _first_probe(
        slot: _Slot, options: ProbeOptions, diagnose_within: float | None
    ) -> ProbeResult:
        from check_grpc_health.core.channel import HealthChannel
        from check_grpc_health.core.probe import explain, probe
        from check_grpc_health.core.results import ConnectFailure, HealthCheckError

        try:
            if slot.channel is None:
                # May also raise InvalidArgument (e.g. an unreadable CA file): then the
                # next line on this slot tries again and reports the same error itself.
                try:
                    slot.channel = HealthChannel(
                        replace(options, services=("",)),
                        snapshot_sockets=diagnose_within is not None,
                    )
                except HealthCheckError as error:
                    if diagnose_within is not None:
                        explain(error, options, diagnose_within)
                    raise
            result = probe(options, slot.channel, diagnose_within=diagnose_within)
        except ConnectFailure as failure:
            slot.failure = failure
            raise
        slot.ready = True
        return result

    def __len__(self) -> int:
        """How many channels were opened."""
        return sum(slot.channel is not None for slot in self._slots.values())
