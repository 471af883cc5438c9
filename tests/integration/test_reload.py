"""Reloading the configuration while queries keep coming: nothing dropped, new policy in force."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.rcode
import pytest

from filterdns.app import App
from filterdns.app import watch as app_watch
from filterdns.config import load_config
from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import LISTS_TIMEOUT, FakeClock, addresses, config_for
from tests.integration.test_lifecycle import LISTENING

NAMES = {(f"site{i}.example", "A"): [f"198.51.100.{i}"] for i in range(25)}
RECORDS = {("example.com", "A"): ["93.184.216.34"], **NAMES}


def config_text(
    upstream: FakeUpstream, tmp_path: Path, blocked: str, *, broken: bool = False
) -> str:
    extra = f"""\
        log: {{database: {tmp_path / "filterdns.db"}}}
        profiles:
          minh: {{age_band: adult, block: [{blocked}]}}
        default_profile: minh
    """
    # One test client asks as fast as it can: no per-client rate limit.
    text = config_for(upstream.address, extra=extra, server="rate_limit: null")
    return text + "cache: {max_entriez: 1}\n" if broken else text


async def ask(host: str, port: int, name: str) -> dns.message.Message:
    query = dns.message.make_query(name, "A")
    return await dns.asyncquery.udp(query, host, port=port, timeout=3)


@asynccontextmanager
async def running_app(path: Path) -> AsyncIterator[tuple[App, int]]:
    app = App(load_config(path))
    bound = await app.start()
    try:
        await asyncio.wait_for(app.lists.ready.wait(), timeout=LISTS_TIMEOUT)
        yield app, bound[0].port
    finally:
        await app.stop()


async def test_twenty_reloads_under_load_answer_every_query(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the explicit reloads below: the file watch would try some of the same files too.
    monkeypatch.setattr(app_watch, "CONFIG_POLL", 3600.0)
    async with FakeUpstream(RECORDS) as upstream:
        path = tmp_path / "config.yaml"
        path.write_text(config_text(upstream, tmp_path, "site0.example"))
        async with running_app(path) as (app, port):
            answered = 0
            stop = asyncio.Event()

            async def client() -> None:
                nonlocal answered
                while not stop.is_set():
                    reply = await ask("127.0.0.1", port, "example.com")
                    assert addresses(reply) == ["93.184.216.34"]
                    answered += 1

            load = asyncio.create_task(client())
            for i in range(1, 21):
                valid = i % 2 == 1
                path.write_text(
                    config_text(upstream, tmp_path, f"site{i}.example", broken=not valid)
                )
                assert await app.reload() is valid
                if valid:
                    now_blocked = await ask("127.0.0.1", port, f"site{i}.example")
                    assert now_blocked.rcode() == dns.rcode.NXDOMAIN
                    before = await ask("127.0.0.1", port, f"site{i - 2 if i > 1 else 0}.example")
                    assert before.rcode() == dns.rcode.NOERROR or i == 1
                else:  # the previous policy stays in force
                    still = await ask("127.0.0.1", port, f"site{i - 1}.example")
                    assert still.rcode() == dns.rcode.NXDOMAIN
            stop.set()
            await load
        assert (app.reloads, app.rejected_reloads) == (10, 10)
        assert answered > 20
        assert upstream.queries.count(("example.com", "A")) == 1  # the cache survived every reload


async def test_a_reload_applies_new_cache_settings_to_answers_already_cached(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    async with FakeUpstream(RECORDS) as upstream:  # answers with TTL 300
        path = tmp_path / "config.yaml"
        text = config_text(upstream, tmp_path, "site0.example")
        path.write_text(text + "cache: {max_entries: 100, serve_stale: 1d}\n")
        app = App(load_config(path), clock=clock)
        port = (await app.start())[0].port
        try:
            for i in (1, 2, 3):
                await ask("127.0.0.1", port, f"site{i}.example")
            path.write_text(text + "cache: {max_entries: 2, serve_stale: 0s}\n")
            assert await app.reload()
            for i in (2, 3, 1):  # site1 was the least recently used of three: evicted
                await ask("127.0.0.1", port, f"site{i}.example")
            clock.now += 400  # every answer expired
            upstream.rcode = dns.rcode.SERVFAIL
            reply = await ask("127.0.0.1", port, "site3.example")
        finally:
            await app.stop()
    asked = [upstream.queries.count((f"site{i}.example", "A")) for i in (1, 2, 3)]
    assert asked == [2, 1, 2]
    assert reply.rcode() == dns.rcode.SERVFAIL  # no stale answer any more


async def test_an_edited_file_is_picked_up_by_itself(tmp_path: Path) -> None:
    async with FakeUpstream(RECORDS) as upstream:
        path = tmp_path / "config.yaml"
        path.write_text(config_text(upstream, tmp_path, "site0.example"))
        async with running_app(path) as (app, port):
            assert addresses(await ask("127.0.0.1", port, "site5.example")) == ["198.51.100.5"]
            # One more name blocked: protection only grows, so the file watch applies it.
            path.write_text(config_text(upstream, tmp_path, "site0.example, site5.example"))
            await asyncio.wait_for(app.wait_for_reloads(1), timeout=10)
            reply = await ask("127.0.0.1", port, "site5.example")
    assert reply.rcode() == dns.rcode.NXDOMAIN


async def test_a_listen_change_is_reported_as_needing_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeUpstream(RECORDS) as upstream:
        path = tmp_path / "config.yaml"
        path.write_text(config_text(upstream, tmp_path, "site0.example"))
        async with running_app(path) as (app, _port):
            path.write_text(
                config_text(upstream, tmp_path, "site0.example").replace(
                    '"127.0.0.1:0"', '"127.0.0.1:0", "[::1]:0"'
                )
            )
            assert await app.reload()
    assert "restart filterdns to listen there" in caplog.text


async def test_sighup_reloads_the_running_server(tmp_path: Path) -> None:
    async with FakeUpstream(RECORDS) as upstream:
        path = tmp_path / "config.yaml"
        path.write_text(config_text(upstream, tmp_path, "site0.example"))
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "filterdns", "serve", "-c", str(path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert process.stderr is not None
        try:
            while True:
                line = (await asyncio.wait_for(process.stderr.readline(), 20)).decode()
                assert line, "filterdns exited before listening"
                match = LISTENING.search(line)
                if match:
                    port = int(match.group(1))
                    break
            assert addresses(await ask("127.0.0.1", port, "site7.example")) == ["198.51.100.7"]
            text = config_text(upstream, tmp_path, "site7.example")
            path.write_text(text.replace("lists:", "# reload by signal\nlists:"))
            process.send_signal(1)  # SIGHUP
            while "reloaded" not in line:
                line = (await asyncio.wait_for(process.stderr.readline(), 20)).decode()
                assert line, "filterdns exited instead of reloading"
            reply = await ask("127.0.0.1", port, "site7.example")
        finally:
            process.terminate()
            await asyncio.wait_for(process.wait(), 15)
    assert reply.rcode() == dns.rcode.NXDOMAIN


async def test_a_reload_opens_and_closes_the_web_app(tmp_path: Path) -> None:
    async with FakeUpstream(RECORDS) as upstream:
        path = tmp_path / "config.yaml"
        text = config_text(upstream, tmp_path, "site0.example")
        path.write_text(text)
        async with running_app(path) as (app, _port):
            assert app.web_address is None
            path.write_text(text + 'web: {listen: "127.0.0.1:0"}\n')
            assert await app.reload()
            where = app.web_address
            assert where is not None
            reader, writer = await asyncio.open_connection(where.host, where.port)
            writer.write(b"GET /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert (await reader.read()).startswith(b"HTTP/1.1 200")
            writer.close()
            path.write_text(text)
            assert await app.reload()
            assert app.web_address is None
            with pytest.raises(OSError):
                await asyncio.open_connection(where.host, where.port)
