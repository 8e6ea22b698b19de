"""The watching fleet at scale: latency into Icinga 2, faults, CPU, memory, and a soak.

Runs ``check_grpc_health_fleet --watch`` (the installed console script) on ``--servers``
health servers with ``--services`` services each, every server in a process of its own
(tests/support/health_process.py), one fleet line and one Icinga 2 service per
service, and delivers to a real Icinga 2 (the Debian package, through the test harness
in tests/support/daemons) over its API. Each phase prints its figures beside the goal:

- start-up: until Icinga 2 has a first result of every service;
- idle CPU, with an ``--interval`` of a week, so that hardly a heartbeat is due (the
  schedule spreads each line's first one over the first interval: at 3600 s, 10,000
  lines would still run about 3 a second);
- changes at ``--rate`` a second, spread over the services: from the moment the bench
  tells a server to flip a service to the moment Icinga 2 processed the new state
  (p50, p99, max, and changes that never arrived);
- a server killed (SIGKILL) until all its services are CRITICAL in Icinga 2, and
  started again on the same port until all are OK;
- heartbeats, with ``--beat-interval``: CPU per heartbeat with the Icinga 2 sink, and
  without a sink, whose difference is the delivery;
- a server frozen (SIGSTOP) until all its services are CRITICAL, and thawed;
- peak RSS;
- ``--soak SECONDS``: changes at ``--rate`` a second and a server restarted every
  ``--restart-every`` seconds, RSS and open descriptors sampled, and at the end every
  service's state in Icinga 2 compared with its server's;
- ``--compare``: CPU per minute and mean time to detect, for these services checked
  every minute, by plugin processes, the Go probe (``--go-probe PATH``), the one-shot
  fleet, and the watching fleet (a monitor with ``--interval 60``, measured over a
  whole interval).

When Icinga 2 processed a result is the ``timestamp`` of its CheckResult event on the
API's event stream (``POST /v1/events``): Icinga 2.13 writes that stream out seconds
late (up to 5 s after the event), so the time it reaches this script says nothing of
the monitor. The monitor's CPU is user + system time from ``/proc/PID`` (per-thread
``schedstat`` where no thread ended within the window), its memory ``VmHWM``, its
descriptors ``/proc/PID/fd``. Each figure carries the 1-minute load average when it was
taken, and each CPU window what Icinga 2, the servers and this script used meanwhile:
the machine is shared. The servers, the monitor process, the event stream and
the ``/proc`` readings are in bench/monitor_harness.py; the phases and the report here.

    python bench/monitor.py                                  # 20 x 500, about 6 minutes
    python bench/monitor.py --soak 600                       # and the 10-minute soak
    python bench/monitor.py --servers 2 --services 20 --rate 10 --changes-for 3 \\
        --idle 2 --beat-interval 2 --beat-window 4 --soak 20 --restart-every 5

Exits 0 when every phase ran and nothing was lost, wrong or a traceback, 1 otherwise;
a missed timing goal is reported, not an error.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from monitor_harness import (
    BIN,
    CHILD_ENV,
    CRITICAL,
    FLEET,
    STREAM_GRACE,
    Abort,
    Change,
    CpuWindow,
    Monitor,
    OthersWindow,
    Result,
    Results,
    Servers,
    bare_streams,
    drive_changes,
    load,
    open_fds,
    peak_rss_mib,
    rss_mib,
    start_icinga2_api,
    states,
    stop_icinga2_api,
    wait_for,
)

from check_grpc_health.monitor.backoff import BASE, CAP, FACTOR, JITTER

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from monitor_harness import Used

PLUGIN = str(BIN / "check_grpc_health")
#: As the monitor: at most this many streams on one connection.
STREAMS_PER_CONNECTION = 100
#: The parts of a run, each with monitors of its own.
PARTS = ("watching", "heartbeats", "soak", "compare")

# The goals of the watching fleet, for 10,000 services on a 2-core machine.
GOAL_P50_MS = 20.0
GOAL_P99_MS = 100.0
GOAL_KILLED_S = 1.0
GOAL_BACK_EXTRA_S = 1.0  # after the back-off
GOAL_IDLE_PERCENT = 0.5
GOAL_BEAT_MS = 0.4
GOAL_RSS_MIB = 200.0
GOAL_SOAK_RSS_MIB = 10.0
#: The comparison's interval: every service checked once a minute.
COMPARE_INTERVAL = 60.0


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share / 100 * len(ordered)) - 1)]


def say(text: str) -> None:
    print(text, flush=True)


def phase(title: str) -> None:
    say(f"\n{title} (load {load()})")


@dataclass
class Report:
    """Figures one phase keeps for another, and the faults (which make the exit code 1)."""

    idle_cpu_per_s: float | None = None
    mean_latency_s: float | None = None
    killed_s: float | None = None
    beat_ms: float | None = None
    faults: list[str] = field(default_factory=list)

    def fault(self, text: str) -> None:
        self.faults.append(text)
        say(f"  FAULT: {text}")


def match(changes: Iterable[Change], results: Results) -> tuple[list[float], list[float], int]:
    """Latencies (processed - told) and the monitor's part (judged - told) of each change,
    and how many never reached Icinga 2."""
    latencies, judged, lost = [], [], 0
    for change in changes:
        found = results.first(change.name, change.at, change.state)
        if found is None:
            lost += 1
        else:
            latencies.append(found.processed - change.at)
            judged.append(found.judged - change.at)
    return latencies, judged, lost


class Bench:
    """The servers, Icinga 2 and its event stream, shared by every monitor of a run."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.report = Report()
        self.rng = random.Random(args.seed)
        self.servers = Servers(args.servers, args.services)
        self.names = self.servers.names()
        try:
            self.api = start_icinga2_api(tmp / "icinga2", services=self.names)
        except BaseException:
            self.servers.stop()
            raise
        self.results = Results(self.api)
        self.path = tmp / "fleet.txt"
        self.path.write_text(self.servers.fleet_text(args.rpc_timeout))

    def close(self) -> None:
        if self.results.ended:
            self.report.fault(self.results.ended)
        self.results.close()
        self.servers.stop()
        stop_icinga2_api(self.api)

    # -- monitors -------------------------------------------------------------------------

    def start(self, interval: float, *, sink: bool = True) -> Monitor:
        """A monitor, once every service had a first result."""
        where = "the Icinga 2 API sink" if sink else "no sink"
        phase(f"Start-up: --interval {interval:g}, {where}")
        monitor = Monitor(self.path, interval, self.api if sink else None)
        try:
            took = self._first_results(monitor, sink)
        except BaseException:
            monitor.stop()
            raise
        seen = "services in Icinga 2" if sink else "lines"
        say(
            f"  a first result of all {len(self.names)} {seen} after {took:.2f} s; RSS "
            f"{rss_mib(monitor.pid):.1f} MiB, {open_fds(monitor.pid)} open descriptors"
        )
        return monitor

    def _first_results(self, monitor: Monitor, sink: bool) -> float:
        timeout = 60 + len(self.names) * 0.02
        if not sink:

            def logged() -> bool:
                monitor.alive()
                return monitor.firsts >= len(self.names)

            wait_for(logged, timeout, f"the first results of {len(self.names)} lines")
            return time.time() - monitor.started
        firsts: dict[str, float] = {}

        def processed() -> bool:
            monitor.alive()
            for name in self.names:
                if name not in firsts:
                    found = self.results.first(name, monitor.started)
                    if found is None:
                        return False
                    firsts[name] = found.processed
            return True

        wait_for(processed, timeout, "a first result of every service in Icinga 2", 0.5)
        return max(firsts.values()) - monitor.started

    def settle(self, monitor: Monitor, quiet: float, timeout: float) -> None:
        """Wait until ``quiet`` seconds pass with no new result in Icinga 2 (the event
        stream comes in bursts up to 5 s apart, so ``quiet`` should be longer)."""
        deadline = time.monotonic() + timeout
        count, since = self.results.count, time.monotonic()
        while time.monotonic() - since < quiet and time.monotonic() < deadline:
            time.sleep(0.2)
            monitor.alive()
            if self.results.count != count:
                count, since = self.results.count, time.monotonic()

    def finish(self, monitor: Monitor, what: str) -> float:
        """Stop a monitor and say its peak RSS (returned); a traceback or a bad exit is a
        fault."""
        try:
            peak = peak_rss_mib(monitor.pid)
        except OSError:  # it is gone already
            peak = math.nan
        code = monitor.stop()
        say(
            f"  {what}: peak RSS {peak:.1f} MiB; goal <= {GOAL_RSS_MIB:g} MiB: "
            f"{verdict(peak <= GOAL_RSS_MIB)}; exit code {code}; tracebacks {monitor.tracebacks}"
        )
        for line in monitor.problems[:5]:
            say(f"  said: {line}")
        if len(monitor.problems) > 5:
            say(f"  and said {len(monitor.problems) - 5} more lines of that kind")
        if monitor.tracebacks:
            self.report.fault(f"{monitor.tracebacks} traceback lines on the monitor's stderr")
        if code != 0:
            self.report.fault(f"the monitor exited with {code}")
        return peak

    # -- measuring ------------------------------------------------------------------------

    def others(self) -> OthersWindow:
        """What Icinga 2, the servers and this script use while the monitor is measured."""
        return OthersWindow(
            {
                "Icinga 2": [self.api.daemon.process.pid],
                "the servers": [s.process.pid for s in self.servers.processes if s.process],
                "this script": [os.getpid()],
            },
            trees=frozenset({"Icinga 2"}),
        )

    def window(self, monitor: Monitor, seconds: float) -> Used:
        """Sleep ``seconds`` and say what the monitor and the rest used meanwhile."""
        window, others = CpuWindow(monitor.pid), self.others()
        time.sleep(seconds)
        monitor.alive()
        used = window.used()
        say(f"  by thread: {used.top()}; meanwhile, of a core: {others.shares()}")
        return used

    def wait_states(
        self, monitor: Monitor, host: str, expected: dict[str, int], timeout: float
    ) -> int:
        """Wait until Icinga 2 shows each service of ``host`` in its ``expected`` state;
        how many were not, when the time ran out first."""
        wrong = len(expected)

        def done() -> bool:
            nonlocal wrong
            monitor.alive()
            found = states(self.api, host)
            wrong = sum(1 for name, state in expected.items() if found.get(name) != state)
            return wrong == 0

        with contextlib.suppress(Abort):
            wait_for(done, timeout, f"{host}'s services", 0.1)
        return wrong

    def last_first(
        self, monitor: Monitor, expected: dict[str, int], since: float
    ) -> tuple[float, float, str]:
        """Seconds from ``since`` until the last service in ``expected`` was processed in
        its expected state by Icinga 2, until the monitor had judged the last one, and
        how the monitor's judging spread over that time."""
        found: dict[str, Result] = {}

        def done() -> bool:
            monitor.alive()
            for name, state in expected.items():
                if name not in found:
                    result = self.results.first(name, since, state)
                    if result is None:
                        return False
                    found[name] = result
            return True

        wait_for(done, STREAM_GRACE, "the results on the event stream", 0.2)
        judged = sorted(result.judged - since for result in found.values())
        spread = ", ".join(
            f"{share}% by {percentile(judged, share):.2f} s" for share in (25, 50, 75)
        )
        processed = max(result.processed for result in found.values()) - since
        return (
            processed,
            judged[-1],
            f"  judged by the monitor: {spread}, all by {judged[-1]:.2f} s",
        )

    def wait_matched(self, monitor: Monitor, changes: Sequence[Change]) -> None:
        """Wait (bounded) until every change has come on Icinga 2's event stream."""
        pending = list(changes)

        def done() -> bool:
            nonlocal pending
            monitor.alive()
            pending = [c for c in pending if self.results.first(c.name, c.at, c.state) is None]
            return not pending

        with contextlib.suppress(Abort):
            wait_for(done, STREAM_GRACE, "changes", 0.5)

    # -- phases ---------------------------------------------------------------------------

    def idle(self, monitor: Monitor) -> None:
        seconds = self.args.idle
        phase(f"Idle: {len(self.names)} open streams, no change, {seconds:g} s")
        # The schedule spreads each line's first heartbeat over the first interval.
        due = len(self.names) * seconds / monitor.interval
        say(f"  heartbeats due meanwhile: about {due:.1f} (--interval {monitor.interval:g})")
        used = self.window(monitor, seconds)
        percent = used.cpu / used.wall * 100
        self.report.idle_cpu_per_s = used.cpu / used.wall
        say(
            f"  CPU {used.cpu * 1000:.1f} ms in {used.wall:.1f} s = {percent:.3f}% of one core; "
            f"goal <= {GOAL_IDLE_PERCENT}%: {verdict(percent <= GOAL_IDLE_PERCENT)} "
            f"(load {load()})"
        )

    def changes(self, monitor: Monitor) -> None:
        args = self.args
        phase(f"Changes: {args.rate:g} a second for {args.changes_for:g} s, over all services")
        window, others = CpuWindow(monitor.pid), self.others()
        made, skipped = drive_changes(
            self.servers, args.rate, args.changes_for, self.rng, threading.Lock()
        )
        used = window.used()
        shares = others.shares()
        self.wait_matched(monitor, made)
        latencies, judged, lost = match(made, self.results)
        if not latencies:
            self.report.fault("no change reached Icinga 2")
            return
        p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
        self.report.mean_latency_s = statistics.fmean(latencies)
        met = p50 <= GOAL_P50_MS and p99 <= GOAL_P99_MS
        say(
            f"  {len(made)} changes ({skipped} skipped: no service free), told the server -> "
            f"processed by Icinga 2: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max "
            f"{max(latencies) * 1000:.1f} ms, mean {self.report.mean_latency_s * 1000:.1f} ms; "
            f"goal p50 <= {GOAL_P50_MS:g} ms, p99 <= {GOAL_P99_MS:g} ms: {verdict(met)} "
            f"(load {load()})"
        )
        say(
            f"  of which told -> judged by the monitor: p50 "
            f"{percentile(judged, 50) * 1000:.1f} ms, p99 {percentile(judged, 99) * 1000:.1f} ms "
            "(the rest is delivery and Icinga 2)"
        )
        say(f"  lost (never in Icinga 2): {lost}")
        if lost:
            self.report.fault(f"{lost} changes never reached Icinga 2")
        idle = self.report.idle_cpu_per_s
        if idle is not None and made:
            per_change = (used.cpu - idle * used.wall) * 1000 / len(made)
            say(
                f"  CPU {used.cpu * 1000:.0f} ms in {used.wall:.1f} s: {per_change:.3f} ms per "
                f"change above idle, delivery included (no goal) (load {load()})"
            )
        say(f"  by thread: {used.top()}; meanwhile, of a core: {shares}")

    def floor(self, monitor_peak: float) -> None:
        """What grpcio alone holds for as many Watch streams, in a process of its own."""
        phase("Memory floor: a bare grpc.aio Watch stream per service, in a process of its own")
        addresses = ",".join(server.address for server in self.servers.processes)
        argv = [sys.executable, __file__, "--bare-streams", addresses]
        argv += ["--services", str(self.servers.services)]
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=CHILD_ENV
        )
        assert process.stdout is not None
        assert process.stdin is not None
        try:
            words = process.stdout.readline().split()
        finally:
            process.stdin.close()
            process.wait(30)
        if len(words) != 2:
            self.report.fault("the bare streams did not start")
            return
        floor = float(words[1])
        say(
            f"  {words[0]} streams, {STREAMS_PER_CONNECTION} to a connection: RSS {floor:.1f} MiB, "
            f"against the monitor's peak {monitor_peak:.1f} MiB (load {load()})"
        )

    def kill(self, monitor: Monitor) -> None:
        servers = self.servers
        index = servers.count - 1
        server, host, names = servers.processes[index], servers.host(index), servers.names(index)
        phase(f"Killed server: SIGKILL to {host} ({len(names)} services), then started again")
        servers.down.add(index)
        first_line = len(monitor.lines)
        down = dict.fromkeys(names, CRITICAL)
        killed_at = time.time()
        server.kill()
        missing = self.wait_states(monitor, host, down, 60)
        server.start()  # every service SERVING again
        back_at = time.time()
        servers.down.discard(index)
        if missing:
            say(f"  {missing} of {len(names)} not CRITICAL in Icinga 2 60 s after the kill: MISSED")
            self.report.fault(f"{missing} services of a killed server never read CRITICAL")
        else:
            killed, judged, spread = self.last_first(monitor, down, killed_at)
            self.report.killed_s = killed
            say(
                f"  all {len(names)} CRITICAL in Icinga 2 {killed:.3f} s after the kill (judged "
                f"by {judged:.3f} s); goal <= {GOAL_KILLED_S:g} s: "
                f"{verdict(killed <= GOAL_KILLED_S)} (load {load()})"
            )
            say(spread)
        missing = self.wait_states(monitor, host, servers.truth(index), 120)
        if missing:
            say(f"  {missing} of {len(names)} not OK again 120 s after the restart: MISSED")
            self.report.fault(f"{missing} services of a restarted server never read OK again")
            return
        back, judged, spread = self.last_first(monitor, servers.truth(index), back_at)
        step = backoff_step(back_at - killed_at)
        limit = step * (1 + JITTER) + GOAL_BACK_EXTRA_S
        say(
            f"  all OK again {back:.3f} s after it listened again (judged by {judged:.3f} s), "
            f"{back_at - killed_at:.2f} s after the kill; the back-off's step then: {step:.2f} s "
            f"(+-{JITTER:.0%}); goal <= back-off + {GOAL_BACK_EXTRA_S:g} s = {limit:.2f} s: "
            f"{verdict(back <= limit)} (load {load()})"
        )
        say(spread)
        delays = [d for i, t, d in monitor.backoffs if i >= first_line and t == server.address]
        if delays:
            say(
                f"  -v: {len(delays)} streams broke and said they would open again in "
                f"{min(delays):.1f} to {max(delays):.1f} s; after that they wait for the "
                "connection, whose own back-off -v does not show"
            )

    def beats(self, monitor: Monitor, *, sink: bool) -> None:
        seconds, lines = self.args.beat_window, len(self.names)
        where = "the Icinga 2 API sink" if sink else "no sink"
        phase(f"Heartbeats: --interval {monitor.interval:g}, {where}, {seconds:g} s")
        start = time.time()
        used = self.window(monitor, seconds)
        beats = lines * used.wall / monitor.interval
        idle = self.report.idle_cpu_per_s
        per_beat = (used.cpu - (idle or 0.0) * used.wall) * 1000 / beats
        above = "above idle" if idle is not None else "(idle not measured)"
        say(f"  CPU {used.cpu * 1000:.0f} ms in {used.wall:.1f} s, {beats:.0f} heartbeats run")
        if not sink:
            say(f"  {per_beat:.3f} ms of CPU per heartbeat {above}, without a sink (load {load()})")
            if self.report.beat_ms is not None:
                say(
                    f"  so delivering a heartbeat to the Icinga 2 API costs about "
                    f"{self.report.beat_ms - per_beat:.3f} ms of the monitor's CPU"
                )
            return
        end = time.time()
        self.results.caught_up(end, monitor)
        processed = self.results.processed_between(start, end)
        self.report.beat_ms = per_beat
        say(
            f"  {per_beat:.3f} ms of CPU per heartbeat {above}, delivery included; goal <= "
            f"{GOAL_BEAT_MS} ms: {verdict(per_beat <= GOAL_BEAT_MS)} (load {load()})"
        )
        say(f"  Icinga 2 processed {processed} results meanwhile")
        if processed < 0.9 * beats:
            say(
                "  so Icinga 2 fell behind: the sink keeps the latest result per service and "
                "sent fewer, which makes the delivery's share here too small"
            )

    def freeze(self, monitor: Monitor) -> None:
        servers = self.servers
        index = 0
        server, host, names = servers.processes[index], servers.host(index), servers.names(index)
        # The fleet keeps each line's deadlines within half an interval.
        deadline = min(self.args.rpc_timeout, monitor.interval / 2)
        goal = monitor.interval + deadline
        limit = goal + 60
        phase(f"Frozen server: SIGSTOP to {host} ({len(names)} services), then SIGCONT")
        down = dict.fromkeys(names, CRITICAL)
        frozen_at = time.time()
        server.freeze()
        try:
            missing = self.wait_states(monitor, host, down, limit)
        finally:
            server.thaw()
        thawed_at = time.time()
        if missing:
            say(
                f"  {missing} of {len(names)} still not CRITICAL in Icinga 2 {limit:g} s after "
                f"the freeze; goal <= the interval {monitor.interval:g} s + the RPC deadline "
                f"{deadline:g} s = {goal:g} s: MISSED (load {load()})"
            )
        else:
            frozen, judged, spread = self.last_first(monitor, down, frozen_at)
            say(
                f"  all {len(names)} CRITICAL in Icinga 2 {frozen:.3f} s after the freeze "
                f"(judged by {judged:.3f} s); goal <= the interval {monitor.interval:g} s + the "
                f"RPC deadline {deadline:g} s = {goal:g} s: {verdict(frozen <= goal)} "
                f"(load {load()})"
            )
            say(spread)
        self.results.caught_up(thawed_at, monitor)
        before = self.results.processed_between(frozen_at - 10, frozen_at, but=host) / 10
        during = self.results.processed_between(frozen_at, thawed_at, but=host)
        say(
            f"  results of the other servers' services processed by Icinga 2: {before:.0f}/s in "
            f"the 10 s before the freeze, {during / (thawed_at - frozen_at):.0f}/s while frozen"
        )
        missing = self.wait_states(monitor, host, servers.truth(index), 120)
        if missing:
            say(f"  {missing} of {len(names)} not as before 120 s after the thaw: MISSED")
            self.report.fault(f"{missing} services of a thawed server never read right again")
            return
        thawed, judged, spread = self.last_first(monitor, servers.truth(index), thawed_at)
        say(
            f"  all as before again {thawed:.3f} s after the thaw (judged by {judged:.3f} s; "
            f"no goal) (load {load()})"
        )
        say(spread)

    def soak(self, monitor: Monitor) -> None:
        args, servers = self.args, self.servers
        phase(
            f"Soak: {args.soak:g} s, {args.rate:g} changes a second, a server restarted every "
            f"{args.restart_every:g} s, --interval {monitor.interval:g}"
        )
        lock = threading.Lock()
        samples = [(0.0, rss_mib(monitor.pid), open_fds(monitor.pid))]
        restarts: list[tuple[int, float]] = []
        stop = threading.Event()
        started = time.monotonic()

        def restart_and_sample() -> None:
            next_restart = started + args.restart_every
            next_sample = started + args.sample_every
            while not stop.wait(0.05):
                now = time.monotonic()
                if now >= next_sample:
                    samples.append((now - started, rss_mib(monitor.pid), open_fds(monitor.pid)))
                    next_sample += args.sample_every
                if now >= next_restart:
                    index = len(restarts) % servers.count
                    with lock:
                        servers.down.add(index)
                    restarts.append((index, time.time()))
                    servers.processes[index].restart()
                    with lock:
                        servers.down.discard(index)
                        servers.restarted_at[index] = time.monotonic()
                    next_restart += args.restart_every

        helper = threading.Thread(target=restart_and_sample, name="soak", daemon=True)
        helper.start()
        try:
            made, _ = drive_changes(servers, args.rate, args.soak, self.rng, lock)
        finally:
            stop.set()
            helper.join(60)
        ended = time.monotonic()
        monitor.alive()
        samples.append((ended - started, rss_mib(monitor.pid), open_fds(monitor.pid)))
        # A change whose server is killed soon after may never show: the kill supersedes it.
        kept = [
            change
            for change in made
            if not any(
                change.name.startswith(servers.host(index) + "!") and 0 <= at - change.at < 5
                for index, at in restarts
            )
        ]
        self.wait_matched(monitor, kept)
        latencies, _, lost = match(kept, self.results)
        wrong = self._final_states(monitor)
        growth = samples[-1][1] - samples[0][1]
        fds = [count for _, _, count in samples]
        if latencies:
            say(
                f"  {len(made)} changes, {len(restarts)} restarts; latency p50 "
                f"{percentile(latencies, 50) * 1000:.1f} ms, p99 "
                f"{percentile(latencies, 99) * 1000:.1f} ms over the {len(kept)} changes not "
                f"followed by their server's kill within 5 s; lost {lost} (load {load()})"
            )
        else:
            say(f"  {len(made)} changes, {len(restarts)} restarts; lost {lost}")
        say(
            f"  RSS {samples[0][1]:.1f} -> {samples[-1][1]:.1f} MiB (max "
            f"{max(s[1] for s in samples):.1f}), grew {growth:.1f} MiB; goal <= "
            f"{GOAL_SOAK_RSS_MIB:g} MiB: {verdict(growth <= GOAL_SOAK_RSS_MIB)}"
        )
        say(
            f"  open descriptors {fds[0]} -> {fds[-1]} (min {min(fds)}, max {max(fds)}); "
            f"goal flat: {verdict(fds[-1] <= fds[0])}"
        )
        right = len(self.names) - len(wrong)
        say(
            f"  final states: {right} of {len(self.names)} right in Icinga 2 (checked "
            f"{time.monotonic() - ended:.1f} s after the last change); mismatches {len(wrong)}"
        )
        say(
            f"  samples (s/RSS MiB/fds): {', '.join(f'{t:.0f}/{r:.1f}/{n}' for t, r, n in samples)}"
        )
        if lost:
            self.report.fault(f"{lost} changes of the soak never reached Icinga 2")
        if wrong:
            shown = ", ".join(f"{name} is {state}" for name, state in list(wrong.items())[:5])
            self.report.fault(f"{len(wrong)} services wrong in Icinga 2 at the end, e.g. {shown}")

    def _final_states(self, monitor: Monitor) -> dict[str, int]:
        """The services whose state in Icinga 2 is not their server's, once it settled
        (or after a minute)."""
        truth = self.servers.truth()
        wrong: dict[str, int] = {}

        def right() -> bool:
            nonlocal wrong
            monitor.alive()
            found = states(self.api)
            wrong = {
                name: found.get(name, -1)
                for name, state in truth.items()
                if found.get(name) != state
            }
            return not wrong

        with contextlib.suppress(Abort):
            wait_for(right, 60, "the final states", 0.5)
        return wrong

    # -- the comparison -------------------------------------------------------------------

    def compare(self) -> None:
        """CPU a minute and mean time to detect, for every service checked once a minute."""
        lines = len(self.names)
        address = self.servers.processes[0].address
        interval = COMPARE_INTERVAL
        phase(f"Comparison: {lines} services, each checked every {interval:g} s")
        rows: list[tuple[str, float, str]] = []
        half = f"{interval / 2:g} s (half the interval)"
        rounds = self.args.compare_rounds
        plugin = process_cpu([PLUGIN, "-H", address, "-s", "svc0"], rounds, (0, 2))
        say(f"  check_grpc_health: {plugin * 1000:.1f} ms of CPU a process (load {load()})")
        rows.append(("check_grpc_health, a process per check", plugin * lines, half))
        if self.args.go_probe:
            go = process_cpu(
                [self.args.go_probe, f"-addr={address}", "-service=svc0"], rounds * 5, (0, 4)
            )
            say(f"  Go grpc_health_probe: {go * 1000:.2f} ms of CPU a process (load {load()})")
            rows.append(("Go grpc_health_probe, a process per check", go * lines, half))
        fleet = [FLEET, "-q", "-t", "30", str(self.path)]
        api = self.api
        sink = ["--icinga2-api", api.url, "--icinga2-user", api.user, "--icinga2-ca"]
        sink += [str(api.ca_file), "--icinga2-password-file", str(api.password_file)]
        for label, argv in (("", fleet), (", Icinga 2 API sink", [*fleet, *sink])):
            used = process_cpu(argv, 3, (0, 1, 2))
            say(
                f"  check_grpc_health_fleet{label}: {used:.2f} s of CPU for {lines} lines, "
                f"{used * 1000 / lines:.3f} ms a line (load {load()})"
            )
            rows.append((f"check_grpc_health_fleet, one run a minute{label}", used, half))
        watching = self._watching_a_minute()
        latency = self.report.mean_latency_s
        detect = "not measured" if latency is None else f"{latency * 1000:.1f} ms (mean latency)"
        rows.append(("check_grpc_health_fleet --watch, Icinga 2 API sink", watching, detect))
        say(f"  {'way':<60} {'CPU s/min':>10} {'cores':>6}  mean time to detect")
        for label, cpu, detect in rows:
            say(f"  {label:<60} {cpu:10.1f} {cpu / interval:6.3f}  {detect}")
        if self.report.killed_s is not None:
            say(f"  (a killed server: all its services CRITICAL in {self.report.killed_s:.2f} s)")

    def _watching_a_minute(self) -> float:
        """The monitor's CPU over one whole interval of :data:`COMPARE_INTERVAL`, after a
        first interval in which the start's heartbeats end."""
        monitor = self.start(COMPARE_INTERVAL)
        try:
            time.sleep(COMPARE_INTERVAL)
            say(f"  measuring the watching fleet over {COMPARE_INTERVAL:g} s (load {load()})")
            used = self.window(monitor, COMPARE_INTERVAL)
            say(
                f"  the watching fleet: {used.cpu:.2f} s of CPU in {used.wall:.1f} s, "
                f"{used.cpu * 1000 / len(self.names):.3f} ms a line (load {load()})"
            )
        finally:
            self.finish(monitor, "comparison monitor")
        return used.cpu * COMPARE_INTERVAL / used.wall


