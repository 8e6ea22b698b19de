"""The command pipe: a result counts as delivered once the daemon has read it.

A FIFO whose reader is the test stands for the daemon, so that the test decides when it
reads, how much, and when it goes away. The daemons themselves read their pipes in
tests/fleet/test_sinks.py.
"""

from __future__ import annotations

import subprocess
import threading
import time
from typing import TYPE_CHECKING

from support.fleet import PREFIX, FifoReader, fleet, fleet_file
from support.paths import FLEET

if TYPE_CHECKING:
    from pathlib import Path

    import pytest
    from support.servers import HealthServer


def labelled_fleet(tmp_path: Path, address: str, count: int) -> Path:
    return fleet_file(
        tmp_path, "".join(f"web{n % 3}!grpc-{n}: -H {address}\n" for n in range(count))
    )


def delivered(stderr: str) -> int:
    """The count the fleet gives under -v."""
    last = stderr.splitlines()[-1]
    prefix = f"{PREFIX}command-file: "
    assert last.startswith(prefix), stderr
    return int(last[len(prefix) :].split()[0])


def test_what_the_reader_left_in_the_pipe_when_it_went_away_is_not_delivered(
    tmp_path: Path, closed_address: str
) -> None:
    # 800 results of about 140 bytes: more than the 64 KiB the pipe holds.
    fifo = FifoReader(tmp_path / "icinga2.cmd")
    path = labelled_fleet(tmp_path, closed_address, 800)
    process = subprocess.Popen(
        [FLEET, "-q", "-v", "-t", "30", "--command-file", str(fifo.path), str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        fifo.wait_until_full()
        got = fifo.read(16384)  # a quarter of what the pipe holds, then the reader exits
    finally:
        fifo.close()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 3
    read = got.count(b"\n")
    problems = stderr.splitlines()[:-1]
    assert problems[0].startswith(
        f"{PREFIX}command-file: writing to '{fifo.path}': its reader went away (Broken pipe) ("
    )
    assert problems[1].startswith(
        f"{PREFIX}command-file: still unread in '{fifo.path}' when its reader went away: web"
    )
    assert len(problems) == 2
    unsent = int(problems[0].rpartition("(")[2].split()[0])
    unread = int(problems[1].rpartition("(")[2].split()[0])
    # Only what the reader read counts as delivered; nothing vanishes.
    assert delivered(stderr) == read
    assert read + unread + unsent == 800
    assert unread > 100  # the rest of a full pipe


def test_the_fleet_waits_for_the_reader_and_names_what_it_did_not_read(
    tmp_path: Path, server: HealthServer
) -> None:
    fifo = FifoReader(tmp_path / "nagios.cmd")
    path = labelled_fleet(tmp_path, server.address, 12)
    try:
        ignored = fleet("-q", "-t", "3", "--command-file", str(fifo.path), str(path))
        assert (ignored.returncode, ignored.stdout) == (3, "")
        assert ignored.stderr == (
            f"{PREFIX}command-file: still unread in '{fifo.path}' at the fleet's deadline "
            "(-t): web0!grpc-0 (line 1), web1!grpc-1 (line 2), web2!grpc-2 (line 3), "
            "web0!grpc-3 (line 4), web1!grpc-4 (line 5), web2!grpc-5 (line 6), web0!grpc-6 "
            "(line 7), web1!grpc-7 (line 8), web2!grpc-8 (line 9), web0!grpc-9 (line 10) "
            "and 2 more (12 results not delivered)\n"
        )
        assert fifo.read().count(b"\n") == 12  # they were there all along
        # A reader that takes its time: the fleet waits for it, within the deadline.
        process = subprocess.Popen(
            [FLEET, "-q", "-v", "-t", "30", "--command-file", str(fifo.path), str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        fifo.wait_for_unread(12 * 100)
        time.sleep(1.0)  # the fleet is waiting now; it must notice the read when it comes
        got = fifo.read()
        while got.count(b"\n") < 12:
            fifo.wait_for_unread(1)
            got += fifo.read()
        stdout, stderr = process.communicate(timeout=60)
    finally:
        fifo.close()
    assert (process.returncode, stdout, stderr) == (
        0,
        "",
        f"{PREFIX}command-file: 12 results delivered\n",
    )


# -- the pipe, one line at a time (shared by the one-shot fleet and the monitor) ----------


def test_the_pipe_knows_which_lines_the_reader_has_read(tmp_path: Path) -> None:
    from check_grpc_health.fleet.sinks.pipe import CommandPipe

    fifo = FifoReader(tmp_path / "cmd")
    pipe: CommandPipe[str] = CommandPipe(str(fifo.path))
    pipe.open()
    try:
        far = time.monotonic() + 10
        for tag in ("a", "b", "c"):
            pipe.write(f"line {tag}\n".encode(), tag, far)
        assert pipe.unread() == ["a", "b", "c"]
        assert fifo.read(9) == b"line a\nli"  # all of a, part of b: b is not read yet
        assert pipe.unread() == ["b", "c"]
        assert fifo.read(5) == b"ne b\n"
        assert pipe.unread() == ["c"]
        assert pipe.wait_read(time.monotonic() + 0.2) == ["c"]  # nobody reads: the deadline
        threading.Timer(0.5, fifo.read).start()
        assert pipe.wait_read(time.monotonic() + 20) == []
        pipe.write(b"line d\n", "d", far)
        threading.Timer(0.5, fifo.close).start()
        # The reader leaves without reading: that ends the wait, long before the deadline.
        assert pipe.wait_read(time.monotonic() + 20) == ["d"]
        assert pipe.readerless()
    finally:
        pipe.close()
        fifo.close()


def test_without_inotify_the_wait_for_the_reader_still_ends_when_it_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # inotify needs read permission on the FIFO, and an instance to spare.
    from check_grpc_health.fleet.sinks import pipe as module

    monkeypatch.setattr(module, "_libc", lambda: None)
    fifo = FifoReader(tmp_path / "cmd")
    pipe: module.CommandPipe[str] = module.CommandPipe(str(fifo.path))
    pipe.open()
    try:
        pipe.write(b"line a\n", "a", time.monotonic() + 10)
        threading.Timer(0.5, fifo.read).start()
        assert pipe.wait_read(time.monotonic() + 20) == []
        assert pipe._watch is None
    finally:
        pipe.close()
        fifo.close()


def test_a_plain_file_has_no_reader_to_wait_for(tmp_path: Path) -> None:
    from check_grpc_health.fleet.sinks.pipe import CommandPipe

    target = tmp_path / "commands.log"
    target.write_text("")
    pipe: CommandPipe[str] = CommandPipe(str(target))
    pipe.open()
    pipe.write(b"line a\n", "a", time.monotonic() + 10)
    assert (pipe.unread(), pipe.wait_read(time.monotonic() + 10), pipe.readerless()) == (
        [],
        [],
        False,
    )
    pipe.close()
    assert target.read_text() == "line a\n"
