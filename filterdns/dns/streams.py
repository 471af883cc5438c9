"""Upstream exchanges over TCP and DNS over TLS: one pooled, pipelined connection per server.

RFC 7766 and RFC 7858: many queries in flight on one connection at once, each with an id unique
on that connection, answers matched by id and question in whatever order they come back. A
connection that breaks fails its pending queries and leaves the pool; an exchange that found its
pooled connection closed by the server retries once on a new one. Connections idle for
`tcp_idle` seconds are closed. Concurrent exchanges with a server that has no connection yet
share one connection attempt.
"""

from __future__ import annotations

import asyncio
import secrets
import ssl
import struct

from filterdns.config import UpstreamServer
from filterdns.dns import outgoing, wire
from filterdns.errors import UpstreamError, WireError

U16 = struct.Struct("!H")
CLOSE_GRACE = 2.0  # seconds a closing connection may take for its TLS goodbye before it is cut
MAX_PENDING = 65536  # queries in flight on one connection: every id is taken


class ConnectionLost(UpstreamError):
    """The stream to an upstream ended (closed by the server, reset) before the answer came."""


class Connection:
    """One pooled TCP or TLS stream to a server, with the queries in flight on it."""

    def __init__(
        self,
        pool: StreamPool,
        server: UpstreamServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.pool = pool
        self.server = server
        self.reader = reader
        self.writer = writer
        self.pending: dict[int, tuple[asyncio.Future[bytes], bytes]] = {}
        self.closed = False
        self._loop = asyncio.get_running_loop()
        self._idle: asyncio.TimerHandle | None = None
        self._arm_idle()
        self.reader_task = self._loop.create_task(self._read_loop())

    async def ask(self, query: bytes, question: bytes) -> bytes:
        """Send `query` (its id made unique on this connection) and wait for the answer."""
        if self.closed or self.writer.transport.is_closing():
            self.close()
            raise ConnectionLost(f"upstream {self.server} closed the connection")
        if len(self.pending) >= MAX_PENDING:
            raise UpstreamError(f"upstream {self.server}: too many queries in flight")
        msg_id = U16.unpack_from(query)[0]
        if msg_id in self.pending:
            while msg_id in self.pending:
                msg_id = secrets.randbelow(65536)
            query = U16.pack(msg_id) + query[2:]
        future: asyncio.Future[bytes] = self._loop.create_future()
        self.pending[msg_id] = (future, question)
        self._disarm_idle()
        try:
            self.writer.write(U16.pack(len(query)) + query)
            try:
                await self.writer.drain()
            except OSError as exc:  # ConnectionResetError and friends
                self.close()
                raise ConnectionLost(f"upstream {self.server} connection failed: {exc}") from None
            return await future
        finally:
            entry = self.pending.get(msg_id)
            if entry is not None and entry[0] is future:
                del self.pending[msg_id]
            if not self.pending and not self.closed:
                self._arm_idle()

    def close(self, reason: str = "connection closed") -> None:
        """Fail what is pending, leave the pool and start closing the stream (no waiting)."""
        self._fail(f"upstream {self.server} {reason}")
        self.writer.close()

    def abort(self) -> None:
        """Cut the stream at once (no TLS goodbye)."""
        self._fail(f"upstream {self.server} connection closed")
        self.writer.transport.abort()

    def _fail(self, message: str) -> None:
        if self.closed:
            return
        self.closed = True
        self._disarm_idle()
        self.pool.forget(self)
        pending = list(self.pending.values())
        self.pending.clear()
        for future, _question in pending:
            if not future.done():
                future.set_exception(ConnectionLost(message))

    def _deliver(self, data: bytes) -> bool:
        """Hand a framed reply to its waiter; False when the stream carries garbage."""
        if len(data) < 12:
            return False
        msg_id, flags = wire.ID_FLAGS.unpack_from(data)
        entry = self.pending.get(msg_id)
        if entry is None or not flags & wire.QR:
            return True  # a late answer to an abandoned query, or junk with an unknown id
        future, question = entry
        try:
            if outgoing.question_of(data) != question:
                return True
        except (WireError, IndexError, struct.error):
            del self.pending[msg_id]
            if not future.done():
                future.set_exception(UpstreamError(f"upstream {self.server} answered garbage"))
            return True
        del self.pending[msg_id]
        if not future.done():
            future.set_result(data)
        return True

    async def _read_loop(self) -> None:
        reason = "closed the connection"
        try:
            while True:
                head = await self.reader.readexactly(2)
                data = await self.reader.readexactly(U16.unpack(head)[0])
                if not self._deliver(data):
                    reason = "answered garbage"
                    break
        except asyncio.IncompleteReadError:
            pass
        except OSError as exc:  # resets and ssl.SSLError
            reason = f"connection failed: {exc}"
        finally:
            self.close(reason)
        try:
            async with asyncio.timeout(CLOSE_GRACE):
                await self.writer.wait_closed()
        except (OSError, TimeoutError):
            self.writer.transport.abort()

    def _arm_idle(self) -> None:
        self._disarm_idle()
        self._idle = self._loop.call_later(self.pool.tcp_idle, self._idle_timeout)

    def _disarm_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _idle_timeout(self) -> None:
        self._idle = None
        if not self.pending:
            self.close("connection closed after being idle")


class StreamPool:
    """The TCP and TLS connections to the upstream servers, one per server, made on demand."""

    def __init__(self, ssl_context: ssl.SSLContext | None, tcp_idle: float) -> None:
        self.tcp_idle = tcp_idle
        self.closed = False
        self._ssl_context = ssl_context
        self._pool: dict[UpstreamServer, Connection] = {}
        self._connecting: dict[UpstreamServer, asyncio.Task[Connection]] = {}
        self._waiters: dict[UpstreamServer, int] = {}
        self._connections: set[Connection] = set()

    async def ask(self, server: UpstreamServer, query: bytes, question: bytes) -> bytes:
        """The answer of `server` to `query` over its pooled connection."""
        retried = False
        while True:
            connection, reused = await self._connection(server)
            try:
                return await connection.ask(query, question)
            except ConnectionLost:
                # A pooled connection the server closed while idle: one more try on a new one.
                if not reused or retried:
                    raise
                retried = True

    def forget(self, connection: Connection) -> None:
        """`connection` is closing: the next exchange with its server makes a new one."""
        if self._pool.get(connection.server) is connection:
            del self._pool[connection.server]

    async def close(self) -> None:
        """Stop connecting, close every connection and stop their reader tasks."""
        self.closed = True
        connecting = list(self._connecting.values())
        for task in connecting:
            task.cancel()
        await asyncio.gather(*connecting, return_exceptions=True)
        connections = list(self._connections)
        for connection in connections:
            connection.close()
        readers = [c.reader_task for c in connections if not c.reader_task.done()]
        if readers:
            _done, late = await asyncio.wait(readers, timeout=CLOSE_GRACE + 0.5)
            for connection in connections:
                if connection.reader_task in late:
                    connection.abort()
                    connection.reader_task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def _connection(self, server: UpstreamServer) -> tuple[Connection, bool]:
        """The pooled connection to `server` (reused True) or a new one (shared by waiters)."""
        connection = self._pool.get(server)
        if connection is not None and not connection.closed:
            return connection, True
        if self.closed:
            raise UpstreamError(f"upstream {server}: the transport is closed")
        task = self._connecting.get(server)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._connect(server))
            self._connecting[server] = task
            task.add_done_callback(lambda done: self._connected(server, done))
        self._waiters[server] = self._waiters.get(server, 0) + 1
        try:
            return await asyncio.shield(task), False
        finally:
            self._waiters[server] -= 1
            if not self._waiters[server]:
                del self._waiters[server]
                if not task.done():  # nobody wants it any more: stop connecting
                    task.cancel()

    def _connected(self, server: UpstreamServer, task: asyncio.Task[Connection]) -> None:
        if self._connecting.get(server) is task:
            del self._connecting[server]
        if not task.cancelled():
            task.exception()  # retrieved: a waiter may have given up before it finished

    async def _connect(self, server: UpstreamServer) -> Connection:
        context = None
        hostname = None
        if server.scheme == "tls":
            if self._ssl_context is None:
                self._ssl_context = ssl.create_default_context()
            context = self._ssl_context
            hostname = server.sni or server.host
        try:
            reader, writer = await asyncio.open_connection(
                server.host, server.port, ssl=context, server_hostname=hostname
            )
        except ssl.SSLError as exc:  # includes certificate verification failures
            raise UpstreamError(f"upstream {server}: TLS handshake failed: {exc}") from None
        except OSError as exc:
            raise UpstreamError(f"upstream {server}: cannot connect: {exc}") from None
        connection = Connection(self, server, reader, writer)
        self._connections.add(connection)
        connection.reader_task.add_done_callback(lambda _t: self._connections.discard(connection))
        if self.closed:
            connection.close()
            raise UpstreamError(f"upstream {server}: the transport is closed")
        self._pool[server] = connection
        return connection
