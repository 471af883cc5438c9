"""A log database that is no database (junk, another program's file): `filterdns serve` moves it
aside and starts a fresh one, at start and while running, and `report` shows the event."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.rcode

from tests.fakes.upstream import FakeUpstream
from tests.integration.processes import open_directory, run_cli, start_serve, stop, until

RECORDS = {("casino.example", "A"): ["203.0.113.66"]}  # what it is when not blocked
JUNK = b"\x00\xff not a database, whatever wrote it \xfe\x01" * 500


@contextlib.contextmanager
def installation(upstream: str) -> Iterator[tuple[Path, Path]]:
    """The configuration file and the database path of a server blocking casino.example."""
    with open_directory() as base:
        (base / "gambling.txt").write_text("casino.example\n")
        database = base / "state" / "filterdns.db"
        config = base / "config.yaml"
        config.write_text(
            f'server:\n  listen: ["127.0.0.1:0"]\n  rate_limit: null\n'
            f'upstreams:\n  servers: ["{upstream}"]\n  timeout: 1s\n'
            f"lists: {{download_defaults: false, cache_dir: {base / 'state' / 'lists'}}}\n"
            f"log: {{database: {database}}}\n"
            f"categories: {{gambling: [{base / 'gambling.txt'}]}}\n"
            "profiles: {kid: {age_band: 16-17}}\ndefault_profile: kid\n"
        )
        yield config, database


def moved_aside(database: Path) -> list[Path]:
    return sorted(
        p
        for p in database.parent.glob(f"{database.name}.corrupt-*")
        if not p.name.endswith(("-wal", "-shm"))
    )


async def blocked(port: int) -> None:
    """casino.example answered NXDOMAIN (once the configured lists serve)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    query = dns.message.make_query("casino.example", "A")
    while (await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=5)).rcode() != (
        dns.rcode.NXDOMAIN
    ):
        assert loop.time() < deadline, "casino.example is never blocked"
        await asyncio.sleep(0.05)


async def report(config: Path) -> dict[str, object]:
    done = await run_cli("-c", str(config), "report", "--json", "--since", "1h")
    assert done.code == 0, done
    data: dict[str, object] = json.loads(done.out)
    return data


def events(data: dict[str, object]) -> list[str]:
    alerts = data["alerts"]
    assert isinstance(alerts, list)
    return [a["message"] for a in alerts if a["rule"] == "query log"]


async def logged_blocks(config: Path, at_least: int) -> dict[str, object]:
    """The report once it counts `at_least` blocked lookups (the writer batches for 1 s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        data = await report(config)
        if int(str(data["blocked_total"])) >= at_least or loop.time() > deadline:
            return data
        await asyncio.sleep(0.1)


async def test_junk_found_at_start_is_moved_aside_and_reported() -> None:
    async with FakeUpstream(RECORDS) as upstream:
        with installation(upstream.address) as (config, database):
            database.parent.mkdir()
            database.write_bytes(JUNK)
            before = await run_cli("-c", str(config), "report", "--json")
            process, port, seen = await start_serve(config)
            try:
                await blocked(port)
                data = await logged_blocks(config, 1)
            finally:
                log = "".join(seen) + await stop(process)
            [moved] = moved_aside(database)
            kept = moved.read_bytes()
    assert before.code == 1
    [line] = before.out.splitlines()
    assert "is not a usable filterdns database (file is not a database)" in line
    assert kept == JUNK  # nothing of it lost: whoever wants it finds it there
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and str(database) in errors[0] and str(moved) in errors[0]
    assert data["blocked_total"] == 1
    [event] = events(data)
    assert str(moved) in event
    assert "Traceback" not in log


async def test_junk_written_over_it_while_running_is_replaced_within_seconds() -> None:
    async with FakeUpstream(RECORDS) as upstream:
        with installation(upstream.address) as (config, database):
            process, port, seen = await start_serve(config)
            try:
                await blocked(port)
                await logged_blocks(config, 1)
                with database.open("r+b") as out:  # after a checkpoint, junk over the file
                    out.write(JUNK)
                took = await until(lambda: bool(moved_aside(database)), "moved aside", 5.0)
                await blocked(port)
                data = await logged_blocks(config, 1)
            finally:
                log = "".join(seen) + await stop(process)
            with contextlib.closing(sqlite3.connect(moved_aside(database)[0])) as old:
                try:
                    old.execute("SELECT count(*) FROM queries").fetchone()
                    readable = True
                except sqlite3.DatabaseError:
                    readable = False
    assert not readable  # it was junk indeed
    assert took < 2.0  # noticed by the server's look at the file, four times a second
    assert data["blocked_total"] >= 1  # logging carries on in the fresh database
    assert len(events(data)) == 1
    assert "creating it again" not in log and "Traceback" not in log


async def test_another_programs_database_is_moved_aside_not_written_into() -> None:
    async with FakeUpstream(RECORDS) as upstream:
        with installation(upstream.address) as (config, database):
            database.parent.mkdir()
            with contextlib.closing(sqlite3.connect(database)) as db:
                db.execute("CREATE TABLE photos (name TEXT)")
                db.execute("INSERT INTO photos VALUES ('beach.jpg')")
                db.commit()
            process, port, _ = await start_serve(config)
            try:
                await blocked(port)
                data = await logged_blocks(config, 1)
            finally:
                await stop(process)
            [moved] = moved_aside(database)
            with contextlib.closing(sqlite3.connect(moved)) as db:
                tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master")]
    assert tables == ["photos"]  # untouched: no log rows were written into it
    [event] = events(data)
    assert "another program's database, with tables photos" in event
