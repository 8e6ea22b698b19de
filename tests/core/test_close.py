"""The core closes its channel in order, never with a reset, so server logs stay quiet.

A relay between the client and a real server records every byte the client sends and how
the client's side of the connection ended. grpcio's client sends no HTTP/2 GOAWAY when a
channel closes (grpc core does not; no channel option asks for one), so what the core can
promise, and this test checks, is the next best thing: no stream is reset, and the TCP
connection ends with an orderly FIN, not an RST.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import TYPE_CHECKING

from check_grpc_health import probe
from check_grpc_health.core.options import ProbeOptions
from check_grpc_health.core.targets import parse_target

if TYPE_CHECKING:
    from support.servers import HealthServer

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS, HEADERS, RST_STREAM = 0x4, 0x1, 0x3


class RecordingRelay:
    """Accepts one connection and relays it to ``upstream``, recording client bytes."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.upstream = upstream
        self.from_client = bytearray()
        self.client_ending = ""
        self.client_closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        client, _ = self.listener.accept()
        server = socket.create_connection(self.upstream)
        threading.Thread(target=self._pump, args=(server, client, None), daemon=True).start()
        self.client_ending = self._pump(client, server, self.from_client)
        self.client_closed.set()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, record: bytearray | None) -> str:
        """Copy until the source ends; say how it ended: ``fin`` or ``reset``."""
        try:
            while data := source.recv(65536):
                if record is not None:
                    record.extend(data)
                sink.sendall(data)
        except ConnectionResetError:
            return "reset"
        except OSError:
            return "error"
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_WR)
        return "fin"

    def close(self) -> None:
        self.listener.close()


def frame_types(stream: bytes) -> list[int]:
    """The types of the HTTP/2 frames in a client's byte stream, in order."""
    assert stream.startswith(PREFACE)
    position, types = len(PREFACE), []
    while position + 9 <= len(stream):
        length = int.from_bytes(stream[position : position + 3], "big")
        types.append(stream[position + 3])
        position += 9 + length
    return types


def test_closing_resets_nothing_and_ends_with_fin(server: HealthServer) -> None:
    relay = RecordingRelay(("127.0.0.1", server.port))  # type: ignore[arg-type]
    try:
        result = probe(ProbeOptions(parse_target(relay.address)))
        assert result.serving
        assert relay.client_closed.wait(5)
    finally:
        relay.close()
    types = frame_types(bytes(relay.from_client))
    assert types[0] == SETTINGS
    assert HEADERS in types
    assert RST_STREAM not in types
    assert relay.client_ending == "fin"
