"""A command pipe written line by line, which knows which of its lines the daemon has read.

Layer: adapter (the sinks of the fleet and of the monitor). A line written to a FIFO
is only in the kernel's pipe buffer (64 KiB on Linux); it reaches the daemon when the
daemon reads it. So a line counts as delivered once it has been read: ``FIONREAD`` on
the pipe says how many bytes are still unread, and since the lines are read in the
order they were written, the unread bytes are the last lines written. A line read only
in part counts as unread. Bytes that another writer put in the pipe count as ours, so
the count errs towards "unread", never towards a delivery that did not happen.

Waiting for the reader is event-driven: an inotify watch on the FIFO reports each read
(``IN_ACCESS``) and the reader's close (``IN_CLOSE_NOWRITE``), and the pipe itself
reports ``POLLERR`` once no reader is left. Where inotify is not available (no
permission to read the FIFO, no instances left), a bounded back-off from 1 ms to 50 ms
stands in: a daemon reads its pipe within milliseconds, so that costs a few wake-ups.
"""

from __future__ import annotations

import errno
import os
import select
import stat
import time
from collections import deque
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    import ctypes

Tag = TypeVar("Tag")

#: inotify(7): a read of the file, and its close by a reader.
_IN_ACCESS = 0x00000001
_IN_CLOSE_NOWRITE = 0x00000010
#: The back-off without inotify.
_FIRST_PAUSE = 0.001
_LONGEST_PAUSE = 0.05


class PipeFault(Exception):
    """Writing stopped; the message is one line (``Broken pipe``, ...)."""


class NoReader(PipeFault):
    """No process holds the pipe open for reading (the daemon is down)."""


class ReaderGone(PipeFault):
    """The reader closed the pipe while lines were being written."""


class PipeFull(PipeFault):
    """The pipe stayed full until the deadline: its reader does not read."""


class CommandPipe(Generic[Tag]):
    """A FIFO (or a plain file) opened for writing; each line written carries a tag.

    :meth:`unread` and :meth:`wait_read` return the tags of the lines not read yet.
    A plain file has no reader to wait for: a line written to it is delivered.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.handle: int | None = None
        self._fifo = False
        # The lines written and not known to be read: (size, tag), oldest first, and how
        # many bytes of the oldest the reader has read already.
        self._lines: deque[tuple[int, Tag]] = deque()
        self._head_read = 0
        self._watch: int | None = None
        self._watch_tried = False

    def open(self) -> None:
        """Open without blocking: a FIFO without a reader is an error at once (ENXIO)."""
        try:
            self.handle = os.open(
                self.path, os.O_WRONLY | os.O_NONBLOCK | os.O_APPEND | os.O_CLOEXEC
            )
        except OSError as error:
            if error.errno == errno.ENXIO:
                raise NoReader(
                    "no process reads the pipe (is the monitoring daemon running?)"
                ) from None
            raise PipeFault(error.strerror or type(error).__name__) from None
        self._fifo = stat.S_ISFIFO(os.fstat(self.handle).st_mode)

    def write(self, line: bytes, tag: Tag, deadline: float) -> None:
        """One ``write()`` of the whole line (keep it within ``select.PIPE_BUF`` bytes, which
        the kernel never interleaves with other writers); a full pipe is waited on until
        ``deadline`` (monotonic)."""
        assert self.handle is not None
        while True:
            try:
                written = os.write(self.handle, line)
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PipeFull("the pipe stayed full") from None
                poller = select.poll()
                poller.register(self.handle, select.POLLOUT)
                poller.poll(remaining * 1000)
                continue
            except BrokenPipeError:
                raise ReaderGone("its reader went away (Broken pipe)") from None
            except OSError as error:
                raise PipeFault(error.strerror or type(error).__name__) from None
            if written != len(line):  # only a plain file can do this (a full disk)
                raise PipeFault(f"only {written} of {len(line)} bytes written")
            if self._fifo:
                self._lines.append((len(line), tag))
            return

    def unread(self) -> list[Tag]:
        """The tags of the lines not (wholly) read yet; the lines read are forgotten."""
        if not self._lines:
            return []
        assert self.handle is not None
        import fcntl
        import struct
        import termios

        waiting = struct.unpack("i", fcntl.ioctl(self.handle, termios.FIONREAD, b"\0\0\0\0"))[0]
        held = sum(size for size, _ in self._lines) - self._head_read
        taken = held - min(waiting, held)
        while self._lines and taken >= self._lines[0][0] - self._head_read:
            taken -= self._lines.popleft()[0] - self._head_read
            self._head_read = 0
        self._head_read += taken
        return [tag for _, tag in self._lines]

    def wait_read(self, deadline: float) -> list[Tag]:
        """Wait until the reader has read every line, it went away, or ``deadline``
        (monotonic) passed; the tags of the lines still unread."""
        if not self._lines:
            return []
        self._watch_reads()
        pause = _FIRST_PAUSE
        while True:
            unread = self.unread()
            remaining = deadline - time.monotonic()
            if not unread or remaining <= 0 or self.readerless():
                return unread
            if self._watch is not None:
                self._await_event(remaining)
            else:
                time.sleep(min(pause, remaining))
                pause = min(pause * 2, _LONGEST_PAUSE)

    def close(self) -> None:
        """Close the pipe and the watch; what was unread is forgotten."""
        for handle in (self.handle, self._watch):
            if handle is not None:
                os.close(handle)
        self.handle = self._watch = None
        self._watch_tried = False
        self._lines.clear()
        self._head_read = 0

    def readerless(self) -> bool:
        """True once no process holds the pipe open for reading."""
        if not self._fifo:
            return False
        assert self.handle is not None
        poller = select.poll()
        poller.register(self.handle, 0)  # POLLERR is reported always: no reader is left
        return bool(poller.poll(0))

    def _await_event(self, timeout: float) -> None:
        """Sleep until the reader reads or closes, no reader is left, or ``timeout``."""
        assert self.handle is not None
        assert self._watch is not None
        poller = select.poll()
        poller.register(self._watch, select.POLLIN)
        poller.register(self.handle, 0)
        poller.poll(timeout * 1000)
        try:
            while os.read(self._watch, 4096):  # the events themselves tell nothing more
                pass
        except BlockingIOError:
            pass

    def _watch_reads(self) -> None:
        """Set up the inotify watch once, before the first look at what is unread, so that
        no read between the look and the wait goes unnoticed."""
        if self._watch_tried:
            return
        self._watch_tried = True
        libc = _libc()
        if libc is None:
            return
        watch = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if watch < 0:
            return
        events = _IN_ACCESS | _IN_CLOSE_NOWRITE
        if libc.inotify_add_watch(watch, os.fsencode(self.path), events) < 0:
            os.close(watch)
            return
        self._watch = watch


def _libc() -> ctypes.CDLL | None:
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    except (OSError, AttributeError):
        return None
    return libc
