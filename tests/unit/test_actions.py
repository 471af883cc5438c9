"""The actions both front doors call (the command line and the web app): when a change ends, the
grants they make, who made them and through which door (the changes table), the budgets, and
each profile's state for a parent's home screen, at fixed instants over a database in tmp_path."""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import textwrap
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from filterdns import actions
from filterdns.actions import ActionError
from filterdns.cli.main import main
from filterdns.config import Config, default_config, load_config_text
from filterdns.policy.values import UNTIL_RESUMED, GrantKind
from filterdns.querylog import changes, dbfile

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
PARIS = ZoneInfo("Europe/Paris")
CONFIG = """\
server: {timezone: Asia/Ho_Chi_Minh}
log: {database: DATABASE}
profiles:
  minh:
    age_band: 9-12
    display_name: Minh
    schedules:
      - {name: school, days: [mon-fri], from: "07:30", to: "16:30", block: [games, video]}
      - {name: homework, days: [tue], from: "18:00", to: "19:00", block: all}
    budgets:
      - {name: games, categories: [games], per_day: 60m}
  lan: {age_band: 16-17, timezone: Europe/Paris}
default_profile: lan
"""


def at(text: str, tz: ZoneInfo = HCM) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=tz).timestamp()


NOW = at("2026-11-23 10:00")  # a Monday: school hours in Ho Chi Minh City, 04:00 in Paris


@pytest.fixture
def config(tmp_path: Path) -> Config:
    text = textwrap.dedent(CONFIG).replace("DATABASE", str(tmp_path / "filterdns.db"))
    return load_config_text(text, source="<test>", defaults=default_config(is_root=False))


def recorded(config: Config) -> list[tuple[str, str, str, str | None, str]]:
    """(who, via, action, profile, detail) of the changes table, oldest first."""
    found = changes.recent(config.log.database, limit=100)
    return [(c.who, c.via, c.action, c.profile, c.detail) for c in reversed(found)]


# When it ends


def test_a_duration_ends_at_the_same_instant_for_every_profile(config: Config) -> None:
    ends = actions.ends_for(config, ["minh", "lan"], duration="30m", required=True, now=NOW)
    assert ends == {"minh": NOW + 1800, "lan": NOW + 1800}
    assert actions.ends_for(config, ["minh"], duration=90, required=True, now=NOW) == {
        "minh": NOW + 90
    }


def test_an_hour_of_the_day_is_read_in_each_profiles_time_zone(config: Config) -> None:
    ends = actions.ends_for(config, ["minh", "lan"], until="10:45", required=True, now=NOW)
    assert ends == {"minh": at("2026-11-23 10:45"), "lan": at("2026-11-23 10:45", PARIS)}


@pytest.mark.parametrize(
    ("when", "minh", "lan"),
    [
        pytest.param("2026-11-23 21:00", "2026-11-24 06:00", "2026-11-24 06:00", id="evening"),
        # 02:00 in Ho Chi Minh City is 20:00 the evening before in Paris
        pytest.param("2026-11-24 02:00", "2026-11-24 06:00", "2026-11-24 06:00", id="small-hours"),
        pytest.param("2026-11-24 06:00", "2026-11-25 06:00", "2026-11-24 06:00", id="at-six"),
    ],
)
def test_until_tomorrow_is_the_next_six_in_the_morning_in_each_zone(
    config: Config, when: str, minh: str, lan: str
) -> None:
    ends = actions.ends_for(config, ["minh", "lan"], tomorrow=True, required=True, now=at(when))
    assert ends == {"minh": at(minh), "lan": at(lan, PARIS)}


def test_until_tomorrow_across_a_clock_change_is_still_six_oclock(config: Config) -> None:
    evening = at("2026-10-24 21:00", PARIS)  # Paris goes back to winter time that night
    (end,) = actions.ends_for(config, ["lan"], tomorrow=True, required=True, now=evening).values()
    assert datetime.fromtimestamp(end, PARIS).strftime("%Y-%m-%d %H:%M") == "2026-10-25 06:00"
    assert end - evening == 10 * 3600  # an hour more than the clock shows


