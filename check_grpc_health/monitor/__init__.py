"""The fleet's resident mode (``check_grpc_health_fleet --watch FILE``): Watch, not poll.

Layer: adapter (the monitor). One part per file, as blackbox_exporter keeps one prober
per file: ``connections`` (asyncio channels and their stream limits), ``streams`` (one
Watch stream per service), ``backoff`` (the reconnect policy), ``schedule`` (when each
line's heartbeat is due), ``heartbeat`` (what a heartbeat learns), ``state`` (what the
monitor knows of each line, judged by the plugin's own check), ``delivery`` (the sinks
of a resident process), ``events`` (the -v lines and JSON events), ``notify`` (systemd),
``monitor`` (the parts put together) and ``main`` (the process). Nothing here loads on
the one-shot tools' path.
"""
