"""Pauses and overrides end to end: the rows they leave in the database (an old database
migrated first), the commands' output and errors, and a real server that applies them within a
second, over UDP and TCP, and lets them end on time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from pathlib import Path

import dns.message
import dns.rcode
import pytest

from filterdns.cli import pause
from filterdns.cli.main import main
from filterdns.policy.grants import GrantStore
from filterdns.policy.values import UNTIL_RESUMED, GrantKind
from filterdns.querylog import schema
from filterdns.querylog.schema import SCHEMA_V1, SCHEMA_V2
from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import Proxy, config_for, running_proxy
from tests.integration.test_policy import RECORDS, at, policy_config

NOW = 1_800_000_000.0


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        "server: {timezone: Asia/Ho_Chi_Minh}\n"
        f"log: {{database: {tmp_path / 'filterdns.db'}}}\n"
        "profiles: {minh: {age_band: 9-12}, lan: {age_band: 9-12, timezone: Europe/Paris}}\n"
    )
    return path


def schema_2(path: Path) -> None:
    """A database as schema 2 left it, with one category grant."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(";\n".join((*SCHEMA_V1, *SCHEMA_V2)))
        db.execute("INSERT INTO meta VALUES ('schema_version', '2')")
        db.execute("INSERT INTO grants (profile, domain, category, reason, created_at, expires_at)"
                   " VALUES ('minh', NULL, 'games', 'old', ?, ?)", (NOW, NOW + 3600))  # fmt: skip
        db.commit()


def test_an_old_database_not_migrated_yet_is_read_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "filterdns.db"
    schema_2(path)
    sut = GrantStore(path)
    (old,) = sut.active(now=NOW)  # a reader: no migration
    assert (old.category, old.kind) == ("games", "allow-category")
    assert sut.reload_if_changed() and sut.current() == (old,)
    sut.close()


def test_an_old_database_keeps_its_grants_and_takes_pauses(tmp_path: Path) -> None:
    path = tmp_path / "filterdns.db"
    schema_2(path)
    sut = GrantStore(path)
    made = sut.add_many(["minh", "lan"], UNTIL_RESUMED, GrantKind.PAUSE, created_by="anna",
                        now=NOW)  # fmt: skip
    with contextlib.closing(sqlite3.connect(path)) as db:
        version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert version == (str(schema.SCHEMA_VERSION),)
    old, *paused = sut.active(now=NOW)
    assert (old.id, old.category, old.kind, old.created_by) == (1, "games", "allow-category", "")
    assert paused == made and [p.id for p in paused] == [2, 3]
    assert sut.end(["minh"], [GrantKind.PAUSE], now=NOW) == made[:1]  # resume minh
    assert [g.id for g in sut.active(now=NOW)] == [1, 3]


BAD = [
    pytest.param(["pause", "nobody"], "no profile 'nobody'; profiles: minh, lan",
                 id="pause-unknown-profile"),
    pytest.param(["resume", "minh", "nobody"], "no profile 'nobody'", id="resume-unknown"),
    pytest.param(["override", "minh", "--for", "45m"], "say what to do: --allow NAME",
                 id="override-no-action"),
    pytest.param(["override", "minh", "--allow", "a.org", "--block-all", "--for", "4m"],
                 "say what to do", id="override-two-actions"),
    pytest.param(["override", "minh", "--block-all"], "say how long: --for 45m or --until",
                 id="override-no-duration"),
    pytest.param(["override", "--block-all", "--for", "4m"], "name at least one profile",
                 id="override-no-profile"),
    pytest.param(["override", "minh", "--allow", "not a name", "--for", "4m"],
                 "'not a name' is not a domain name", id="override-bad-name"),
    pytest.param(["pause", "minh", "--for", "30"], "--for needs a unit", id="pause-no-unit"),
    # 10:00 in Ho Chi Minh City is 04:00 in Paris
    pytest.param(["pause", "minh", "--until", "09:59"],
                 "--until 09:59: it is already 10:00 for minh (Asia/Ho_Chi_Minh)",
                 id="until-past-today"),
    pytest.param(["pause", "minh", "lan", "--until", "05:00"],
                 "--until 05:00: it is already 10:00 for minh", id="until-past-for-one"),
    pytest.param(["override", "minh", "--block-all", "--until", "10.45"],
                 '--until "10.45" is not a time of day', id="until-not-a-time"),
    pytest.param(["override", "--revoke", "9"], "no grant or override #9 in force",
                 id="revoke-unknown"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "message"), BAD)
def test_commands_that_cannot_be_done_say_why_and_change_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.setattr(pause, "clock", lambda: at("2026-11-23 10:00"))
    config = config_file(tmp_path)
    assert main(["-c", str(config), *argv]) == 1
    out = capsys.readouterr().out
    assert message in out and len(out.strip().splitlines()) == 1, out
    assert GrantStore(tmp_path / "filterdns.db").active() == []


def test_until_is_read_in_each_profiles_time_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = at("2026-11-23 10:00")  # in Ho Chi Minh City; 04:00 in Paris
    monkeypatch.setattr(pause, "clock", lambda: now)
    config = config_file(tmp_path)
    assert main(["-c", str(config), "pause", "lan", "--until", "05:00", "--json"]) == 0
    (made,) = json.loads(capsys.readouterr().out)
    assert made["expires_at"] == now + 3600


