"""The fleet for Prometheus: the text exposition format, printed or written as a textfile.

Layer: adapter (a fleet sink). ``prometheus_client`` renders the one metric set
(:mod:`check_grpc_health.exporter.metrics`, where every name is described), for
``--format prometheus``, and writes it atomically for node_exporter's textfile collector
(``--textfile PATH``: ``write_to_textfile``, a temporary file beside PATH that does not
end in ``.prom``, then a rename, so the collector never reads half a file). The file
gets the process's umask (0644 under the usual 022): node_exporter must be able to read
it. ``prometheus_client`` loads only here, never on the other outputs' path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from check_grpc_health.exporter.metrics import LINES, MetricSet, add_lines

if TYPE_CHECKING:
    from collections.abc import Sequence

    from check_grpc_health.fleet.run import Outcome


def fleet_metrics(outcomes: Sequence[Outcome], now: float) -> MetricSet:
    """The outcomes' samples, and when the fleet ran (for staleness alerts)."""
    metrics = MetricSet(LINES)
    add_lines(metrics, outcomes)
    metrics.add("grpc_health_last_run_timestamp_seconds", {}, now)
    return metrics


def render_prometheus(outcomes: Sequence[Outcome], now: float) -> str:
    """The outcomes in the Prometheus text exposition format (version 0.0.4)."""
    from prometheus_client.exposition import generate_latest

    return generate_latest(fleet_metrics(outcomes, now)).decode("utf-8")


def write_textfile(path: str, outcomes: Sequence[Outcome], now: float) -> str | None:
    """Write the outcomes' metrics to ``path`` atomically; None, or one line saying why not."""
    from prometheus_client.exposition import write_to_textfile

    try:
        write_to_textfile(path, fleet_metrics(outcomes, now))
    except OSError as error:
        reason = error.strerror or error.__class__.__name__
        return f"textfile: cannot write {path!r}: {reason}; no metrics were written"
    return None
