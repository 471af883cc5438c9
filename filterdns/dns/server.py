"""UDP and TCP listeners: the only code that touches client sockets (with `dns.mmsg`, its UDP
calls).

UDP sockets are read with `loop.add_reader` rather than a datagram protocol: on stock asyncio
that is about four times cheaper per packet (measured in docs/architecture.md). On Linux one
`recvmmsg` reads what is waiting and one `sendmmsg` sends the answers ready by the end of that
batch (`dns.mmsg`); elsewhere, `recvfrom` and `sendto` for each datagram. TCP uses
asyncio streams with RFC 1035 2-byte framing, several queries in flight per connection (RFC 7766
pipelining, answers in completion order), an idle timeout and caps on open connections, in all
and per client address (`tcpslots`).

After the rate limit, a packet asked before by the same profile is looked up in the chain's
answer memo (`resolvers.answermemo`): while it still holds, the kept bytes go out with this
query's id and the chain's effects are replayed, without parsing or going down the chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable, Iterable

from filterdns.config import ListenAddress, RateLimit, ServerConfig
from filterdns.dns import mmsg, wire
from filterdns.dns.addresses import Peer
from filterdns.dns.listeners import bind_pair
from filterdns.dns.model import Request, Response, refused, servfail
from filterdns.dns.ratelimit import RateLimiter
from filterdns.dns.tcpslots import TcpSlots
from filterdns.errors import ServerError, WireError
from filterdns.resolvers import answermemo
from filterdns.resolvers.answermemo import AnswerMemo
from filterdns.resolvers.base import Resolver

log = logging.getLogger(__name__)

_READ_BATCH = 64  # datagrams read per wake-up before yielding to the loop
_LONGER = mmsg.SLOT + 1  # a datagram filling this is longer than a slot: not read as if whole
# Whether UDP listeners read and answer with recvmmsg/sendmmsg where the system has them (tests
# turn it off to keep the plain recvfrom/sendto path tested).
UDP_BATCH = mmsg.available()
_MAX_PIPELINE = 32  # queries in flight on one TCP connection before we stop reading it
_FRAME = struct.Struct("!H")

_Send = Callable[[bytes], None]


class _TcpClient:
    """One client TCP connection and the queries in flight on it."""

    __slots__ = ("pending", "writer")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.pending: set[asyncio.Task[None]] = set()


def _busy(client: _TcpClient) -> bool:
    return bool(client.pending)


class DnsServer:
    """Serves the resolver chain over UDP and TCP on every configured address."""

    def __init__(self, chain: Resolver, config: ServerConfig) -> None:
        self._memo: AnswerMemo | None = None
        self.chain = chain
        self.config = config
        self.limiter: RateLimiter | None = None
        self.limit_rate(config.rate_limit)
        self.bound: list[ListenAddress] = []
        self._udp: list[socket.socket] = []
        self._tcp: list[asyncio.Server] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self.tcp: TcpSlots[_TcpClient] = TcpSlots(
            config.max_tcp_connections, config.max_tcp_connections_per_client
        )
        self._inflight: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.stats = {
            "queries": 0,
            "formerr": 0,
            "dropped": 0,
            "errors": 0,
            "tcp_refused": 0,
            "rate_limited": 0,
        }

    @property
    def chain(self) -> Resolver:
        """The head of the chain every query goes down."""
        return self._chain

    @chain.setter
    def chain(self, head: Resolver) -> None:
        """Serve a new chain (a reload swaps it in): a new answer memo with it, if it lends one."""
        self._chain = head
        hooks = answermemo.hooks_of(head)
        self._memo = None if hooks is None else AnswerMemo(hooks)

    @property
    def memo(self) -> AnswerMemo | None:
        """The answer memo of the chain served (None for a chain that lends none)."""
        return self._memo

    def limit_rate(self, limit: RateLimit | None) -> None:
        """Apply `server.rate_limit` (None: no limit); every address starts with a full bucket."""
        self.limiter = RateLimiter(limit.per_client_qps, limit.burst) if limit else None

    async def start(self, *, skip_unavailable: bool = False) -> list[ListenAddress]:
        """Bind every listen address (UDP and TCP on the same port); return what was bound.

        With `skip_unavailable` (the embedded defaults), an address this machine does not have,
        such as ::1 with IPv6 disabled, is skipped with a warning as long as one other binds.
        """
        try:
            for address in self.config.listen:
                try:
                    udp, tcp = bind_pair(address)
                except ServerError as exc:
                    if not (skip_unavailable and exc.unavailable):
                        raise
                    log.warning("%s; skipped", exc)
                    continue
                await self._serve(udp, tcp)
                host, port = udp.getsockname()[:2]
                self.bound.append(ListenAddress(host, port))
            if not self.bound:
                raise ServerError("no listen address could be bound")
        except BaseException:
            await self.stop(0)
            raise
        return self.bound

    async def adopt(self, pairs: Iterable[tuple[socket.socket, socket.socket]]) -> None:
        """Serve sockets bound elsewhere (`bind_pair`, by the process that starts workers)."""
        for udp, tcp in pairs:
            udp.setblocking(False)
            tcp.setblocking(False)
            await self._serve(udp, tcp)
            host, port = udp.getsockname()[:2]
            self.bound.append(ListenAddress(host, port))

    async def _serve(self, udp: socket.socket, tcp: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        self._udp.append(udp)
        batch = mmsg.batch_for(udp, _READ_BATCH) if UDP_BATCH else None
        if batch is None:
            loop.add_reader(udp.fileno(), self._on_readable, udp, loop)
        else:
            loop.add_reader(udp.fileno(), batch.answer, udp, self._on_datagram, self.stats, loop)
        server = await asyncio.start_server(self._serve_tcp, sock=tcp)
        self._tcp.append(server)

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting, let in-flight queries finish (at most `grace` seconds), close all."""
        self._stopping = True
        grace = self.config.shutdown_grace if grace is None else grace
        loop = asyncio.get_running_loop()
        for sock in self._udp:
            loop.remove_reader(sock.fileno())
        for server in self._tcp:
            server.close()
        if self._inflight and grace > 0:
            _done, pending = await asyncio.wait(set(self._inflight), timeout=grace)
            if pending:
                log.warning(
                    "%d queries still unanswered after %.1f s; dropping", len(pending), grace
                )
        for task in list(self._inflight):
            task.cancel()
        for writer in list(self._writers):
            writer.close()
        for sock in self._udp:
            sock.close()
        self._udp.clear()
        for server in self._tcp:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), timeout=1.0)
        self._tcp.clear()

    # -- UDP -------------------------------------------------------------------------------

    def _on_readable(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        # The loop is handed in, not looked up: asyncio.get_running_loop() costs a getpid()
        # system call (it checks for a fork) on every call.
        for _ in range(_READ_BATCH):
            try:
                data, addr = sock.recvfrom(_LONGER)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP port unreachable surfacing as ECONNREFUSED
                log.debug("UDP receive error: %s", exc)
                return
            if len(data) == _LONGER:  # longer than any query: dropped, as the batched path does
                self.stats["queries"] += 1
                self.stats["dropped"] += 1
                log.debug("dropped packet from %s: longer than %d bytes", addr[0], mmsg.SLOT)
                continue
            out = self._on_datagram(sock, data, addr, loop)
            if out is not None:
                mmsg.send_one(sock, out, addr)

    def _on_datagram(
        self,
        sock: socket.socket,
        data: bytes,
        addr: Peer,
        loop: asyncio.AbstractEventLoop,
    ) -> bytes | None:
        """The answer to send back at once; None when the datagram is dropped or a task
        answers it later (and sends that answer itself)."""
        if self.limiter is not None and not self.limiter.allow(addr[0]):
            self.stats["rate_limited"] += 1  # dropped: answering a flood would feed it
            return None
        memo = self._memo
        if memo is not None:
            kept = memo.find(data, addr[0], "udp")
            if kept is not None:  # asked within the second: the same answer, replayed
                self.stats["queries"] += 1
                return memo.serve(kept, data, addr, "udp", loop.time())
        request = self._request(data, addr, "udp", loop.time())
        if request is None or isinstance(request, bytes):  # dropped, or FORMERR to send
            return request
        response = self._answer_now(request)
        if response is None:
            self._spawn(request, lambda out: mmsg.send_one(sock, out, addr), loop)
        elif not response.silent:  # the usual case, answered here: no closure, no task
            out = _pack(response, request)
            if memo is not None:
                memo.admit(request, response, out)
            return out
        return None

    # -- TCP -------------------------------------------------------------------------------

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        client = _TcpClient(writer)
        admitted, room = (False, None) if self._stopping else self.tcp.admit(peer[0], client, _busy)
        if not admitted:
            self.stats["tcp_refused"] += 1
            writer.close()
            return
        if room is not None:  # the hoarder's connection ends; its read loop sees the close
            room.writer.close()
        self._writers.add(writer)
        pending = client.pending
        try:
            await self._read_frames(reader, writer, peer, pending)
        finally:
            if pending:
                await asyncio.wait(pending, timeout=self.config.shutdown_grace)
            self._writers.discard(writer)
            writer.close()
            self.tcp.release(peer[0], client)  # once its socket is closed: it held a descriptor
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read_frames(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: Peer,
        pending: set[asyncio.Task[None]],
    ) -> None:
        idle = self.config.tcp_idle_timeout
        loop = asyncio.get_running_loop()

        def send(out: bytes) -> None:
            if not writer.is_closing():
                writer.write(_FRAME.pack(len(out)) + out)

        while not self._stopping:
            try:
                (length,) = _FRAME.unpack(await asyncio.wait_for(reader.readexactly(2), idle))
                data = await asyncio.wait_for(reader.readexactly(length), idle)
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, OSError):
                return
            request = self._on_frame(data, peer, send, loop.time())
            if request is None:
                continue
            task = self._spawn(request, send, loop)
            pending.add(task)
            task.add_done_callback(pending.discard)
            if len(pending) >= _MAX_PIPELINE:
                await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)

    def _on_frame(self, data: bytes, peer: Peer, send: _Send, now: float) -> Request | None:
        """Answer one TCP query at once when it can be; the Request a task must answer, else
        None."""
        memo = self._memo
        kept = None if memo is None else memo.find(data, peer[0], "tcp")
        request: Request | bytes | None = None
        if kept is None:
            request = self._request(data, peer, "tcp", now)
            if request is None:
                return None
            if isinstance(request, bytes):  # FORMERR
                send(request)
                return None
        if self.limiter is not None and not self.limiter.allow(peer[0]):
            self.stats["rate_limited"] += 1
            refused_one = request or self._request(data, peer, "tcp", now)  # a kept one parses
            if isinstance(refused_one, Request):
                send(_pack(refused(refused_one.query, "over server.rate_limit"), refused_one))
            return None
        if kept is not None and memo is not None:  # asked within the second: replayed
            self.stats["queries"] += 1
            send(memo.serve(kept, data, peer, "tcp", now))
            return None
        assert isinstance(request, Request)
        response = self._answer_now(request)
        if response is None:
            return request
        if not response.silent:
            out = _pack(response, request)
            if memo is not None:
                memo.admit(request, response, out)
            send(out)
        return None

    # -- both ------------------------------------------------------------------------------

    def _request(
        self, data: bytes, addr: Peer, protocol: str, now: float
    ) -> Request | bytes | None:
        """The query as a Request received at `now` (loop time); for a malformed packet the
        FORMERR reply to send (bytes), or None when it is dropped (no readable id)."""
        self.stats["queries"] += 1
        try:
            query = wire.parse_query(data)
        except WireError as exc:
            if exc.msg_id is None:
                self.stats["dropped"] += 1
                log.debug("dropped packet from %s: %s", addr[0], exc)
            else:
                self.stats["formerr"] += 1
                flags = _FRAME.unpack_from(data, 2)[0]
                return wire.header_only(exc.msg_id, flags, wire.FORMERR)
            return None
        return Request(query, addr[0], addr[1], protocol, now)

    def _answer_now(self, request: Request) -> Response | None:
        """The answer when the chain has it ready (see Resolver.resolve_now), else None; the
        answer memo listens when the question was asked before."""
        memo = self._memo
        listening = memo is not None and memo.listen()
        try:
            return self._chain.resolve_now(request)
        except Exception:
            return self._failed(request)
        finally:
            if listening and memo is not None:
                memo.deaf()

    def _spawn(
        self, request: Request, send: _Send, loop: asyncio.AbstractEventLoop
    ) -> asyncio.Task[None]:
        """Answer in a task: the chain must wait (an upstream), so the loop goes on meanwhile."""
        task = loop.create_task(self._answer(request, send))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return task

    async def _answer(self, request: Request, send: _Send) -> None:
        try:
            response = await self.chain.resolve(request)
        except Exception:
            response = self._failed(request)
        if not response.silent:
            send(_pack(response, request))

    def _failed(self, request: Request) -> Response:
        """SERVFAIL for a query the chain raised on (a bug: logged with its traceback)."""
        self.stats["errors"] += 1
        log.exception("resolving %s failed", request.query.qname)
        return servfail(request.query, "internal error")


def _pack(response: Response, request: Request) -> bytes:
    return wire.finish(
        response.answer,
        request.query,
        limit=request.limit,
        ttl_cap=response.ttl_cap,
        ext_rcode=response.ext_rcode,
        options=response.edns_options,
    )
