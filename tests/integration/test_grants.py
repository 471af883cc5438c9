"""Grants kept in the database: they always take effect, or say why in one line.

The store on real SQLite files (ids, expiry, the old grants.json imported), the commands'
output and errors, and real processes: a server started as root that runs as `nobody`, with
grants made by root and by nobody, each in force within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.rcode
import pytest

from filterdns.cli.main import main
from filterdns.errors import FilterDnsError
from filterdns.policy import grants
from filterdns.policy.grants import LEGACY_FILE, GrantError, GrantStore
from filterdns.querylog.schema import SCHEMA_V1
from tests.fakes.upstream import FakeUpstream
from tests.integration.processes import (
    as_root,
    nobody,
    not_private,
    open_directory,
    run_cli,
    start_serve,
    stop,
)

NOW = 1_800_000_000.0
HOUR = 3600.0


def test_grants_are_stored_listed_and_revoked_with_ids_never_reused(tmp_path: Path) -> None:
    sut = GrantStore(tmp_path / "state" / "filterdns.db")
    first = sut.add("minh", HOUR, domain="youtube.com", reason="project", now=NOW)
    second = sut.add("minh", 2 * HOUR, category="games", now=NOW)
    assert (first.id, second.id) == (1, 2)
    assert sut.revoke(2, now=NOW) == second
    assert sut.revoke(2, now=NOW) is None
    third = sut.add("lan", 0.5 * HOUR, domain="khanacademy.org", now=NOW)
    assert third.id == 3  # 2 is gone for good: `revoke 2` can never end another grant
    assert sut.active(now=NOW) == [third, first]  # soonest to end first
    assert sut.active(now=NOW + HOUR) == []


def test_expired_grants_are_deleted_when_the_next_is_made(tmp_path: Path) -> None:
    path = tmp_path / "filterdns.db"
    sut = GrantStore(path)
    sut.add("minh", 60, category="games", now=NOW)
    sut.add("minh", HOUR, category="video", now=NOW + 120)
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT id, category FROM grants").fetchall() == [(2, "video")]


def test_the_server_reads_a_grant_another_process_made(tmp_path: Path) -> None:
    path = tmp_path / "filterdns.db"
    reader, writer = GrantStore(path), GrantStore(path)
    assert reader.reload_if_changed() is False and reader.current() == ()
    made = writer.add("minh", HOUR, domain="youtube.com")
    assert reader.reload_if_changed() is True
    assert reader.current() == (made,)
    seen = reader.current()
    with contextlib.closing(sqlite3.connect(path)) as db:  # a log batch: no grant changed
        db.execute("INSERT INTO drops (ts, count, reason) VALUES (0, 1, 'x')")
        db.commit()
    assert reader.reload_if_changed() is False
    assert reader.current() is seen  # the policy recomputes nothing
    writer.revoke(made.id)
    assert reader.reload_if_changed() is True and reader.current() == ()
    reader.close()


def test_the_server_looks_in_a_worker_thread_only_when_a_file_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four looks a second while nothing changes would each wake a worker thread and the server
    with it: a look goes there only when the database, its write-ahead log or grants.json
    changed, or when the last full look is a second old."""
    path = tmp_path / "filterdns.db"
    reader, writer = GrantStore(path), GrantStore(path)
    writer.add("minh", HOUR, domain="youtube.com")
    clock = [1000.0]
    monkeypatch.setattr(grants.time, "monotonic", lambda: clock[0])
    assert not reader._unchanged()  # never looked
    reader._poll()  # opens the reader, which may write the write-ahead log: looked again
    reader._poll()
    clock[0] += 0.25
    assert reader._unchanged()
    made = writer.add("minh", HOUR, category="games")  # another process commits
    assert not reader._unchanged()
    reader._poll()
    assert made in reader.current()
    clock[0] += 0.25
    assert reader._unchanged()
    clock[0] += grants.FULL_LOOK  # a commit the file system's clock could not tell apart
    assert not reader._unchanged()
    reader._poll()
    (tmp_path / LEGACY_FILE).write_text("[]")  # an old grants file to import
    assert not reader._unchanged()
    reader.close()


def test_a_database_of_the_previous_schema_has_no_grants_yet(tmp_path: Path) -> None:
    path = tmp_path / "filterdns.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(";\n".join(SCHEMA_V1))
        db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        db.commit()
    reader = GrantStore(path)
    assert reader.reload_if_changed() is False and reader.current() == ()
    assert GrantStore(path).add("minh", HOUR, category="games").id == 1  # migrated on write
    assert reader.reload_if_changed() is True
    reader.close()


