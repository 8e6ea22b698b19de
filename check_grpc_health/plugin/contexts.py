"""The plugin's shared contexts: perfdata labels, a failed connection, plain-decimal ranges.

Layer: adapter (the Nagios/Icinga plugin). nagiosplugin ``Context``s used by both the
single-target check and the ``--all-addresses`` check, so neither imports the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import nagiosplugin

from check_grpc_health.plugin.options import SPELLING
from check_grpc_health.text import clean_text, decimal, explained

if TYPE_CHECKING:
    from collections.abc import Sequence

    from check_grpc_health.core.results import ConnectFailure
    from check_grpc_health.plugin.options import Thresholds


def service_labels(services: Sequence[str]) -> tuple[str, ...]:
    """Perfdata labels, one per service: ``serving_<service>``, unique and legal.

    The overall health (service ``""``) is ``serving_overall``. Characters that the
    perfdata format forbids in a label (``'``, ``=``) or that would break the output
    (``|``, spaces, control characters) become ``_``.
    """
    labels: list[str] = []
    for service in services:
        name = "".join(
            ch if ch.isascii() and ch.isprintable() and ch not in " '=|" else "_" for ch in service
        )
        label = base = f"serving_{name or 'overall'}"
        counter = 1
        while label in labels:
            counter += 1
            label = f"{base}_{counter}"
        labels.append(label)
    return tuple(labels)


class ConnectionContext(nagiosplugin.Context):
    """Judges a failed connection (refused, timed out, TLS, not gRPC) CRITICAL."""

    def __init__(self) -> None:
        super().__init__("connection")

    def evaluate(
        self, metric: nagiosplugin.Metric, resource: nagiosplugin.Resource
    ) -> nagiosplugin.Result:
        failure: ConnectFailure = metric.value
        return nagiosplugin.Result(
            nagiosplugin.Critical, clean_text(explained(failure, SPELLING)), metric
        )


class DecimalContext(nagiosplugin.ScalarContext):
    """A ScalarContext whose perfdata values are plain decimals, never ``1e-05``."""

    def __init__(self, name: str, thresholds: Thresholds) -> None:
        # ScalarContext.__init__ would only convert the ranges to plain Ranges; keep
        # ours, whose violation messages print plain decimals too (and skip the cost:
        # the fleet builds these contexts thousands of times).
        nagiosplugin.Context.__init__(self, name, "{name} is {valueunit}")
        self.warning, self.critical = thresholds.warning, thresholds.critical
        self.thresholds = thresholds

    def performance(
        self, metric: nagiosplugin.Metric, resource: nagiosplugin.Resource
    ) -> nagiosplugin.Performance | None:
        return nagiosplugin.Performance(
            metric.name,
            decimal(metric.value),
            metric.uom,
            self.thresholds.warning,
            self.thresholds.critical,
            metric.min,
            metric.max,
        )


class CertificateContext(DecimalContext):
    """Judges the days left on the server certificate against day thresholds.

    An expired certificate is CRITICAL even without thresholds.
    """

    def __init__(self, thresholds: Thresholds) -> None:
        super().__init__("cert_days", thresholds)

    def describe(self, metric: nagiosplugin.Metric) -> str | None:
        return None  # the result's hint says it all

    def evaluate(
        self, metric: nagiosplugin.Metric, resource: nagiosplugin.Resource
    ) -> nagiosplugin.Result:
        days = float(metric.value)
        if days < 0:
            text = f"server certificate expired {-days:.1f} days ago"
            return nagiosplugin.Result(nagiosplugin.Critical, text, metric)
        text = f"server certificate expires in {days:.1f} days"
        warning, critical = self.thresholds.warning, self.thresholds.critical
        if not critical.match(days):
            return nagiosplugin.Result(
                nagiosplugin.Critical, f"{text} (critical below {critical.start})", metric
            )
        if not warning.match(days):
            return nagiosplugin.Result(
                nagiosplugin.Warn, f"{text} (warning below {warning.start})", metric
            )
        return nagiosplugin.Result(nagiosplugin.Ok, text, metric)
