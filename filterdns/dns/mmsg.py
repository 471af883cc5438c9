"""The UDP listener's socket calls: Linux's `recvmmsg` and `sendmmsg` through libc (ctypes),
and `sendto` for an answer sent alone.

The standard library has neither. One `recvmmsg` reads up to `size` datagrams into buffers built
once (the message headers, their iovecs and a sockaddr slot each); the answers ready while that
batch is handled are copied into a second set of slots and leave in one `sendmmsg`. Each
system call has a fixed cost (entry, the socket's lock, Python's call): under load it is paid
once per batch rather than once per datagram.

Client addresses come back as raw sockaddr bytes; `peer` turns them into what `recvfrom` would
give (`(ip, port)`, or `(ip, port, flowinfo, scope_id)` for IPv6), remembering the last few.
An answer goes back to the raw sockaddr it came from.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import logging
import os
import socket
import struct
import sys
from collections.abc import Callable
from typing import Any

from filterdns.dns.addresses import Peer

log = logging.getLogger(__name__)

SLOT = 4096  # bytes per datagram slot, each way: far above any real query; bigger answers: sendto
_ALONE = 2  # up to this many answers ready in a batch go by sendto (measured: bench/PROFILE.md)
_PEERS = 1024  # raw sockaddrs remembered with their (ip, port) before the table starts over
_NAME = 32  # bytes per sockaddr slot: sockaddr_in6 is 28
_RETRY = (errno.EINTR,)
_EMPTY = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR)
_TRUNC, _DONTWAIT = int(socket.MSG_TRUNC), int(socket.MSG_DONTWAIT)  # ints: flags are slow


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


_STRIDE = ctypes.sizeof(_Mmsghdr)
_FLAGS_AT = _Msghdr.msg_flags.offset
_LEN_AT = _Mmsghdr.msg_len.offset
_IOV_LEN = struct.Struct("@N")
_IOV_LEN_AT = _Iovec.iov_len.offset
_NAME_LENGTH = {socket.AF_INET: 16, socket.AF_INET6: 28}

# The server's datagram handler: (socket, query, client, loop) -> the answer to send now or None.
Handler = Callable[[socket.socket, bytes, Peer, asyncio.AbstractEventLoop], bytes | None]
_Call = Callable[..., int]
_calls: tuple[_Call, _Call] | None = None


def _libc() -> tuple[_Call, _Call]:
    """libc's recvmmsg and sendmmsg; OSError where there are none (not Linux, no libc).

    Called holding the GIL (PyDLL): on a non-blocking socket they return at once, and letting
    the log writer's thread take the GIL for each call would cost more than the call.
    """
    global _calls  # noqa: PLW0603 - looked up once per process
    if _calls is None:
        if not sys.platform.startswith("linux"):
            raise OSError(errno.ENOSYS, "recvmmsg and sendmmsg are Linux system calls")
        try:
            libc = ctypes.PyDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            recv, send = libc.recvmmsg, libc.sendmmsg
        except (OSError, AttributeError) as exc:
            raise OSError(errno.ENOSYS, f"no recvmmsg/sendmmsg in libc: {exc}") from exc
        recv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int,
                         ctypes.c_void_p]  # fmt: skip
        send.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
        recv.restype = send.restype = ctypes.c_int
        _calls = (recv, send)
    return _calls


def available() -> bool:
    """Whether this system has recvmmsg and sendmmsg (Linux, through libc)."""
    try:
        _libc()
    except OSError:
        return False
    return True


def pack_peer(family: int, peer: Peer) -> bytes:
    """The raw sockaddr (sockaddr_in or sockaddr_in6, as the kernel writes it) of `peer`."""
    ip, port = peer[0], peer[1]
    if family == socket.AF_INET:
        return struct.pack("=H", socket.AF_INET) + struct.pack("!H4s8x", port, socket.inet_aton(ip))
    flowinfo, scope = (peer[2], peer[3]) if len(peer) == 4 else (0, 0)
    if "%" in ip:
        ip, zone = ip.split("%", 1)
        scope = int(zone) if zone.isdigit() else socket.if_nametoindex(zone)
    raw = socket.inet_pton(socket.AF_INET6, ip)
    family_bytes = struct.pack("=H", socket.AF_INET6)
    return family_bytes + struct.pack("!HI16s", port, flowinfo, raw) + struct.pack("=I", scope)


def unpack_peer(raw: bytes) -> Peer:
    """What `recvfrom` gives for the raw sockaddr `raw` (the scope's name after % as
    getnameinfo writes it)."""
    port = raw[2] << 8 | raw[3]
    if len(raw) == _NAME_LENGTH[socket.AF_INET]:
        return socket.inet_ntop(socket.AF_INET, raw[4:8]), port
    (flowinfo,) = struct.unpack_from("!I", raw, 4)
    (scope,) = struct.unpack_from("=I", raw, 24)
    ip = socket.inet_ntop(socket.AF_INET6, raw[8:24])
    if scope:
        try:
            ip += "%" + socket.if_indextoname(scope)
        except OSError:
            ip += f"%{scope}"
    return ip, port, flowinfo, scope


def batch_for(sock: socket.socket, size: int) -> Batch | None:
    """Batched calls on `sock`, or None where this system cannot make them (recvfrom then)."""
    try:
        return Batch(sock, size)
    except OSError as exc:
        log.debug("UDP without recvmmsg/sendmmsg: %s", exc)
        return None


class Batch:
    """recvmmsg/sendmmsg on one UDP socket, with buffers and message headers built once.

    `receive` reads what is waiting; `queue` keeps an answer for `flush`, which sends all kept
    in one call. A handler must copy what it keeps (the slots are reused) — `receive` does.
    Raises OSError when the system has no recvmmsg.
    """

    def __init__(self, sock: socket.socket, size: int = 64, slot: int = SLOT) -> None:
        self._recv, self._send = _libc()
        self.fd = sock.fileno()
        self.family = sock.family
        self.size = size
        self.slot = slot
        self.queued = 0
        self.peers: dict[bytes, Peer] = {}
        self._namelen = _NAME_LENGTH[sock.family]
        self._in = _Slots(size, slot, self._namelen)
        self._out = _Slots(size, slot, self._namelen)
        self._heads: dict[int, struct.Struct] = {}
        self._starts = [i * slot for i in range(size)]  # where each datagram and sender lands
        self._names = [i * _NAME for i in range(size)]
        self._iov_lens = [i * self._out.iovec_size + _IOV_LEN_AT for i in range(size)]

    def answer(
        self,
        sock: socket.socket,
        handle: Handler,
        stats: dict[str, int],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        """Read the datagrams waiting, hand each to `handle` (the server's `_on_datagram`: the
        answer ready now, else None) and send the answers in one call (loop.add_reader's
        callback, in place of a read loop of recvfrom and sendto). One or two answers go by
        sendto: below three, sendmmsg's fixed cost (and ctypes') is more than it saves."""
        try:
            got = self.receive()
        except OSError as exc:
            log.debug("UDP receive error: %s", exc)
            return
        peers, peer = self.peers, self.peer
        ready: list[tuple[bytes, bytes, Peer]] = []
        try:
            for data, raw in got:
                addr = peers.get(raw) or peer(raw)
                if data is None:  # longer than a slot, so than any query: not read as if whole
                    stats["queries"] += 1
                    stats["dropped"] += 1
                    log.debug("dropped packet from %s: longer than %d bytes", addr[0], self.slot)
                    continue
                out = handle(sock, data, addr, loop)
                if out is not None:
                    ready.append((out, raw, addr))
        finally:  # a handler that raised (a bug, logged by the loop) holds up no other answer
            if len(ready) > _ALONE:
                self._send_all(sock, ready)
            else:
                for out, _raw, addr in ready:
                    send_one(sock, out, addr)

    def _send_all(self, sock: socket.socket, ready: list[tuple[bytes, bytes, Peer]]) -> None:
        queue = self.queue
        for out, raw, addr in ready:
            if not queue(out, raw):
                send_one(sock, out, addr)
        for client, error in self.flush():
            log.debug("UDP send to %s failed: %s", client[0], error)

    def receive(self) -> list[tuple[bytes | None, bytes]]:
        """The datagrams waiting (at most `size`), each as (its bytes, or None when it was
        longer than a slot and cut; the sender's raw sockaddr). Raises OSError on an error."""
        slots = self._in  # the kernel writes msg_len and msg_flags; msg_namelen stays the family's
        got = self._recv(self.fd, slots.address, self.size, _DONTWAIT, None)
        if got <= 0:
            code = ctypes.get_errno()
            if got == 0 or code in _EMPTY:
                return []
            raise OSError(code, os.strerror(code))
        data, names, namelen = slots.data, slots.names, self._namelen
        if got == 1:  # the usual case at low rates, kept short
            flags, length = _ONE.unpack_from(slots.view)
            cut = flags & _TRUNC
            return [(None if cut else data[:length].tobytes(), names[:namelen].tobytes())]
        head = self._heads.get(got)
        if head is None:
            head = self._heads[got] = _head(got)
        fields = head.unpack_from(slots.view)
        return [
            (
                None if flags & _TRUNC else data[start : start + length].tobytes(),
                names[name : name + namelen].tobytes(),
            )
            for flags, length, start, name in zip(
                fields[::2], fields[1::2], self._starts, self._names, strict=False
            )
        ]

    def peer(self, raw: bytes) -> Peer:
        """(ip, port) or (ip, port, flowinfo, scope_id) of a raw sockaddr, as recvfrom gives."""
        peer = self.peers.get(raw)
        if peer is None:
            if len(self.peers) >= _PEERS:
                self.peers.clear()
            peer = self.peers[raw] = unpack_peer(raw)
        return peer

    def queue(self, answer: bytes, raw: bytes) -> bool:
        """Keep `answer` for `raw`'s sender until `flush`; False when it does not fit a slot or
        the batch is full (send it alone)."""
        at, size = self.queued, len(answer)
        if at >= self.size or size > self.slot:
            return False
        slots, start, name = self._out, self._starts[at], self._names[at]
        slots.data[start : start + size] = answer
        slots.names[name : name + len(raw)] = raw
        _IOV_LEN.pack_into(slots.iovecs, self._iov_lens[at], size)
        self.queued = at + 1
        return True

    def flush(self) -> list[tuple[Peer, OSError]]:
        """Send every answer kept, in as few calls as the kernel allows; the ones that failed,
        each with its client and the error (the others still go)."""
        count, self.queued = self.queued, 0
        failed: list[tuple[Peer, OSError]] = []
        start, base = 0, self._out.address
        while start < count:
            sent = self._send(self.fd, base + start * _STRIDE, count - start, 0)
            if sent > 0:
                start += sent
                continue
            code = ctypes.get_errno()
            if code in _RETRY:
                continue
            name = self._out.names[start * _NAME : start * _NAME + self._namelen].tobytes()
            failed.append((self.peer(name), OSError(code, os.strerror(code))))
            start += 1  # that one is dropped, as a failed sendto is; the rest go on
        return failed


def send_one(sock: socket.socket, out: bytes, addr: Peer) -> None:
    """Send one answer with sendto; a failure is logged and the answer dropped."""
    try:
        sock.sendto(out, addr)
    except OSError as exc:  # full send buffer, unreachable client, socket closed at shutdown
        log.debug("UDP send to %s failed: %s", addr[0], exc)


class _Slots:
    """`size` message headers, each with one iovec on its `slot` bytes and a sockaddr slot."""

    def __init__(self, size: int, slot: int, namelen: int) -> None:
        self._buffer = ctypes.create_string_buffer(size * slot)
        self._names = ctypes.create_string_buffer(size * _NAME)
        self._iovecs = (_Iovec * size)()
        self._headers = (_Mmsghdr * size)()
        buffer, names = ctypes.addressof(self._buffer), ctypes.addressof(self._names)
        for i in range(size):
            self._iovecs[i].iov_base = buffer + i * slot
            self._iovecs[i].iov_len = slot
            header = self._headers[i].msg_hdr
            header.msg_name = names + i * _NAME
            header.msg_namelen = namelen
            header.msg_iov = ctypes.addressof(self._iovecs[i])
            header.msg_iovlen = 1
        self.address = ctypes.addressof(self._headers)
        self.iovec_size = ctypes.sizeof(_Iovec)
        self.view = _bytes_view(self._headers)
        self.data = _bytes_view(self._buffer)
        self.names = _bytes_view(self._names)
        self.iovecs = _bytes_view(self._iovecs)


def _bytes_view(thing: Any) -> memoryview:
    return memoryview(thing).cast("B")


def _head(count: int) -> struct.Struct:
    """Reads (msg_flags, msg_len) of the first `count` headers in one call."""
    one = f"{_FLAGS_AT}xi{_LEN_AT - _FLAGS_AT - 4}xI{_STRIDE - _LEN_AT - 4}x"
    return struct.Struct("=" + one * count)


_ONE = _head(1)