def test_without_an_end_it_lasts_until_resumed_unless_one_is_required(config: Config) -> None:
    assert actions.ends_for(config, ["minh"], required=False, now=NOW) == {"minh": UNTIL_RESUMED}
    with pytest.raises(ActionError, match="say how long: --for 45m or --until 10:45"):
        actions.ends_for(config, ["minh"], required=True, now=NOW)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"duration": "30"}, '--for needs a unit: 30m, 2h, 1d (not "30")'),
        ({"duration": "30x"}, '--for "30x" is not a duration like 45m, 2h or 1d'),
        ({"duration": "0m"}, "--for must be more than 0"),
        ({"duration": -5}, "--for must be more than 0"),
        ({"duration": float("inf")}, "not forever"),
        ({"until": "10.45"}, '--until "10.45" is not a time of day like 10:45'),
        ({"until": "09:59"}, "--until 09:59: it is already 10:00 for minh (Asia/Ho_Chi_Minh); "
                             "give a later time today, or --for"),
        ({"duration": "1h", "tomorrow": True}, "give one end"),
        ({"duration": "1h", "profiles": ["nobody"]}, "no profile 'nobody'; profiles: minh, lan"),
        ({"duration": "1h", "profiles": []}, "name at least one profile"),
    ],
)  # fmt: skip
def test_an_end_that_cannot_be_is_one_clear_line(
    config: Config, options: dict[str, object], message: str
) -> None:
    profiles = options.pop("profiles", ["minh"])
    with pytest.raises(ActionError) as caught:
        actions.ends_for(config, profiles, required=True, now=NOW, **options)  # type: ignore[arg-type]
    assert message in str(caught.value) and "\n" not in str(caught.value)


# Changes, and who made them


