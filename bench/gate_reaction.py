"""Gate reaction: how long after a server turns SERVING does a waiting gate learn of it?

Three ways of waiting, each against a real local server that flips from NOT_SERVING
to SERVING at a random moment:

- ``watch``: the core's ``watch()`` on the Watch stream (what the Ansible module uses);
- ``poll``: the same call against a server whose Watch is UNIMPLEMENTED, so it polls
  Check every ``--interval`` seconds;
- ``ansible-until`` (with ``--ansible``): the usual playbook pattern, a task running
  ``grpc_health_probe`` with ``until``/``retries``/``delay: 1``, as a real
  ``ansible-playbook`` run; and ``ansible-module``: the collection's module with a
  timeout, as a real ``ansible-playbook`` run.

    python bench/gate_reaction.py --rounds 20
    python bench/gate_reaction.py --rounds 5 --ansible
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from check_grpc_health import ProbeOptions, parse_target, watch

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


class NoWatch(health.HealthServicer):
    def Watch(self, request: Any, context: Any, send_response_callback: Any = None) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")


def start(servicer: health.HealthServicer) -> tuple[grpc.Server, int]:
    """Serve ``servicer`` on 127.0.0.1, starting NOT_SERVING."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    servicer.set("", 2)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def flip_later(
    servicer: health.HealthServicer, low: float, high: float, *, wall: bool = False
) -> list[float]:
    """Flip to SERVING at a random moment; the list receives the flip time.

    The time is monotonic, or the wall clock (``wall``) to compare with another process.
    """
    flipped: list[float] = []

    def flip() -> None:
        flipped.append(time.time() if wall else time.monotonic())
        servicer.set("", 1)

    threading.Timer(random.uniform(low, high), flip).start()
    return flipped


def core_lag(servicer: health.HealthServicer, port: int, interval: float) -> float:
    servicer.set("", 2)
    flipped = flip_later(servicer, 0.5, 1.5)
    result = watch(ProbeOptions(parse_target(f"127.0.0.1:{port}")), timeout=10, interval=interval)
    done = time.monotonic()
    assert result.reached, result
    return done - flipped[0]


def playbook_lag(servicer: health.HealthServicer, port: int, playbook: str) -> float:
    servicer.set("", 2)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gate.yml"
        path.write_text(playbook.format(port=port, probe=BIN / "grpc_health_probe"))
        env = dict(
            os.environ,
            ANSIBLE_COLLECTIONS_PATH=str(ROOT),
            ANSIBLE_PYTHON_INTERPRETER=sys.executable,
            PATH=f"{BIN}:{os.environ['PATH']}",
        )
        process = subprocess.Popen(
            [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
        # Let ansible-playbook start and reach the waiting task before the flip.
        flipped = flip_later(servicer, 3.0, 4.0, wall=True)
        output, _ = process.communicate(timeout=120)
        text = output.decode()
        assert process.returncode == 0, text
    passed_at = float(text.split("passed_at=", 1)[1].split('"', 1)[0])
    return passed_at - flipped[0]


# The task after the gate prints the moment the gate passed, so Ansible's own start-up
# and exit are not counted.
PASSED_AT = """
    - name: Record when the gate passed
      ansible.builtin.debug:
        msg: "passed_at={{{{ now().timestamp() }}}}"
"""

UNTIL_PLAYBOOK = (
    """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Wait with grpc_health_probe and until/retries
      ansible.builtin.command: "{probe} -addr=127.0.0.1:{port}"
      register: probe
      until: probe.rc == 0
      retries: 30
      delay: 1
      changed_when: false
"""
    + PASSED_AT
)

MODULE_PLAYBOOK = (
    """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Wait with the collection's module (Watch)
      grpc_health.probe.grpc_health:
        host: 127.0.0.1
        port: {port}
        timeout: 30
"""
    + PASSED_AT
)


def summarize(name: str, lags: list[float]) -> None:
    ms = sorted(lag * 1000 for lag in lags)
    print(
        f"{name:<16} median {statistics.median(ms):8.1f} ms   "
        f"min {ms[0]:8.1f}   max {ms[-1]:8.1f}   n={len(ms)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0, help="poll interval, seconds")
    parser.add_argument("--ansible", action="store_true", help="also time ansible-playbook")
    args = parser.parse_args()
    watch_servicer = health.HealthServicer(experimental_non_blocking=False)
    no_watch_servicer = NoWatch(experimental_non_blocking=False)
    watching, watch_port = start(watch_servicer)
    polling, poll_port = start(no_watch_servicer)
    try:
        rounds = range(args.rounds)
        summarize("watch", [core_lag(watch_servicer, watch_port, args.interval) for _ in rounds])
        summarize("poll", [core_lag(no_watch_servicer, poll_port, args.interval) for _ in rounds])
        if args.ansible:
            few = range(max(1, args.rounds // 4))
            summarize(
                "ansible-until",
                [playbook_lag(watch_servicer, watch_port, UNTIL_PLAYBOOK) for _ in few],
            )
            summarize(
                "ansible-module",
                [playbook_lag(watch_servicer, watch_port, MODULE_PLAYBOOK) for _ in few],
            )
    finally:
        watching.stop(None)
        polling.stop(None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