def test_who_made_it_why_and_listing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUDO_USER", "mr-hai")
    config = config_file(tmp_path)
    run = ["-c", str(config)]
    assert main([*run, "override", "minh", "lan", "--allow", "Scratch.MIT.edu", "--allow",
                 "khanacademy.org", "--for", "45m", "--reason", "project"]) == 0  # fmt: skip
    assert capsys.readouterr().out.count("grant #") == 4  # two names for two profiles
    assert main([*run, "override", "minh", "--block-all", "--for", "45m", "--reason", "exam"]) == 0
    made = capsys.readouterr().out
    assert made.startswith("minh: everything blocked by mr-hai until ") and "(exam), #5" in made
    assert main([*run, "pause", "lan"]) == 0
    assert capsys.readouterr().out == "lan: paused by mr-hai until resumed, #6\n"
    assert main([*run, "override", "--list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].startswith("#1 minh: scratch.mit.edu allowed until ")
    assert listed[0].endswith(" by mr-hai (project)")
    assert listed[-2].startswith("#5 minh: everything blocked by mr-hai until ")
    assert listed[-2].endswith(" (exam)")
    assert listed[-1] == "#6 lan: paused by mr-hai until resumed"
    assert main([*run, "grants"]) == 0  # the listing of grants shows them too
    assert "#6 lan: paused by mr-hai until resumed" in capsys.readouterr().out
    assert main([*run, "override", "--revoke", "5"]) == 0
    assert capsys.readouterr().out.startswith("revoked block-all override #5 ")
    assert main([*run, "resume", "minh", "lan"]) == 0
    assert capsys.readouterr().out == "ended pause #6 (until resumed) of lan\n"
    assert main([*run, "resume", "minh"]) == 0
    assert capsys.readouterr().out == "minh: nothing was paused\n"
    assert [g.kind for g in GrantStore(tmp_path / "filterdns.db").active()] == ["allow-domain"] * 4


# A real server


async def until_answered(proxy: Proxy, name: str, rcode: int, *, tcp: bool) -> float:
    """Seconds until `name` from minh's address is answered with `rcode` (fails after 1 s)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        reply: dns.message.Message = await proxy.query(name, source="127.0.0.2", tcp=tcp)
        if reply.rcode() == rcode:
            return loop.time() - start
        assert loop.time() - start < 1.0, f"{name}: still {dns.rcode.to_text(reply.rcode())}"
        await asyncio.sleep(0.02)


@pytest.fixture
async def upstream() -> FakeUpstream:
    async with FakeUpstream(RECORDS) as fake:
        yield fake


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_a_pause_from_the_command_line_blocks_within_a_second_until_resumed(
    upstream: FakeUpstream,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tcp: bool,
) -> None:
    monkeypatch.setenv("SUDO_USER", "anna")
    text = policy_config(upstream, tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(text)
    async with running_proxy(text, wall_clock=lambda: at("2026-11-23 10:00")) as proxy:
        await until_answered(proxy, "example.com", dns.rcode.NOERROR, tcp=tcp)
        await until_answered(proxy, "casino.example", dns.rcode.NXDOMAIN, tcp=tcp)  # gambling
        assert await asyncio.to_thread(main, ["-c", str(config), "pause", "minh"]) == 0
        paused = await until_answered(proxy, "example.com", dns.rcode.NXDOMAIN, tcp=tcp)
        assert await asyncio.to_thread(main, ["-c", str(config), "resume", "minh"]) == 0
        resumed = await until_answered(proxy, "example.com", dns.rcode.NOERROR, tcp=tcp)
    assert max(paused, resumed) < 1.0
    with contextlib.closing(sqlite3.connect(tmp_path / "filterdns.db")) as db:
        rows = db.execute("SELECT name, rule, hits FROM queries WHERE kind = 'blocked'")
        logged = [(name, rule) for name, rule, hits in rows for _ in range(hits)]  # per lookup
    assert logged[0] == ("casino.example", "age band 9-12")
    assert set(logged[1:]) == {("example.com", "paused by anna until resumed, #1")}  # for tail
    capsys.readouterr()  # what pause and resume printed
    assert main(["-c", str(config), "report", "--since", "30d", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["paused"] == {"minh": len(logged) - 1}  # not the gambling block


async def test_an_exam_override_ends_on_time(upstream: FakeUpstream, tmp_path: Path) -> None:
    text = config_for(upstream.address, extra=f"""\
        log: {{database: {tmp_path / "filterdns.db"}}}
        profiles: {{exam: {{age_band: adult}}}}
        default_profile: exam
    """)  # fmt: skip
    config = tmp_path / "config.yaml"
    config.write_text(text)
    async with running_proxy(text) as proxy:  # the real clock: the override ends by itself
        argv = ["-c", str(config), "override", "exam", "--block-all", "--for", "2s"]
        assert await asyncio.to_thread(main, argv) == 0
        (made,) = GrantStore(tmp_path / "filterdns.db").active()
        while (await proxy.query("example.com")).rcode() != dns.rcode.NXDOMAIN:
            assert time.time() < made.expires_at, "not blocked while the override lasted"
            await asyncio.sleep(0.02)
        blocked_at = time.time()
        while (await proxy.query("example.com")).rcode() != dns.rcode.NOERROR:
            assert time.time() < made.expires_at + 1.0, "still blocked a second after its end"
            await asyncio.sleep(0.02)
        ended = time.time()
    assert blocked_at < made.expires_at - 1.0  # in force within a second of the command
    assert made.expires_at <= ended < made.expires_at + 1.0
