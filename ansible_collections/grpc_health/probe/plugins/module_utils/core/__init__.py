# Generated from check_grpc_health/core/__init__.py by tools/sync_module_utils.py.
# Do not edit: change the core, then run `python tools/sync_module_utils.py`.
"""The probe engine: targets, TLS, options, results, the channel, probe, watch, discovery.

Layer: core. It never prints, exits, reads argv or installs signal handlers, and imports
no adapter: only the standard library, ``grpc``, ``grpc_health.v1`` and (for listing
services) ``grpc_reflection``. Importing this package imports nothing else, so an
adapter that loads only :mod:`check_grpc_health.core.targets` stays free of grpc.
"""
