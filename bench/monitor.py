"""The watching fleet at scale: latency into Icinga 2, faults, CPU, memory, and a soak.

Runs ``check_grpc_health_fleet --watch`` (the installed console script) on ``--servers``
health servers with ``--services`` services each, every server in a process of its own
(tests/support/health_process.py), one fleet line and one Icinga 2 service per
service, and delivers to a real Icinga 2 (the Debian package, through the test harness
in tests/support/daemons) over its API. Each phase prints its figures beside the goal:

- start-up: until Icinga 2 has a first result of every service;
- idle CPU, with ``--interval 3600`` so that no heartbeat is due;
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
- ``--compare``: CPU per minute and mean time to detect for 10,000-style fleets polled
  by plugin processes, the Go probe (``--go-probe PATH``) and the one-shot fleet,
  beside the watching fleet's figures from the phases above.

When Icinga 2 processed a result is the ``timestamp`` of its CheckResult event on the
API's event stream (``POST /v1/events``): Icinga 2.13 writes that stream out seconds
late (up to 5 s after the event), so the time it reaches this script says nothing of
the monitor. The monitor's CPU is user + system time from ``/proc/PID`` (per-thread
``schedstat`` where no thread ended within the window), its memory ``VmHWM``, its
descriptors ``/proc/PID/fd``. Each figure carries the 1-minute load average when it was
taken: the machine is shared. The servers, the monitor process, the event stream and
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
from typing import TYPE_CHECKING, NamedTuple

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
    Result,
    Results,
    Servers,
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

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from support.daemons.icinga2_api import Icinga2Api

PLUGIN = str(BIN / "check_grpc_health")
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


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share / 100 * len(ordered)) - 1)]


# -- the report ----------------------------------------------------------------------------


@dataclass
class Report:
    """Figures kept for the comparison and the exit code."""

    idle_cpu_per_s: float | None = None
    mean_latency_s: float | None = None
    cpu_per_change_ms: float | None = None
    killed_s: float | None = None
    beat_ms: float | None = None
    beat_ms_plain: float | None = None
    faults: list[str] = field(default_factory=list)

    def fault(self, text: str) -> None:
        self.faults.append(text)
        print(f"  FAULT: {text}")


def say(text: str) -> None:
    print(text, flush=True)


def phase(title: str) -> None:
    say(f"\n{title} (load {load()})")


# -- phases --------------------------------------------------------------------------------


def start_up(
    monitor: Monitor, results: Results | None, names: Sequence[str], timeout: float
) -> float:
    """Seconds from the monitor's start until every service had a first result (in
    Icinga 2 when ``results`` is given, else on the monitor's standard error)."""
    if results is None:

        def done() -> bool:
            monitor.alive()
            return monitor.firsts >= len(names)

        wait_for(done, timeout, f"the first results of {len(names)} lines")
        return time.time() - monitor.started

    firsts: dict[str, float] = {}

    def all_in() -> bool:
        monitor.alive()
        for name in names:
            if name not in firsts:
                found = results.first(name, monitor.started)
                if found is None:
                    return False
                firsts[name] = found.processed
        return True

    wait_for(all_in, timeout, f"a first result of all {len(names)} services in Icinga 2", 0.5)
    return max(firsts.values()) - monitor.started


def settle(monitor: Monitor, results: Results | None, quiet: float, timeout: float) -> None:
    """Wait until ``quiet`` seconds pass without a new result (the sink has drained)."""
    deadline = time.monotonic() + timeout
    last = (results.count if results else len(monitor.lines), time.monotonic())
    while time.monotonic() - last[1] < quiet:
        if time.monotonic() > deadline:
            return
        time.sleep(0.2)
        monitor.alive()
        count = results.count if results else len(monitor.lines)
        if count != last[0]:
            last = (count, time.monotonic())


