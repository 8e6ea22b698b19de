"""Prometheus: the one metric set, the exporter's endpoints, and the monitor's ``/metrics``.

Layer: adapter (the exporter). One concern per file, as blackbox_exporter keeps one
prober per file and its modules in ``config/``: ``metrics`` (every metric's name and help,
and a line's samples, used by the fleet's textfile and ``--format prometheus`` too),
``modules`` (the named option sets of ``/probe``), ``allow`` (the targets ``/probe`` may
dial), ``probe`` (one check per scrape), ``collector`` (the monitor's live state on
``/metrics``), ``stats`` (the exporter's own figures), ``webconfig`` (TLS and basic auth
from Prometheus' web config file), ``web`` (the HTTP server), ``options`` (the command
line shared with the monitor's ``--listen``) and ``main`` (``check_grpc_health_exporter``).
``prometheus_client`` loads only here, never on the one-shot tools' path.
"""
