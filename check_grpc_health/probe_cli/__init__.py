"""``grpc_health_probe``, the drop-in for the Go tool of the same name.

Layer: adapter. ``flags`` parses argv as Go's ``flag`` package does (with ``durations``
for Go durations), ``gotext`` words output as the Go tool does, ``process`` maps signals
and exit codes, and ``main`` calls the core once.
"""