def idle_cpu(monitor: Monitor, seconds: float, streams: int, report: Report) -> None:
    phase(f"Idle: {streams} open streams, no change, no heartbeat due, {seconds:g} s")
    window = CpuWindow(monitor.pid)
    time.sleep(seconds)
    monitor.alive()
    used = window.used()
    percent = used.cpu / used.wall * 100
    report.idle_cpu_per_s = used.cpu / used.wall
    say(
        f"  CPU {used.cpu * 1000:.1f} ms in {used.wall:.1f} s = {percent:.3f}% of one core; goal "
        f"<= {GOAL_IDLE_PERCENT}%: {verdict(percent <= GOAL_IDLE_PERCENT)} (load {load()})"
    )
    say(f"  by thread: {used.top()}")
    say(f"  RSS {rss_mib(monitor.pid):.1f} MiB, {open_fds(monitor.pid)} open descriptors")


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


def wait_matched(changes: Sequence[Change], results: Results, monitor: Monitor) -> None:
    """Wait (bounded) until every change has reached Icinga 2's event stream."""
    pending = list(changes)

    def done() -> bool:
        monitor.alive()
        nonlocal pending
        pending = [c for c in pending if results.first(c.name, c.at, c.state) is None]
        return not pending

    with contextlib.suppress(Abort):
        wait_for(done, STREAM_GRACE, "changes", 0.5)


def changes_phase(
    monitor: Monitor,
    results: Results,
    servers: Servers,
    args: argparse.Namespace,
    report: Report,
    rng: random.Random,
) -> None:
    phase(f"Changes: {args.rate:g} a second for {args.changes_for:g} s, spread over the services")
    window = CpuWindow(monitor.pid)
    changes, skipped = drive_changes(servers, args.rate, args.changes_for, rng, threading.Lock())
    used = window.used()
    wait_matched(changes, results, monitor)
    latencies, judged, lost = match(changes, results)
    if not latencies:
        report.fault("no change reached Icinga 2")
        return
    p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    report.mean_latency_s = statistics.fmean(latencies)
    met = p50 <= GOAL_P50_MS and p99 <= GOAL_P99_MS
    say(
        f"  {len(changes)} changes ({skipped} skipped: no service free), told the server -> "
        f"processed by Icinga 2: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max "
        f"{max(latencies) * 1000:.1f} ms, mean {report.mean_latency_s * 1000:.1f} ms; goal "
        f"p50 <= {GOAL_P50_MS:g} ms, p99 <= {GOAL_P99_MS:g} ms: {verdict(met)} (load {load()})"
    )
    say(
        f"  of which told -> judged by the monitor: p50 {percentile(judged, 50) * 1000:.1f} ms, "
        f"p99 {percentile(judged, 99) * 1000:.1f} ms (the rest is delivery and Icinga 2)"
    )
    say(f"  lost (never in Icinga 2): {lost}")
    if lost:
        report.fault(f"{lost} changes never reached Icinga 2")
    if report.idle_cpu_per_s is not None and changes:
        extra = used.cpu - report.idle_cpu_per_s * used.wall
        report.cpu_per_change_ms = extra * 1000 / len(changes)
        say(
            f"  CPU {used.cpu * 1000:.0f} ms in {used.wall:.1f} s: {report.cpu_per_change_ms:.3f} "
            f"ms per change above idle, delivery included (no goal) (load {load()})"
        )
        say(f"  by thread: {used.top()}")


def wait_states(
    api: Icinga2Api, host: str, expected: dict[str, int], timeout: float, monitor: Monitor
) -> None:
    """Wait until Icinga 2 shows each service of ``host`` in its ``expected`` state."""

    def done() -> bool:
        monitor.alive()
        return states(api, host) == expected

    wait_for(done, timeout, f"{host}'s services in the states expected", 0.1)


def last_first(
    results: Results, expected: dict[str, int], since: float, monitor: Monitor
) -> tuple[float, float]:
    """Seconds from ``since`` until the last service in ``expected`` was processed in
    its expected state by Icinga 2, and until the monitor had judged the last of them."""
    found: dict[str, Result] = {}

    def done() -> bool:
        monitor.alive()
        for name, state in expected.items():
            if name not in found:
                result = results.first(name, since, state)
                if result is None:
                    return False
                found[name] = result
        return True

    wait_for(done, STREAM_GRACE, "the results on the event stream", 0.2)
    processed = max(result.processed for result in found.values())
    return processed - since, max(result.judged for result in found.values()) - since


