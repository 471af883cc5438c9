"""The query log on real SQLite files: batching, drops, shutdown, retention, migration, faults."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import sqlite3
import stat
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from filterdns.config import LogConfig
from filterdns.errors import FilterDnsError
from filterdns.querylog import dbfile, logfile, retention, schema
from filterdns.querylog.logfile import LogFile
from filterdns.querylog.rows import ROWS_PER_INSERT
from filterdns.querylog.store import LogRecord, LogStats, QueryLog, open_reader

NOW = 1_700_000_000.0
DAY = 86400.0


def record(i: int = 0, *, ts: float = NOW, client: str = "192.0.2.10") -> LogRecord:
    return LogRecord(
        ts=ts,
        client=client,
        client_name="minh-tablet",
        profile="minh",
        name=f"casino{i}.example",
        qtype="A",
        kind="blocked",
        category="gambling",
        rule="age band 9-12",
        reason="gambling for profile minh",
        source="shipped:gambling.txt",
        response="nxdomain",
    )


def query_log(config: LogConfig, **options: Any) -> QueryLog:
    """A log whose clock stands at NOW, so retention never touches the rows of a test."""
    options.setdefault("clock", lambda: NOW)
    return QueryLog(config, **options)


def rows(path: Path, sql: str) -> list[Any]:
    with contextlib.closing(open_reader(path)) as db:
        return db.execute(sql).fetchall()


@contextlib.asynccontextmanager
async def running(log: QueryLog) -> AsyncIterator[QueryLog]:
    await log.start()
    try:
        yield log
    finally:
        await log.close()


async def until(log: QueryLog, predicate: Callable[[LogStats], bool]) -> None:
    async with asyncio.timeout(5):
        await log.wait_until(predicate)


def store_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "filterdns.querylog.store" and r.levelno >= logging.ERROR
    ]


async def test_a_burst_of_10000_lookups_is_stored_in_full(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = query_log(LogConfig(database=path), queue_size=20_000)
    async with running(log):
        assert all(log.put(record(i)) for i in range(10_000))
        async with asyncio.timeout(10):
            await log.wait_written(10_000)
    assert log.stats.written == 10_000
    assert log.stats.dropped == 0
    assert rows(path, "SELECT count(*), count(DISTINCT name) FROM queries") == [(10_000, 10_000)]
    assert rows(path, "SELECT value FROM meta WHERE key = 'schema_version'") == [
        (str(schema.SCHEMA_VERSION),)
    ]
    assert rows(path, "PRAGMA journal_mode") == [("wal",)]
    assert rows(path, "SELECT * FROM queries WHERE id = 1") == [
        (
            1,
            NOW,
            "192.0.2.10",
            "minh-tablet",
            "minh",
            "casino0.example",
            "A",
            "blocked",
            "gambling",
            "age band 9-12",
            "gambling for profile minh",
            "shipped:gambling.txt",
            "nxdomain",
            1,
        )
    ]
    assert rows(path, "SELECT count(*) FROM drops") == [(0,)]


@pytest.mark.parametrize(
    "count",
    [
        pytest.param(1, id="one-row"),
        pytest.param(ROWS_PER_INSERT - 1, id="one-short-of-a-statement"),
        pytest.param(ROWS_PER_INSERT, id="one-statement"),
        pytest.param(ROWS_PER_INSERT + 1, id="a-statement-and-one"),
        pytest.param(3 * ROWS_PER_INSERT + 17, id="three-statements-and-a-rest"),
    ],
)
async def test_a_batch_of_any_size_is_stored_whole_in_order(tmp_path: Path, count: int) -> None:
    path = tmp_path / "log.db"
    log = query_log(LogConfig(database=path), batch_size=500, flush_interval=60.0)
    async with running(log):  # close() writes the batch: one transaction of `count` rows
        assert all(log.put(record(i, ts=NOW + i)) for i in range(count))

    stored = rows(path, "SELECT ts, name, reason, response FROM queries ORDER BY id")
    assert stored == [
        (NOW + i, f"casino{i}.example", "gambling for profile minh", "nxdomain")
        for i in range(count)
    ]


async def test_a_full_queue_drops_without_blocking_and_records_the_drops(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = query_log(LogConfig(database=path), queue_size=10)
    # The writer is not running yet: the queue fills up and put() refuses the rest at once.
    results = [log.put(record(i)) for i in range(15)]
    assert results == [True] * 10 + [False] * 5
    assert log.stats.dropped == 5
    async with running(log):
        pass
    assert log.stats.written == 10
    assert rows(path, "SELECT count(*) FROM queries") == [(10,)]
    assert rows(path, "SELECT ts, count, reason FROM drops") == [(NOW, 5, "queue full")]
    assert log.put(record()) is False  # closed: refused, never raised


async def test_close_flushes_queued_rows_before_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = query_log(LogConfig(database=path), flush_interval=60.0)
    started = time.monotonic()
    async with running(log):
        for i in range(3):
            assert log.put(record(i))
        await asyncio.sleep(0)  # the writer takes the first row and waits for more
    assert time.monotonic() - started < 5
    assert rows(path, "SELECT name FROM queries ORDER BY id") == [
        ("casino0.example",),
        ("casino1.example",),
        ("casino2.example",),
    ]


async def test_anonymized_clients_are_stored_as_a_keyed_hash(tmp_path: Path) -> None:
    path = tmp_path / "state" / "log.db"
    config = LogConfig(database=path, anonymize_clients=True)
    log = query_log(config)
    async with running(log):
        log.put(record(1, client="192.0.2.7"))
        log.put(record(2, client="192.0.2.7"))
        log.put(record(3, client="2001:db8::8"))
    key_file = path.parent / "client-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_bytes()
    assert len(key) == 32
    stored = [c for (c,) in rows(path, "SELECT client FROM queries ORDER BY id")]
    assert stored[0] == stored[1] != stored[2]
    assert stored[0] == hmac.new(key, b"192.0.2.7", hashlib.sha256).hexdigest()[:16]
    assert all(len(c) == 16 and "192.0.2" not in c and "2001" not in c for c in stored)
    # The next run reads the same key; an explicit key is used as given.
    again = query_log(config)
    async with running(again):
        assert again.anonymize("192.0.2.7") == stored[0]
    assert (
        query_log(config, key=b"k" * 32).anonymize("192.0.2.7")
        == (hmac.new(b"k" * 32, b"192.0.2.7", hashlib.sha256).hexdigest()[:16])
    )


async def test_retention_prunes_old_rows_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "PRUNE_BATCH", 100)
    path = tmp_path / "log.db"
    config = LogConfig(database=path, retention=DAY)
    log = query_log(config, queue_size=1000, flush_interval=0.01)
    async with running(log):
        for i in range(250):
            log.put(record(i, ts=NOW - 2 * DAY))
        for i in range(5):
            log.put(record(1000 + i, ts=NOW - 60))
        async with asyncio.timeout(5):
            await log.wait_written(255)
        alert: dict[str, Any] = {
            "rule": "gambling",
            "profile": "minh",
            "categories": "gambling",
            "count": 3,
            "window": 600.0,
            "message": "3 blocked gambling lookups for minh within 10 minutes",
            "delivered": True,
            "error": None,
        }
        await log.put_alert(ts=NOW - 3 * DAY, **alert)
        await log.put_alert(ts=NOW - 10, **alert)
        await log.prune()
        assert log.stats.pruned == 251  # 250 lookups (three statements) and one alert
    assert rows(path, "SELECT count(*), min(ts) FROM queries") == [(5, NOW - 60)]
    assert rows(path, "SELECT ts, rule, profile, delivered, error FROM alerts") == [
        (NOW - 10, "gambling", "minh", 1, None)
    ]


async def test_a_fresh_database_gets_the_current_schema_privately(tmp_path: Path) -> None:
    path = tmp_path / "new" / "log.db"
    async with running(query_log(LogConfig(database=path))):
        pass
    assert rows(path, "SELECT key, value FROM meta") == [
        ("schema_version", str(schema.SCHEMA_VERSION))
    ]
    tables = {name for (name,) in rows(path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {
        "meta",
        "queries",
        "drops",
        "alerts",
        "grants",
        "sqlite_sequence",
        "budget_usage",
        "web_accounts",
        "web_tokens",
        "web_sessions",
        "changes",
        "access_requests",
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


async def test_a_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('schema_version', '99')")
        db.execute("CREATE TABLE future (x)")
        db.commit()
    before = path.read_bytes()
    log = query_log(LogConfig(database=path))
    with pytest.raises(FilterDnsError, match=r"schema version 99, newer than this filterdns"):
        await log.start()
    await log.close()
    assert path.read_bytes() == before
    with pytest.raises(FilterDnsError, match="schema version 99"):
        open_reader(path)


def test_the_reader_explains_a_missing_database(tmp_path: Path) -> None:
    with pytest.raises(FilterDnsError, match="no query log at"):
        open_reader(tmp_path / "missing.db")


async def test_an_unusable_path_drops_rows_logs_once_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="filterdns.querylog.store")
    blocker = tmp_path / "state"
    blocker.write_text("a file where the database directory should be")
    path = blocker / "log.db"
    log = query_log(LogConfig(database=path), flush_interval=0.01, retry_interval=0.0)
    async with running(log):
        assert log.stats.errors == 1
        for i in range(3):
            assert log.put(record(i))
            await until(log, lambda s, n=i + 1: s.dropped >= n)
        assert log.stats.errors >= 3
        assert log.stats.written == 0
        assert len(store_errors(caplog)) == 1
        blocker.unlink()  # the fault clears: the directory can be created
        assert log.put(record(9))
        async with asyncio.timeout(5):
            await log.wait_written(1)
    assert rows(path, "SELECT name FROM queries") == [("casino9.example",)]
    [(count, reason)] = rows(path, "SELECT sum(count), min(reason) FROM drops")
    assert count == 3
    assert reason.startswith("database error: ")


async def test_a_locked_database_drops_rows_and_resumes_when_released(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logfile, "BUSY_TIMEOUT_MS", 50)
    caplog.set_level(logging.DEBUG, logger="filterdns.querylog.store")
    path = tmp_path / "log.db"
    log = query_log(LogConfig(database=path), flush_interval=0.01, retry_interval=0.0)
    async with running(log):
        log.put(record(0))
        async with asyncio.timeout(5):
            await log.wait_written(1)
        locker = sqlite3.connect(path, isolation_level=None)
        try:
            locker.execute("BEGIN EXCLUSIVE")
            for i in range(2):
                assert log.put(record(1 + i))
                await until(log, lambda s, n=i + 1: s.dropped >= n)
            errors = store_errors(caplog)
            assert len(errors) == 1
            assert "database is locked" in errors[0].getMessage()
            locker.execute("COMMIT")
        finally:
            locker.close()
        log.put(record(3))
        async with asyncio.timeout(5):
            await log.wait_written(2)
    assert rows(path, "SELECT name FROM queries ORDER BY id") == [
        ("casino0.example",),
        ("casino3.example",),
    ]
    assert rows(path, "SELECT sum(count), reason FROM drops GROUP BY reason") == [
        (2, "database error: database is locked")
    ]


async def test_a_database_deleted_while_running_is_created_again(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = query_log(LogConfig(database=path), flush_interval=0.01)
    async with running(log):
        for i in range(5):
            log.put(record(i))
        async with asyncio.timeout(5):
            await log.wait_written(5)
        path.unlink()
        for i in range(3):
            log.put(record(10 + i))
        async with asyncio.timeout(5):
            await log.wait_written(8)
    assert log.stats.dropped == 0
    assert rows(path, "SELECT count(*) FROM queries") == [(3,)]
    assert rows(path, "SELECT value FROM meta WHERE key = 'schema_version'") == [
        (str(schema.SCHEMA_VERSION),)
    ]


async def test_a_full_disk_drops_rows_logs_once_and_resumes_when_space_returns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite's own "disk full" (SQLITE_FULL), through a page limit on every connection the log
    # opens while the disk is "full": the same error path as a file system with no space left.
    caplog.set_level(logging.DEBUG, logger="filterdns.querylog.store")
    full = True
    opening = LogFile.open

    async def open_on_a_full_disk(self: LogFile) -> Any:
        conn = await opening(self)
        if full:
            async with conn.execute("PRAGMA page_count") as cursor:
                (pages,) = await cursor.fetchone()
            await conn.execute(f"PRAGMA max_page_count = {pages}")
        return conn

    monkeypatch.setattr(LogFile, "open", open_on_a_full_disk)
    path = tmp_path / "log.db"
    log = query_log(LogConfig(database=path), flush_interval=0.01, retry_interval=0.0)
    async with running(log):
        for i in range(300):  # more than the free room of the pages already there
            assert log.put(record(i))
        await until(log, lambda s: s.dropped >= 300)
        errors = store_errors(caplog)
        assert len(errors) == 1
        assert "full" in errors[0].getMessage()
        full = False
        log.put(record(1000))
        async with asyncio.timeout(5):
            await log.wait_written(1)
    assert rows(path, "SELECT name FROM queries") == [("casino1000.example",)]
    [(count,)] = rows(path, "SELECT sum(count) FROM drops")
    assert count == 300


# A file that is no filterdns database: moved aside, a fresh one started, the event recorded.

JUNK = b"these bytes were never a database\n" * 300


def corrupt_files(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if ".corrupt-" in p.name)


def replacement_events(path: Path) -> list[tuple[str, str, int]]:
    sql = "SELECT rule, message, count FROM alerts WHERE rule = 'query log'"
    return [(rule, message, count) for rule, message, count in rows(path, sql)]


async def overwrite(path: Path, offset: int, data: bytes, *, truncate: bool = False) -> None:
    """Write `data` into the file at `offset` from another process, as a stray program would.

    Not from this one: closing a descriptor of the file here would drop the locks the log's
    own connection holds on it.
    """
    script = (
        "import sys; f = open(sys.argv[1], 'r+b'); f.seek(int(sys.argv[2]));"
        " f.write(sys.stdin.buffer.read()); sys.argv[3:] and f.truncate()"
    )
    options = ["truncate"] if truncate else []
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(path), str(offset), *options,
        stdin=asyncio.subprocess.PIPE,
    )  # fmt: skip
    await process.communicate(data)
    assert process.returncode == 0


def foreign_database(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE recipes (name TEXT, steps TEXT)")
        db.execute("INSERT INTO recipes VALUES ('pho', 'simmer the bones')")
        db.commit()


def no_database(path: Path, content: str) -> bytes:
    """Put junk (with a -wal beside it) or another program's database at `path`."""
    if content == "foreign":
        foreign_database(path)
    else:
        path.write_bytes(JUNK)
    if content == "junk-with-wal":
        Path(f"{path}-wal").write_bytes(b"a write-ahead log of another file")
    return path.read_bytes()


