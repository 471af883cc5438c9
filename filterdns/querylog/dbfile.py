"""The database file of an installation: its schema, migrations and the checks every opener makes.

One SQLite file (`log.database`) holds the blocked-lookup log and the grants. The server
(`store.QueryLog`, `grants.GrantStore`) and the command line (`grant`, `grants`, `revoke`,
`report`, `tail`) all open it through here, so they agree on what the file is:

* missing or empty: a fresh database, given the current schema;
* a filterdns database of an older schema: migrated in one transaction (`BEGIN IMMEDIATE`, the
  version read again under the lock, so two processes never migrate twice);
* of a newer schema (a newer filterdns wrote it): refused untouched, SchemaError, so a downgrade
  never destroys a newer installation's data;
* not a SQLite database (junk bytes), damaged (SQLITE_CORRUPT), or another program's database
  (tables, none of ours): `prepare(repair=True)` (the server) moves it aside as
  `<name>.corrupt-<UTC time>`, with its -wal and -shm files, and creates a fresh one; everyone
  else gets DamagedError, a message saying so.

Files are private: the database is created with mode 0600 before SQLite opens it, and SQLite
gives its -wal and -shm files the database's mode, and its owner when root opens it.

Schema history (`meta.schema_version`):
  1  meta, queries, drops, alerts
  2  grants (they were kept in grants.json beside the database before)
  3  grants.kind (allow-domain, allow-category, pause, block-all; '' on older rows, which
     allow their domain or category) and grants.created_by (who made it)
  4  budget_usage (minutes used of each time budget per profile and day) and grants.minutes
     (the minutes a grant of kind budget adds)
  5  the web app's web_accounts, web_tokens and web_sessions; changes (who changed what, through
     which door); access_requests (a child's requests to unblock a name)
  6  access_requests.instance (the instance a request came from on a shared PostgreSQL log)
  7  queries.hits: the lookups a row stands for (repeats within log.fold_window folded into
     one row; 1 on older rows)
"""

from __future__ import annotations

import contextlib
import os
import pwd
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from filterdns.errors import FilterDnsError
from filterdns.querylog.schema import MIGRATIONS, SCHEMA_VERSION

BUSY_TIMEOUT = 2.0  # seconds a connection waits for another one's lock
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
SIDE_FILES = ("-wal", "-shm")  # SQLite's companions of a database in WAL mode

_DAMAGE_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


class SchemaError(FilterDnsError):
    """The database was written by a newer filterdns (or its version is unreadable)."""


class DamagedError(FilterDnsError):
    """The file is not a filterdns database: junk, damaged, or another program's."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"{path} is not a usable filterdns database ({reason}); filterdns serve moves it "
            f"aside (as {path.name}.corrupt-<time>) and starts a fresh one when it starts or "
            "writes next"
        )


@dataclass(frozen=True, slots=True)
class Replaced:
    """A damaged database moved aside by `prepare`, and why."""

    moved_to: Path
    reason: str


def is_damage(exc: BaseException) -> bool:
    """Whether a SQLite error says the file itself is no database (junk, corrupt pages)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return (
        isinstance(exc, sqlite3.DatabaseError)
        and code is not None
        and code & 0xFF in (_DAMAGE_CODES)
    )


def prepare(
    path: Path,
    *,
    now: float,
    repair: bool,
    suspect: bool = False,
    damaged: str | None = None,
) -> Replaced | None:
    """Make `path` a current filterdns database ready to write: created, checked, migrated.

    A damaged file raises DamagedError, or with `repair` is moved aside and replaced by a fresh
    database (returned as Replaced). `suspect` (a write just failed as corrupt) also runs
    `PRAGMA quick_check`, which reads every page; `damaged` says the caller knows the file is
    (e.g. emptied under an open connection). SchemaError for a newer schema; sqlite3.Error or
    OSError for what the file system refuses.
    """
    path = Path(path)
    _make_directory(path.parent)
    _forget_leftovers(path)
    _create(path)
    try:
        if damaged is not None:
            raise DamagedError(path, damaged)
        _check_and_migrate(path, suspect=suspect)
    except DamagedError as exc:
        if not repair:
            raise
        moved = move_aside(path, now)
        _create(path)
        _check_and_migrate(path, suspect=False)
        make_private(path)
        return Replaced(moved, exc.reason)
    make_private(path)
    return None