def kill_phase(
    monitor: Monitor, results: Results, servers: Servers, api: Icinga2Api, report: Report
) -> None:
    index = servers.count - 1
    server, host, names = servers.processes[index], servers.host(index), servers.names(index)
    phase(f"Killed server: SIGKILL to {host} ({len(names)} services), then started again")
    servers.down.add(index)
    first_line = len(monitor.lines)
    killed_at = time.time()
    server.kill()
    down = dict.fromkeys(names, CRITICAL)
    wait_states(api, host, down, 60, monitor)
    server.start()  # every service SERVING again
    back_at = time.time()
    servers.down.discard(index)
    wait_states(api, host, servers.truth(index), 120, monitor)
    report.killed_s, judged = last_first(results, down, killed_at, monitor)
    back, back_judged = last_first(results, servers.truth(index), back_at, monitor)
    say(
        f"  all {len(names)} CRITICAL in Icinga 2 {report.killed_s:.3f} s after the kill "
        f"(judged by the monitor by {judged:.3f} s); goal <= {GOAL_KILLED_S:g} s: "
        f"{verdict(report.killed_s <= GOAL_KILLED_S)} (load {load()})"
    )
    delays = [d for i, t, d in monitor.backoffs if i >= first_line and t == server.address]
    if delays:
        limit = max(delays) + GOAL_BACK_EXTRA_S
        say(
            f"  all OK again {back:.3f} s after it listened again (judged by {back_judged:.3f} s); "
            f"the streams' back-off "
            f"(-v) {min(delays):.1f} to {max(delays):.1f} s over {len(delays)} streams; goal "
            f"<= back-off + {GOAL_BACK_EXTRA_S:g} s = {limit:.1f} s: {verdict(back <= limit)} "
            f"(load {load()})"
        )
    else:
        say(f"  all OK again {back:.3f} s after it listened again; no back-off seen with -v")


def beat_phase(
    monitor: Monitor,
    results: Results | None,
    lines: int,
    args: argparse.Namespace,
    report: Report,
) -> None:
    sink = "the Icinga 2 API sink" if results is not None else "no sink"
    phase(f"Heartbeats: --interval {monitor.interval:g}, {sink}, {args.beat_window:g} s")
    window = CpuWindow(monitor.pid)
    start = time.time()
    time.sleep(args.beat_window)
    monitor.alive()
    used = window.used()
    beats = lines * used.wall / monitor.interval
    idle = (report.idle_cpu_per_s or 0.0) * used.wall
    per_beat = (used.cpu - idle) * 1000 / beats
    above = "above idle" if report.idle_cpu_per_s is not None else "(idle not measured)"
    processed = ""
    if results is not None:
        end = time.time()
        results.caught_up(end, monitor)
        processed = f", {results.processed_between(start, end)} results processed by Icinga 2"
    say(f"  CPU {used.cpu * 1000:.0f} ms in {used.wall:.1f} s, {beats:.0f} heartbeats{processed}")
    say(f"  by thread: {used.top()}")
    if results is not None:
        report.beat_ms = per_beat
        say(
            f"  {per_beat:.3f} ms of CPU per heartbeat {above}, delivery included; goal <= "
            f"{GOAL_BEAT_MS} ms: {verdict(per_beat <= GOAL_BEAT_MS)} (load {load()})"
        )
    else:
        report.beat_ms_plain = per_beat
        say(f"  {per_beat:.3f} ms of CPU per heartbeat {above}, without a sink (load {load()})")
        if report.beat_ms is not None:
            say(
                f"  so delivering a heartbeat to the Icinga 2 API costs about "
                f"{report.beat_ms - per_beat:.3f} ms of the monitor's CPU"
            )


