"""A TCP relay on 127.0.0.1 that a test can take down and bring back on the same port.

Layer: tests (support). A daemon that goes away and comes back, for the monitor's sinks:
while the relay is down its port refuses connections and the connections it carried are
reset, as when the daemon behind it stops; brought back, it carries bytes to the real
daemon again. Only the path to the daemon is cut; the daemon itself keeps running.

While down, the port stays bound by a socket that does not listen: a connection to it is
refused, and neither another process nor a client's own ephemeral port (a socket that
connects to itself) can take it meanwhile.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class Relay:
    """Copies bytes between clients on :attr:`port` and ``target`` while it is up."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener: socket.socket | None = None
        self._holder: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.port = 0
        self.up()

    def up(self) -> None:
        """Listen (again, on the same port once one was chosen)."""
        listener = _bound(self.port)
        listener.listen(64)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        holder, self._holder = self._holder, None
        if holder is not None:
            holder.close()
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """Stop listening and reset every connection the relay carries."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, []
        if listener is not None:
            self._holder = _bound(self.port)
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        _reset(*sockets)

    def close(self) -> None:
        """Down for good: the port is free again."""
        self.down()
        holder, self._holder = self._holder, None
        if holder is not None:
            holder.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                late = self._listener is not listener  # accepted as the relay went down
                if not late:
                    self._sockets += [client, server]
            if late:
                _reset(client, server)
                continue
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=_copy, args=(source, sink), daemon=True).start()


def _bound(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def _reset(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            # SO_LINGER 0: the close sends a reset, as a daemon that went away would.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            sock.close()


def _copy(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
