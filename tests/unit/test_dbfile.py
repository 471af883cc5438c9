"""The database file: schema versions and migrations, and what is no filterdns database."""

from __future__ import annotations

import contextlib
import sqlite3
import stat
from pathlib import Path

import pytest

from filterdns.querylog import dbfile
from filterdns.querylog.dbfile import DamagedError, SchemaError
from filterdns.querylog.schema import SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_VERSION

NOW = 1_800_000_000.0


def tables(path: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def version(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return str(db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])


def schema_1(path: Path, *, with_version: bool = True) -> None:
    """A database as filterdns 0.1 left it, with one logged lookup."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(";\n".join(SCHEMA_V1))
        if with_version:
            db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        db.execute(
            "INSERT INTO queries (ts, client, name, qtype, kind) VALUES (1, 'c', 'x.example', 'A',"
            " 'blocked')"
        )
        db.commit()


def test_a_fresh_database_is_created_private_with_the_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "state" / "filterdns.db"
    assert dbfile.prepare(path, now=NOW, repair=False) is None
    assert version(path) == str(SCHEMA_VERSION) == "7"
    assert {"meta", "queries", "drops", "alerts", "grants", "budget_usage"} <= tables(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.mark.parametrize("with_version", [True, False], ids=["version-1", "no-version-row"])
def test_schema_1_is_migrated_keeping_its_rows(tmp_path: Path, with_version: bool) -> None:
    path = tmp_path / "filterdns.db"
    schema_1(path, with_version=with_version)
    assert dbfile.prepare(path, now=NOW, repair=False) is None
    assert version(path) == "7"
    assert "grants" in tables(path)
    with contextlib.closing(sqlite3.connect(path)) as db:
        # The old row stands for one lookup, as it did.
        assert db.execute("SELECT name, hits FROM queries").fetchall() == [("x.example", 1)]
    assert dbfile.prepare(path, now=NOW, repair=False) is None  # twice: nothing more to do


def test_a_reader_counts_the_rows_of_a_file_no_server_migrated_as_one_lookup_each(
    tmp_path: Path,
) -> None:
    path = tmp_path / "filterdns.db"
    schema_1(path)
    before = path.read_bytes()
    reader = dbfile.open_reader(path)
    try:
        assert reader.execute("SELECT name, SUM(hits) FROM queries").fetchall() == [
            ("x.example", 1)
        ]
    finally:
        reader.close()
    assert path.read_bytes() == before  # read as it is: the file is not migrated
    assert version(path) == "1"


def test_migrating_twice_at_once_is_safe(tmp_path: Path) -> None:
    path = tmp_path / "filterdns.db"
    schema_1(path)
    first = sqlite3.connect(path, isolation_level=None)
    second = sqlite3.connect(path, isolation_level=None)
    dbfile._migrate(first, path)
    dbfile._migrate(second, path)  # reads the version again under the lock: a no-op
    first.close()
    second.close()
    assert version(path) == "7"


def test_a_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "filterdns.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('schema_version', '99')")
        db.execute("CREATE TABLE budgets (x)")
        db.commit()
    before = path.read_bytes()
    for repair in (False, True):
        with pytest.raises(SchemaError, match="schema version 99, newer than this filterdns"):
            dbfile.prepare(path, now=NOW, repair=repair)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob("*.corrupt-*"))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"hello", "file is not a database"),
        (b"\x00" * 4096 + b"junk", "file is not a database"),
        (b"SQLite format 3\x00" + b"\xff" * 8000, "file is not a database"),
    ],
    ids=["text", "zeros", "fake-header"],
)
def test_junk_is_damaged(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "filterdns.db"
    path.write_bytes(content)
    with pytest.raises(DamagedError, match=reason) as raised:
        dbfile.prepare(path, now=NOW, repair=False)
    assert raised.value.reason == reason
    assert path.read_bytes() == content
    with pytest.raises(DamagedError):
        dbfile.open_reader(path)


def test_another_programs_database_is_damaged_for_filterdns(tmp_path: Path) -> None:
    path = tmp_path / "filterdns.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE meta (name TEXT)")  # a meta table, but not ours
        db.execute("CREATE TABLE notes (text TEXT)")
        db.commit()
    with pytest.raises(DamagedError, match="another program's database, with tables meta, notes"):
        dbfile.prepare(path, now=NOW, repair=False)


def test_an_empty_file_is_a_fresh_database(tmp_path: Path) -> None:
    path = tmp_path / "filterdns.db"
    path.write_bytes(b"")
    assert dbfile.prepare(path, now=NOW, repair=True) is None
    assert version(path) == "7"


def test_repair_moves_the_file_and_its_companions_aside(tmp_path: Path) -> None:
    path = tmp_path / "filterdns.db"
    path.write_bytes(b"junk" * 100)
    Path(f"{path}-wal").write_bytes(b"wal")
    Path(f"{path}-shm").write_bytes(b"shm")
    (tmp_path / "filterdns.db.corrupt-20270115T080000Z").write_bytes(b"an earlier one")
    replaced = dbfile.prepare(path, now=1_800_000_000.0, repair=True)
    assert replaced is not None
    assert replaced.moved_to.name == "filterdns.db.corrupt-20270115T080000Z-1"
    assert replaced.moved_to.read_bytes() == b"junk" * 100
    assert Path(f"{replaced.moved_to}-wal").read_bytes() == b"wal"
    assert version(path) == "7"
    assert stat.S_IMODE(replaced.moved_to.stat().st_mode) == 0o600


def test_the_reader_says_when_there_is_no_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        dbfile.open_reader(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()


def test_schema_3_gains_budget_usage_keeping_its_grants(tmp_path: Path) -> None:
    path = tmp_path / "filterdns.db"
    schema_1(path)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        for statement in (*SCHEMA_V2, *SCHEMA_V3):
            db.execute(statement)
        db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
        db.execute(
            "INSERT INTO grants (profile, domain, reason, created_at, expires_at, kind)"
            " VALUES ('minh', 'x.example', '', 1, 2, 'allow-domain')"
        )
    assert dbfile.prepare(path, now=NOW, repair=False) is None
    assert version(path) == str(SCHEMA_VERSION)
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT domain, minutes FROM grants").fetchall() == [("x.example", 0)]
        assert db.execute("SELECT * FROM budget_usage").fetchall() == []
        assert db.execute("SELECT * FROM web_accounts").fetchall() == []
        assert db.execute("SELECT * FROM access_requests").fetchall() == []
