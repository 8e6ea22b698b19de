"""What bench/monitor.py measures with: servers, the monitor, Icinga 2's view, /proc.

- :class:`Servers`: health servers, each in a process of its own
  (tests/support/health_process.py), one fleet line per service, and the status each
  service has now; :func:`drive_changes` flips services at a steady rate.
- :class:`Monitor`: ``check_grpc_health_fleet --watch FILE -v`` as a process, its
  standard error read in a thread (tracebacks, back-off delays, anything unusual).
- :class:`Results`: every check result Icinga 2 processes, from its API's event stream;
  :func:`states`: every service's state in Icinga 2 now.
- :class:`CpuWindow`, :func:`rss_mib`, :func:`peak_rss_mib`, :func:`open_fds`: what the
  monitor process uses, from ``/proc``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

# For bench/monitor.py too: the Icinga 2 harness of the tests.
from support.daemons.icinga2_api import start_icinga2_api, stop_icinga2_api  # noqa: E402
from support.health_process import HealthProcess  # noqa: E402

__all__ = ["start_icinga2_api", "stop_icinga2_api"]

if TYPE_CHECKING:
    import random
    from collections.abc import Callable

    from support.daemons.icinga2_api import Icinga2Api

BIN = Path(sys.executable).parent
FLEET = str(BIN / "check_grpc_health_fleet")
# Measure what an installed package does (as bench/fleet.py and bench/cold_start.py).
CHILD_ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
TICK = os.sysconf("SC_CLK_TCK")
OK, CRITICAL = 0, 2
STATE = {"SERVING": OK, "NOT_SERVING": CRITICAL}
FLIP = {"SERVING": "NOT_SERVING", "NOT_SERVING": "SERVING"}
#: A service is not flipped again within this many seconds of its last flip, so that
#: two flips never merge into one delivery (the monitor keeps the latest per service).
COOLDOWN = 1.0
#: No service of a server is flipped within this many seconds after it was started
#: again: its streams are still coming back.
AFTER_RESTART = 3.0
#: How long results may take to show on Icinga 2.13's event stream (it holds them up
#: to 5 s), on top of the monitor's own time.
STREAM_GRACE = 12.0


def load() -> str:
    """The 1-minute load average, for every figure."""
    return Path("/proc/loadavg").read_text().split()[0]


# -- /proc ---------------------------------------------------------------------------------


def _process_cpu(pid: int) -> float:
    """User + system seconds of the whole process (clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _thread_cpu(pid: int) -> dict[str, tuple[str, int]]:
    """Per thread: its name and nanoseconds on a CPU (``schedstat``, finer than ticks)."""
    found = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            folder = Path(f"/proc/{pid}/task/{task}")
            ns = int((folder / "schedstat").read_text().split()[0])
            found[task] = ((folder / "comm").read_text().strip(), ns)
    return found


class Used(NamedTuple):
    """What a process used within a window."""

    cpu: float  # seconds
    wall: float  # seconds
    #: CPU seconds by thread: ``event loop`` (the main thread), ``Python threads`` (the
    #: other threads Python started: sinks, workers), else the name grpcio gave it.
    threads: dict[str, float]

    def top(self, count: int = 4) -> str:
        ranked = sorted(self.threads.items(), key=lambda item: -item[1])[:count]
        return ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in ranked)


