"""``check_grpc_health_fleet``: many plugin checks from one file, in one process.

Layer: adapter. ``file`` reads the fleet file (one plugin command line per line),
``channels`` shares connections between lines, ``run`` checks every line concurrently
within one deadline, ``sinks`` turn the outcomes into an output or a delivery (one module
each: table, JSON lines, Prometheus, Icinga 2 API, command pipe), and ``main`` is the
process around them.
"""
