"""``check_grpc_health_fleet``: many plugin checks from one file, in one process.

Layer: adapter. ``file`` reads the fleet file (one plugin command line per line),
``run`` checks every line concurrently within one deadline, ``sinks`` turn the outcomes
into an output (one module each), and ``main`` is the process around them.
"""
