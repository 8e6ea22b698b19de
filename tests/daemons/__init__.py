"""Real monitoring daemons for tests: Icinga 2, Nagios 4, node_exporter, and promtool.

Each daemon runs in the foreground from a temporary folder of its own, starts within a
deadline, and stops with SIGTERM. A missing binary skips the test, or fails it under
``CI`` (see ``process.find_binary``). The fixtures are in tests/conftest.py.
"""
