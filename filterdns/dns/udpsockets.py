"""The UDP sockets to the upstream servers: a few connected sockets, each shared by many queries.

A socket per query cost the miss path a `socket()`, a `connect()`, two `epoll_ctl` calls and a
`close()` for every name not cached, plus a reader registration and a timer. Here each server
address has one current socket, connected (so the kernel picks a random source port and drops
datagrams from any other address or port) and read by one reader callback; the queries in flight
on it wait in a dict by message id, each holding its question, its future and its deadline.

What keeps forged answers out stays as it was: every query gets a random id (drawn again while
the id is in flight on that socket), and a datagram is taken only when it is a response with
that id to that very question (anything else is dropped and the wait goes on). The source port
still changes: a socket sends at most `SOCKET_USES` queries, for at most `SOCKET_AGE` seconds,
then the next query opens a new one, and the old one is closed once its answers are in or their
deadlines passed. An ICMP port unreachable (an error on the connected socket, reported to the
next recv or send) fails every query waiting on that socket, which all went to that one server.
Deadlines are kept by one sweep every `SWEEP` seconds while anything is in flight, not by a
timer per query.
"""

from __future__ import annotations

import array
import asyncio
import os
import socket
import ssl
import struct
from collections.abc import Callable
from typing import Any

from filterdns.config import UpstreamServer
from filterdns.dns import outgoing, wire
from filterdns.errors import UpstreamError

MAX_MESSAGE = 65535
SOCKET_USES = 64  # queries sent from one socket (one source port) before a new one takes over
SOCKET_AGE = 10.0  # seconds one socket stays current, however few queries it sent
SWEEP = 0.05  # seconds between two looks for queries past their deadline

Destination = tuple[socket.AddressFamily, tuple[Any, ...]]
Notify = Callable[["asyncio.Future[bytes]"], None]
Truncated = Callable[[UpstreamServer, bytes, bytes, "asyncio.Future[bytes]", float], None]
_ID = struct.Struct("!H")
IDS_PER_DRAW = 256  # message ids read from the system's random source at once


class RandomIds:
    """Message ids from the system's CSPRNG (`os.urandom`, as `secrets` uses), read 256 at a
    time: one system call for 256 queries instead of one each."""

    def __init__(self) -> None:
        self._ids = array.array("H")

    def next(self) -> int:
        """One random id, 0 to 65535."""
        if not self._ids:
            self._ids.frombytes(os.urandom(2 * IDS_PER_DRAW))
        return self._ids.pop()


def failure(server: UpstreamServer, exc: BaseException) -> UpstreamError:
    """The UpstreamError naming `server` for an OSError, a bad message or a TLS failure."""
    if isinstance(exc, UpstreamError):
        return exc
    if isinstance(exc, ConnectionRefusedError):
        return UpstreamError(f"upstream {server} refused the query (port unreachable)")
    if isinstance(exc, ssl.SSLError):
        return UpstreamError(f"upstream {server}: TLS failed: {exc}")
    return UpstreamError(f"upstream {server}: {exc}")


class _Waiting:
    """One query in flight: what its answer must match, who waits for it, until when."""

    __slots__ = ("budget", "due", "future", "notify", "query", "question", "server")

    def __init__(
        self,
        future: asyncio.Future[bytes],
        notify: Notify | None,
        *,
        server: UpstreamServer,
        query: bytes,
        question: bytes,
        budget: float,
        due: float,
    ) -> None:
        self.future = future
        self.notify = notify  # told at once when the future is settled here, with no loop turn
        self.server = server
        self.query = query
        self.question = question
        self.budget = budget  # seconds, for the timeout's message
        self.due = due

    def answer(self, data: bytes) -> None:
        """Settle the future with the answer (if nobody gave up on it) and tell the waiter."""
        if not self.future.done():
            self.future.set_result(data)
            if self.notify is not None:
                self.notify(self.future)

    def fail(self, error: UpstreamError) -> None:
        """Settle the future with `error` (if nobody gave up on it) and tell the waiter."""
        if not self.future.done():
            self.future.set_exception(error)
            if self.notify is not None:
                self.notify(self.future)


class _Socket:
    """One connected UDP socket and the queries waiting for their answer on it."""

    __slots__ = ("fd", "left", "pending", "retire_at", "retired", "sock")

    def __init__(self, destination: Destination, now: float) -> None:
        family, address = destination
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
            self.sock.connect(address)
        except OSError:
            self.sock.close()
            raise
        self.fd = self.sock.fileno()
        self.pending: dict[int, _Waiting] = {}
        self.left = SOCKET_USES
        self.retire_at = now + SOCKET_AGE
        self.retired = False  # no longer sends; closed once nothing waits on it


