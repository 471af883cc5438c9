"""Grants, pauses, overrides and top-ups in PostgreSQL, shared by every instance on it.

With a postgresql:// `log.database` the `grants` table lives in that database (pgschema
version 2): `filterdns pause 7a` on one school's machine, or a tap in the web app of another,
is a row there, and a trigger announces it. Each server follows the table (pgshared.follow):
LISTEN, read again on every announcement, and every REREAD seconds in case one was missed while
the connection was down, so a change applies on every instance within a second.

The database may go away; the grants in force may not. The server keeps the last copy it read
and writes it beside its state (`shared-grants.json`), so a restart while the database is
unreachable still knows which child is paused until when. A copy of grants past their end
changes nothing: the policy ignores a grant past its time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import astuple
from pathlib import Path

from filterdns.errors import FilterDnsError
from filterdns.policy.grants import COLUMNS, GrantError, GrantStore, grants_of
from filterdns.policy.values import Grant
from filterdns.querylog.pgschema import GRANTS_CHANNEL
from filterdns.querylog.pgshared import Fetch, PgDb, follow
from filterdns.querylog.shareddb import Conn

log = logging.getLogger("filterdns.policy.grants")

REREAD = 10.0  # seconds: the safety net under the notifications
COPY_FILE = "shared-grants.json"
CURRENT = f"SELECT {COLUMNS} FROM grants WHERE expires_at > ? ORDER BY id"


class PgGrantStore(GrantStore):
    """The grants of every instance on one PostgreSQL database."""

    def __init__(self, url: str, database: Path) -> None:
        super().__init__(database)
        self.db = PgDb(url)
        self.copy = self.path.with_name(COPY_FILE)
        self._copy_read = False  # whether the grants were read (or the copy) once

    # Reading (server, explain)

    def reload_if_changed(self) -> bool:
        """Read the grants in force now (after a change made in this process, and `explain`)."""
        try:
            rows = self.db.rows(CURRENT, (time.time(),), "read the grants in", GrantError)
        except FilterDnsError as exc:
            self._say(f"{exc}; keeping the last copy")
            if not self._copy_read:  # nothing read yet: the copy of the last run, if any
                self._copy_read = True
                self._grants = self._load_copy()
            return False
        self._copy_read = True
        return self._take(grants_of(rows))

    async def watch(self, on_damage: Callable[[], Awaitable[None]] | None = None) -> None:
        """Follow the table until cancelled; the last copy (this process's or the file's) stays
        in force while the database is away."""
        del on_damage  # no file of ours to be damaged
        if not self._copy_read:
            self._copy_read = True
            self._grants = await asyncio.to_thread(self._load_copy)
        await follow(self.db.url, GRANTS_CHANNEL, self._read, every=REREAD, what="grants")

    async def _read(self, fetch: Fetch) -> None:
        self._take(grants_of(await fetch(CURRENT, (time.time(),))))

    def _take(self, grants: tuple[Grant, ...]) -> bool:
        """Keep `grants` as the current ones; True when they changed (the copy is saved)."""
        self._problem = ""
        if grants == self._grants:
            return False
        self._grants = grants
        self._save_copy(grants)
        return True

    def _save_copy(self, grants: tuple[Grant, ...]) -> None:
        """Write the copy (atomically); a failing disk is logged and never stops anything."""
        temporary = self.copy.with_name(f".{COPY_FILE}.{os.getpid()}")
        try:
            temporary.write_text(json.dumps([astuple(g) for g in grants]), encoding="utf-8")
            temporary.replace(self.copy)
        except OSError as exc:
            log.warning("grants: cannot keep a copy in %s: %s", self.copy, exc.strerror or exc)
            with contextlib.suppress(OSError):
                temporary.unlink()

    def _load_copy(self) -> tuple[Grant, ...]:
        """The copy the last run kept, for as long as the database cannot be read; () without."""
        try:
            rows = json.loads(self.copy.read_text(encoding="utf-8"))
            grants = grants_of(rows)
        except FileNotFoundError:
            return ()
        except (OSError, ValueError, TypeError) as exc:
            log.warning("grants: cannot read the copy %s: %s", self.copy, exc)
            return ()
        now = time.time()
        return tuple(g for g in grants if g.expires_at > now)

    def close(self) -> None:
        """Nothing to close: the follower's connection ends with its task."""

    # Writing (command line, web app)

    def active(self, now: float | None = None) -> list[Grant]:
        """Grants not yet expired, soonest to end first."""
        now = time.time() if now is None else now
        sql = f"SELECT {COLUMNS} FROM grants WHERE expires_at > ? ORDER BY expires_at, id"
        return list(grants_of(self.db.rows(sql, (now,), "read the grants in", GrantError)))

    @contextlib.contextmanager
    def _writing(self, now: float, doing: str) -> Iterator[Conn]:
        with self.db.writing(now, doing, GrantError) as conn:
            yield conn

    # grants.json of earlier versions: the SQLite file's business only

    def import_if_changed(self, now: float | None = None) -> int:
        """Nothing to import into a shared database."""
        return 0

    def import_legacy(self, now: float | None = None) -> int:
        """Nothing to import into a shared database."""
        return 0
