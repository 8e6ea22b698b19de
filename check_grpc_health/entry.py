"""Console-script entry points: hold SIGTERM and SIGINT, then load and start one tool.

Layer: process glue. Each entry point blocks the signals first (see
:mod:`check_grpc_health.signals`), then imports its tool, whose ``main()`` releases them
once its handlers are in place. Tools import :mod:`check_grpc_health.signals`, never this
module, so no import circle runs through here.
"""

from __future__ import annotations

import sys

from check_grpc_health.signals import hold_signals


def plugin() -> None:
    """``check_grpc_health``, the Nagios/Icinga plugin."""
    hold_signals()
    from check_grpc_health.plugin.main import main

    main()


def probe() -> None:
    """``grpc_health_probe``, the drop-in for the Go tool."""
    hold_signals()
    from check_grpc_health.probe_cli.main import main

    sys.exit(main())


def fleet() -> None:
    """``check_grpc_health_fleet``, many targets from one file."""
    hold_signals()
    from check_grpc_health.fleet.main import main

    main()


def exporter() -> None:
    """``check_grpc_health_exporter``, /probe and /metrics for Prometheus."""
    hold_signals()
    from check_grpc_health.exporter.main import main

    main()