def connect(path: Path) -> sqlite3.Connection:
    """A read-write connection (autocommit; BEGIN explicitly) to a database `prepare` made."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def open_reader(path: Path) -> sqlite3.Connection:
    """A read-only connection for report, tail and grants; FileNotFoundError when there is no
    file, FilterDnsError (DamagedError, SchemaError) saying what is wrong otherwise."""
    path = Path(path)
    try:
        if not path.is_file():
            raise FileNotFoundError(str(path))
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    except PermissionError as exc:
        raise FilterDnsError(cannot(path, "read", exc)) from None
    except sqlite3.Error as exc:
        raise FilterDnsError(cannot(path, "read", exc)) from None
    try:
        inspect(conn, path)
        _count_old_rows(conn)
    except FilterDnsError:
        conn.close()
        raise
    except sqlite3.Error as exc:
        conn.close()
        raise FilterDnsError(cannot(path, "read", exc)) from None
    return conn


def _count_old_rows(conn: sqlite3.Connection) -> None:
    """On a file written before schema 7 (no server has migrated it yet), a temporary view
    `queries` with `hits` 1 on every row: the readers' SQL counts `hits` on any file. A
    temporary object comes first in name lookups, and the file itself is not written."""
    columns = {str(row[1]) for row in conn.execute("PRAGMA table_info(queries)")}
    if columns and "hits" not in columns:
        conn.execute(
            f"CREATE TEMP VIEW queries AS SELECT {OLD_COLUMNS}, 1 AS hits FROM main.queries"
        )


# The columns of `queries` before schema 7, named: the view stays valid once the file is
# migrated under a reader that made it.
OLD_COLUMNS = (
    "id, ts, client, client_name, profile, name, qtype, kind, category, rule, reason, source,"
    " response"
)


def inspect(conn: sqlite3.Connection, path: Path) -> int:
    """The schema version of an open database (0: fresh); DamagedError or SchemaError."""
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        tables = {str(name) for (name,) in rows}
        version = _version(conn, path) if "meta" in tables else None
    except sqlite3.DatabaseError as exc:
        if is_damage(exc):
            raise DamagedError(path, str(exc)) from None
        raise
    if version is None:
        foreign = sorted(tables - {"sqlite_sequence"})
        if foreign and "queries" not in tables:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise DamagedError(path, f"another program's database, with tables {shown}")
        return 0
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"{path}: the database has schema version {version}, newer than this filterdns "
            f"understands ({SCHEMA_VERSION}); upgrade filterdns or point log.database at "
            "another file"
        )
    return version


def _version(conn: sqlite3.Connection, path: Path) -> int | None:
    """meta.schema_version; None when the meta table is not ours or holds no version."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.OperationalError:  # a meta table of other columns: another program's
        return None
    if row is None:
        return None
    try:
        return int(row[0])
    except (TypeError, ValueError):
        raise SchemaError(f"{path}: unreadable schema version {row[0]!r} in the database") from None


def probe(path: Path) -> int:
    """The schema version of the file at `path`, read by a read-only connection of its own;
    DamagedError, SchemaError, or sqlite3.Error.

    Read-only on purpose: SQLite in read-write mode takes a -wal file beside junk for its own
    and deletes it on close. And through SQLite, never with open(): closing any other file
    descriptor of the database would drop the locks this process's connections hold on it.
    """
    conn = sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=ro", uri=True)
    try:
        return inspect(conn, path)
    finally:
        conn.close()


def _check_and_migrate(path: Path, *, suspect: bool) -> None:
    probe(path)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
    try:
        version = inspect(conn, path)
        if suspect:
            _quick_check(conn, path)
        conn.execute("PRAGMA journal_mode = WAL")
        if version < SCHEMA_VERSION:
            _migrate(conn, path)
    except sqlite3.DatabaseError as exc:
        if is_damage(exc):
            raise DamagedError(path, str(exc)) from None
        raise
    finally:
        conn.close()


def _quick_check(conn: sqlite3.Connection, path: Path) -> None:
    rows = conn.execute("PRAGMA quick_check(1)").fetchall()
    if rows != [("ok",)]:
        raise DamagedError(path, f"quick_check: {rows[0][0] if rows else 'no answer'}")


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the schema to SCHEMA_VERSION in one transaction (a no-op if someone just did)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = inspect(conn, path)  # again, now that no one else can write
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[step]:
                conn.execute(statement)
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


def move_aside(path: Path, now: float) -> Path:
    """Rename the database (and its -wal and -shm) to `<name>.corrupt-<UTC time>`; the new name."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    number = 1
    while any(Path(f"{target}{suffix}").exists() for suffix in ("", *SIDE_FILES)):
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{number}")
        number += 1
    path.rename(target)
    for suffix in SIDE_FILES:
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").rename(f"{target}{suffix}")
    make_private(target)
    return target


def make_private(path: Path) -> None:
    """Mode 0600 for the database and its -wal and -shm files (those this user owns)."""
    for suffix in ("", *SIDE_FILES):
        with contextlib.suppress(OSError):
            name = f"{path}{suffix}"
            if os.stat(name).st_mode & 0o777 != PRIVATE_FILE:
                os.chmod(name, PRIVATE_FILE)


def _make_directory(directory: Path) -> None:
    if not directory.is_dir():
        directory.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)


def _forget_leftovers(path: Path) -> None:
    """A write-ahead log left by a deleted database must not be replayed into a new one."""
    if not path.exists():
        for suffix in SIDE_FILES:
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def _create(path: Path) -> None:
    """Create the file with mode 0600 when missing, so SQLite never makes it with the umask's."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return
    os.close(fd)


def cannot(path: Path, doing: str, exc: BaseException) -> str:
    """One line: what could not be done with the database, why, and who can do it."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return f"cannot {doing} {path}: {reason}; {access_hint(path.parent)}"


def access_hint(directory: Path) -> str:
    """Who may use the state directory: its owner (and root), or what else to check."""
    owner = _owner(directory)
    me = _owner_name(os.geteuid())
    if owner == "root" and me != "root":
        return f"{directory} belongs to root: run this as root (sudo filterdns ...)"
    if owner is not None and owner != me:
        return (
            f"{directory} belongs to {owner}: run this as root or as {owner} "
            f"(sudo -u {owner} filterdns ...)"
        )
    return f"check that {directory} exists and is writable (not on a read-only file system)"


def _owner(directory: Path) -> str | None:
    for candidate in (directory, *directory.parents):
        try:
            return _owner_name(candidate.stat().st_uid)
        except FileNotFoundError:
            continue
        except OSError:
            return None
    return None


def _owner_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
