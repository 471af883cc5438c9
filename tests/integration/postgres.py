"""A throw-away PostgreSQL server for the tests: Debian's binaries, a fresh cluster in a temporary
directory on a free loopback port, stopped and removed at the end.

`.ci/run` installs the package when it is missing (scripts/setup-postgres.sh). Elsewhere, a
machine without it skips the PostgreSQL tests with a message saying how to get it, unless
FILTERDNS_REQUIRE_POSTGRES=1 (CI sets it), which makes them fail instead. initdb refuses to run
as root: as root the cluster belongs to the `postgres` user the package creates (else `nobody`).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

SUPERUSER = "filterdns"  # the cluster's superuser; trust authentication on loopback


def binaries() -> Path:
    """The directory of the newest PostgreSQL's programs, or skip (fail when required)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version)
    if found:
        return Path(found[-1]).parent
    message = "no PostgreSQL on this machine: sudo scripts/setup-postgres.sh installs Debian's"
    if os.environ.get("FILTERDNS_REQUIRE_POSTGRES") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _version(path: str) -> int:
    part = Path(path).parents[1].name
    return int(part) if part.isdigit() else 0


def _owner() -> str | None:
    """The user the cluster runs as: None (this user) unless root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    pytest.fail("running as root and no postgres or nobody user to own the test cluster")


def free_port() -> int:
    """A loopback port the system just handed out (port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgServer:
    """One running cluster: its port, URLs to fresh databases, stop and start for fault tests."""

    def __init__(self, bin_dir: Path, directory: Path, user: str | None) -> None:
        self.bin = bin_dir
        self.directory = directory
        self.data = directory / "data"
        self.user = user
        self.port = free_port()
        self._names = itertools.count(1)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        done = subprocess.run(  # noqa: PLW1510
            command, user=self.user, capture_output=True, text=True, cwd=self.directory
        )
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr.strip()}")

    def init(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-A", "trust", "-U", SUPERUSER, "-E", "UTF8",
            "--locale=C", "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        """Start (again) on the same port; returns once it accepts connections."""
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off"
        )
        log = str(self.directory / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server (`immediate`: as if killed, no clean shutdown)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        name = f"test{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} STRATEGY FILE_COPY")  # type: ignore[arg-type]
        return self.url(name)


@contextlib.contextmanager
def cluster() -> Iterator[PgServer]:
    """A running throw-away cluster, removed afterwards."""
    bin_dir = binaries()
    user = _owner()
    directory = Path(tempfile.mkdtemp(prefix="filterdns-pg-"))
    try:
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(directory, entry.pw_uid, entry.pw_gid)
        server = PgServer(bin_dir, directory, user)
        server.init()
        server.start()
        try:
            yield server
        finally:
            with contextlib.suppress(RuntimeError):
                server.stop("fast")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
