"""systemd's readiness protocol: ``READY=1``, ``RELOADING=1``, ``STOPPING=1``, ``STATUS=...``.

Layer: adapter (the monitor), process glue. With ``Type=notify`` systemd passes a socket
in ``$NOTIFY_SOCKET`` and waits for ``READY=1`` before it counts the service as started;
``systemctl reload`` waits for the reload to finish, and ``WatchdogSec=`` restarts a
monitor whose event loop stopped turning. One datagram each, standard library only;
without ``$NOTIFY_SOCKET`` every call does nothing.
"""

from __future__ import annotations

import os
import socket


def notify(*fields: str) -> bool:
    """Send ``fields`` (``"READY=1"``, ``"STATUS=..."``) to systemd; False when not under it."""
    path = os.environ.get("NOTIFY_SOCKET", "")
    if not path:
        return False
    if path.startswith("@"):  # an abstract socket
        path = "\0" + path[1:]
    message = "\n".join(fields).encode("utf-8", "replace")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(path)
            sock.sendall(message)
    except OSError:
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between ``WATCHDOG=1`` pings systemd asks for (half its timeout), if any."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000