def freeze_phase(
    monitor: Monitor,
    results: Results,
    servers: Servers,
    api: Icinga2Api,
    args: argparse.Namespace,
) -> None:
    index = 0
    server, host, names = servers.processes[index], servers.host(index), servers.names(index)
    # The fleet keeps each line's deadlines within half an interval.
    deadline = min(args.rpc_timeout, monitor.interval / 2)
    goal = monitor.interval + deadline
    phase(f"Frozen server: SIGSTOP to {host} ({len(names)} services), then SIGCONT")
    down = dict.fromkeys(names, CRITICAL)
    frozen_at = time.time()
    server.freeze()
    try:
        wait_states(api, host, down, goal + 60, monitor)
        frozen, judged = last_first(results, down, frozen_at, monitor)
    finally:
        server.thaw()
    thawed_at = time.time()
    say(
        f"  all {len(names)} CRITICAL in Icinga 2 {frozen:.3f} s after the freeze (judged by "
        f"the monitor by {judged:.3f} s); goal <= "
        f"the interval {monitor.interval:g} s + the RPC deadline {deadline:g} s = {goal:g} s: "
        f"{verdict(frozen <= goal)} (load {load()})"
    )
    wait_states(api, host, servers.truth(index), 120, monitor)
    thawed, judged = last_first(results, servers.truth(index), thawed_at, monitor)
    say(
        f"  all as before again {thawed:.3f} s after the thaw (judged by {judged:.3f} s; no "
        f"goal) (load {load()})"
    )


def soak_phase(
    monitor: Monitor,
    results: Results,
    servers: Servers,
    api: Icinga2Api,
    args: argparse.Namespace,
    report: Report,
    rng: random.Random,
) -> None:
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
        turn = 0
        while not stop.wait(0.05):
            now = time.monotonic()
            if now >= next_sample:
                samples.append((now - started, rss_mib(monitor.pid), open_fds(monitor.pid)))
                next_sample += args.sample_every
            if now >= next_restart:
                index = turn % servers.count
                turn += 1
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
        changes, _ = drive_changes(servers, args.rate, args.soak, rng, lock)
    finally:
        stop.set()
        helper.join(60)
    ended = time.monotonic()
    monitor.alive()
    samples.append((time.monotonic() - started, rss_mib(monitor.pid), open_fds(monitor.pid)))
    # A change whose server was killed soon after may never show: the kill supersedes it.
    kept = [
        change
        for change in changes
        if not any(
            change.name.startswith(servers.host(index) + "!") and 0 <= at - change.at < 5
            for index, at in restarts
        )
    ]
    wait_matched(kept, results, monitor)
    latencies, _, lost = match(kept, results)
    truth = servers.truth()
    wrong: dict[str, int] = {}

    def right() -> bool:
        nonlocal wrong
        monitor.alive()
        found = states(api)
        wrong = {name: state for name, state in truth.items() if found.get(name) != state}
        return not wrong

    with contextlib.suppress(Abort):
        wait_for(right, 60, "the final states", 0.5)
    growth = samples[-1][1] - samples[0][1]
    fds = [count for _, _, count in samples]
    say(
        f"  {len(changes)} changes, {len(restarts)} restarts; latency p50 "
        f"{percentile(latencies, 50) * 1000:.1f} ms, p99 {percentile(latencies, 99) * 1000:.1f} "
        f"ms over the {len(kept)} changes not followed by their server's kill within 5 s; "
        f"lost {lost} (load {load()})"
        if latencies
        else f"  {len(changes)} changes, {len(restarts)} restarts; lost {lost}"
    )
    say(
        f"  RSS {samples[0][1]:.1f} -> {samples[-1][1]:.1f} MiB (max "
        f"{max(s[1] for s in samples):.1f}), grew {growth:.1f} MiB; goal <= "
        f"{GOAL_SOAK_RSS_MIB:g} MiB: {verdict(growth <= GOAL_SOAK_RSS_MIB)}"
    )
    say(
        f"  open descriptors {fds[0]} -> {fds[-1]} (min {min(fds)}, max {max(fds)}); goal flat: "
        f"{verdict(fds[-1] <= fds[0])}"
    )
    say(
        f"  final states: {len(truth) - len(wrong)} of {len(truth)} right in Icinga 2 "
        f"(checked {time.monotonic() - ended:.1f} s after the last change); mismatches {len(wrong)}"
    )
    say(f"  samples (s, RSS MiB, fds): {', '.join(f'{t:.0f}/{r:.1f}/{n}' for t, r, n in samples)}")
    if lost:
        report.fault(f"{lost} changes of the soak never reached Icinga 2")
    if wrong:
        shown = ", ".join(f"{name} is {state}" for name, state in list(wrong.items())[:5])
        report.fault(f"{len(wrong)} services wrong in Icinga 2 at the end, e.g. {shown}")