def backoff_step(down: float) -> float:
    """The reconnect back-off's step in progress ``down`` seconds after the first failure
    (the monitor's policy: 1 s, then 1.6 times longer each time, up to the cap)."""
    step, start = BASE, 0.0
    while start + step <= down:
        start += step
        step = min(step * FACTOR, CAP)
    return step


def process_cpu(argv: Sequence[str], rounds: int, codes: Iterable[int] = (0,)) -> float:
    """The median user + system seconds of ``argv`` run as a process ``rounds`` times,
    after one run that is not counted (it fills the page cache)."""
    allowed = set(codes)
    samples = []
    for number in range(rounds + 1):
        process = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=CHILD_ENV
        )
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode not in allowed:
            raise Abort(f"{' '.join(argv[:3])} ...: exit code {process.returncode}")
        if number:
            samples.append(usage.ru_utime + usage.ru_stime)
    return statistics.median(samples)


# -- the run -------------------------------------------------------------------------------


def watching(bench: Bench) -> None:
    """Idle, changes and a killed server, with no heartbeat due."""
    monitor = bench.start(bench.args.idle_interval)
    try:
        bench.settle(monitor, 6.0, 60)
        bench.idle(monitor)
        bench.changes(monitor)
        bench.kill(monitor)
    finally:
        peak = bench.finish(monitor, "first monitor")
    bench.floor(peak)