def legacy_file(directory: Path, *, expired: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    grants = [{"id": 4, "profile": "minh", "expires_at": NOW + HOUR, "domain": "olm.vn",
               "category": None, "reason": "homework"}]  # fmt: skip
    if expired:
        grants.append({"id": 7, "profile": "minh", "expires_at": NOW - 1, "category": "games"})
    path = directory / LEGACY_FILE
    path.write_text(json.dumps({"next_id": 9, "grants": grants}))
    (directory / "grants.lock").write_text("")
    return path


def test_an_old_grants_file_is_imported_with_its_ids_and_renamed_aside(tmp_path: Path) -> None:
    legacy = legacy_file(tmp_path)
    sut = GrantStore(tmp_path / "filterdns.db")
    assert sut.import_if_changed(now=NOW) == 1
    [kept] = sut.active(now=NOW)
    assert (kept.id, kept.domain, kept.reason) == (4, "olm.vn", "homework")
    assert not legacy.exists() and not (tmp_path / "grants.lock").exists()
    assert [p.name.startswith("grants.json.imported-") for p in tmp_path.glob("grants.json*")] == [
        True
    ]
    assert sut.add("minh", HOUR, category="games", now=NOW).id == 9  # after the file's ids
    assert sut.import_if_changed(now=NOW) == 0


def test_the_commands_import_an_old_grants_file_too(tmp_path: Path) -> None:
    legacy_file(tmp_path, expired=False)
    sut = GrantStore(tmp_path / "filterdns.db")
    made = sut.add("minh", HOUR, category="games", now=NOW)
    assert made.id == 9
    assert [g.id for g in sut.active(now=NOW)] == [4, 9]


def test_a_grant_that_cannot_be_saved_says_why(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state directory should be")
    with pytest.raises(GrantError, match=r"cannot save the grant in .*state/filterdns.db: "):
        GrantStore(blocker / "filterdns.db").add("minh", HOUR, category="games")


def test_a_grant_into_a_file_that_is_no_database_says_so_and_leaves_it(tmp_path: Path) -> None:
    path = tmp_path / "filterdns.db"
    path.write_bytes(b"junk" * 1000)
    with pytest.raises(FilterDnsError, match="is not a usable filterdns database"):
        GrantStore(path).add("minh", HOUR, category="games")
    assert path.read_bytes() == b"junk" * 1000  # only the server replaces it


# The commands


def config_file(tmp_path: Path, database: Path) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"log: {{database: {database}}}\nprofiles: {{minh: {{age_band: 9-12}}}}\n"
        "lists: {download_defaults: false}\n"
    )
    return config


@pytest.mark.parametrize(
    ("duration", "message"),
    [
        ("30", '--for needs a unit: 30m, 2h, 1d (not "30")'),
        ("1.5", '--for needs a unit: 30m, 2h, 1d (not "1.5")'),
        ("30x", '--for "30x" is not a duration like 45m, 2h or 1d'),
        ("0m", "--for must be more than 0"),
    ],
)
def test_grant_durations_need_a_unit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], duration: str, message: str
) -> None:
    config = config_file(tmp_path, tmp_path / "filterdns.db")
    code = main(["-c", str(config), "grant", "minh", "--category", "games", "--for", duration])
    out = capsys.readouterr().out
    assert code == 1
    assert out.strip() == message
    assert not (tmp_path / "filterdns.db").exists()  # nothing was made


def test_grant_output_and_json_are_as_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_file(tmp_path, tmp_path / "filterdns.db")
    assert main(["-c", str(config), "grant", "minh", "--allow", "YouTube.com", "--for", "45m",
                 "--reason", "project"]) == 0  # fmt: skip
    assert capsys.readouterr().out.startswith("made grant #1 (youtube.com until ")
    assert main(["-c", str(config), "grant", "minh", "--category", "games", "--for", "2h",
                 "--json"]) == 0  # fmt: skip
    made = json.loads(capsys.readouterr().out)
    # the keys of before, and (since pauses and overrides) what kind of grant and who made it
    assert set(made) == {"id", "profile", "expires_at", "domain", "category", "reason", "kind",
                         "created_by"}  # fmt: skip
    assert made["kind"] == "allow-category"
    assert (made["id"], made["category"], made["domain"]) == (2, "games", None)
    assert main(["-c", str(config), "grants", "--json"]) == 0
    assert [g["id"] for g in json.loads(capsys.readouterr().out)] == [1, 2]
    assert main(["-c", str(config), "revoke", "1"]) == 0
    assert capsys.readouterr().out.startswith("revoked grant #1 (youtube.com until ")
    assert main(["-c", str(config), "grants"]) == 0
    assert capsys.readouterr().out.startswith("#2 minh: category games, 1")


def test_a_grant_command_that_fails_prints_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state directory should be")
    config = config_file(tmp_path, blocker / "filterdns.db")
    code = main(["-c", str(config), "grant", "minh", "--category", "games", "--for", "1h"])
    captured = capsys.readouterr()
    assert code == 1
    [line] = captured.out.splitlines()
    assert line.startswith(f"cannot save the grant in {blocker / 'filterdns.db'}: ")
    assert "Traceback" not in captured.out + captured.err


# Real processes: a server that runs as nobody, grants made as root and as nobody