# -- the comparison ------------------------------------------------------------------------


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


def compare(
    servers: Servers, api: Icinga2Api, path: Path, args: argparse.Namespace, report: Report
) -> None:
    lines = servers.count * servers.services
    address = servers.processes[0].address
    interval = 60.0
    phase(f"Comparison: {lines} services, each checked every {interval:g} s")
    rows: list[tuple[str, float, str]] = []
    plugin = process_cpu([PLUGIN, "-H", address, "-s", "svc0"], args.compare_rounds, (0, 2))
    say(f"  check_grpc_health: {plugin * 1000:.1f} ms of CPU per process (load {load()})")
    half = f"{interval / 2:g} s (half the interval)"
    rows.append(("check_grpc_health, a process per check", plugin * lines, half))
    if args.go_probe:
        go = process_cpu(
            [args.go_probe, f"-addr={address}", "-service=svc0"], args.compare_rounds * 5, (0, 4)
        )
        say(f"  Go grpc_health_probe: {go * 1000:.2f} ms of CPU per process (load {load()})")
        rows.append(("Go grpc_health_probe, a process per check", go * lines, half))
    fleet = [FLEET, "-q", "-t", "30", str(path)]
    sink = ["--icinga2-api", api.url, "--icinga2-user", api.user]
    sink += ["--icinga2-password-file", str(api.password_file), "--icinga2-ca", str(api.ca_file)]
    for label, argv in (("", fleet), (", Icinga 2 API sink", [*fleet, *sink])):
        used = process_cpu(argv, 3, (0, 1, 2))
        say(
            f"  check_grpc_health_fleet{label}: {used:.2f} s of CPU for {lines} lines, "
            f"{used * 1000 / lines:.3f} ms a line (load {load()})"
        )
        rows.append((f"check_grpc_health_fleet, one run a minute{label}", used, half))
    if report.idle_cpu_per_s is not None and report.beat_ms is not None:
        watching = report.idle_cpu_per_s * interval + lines * report.beat_ms / 1000
        latency = report.mean_latency_s
        detect = "-" if latency is None else f"{latency * 1000:.1f} ms (mean change latency)"
        rows.append(("check_grpc_health_fleet --watch, Icinga 2 API sink", watching, detect))
    say(f"  {'way':<58} {'CPU s/min':>10} {'cores':>6}  mean time to detect")
    for label, cpu, detect in rows:
        say(f"  {label:<58} {cpu:10.1f} {cpu / interval:6.3f}  {detect}")
    if report.killed_s is not None:
        say(f"  (a killed server's services were CRITICAL in Icinga 2 {report.killed_s:.2f} s on)")


# -- the whole run -------------------------------------------------------------------------


def finish(monitor: Monitor, report: Report, what: str) -> None:
    """Stop a monitor and say its peak RSS; a traceback or a bad exit is a fault."""
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
        report.fault(f"{monitor.tracebacks} traceback lines on the monitor's standard error")
    if code != 0:
        report.fault(f"the monitor exited with {code}")


