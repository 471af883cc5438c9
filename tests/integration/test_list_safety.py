"""Lists never empty themselves: a running proxy keeps blocking when a list file goes bad, takes
good edits (SIGHUP, the file watch), and answers at once while a big list is being built."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.rcode
import pytest

from filterdns.app import App
from filterdns.config import load_config
from filterdns.lists.cachedir import INDEX_FILE, SHIPPED_INDEX_FILE
from filterdns.lists.sources import copy_path
from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import LISTS_TIMEOUT, Proxy, addresses, config_for
from tests.integration.test_lifecycle import _start_serve

NAMES = [f"site{i}.adult-test.example" for i in range(200)]
GOOD = ("# my adult list\n" + "".join(f"0.0.0.0 {n}\n" for n in NAMES)).encode()
OTHER = "unlisted.example"
RECORDS = {(name, "A"): ["192.0.2.1"] for name in [*NAMES, OTHER, "new.adult-test.example"]}
SHIPPED_MALWARE = "7dot.cn"  # in blocklists/malware.txt

# What a broken script, a failed copy or a bad edit leaves behind, and the reason given.
DAMAGE = {
    "junk": (
        b"Dear user,\nthis list moved to a new address.\nsite0.adult-test.example\nThanks\n",
        "mostly invalid",
    ),
    "binary": (
        bytes(range(256)) * 8 + b"\nnew.adult-test.example\n" + bytes(range(256)),
        "not text: NUL bytes",
    ),
    "empty": (b"", "no usable entry"),
    "shrunk": (
        "".join(f"0.0.0.0 {n}\n" for n in NAMES[:10]).encode(),
        "95 % smaller than the last good copy (200 -> 10 entries)",
    ),
}


def config_text(upstream: FakeUpstream, tmp_path: Path, adult: Path, lists: str = "") -> str:
    extra = f"""\
        log: {{database: {tmp_path / "filterdns.db"}}}
        categories: {{adult: ["{adult}"]}}
        profiles: {{kid: {{age_band: adult, categories: [adult]}}}}
        default_profile: kid
    """
    text = config_for(upstream.address, extra=extra, server="rate_limit: null")
    return text.replace("lists:\n", f"lists:\n{lists}", 1)


@asynccontextmanager
async def running(path: Path) -> AsyncIterator[Proxy]:
    """The proxy of the configuration file `path`, its configured lists built."""
    app = App(load_config(path))
    bound = await app.start()
    try:
        await asyncio.wait_for(app.lists.ready.wait(), timeout=LISTS_TIMEOUT)
        yield Proxy(app, bound[0].host, bound[0].port)
    finally:
        await app.stop()


async def blocked(proxy: Proxy, name: str) -> bool:
    reply = await proxy.query(name)
    assert reply.rcode() == dns.rcode.NXDOMAIN or addresses(reply) == ["192.0.2.1"], reply
    return reply.rcode() == dns.rcode.NXDOMAIN


async def all_blocked(proxy: Proxy, names: list[str]) -> bool:
    return all(await asyncio.gather(*(blocked(proxy, name) for name in names)))


def replace_file(path: Path, data: bytes) -> None:
    """Write `data` over `path` with a time stamp that differs from the last one."""
    path.write_bytes(data)
    os.utime(path, ns=(time.time_ns() + 10**9,) * 2)


def without_the_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The file watch never looks: what follows is the reload's doing alone."""
    monkeypatch.setattr("filterdns.lists.freshness.LIST_POLL", 3600.0)


async def settled(proxy: Proxy, builds: int) -> None:
    """Until the file watch has swapped in build number `builds`."""
    await asyncio.wait_for(proxy.app.lists.wait_for_builds(builds), timeout=LISTS_TIMEOUT)


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(RECORDS) as fake:
        yield fake


@pytest.mark.parametrize(
    ("damage", "trigger"),
    [
        *[pytest.param(kind, "reload", id=f"{kind}-reload") for kind in DAMAGE],
        pytest.param("binary", "watch", id="binary-watch"),
        pytest.param("shrunk", "watch", id="shrunk-watch"),
    ],
)
async def test_a_bad_list_file_leaves_every_category_and_its_copy_as_they_were(
    upstream: FakeUpstream,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    damage: str,
    trigger: str,
) -> None:
    if trigger == "reload":
        without_the_watch(monkeypatch)
    adult = tmp_path / "adult.txt"
    adult.write_bytes(GOOD)
    path = tmp_path / "config.yaml"
    path.write_text(config_text(upstream, tmp_path, adult))
    data, reason = DAMAGE[damage]
    async with running(path) as proxy:
        copy = copy_path(proxy.app.lists.cache_dir, str(adult))
        assert await all_blocked(proxy, NAMES)
        assert await blocked(proxy, SHIPPED_MALWARE)
        assert not await blocked(proxy, OTHER)
        builds = proxy.app.lists.builds
        replace_file(adult, data)
        if trigger == "reload":
            assert await proxy.app.reload()
        else:
            await settled(proxy, builds + 1)
        assert proxy.app.lists.builds == builds + 1  # it was rebuilt, and rejected the file
        assert await all_blocked(proxy, NAMES)
        assert await blocked(proxy, SHIPPED_MALWARE)
        assert not await blocked(proxy, OTHER)
        assert not await blocked(proxy, "new.adult-test.example")
        assert copy.read_bytes() == GOOD
        (status,) = [s for s in proxy.app.lists.sources if s.source == str(adult)]
        assert status.rejected is not None and status.rejected.startswith(reason)