@contextlib.contextmanager
def served_state() -> Iterator[tuple[Path, Path]]:
    """A base directory every user may pass, holding the list; the state directory in it."""
    with open_directory() as base:
        (base / "gambling.txt").write_text("casino.example\n")
        yield base, base / "state"


def server_config(base: Path, state: Path, upstream: str) -> Path:
    config = base / "config.yaml"
    config.write_text(
        f'server:\n  listen: ["127.0.0.1:0"]\n  user: nobody\n  rate_limit: null\n'
        f'upstreams:\n  servers: ["{upstream}"]\n  timeout: 1s\n'
        f"lists: {{download_defaults: false, cache_dir: {state / 'lists'}}}\n"
        f"log: {{database: {state / 'filterdns.db'}}}\n"
        f"categories: {{gambling: [{base / 'gambling.txt'}]}}\n"
        "profiles: {kid: {age_band: 16-17}}\ndefault_profile: kid\n"  # no bedtime
    )
    config.chmod(0o644)
    return config


async def answer(port: int, name: str) -> int:
    query = dns.message.make_query(name, "A")
    reply = await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=3)
    return reply.rcode()


# A grant applies within a second on an idle machine (four looks a second); the bound leaves room
# for a machine whose two cores are busy with other work, without letting a grant that needs a
# restart or a reload pass.
APPLIES_WITHIN = 3.0


async def seconds_until(
    port: int, name: str, rcode: int, deadline: float = APPLIES_WITHIN
) -> float:
    """How long until `name` is answered with `rcode` (AssertionError after `deadline`)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while (got := await answer(port, name)) != rcode:
        assert loop.time() - start < deadline, f"{name}: still {dns.rcode.to_text(got)}"
        await asyncio.sleep(0.02)
    return loop.time() - start


@as_root
async def test_grants_from_root_and_from_the_service_user_apply_within_a_second() -> None:
    async with FakeUpstream({("casino.example", "A"): ["203.0.113.66"]}) as upstream:
        with served_state() as (base, state):
            config = server_config(base, state, upstream.address)
            process, port, _ = await start_serve(config)
            try:
                # blocked once the configured lists serve (the shipped ones serve meanwhile)
                await seconds_until(port, "casino.example", dns.rcode.NXDOMAIN, deadline=30)
                by_root = await run_cli("-c", str(config), "grant", "kid", "--category",
                                        "gambling", "--for", "30m")  # fmt: skip
                root_delay = await seconds_until(port, "casino.example", dns.rcode.NOERROR)
                revoked = await run_cli("-c", str(config), "revoke", "1")
                revoke_delay = await seconds_until(port, "casino.example", dns.rcode.NXDOMAIN)
                by_nobody = await run_cli(
                    "-c", str(config), "grant", "kid", "--allow", "casino.example", "--for",
                    "1h", user="nobody",
                )  # fmt: skip
                nobody_delay = await seconds_until(port, "casino.example", dns.rcode.NOERROR)
                listed = await run_cli("-c", str(config), "grants", "--json", user="nobody")
                files = not_private(state, nobody().pw_uid)
            finally:
                log = await stop(process)
    assert (by_root.code, by_root.out.split(" (")[0]) == (0, "made grant #1"), by_root
    assert revoked.code == 0 and revoked.out.startswith("revoked grant #1"), revoked
    assert by_nobody.code == 0 and by_nobody.out.startswith("made grant #2"), by_nobody
    assert [g["id"] for g in json.loads(listed.out)] == [2]
    assert max(root_delay, revoke_delay, nobody_delay) < APPLIES_WITHIN
    assert files == {}  # root's grant left nothing of root's behind
    assert "Traceback" not in log and "cannot read grants" not in log


@as_root
async def test_a_state_directory_the_user_may_not_write_is_one_clear_line() -> None:
    with open_directory() as base:
        state = base / "state"
        GrantStore(state / "filterdns.db").add("kid", HOUR, category="games")  # root's, 0700
        os.chmod(state, 0o755)  # readable by all, writable by root only
        os.chmod(state / "filterdns.db", 0o644)
        config = config_file(base, state / "filterdns.db")
        config.chmod(0o644)
        done = await run_cli("-c", str(config), "grant", "minh", "--category", "games",
                             "--for", "1h", user="nobody")  # fmt: skip
        listed = await run_cli("-c", str(config), "grants", "--json", user="nobody")
    assert done.code == 1
    [line] = (done.out + done.err).splitlines()
    assert line.startswith(f"cannot save the grant in {state / 'filterdns.db'}: ")
    assert line.endswith(f"{state} belongs to root: run this as root (sudo filterdns ...)")
    assert listed.code == 1  # SQLite cannot read a WAL database without writing beside it
    [line] = (listed.out + listed.err).splitlines()
    assert line.startswith(f"cannot read {state / 'filterdns.db'}: ")
    assert line.endswith("run this as root (sudo filterdns ...)")
