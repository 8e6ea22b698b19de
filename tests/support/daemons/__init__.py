"""Real monitoring daemons for tests: Icinga 2, Nagios 4, node_exporter, and promtool.

- ``process``: find a binary, run a daemon in the foreground, wait for a line it writes;
- ``icinga2``: Icinga 2's binary, a configuration folder of its own, the daemon;
- ``icinga2_api``: Icinga 2 with the API, the command pipe and passive services;
- ``nagios``: Nagios 4 with a command file and passive services;
- ``prometheus``: node_exporter's textfile collector, ``promtool check metrics``, and the
  Prometheus server with its HTTP API.

Each daemon runs from a temporary folder of its own, starts within a deadline, and stops
with SIGTERM. A missing binary skips the test, or fails it under ``CI``. The fixtures are
in tests/conftest.py.
"""
