"""The probe engine: targets, TLS, options, results, the channel, probe, watch, discovery.

Layer: core. It never prints, exits, reads argv or installs signal handlers, and imports
no adapter: only the standard library, ``grpc``, ``grpc_health.v1`` and (for listing
services) ``grpc_reflection``. Importing this package imports nothing else, so an
adapter that loads only :mod:`check_grpc_health.core.targets` stays free of grpc.
"""