class Setting(NamedTuple):
    """What every monitor run shares."""

    servers: Servers
    names: list[str]
    api: Icinga2Api
    results: Results
    path: Path
    args: argparse.Namespace
    report: Report
    rng: random.Random

    def start(self, interval: float, *, sink: bool = True) -> tuple[Monitor, float]:
        """A monitor, and the seconds until a first result of every service."""
        where = "the Icinga 2 API sink" if sink else "no sink"
        phase(f"Start-up: --interval {interval:g}, {where}")
        monitor = Monitor(self.path, interval, self.api if sink else None)
        timeout = 60 + len(self.names) * 0.02
        try:
            took = start_up(monitor, self.results if sink else None, self.names, timeout)
        except BaseException:
            monitor.stop()
            raise
        seen = "services in Icinga 2" if sink else "lines"
        say(f"  a first result of all {len(self.names)} {seen} after {took:.2f} s")
        return monitor, took


def watching(setting: Setting) -> None:
    """Idle, changes and a killed server, with no heartbeat due."""
    monitor, _ = setting.start(3600)
    servers, results, report = setting.servers, setting.results, setting.report
    try:
        settle(monitor, results, 6.0, 60)
        idle_cpu(monitor, setting.args.idle, len(setting.names), report)
        changes_phase(monitor, results, servers, setting.args, report, setting.rng)
        kill_phase(monitor, results, servers, setting.api, report)
    finally:
        finish(monitor, report, "first monitor")


def heartbeats(setting: Setting) -> None:
    """Heartbeats with and without the sink, and a frozen server."""
    args, results, report = setting.args, setting.results, setting.report
    monitor, _ = setting.start(args.beat_interval)
    try:
        settle(monitor, None, 2.0, 10)
        beat_phase(monitor, results, len(setting.names), args, report)
        freeze_phase(monitor, results, setting.servers, setting.api, args)
    finally:
        finish(monitor, report, "second monitor")
    monitor, _ = setting.start(args.beat_interval, sink=False)
    try:
        time.sleep(2.0)
        beat_phase(monitor, None, len(setting.names), args, report)
    finally:
        finish(monitor, report, "third monitor")


def soak(setting: Setting) -> None:
    monitor, _ = setting.start(setting.args.soak_interval)
    try:
        settle(monitor, setting.results, 6.0, 30)
        soak_phase(
            monitor,
            setting.results,
            setting.servers,
            setting.api,
            setting.args,
            setting.report,
            setting.rng,
        )
    finally:
        finish(monitor, setting.report, "soak monitor")


def run(args: argparse.Namespace, tmp: Path, report: Report) -> None:
    lines = args.servers * args.services
    say(
        f"{args.servers} servers x {args.services} services = {lines} lines, each server in a "
        f"process of its own; python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load {load()}"
    )
    servers = Servers(args.servers, args.services)
    names = servers.names()
    try:
        api = start_icinga2_api(tmp / "icinga2", services=names)
    except BaseException:
        servers.stop()
        raise
    results = Results(api)
    path = tmp / "fleet.txt"
    path.write_text(servers.fleet_text(args.rpc_timeout))
    setting = Setting(servers, names, api, results, path, args, report, random.Random(args.seed))
    parts = args.only or PARTS
    try:
        if "watching" in parts:
            watching(setting)
        if "heartbeats" in parts:
            heartbeats(setting)
        if args.soak and "soak" in parts:
            soak(setting)
        if args.compare and "compare" in parts:
            compare(servers, api, path, args, report)
    finally:
        if results.ended:
            report.fault(results.ended)
        results.close()
        servers.stop()
        stop_icinga2_api(api)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=20)
    parser.add_argument("--services", type=int, default=500, help="services per server")
    parser.add_argument("--idle", type=float, default=30, help="seconds of the idle window")
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
    parser.add_argument(
        "--only",
        action="append",
        choices=PARTS,
        help="run only this part (again for more); the soak and the comparison run only "
        "when asked for with --soak and --compare",
    )
    args = parser.parse_args()
    if shutil.which("icinga2") is None and not Path("/usr/sbin/icinga2").exists():
        print("bench/monitor.py needs Icinga 2 (apt-get install icinga2)", file=sys.stderr)
        return 1
    report = Report()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            run(args, Path(tmp), report)
        except Abort as error:
            report.fault(str(error))
    say(f"\nfaults: {len(report.faults)}")
    return 1 if report.faults else 0


if __name__ == "__main__":
    sys.exit(main())