class CpuWindow:
    """CPU seconds a process uses from :meth:`__init__` to :meth:`used`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.started = time.monotonic()
        self.threads = _thread_cpu(pid)
        self.process = _process_cpu(pid)

    def used(self) -> Used:
        threads = _thread_cpu(self.pid)
        process = _process_cpu(self.pid)
        wall = time.monotonic() - self.started
        main_name = threads.get(str(self.pid), ("", 0))[0]
        by_name: dict[str, float] = {}
        for task, (name, ns) in threads.items():
            before = self.threads.get(task, (name, 0))[1]
            label = "event loop" if task == str(self.pid) else name
            if label == main_name:
                label = "Python threads"
            by_name[label] = by_name.get(label, 0.0) + (ns - before) / 1e9
        if all(task in threads for task in self.threads):
            cpu = sum(by_name.values())
        else:  # a thread ended within the window: its time is in the process's ticks only
            cpu = process - self.process
        return Used(cpu, wall, by_name)


def _tree(pid: int) -> list[int]:
    """``pid`` and every process below it (Icinga 2 runs its daemon under an umbrella)."""
    found = [pid]
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            children = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
            for child in children:
                found += _tree(int(child))
    return found


class OthersWindow:
    """CPU seconds that groups of processes use within a window: what else ran on the
    machine's cores while the monitor was measured. A group named in ``trees`` counts
    its processes' children too (Icinga 2 runs its daemon under an umbrella process)."""

    def __init__(self, groups: dict[str, list[int]], trees: frozenset[str] = frozenset()) -> None:
        self.started = time.monotonic()
        self.pids = groups
        self.trees = trees
        self.before = {name: self._cpu(name) for name in groups}

    def _cpu(self, name: str) -> dict[int, float]:
        found = {}
        for pid in self.pids[name]:
            for one in _tree(pid) if name in self.trees else [pid]:
                with contextlib.suppress(OSError):
                    found[one] = _process_cpu(one)
        return found

    def shares(self) -> str:
        """``name N%`` (of one core) for each group, since the start."""
        wall = time.monotonic() - self.started
        said = []
        for name, before in self.before.items():
            used = sum(cpu - before.get(pid, 0.0) for pid, cpu in self._cpu(name).items())
            said.append(f"{name} {used / wall * 100:.0f}%")
        return ", ".join(said)


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def rss_mib(pid: int) -> float:
    return _status_kib(pid, "VmRSS") / 1024


def peak_rss_mib(pid: int) -> float:
    return _status_kib(pid, "VmHWM") / 1024


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_for(check: Callable[[], bool], timeout: float, what: str, pause: float = 0.1) -> None:
    """Poll ``check`` until it holds; a bench that cannot go on says what it waited for."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise Abort(f"{what}: not within {timeout:g} s")
        time.sleep(pause)


class Abort(Exception):
    """A phase could not be run to its end (the figures so far are printed)."""


# -- Icinga 2 ------------------------------------------------------------------------------


class Result(NamedTuple):
    """One check result as Icinga 2 processed it."""

    processed: float  # the event's timestamp (Unix time)
    state: int
    judged: float  # the result's execution_end: when the monitor judged it


class Results:
    """Every check result Icinga 2 processes, read from its event stream in a thread."""

    def __init__(self, api: Icinga2Api) -> None:
        self.by_name: dict[str, list[Result]] = {}
        self.count = 0
        self.latest = 0.0
        self.ended: str | None = None
        self._lock = threading.Lock()
        connection = api.connect(timeout=None)  # type: ignore[arg-type]
        body = json.dumps({"types": ["CheckResult"], "queue": f"bench-{os.getpid()}"})
        connection.request("POST", "/v1/events", body, api.headers())
        self._answer = connection.getresponse()
        if self._answer.status != 200:
            raise Abort(f"the Icinga 2 event stream answered {self._answer.status}")
        self._connection = connection
        threading.Thread(target=self._read, name="icinga2-events", daemon=True).start()

    def _read(self) -> None:
        try:
            for raw in iter(self._answer.readline, b""):
                event = json.loads(raw)
                result = event["check_result"]
                name = f"{event['host']}!{event['service']}"
                found = Result(
                    float(event["timestamp"]), int(result["state"]), float(result["execution_end"])
                )
                with self._lock:
                    self.by_name.setdefault(name, []).append(found)
                    self.count += 1
                    self.latest = max(self.latest, found.processed)
            self.ended = "the Icinga 2 event stream ended"
        except (OSError, ValueError) as error:
            self.ended = f"the Icinga 2 event stream failed: {error}"

    def of(self, name: str) -> list[Result]:
        with self._lock:
            return list(self.by_name.get(name, ()))

    def first(self, name: str, since: float, state: int | None = None) -> Result | None:
        """The first result of ``name`` processed at ``since`` or later (in ``state``)."""
        for result in self.of(name):
            if result.processed >= since and (state is None or result.state == state):
                return result
        return None

    def caught_up(self, when: float, monitor: Monitor) -> None:
        """Wait (bounded) until the stream has brought the results processed by ``when``."""

        def done() -> bool:
            monitor.alive()
            return self.latest >= when

        with contextlib.suppress(Abort):
            wait_for(done, STREAM_GRACE, "the event stream", 0.2)

    def processed_between(self, start: float, end: float, but: str | None = None) -> int:
        """How many results Icinga 2 processed from ``start`` to ``end`` (but those of
        the services of host ``but``)."""
        skip = None if but is None else but + "!"
        with self._lock:
            return sum(
                1
                for name, results in self.by_name.items()
                if skip is None or not name.startswith(skip)
                for result in results
                if start <= result.processed < end
            )

    def close(self) -> None:
        self._connection.close()


def states(api: Icinga2Api, host: str | None = None) -> dict[str, int]:
    """Every service's state in Icinga 2 now (of one host), by ``host!service``."""
    query = [("attrs", "state")]
    if host is not None:
        query.append(("filter", f'host.name=="{host}"'))
    answer = api.request("GET", "/v1/objects/services?" + urllib.parse.urlencode(query))
    if answer.status != 200:
        raise Abort(f"reading the services back: {answer.status} {answer.text[:200]}")
    return {item["name"]: int(item["attrs"]["state"]) for item in answer.json()["results"]}


