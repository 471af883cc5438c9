"""A fake upstream resolver on loopback: UDP and TCP on one port, optionally DNS-over-TLS.

It answers from a small table of records and can be told, at any moment, to misbehave in the
ways real servers and networks do: answer late, truncate over UDP, send junk, use the wrong id,
fail with an rcode, stay silent, drop a TCP connection in the middle of an answer, or rewrite
each reply (`mangle`, e.g. an OPT record moved into the answer section). It counts
what it received so tests can assert on what reached the upstream.

    async with FakeUpstream({("example.com", "A"): ["93.184.216.34"]}) as fake:
        ...  # forward to fake.address ("127.0.0.1:PORT")
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import random
import ssl
import struct
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

MIN_UDP = 512
CLOSE_GRACE = 2.0


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, fake: FakeUpstream) -> None:
        self.fake = fake

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.fake._udp_received(data, addr)

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP from a client gone away
        pass


class FakeUpstream:
    """An authoritative-ish DNS server for tests; see the module docstring."""

    def __init__(
        self,
        records: dict[tuple[str, str], list[str]] | None = None,
        *,
        ttl: int = 300,
        tls: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
        negative_ttl: int = 60,
    ) -> None:
        self.records = {
            (name.rstrip(".").lower(), rtype.upper()): list(values)
            for (name, rtype), values in (records or {}).items()
        }
        self.ttl = ttl
        self.tls = tls
        self.host = host
        self.negative_ttl = negative_ttl
        self.port = 0
        self.tls_port: int | None = None
        # knobs
        self.delay = 0.0
        self.truncate_udp = False
        self.garbage = False
        self.wrong_id = False
        self.rcode: int | None = None
        self.silent = False
        self.close_tcp_midframe = False
        self.tcp_drop_queries = 0  # the next N queries over TCP/TLS: close the connection instead
        self.udp_decoys = False  # over UDP, send wrong answers from the right address first
        self.mangle: Callable[[bytes], bytes] | None = None  # rewrites each reply as sent
        # counters
        self.calls = 0
        self.udp_calls = 0
        self.tcp_calls = 0
        self.tcp_connections = 0
        self.open_tcp_connections = 0
        self.queries: list[tuple[str, str]] = []
        self.udp_peers: list[tuple[str, int]] = []
        self.query_ids: list[int] = []
        self.query_flags: list[tuple[int, int]] = []  # (header flags, EDNS flags) of each query
        self._udp: asyncio.DatagramTransport | None = None
        self._servers: list[asyncio.Server] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # one per query being answered
        self._connections: set[asyncio.Task[Any]] = set()  # one per TCP/TLS connection
        self._changed = asyncio.Event()

    @property
    def address(self) -> str:
        """Where to send queries, as the configuration spells it: "127.0.0.1:PORT"."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    async def __aenter__(self) -> FakeUpstream:
        loop = asyncio.get_running_loop()
        for attempt in range(50):
            udp, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(self), local_addr=(self.host, 0)
            )
            port = udp.get_extra_info("sockname")[1]
            try:
                server = await asyncio.start_server(self._serve_stream, self.host, port)
            except OSError as exc:
                udp.close()
                if exc.errno != errno.EADDRINUSE or attempt == 49:
                    raise
                continue
            self._udp, self.port = udp, port
            self._servers.append(server)
            break
        if self.tls is not None:
            server = await asyncio.start_server(self._serve_stream, self.host, 0, ssl=self.tls)
            self._servers.append(server)
            self.tls_port = server.sockets[0].getsockname()[1]
        return self

    async def _close_streams(self) -> None:
        """Closing a stream ends its connection task (EOF); cut the ones that linger."""
        for writer in list(self._writers):
            writer.close()
        connections = list(self._connections)
        if connections:
            _done, late = await asyncio.wait(connections, timeout=CLOSE_GRACE)
            for task in late:
                task.cancel()
            await asyncio.gather(*connections, return_exceptions=True)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._udp is not None:
            self._udp.close()
        for server in self._servers:
            server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._close_streams()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

    # waiting for the fake to see something, without polling

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once `predicate()` holds; re-checked whenever a counter changes."""
        while not predicate():
            changed = self._changed
            await changed.wait()

    async def wait_for_calls(self, n: int) -> None:
        """Return once at least `n` queries have been received."""
        await self.wait_until(lambda: self.calls >= n)

    async def wait_for_open_tcp_connections(self, n: int) -> None:
        """Return once exactly `n` TCP/TLS connections are open."""
        await self.wait_until(lambda: self.open_tcp_connections == n)

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # receiving

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _count(self, data: bytes, tcp: bool) -> dns.message.Message | None:
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return None
        self.calls += 1
        if tcp:
            self.tcp_calls += 1
        else:
            self.udp_calls += 1
        self.query_ids.append(query.id)
        self.query_flags.append((query.flags, query.ednsflags))
        if query.question:
            q = query.question[0]
            name = q.name.to_text(omit_final_dot=True).lower()
            self.queries.append((name, dns.rdatatype.to_text(q.rdtype)))
        self._notify()
        return query

    def _udp_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = self._count(data, tcp=False)
        if query is None:
            return
        self.udp_peers.append(addr)
        self._spawn(self._answer_udp(query, addr))

    async def _answer_udp(self, query: dns.message.Message, addr: tuple[str, int]) -> None:
        reply = await self._reply(query)
        if reply is None or self._udp is None or self._udp.is_closing():
            return
        limit = max(MIN_UDP, query.payload) if query.edns >= 0 else MIN_UDP
        if self.truncate_udp or len(reply) > limit:
            reply = _truncated(reply)
        if self.udp_decoys:
            for decoy in _decoys(query, reply):
                self._udp.sendto(decoy, addr)
        self._udp.sendto(reply, addr)

    async def _serve_stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._opened(writer)
        try:
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                data = await reader.readexactly(length)
                query = self._count(data, tcp=True)
                if query is None:
                    continue
                if self.tcp_drop_queries > 0:
                    self.tcp_drop_queries -= 1
                    break
                self._spawn(self._answer_stream(query, writer))
        except (asyncio.IncompleteReadError, OSError):
            pass
        except asyncio.CancelledError:
            # Only __aexit__ cancels this task; end normally so asyncio's stream callback,
            # which asks the task for its exception, stays quiet.
            writer.transport.abort()
        finally:
            await self._closed(writer)

    def _opened(self, writer: asyncio.StreamWriter) -> None:
        """Count a new TCP/TLS connection and keep its task for __aexit__."""
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)
        self._writers.add(writer)
        self.tcp_connections += 1
        self.open_tcp_connections += 1
        self._notify()

    async def _closed(self, writer: asyncio.StreamWriter) -> None:
        """Close a connection (cut it when the peer lingers) and count it gone."""
        self._writers.discard(writer)
        writer.close()
        self.open_tcp_connections -= 1
        self._notify()
        try:
            async with asyncio.timeout(CLOSE_GRACE):
                await writer.wait_closed()
        except (OSError, asyncio.CancelledError):  # TimeoutError is an OSError
            writer.transport.abort()

    async def _answer_stream(
        self, query: dns.message.Message, writer: asyncio.StreamWriter
    ) -> None:
        reply = await self._reply(query)
        if reply is None or writer.is_closing():
            return
        frame = struct.pack("!H", len(reply)) + reply
        if self.close_tcp_midframe:
            writer.write(frame[: 2 + len(reply) // 2])
            writer.close()
            return
        writer.write(frame)
        with contextlib.suppress(OSError):
            await writer.drain()

    # answering

    async def _reply(self, query: dns.message.Message) -> bytes | None:
        """The reply bytes for `query` as the knobs say, or None to stay silent."""
        if self.silent:
            return None
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.silent:
            return None
        if self.garbage:
            return os.urandom(random.randint(1, 64))
        response = dns.message.make_response(query, our_payload=1232)
        response.flags |= dns.flags.RA
        if self.rcode is not None:
            response.set_rcode(self.rcode)
        elif query.question:
            self._fill(response, query)
        wire = response.to_wire(max_size=65535)
        if self.mangle is not None:
            wire = self.mangle(wire)
        if self.wrong_id:
            wire = struct.pack("!H", (query.id + 1) % 65536) + wire[2:]
        return wire

    def _fill(self, response: dns.message.Message, query: dns.message.Message) -> None:
        question = query.question[0]
        name = question.name
        rtype = dns.rdatatype.to_text(question.rdtype)
        for _ in range(8):  # follow CNAMEs inside the table
            key = name.to_text(omit_final_dot=True).lower()
            values = self.records.get((key, rtype))
            if values:
                response.answer.append(self._rrset(name, rtype, values))
                return
            target = self.records.get((key, "CNAME"))
            if not target or rtype == "CNAME":
                dname = self._dname(name)
                if dname is None:
                    break
                # RFC 6672: the DNAME, then a CNAME synthesised from it, then on to the target.
                owner, substitute = dname
                response.answer.append(self._rrset(owner, "DNAME", [substitute.to_text()]))
                target = [name.relativize(owner).derelativize(substitute).to_text()]
            response.answer.append(self._rrset(name, "CNAME", target[:1]))
            name = dns.name.from_text(target[0])
        if response.answer:
            return
        key = name.to_text(omit_final_dot=True).lower()
        exists = any(stored == key for stored, _type in self.records)
        if not exists:
            response.set_rcode(dns.rcode.NXDOMAIN)
        zone = name.parent() if len(name.labels) > 2 else dns.name.root
        soa = f"ns.fake.test. hostmaster.fake.test. 1 3600 600 86400 {self.negative_ttl}"
        response.authority.append(
            dns.rrset.from_text_list(zone, self.negative_ttl, "IN", "SOA", [soa])
        )

    def _dname(self, name: dns.name.Name) -> tuple[dns.name.Name, dns.name.Name] | None:
        """(owner, target) of a DNAME record at a proper parent of `name`, if the table has one."""
        parent = name
        while len(parent.labels) > 2:
            parent = parent.parent()
            target = self.records.get((parent.to_text(omit_final_dot=True).lower(), "DNAME"))
            if target:
                return parent, dns.name.from_text(target[0])
        return None

    def _rrset(self, name: dns.name.Name, rtype: str, values: list[str]) -> dns.rrset.RRset:
        return dns.rrset.from_text_list(
            name, self.ttl, "IN", rtype, values, origin=dns.name.root, relativize=False
        )


def _truncated(reply: bytes) -> bytes:
    """Header and question only, with TC set (what a server sends when the answer won't fit)."""
    msg_id, flags, qdcount = struct.unpack_from("!HHH", reply)
    pos = 12
    for _ in range(qdcount):
        while reply[pos]:
            pos += 1 + reply[pos]
        pos += 5
    return struct.pack("!6H", msg_id, flags | 0x0200, qdcount, 0, 0, 0) + reply[12:pos]


def _decoys(query: dns.message.Message, reply: bytes) -> list[bytes]:
    """Wrong answers a spoofer or a confused server might send before the real one."""
    wrong_id = struct.pack("!H", (query.id + 1) % 65536) + reply[2:]
    other = dns.message.make_query("decoy.invalid.", "A", id=query.id)
    other_response = dns.message.make_response(other)
    other_response.answer.append(
        dns.rrset.from_text_list("decoy.invalid.", 300, "IN", "A", ["6.6.6.6"])
    )
    not_a_response = query.to_wire()
    return [b"\x00\x01\x02", wrong_id, other_response.to_wire(), not_a_response]