@pytest.mark.parametrize("content", ["junk", "foreign", "junk-with-wal"])
async def test_a_file_that_is_no_database_is_moved_aside_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    path = tmp_path / "filterdns.db"
    before = no_database(path, content)
    caplog.set_level(logging.ERROR, logger="filterdns.querylog.store")
    log = query_log(LogConfig(database=path))
    async with running(log):
        assert log.put(record(1))
    [moved] = [name for name in corrupt_files(path) if not name.endswith(("-wal", "-shm"))]
    assert moved == f"filterdns.db.corrupt-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(NOW))}"
    assert (tmp_path / moved).read_bytes() == before  # kept as it was, for whoever wants it
    assert stat.S_IMODE((tmp_path / moved).stat().st_mode) == 0o600
    if content == "junk-with-wal":
        assert (tmp_path / f"{moved}-wal").read_bytes() == b"a write-ahead log of another file"
    assert rows(path, "SELECT name FROM queries") == [("casino1.example",)]
    [(_, message, lost)] = replacement_events(path)
    assert str(tmp_path / moved) in message and str(path) in message and lost == 0
    [error] = store_errors(caplog)
    assert str(path) in error.getMessage() and str(tmp_path / moved) in error.getMessage()


@pytest.mark.parametrize("how", ["overwritten-in-place", "replaced", "emptied"])
async def test_junk_over_the_database_while_running_is_replaced_at_the_next_batch(
    tmp_path: Path, how: str
) -> None:
    path = tmp_path / "filterdns.db"
    log = query_log(LogConfig(database=path), flush_interval=0.01)
    async with running(log):
        for i in range(5):
            log.put(record(i))
        await until(log, lambda s: s.written >= 5)
        async with log._file.lock:  # a checkpoint, then the junk: nothing of the log left in a WAL
            assert log._file.conn is not None
            await log._file.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if how == "replaced":
            junk = tmp_path / "junk"
            junk.write_bytes(JUNK)
            junk.replace(path)
        elif how == "emptied":  # `: > filterdns.db`
            await overwrite(path, 0, b"", truncate=True)
        else:
            await overwrite(path, 0, JUNK)
        for i in range(3):
            log.put(record(10 + i))
        await until(log, lambda s: s.written >= 8)
    assert log.stats.dropped == 0  # the batch was written to the fresh database
    assert rows(path, "SELECT count(*) FROM queries") == [(3,)]
    assert len(replacement_events(path)) == 1
    assert [n for n in corrupt_files(path) if not n.endswith(("-wal", "-shm"))]


