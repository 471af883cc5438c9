"""Grants: timed exceptions for one profile, made from the command line, kept in a file.

`filterdns grant minh --allow youtube.com --for 45m` adds a grant to `grants.json` beside the log
database (the state directory); the running server notices the change within half a second
(it compares the file's modification time twice a second, a cheap `stat`) and the policy applies
it on the next query. Grants survive restarts because they live in the file, and expire by
themselves: the policy ignores a grant past its time and schedules a recomputation for the instant
it ends.

Only someone who can write the state directory can make a grant: the file is created with mode
0600, and nothing on the network can reach it (the server only reads it). Writers take an
exclusive lock (`grants.lock`) and replace the file atomically, so two commands at once never
lose a grant and the server never reads half a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from filterdns.policy import Grant

log = logging.getLogger(__name__)

GRANTS_FILE = "grants.json"
POLL_INTERVAL = 0.5


def grants_path(database: Path) -> Path:
    """Where the grants of an installation live: beside its log database."""
    return Path(database).with_name(GRANTS_FILE)


class GrantStore:
    """The grants file: read by the server, written by `filterdns grant` and `revoke`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._grants: tuple[Grant, ...] = ()
        self._stamp: tuple[int, int] | None = None
        self._last_error = ""
        self.errors = 0

    # Reading (server)

    def current(self) -> tuple[Grant, ...]:
        """The grants as last loaded; the same object until the file changes."""
        return self._grants

    def reload_if_changed(self) -> bool:
        """Load the file when its size or modification time moved; True when it did."""
        try:
            stat = self.path.stat()
            stamp: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except (FileNotFoundError, NotADirectoryError):
            stamp = None
        except OSError as exc:
            if str(exc) != self._last_error:  # checked twice a second: say it once
                self._last_error = str(exc)
                log.warning("cannot read grants %s: %s", self.path, exc)
            return False
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        self._grants = tuple(self.read())
        return True

    def read(self) -> list[Grant]:
        """Every grant in the file (expired ones too); a broken file counts as none, logged."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            self.errors += 1
            log.warning("grants file %s is unreadable (%s); no grants apply", self.path, exc)
            return []
        grants = []
        for item in data.get("grants", []) if isinstance(data, dict) else []:
            try:
                grants.append(
                    Grant(
                        id=int(item["id"]),
                        profile=str(item["profile"]),
                        expires_at=float(item["expires_at"]),
                        domain=item.get("domain"),
                        category=item.get("category"),
                        reason=str(item.get("reason", "")),
                    )
                )
            except (KeyError, TypeError, ValueError):
                self.errors += 1
        return grants

    async def watch(self) -> None:
        """Reload whenever the file changes (polled twice a second) until cancelled."""
        while True:
            self.reload_if_changed()
            await asyncio.sleep(POLL_INTERVAL)

    # Writing (command line)

    def add(
        self,
        profile: str,
        seconds: float,
        *,
        domain: str | None = None,
        category: str | None = None,
        reason: str = "",
        now: float | None = None,
    ) -> Grant:
        """Store a new grant that ends `seconds` from now; returns it with its id."""
        now = time.time() if now is None else now
        with self._locked() as grants:
            grant = Grant(
                id=max([self._last_id(), *(g.id for g in grants)]) + 1,
                profile=profile,
                expires_at=now + seconds,
                domain=domain,
                category=category,
                reason=reason,
            )
            grants.append(grant)
        return grant

    def revoke(self, grant_id: int) -> Grant | None:
        """Remove a grant; returns it, or None when there is no such grant."""
        with self._locked() as grants:
            for grant in grants:
                if grant.id == grant_id:
                    grants.remove(grant)
                    return grant
        return None

    def active(self, now: float | None = None) -> list[Grant]:
        """Grants not yet expired, soonest to end first."""
        now = time.time() if now is None else now
        return sorted((g for g in self.read() if g.expires_at > now), key=lambda g: g.expires_at)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[Grant]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name("grants.lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            now = time.time()
            # Expired grants are dropped whenever the file is written; ids keep growing.
            kept = self.read()
            grants = [g for g in kept if g.expires_at > now]
            top = max([self._last_id(), *(g.id for g in kept)])
            yield grants
            self._write(grants, top)

    def _last_id(self) -> int:
        """The highest id ever given (ids are never reused, even after a revoke)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return int(data.get("next_id", 1)) - 1
        except (OSError, ValueError, TypeError, AttributeError):
            return 0

    def _write(self, grants: Sequence[Grant], top: int) -> None:
        data = {
            "next_id": max([top, *(g.id for g in grants)]) + 1,
            "grants": [
                {
                    "id": g.id,
                    "profile": g.profile,
                    "expires_at": g.expires_at,
                    "domain": g.domain,
                    "category": g.category,
                    "reason": g.reason,
                }
                for g in grants
            ],
        }
        temp = self.path.with_name(f".{GRANTS_FILE}.{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, self.path)
