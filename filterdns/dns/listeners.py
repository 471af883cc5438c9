"""The listening sockets: a UDP and a TCP socket bound to one address and port, their options
(a UDP receive buffer that holds a burst, IPv6-only so "0.0.0.0" and "[::]" both bind,
SO_REUSEPORT when worker processes share the port), and the start-up line's addresses.

`DnsServer` binds its pairs here; with `server.workers` the main process binds one pair per
worker (app.workers) and each worker's server adopts its own.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Iterable

from filterdns.config import ListenAddress
from filterdns.errors import ServerError

_BIND_ATTEMPTS = 20
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024  # bytes asked for each UDP listening socket


def bind_pair(
    address: ListenAddress, *, reuse_port: bool = False
) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket bound to the same address and port (port 0: one free for both).

    `reuse_port` (SO_REUSEPORT): several pairs share the port, the kernel spreading queries
    and connections over them, one pair per worker process (app.workers).
    """
    for _ in range(_BIND_ATTEMPTS):
        udp = _socket(address.host, socket.SOCK_DGRAM, reuse_port)
        try:
            udp.bind((address.host, address.port))
            port = udp.getsockname()[1]
            tcp = _socket(address.host, socket.SOCK_STREAM, reuse_port)
            try:
                tcp.bind((address.host, port))
                tcp.listen(128)
            except OSError:
                tcp.close()
                raise
        except OSError as exc:
            udp.close()
            if exc.errno == errno.EADDRINUSE and address.port == 0:
                continue  # the free UDP port was taken for TCP: try another one
            unavailable = exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)
            message = f"cannot listen on {address}: {exc.strerror or exc}"
            if exc.errno == errno.EADDRINUSE and address.port == 53:
                message += (
                    " (another DNS server, such as systemd-resolved's stub or dnsmasq, holds"
                    " port 53; stop it or set server.listen to another port, e.g. 127.0.0.1:5353)"
                )
            elif exc.errno == errno.EACCES:
                message += " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
            raise ServerError(message, unavailable=unavailable) from exc
        return udp, tcp
    raise ServerError(f"cannot find a port free for both UDP and TCP on {address.host}")


def _socket(host: str, kind: int, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, kind)
    sock.setblocking(False)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:  # let "0.0.0.0:53" and "[::]:53" both be bound
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    if kind == socket.SOCK_STREAM:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    else:
        # Room for a burst of queries while the loop is busy (a collection, a log batch): the
        # kernel's default holds only ~250 datagrams. Capped by net.core.rmem_max.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
    return sock


def addresses_text(bound: Iterable[ListenAddress]) -> str:
    """'127.0.0.1:5353, [::1]:5353' for the start-up line."""
    return ", ".join(str(address) for address in bound)
