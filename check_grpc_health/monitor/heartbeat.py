"""What a heartbeat learns of a line: a Check of every service, and discovery again.

Layer: adapter (the monitor); acquisition only, judging is :mod:`.state`'s. A heartbeat
Checks every service of the line on the connection its streams use (``grpc.aio``: no
thread), which measures the latency the thresholds judge and catches a server whose
streams stay open but that no longer answers. Where that fails to connect, the
one-shot probe runs in a worker thread on a fresh channel, so the failure reads, and
is diagnosed, exactly as the one-shot fleet's would. The certificate's expiry
(``--cert-warning``/``--cert-critical``), reflection (``--all-services``) and name
resolution (``--all-addresses``) use the core's blocking functions, in worker threads.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from check_grpc_health.core.results import ConnectFailure, HealthCheckError, InvalidArgument

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Executor

    from check_grpc_health.core.options import ProbeOptions
    from check_grpc_health.core.results import ProbeResult
    from check_grpc_health.monitor.connections import Connections
    from check_grpc_health.plugin.options import PluginOptions


T = TypeVar("T")
#: Seconds for which one fresh connection's failure answers for every line that shares it.
_SHARED = 0.5


class Learnt(NamedTuple):
    """One heartbeat's findings.

    ``backends`` maps each backend's address to its probe or the reason there is none;
    ``failure`` is set when discovery itself failed (the name does not resolve, the
    server lists no services), and then ``backends`` is empty. ``services`` is the
    listing of an ``--all-services`` line, the overall health first.
    """

    backends: dict[str, ProbeResult | HealthCheckError]
    options: dict[str, ProbeOptions]
    failure: HealthCheckError | None = None
    services: tuple[str, ...] | None = None


class Heartbeat:
    """Runs heartbeats on the monitor's connections and worker threads."""

    def __init__(self, connections: Connections, executor: Executor) -> None:
        self.connections = connections
        self.executor = executor
        # A fresh connection's failure per transport key, shared by the lines that ask
        # within _SHARED seconds: a killed server's 500 lines make one connection attempt.
        self._fresh: dict[
            tuple[object, ...], tuple[float, asyncio.Future[HealthCheckError | None]]
        ] = {}

    async def _blocking(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in a worker thread (the core's blocking calls)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, function, *args)

    async def beat(self, options: PluginOptions, *, fresh: bool = False) -> Learnt:
        """One heartbeat of a line with ``options``.

        ``fresh`` skips the monitor's own connection, which a broken stream has just
        shown to be down, and asks on a fresh channel at once.
        """
        probe = options.probe
        within = options.diagnose_within
        if options.all_addresses:
            from check_grpc_health.core.discovery import address_options, resolve_addresses

            try:
                targets = await self._blocking(
                    resolve_addresses, probe.target, options.address_family
                )
            except HealthCheckError as error:
                return Learnt({}, {}, error)
            backends = address_options(probe, targets)
            found = await asyncio.gather(
                *(self.probe(one, within, fresh=fresh) for one in backends)
            )
            return Learnt(
                {one.target.display: result for one, result in zip(backends, found, strict=True)},
                {one.target.display: one for one in backends},
            )
        services = None
        if options.all_services:
            from check_grpc_health.core.discovery import list_services

            try:
                listed = await self._blocking(list_services, probe)
            except HealthCheckError as error:
                return Learnt({}, {}, error)
            services = ("", *listed)
            from dataclasses import replace

            probe = replace(probe, services=services)
        result = await self.probe(probe, within, fresh=fresh)
        display = probe.target.display
        return Learnt({display: result}, {display: probe}, None, services)

    async def probe(
        self, options: ProbeOptions, within: float, *, fresh: bool = False
    ) -> ProbeResult | HealthCheckError:
        """Check every service of ``options``: a probe, or why there is none."""
        from check_grpc_health.core.probe import explain_services, with_certificate

        result: ProbeResult | None = None
        if not fresh:
            try:
                connection = await self.connections.for_check(options)
                result = await connection.channel.probe(options.services)
            except InvalidArgument as error:
                return error
            except ConnectFailure:
                result = None
        if result is None or _connection_lost(result):
            # The one-shot probe on a fresh channel: its failure, and its diagnosis.
            failure = await self._fresh_connection(options, within)
            if failure is not None:
                return failure
            try:
                return await self._blocking(_probe_once, options, within)
            except HealthCheckError as error:
                return error
        if any(outcome.error is not None for outcome in result.services):
            await self._blocking(explain_services, result, options, within)
        if options.certificate_facts and result.certificate is None:
            try:
                result = await self._blocking(with_certificate, options, result)
            except HealthCheckError as error:
                return error
        return result

    async def _fresh_connection(
        self, options: ProbeOptions, within: float
    ) -> HealthCheckError | None:
        """Connect on a fresh channel: None when it works, else the diagnosed failure.

        Lines with the same transport settings that ask within :data:`_SHARED` seconds
        of each other share one attempt.
        """
        from check_grpc_health.fleet.channels import transport_key

        loop = asyncio.get_running_loop()
        key = transport_key(options)
        shared = self._fresh.get(key)
        if shared is None or (shared[1].done() and loop.time() - shared[0] > _SHARED):
            attempt = loop.run_in_executor(self.executor, _connect_fresh, options, within)
            shared = self._fresh[key] = (loop.time(), attempt)
        when, attempt = shared
        failure = await asyncio.shield(attempt)
        if self._fresh.get(key) is shared:
            # Stamped with its end, so that lines that ask just after it share it too.
            self._fresh[key] = (max(when, loop.time()), attempt)
        return failure


def _connection_lost(result: ProbeResult) -> bool:
    """A Check that failed because the connection went: a question for a fresh channel."""
    return any(
        outcome.error is not None and outcome.error.code_name in ("UNAVAILABLE", "CANCELLED")
        for outcome in result.services
    )


def _connect_fresh(options: ProbeOptions, within: float) -> HealthCheckError | None:
    """Connect on a channel of its own; the failure with its diagnosis, or None."""
    from dataclasses import replace

    from check_grpc_health.core.channel import HealthChannel
    from check_grpc_health.core.probe import explain

    try:
        with HealthChannel(
            replace(options, services=options.services[:1]), snapshot_sockets=True
        ) as channel:
            channel.connect(options.connect_timeout)
    except HealthCheckError as error:
        explain(error, options, within)
        return error
    return None


def _probe_once(options: ProbeOptions, within: float) -> ProbeResult:
    from check_grpc_health.core.probe import probe

    return probe(options, diagnose_within=within)
