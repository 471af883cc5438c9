"""The listening sockets: a UDP and a TCP socket bound to one address and port, their options
(a UDP receive buffer that holds a burst, IPv6-only so "0.0.0.0" and "[::]" both bind,
SO_REUSEPORT when worker processes share the port, a socket filter that sends each client
address to one of them), and the start-up line's addresses.

`DnsServer` binds its pairs here; with `server.workers` the main process binds one pair per
worker (app.workers) and each worker's server adopts its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import socket
import struct
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


# Linux's SO_ATTACH_REUSEPORT_CBPF (4.5) and SO_DETACH_REUSEPORT_BPF (5.8), not in `socket`.
_ATTACH_REUSEPORT_CBPF = 51
_DETACH_REUSEPORT_BPF = 68
_NET_OFF = 0xFFF00000  # SKF_NET_OFF: a load relative to the IP header
# Where the last four bytes of the source address are in the IP header.
_SOURCE_WORD = {socket.AF_INET: 12, socket.AF_INET6: 20}
_LD_W_ABS, _ALU_MOD_K, _RET_A = 0x20, 0x94, 0x16


def steer_by_client(first: socket.socket, count: int, on: bool) -> None:
    """Whether the kernel sends every packet (UDP) or connection (TCP) of one client address to
    the same socket of the SO_REUSEPORT group `first` opened (the socket bound i-th takes the
    addresses whose last four bytes are i modulo `count`), rather than spreading them by
    source port. Raises OSError when the kernel refuses."""
    if not on:
        with contextlib.suppress(OSError):  # ENOENT: nothing attached
            first.setsockopt(socket.SOL_SOCKET, _DETACH_REUSEPORT_BPF, 0)
        return
    program = [
        (_LD_W_ABS, _NET_OFF + _SOURCE_WORD[first.family]),  # A = source address, last word
        (_ALU_MOD_K, count),  # A %= count
        (_RET_A, 0),  # the index of the socket in the group
    ]
    code = b"".join(struct.pack("=HBBI", op, 0, 0, k) for op, k in program)
    buffer = ctypes.create_string_buffer(code, len(code))  # copied by the kernel at once
    fprog = struct.pack("@HP", len(program), ctypes.addressof(buffer))
    first.setsockopt(socket.SOL_SOCKET, _ATTACH_REUSEPORT_CBPF, fprog)


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
