"""`filterdns tail` on a PostgreSQL log two instances write, run as the command line: the rows of
both with their instance, one instance's with `--instance`, a row committed late shown once, and
a database restarted under it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from filterdns.cli.main import main
from filterdns.querylog import pgschema
from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import running_proxy
from tests.integration.postgres import PgServer
from tests.integration.test_pg_log import blocked, proxy_config, written

WAIT = 20.0  # seconds a line may take to come (a loaded machine)


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream({("example.com", "A"): ["93.184.216.34"]}) as fake:
        yield fake


class Tail:
    """`filterdns -c CONFIG tail --json ...` running, its JSON lines read as they come."""

    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self.process = process
        self.url = url
        self.rows: list[dict[str, object]] = []
        self.probes = 0

    async def line(self) -> dict[str, object]:
        assert self.process.stdout is not None
        async with asyncio.timeout(WAIT):
            text = await self.process.stdout.readline()
        assert text, "tail ended"
        found: dict[str, object] = json.loads(text)
        self.rows.append(found)
        return found

    async def until(self, name: str) -> None:
        """Read lines until one for `name` came."""
        while not any(r["name"] == name for r in self.rows):
            await self.line()

    async def following(self, instance: str) -> None:
        """Once tail has read the database: a probe row of `instance` every 0.2 s until one
        shows (rows committed before tail read the database first are not shown)."""
        assert self.process.stdout is not None
        while not any(str(r["name"]).startswith("probe") for r in self.rows):
            self.probes += 1
            insert(self.url, instance, f"probe{self.probes}.example", time.time())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.2):
                    self.rows.append(json.loads(await self.process.stdout.readline()))

    def shown(self) -> list[tuple[object, object]]:
        """(name, instance) of the rows shown, probes left out."""
        return [
            (r["name"], r["instance"]) for r in self.rows if not str(r["name"]).startswith("probe")
        ]


@contextlib.asynccontextmanager
async def tailing(config: Path, url: str, *options: str) -> AsyncIterator[Tail]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "filterdns", "-c", str(config), "tail", "--json", *options,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        yield Tail(process, url)
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


def insert(url: str, instance: str, name: str, ts: float) -> None:
    """A blocked lookup written as an instance's writer writes it (into yesterday's partition
    when `ts` is from before midnight: the servers made today's and tomorrow's)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(pgschema.create_partition(pgschema.day_of(ts)))  # type: ignore[arg-type]
        conn.execute(
            "INSERT INTO queries (instance, ts, client, profile, name, qtype, kind, reason)"
            " VALUES (%s, %s, '10.1.2.3', 'minh', %s, 'A', 'blocked', 'late batch')",
            (instance, ts, name),
        )


async def test_tail_shows_every_instance_or_the_one_asked_for(
    upstream: FakeUpstream, url: str, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(proxy_config(upstream, url, "a"))
    async with (
        running_proxy(proxy_config(upstream, url, "a")) as a,
        running_proxy(proxy_config(upstream, url, "b")) as b,
        tailing(config, url) as every,
        tailing(config, url, "--instance", "b") as only_b,
    ):
        await every.following("a")
        await only_b.following("b")
        await blocked(a, "casino.example")
        await written(a.app.querylog, 1)
        await blocked(b, "poker.example")
        await written(b.app.querylog, 1)
        await every.until("poker.example")
        # a's next batch commits after b's row was shown, its lookup 20 s older
        insert(url, "a", "late.example", time.time() - 20)
        await blocked(b, "casino.example")
        await written(b.app.querylog, 2)
        await every.until("late.example")
        await only_b.until("casino.example")
        insert(url, "b", "last.example", time.time())  # every row before it was read again
        await every.until("last.example")
        await only_b.until("last.example")

    shown = every.shown()
    assert sorted(shown, key=str) == sorted(
        [("casino.example", "a"), ("poker.example", "b"), ("late.example", "a"),
         ("casino.example", "b"), ("last.example", "b")], key=str,
    )  # fmt: skip
    assert shown[-1] == ("last.example", "b")
    assert only_b.shown() == [("poker.example", "b"), ("casino.example", "b"),
                              ("last.example", "b")]  # fmt: skip
    first = next(r for r in every.rows if r["name"] == "poker.example")
    assert (first["profile"], first["client"], first["category"]) == ("minh", "127.0.0.1", None)


async def test_tail_says_when_the_database_goes_away_and_goes_on(
    upstream: FakeUpstream, server: PgServer, url: str, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(proxy_config(upstream, url, "a"))
    async with running_proxy(proxy_config(upstream, url, "a")), tailing(config, url) as tail:
        await tail.following("a")
        await asyncio.to_thread(server.stop)
        try:
            assert tail.process.stderr is not None
            async with asyncio.timeout(WAIT):
                said = (await tail.process.stderr.readline()).decode()
            assert said.startswith(f"lost the log database {url}: ")
        finally:
            await asyncio.to_thread(server.start)
        insert(url, "b", "after.example", time.time())
        await tail.until("after.example")
        async with asyncio.timeout(WAIT):
            said = (await tail.process.stderr.readline()).decode()
        assert said == f"reading the log database {url} again\n"
    assert tail.shown() == [("after.example", "b")]


@pytest.mark.parametrize(
    ("options", "code", "message"),
    [
        pytest.param(["--instance", "a"], 1, "an instance filter needs the query log on Postgre",
                     id="an instance on the sqlite log"),
        pytest.param(["--instance", "no such"], 2, '--instance: "no such" is not an instance name',
                     id="not an instance name"),
    ],
)  # fmt: skip
def test_tail_instance_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], code: int, message: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"log: {{database: {tmp_path / 'filterdns.db'}}}\n")
    assert main(["-c", str(config), "tail", *options]) == code
    assert message in capsys.readouterr().out.replace("\n", "")
