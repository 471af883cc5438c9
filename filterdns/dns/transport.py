"""Exchanges with upstream resolvers over UDP, TCP, DNS over TLS and DNS over HTTPS.

Only this module and the two it hands streams to (`streams` for TCP and TLS, `doh` for HTTPS)
touch upstream sockets.

`Transport.exchange(server, qname_wire, qtype, qclass, deadline)` sends one query and returns the
validated reply (complete message bytes, OPT record included) or raises UpstreamError naming the
server. `deadline` is an absolute `loop.time()` covering every step: connecting, the TLS
handshake, waiting for the answer, and the retry over TCP of a truncated UDP answer.
`Transport.start(...)` is the same begun now, as a future: over UDP to a server given by address
(the usual case) no task, no coroutine and no timer are made for it.

UDP (`udpsockets`): a few connected sockets per server, each shared by up to 64 queries in flight
and replaced after them (a new random source port); the system drops datagrams from any other
address; a random message id per query; a datagram is accepted only when it is a response with
our id to our question (anything else is dropped and the wait goes on). An ICMP port unreachable
fails at once. A truncated answer (TC) is asked again over TCP.

TCP and TLS (`streams`, RFC 7766, RFC 7858): one pooled connection per server, reused and
pipelined. HTTPS (`doh`, RFC 8484): one HTTP client per server, HTTP/2 where offered.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import socket
import ssl
import struct
from collections.abc import Callable

from filterdns.config import UpstreamServer
from filterdns.dns import outgoing
from filterdns.dns.doh import DohClients
from filterdns.dns.streams import StreamPool
from filterdns.dns.udpsockets import Destination, Notify, UdpPool, failure
from filterdns.errors import UpstreamError, WireError

_TYPE_CLASS = struct.Struct("!HH")


class Transport:
    """Sends queries to upstream servers over UDP, TCP, TLS or HTTPS; see the module docstring."""

    def __init__(
        self, ssl_context: ssl.SSLContext | None = None, *, tcp_idle: float = 10.0
    ) -> None:
        self._streams = StreamPool(ssl_context, tcp_idle)
        self._https = DohClients(ssl_context, tcp_idle)
        self._families: dict[str, socket.AddressFamily] = {}
        self._udp_pool = UdpPool(self._truncated)
        self._closed = False

    @property
    def udp_sockets(self) -> int:
        """UDP sockets open to the upstreams now (each server's current one, and retired ones
        still awaiting answers)."""
        return self._udp_pool.sockets

    def start(
        self,
        server: UpstreamServer,
        qname_wire: bytes,
        qtype: int,
        qclass: int,
        deadline: float,
        *,
        dnssec_ok: bool = False,
        cd: bool = False,
        notify: Notify | None = None,
    ) -> asyncio.Future[bytes]:
        """A future of what `exchange` returns (or raises): over UDP to an address, the query
        is sent now and the future is the socket's pending entry, with no task at all.

        `notify(future)` is called once the future is settled: over UDP by the socket's reader
        or the deadline's sweep at once, not a turn of the loop later as a done callback would
        be; it is not called for a future cancelled by the caller."""
        loop = asyncio.get_running_loop()
        family = self._family(server) if server.scheme == "udp" and not self._closed else None
        if family is None:  # TCP, TLS, HTTPS, a host name, a closed transport: a task
            task = loop.create_task(
                self.exchange(
                    server, qname_wire, qtype, qclass, deadline, dnssec_ok=dnssec_ok, cd=cd
                )
            )
            if notify is not None:
                task.add_done_callback(lambda done: None if done.cancelled() else notify(done))
            return task
        future: asyncio.Future[bytes] = loop.create_future()
        now = loop.time()
        if deadline <= now:
            future.set_exception(UpstreamError(f"upstream {server} timed out after 0.0 s"))
            if notify is not None:
                loop.call_soon(notify, future)
            return future
        self._udp_send(
            loop,
            server,
            (family, (server.host, server.port)),
            future,
            budget=deadline - now,
            build=lambda msg_id: outgoing.make_query(
                qname_wire, qtype, qclass, msg_id, dnssec_ok=dnssec_ok, cd=cd
            ),
            question=qname_wire.lower() + _TYPE_CLASS.pack(qtype, qclass),
            notify=notify,
        )
        return future

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
            query = outgoing.make_query(
                qname_wire, qtype, qclass, msg_id, dnssec_ok=dnssec_ok, cd=cd
            )
            question = outgoing.question_of(query)
            async with asyncio.timeout_at(deadline):
                if server.scheme == "udp":
                    return await self._udp(
                        server, qname_wire, qtype, qclass, budget=budget, dnssec_ok=dnssec_ok, cd=cd
                    )
                if server.scheme in ("tcp", "tls"):
                    return await self._streams.ask(server, query, question)
                if server.scheme == "https":
                    return await self._https.ask(server, query, question)
                raise UpstreamError(f"upstream {server}: unknown scheme {server.scheme!r}")
        except TimeoutError:
            raise UpstreamError(timed_out) from None
        except UpstreamError:
            raise
        except (OSError, WireError, EOFError) as exc:  # IncompleteReadError is an EOFError
            raise failure(server, exc) from None

    async def close(self) -> None:
        """Close every pooled connection and HTTP client, and stop their tasks; safe to call
        twice."""
        self._closed = True
        self._streams.closed = True  # no new connection while the HTTP clients close
        self._udp_pool.close()
        await self._https.close()
        await self._streams.close()

    # UDP

    async def _udp(
        self,
        server: UpstreamServer,
        qname_wire: bytes,
        qtype: int,
        qclass: int,
        *,
        budget: float,
        dnssec_ok: bool,
        cd: bool,
    ) -> bytes:
        loop = asyncio.get_running_loop()
        destination = await self._address(server)
        future: asyncio.Future[bytes] = loop.create_future()
        self._udp_send(
            loop,
            server,
            destination,
            future,
            budget=budget,
            build=lambda msg_id: outgoing.make_query(
                qname_wire, qtype, qclass, msg_id, dnssec_ok=dnssec_ok, cd=cd
            ),
            question=qname_wire.lower() + _TYPE_CLASS.pack(qtype, qclass),
        )
        return await future

    def _udp_send(
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
        """Send one query from the destination's current socket; `future` gets the answer."""
        try:
            self._udp_pool.send(
                loop,
                server,
                destination,
                future,
                budget=budget,
                build=build,
                question=question,
                notify=notify,
            )
        except (BlockingIOError, InterruptedError):
            future.set_exception(UpstreamError(f"upstream {server}: the send buffer is full"))
        except OSError as exc:
            future.set_exception(failure(server, exc))
        else:
            return
        if notify is not None:  # a turn later: the caller has not noted the attempt yet
            loop.call_soon(notify, future)

    def _truncated(
        self,
        server: UpstreamServer,
        query: bytes,
        question: bytes,
        future: asyncio.Future[bytes],
        deadline: float,
    ) -> None:
        """A truncated UDP answer: the same query over TCP settles `future` (a task, rare)."""
        retry = asyncio.get_running_loop().create_task(
            self._over_tcp(server, query, question, deadline)
        )
        retry.add_done_callback(lambda done: _settle(future, done))
        future.add_done_callback(lambda given: retry.cancel() if given.cancelled() else None)

    async def _over_tcp(
        self, server: UpstreamServer, query: bytes, question: bytes, deadline: float
    ) -> bytes:
        tcp = UpstreamServer("tcp", server.host, server.port)
        try:
            async with asyncio.timeout_at(deadline):
                return await self._streams.ask(tcp, query, question)
        except TimeoutError:
            raise UpstreamError(
                f"upstream {server} timed out (truncated answer, over TCP)"
            ) from None
        except UpstreamError:
            raise
        except (OSError, WireError, EOFError) as exc:
            raise failure(server, exc) from None

    def _family(self, server: UpstreamServer) -> socket.AddressFamily | None:
        """The address family of a server given by address (None for a host name)."""
        family = self._families.get(server.host)
        if family is None:
            try:
                ip = ipaddress.ip_address(server.host)
            except ValueError:
                return None
            family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
            self._families[server.host] = family
        return family

    async def _address(self, server: UpstreamServer) -> Destination:
        family = self._family(server)
        if family is not None:
            return family, (server.host, server.port)
        # A host name: resolved each time (its records may change).
        infos = await asyncio.get_running_loop().getaddrinfo(
            server.host, server.port, type=socket.SOCK_DGRAM
        )
        if not infos:
            raise UpstreamError(f"upstream {server}: host name has no address") from None
        family, _type, _proto, _name, address = infos[0]
        return family, tuple(address)


def _settle(future: asyncio.Future[bytes], done: asyncio.Task[bytes]) -> None:
    """Hand what the task `done` ended with to `future`, unless it was given up on."""
    if future.done():
        return
    if done.cancelled():
        future.cancel()
    elif (exc := done.exception()) is not None:
        future.set_exception(exc)
    else:
        future.set_result(done.result())
