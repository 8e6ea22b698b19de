# Generated from check_grpc_health/__init__.py by tools/sync_module_utils.py.
# Do not edit: change the core, then run `python tools/sync_module_utils.py`.
"""check-grpc-health: check gRPC servers through the standard health checking protocol.

Layer: package root. Holds only the version, so importing a submodule stays cheap.
The core API lives in :mod:`check_grpc_health.probe` (``probe``, ``watch``,
``HealthChannel``), :mod:`check_grpc_health.options`, :mod:`check_grpc_health.targets`,
:mod:`check_grpc_health.tls` and :mod:`check_grpc_health.results`.
"""

__version__ = "0.1.0"