def test_every_change_is_recorded_with_who_and_through_which_door(config: Config) -> None:
    soon = {"minh": NOW + 1800, "lan": NOW + 1800}
    paused = actions.pause(config, ["minh"], {"minh": UNTIL_RESUMED}, reason="dinner",
                           by="anna", via="web", now=NOW)  # fmt: skip
    allowed = actions.allow_domains(config, ["minh", "lan"], ["YouTube.com."], soon,
                                    by="mr-hai", via="cli", now=NOW)  # fmt: skip
    exam = actions.block_all(config, ["lan"], soon, reason="exam", by="mr-hai", via="api", now=NOW)
    games = actions.allow_category(config, "minh", "games", soon, reason="", by="anna",
                                   via="web", now=NOW)  # fmt: skip
    top_up = actions.top_up(config, "minh", "games", 30, by="anna", via="web", now=NOW)
    assert [g.kind for g in (*paused, *allowed, *exam, *games, top_up)] == [
        GrantKind.PAUSE, GrantKind.ALLOW_DOMAIN, GrantKind.ALLOW_DOMAIN, GrantKind.BLOCK_ALL,
        GrantKind.ALLOW_CATEGORY, GrantKind.BUDGET,
    ]  # fmt: skip
    assert [g.domain for g in allowed] == ["youtube.com", "youtube.com"]
    assert paused[0].created_by == "anna" and top_up.minutes == 30
    assert actions.resume(config, ["minh"], by="bo", via="cli", now=NOW) == paused
    assert actions.revoke(config, exam[0].id, by="mr-hai", via="cli", now=NOW) == exam[0]
    assert actions.revoke(config, 99, by="mr-hai", via="cli", now=NOW) is None  # no row for it
    assert recorded(config) == [
        ("anna", "web", "pause", "minh", "paused until resumed (dinner)"),
        ("mr-hai", "cli", "allow", "minh", "youtube.com allowed until 10:30"),
        ("mr-hai", "cli", "allow", "lan", "youtube.com allowed until 04:30"),  # Paris time
        ("mr-hai", "api", "block-all", "lan", "everything blocked until 04:30 (exam)"),
        ("anna", "web", "allow-category", "minh", "category games allowed until 10:30"),
        ("anna", "web", "top-up", "minh", "+30 min of budget games until 2026-11-24 00:00"),
        ("bo", "cli", "resume", "minh", "ended: paused until resumed"),
        ("mr-hai", "cli", "revoke", "lan", f"revoked #{exam[0].id}: everything blocked until "
                                          "04:30"),
    ]  # fmt: skip
    assert [g.id for g in actions.active(config, profile="minh", now=NOW)] == [
        allowed[0].id, games[0].id, top_up.id,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("act", "message"),
    [
        (lambda c: actions.allow_domains(c, ["minh"], ["not a name"], {"minh": NOW + 60},
                                         by="a", via="cli", now=NOW),
         "'not a name' is not a domain name"),
        (lambda c: actions.allow_domains(c, ["minh"], [], {"minh": NOW + 60}, by="a",
                                         via="cli", now=NOW), "name at least one domain"),
        (lambda c: actions.allow_category(c, "minh", "knitting", {"minh": NOW + 60}, reason="",
                                          by="a", via="cli", now=NOW), "no category 'knitting'"),
        (lambda c: actions.top_up(c, "minh", "video", 30, by="a", via="cli", now=NOW),
         "minh has no budget 'video'; budgets: games"),
        (lambda c: actions.top_up(c, "lan", "games", 30, by="a", via="cli", now=NOW),
         "lan has no budget 'games'; budgets: none"),
        (lambda c: actions.top_up(c, "minh", "games", 0, by="a", via="cli", now=NOW),
         "must be more than 0"),
        (lambda c: actions.pause(c, ["minh", "lan"], {"minh": NOW + 60}, by="a", via="cli",
                                 now=NOW), "no end given for lan"),
        (lambda c: actions.pause(c, ["minh"], {"minh": NOW - 60}, by="a", via="cli", now=NOW),
         "already past"),
        (lambda c: actions.pause(c, ["minh"], {"minh": NOW + 60}, by="a", via="mail", now=NOW),
         "via 'mail' is not one of cli, web, api"),
        (lambda c: actions.resume(c, ["nobody"], by="a", via="cli", now=NOW),
         "no profile 'nobody'"),
    ],
)  # fmt: skip
def test_a_change_that_cannot_be_made_says_why_and_leaves_nothing(
    config: Config, act: object, message: str
) -> None:
    with pytest.raises(ActionError, match=message):
        act(config)  # type: ignore[operator]
    assert actions.active(config, now=NOW) == []
    assert recorded(config) == []


