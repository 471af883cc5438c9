"""The metrics: exact text of counters and histograms, label escaping, and `/metrics` on
server.metrics as the running proxy serves it (the web server's aiohttp)."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import dns.message
import pytest

from filterdns.config import UpstreamServer
from filterdns.dns import wire
from filterdns.dns.model import Kind, Request, Response, error_answer
from filterdns.ops.gauges import component_gauges
from filterdns.ops.metrics import BUCKETS, Gauge, Metrics
from filterdns.resolvers.cache import CacheStats
from filterdns.resolvers.metrics import MetricsResolver
from filterdns.resolvers.upstream import Health, Outstanding
from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import Proxy, config_for, running_proxy


def request(name: str = "example.com.", profile: str | None = "minh") -> Request:
    query = wire.parse_query(dns.message.make_query(name, "A").to_wire())
    return Request(query, "127.0.0.1", 5000, "udp", 0.0, profile=profile)


def response(req: Request, kind: Kind, category: str | None = None) -> Response:
    return Response(kind, error_answer(req.query, wire.NOERROR), category=category)


def samples(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


_SAMPLE = re.compile(
    r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (\S+)\Z'
)


def parse(text: str) -> dict[str, str]:
    """Check the whole exposition; metric name -> type. Every sample follows its TYPE line."""
    assert text.endswith("\n")
    types: dict[str, str] = {}
    helps: set[str] = set()
    current: str | None = None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert name not in helps, f"HELP twice for {name}"
            helps.add(name)
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in types, f"TYPE twice for {name}"
            assert kind in {"counter", "gauge", "histogram"}
            types[name] = kind
            current = name
        else:
            match = _SAMPLE.match(line)
            assert match, f"malformed sample line {line!r}"
            name = match.group(1)
            assert current is not None, f"sample before any TYPE: {line!r}"
            if types[current] == "histogram":
                assert name in {f"{current}_bucket", f"{current}_sum", f"{current}_count"}
            else:
                assert name == current, f"{name} sampled under the TYPE of {current}"
            float(match.group(3))  # "+Inf", "NaN" parse too
    return types


# --- rendering ------------------------------------------------------------------------------


def test_query_counter_lines_are_exact() -> None:
    metrics = Metrics()
    a = request()
    metrics.observe(a, response(a, Kind.BLOCKED, "gambling"), 0.001)
    metrics.observe(a, response(a, Kind.BLOCKED, "gambling"), 0.002)
    b = request(profile=None)
    metrics.observe(b, response(b, Kind.RESOLVED), 0.02)
    text = metrics.render()
    assert samples(text, "filterdns_queries_total") == [
        'filterdns_queries_total{kind="blocked",profile="minh",category="gambling"} 2',
        'filterdns_queries_total{kind="resolved",profile="",category=""} 1',
    ]
    assert "# TYPE filterdns_queries_total counter" in text.splitlines()
    parse(text)


def test_query_histogram_is_cumulative_with_inf_sum_and_count() -> None:
    metrics = Metrics()
    req = request()
    for seconds in (0.0005, 0.003, 0.003, 0.3, 7.0):  # 0.0005 sits exactly on a bound
        metrics.observe(req, response(req, Kind.CACHED), seconds)
    name = "filterdns_query_duration_seconds"
    lines = samples(metrics.render(), name)
    assert lines == [
        f'{name}_bucket{{le="0.0005"}} 1',
        f'{name}_bucket{{le="0.001"}} 1',
        f'{name}_bucket{{le="0.0025"}} 1',
        f'{name}_bucket{{le="0.005"}} 3',
        f'{name}_bucket{{le="0.01"}} 3',
        f'{name}_bucket{{le="0.025"}} 3',
        f'{name}_bucket{{le="0.05"}} 3',
        f'{name}_bucket{{le="0.1"}} 3',
        f'{name}_bucket{{le="0.25"}} 3',
        f'{name}_bucket{{le="0.5"}} 4',
        f'{name}_bucket{{le="1.0"}} 4',
        f'{name}_bucket{{le="2.5"}} 4',
        f'{name}_bucket{{le="5.0"}} 4',
        f'{name}_bucket{{le="+Inf"}} 5',
        f"{name}_sum {0.0005 + 0.003 + 0.003 + 0.3 + 7.0!r}",
        f"{name}_count 5",
    ]
    assert len(BUCKETS) == 13


def test_empty_metrics_render_every_family() -> None:
    text = Metrics().render()
    types = parse(text)
    assert types == {
        "filterdns_queries_total": "counter",
        "filterdns_query_duration_seconds": "histogram",
        "filterdns_upstream_duration_seconds": "histogram",
        "filterdns_upstream_failures_total": "counter",
        "filterdns_reloads_total": "counter",
    }
    assert 'filterdns_query_duration_seconds_bucket{le="+Inf"} 0' in text
    assert samples(text, "filterdns_reloads_total") == [
        'filterdns_reloads_total{result="applied"} 0',
        'filterdns_reloads_total{result="rejected"} 0',
        'filterdns_reloads_total{result="held"} 0',
    ]


def test_label_values_are_escaped() -> None:
    metrics = Metrics()
    req = request(profile='a"b\\c\nd')
    metrics.observe(req, response(req, Kind.BLOCKED, "x"), 0.0)
    metrics.upstream('tls://"q"\\', 0.01, ok=False)
    text = metrics.render(lambda: [("filterdns_odd", "help with \\ and\nnewline", {"v": "\n"}, 1)])
    assert samples(text, "filterdns_queries_total") == [
        'filterdns_queries_total{kind="blocked",profile="a\\"b\\\\c\\nd",category="x"} 1'
    ]
    assert 'filterdns_upstream_failures_total{server="tls://\\"q\\"\\\\"} 1' in text
    assert "# HELP filterdns_odd help with \\\\ and\\nnewline" in text
    assert 'filterdns_odd{v="\\n"} 1' in text
    parse(text)


def test_upstream_histogram_failures_and_reloads() -> None:
    metrics = Metrics()
    metrics.upstream("udp://192.0.2.1:53", 0.004, ok=True)
    metrics.upstream("udp://192.0.2.1:53", 0.02, ok=True)
    metrics.upstream("udp://192.0.2.2:53", None, ok=False)  # timed out: no duration
    metrics.upstream("udp://192.0.2.2:53", 0.001, ok=False)  # answered SERVFAIL
    metrics.reload("applied")
    metrics.reload("rejected")
    metrics.reload("held")
    metrics.reload("applied")
    text = metrics.render()
    parse(text)
    assert samples(text, "filterdns_upstream_failures_total{") == [
        'filterdns_upstream_failures_total{server="udp://192.0.2.1:53"} 0',
        'filterdns_upstream_failures_total{server="udp://192.0.2.2:53"} 2',
    ]
    name = "filterdns_upstream_duration_seconds"
    assert f'{name}_bucket{{server="udp://192.0.2.1:53",le="0.005"}} 1' in text
    assert f'{name}_bucket{{server="udp://192.0.2.1:53",le="0.025"}} 2' in text
    assert f'{name}_count{{server="udp://192.0.2.1:53"}} 2' in text
    assert f'{name}_count{{server="udp://192.0.2.2:53"}} 1' in text
    assert samples(text, "filterdns_reloads_total{") == [
        'filterdns_reloads_total{result="applied"} 2',
        'filterdns_reloads_total{result="rejected"} 1',
        'filterdns_reloads_total{result="held"} 1',
    ]


def test_gauges_grouped_under_one_header_and_typed_by_name() -> None:
    def gauges() -> list[Gauge]:
        return [
            ("filterdns_list_names", "Names per category.", {"category": "porn"}, 5),
            ("filterdns_cache_hits_total", "Hits.", {}, 7),
            ("filterdns_list_names", "ignored", {"category": "gambling"}, 2),
            ("filterdns_upstream_rtt_seconds", "RTT.", {"server": "s"}, 0.25),
        ]

    text = Metrics().render(gauges)
    types = parse(text)
    assert types["filterdns_list_names"] == "gauge"
    assert types["filterdns_cache_hits_total"] == "counter"
    assert text.count("# HELP filterdns_list_names") == 1
    assert samples(text, "filterdns_list_names{") == [
        'filterdns_list_names{category="porn"} 5',
        'filterdns_list_names{category="gambling"} 2',
    ]
    assert 'filterdns_upstream_rtt_seconds{server="s"} 0.25' in text


@pytest.mark.parametrize(
    "gauge",
    [
        ("bad-name", "h", {}, 1.0),
        ("filterdns_reloads_total", "clash", {}, 1.0),
        ("filterdns_x", "h", {"bad label": "v"}, 1.0),
    ],
)
def test_invalid_gauges_are_refused(gauge: Gauge) -> None:
    with pytest.raises(ValueError):
        Metrics().render(lambda: [gauge])


def test_component_gauges() -> None:
    cache = CacheStats(hits=3, misses=4, entries=2)
    health = {"udp://192.0.2.1:53": Health(failures=1, rtt=0.01), "udp://192.0.2.2:53": Health()}
    text = Metrics().render(
        lambda: component_gauges(
            cache=cache,
            upstreams=health,
            list_sizes={"gambling": 812},
            list_rejected={("gambling", "/etc/g.txt"): True, ("adult", "/etc/a.txt"): False},
            lists_ready=False,
        )
    )
    parse(text)
    assert "filterdns_cache_hits_total 3" in text
    assert "filterdns_cache_misses_total 4" in text
    assert "filterdns_cache_entries 2" in text
    assert 'filterdns_upstream_rtt_seconds{server="udp://192.0.2.1:53"} 0.01' in text
    assert 'filterdns_upstream_consecutive_failures{server="udp://192.0.2.2:53"} 0' in text
    assert 'filterdns_list_names{category="gambling"} 812' in text
    assert 'filterdns_list_rejected{category="gambling",source="/etc/g.txt"} 1' in text
    assert 'filterdns_list_rejected{category="adult",source="/etc/a.txt"} 0' in text
    assert "filterdns_lists_ready 0" in text


def test_outstanding_gauges_name_every_server_even_at_zero() -> None:
    busy, idle = UpstreamServer("udp", "192.0.2.1", 53), UpstreamServer("udp", "192.0.2.2", 53)
    caps = Outstanding(total=4, per_server=2)
    assert caps.take(busy) and caps.take(busy) and not caps.take(busy)
    caps.overflowed, caps.joined = 7, 3
    health = {str(busy): Health(), str(idle): Health()}
    text = Metrics().render(lambda: component_gauges(upstreams=health, outstanding=caps))
    types = parse(text)
    assert types["filterdns_upstream_overflow_total"] == "counter"
    assert "filterdns_upstream_outstanding 2" in text
    assert "filterdns_upstream_joined 3" in text
    assert "filterdns_upstream_overflow_total 7" in text
    assert 'filterdns_upstream_server_outstanding{server="192.0.2.1:53"} 2' in text
    assert 'filterdns_upstream_server_outstanding{server="192.0.2.2:53"} 0' in text


async def test_resolver_times_and_counts_each_query() -> None:
    class Below:
        async def resolve(self, req: Request) -> Response:
            await asyncio.sleep(0.01)
            return response(req, Kind.RESOLVED)

    metrics = Metrics()
    link = MetricsResolver(Below(), metrics)
    req = request()
    result = await link.resolve(req)
    assert result.kind is Kind.RESOLVED
    text = metrics.render()
    assert 'filterdns_queries_total{kind="resolved",profile="minh",category=""} 1' in text
    assert 'filterdns_query_duration_seconds_bucket{le="0.005"} 0' in text
    assert 'filterdns_query_duration_seconds_bucket{le="0.05"} 1' in text


# --- the endpoint: server.metrics, served by the web server (aiohttp) -----------------------


@asynccontextmanager
async def metrics_proxy() -> AsyncIterator[tuple[Proxy, FakeUpstream, tuple[str, int]]]:
    """The proxy with `server.metrics` on port 0, and that address."""
    async with FakeUpstream({("example.com", "A"): ["93.184.216.34"]}) as upstream:
        text = config_for(upstream.address, server='metrics: "127.0.0.1:0"')
        async with running_proxy(text) as proxy:
            where = proxy.app.metrics_address
            assert where is not None
            yield proxy, upstream, (where.host, where.port)


async def raw(address: tuple[str, int], data: bytes, *, eof: bool = False) -> bytes:
    """What the server sends back to `data` before it closes the connection."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(data)
        if eof:
            writer.write_eof()
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
        await writer.wait_closed()


