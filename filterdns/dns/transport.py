"""Exchanges with upstream resolvers over UDP, TCP, DNS over TLS and DNS over HTTPS.

Only this module and the two it hands streams to (`streams` for TCP and TLS, `doh` for HTTPS)
touch upstream sockets.

`Transport.exchange(server, qname_wire, qtype, qclass, deadline)` sends one query and returns the
validated reply (complete message bytes, OPT record included) or raises UpstreamError naming the
server. `deadline` is an absolute `loop.time()` covering every step: connecting, the TLS
handshake, waiting for the answer, and the retry over TCP of a truncated UDP answer.

UDP (here): a new socket per exchange, connected to the server so the system picks a random
source port and drops datagrams from any other address; a random message id; a datagram is
accepted only when it is a response with our id to our question (anything else is dropped and
the wait goes on). An ICMP port unreachable fails at once. A truncated answer (TC) is asked
again over TCP.

TCP and TLS (`streams`, RFC 7766, RFC 7858): one pooled connection per server, reused and
pipelined. HTTPS (`doh`, RFC 8484): one HTTP client per server, HTTP/2 where offered.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import socket
import ssl
from typing import Any

from filterdns.config import UpstreamServer
from filterdns.dns import wire
from filterdns.dns.doh import DohClients
from filterdns.dns.streams import StreamPool
from filterdns.errors import UpstreamError, WireError

MAX_MESSAGE = 65535


class Transport:
    """Sends queries to upstream servers over UDP, TCP, TLS or HTTPS; see the module docstring."""

    def __init__(
        self, ssl_context: ssl.SSLContext | None = None, *, tcp_idle: float = 10.0
    ) -> None:
        self._streams = StreamPool(ssl_context, tcp_idle)
        self._https = DohClients(ssl_context, tcp_idle)
        self._families: dict[str, socket.AddressFamily] = {}
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
                    return await self._streams.ask(server, query, question)
                if server.scheme == "https":
                    return await self._https.ask(server, query, question)
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
        """Close every pooled connection and HTTP client, and stop their tasks; safe to call
        twice."""
        self._closed = True
        self._streams.closed = True  # no new connection while the HTTP clients close
        await self._https.close()
        await self._streams.close()

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
        if wire.ID_FLAGS.unpack_from(reply)[1] & wire.TC:
            tcp = UpstreamServer("tcp", server.host, server.port)
            return await self._streams.ask(tcp, query, question)
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
            if wire.is_reply_to(data, msg_id, question):
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
