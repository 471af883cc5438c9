"""Children's browsing history stays private however `filterdns serve` starts.

For each start mode a real server logs a blocked lookup, a grant is made from the command line
(as root), and then every directory of the state is 0700 and every file 0600 (database, -wal,
-shm, client key, running configuration, pid, list copies, index, reports), owned by the user
the server runs as: while it runs and after it stopped. An older installation (0755 directory,
0644 files) is fixed at the next start. Root and the service user still read everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.rcode
import pytest

from filterdns.querylog.schema import SCHEMA_V1
from filterdns.querylog.store import open_reader
from tests.fakes.upstream import FakeUpstream
from tests.integration.processes import (
    as_root,
    nobody,
    not_private,
    open_directory,
    require_open_checkout,
    run_cli,
    start_serve,
    stop,
    until,
)

pytestmark = as_root


@dataclass(frozen=True)
class Mode:
    """How the server is started, and who should own the state afterwards."""

    run_as: str | None  # None: root
    umask: int
    server_user: str | None  # server.user in the configuration
    systemd: bool = False  # state directory made by "systemd", path from FILTERDNS_STATE_DIR
    older_install: bool = False  # the state of an older version is there: 0755 and 0644

    def owner(self) -> int:
        who = self.run_as or self.server_user
        return 0 if who is None else nobody().pw_uid


MODES = {
    "plain-user": Mode(run_as="nobody", umask=0o022, server_user=None),
    "root": Mode(run_as=None, umask=0o022, server_user=None),
    "root-with-server-user": Mode(None, 0o022, server_user="nobody", older_install=True),
    "systemd-unit": Mode("nobody", 0o077, None, systemd=True, older_install=True),
}


def config_text(base: Path, state: Path, upstream: str, mode: Mode) -> str:
    """Listen on port 0, a local gambling list, a keyed client hash, grants for `kid`."""
    where = (
        ""
        if mode.systemd  # as the unit: the paths come from FILTERDNS_STATE_DIR
        else f"  database: {state / 'filterdns.db'}\n"
    )
    cache = "" if mode.systemd else f"  cache_dir: {state / 'lists'}\n"
    user = f"  user: {mode.server_user}\n" if mode.server_user else ""
    return (
        f'server:\n  listen: ["127.0.0.1:0"]\n{user}'
        f'upstreams:\n  servers: ["{upstream}"]\n  timeout: 1s\n'
        f"lists:\n  download_defaults: false\n{cache}"
        f"log:\n  anonymize_clients: true\n{where}"
        f"categories: {{gambling: [{base / 'gambling.txt'}]}}\n"
        "profiles: {kid: {age_band: 9-12}}\ndefault_profile: kid\n"
    )


def older_installation(state: Path) -> None:
    """What an older filterdns left: world-readable directory, database, grants and lists."""
    (state / "lists" / "copies").mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(state / "filterdns.db")) as db:
        db.executescript(";\n".join(SCHEMA_V1))
        db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        db.commit()
    (state / "grants.json").write_text('{"next_id": 1, "grants": []}')
    (state / "lists" / "index-reports.json").write_text("[]")
    (state / "lists" / "copies" / "old.txt").write_text("casino.example\n")
    for path in (state, *state.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)


@contextlib.contextmanager
def installation(mode: Mode) -> Iterator[tuple[Path, Path]]:
    """The base directory (config, list) and the state directory for `mode`."""
    with open_directory() as base:
        home = base / "home"  # where a plain user may create its ./state
        home.mkdir(mode=0o755)
        if mode.run_as is not None:
            os.chown(home, nobody().pw_uid, nobody().pw_gid)
        state = home / "state"
        if mode.older_install:
            state.mkdir()
            older_installation(state)
        if mode.systemd:  # StateDirectory=filterdns, StateDirectoryMode=0700, User=filterdns
            state.mkdir(mode=0o700, exist_ok=True)
            for path in (state, *state.rglob("*")):
                os.chown(path, nobody().pw_uid, nobody().pw_gid)
        (base / "gambling.txt").write_text("casino.example\n")
        yield base, state


async def blocked_and_logged(port: int, state: Path) -> None:
    """casino.example blocked (once the configured lists serve) and the lookup logged."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    query = dns.message.make_query("casino.example", "A")
    while (await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=5)).rcode() != (
        dns.rcode.NXDOMAIN
    ):
        assert loop.time() < deadline, "casino.example is never blocked"
        await asyncio.sleep(0.05)
    await until(lambda: logged(state / "filterdns.db") > 0, "the blocked lookup is logged")


def logged(database: Path) -> int:
    with contextlib.closing(open_reader(database)) as db:
        return int(db.execute("SELECT count(*) FROM queries").fetchone()[0])


@pytest.mark.parametrize("mode", MODES.values(), ids=MODES.keys())
async def test_the_state_is_private_in_every_start_mode(mode: Mode) -> None:
    if mode.run_as or mode.server_user:
        require_open_checkout()
    with installation(mode) as (base, state):
        async with FakeUpstream({("casino.example", "A"): ["203.0.113.66"]}) as upstream:
            config = base / "config.yaml"
            config.write_text(config_text(base, state, upstream.address, mode))
            config.chmod(0o644)
            env = {"FILTERDNS_STATE_DIR": str(state)}
            process, port, _ = await start_serve(
                config, user=mode.run_as, umask=mode.umask, env=env
            )
            try:
                await blocked_and_logged(port, state)
                made = await run_cli("-c", str(config), "grant", "kid", "--allow",
                                     "example.org", "--for", "5m", env=env)  # fmt: skip
                assert made.code == 0, made
                running = not_private(state, mode.owner())
                as_root_report = await run_cli("-c", str(config), "report", "--json", env=env)
                as_owner_report = await run_cli(
                    "-c", str(config), "report", "--json", user=mode.run_as or mode.server_user,
                    env=env,
                )  # fmt: skip
                after_report = not_private(state, mode.owner())
                names = {p.name for p in state.iterdir()}
            finally:
                log = await stop(process)
        stopped = not_private(state, mode.owner())
        copies = list((state / "lists" / "copies").iterdir())
    assert running == {}, log
    assert {"filterdns.db", "filterdns.db-wal", "filterdns.db-shm", "client-key",
            "running-config.yaml", "filterdns.pid", "lists"} <= names  # fmt: skip
    assert copies, "the local list's last good copy is kept in lists/copies"
    assert as_root_report.code == 0 and json.loads(as_root_report.out)["blocked_total"] >= 1
    assert as_owner_report.code == 0, as_owner_report
    assert after_report == {}  # reading as root left no file of root's behind
    assert stopped == {}
    assert "Traceback" not in log