def status_of(reply: bytes) -> str:
    return reply.split(b"\r\n", 1)[0].decode("ascii", "replace")


async def test_the_metrics_listener_serves_get_and_head_of_metrics_only() -> None:
    async with metrics_proxy() as (proxy, _, address), aiohttp.ClientSession() as http:
        url = f"http://{address[0]}:{address[1]}"
        reply = await http.get(f"{url}/metrics")
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("text/plain")
        before = await reply.text()
        parse(before)
        assert "filterdns_cache_hits_total 0" in before.splitlines()
        await proxy.query("example.com")
        await proxy.query("example.com")
        after = await (await http.get(f"{url}/metrics?x=1")).text()  # gauges read at scrape time
        assert "filterdns_cache_hits_total 1" in after.splitlines()

        head = await http.head(f"{url}/metrics")
        assert head.status == 200 and await head.read() == b""
        for path in ("/", "/other", "/metrics/x", "/api/v1/profiles"):
            assert (await http.get(url + path)).status == 404, path
        post = await http.post(f"{url}/metrics", data=b"x")
        assert post.status == 405 and "GET" in post.headers["Allow"]


async def test_garbage_and_slow_clients_never_stop_the_metrics_or_the_dns() -> None:
    async with metrics_proxy() as (proxy, _, address):
        assert status_of(await raw(address, b"\x00\xffgarbage\r\n\r\n")).endswith("400 Bad Request")
        long_line = b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n"
        assert status_of(await raw(address, long_line)).split(" ")[1] in ("400", "414")
        assert await raw(address, b"", eof=True) == b""  # connected, said nothing
        await raw(address, b"GET /metrics", eof=True)  # cut short: whatever it answers, no harm
        # A client that starts a request and stalls holds nothing up.
        reader, writer = await asyncio.open_connection(*address)
        writer.write(b"GET /metr")
        await writer.drain()
        reply = await raw(address, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert status_of(reply) == "HTTP/1.1 200 OK"
        assert (await proxy.query("example.com")).answer
        writer.close()
        await writer.wait_closed()
        del reader


async def test_a_rendering_error_is_500_and_the_next_scrape_works() -> None:
    async with metrics_proxy() as (proxy, _, address), aiohttp.ClientSession() as http:
        url = f"http://{address[0]}:{address[1]}/metrics"
        gauges = proxy.app._gauges

        def broken() -> list[Gauge]:
            raise RuntimeError("boom")

        proxy.app._gauges = broken  # type: ignore[method-assign]
        assert (await http.get(url)).status == 500
        proxy.app._gauges = gauges  # type: ignore[method-assign]
        assert (await http.get(url)).status == 200


async def test_stopping_the_proxy_ends_open_metrics_connections() -> None:
    async with metrics_proxy() as (proxy, _, address):
        reader, writer = await asyncio.open_connection(*address)
        writer.write(b"GET /")
        await writer.drain()
        await asyncio.wait_for(proxy.app.stop(), 5)
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()
        await writer.wait_closed()
        with pytest.raises(OSError):
            await asyncio.open_connection(*address)


async def test_the_running_proxy_serves_its_metrics() -> None:
    async with metrics_proxy() as (proxy, upstream, address):
        await proxy.query("example.com")
        await proxy.query("example.com")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as garbage:
            garbage.sendto(b"\x12\x34\x00", (proxy.host, proxy.port))  # dropped: too short
        await proxy.query("example.com", tcp=True)  # read after the garbage: it was counted
        reply = await raw(address, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        body = reply.decode()
    assert body.startswith("HTTP/1.1 200")
    assert 'filterdns_queries_total{kind="resolved",profile="household",category=""} 1' in body
    assert 'filterdns_queries_total{kind="cached",profile="household",category=""} 2' in body
    assert "filterdns_cache_hits_total 2" in body
    assert "filterdns_refused_total 0" in body
    assert "filterdns_rate_limited_total 0" in body
    assert "filterdns_malformed_total 1" in body
    assert "filterdns_packets_total 4" in body
    assert f'filterdns_upstream_duration_seconds_count{{server="{upstream.address}"}} 1' in body
    assert 'filterdns_list_names{category="gambling"}' in body
