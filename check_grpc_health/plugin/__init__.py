"""``check_grpc_health``, the Nagios/Icinga plugin, built on nagiosplugin.

Layer: adapter. ``arguments`` turns argv into one :class:`PluginOptions` (``options``,
``thresholds``); ``check`` builds the nagiosplugin check (a resource that probes through
the core, ``contexts`` that judge, a summary that words; ``backends`` for
``--all-addresses``); ``output`` and ``document`` print it as text or JSON; ``main`` is
the process: signals, the ``-t`` backstop, the exit code.
"""