def test_a_change_that_cannot_be_recorded_is_still_made(
    config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    database = config.log.database
    dbfile.prepare(database, now=NOW, repair=False)
    with contextlib.closing(sqlite3.connect(database)) as db:
        db.execute("CREATE TRIGGER full BEFORE INSERT ON changes BEGIN "
                   "SELECT RAISE(ABORT, 'disk full'); END")  # fmt: skip
        db.commit()
    with caplog.at_level(logging.WARNING):
        (made,) = actions.pause(config, ["minh"], {"minh": NOW + 60}, by="anna", via="web",
                                now=NOW)  # fmt: skip
    assert actions.active(config, now=NOW) == [made]
    assert "cannot record the change in" in caplog.text and "disk full" in caplog.text


def test_recent_changes_newest_first_of_some_profiles(config: Config) -> None:
    database = config.log.database
    assert changes.recent(database) == []  # no file yet
    for i, profile in enumerate(["minh", "lan", "minh", None]):
        assert changes.record(database, who="anna", via="web", action="pause", profile=profile,
                              detail=f"#{i}", now=NOW + i)  # fmt: skip
    assert [c.detail for c in changes.recent(database)] == ["#3", "#2", "#1", "#0"]
    assert [c.detail for c in changes.recent(database, profiles=["minh"])] == ["#2", "#0"]
    assert [c.detail for c in changes.recent(database, limit=1)] == ["#3"]
    assert changes.recent(database, limit=1)[0].to_json()["profile"] is None


# Budgets


def test_budgets_show_minutes_used_and_top_ups_of_today(config: Config) -> None:
    database = config.log.database
    dbfile.prepare(database, now=NOW, repair=False)
    with contextlib.closing(sqlite3.connect(database)) as db:
        db.execute("INSERT INTO budget_usage VALUES ('minh', 'games', '2026-11-23', 25)")
        db.execute("INSERT INTO budget_usage VALUES ('minh', 'games', '2026-11-22', 60)")
        db.commit()
    (row,) = actions.budgets(config, now=NOW)
    assert (row.profile, row.day, row.used, row.minutes, row.left) == ("minh", "2026-11-23",
                                                                       25, 60, 35)  # fmt: skip
    actions.top_up(config, "minh", "games", 30, by="anna", via="web", now=NOW)
    (row,) = actions.budgets(config, profile="minh", now=NOW)
    assert row.to_json() == {
        "profile": "minh", "budget": "games", "day": "2026-11-23", "categories": ["games"],
        "applies": True, "used": 25, "minutes": 90, "left": 65,
    }  # fmt: skip
    assert actions.budgets(config, profile="lan", now=NOW) == []


# Status


def states(config: Config, when: float) -> dict[str, tuple[str, str | None, float | None]]:
    found = actions.status(config, actions.policy_for(config, now=when), now=when)
    return {s.profile: (s.state, s.label, s.until) for s in found}


@pytest.mark.parametrize(
    ("when", "state", "label", "until"),
    [
        pytest.param("2026-11-23 10:00", "restricted", "school", "2026-11-23 16:30",
                     id="school-blocks-games"),
        pytest.param("2026-11-23 17:00", "allowed", None, "2026-11-23 21:00", id="afternoon"),
        pytest.param("2026-11-23 22:00", "bedtime", "bedtime", "2026-11-24 06:30",
                     id="band-bedtime"),
        pytest.param("2026-11-24 17:00", "allowed", None, "2026-11-24 18:00",
                     id="until-homework"),
        pytest.param("2026-11-24 18:30", "blocked", "homework", "2026-11-24 19:00",
                     id="homework-blocks-everything"),
    ],
)  # fmt: skip
def test_the_state_of_a_profile_and_when_it_next_changes(
    config: Config, when: str, state: str, label: str | None, until: str
) -> None:
    assert states(config, at(when))["minh"] == (state, label, at(until))


def test_a_pause_shows_who_until_when_and_what_comes_after(config: Config) -> None:
    actions.pause(config, ["minh"], {"minh": NOW + 1800}, reason="exam", by="anna", via="web",
                  now=NOW)  # fmt: skip
    (minh, lan, *_) = actions.status(config, actions.policy_for(config, now=NOW), now=NOW)
    assert (minh.state, minh.label) == ("paused", "paused by anna until 10:30 (exam)")
    assert minh.until == minh.paused_until == NOW + 1800  # then school hours again
    assert [g.kind for g in minh.grants] == [GrantKind.PAUSE] and lan.grants == ()
    assert (minh.display_name, [b.budget for b in minh.budgets]) == ("Minh", ["games"])
    assert (lan.state, lan.paused_until) == ("allowed", None)
    shown = minh.to_json()
    assert (shown["state"], shown["budgets"][0]["left"]) == ("paused", 60)  # type: ignore[index]


def test_a_pause_until_resumed_has_no_end(config: Config) -> None:
    actions.pause(config, ["minh"], {"minh": UNTIL_RESUMED}, by="anna", via="cli", now=NOW)
    (minh, *_) = actions.status(config, actions.policy_for(config, now=NOW), now=NOW)
    assert (minh.state, minh.until, minh.paused_until) == ("paused", None, UNTIL_RESUMED)


def test_a_budget_used_up_restricts_until_midnight(config: Config) -> None:
    when = at("2026-11-23 17:00")
    dbfile.prepare(config.log.database, now=when, repair=False)
    with contextlib.closing(sqlite3.connect(config.log.database)) as db:
        db.execute("INSERT INTO budget_usage VALUES ('minh', 'games', '2026-11-23', 60)")
        db.commit()
    assert states(config, when)["minh"] == ("restricted", "budget games used up",
                                            at("2026-11-23 21:00"))  # then bedtime  # fmt: skip
    actions.top_up(config, "minh", "games", 15, by="anna", via="web", now=when)
    assert states(config, when)["minh"][:2] == ("allowed", None)


# The command line's front door


def test_the_status_command_and_the_cli_door(
    config: Config,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SUDO_USER", "anna")
    monkeypatch.setenv("COLUMNS", "160")  # the table on a wide terminal: no name wrapped
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(CONFIG).replace("DATABASE", str(config.log.database)))
    run = ["-c", str(path)]
    assert main([*run, "pause", "lan", "--until", "tomorrow", "--reason", "late"]) == 0
    assert capsys.readouterr().out.startswith("lan: paused by anna until 06:00 (late), #1")
    assert main([*run, "status", "lan", "--json"]) == 0
    (lan,) = json.loads(capsys.readouterr().out)
    assert (lan["state"], lan["label"]) == ("paused", "paused by anna until 06:00 (late)")
    assert main([*run, "status"]) == 0
    table = capsys.readouterr().out
    assert "Minh (minh)" in table and "paused by anna" in table
    assert main([*run, "status", "nobody"]) == 1
    assert capsys.readouterr().out.startswith("no profile 'nobody'; profiles: minh, lan")
    ((who, via, action, profile, detail),) = recorded(config)
    assert (who, via, action, profile) == ("anna", "cli", "pause", "lan")
    assert detail.startswith("paused until ") and detail.endswith("06:00 (late)")  # maybe a date


def test_a_request_approved_by_two_people_at_once_leaves_one_grant(config: Config) -> None:
    from filterdns.web.asks import RequestStore

    store = RequestStore(config.log.database)
    asked = store.add("192.168.1.20", "minh", "khanacademy.org", "maths", now=NOW)
    ends = {"minh": NOW + 3600}
    done, made = actions.decide_request(config, store, asked.id, approve=True, ends=ends,
                                        by="anna", via="web", now=NOW)  # fmt: skip
    assert (done.state, done.grant_id, made[0].domain) == (
        "approved",
        made[0].id,
        "khanacademy.org",
    )
    with pytest.raises(ActionError, match="already approved by anna"):
        actions.decide_request(
            config, store, asked.id, approve=False, by="binh", via="api", now=NOW
        )
    # The second approval lost the race after the first check: its grant is taken back.
    second = store.add("192.168.1.20", "minh", "wikipedia.org", "", now=NOW)
    original = store.decide

    def decided_meanwhile(request_id: int, **kwargs: object) -> object:
        original(request_id, approve=False, by="binh", now=NOW)
        return original(request_id, **kwargs)  # type: ignore[arg-type]

    store.decide = decided_meanwhile  # type: ignore[method-assign]
    with pytest.raises(ActionError):
        actions.decide_request(config, store, second.id, approve=True, ends=ends, by="anna",
                               via="web", now=NOW)  # fmt: skip
    assert [g.domain for g in actions.active(config, now=NOW)] == ["khanacademy.org"]
    assert ("binh", "api", "decline", "minh") not in [r[:4] for r in recorded(config)]
