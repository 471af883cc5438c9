"""Hostile input at the real listeners: fuzzed packets over UDP and TCP, broken frames, slowloris.

Whatever arrives, the server answers or drops it, never lets an exception out of a handler, and
keeps answering good queries throughout.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct

import dns.message
import dns.rcode
import pytest

from tests.fakes.hostile import hostile_packets
from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import Proxy, addresses, config_for, running_proxy

REAL = "93.184.216.34"
PACKETS = 3000


@pytest.fixture
async def upstream() -> FakeUpstream:
    async with FakeUpstream({("example.com", "A"): [REAL]}) as fake:
        yield fake


def _config(upstream: FakeUpstream, server: str = "") -> str:
    return config_for(upstream.address, server="rate_limit: null\n" + server)


async def _still_answers(proxy: Proxy) -> None:
    for tcp in (False, True):
        reply = await proxy.query("example.com", tcp=tcp)
        assert addresses(reply) == [REAL]


def _no_errors(proxy: Proxy, caplog: pytest.LogCaptureFixture) -> None:
    assert proxy.app.server.stats["errors"] == 0
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_thousands_of_hostile_datagrams_never_break_the_server(
    upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_proxy(_config(upstream)) as proxy:
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.connect((proxy.host, proxy.port))
            for i, packet in enumerate(hostile_packets(random.Random(8), PACKETS)):
                await loop.sock_sendall(sock, packet)
                if i % 500 == 0:
                    await _still_answers(proxy)
        await _still_answers(proxy)
        stats = proxy.app.server.stats
        assert stats["formerr"] + stats["dropped"] > PACKETS // 4  # the garbage was seen as such
        _no_errors(proxy, caplog)


async def test_hostile_frames_on_one_tcp_connection_never_break_the_server(
    upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_proxy(_config(upstream)) as proxy:
        reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
        for packet in hostile_packets(random.Random(9), PACKETS):
            writer.write(struct.pack("!H", len(packet)) + packet)
        await writer.drain()
        good = dns.message.make_query("example.com", "A")
        good.id = 4242
        writer.write(struct.pack("!H", len(good.to_wire())) + good.to_wire())
        # Answers come in completion order: read until the good one arrives on this connection.
        async with asyncio.timeout(20):
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                data = await reader.readexactly(length)
                if data[:2] == struct.pack("!H", 4242):
                    reply = dns.message.from_wire(data)
                    if reply.answer:
                        break
        writer.close()
        assert addresses(reply) == [REAL]
        await _still_answers(proxy)
        _no_errors(proxy, caplog)


@pytest.mark.parametrize(
    "opening",
    [
        pytest.param(struct.pack("!H", 100) + b"\x12\x34" * 5, id="partial-frame"),
        pytest.param(struct.pack("!H", 65535) + b"\x00" * 100, id="oversized-length-prefix"),
        pytest.param(b"\x00", id="half-a-length"),
        pytest.param(struct.pack("!H", 0), id="empty-frame"),
    ],
)
async def test_a_broken_tcp_frame_is_closed_by_the_idle_timeout_while_others_are_served(
    upstream: FakeUpstream, caplog: pytest.LogCaptureFixture, opening: bytes
) -> None:
    async with running_proxy(_config(upstream, "tcp_idle_timeout: 300ms")) as proxy:
        reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
        writer.write(opening)
        await writer.drain()
        await _still_answers(proxy)  # while the broken connection hangs
        async with asyncio.timeout(5):
            rest = await reader.read()  # the server closes it: EOF
        writer.close()
        assert rest == b""
        await _still_answers(proxy)
        _no_errors(proxy, caplog)


async def test_slowloris_connections_cannot_keep_tcp_from_others_for_long(
    upstream: FakeUpstream,
) -> None:
    server = "max_tcp_connections: 4\ntcp_idle_timeout: 300ms"
    async with running_proxy(_config(upstream, server)) as proxy:
        hogs = [  # from four addresses: one may hold only 3 of the 4 (per-client cap)
            await asyncio.open_connection(proxy.host, proxy.port, local_addr=(f"127.0.0.{i}", 0))
            for i in range(2, 6)
        ]
        for _reader, writer in hogs:
            writer.write(b"\x00")  # one byte of a length, then nothing
        # UDP is untouched, and once the idle timeout frees the slots TCP answers again.
        reply = await proxy.query("example.com")
        assert addresses(reply) == [REAL]
        for reader, _writer in hogs:
            async with asyncio.timeout(5):
                assert await reader.read() == b""
        await _still_answers(proxy)
        for _reader, writer in hogs:
            writer.close()