# -- the servers ---------------------------------------------------------------------------


@dataclass
class Change:
    name: str
    state: int
    at: float  # Unix time the server was told


@dataclass
class Servers:
    """The health servers, each in a process of its own, and what each service is now."""

    count: int
    services: int
    processes: list[HealthProcess] = field(default_factory=list)
    #: Servers being restarted: no change goes to them.
    down: set[int] = field(default_factory=set)
    restarted_at: dict[int, float] = field(default_factory=dict)
    _flipped: dict[tuple[int, str], float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [f"svc{number}" for number in range(self.services)]
        with ThreadPoolExecutor(8) as pool:
            self.processes = list(pool.map(lambda _: HealthProcess(names), range(self.count)))

    @staticmethod
    def host(index: int) -> str:
        return f"server{index}"

    def names(self, index: int | None = None) -> list[str]:
        """``host!service`` of every service (of one server)."""
        indexes = range(self.count) if index is None else [index]
        return [f"{self.host(i)}!svc{n}" for i in indexes for n in range(self.services)]

    def fleet_text(self, rpc_timeout: float) -> str:
        return "".join(
            f"{self.host(i)}!svc{n}: -H {server.address} -s svc{n} --rpc-timeout {rpc_timeout:g}\n"
            for i, server in enumerate(self.processes)
            for n in range(self.services)
        )

    def truth(self, index: int | None = None) -> dict[str, int]:
        """The state each service (of one server) should have in Icinga 2."""
        indexes = range(self.count) if index is None else [index]
        return {
            f"{self.host(i)}!{service}": STATE[status]
            for i in indexes
            for service, status in self.processes[i].statuses.items()
        }

    def flip_one(self, rng: random.Random, now: float) -> Change | None:
        """Flip a random service that was not flipped within :data:`COOLDOWN`."""
        for _ in range(100):
            index = rng.randrange(self.count)
            service = f"svc{rng.randrange(self.services)}"
            if index in self.down or now - self.restarted_at.get(index, -1e9) < AFTER_RESTART:
                continue
            if now - self._flipped.get((index, service), -1e9) < COOLDOWN:
                continue
            server = self.processes[index]
            status = FLIP[server.statuses[service]]
            at = time.time()
            server.set(service, status)
            self._flipped[index, service] = now
            return Change(f"{self.host(index)}!{service}", STATE[status], at)
        return None

    def stop(self) -> None:
        for server in self.processes:
            server.stop()


def drive_changes(
    servers: Servers, rate: float, seconds: float, rng: random.Random, lock: threading.Lock
) -> tuple[list[Change], int]:
    """Flip ``rate`` services a second for ``seconds``; the changes, and how many were
    skipped because no service was free."""
    changes: list[Change] = []
    skipped = 0
    start = time.monotonic()
    total = int(rate * seconds)
    for number in range(total):
        delay = start + number / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        with lock:
            change = servers.flip_one(rng, time.monotonic())
        if change is None:
            skipped += 1
        else:
            changes.append(change)
    return changes, skipped


# -- the monitor ---------------------------------------------------------------------------


#: -v lines that tell of nothing unusual: a change, a broken stream, the start and the stop.
_ROUTINE = re.compile(r": \S+ -> \S+: |the Watch stream of |: watching \d+ lines|: stopped by SIG")
_BACKOFF = re.compile(r" on (?P<target>\S+) broke \(.*\); opening it again in (?P<delay>[0-9.]+)s$")


class Monitor:
    """``check_grpc_health_fleet --watch FILE -v``, its standard error read in a thread."""

    def __init__(self, path: Path, interval: float, api: Icinga2Api | None) -> None:
        argv = [FLEET, "--watch", str(path), "-v", "--interval", f"{interval:g}"]
        if api is not None:
            argv += ["--icinga2-api", api.url, "--icinga2-user", api.user]
            argv += ["--icinga2-password-file", str(api.password_file)]
            argv += ["--icinga2-ca", str(api.ca_file)]
        self.interval = interval
        self.lines: list[str] = []
        self.tracebacks = 0
        self.firsts = 0
        self.backoffs: list[tuple[int, str, float]] = []  # (line index, target, delay)
        self.problems: list[str] = []
        self.started = time.time()
        self.process = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=CHILD_ENV
        )
        self.pid = self.process.pid
        self._reader = threading.Thread(target=self._read, name="monitor-stderr", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.rstrip("\n")
            index = len(self.lines)
            self.lines.append(line)
            if "Traceback" in line:
                self.tracebacks += 1
            if ": (start) -> " in line:
                self.firsts += 1
                continue
            found = _BACKOFF.search(line)
            if found:
                self.backoffs.append((index, found["target"], float(found["delay"])))
            elif not _ROUTINE.search(line):
                self.problems.append(line)

    def alive(self) -> None:
        if self.process.poll() is not None:
            tail = "\n".join(self.lines[-10:])
            raise Abort(f"the monitor exited with {self.process.returncode}:\n{tail}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(10)
        self._reader.join(10)
        return code


# -- the floor -----------------------------------------------------------------------------


def bare_streams(addresses: list[str], services: int, per_connection: int) -> None:
    """Open a grpc.aio Watch stream per service on each address, ``per_connection`` to a
    channel, as the monitor does; print the RSS once each brought its first message,
    then wait for standard input to close. What grpcio alone holds for so many streams."""
    import asyncio

    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    async def run() -> None:
        calls = []
        for address in addresses:
            for first in range(0, services, per_connection):
                options = [("grpc.use_local_subchannel_pool", 1)]
                stub = health_pb2_grpc.HealthStub(grpc.aio.insecure_channel(address, options))
                for number in range(first, min(services, first + per_connection)):
                    request = health_pb2.HealthCheckRequest(service=f"svc{number}")
                    calls.append(stub.Watch(request).__aiter__())
        await asyncio.gather(*(call.__anext__() for call in calls))
        print(f"{len(calls)} {rss_mib(os.getpid()):.1f}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    asyncio.run(run())
    os._exit(0)
