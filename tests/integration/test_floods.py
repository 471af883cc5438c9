"""Floods: upstreams that stop answering for long, many queries held upstream, TCP hoarders.

A query waiting on an upstream holds memory and, over UDP, a socket: the proxy caps those
(`upstreams.max_outstanding`, `max_outstanding_per_server`) and answers past the caps at once
from stale data or with SERVFAIL. A long outage (thousands of failures in a row) must never
stop serve-stale. One client address may hold only `server.max_tcp_connections_per_client` TCP
connections, so it can never lock the others out.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import resource
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.rcode
import pytest

from filterdns.dns import udpsockets
from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import FakeClock, Proxy, addresses, config_for, running_proxy

REAL = "93.184.216.34"
FLOODERS = [f"127.0.0.{i}" for i in range(2, 8)]  # six addresses, as in the report
VICTIM = "127.0.0.9"


def open_files() -> int:
    """File descriptors this process (proxy, fakes and test clients) holds now."""
    return len(os.listdir("/proc/self/fd"))


async def scrape(proxy: Proxy) -> dict[str, float]:
    """The proxy's /metrics samples without labels, and with them as written."""
    where = proxy.app.metrics_address
    assert where is not None
    reader, writer = await asyncio.open_connection(where.host, where.port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await writer.drain()
    body = (await reader.read()).decode()
    writer.close()
    await writer.wait_closed()
    found = re.findall(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$", body, re.M)
    return {name: float(value) for name, value in found}


def _query(name: str, msg_id: int) -> bytes:
    query = dns.message.make_query(name, "A")
    query.id = msg_id
    return query.to_wire()


@contextmanager
def _clients(sources: list[str], proxy: Proxy) -> Iterator[list[socket.socket]]:
    """One UDP socket per source address, connected to the proxy, with room for replies."""
    with ExitStack() as stack:
        socks = []
        for source in sources:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            sock.bind((source, 0))
            sock.connect((proxy.host, proxy.port))
            sock.setblocking(False)
            socks.append(sock)
        yield socks


def _drain(sock: socket.socket) -> list[dns.message.Message]:
    replies = []
    while True:
        try:
            replies.append(dns.message.from_wire(sock.recv(65535)))
        except BlockingIOError:
            return replies


async def _replies(sock: socket.socket, count: int, timeout: float) -> list[dns.message.Message]:
    """`count` replies on `sock`, waiting for them (the last ones come at an upstream deadline)."""
    loop = asyncio.get_running_loop()
    replies = _drain(sock)
    async with asyncio.timeout(timeout):
        while len(replies) < count:
            replies.append(dns.message.from_wire(await loop.sock_recv(sock, 65535)))
    return replies


def _flood_config(*upstreams: str, server: str = "", upstream_keys: str = "") -> str:
    text = config_for(*upstreams, server=f'rate_limit: null\nmetrics: "127.0.0.1:0"\n{server}')
    return text.replace("  timeout: 1s\n", f"  timeout: 1s\n{upstream_keys}")


async def test_a_silent_upstream_holds_no_more_than_the_caps_and_cached_names_still_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    per_source = 1000
    clock = FakeClock()
    records = {("victim.example", "A"): [REAL]}
    async with FakeUpstream(records) as first, FakeUpstream(records) as second:
        # 3 s: the exchanges must still be in flight when /metrics is read after the flood,
        # even on a loaded machine.
        text = _flood_config(first.address, second.address).replace("timeout: 1s", "timeout: 3s")
        async with running_proxy(text, clock=clock) as proxy:
            assert addresses(await proxy.query("victim.example", source=VICTIM)) == [REAL]
            clock.now += 400  # the victim's answer expired: only stale data is left
            first.silent = second.silent = True
            baseline = open_files()
            peak_files = peak_outstanding = 0
            with _clients(FLOODERS, proxy) as flooders:
                for batch in range(0, per_source, 50):
                    for index, sock in enumerate(flooders):
                        for serial in range(batch, batch + 50):
                            sock.send(_query(f"n{serial}.s{index}.flood.example", serial))
                    await asyncio.sleep(0)  # let the proxy read: socket buffers are finite
                    peak_files = max(peak_files, open_files() - baseline)
                    peak_outstanding = max(peak_outstanding, proxy.app.outstanding.in_flight)
                stale = await proxy.query("victim.example", source=VICTIM)
                unknown = await proxy.query("other.example", source=VICTIM)
                metrics = await scrape(proxy)
                replies = [await _replies(sock, per_source, timeout=10) for sock in flooders]
            after = proxy.app.outstanding.in_flight

    assert addresses(stale) == [REAL]
    assert stale.answer[0].ttl == 30  # served stale (RFC 8767), not asked again
    assert unknown.rcode() == dns.rcode.SERVFAIL
    assert all(r.rcode() == dns.rcode.SERVFAIL for rs in replies for r in rs)  # all answered
    assert peak_outstanding == 512  # two servers at 256 each: the global cap
    # 256 exchanges per server share sockets of 64 each; a few TCP and metrics ones besides
    assert peak_files <= 2 * (256 // udpsockets.SOCKET_USES + 1) + 8
    assert metrics["filterdns_upstream_outstanding"] == 512
    assert metrics["filterdns_upstream_overflow_total"] >= 6 * per_source - 512
    assert metrics[f'filterdns_upstream_server_outstanding{{server="{first.address}"}}'] == 256
    assert after == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    warnings = [r.getMessage() for r in caplog.records if "upstreams.max_outstanding" in r.msg]
    assert len(warnings) == 1  # once a minute, not once a query


async def test_a_flood_of_one_name_to_a_silent_upstream_waits_only_up_to_the_cap() -> None:
    clock = FakeClock()
    records = {("victim.example", "A"): [REAL]}
    async with FakeUpstream(records) as upstream:
        text = _flood_config(upstream.address, upstream_keys="  max_outstanding: 16\n")
        async with running_proxy(text, clock=clock) as proxy:
            await proxy.query("victim.example", source=VICTIM)
            clock.now += 400
            upstream.silent = True
            peak_joined = 0
            with _clients(FLOODERS, proxy) as flooders:
                for serial in range(0, 600, 20):
                    for sock in flooders:
                        for msg_id in range(serial, serial + 20):
                            sock.send(_query("flooded.example", msg_id))
                    await asyncio.sleep(0)  # let the proxy read: socket buffers are finite
                    peak_joined = max(peak_joined, proxy.app.outstanding.joined)
                stale = await proxy.query("victim.example", source=VICTIM)
                metrics = await scrape(proxy)
                replies = [await _replies(sock, 600, timeout=10) for sock in flooders]

    assert addresses(stale) == [REAL]
    assert peak_joined == 16 * 8  # the rest were answered at once
    assert upstream.queries.count(("flooded.example", "A")) <= 2  # one per timeout at most
    assert metrics["filterdns_upstream_overflow_total"] >= 6 * 600 - 1 - 16 * 8
    assert all(r.rcode() == dns.rcode.SERVFAIL for rs in replies for r in rs)


async def _ask_all(sock: socket.socket, names: list[str]) -> dict[str, dns.message.Message]:
    """Send one query per name at once from `sock`; each name's reply."""
    for msg_id, name in enumerate(names):
        sock.send(_query(name, msg_id))
        if msg_id % 50 == 49:
            await asyncio.sleep(0)  # let the proxy read: socket buffers are finite
    replies = await _replies(sock, len(names), timeout=10)
    return {r.question[0].name.to_text(omit_final_dot=True): r for r in replies}


def _fail_fast(fake: FakeUpstream) -> None:
    fake.rcode = dns.rcode.SERVFAIL


def _fall_silent(fake: FakeUpstream) -> None:
    fake.silent = True


@pytest.mark.parametrize(
    ("outage", "timeout"),
    [
        pytest.param(_fail_fast, "1s", id="servfail"),
        pytest.param(_fall_silent, "250ms", id="silent"),
    ],
)
async def test_thousands_of_failures_in_a_row_never_stop_serve_stale(
    outage: Callable[[FakeUpstream], None], timeout: str, caplog: pytest.LogCaptureFixture
) -> None:
    cached = [f"c{i}.example" for i in range(20)]
    clock = FakeClock()
    async with FakeUpstream({(name, "A"): [REAL] for name in cached}) as upstream:
        text = config_for(upstream.address, server="rate_limit: null")
        text = text.replace("timeout: 1s", f"timeout: {timeout}")
        async with running_proxy(text, clock=clock) as proxy:
            health = proxy.app.chain.upstream.health
            for name in cached:
                await proxy.query(name)
            clock.now += 400  # every cached answer expired: only stale data is left
            outage(upstream)
            rounds = 0
            with _clients([VICTIM], proxy) as (client,):
                while min(h.failures for h in health.values()) < 1_100:
                    rounds += 1
                    unknown = [f"u{i}.r{rounds}.example" for i in range(300)]
                    replies = await _ask_all(client, cached + unknown)
                    assert {addresses(replies[name])[0] for name in cached} == {REAL}
                    assert {replies[name].answer[0].ttl for name in cached} == {30}
                    assert {replies[name].rcode() for name in unknown} == {dns.rcode.SERVFAIL}
            upstream.rcode, upstream.silent = None, False
            recovered = await proxy.query("c0.example")

    assert addresses(recovered) == [REAL]
    assert recovered.answer[0].ttl > 30  # a fresh answer: the upstream is asked again
    assert all(h.failures == 0 for h in health.values())
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def _hold(proxy: Proxy, source: str, count: int) -> list[asyncio.StreamWriter]:
    """Open `count` TCP connections from `source` and keep them (the proxy may close some)."""
    writers = []
    for _ in range(count):
        _reader, writer = await asyncio.open_connection(
            proxy.host, proxy.port, local_addr=(source, 0)
        )
        writers.append(writer)
    return writers


async def _tcp_answers(proxy: Proxy, source: str, count: int) -> int:
    """How many of `count` queries over TCP from `source` (a connection each) are answered."""
    answered = 0
    for _ in range(count):
        reply = await proxy.query("victim.example", tcp=True, source=source, timeout=2)
        answered += addresses(reply) == [REAL]
    return answered


@pytest.mark.parametrize(
    ("holders", "each"),
    [
        pytest.param(["127.0.0.2"], 300, id="one-address-300"),
        pytest.param([f"127.0.0.{i}" for i in range(10, 30)], 16, id="twenty-addresses-320"),
    ],
)
async def test_tcp_hoarders_never_lock_another_client_out(holders: list[str], each: int) -> None:
    records = {("victim.example", "A"): [REAL]}
    async with (
        FakeUpstream(records) as upstream,
        running_proxy(_flood_config(upstream.address)) as proxy,
    ):
        held = [w for source in holders for w in await _hold(proxy, source, each)]
        answered = await _tcp_answers(proxy, VICTIM, 24)
        slots = proxy.app.server.tcp
        most = max(slots.held_by(source) for source in holders)
        open_now = len(slots)
        metrics = await scrape(proxy)
        for writer in held:
            writer.close()

    assert answered == 24
    assert most <= 16  # server.max_tcp_connections_per_client
    assert open_now <= 256  # server.max_tcp_connections
    refused = metrics['filterdns_tcp_refused_total{cap="per_client"}']
    assert refused == sum(max(0, each - 16) for _ in holders)
    if len(holders) * 16 > 256:
        assert metrics["filterdns_tcp_evicted_total"] >= 24  # the victim made room each time


def _process_figures(pid: int) -> tuple[int, float]:
    """Open files and resident memory (MB) of process `pid`."""
    with open(f"/proc/{pid}/status") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return len(os.listdir(f"/proc/{pid}/fd")), rss / 1024


def _flood(port: int, pid: int, rounds: int) -> tuple[int, int, float]:
    """Six addresses send new names and one name over and over, as fast as they can; the
    queries sent and the most open files and memory the proxy process reached meanwhile."""
    sent, peak_files, peak_rss = 0, 0, 0.0
    with ExitStack() as stack:
        socks = []
        for source in FLOODERS:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            sock.bind((source, 0))
            sock.connect(("127.0.0.1", port))
            socks.append(sock)
        for serial in range(rounds):
            for index, sock in enumerate(socks):
                name = "same.flood.example" if index % 2 else f"n{serial}.s{index}.flood.example"
                sock.send(_query(name, serial % 65536))
                sent += 1
            if serial % 200 == 0:
                files, rss = _process_figures(pid)
                peak_files, peak_rss = max(peak_files, files), max(peak_rss, rss)
    return sent, peak_files, peak_rss


async def test_the_real_process_stays_within_its_open_files_under_a_flood_to_a_silent_upstream(
    tmp_path: Path,
) -> None:
    # The process gets the usual limit of 1,024 open files and may not raise it.
    def usual_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    async with FakeUpstream({("victim.example", "A"): [REAL]}) as upstream:
        config = tmp_path / "config.yaml"
        config.write_text(
            config_for(upstream.address, server="rate_limit: null")
            + f"log: {{database: {tmp_path / 'log.db'}}}\n"
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "filterdns", "serve", "-c", str(config),
            stderr=asyncio.subprocess.PIPE, preexec_fn=usual_limit,
        )  # fmt: skip
        try:
            assert process.stderr is not None
            port = await _listening_port(process.stderr)
            log_text = asyncio.create_task(process.stderr.read())  # the pipe must not fill
            victim = await _udp_query(port, "victim.example")
            upstream.silent = True
            files_before, rss_before = _process_figures(process.pid)
            sent, peak_files, peak_rss = await asyncio.to_thread(_flood, port, process.pid, 4000)
            cached = await _udp_query(port, "victim.example")
            unknown = await _udp_query(port, "unknown.example")
        finally:
            process.terminate()
            await process.wait()
        stderr = (await log_text).decode()

    assert sent == 24_000
    assert addresses(victim) == addresses(cached) == [REAL]
    assert unknown.rcode() == dns.rcode.SERVFAIL
    assert peak_files - files_before <= 256 + 8  # one upstream: its per-server cap
    assert peak_rss - rss_before < 50  # MB; thousands of waiting queries held 100+
    assert "Traceback" not in stderr
    assert "Too many open files" not in stderr


async def _listening_port(stderr: asyncio.StreamReader) -> int:
    seen = []
    while True:
        line = (await asyncio.wait_for(stderr.readline(), timeout=20)).decode()
        assert line, f"filterdns exited before listening: {seen}"
        seen.append(line)
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if match:
            return int(match.group(1))


async def _udp_query(port: int, name: str) -> dns.message.Message:
    query = dns.message.make_query(name, "A")
    return await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=5, source=VICTIM)
