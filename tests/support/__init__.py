"""What the tests share besides fixtures: real peers, runners, daemons and paths.

- ``paths``: the checkout's root and the installed console scripts;
- ``servers``: gRPC health servers and hostile listeners on loopback;
- ``connect_proxy``: a real HTTP CONNECT proxy;
- ``hardening``: each entry point run the way its users run it, as one record;
- ``plugin``: the plugin run as a process, or judged in-process against its state table;
- ``go_probe``: the Go tool's texts that the drop-in probe must match;
- ``ansible_tools``: the Ansible tools installed next to this Python;
- ``daemons``: Icinga 2, Nagios 4, node_exporter and promtool, run for real.

The fixtures built on these are in tests/conftest.py, which puts tests/ on ``sys.path`` so
that test modules import ``support.<module>``. No test module imports another.
"""