class UdpPool:
    """The current socket of each server address, and the retired ones still awaiting answers."""

    def __init__(self, on_truncated: Truncated) -> None:
        self._on_truncated = on_truncated  # a TC answer: asked again over TCP by the transport
        self._current: dict[Destination, _Socket] = {}
        self._open: dict[int, _Socket] = {}  # by descriptor: current and retired
        self._sweep: asyncio.TimerHandle | None = None
        self._ids = RandomIds()

    @property
    def sockets(self) -> int:
        """Sockets open now (current and retired)."""
        return len(self._open)

    def send(
        self,
        loop: asyncio.AbstractEventLoop,
        server: UpstreamServer,
        destination: Destination,
        future: asyncio.Future[bytes],
        *,
        budget: float,
        build: Callable[[int], bytes],
        question: bytes,
        notify: Notify | None = None,
    ) -> None:
        """Send the query `build(msg_id)` makes; `future` gets the answer, or UpstreamError
        after `budget` seconds, and `notify(future)` is called then. Raises OSError when it
        cannot be sent."""
        now = loop.time()
        current = self._current.get(destination)
        if current is None or current.left <= 0 or now >= current.retire_at:
            if current is not None:
                self._retire(loop, destination, current)
            current = self._new(loop, destination, now)
        pending = current.pending
        msg_id = self._ids.next()
        while msg_id in pending:
            msg_id = self._ids.next()
        query = build(msg_id)
        try:
            current.sock.send(query)
        except ConnectionRefusedError as exc:
            # An ICMP port unreachable for an earlier query, reported to this send: the server's
            # port is closed for every query waiting on the socket, not only this one.
            self._fail_all(current, exc)
            raise
        pending[msg_id] = _Waiting(
            future,
            notify,
            server=server,
            query=query,
            question=question,
            budget=budget,
            due=now + budget,
        )
        current.left -= 1
        if self._sweep is None:
            self._sweep = loop.call_at(now + SWEEP, self._sweep_now, loop)

    def close(self) -> None:
        """Close every socket; queries still waiting fail."""
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        loop = asyncio.get_running_loop()
        for one in list(self._open.values()):
            waiting = list(one.pending.values())
            one.pending.clear()
            for entry in waiting:
                entry.fail(UpstreamError(f"upstream {entry.server}: the transport closed"))
            self._close(loop, one)
        self._current.clear()

    def _new(
        self, loop: asyncio.AbstractEventLoop, destination: Destination, now: float
    ) -> _Socket:
        made = _Socket(destination, now)
        loop.add_reader(made.fd, self._readable, loop, made)
        self._open[made.fd] = made
        self._current[destination] = made
        return made

    def _retire(
        self, loop: asyncio.AbstractEventLoop, destination: Destination, old: _Socket
    ) -> None:
        del self._current[destination]
        old.retired = True
        if not old.pending:
            self._close(loop, old)

    def _close(self, loop: asyncio.AbstractEventLoop, one: _Socket) -> None:
        # Unregister before closing so the descriptor number, soon reused, is not watched.
        if self._open.pop(one.fd, None) is not None:
            loop.remove_reader(one.fd)
            one.sock.close()

    def _readable(self, loop: asyncio.AbstractEventLoop, one: _Socket) -> None:
        """Read every waiting datagram; each response to a question in flight ends its wait."""
        pending = one.pending
        while True:
            try:
                data = one.sock.recv(MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # ConnectionRefusedError from an ICMP port unreachable
                self._fail_all(one, exc)
                break
            if len(data) < 12:
                continue
            msg_id = _ID.unpack_from(data)[0]
            entry = pending.get(msg_id)
            if entry is None:
                continue
            if entry.future.done():  # given up on (cancelled): the id is free again
                del pending[msg_id]
                continue
            if not outgoing.is_reply_to(data, msg_id, entry.question):
                continue
            del pending[msg_id]
            if wire.ID_FLAGS.unpack_from(data)[1] & wire.TC:
                if entry.notify is not None:  # settled later, by the retry's task
                    entry.future.add_done_callback(entry.notify)
                self._on_truncated(
                    entry.server, entry.query, entry.question, entry.future, entry.due
                )
            else:
                entry.answer(data)
        if not pending and one.retired:
            self._close(loop, one)

    @staticmethod
    def _fail_all(one: _Socket, exc: OSError) -> None:
        """Every query waiting on `one` fails with `exc` (they all went to its one server)."""
        waiting = list(one.pending.values())
        one.pending.clear()
        for failed in waiting:
            failed.fail(failure(failed.server, exc))

    def _sweep_now(self, loop: asyncio.AbstractEventLoop) -> None:
        """Fail the queries past their deadline, forget the given-up ones, close drained
        retired sockets; look again in SWEEP seconds while anything waits."""
        self._sweep = None
        now = loop.time()
        waiting = False
        for one in list(self._open.values()):
            pending = one.pending
            for msg_id, entry in list(pending.items()):
                if entry.future.done():
                    del pending[msg_id]
                elif entry.due <= now:
                    del pending[msg_id]
                    entry.fail(
                        UpstreamError(
                            f"upstream {entry.server} timed out after {entry.budget:.1f} s"
                        )
                    )
            if pending:
                waiting = True
            elif one.retired:
                self._close(loop, one)
        if waiting:
            self._sweep = loop.call_at(now + SWEEP, self._sweep_now, loop)