async def test_damaged_pages_found_by_a_write_are_checked_and_replaced(tmp_path: Path) -> None:
    path = tmp_path / "filterdns.db"
    log = query_log(LogConfig(database=path), flush_interval=0.01)
    async with running(log):
        for i in range(2000):
            log.put(record(i))
        await until(log, lambda s: s.written >= 2000)
        async with log._file.lock:
            assert log._file.conn is not None
            await log._file.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            await log._file.conn.execute("PRAGMA cache_size = 1")  # the next write reads the disk
        size = path.stat().st_size
        await overwrite(path, 4096, JUNK[: size - 4096])  # the header stays: it looks like SQLite
        log.put(record(5000))
        await until(log, lambda s: s.written >= 2001)
    assert rows(path, "SELECT name FROM queries") == [("casino5000.example",)]
    [(_, message, _)] = replacement_events(path)
    assert "corrupt" in message or "malformed" in message


async def test_rows_lost_before_the_replacement_are_counted_in_the_fresh_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "filterdns.db"
    path.write_bytes(JUNK)
    refusals = 2
    moving = dbfile.move_aside

    def move_aside(target: Path, now: float) -> Path:  # the directory is read-only a while
        nonlocal refusals
        if refusals:
            refusals -= 1
            raise PermissionError(13, "Permission denied", str(target))
        return moving(target, now)

    monkeypatch.setattr(dbfile, "move_aside", move_aside)
    log = query_log(LogConfig(database=path), flush_interval=0.01, retry_interval=0.0)
    async with running(log):
        assert log.stats.errors == 1  # the start could not replace it; the server runs on
        log.put(record(1))
        await until(log, lambda s: s.dropped >= 1)
        log.put(record(2))
        await until(log, lambda s: s.written >= 1)
    assert rows(path, "SELECT name FROM queries") == [("casino2.example",)]
    [(count, reason)] = rows(path, "SELECT sum(count), min(reason) FROM drops")
    assert count == 1 and "Permission denied" in reason
    [(_, message, lost)] = replacement_events(path)
    assert lost == 1 and "moved" in message


def test_the_reader_names_a_file_that_is_no_database(tmp_path: Path) -> None:
    path = tmp_path / "filterdns.db"
    path.write_bytes(JUNK)
    with pytest.raises(FilterDnsError, match=r"is not a usable filterdns database .*moves it"):
        open_reader(path)
    assert path.read_bytes() == JUNK  # readers never move anything
