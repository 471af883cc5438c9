"""The systemd notification protocol (sd_notify), in the few lines it takes.

Under `Type=notify` systemd passes the path of a datagram socket in $NOTIFY_SOCKET; the service
sends newline-separated `KEY=VALUE` assignments to it: `READY=1` once it serves, `RELOADING=1`
(with `MONOTONIC_USEC`, as `Type=notify-reload` expects) before a reload and `READY=1` after,
`STOPPING=1` when it shuts down, and `STATUS=...` for `systemctl status`. A path starting with
"@" names a socket in the abstract namespace.

Nothing here raises: outside systemd (no $NOTIFY_SOCKET) or when the socket is gone, every call
returns False and the proxy carries on.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger(__name__)

NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET"

__all__ = ["NOTIFY_SOCKET_ENV", "notify", "ready", "reloading", "status", "stopping"]


def _address(path: str) -> str | bytes | None:
    """The socket address for $NOTIFY_SOCKET, or None when it is not one we can use."""
    if path.startswith("@"):
        return b"\0" + path[1:].encode()  # the abstract namespace
    if path.startswith("/"):
        return path
    return None  # vsock:// and other forms are not for a service like this one


def notify(state: str) -> bool:
    """Send `state` (e.g. "READY=1\\nSTATUS=serving") to systemd; True when it was sent."""
    path = os.environ.get(NOTIFY_SOCKET_ENV, "")
    address = _address(path) if path else None
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except (OSError, ValueError) as exc:
        log.debug("sd_notify to %s failed: %s", path, exc)
        return False
    return True


def _line(key: str, value: str) -> str:
    # One assignment per line: a newline inside the text would start a new, unintended one.
    return f"{key}={' '.join(value.splitlines())}"


def ready(status_text: str | None = None) -> bool:
    """The service is up (after a start or at the end of a reload)."""
    lines = ["READY=1"]
    if status_text:
        lines.append(_line("STATUS", status_text))
    return notify("\n".join(lines))


def reloading(status_text: str | None = "reloading") -> bool:
    """A reload begins; send `ready()` when it is over (applied or rejected)."""
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    lines = ["RELOADING=1", f"MONOTONIC_USEC={usec}"]
    if status_text:
        lines.append(_line("STATUS", status_text))
    return notify("\n".join(lines))


def stopping(status_text: str | None = "stopping") -> bool:
    """The service is shutting down."""
    lines = ["STOPPING=1"]
    if status_text:
        lines.append(_line("STATUS", status_text))
    return notify("\n".join(lines))


def status(text: str) -> bool:
    """A one-line status shown by `systemctl status`."""
    return notify(_line("STATUS", text))