async def test_an_edit_is_applied_by_a_reload(
    upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_the_watch(monkeypatch)
    adult = tmp_path / "adult.txt"
    adult.write_bytes(GOOD)
    path = tmp_path / "config.yaml"
    path.write_text(config_text(upstream, tmp_path, adult))
    async with running(path) as proxy:
        assert not await blocked(proxy, "new.adult-test.example")
        replace_file(adult, GOOD + b"0.0.0.0 new.adult-test.example\n")
        assert await proxy.app.reload()
        assert await blocked(proxy, "new.adult-test.example")
        assert await all_blocked(proxy, NAMES)


async def test_an_edit_is_applied_by_the_file_watch(upstream: FakeUpstream, tmp_path: Path) -> None:
    adult = tmp_path / "adult.txt"
    adult.write_bytes(GOOD + b"0.0.0.0 new.adult-test.example\n")
    path = tmp_path / "config.yaml"
    path.write_text(config_text(upstream, tmp_path, adult))
    async with running(path) as proxy:
        assert await blocked(proxy, "new.adult-test.example")
        builds = proxy.app.lists.builds
        replace_file(adult, GOOD + b"0.0.0.0 unlisted.example\n")  # by an editor, no signal
        await settled(proxy, builds + 1)
        assert await blocked(proxy, OTHER)
        assert not await blocked(proxy, "new.adult-test.example")  # the edit removed it
        assert await all_blocked(proxy, NAMES)
        copy = copy_path(proxy.app.lists.cache_dir, str(adult))
        assert copy.read_bytes() == GOOD + b"0.0.0.0 unlisted.example\n"


async def test_a_reload_without_a_list_change_rebuilds_nothing(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    adult = tmp_path / "adult.txt"
    adult.write_bytes(GOOD)
    path = tmp_path / "config.yaml"
    path.write_text(config_text(upstream, tmp_path, adult))
    async with running(path) as proxy:
        index, builds = proxy.app.lists.index, proxy.app.lists.builds
        assert await proxy.app.reload()
        assert (proxy.app.lists.index, proxy.app.lists.builds) == (index, builds)


async def test_the_metrics_say_which_source_was_rejected(
    upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_the_watch(monkeypatch)
    adult = tmp_path / "adult.txt"
    adult.write_bytes(GOOD)
    path = tmp_path / "config.yaml"
    text = config_text(upstream, tmp_path, adult)
    path.write_text(
        text.replace("rate_limit: null\n", 'rate_limit: null\n  metrics: "127.0.0.1:0"\n')
    )
    async with running(path) as proxy:
        replace_file(adult, b"")
        assert await proxy.app.reload()
        where = proxy.app.metrics_address
        assert where is not None
        reader, writer = await asyncio.open_connection(where.host, where.port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await writer.drain()
        body = (await reader.read()).decode()
        writer.close()
        await writer.wait_closed()
    assert f'filterdns_list_rejected{{category="adult",source="{adult}"}} 1' in body
    assert 'filterdns_list_names{category="adult"} 200' in body
    assert "filterdns_lists_ready 1" in body


async def test_a_huge_list_does_not_delay_the_first_answer(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    huge = tmp_path / "huge.txt"
    write_names(huge, 100, "huge-test")  # a million names, 32 MB
    path = tmp_path / "config.yaml"
    path.write_text(config_text(upstream, tmp_path, huge, f"  cache_dir: {tmp_path / 'lists'}\n"))
    app = App(load_config(path))  # a first start: no index of any kind on disk
    bound = await app.start()
    try:
        proxy = Proxy(app, bound[0].host, bound[0].port)
        assert app.lists.interim == "the shipped lists"
        assert await blocked(proxy, SHIPPED_MALWARE)
        assert not app.lists.ready.is_set()  # answered while the big list is still being built
        assert (tmp_path / "lists" / SHIPPED_INDEX_FILE).is_file()  # the next start maps it
        await asyncio.wait_for(app.lists.ready.wait(), timeout=LISTS_TIMEOUT)
        assert app.lists.interim is None
        assert await blocked(proxy, "n9999-99.huge-test.example")
        assert await blocked(proxy, SHIPPED_MALWARE)
    finally:
        await app.stop()


async def test_the_real_server_keeps_a_list_through_junk_and_takes_an_edit_on_sighup(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    adult = tmp_path / "adult.txt"
    adult.write_bytes(GOOD)
    config = tmp_path / "config.yaml"
    cache = tmp_path / "lists"
    config.write_text(config_text(upstream, tmp_path, adult, f"  cache_dir: {cache}\n"))
    process, port, _seen = await _start_serve(config)
    assert process.stderr is not None

    async def lines_with(*texts: str) -> dict[str, str]:
        """Read the log until a line with each of `texts` was seen (in any order)."""
        assert process.stderr is not None
        seen: dict[str, str] = {}
        while len(seen) < len(texts):
            line = (await asyncio.wait_for(process.stderr.readline(), LISTS_TIMEOUT)).decode()
            assert line, "filterdns exited"
            seen.update({text: line for text in texts if text in line and text not in seen})
        return seen

    async def is_blocked(name: str) -> bool:
        query = dns.message.make_query(name, "A")
        reply = await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=3)
        return reply.rcode() == dns.rcode.NXDOMAIN

    try:
        await lines_with("it replaces the shipped lists")  # the configured lists serve
        assert await is_blocked(NAMES[0]) and await is_blocked(NAMES[-1])
        replace_file(adult, bytes(range(256)) * 16)
        process.send_signal(signal.SIGHUP)
        # The reload rebuilds, or finds the file watch doing so: either way a build logs.
        seen = await lines_with("rejected", "reloaded", "lists: built index")
        warning = seen["rejected"]
        assert "WARNING" in warning and str(adult) in warning and "NUL bytes" in warning
        assert await is_blocked(NAMES[0]) and await is_blocked(NAMES[-1])
        assert copy_path(cache, str(adult)).read_bytes() == GOOD
        replace_file(adult, GOOD + b"0.0.0.0 new.adult-test.example\n")
        process.send_signal(signal.SIGHUP)
        await lines_with("reloaded", "lists: built index")
        assert await is_blocked("new.adult-test.example") and await is_blocked(NAMES[0])
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=15)


def write_names(path: Path, blocks: int, tag: str) -> None:
    """`blocks` * 10,000 synthetic names, written in a blink."""
    with path.open("w") as out:
        for block in range(blocks):
            out.write("".join(f"n{i}-{block}.{tag}.example\n" for i in range(10_000)))


async def test_stopping_during_a_build_stops_the_builder_and_leaves_no_temporary_file(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    huge = tmp_path / "huge.txt"
    write_names(huge, 100, "huge-test")
    path = tmp_path / "config.yaml"
    cache = tmp_path / "lists"
    path.write_text(config_text(upstream, tmp_path, huge, f"  cache_dir: {cache}\n"))
    app = App(load_config(path))
    await app.start()
    try:
        await asyncio.wait_for(app.lists.builder.started.wait(), timeout=LISTS_TIMEOUT)
        child = app.lists.builder.process
        assert child is not None and not app.lists.ready.is_set()
    finally:
        await asyncio.wait_for(app.stop(), timeout=10)
    assert child.returncode is not None  # stopped and reaped, not left building
    assert not (cache / INDEX_FILE).exists()
    left = [p.name for p in cache.rglob("*") if p.name.endswith((".tmp", ".part"))]
    assert left == []


async def test_a_reload_during_a_long_build_returns_at_once_and_the_watch_applies_the_edit(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    big = tmp_path / "big.txt"
    write_names(big, 30, "big-test")  # 300,000 names: built in a child process
    adult = tmp_path / "adult.txt"
    adult.write_bytes(GOOD)
    path = tmp_path / "config.yaml"
    text = config_text(upstream, tmp_path, adult, f"  cache_dir: {tmp_path / 'lists'}\n")
    path.write_text(text.replace(f'adult: ["{adult}"]', f'adult: ["{adult}", "{big}"]'))
    app = App(load_config(path))
    bound = await app.start()
    try:
        proxy = Proxy(app, bound[0].host, bound[0].port)
        await asyncio.wait_for(app.lists.builder.started.wait(), timeout=LISTS_TIMEOUT)
        replace_file(adult, GOOD + b"0.0.0.0 new.adult-test.example\n")  # the build has begun
        assert await app.reload()
        assert not app.lists.ready.is_set()  # the reload did not wait for the first build
        await asyncio.wait_for(app.lists.wait_for_builds(2), timeout=LISTS_TIMEOUT)
        assert await blocked(proxy, "new.adult-test.example")
        assert await blocked(proxy, "n0-0.big-test.example")
    finally:
        await app.stop()
