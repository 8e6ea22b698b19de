"""The exporter's command-line options, shared by ``check_grpc_health_exporter`` and the
monitor's ``--listen``, and the endpoints they set up.

Layer: adapter (the exporter). :func:`add_exporter_options` adds the group to a parser;
:func:`exporter_settings` checks the values (one :class:`InvalidArgument` line each) and
reads the files; :func:`start` builds the registry and serves it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, NamedTuple

from check_grpc_health.core.options import parse_seconds
from check_grpc_health.core.results import InvalidArgument

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Mapping

    from prometheus_client.registry import Collector

    from check_grpc_health.exporter.modules import Module
    from check_grpc_health.exporter.probe import ProbeSettings
    from check_grpc_health.exporter.web import Endpoints, HttpServer
    from check_grpc_health.exporter.webconfig import WebConfig

DEFAULT_OFFSET = 0.5


def add_exporter_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """The ``HTTP endpoints`` group: --listen, --modules, --allow-target, and the rest."""
    group = parser.add_argument_group(
        "HTTP endpoints (Prometheus)",
        "/metrics, /probe?target=HOST:PORT&module=NAME (blackbox_exporter's multi-target "
        "way) and a landing page, on one address.",
    )
    group.add_argument(
        "--listen",
        required=required,
        metavar="HOST:PORT",
        help="serve the endpoints on HOST:PORT (:PORT for every IPv4 address)",
    )
    group.add_argument(
        "--modules",
        metavar="FILE",
        help="turn /probe on with the modules in FILE: one 'NAME: OPTIONS' per line, the "
        "options of a fleet line without -H",
    )
    group.add_argument(
        "--allow-target",
        action="append",
        default=[],
        metavar="PATTERN",
        help="a target /probe may dial (shell pattern, repeatable; '*' allows any): "
        "needed with --modules",
    )
    group.add_argument(
        "--timeout-offset",
        default=f"{DEFAULT_OFFSET:g}",
        metavar="SECONDS",
        help="a probe ends this long before Prometheus' scrape timeout "
        f"(default {DEFAULT_OFFSET:g})",
    )
    group.add_argument(
        "--web-config-file",
        metavar="FILE",
        help="TLS and basic auth, in the web config file of Prometheus' exporters",
    )


class ExporterSettings(NamedTuple):
    """The checked options, with the files read."""

    listen: tuple[str, int]
    modules_path: str | None
    modules: Mapping[str, Module] | None
    patterns: tuple[str, ...]
    offset: float
    web: WebConfig | None

    def probe(self) -> ProbeSettings | None:
        """What /probe needs, or None when it is off."""
        if self.modules is None:
            return None
        from check_grpc_health.exporter.allow import AllowedTargets
        from check_grpc_health.exporter.probe import ProbeSettings

        return ProbeSettings(self.modules, AllowedTargets(self.patterns), self.offset)

    def reread_modules(self) -> ExporterSettings:
        """The modules file read again; :class:`InvalidArgument` when it no longer reads."""
        if self.modules_path is None:
            return self
        from check_grpc_health.exporter.modules import read_modules

        return self._replace(modules=read_modules(self.modules_path, os.environ))


def exporter_settings(args: argparse.Namespace) -> ExporterSettings | None:
    """The endpoints' settings; None without --listen."""
    if args.listen is None:
        for option, given in (
            ("--modules", args.modules),
            ("--allow-target", args.allow_target),
            ("--web-config-file", args.web_config_file),
        ):
            if given:
                raise InvalidArgument(f"{option} needs --listen HOST:PORT")
        return None
    from check_grpc_health.exporter.web import parse_listen

    listen = parse_listen(args.listen)
    if args.allow_target and args.modules is None:
        raise InvalidArgument("--allow-target needs --modules FILE (it is for /probe)")
    if args.modules is not None and not args.allow_target:
        raise InvalidArgument(
            "--modules needs --allow-target PATTERN: /probe dials whatever a scraper names, "
            "so list the targets it may dial ('*' allows any)"
        )
    offset = parse_seconds("--timeout-offset", args.timeout_offset)
    modules = None
    if args.modules is not None:
        from check_grpc_health.exporter.modules import read_modules

        modules = read_modules(args.modules, os.environ)
    web = None
    if args.web_config_file is not None:
        from check_grpc_health.exporter.webconfig import read_web_config

        web = read_web_config(args.web_config_file)
    return ExporterSettings(listen, args.modules, modules, tuple(args.allow_target), offset, web)


def start(
    settings: ExporterSettings, *collectors: Collector, title: str
) -> tuple[HttpServer, Endpoints]:
    """Serve /metrics (the exporter's and the process's figures, and ``collectors``),
    /probe and the landing page; :class:`InvalidArgument` when the address is taken."""
    from prometheus_client import CollectorRegistry, ProcessCollector

    from check_grpc_health.exporter.stats import ExporterStats
    from check_grpc_health.exporter.web import Endpoints, serve

    registry = CollectorRegistry()
    for collector in collectors:
        registry.register(collector)
    stats = ExporterStats(0 if settings.modules is None else len(settings.modules))
    registry.register(stats)
    ProcessCollector(registry=registry)
    endpoints = Endpoints(registry, stats, settings.probe(), settings.web, title)
    tls = None if settings.web is None else settings.web.tls
    return serve(settings.listen, endpoints, tls), endpoints


def url(server: HttpServer, settings: ExporterSettings) -> str:
    """Where the endpoints are, for the start-up line."""
    host, port = server.server_name, server.server_port
    scheme = "https" if settings.web is not None and settings.web.tls is not None else "http"
    shown = f"[{host}]" if ":" in str(host) else str(host)
    return f"{scheme}://{shown}:{port}"


def reload_modules(
    settings: ExporterSettings | None, endpoints: Endpoints, say: Callable[[str], None]
) -> ExporterSettings | None:
    """SIGHUP: read the modules file again; a file that no longer reads keeps the old ones."""
    if settings is None or settings.modules_path is None:
        return settings
    try:
        settings = settings.reread_modules()
    except InvalidArgument as error:
        say(f"reload: {error}; the modules from before stay")
        return settings
    assert settings.modules is not None
    endpoints.set_probe(settings.probe())
    endpoints.stats.modules_loaded(len(settings.modules))
    say(f"reload: {len(settings.modules)} modules for /probe")
    return settings