def heartbeats(bench: Bench) -> None:
    """Heartbeats with and without the sink, and a frozen server."""
    monitor = bench.start(bench.args.beat_interval)
    try:
        time.sleep(2.0)
        bench.beats(monitor, sink=True)
        bench.freeze(monitor)
    finally:
        bench.finish(monitor, "second monitor")
    monitor = bench.start(bench.args.beat_interval, sink=False)
    try:
        time.sleep(2.0)
        bench.beats(monitor, sink=False)
    finally:
        bench.finish(monitor, "third monitor")


def soak(bench: Bench) -> None:
    monitor = bench.start(bench.args.soak_interval)
    try:
        bench.settle(monitor, 6.0, 30)
        bench.soak(monitor)
    finally:
        bench.finish(monitor, "soak monitor")


def run(args: argparse.Namespace, tmp: Path) -> Report:
    lines = args.servers * args.services
    say(
        f"{args.servers} servers x {args.services} services = {lines} lines, each server in a "
        f"process of its own; python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load {load()}"
    )
    bench = Bench(args, tmp)
    parts = args.only or PARTS
    try:
        if "watching" in parts:
            watching(bench)
        if "heartbeats" in parts:
            heartbeats(bench)
        if args.soak and "soak" in parts:
            soak(bench)
        if args.compare and "compare" in parts:
            bench.compare()
    except Abort as error:
        bench.report.fault(str(error))
    finally:
        bench.close()
    return bench.report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=20)
    parser.add_argument("--services", type=int, default=500, help="services per server")
    parser.add_argument("--idle", type=float, default=30, help="seconds of the idle window")
    parser.add_argument(
        "--idle-interval",
        type=float,
        default=7 * 86400,
        metavar="SECONDS",
        help="the first monitor's --interval (default a week): it spreads each line's first "
        "heartbeat over one interval, so that 3600 would still run about 3 a second",
    )
    parser.add_argument("--rate", type=float, default=100, help="changes a second")
    parser.add_argument("--changes-for", type=float, default=30, metavar="SECONDS")
    parser.add_argument(
        "--rpc-timeout", type=float, default=5, help="each line's --rpc-timeout (seconds)"
    )
    parser.add_argument("--beat-interval", type=float, default=10, metavar="SECONDS")
    parser.add_argument("--beat-window", type=float, default=30, metavar="SECONDS")
    parser.add_argument("--soak", type=float, default=0, metavar="SECONDS", help="0: no soak")
    parser.add_argument("--soak-interval", type=float, default=60, metavar="SECONDS")
    parser.add_argument("--restart-every", type=float, default=60, metavar="SECONDS")
    parser.add_argument("--sample-every", type=float, default=10, metavar="SECONDS")
    parser.add_argument("--compare", action="store_true", help="the comparison with pollers")
    parser.add_argument("--go-probe", metavar="PATH", help="the Go grpc_health_probe binary")
    parser.add_argument("--compare-rounds", type=int, default=20, metavar="N")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bare-streams", help=argparse.SUPPRESS)
    parser.add_argument(
        "--only",
        action="append",
        choices=PARTS,
        help="run only this part (again for more); the soak and the comparison run only "
        "when asked for with --soak and --compare",
    )
    args = parser.parse_args()
    if args.bare_streams:
        bare_streams(args.bare_streams.split(","), args.services, STREAMS_PER_CONNECTION)
    if shutil.which("icinga2") is None and not Path("/usr/sbin/icinga2").exists():
        print("bench/monitor.py needs Icinga 2 (apt-get install icinga2)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        report = run(args, Path(tmp))
    say(f"\nfaults: {len(report.faults)}")
    return 1 if report.faults else 0


if __name__ == "__main__":
    sys.exit(main())
