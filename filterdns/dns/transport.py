"""Exchanges with upstream resolvers over UDP, TCP, DNS-over-TLS and DNS over HTTPS.

This is the only module with sockets.

`Transport.exchange(server, qname_wire, qtype, qclass, deadline)` sends one query and returns the
validated reply (complete message bytes, OPT record included) or raises UpstreamError naming the
server. `deadline` is an absolute `loop.time()` covering every step: connecting, the TLS
handshake, waiting for the answer, and the retry over TCP of a truncated UDP answer.

UDP: a new socket per exchange, connected to the server so the system picks a random source port
and drops datagrams from any other address; a random message id; a datagram is accepted only when
it is a response with our id to our question (anything else is dropped and the wait goes on). An
ICMP port unreachable fails at once. A truncated answer (TC) is asked again over TCP.

TCP and TLS (RFC 7766, RFC 7858): one pooled connection per server, reused and pipelined: many
queries in flight at once, each with an id unique on that connection, answers matched by id and
question in whatever order they come back. A connection that breaks fails its pending queries and
leaves the pool; an exchange that found its pooled connection closed by the server retries once
on a new one. Connections idle for `tcp_idle` seconds are closed.

HTTPS (RFC 8484): one httpx client per server, made on first use and closed by `close()`; it
speaks HTTP/2 where the server offers it (many queries in flight on one connection) and keeps
HTTP/1.1 connections alive for reuse; idle ones close after `tcp_idle` seconds. A query is a POST
of the wire message with id 0 (as the RFC recommends, so HTTP caches can share answers); the
answer must be status 200, type application/dns-message, and a response to the question. The
connection goes to the configured address; the certificate is checked against the server name
when one is configured (also sent as SNI and HTTP Host), else against the address. No proxy or
other setting is taken from the environment.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import socket
import ssl
import struct
from typing import TYPE_CHECKING, Any

from filterdns.config import UpstreamServer
from filterdns.dns import wire
from filterdns.errors import UpstreamError, WireError

if TYPE_CHECKING:  # httpx (~5 MB) is imported on the first DNS-over-HTTPS exchange only
    import httpx

U16 = struct.Struct("!H")
ID_FLAGS = struct.Struct("!HH")
MAX_MESSAGE = 65535
CLOSE_GRACE = 2.0  # seconds a closing connection may take for its TLS goodbye before it is cut
DNS_MESSAGE = "application/dns-message"
HTTP_CONNECTIONS = 8  # per DoH server; HTTP/2 needs one, HTTP/1.1 one per query in flight


class _ConnectionLost(UpstreamError):
    """The stream to an upstream ended (closed by the server, reset) before the answer came."""


def _matches(data: bytes, msg_id: int, question: bytes) -> bool:
    """Whether `data` is a response with `msg_id` to `question` (the anti-spoofing check)."""
    if len(data) < 12:
        return False
    reply_id, flags = ID_FLAGS.unpack_from(data)
    if reply_id != msg_id or not flags & wire.QR:
        return False
    try:
        return wire.question_of(data) == question
    except (WireError, IndexError, struct.error):
        return False


class _Connection:
    """One pooled TCP or TLS stream to a server, with the queries in flight on it."""

    def __init__(
        self,
        owner: Transport,
        server: UpstreamServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.owner = owner
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
            raise _ConnectionLost(f"upstream {self.server} closed the connection")
        if len(self.pending) >= 65536:
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
                raise _ConnectionLost(f"upstream {self.server} connection failed: {exc}") from None
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
        if self.owner._pool.get(self.server) is self:
            del self.owner._pool[self.server]
        pending = list(self.pending.values())
        self.pending.clear()
        for future, _question in pending:
            if not future.done():
                future.set_exception(_ConnectionLost(message))

    def _deliver(self, data: bytes) -> bool:
        """Hand a framed reply to its waiter; False when the stream carries garbage."""
        if len(data) < 12:
            return False
        msg_id, flags = ID_FLAGS.unpack_from(data)
        entry = self.pending.get(msg_id)
        if entry is None or not flags & wire.QR:
            return True  # a late answer to an abandoned query, or junk with an unknown id
        future, question = entry
        try:
            if wire.question_of(data) != question:
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
        self._idle = self._loop.call_later(self.owner.tcp_idle, self._idle_timeout)

    def _disarm_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _idle_timeout(self) -> None:
        self._idle = None
        if not self.pending:
            self.close("connection closed after being idle")


class Transport:
    """Sends queries to upstream servers over UDP, TCP or TLS; see the module docstring."""

    def __init__(
        self, ssl_context: ssl.SSLContext | None = None, *, tcp_idle: float = 10.0
    ) -> None:
        self.tcp_idle = tcp_idle
        self._ssl_context = ssl_context
        self._pool: dict[UpstreamServer, _Connection] = {}
        self._connecting: dict[UpstreamServer, asyncio.Task[_Connection]] = {}
        self._waiters: dict[UpstreamServer, int] = {}
        self._connections: set[_Connection] = set()
        self._families: dict[str, socket.AddressFamily] = {}
        self._https_clients: dict[UpstreamServer, httpx.AsyncClient] = {}
        # The HTTP library sets its ALPN list on the context it is given: a default context of
        # its own then, so DNS-over-TLS connections never offer h2.
        self._https_context = ssl_context
        self._closed = False

    async def exchange(
        self,
        server: UpstreamServer,
        qname_wire: bytes,
        qtype: int,
        qclass: int,
        deadline: float,
        *,
        dnssec_ok: bool = False,
        cd: bool = False,
    ) -> bytes:
        """The validated reply of `server` to one question, or UpstreamError naming the server.

        `dnssec_ok` and `cd` set the DO and CD bits of the query (the client's, passed on)."""
        loop = asyncio.get_running_loop()
        budget = deadline - loop.time()
        timed_out = f"upstream {server} timed out after {max(budget, 0.0):.1f} s"
        if self._closed:
            raise UpstreamError(f"upstream {server}: the transport is closed")
        if budget <= 0:
            raise UpstreamError(timed_out)
        msg_id = 0 if server.scheme == "https" else secrets.randbelow(65536)
        try:
            query = wire.make_query(qname_wire, qtype, qclass, msg_id, dnssec_ok=dnssec_ok, cd=cd)
            question = wire.question_of(query)
            async with asyncio.timeout_at(deadline):
                if server.scheme == "udp":
                    return await self._udp(server, query, msg_id, question)
                if server.scheme in ("tcp", "tls"):
                    return await self._stream(server, query, question)
                if server.scheme == "https":
                    return await self._https(server, query, question)
                raise UpstreamError(f"upstream {server}: unknown scheme {server.scheme!r}")
        except TimeoutError:
            raise UpstreamError(timed_out) from None
        except UpstreamError:
            raise
        except ConnectionRefusedError:
            raise UpstreamError(f"upstream {server} refused the query (port unreachable)") from None
        except ssl.SSLError as exc:
            raise UpstreamError(f"upstream {server}: TLS failed: {exc}") from None
        except (OSError, WireError, EOFError) as exc:  # IncompleteReadError is an EOFError
            raise UpstreamError(f"upstream {server}: {exc}") from None

    async def close(self) -> None:
        """Close every pooled connection and stop their reader tasks; safe to call twice."""
        self._closed = True
        clients = list(self._https_clients.values())
        self._https_clients.clear()
        await asyncio.gather(*(client.aclose() for client in clients), return_exceptions=True)
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

    # UDP

    async def _udp(
        self, server: UpstreamServer, query: bytes, msg_id: int, question: bytes
    ) -> bytes:
        loop = asyncio.get_running_loop()
        family, address = await self._address(server)
        sock = socket.socket(family, socket.SOCK_DGRAM)
        fd = sock.fileno()
        reading = writing = False
        try:
            sock.setblocking(False)
            sock.connect(address)
            try:
                sock.send(query)
            except (BlockingIOError, InterruptedError):
                writing = True
                await loop.sock_sendall(sock, query)
            future: asyncio.Future[bytes] = loop.create_future()
            loop.add_reader(fd, self._udp_readable, sock, future, msg_id, question)
            reading = True
            reply = await future
        finally:
            # Unregister before closing so the descriptor number, soon reused, is not watched.
            if reading:
                loop.remove_reader(fd)
            if writing:
                loop.remove_writer(fd)
            sock.close()
        if ID_FLAGS.unpack_from(reply)[1] & wire.TC:
            tcp = UpstreamServer("tcp", server.host, server.port)
            return await self._stream(tcp, query, question)
        return reply

    @staticmethod
    def _udp_readable(
        sock: socket.socket, future: asyncio.Future[bytes], msg_id: int, question: bytes
    ) -> None:
        """Read every waiting datagram; the first response to our question ends the wait."""
        while not future.done():
            try:
                data = sock.recv(MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ConnectionRefusedError from an ICMP port unreachable
                future.set_exception(exc)
                return
            if _matches(data, msg_id, question):
                future.set_result(data)

    async def _address(
        self, server: UpstreamServer
    ) -> tuple[socket.AddressFamily, tuple[Any, ...]]:
        family = self._families.get(server.host)
        if family is None:
            try:
                ip = ipaddress.ip_address(server.host)
            except ValueError:  # a host name: resolve it each time (its records may change)
                infos = await asyncio.get_running_loop().getaddrinfo(
                    server.host, server.port, type=socket.SOCK_DGRAM
                )
                if not infos:
                    raise UpstreamError(f"upstream {server}: host name has no address") from None
                family, _type, _proto, _name, address = infos[0]
                return family, tuple(address)
            family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
            self._families[server.host] = family
        return family, (server.host, server.port)

    # TCP and TLS

    async def _stream(self, server: UpstreamServer, query: bytes, question: bytes) -> bytes:
        retried = False
        while True:
            connection, reused = await self._connection(server)
            try:
                return await connection.ask(query, question)
            except _ConnectionLost:
                # A pooled connection the server closed while idle: one more try on a new one.
                if not reused or retried:
                    raise
                retried = True

    async def _connection(self, server: UpstreamServer) -> tuple[_Connection, bool]:
        """The pooled connection to `server` (reused True) or a new one (shared by waiters)."""
        connection = self._pool.get(server)
        if connection is not None and not connection.closed:
            return connection, True
        if self._closed:
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

    def _connected(self, server: UpstreamServer, task: asyncio.Task[_Connection]) -> None:
        if self._connecting.get(server) is task:
            del self._connecting[server]
        if not task.cancelled():
            task.exception()  # retrieved: a waiter may have given up before it finished

    async def _connect(self, server: UpstreamServer) -> _Connection:
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
        connection = _Connection(self, server, reader, writer)
        self._connections.add(connection)
        connection.reader_task.add_done_callback(lambda _t: self._connections.discard(connection))
        if self._closed:
            connection.close()
            raise UpstreamError(f"upstream {server}: the transport is closed")
        self._pool[server] = connection
        return connection

    # HTTPS

    def _https_client(self, server: UpstreamServer) -> httpx.AsyncClient:
        client = self._https_clients.get(server)
        if client is None:
            import httpx  # noqa: PLC0415 - only configurations with a DoH upstream pay for it

            if self._https_context is None:
                self._https_context = ssl.create_default_context()
            client = httpx.AsyncClient(
                verify=self._https_context,
                http2=True,
                timeout=None,  # the exchange's deadline bounds every step
                limits=httpx.Limits(
                    max_connections=HTTP_CONNECTIONS,
                    max_keepalive_connections=HTTP_CONNECTIONS,
                    keepalive_expiry=self.tcp_idle,
                ),
                trust_env=False,
                follow_redirects=False,
                headers={"user-agent": "filterdns", "accept-encoding": "identity"},
            )
            self._https_clients[server] = client
        return client

    async def _https(self, server: UpstreamServer, query: bytes, question: bytes) -> bytes:
        import httpx  # noqa: PLC0415 - see _https_client

        host = f"[{server.host}]" if ":" in server.host else server.host
        url = f"https://{host}:{server.port}{server.path}"
        headers = {"accept": DNS_MESSAGE, "content-type": DNS_MESSAGE}
        extensions: dict[str, Any] = {}
        if server.sni:
            default_port = server.port == 443
            headers["host"] = server.sni if default_port else f"{server.sni}:{server.port}"
            extensions["sni_hostname"] = server.sni
        body = bytearray()
        try:
            async with self._https_client(server).stream(
                "POST", url, content=query, headers=headers, extensions=extensions
            ) as response:
                if response.status_code != 200:
                    raise UpstreamError(f"upstream {server}: HTTP {response.status_code}")
                kind = response.headers.get("content-type", "")
                if kind.partition(";")[0].strip().lower() != DNS_MESSAGE:
                    raise UpstreamError(
                        f"upstream {server}: answered with content type {kind!r}, not {DNS_MESSAGE}"
                    )
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_MESSAGE:
                        raise UpstreamError(f"upstream {server}: answer longer than 65535 bytes")
        except httpx.TimeoutException:
            raise TimeoutError from None
        except httpx.HTTPError as exc:
            tls = _ssl_error(exc)
            if tls is not None:
                raise UpstreamError(f"upstream {server}: TLS handshake failed: {tls}") from None
            what = "cannot connect" if isinstance(exc, httpx.ConnectError) else "HTTPS failed"
            raise UpstreamError(f"upstream {server}: {what}: {exc or type(exc).__name__}") from None
        reply = bytes(body)
        if not _matches(reply, 0, question):
            raise UpstreamError(f"upstream {server} answered garbage")
        return reply


def _ssl_error(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind an HTTP library error, if that is what it was."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
