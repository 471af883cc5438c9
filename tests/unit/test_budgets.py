"""Time budgets decided at fixed instants: how a minute is counted, the block once spent, the
reset at midnight in the profile's zone (across a DST change too), top-ups, and usage stored
and read back."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from filterdns.errors import ConfigError
from filterdns.lists.index import DomainIndex
from filterdns.lists.indexbuild import IndexBuilder
from filterdns.lists.indexfile import ListInfo
from filterdns.policy.budgets import BudgetMeter
from filterdns.policy.decisions import Policy
from filterdns.policy.values import Grant, GrantKind
from tests.unit.test_policy import config

BERLIN = ZoneInfo("Europe/Berlin")
# 2026-10-23 is a Friday; Berlin leaves summer time at 03:00 on Sunday 2026-10-25.
CONFIG = """\
server: {timezone: Europe/Berlin}
profiles:
  minh:
    age_band: 13-15
    bedtime: []
    budgets:
      - {name: games, categories: [games], per_day: 3m, days: [mon-fri]}
      - {name: weekend, categories: [games, video], per_day: 2m, days: [sat, sun]}
  lan:
    age_band: 9-12
    budgets:
      - {name: games, categories: [games], per_day: 60m}
    categories: [games]
"""
LISTS = {
    "games": ["games.example", "play.example", "roblox.com"],
    "video": ["tube.example"],
}


def policy(grants: tuple[Grant, ...] = ()) -> Policy:
    built = _index(LISTS)
    return Policy(config(CONFIG), lambda: built, lambda: grants)


def at(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BERLIN).timestamp()


def look(sut: Policy, names: list[str], now: float, profile: str = "minh") -> str:
    """Each name looked up (and counted when allowed) at `now`; the last decision's action."""
    action = ""
    for name in names:
        decision = sut.decide(profile, name, now)
        if decision.action == "allow":
            sut.count(decision, name, now)
        action = decision.action
    return action


def play(sut: Policy, start: float, minutes: int) -> None:
    """`minutes` minutes of play: two names a minute."""
    for minute in range(minutes):
        look(sut, ["games.example", "play.example"], start + 60 * minute)


@pytest.mark.parametrize(
    ("lookups", "counted"),
    [
        pytest.param(["games.example"], 0, id="one-lookup-is-chatter"),
        pytest.param(["games.example"] * 2, 0, id="one-name-twice-is-chatter"),
        pytest.param(["games.example"] * 3, 1, id="three-lookups-count"),
        pytest.param(["games.example", "play.example"], 1, id="two-names-count"),
        pytest.param(["games.example", "play.example"] * 20, 1, id="a-minute-counts-once"),
        pytest.param(["example.org", "news.example"], 0, id="other-names-never-count"),
    ],
)
def test_a_minute_counts_when_it_holds_use_not_chatter(lookups: list[str], counted: int) -> None:
    sut = policy()
    look(sut, lookups, at("2026-10-23 15:00:10"))
    assert sut.meter.used.get(("minh", "games", "2026-10-23"), 0) == counted


def test_background_chatter_all_day_eats_nothing() -> None:
    sut = policy()
    for minute in range(600):  # one name once a minute for ten hours
        look(sut, ["games.example"], at("2026-10-23 08:00:00") + 60 * minute)
    assert look(sut, ["games.example"], at("2026-10-23 18:00:30")) == "allow"
    assert sut.meter.minutes("minh", "games", datetime(2026, 10, 23).date()) == 0


def test_a_spent_budget_blocks_its_categories_until_midnight() -> None:
    sut = policy()
    start = at("2026-10-23 15:00:00")
    play(sut, start, 2)
    allowed = sut.decide("minh", "roblox.com", start + 150)
    assert (allowed.action, allowed.ttl_cap) == ("allow", 60)  # counted: a short TTL
    play(sut, start + 180, 1)  # the third minute
    blocked = sut.decide("minh", "roblox.com", start + 240)
    assert (blocked.action, blocked.step, blocked.category) == ("block", 5, "games")
    assert blocked.rule == "budget games (profiles.minh.budgets[0], line 7): 3 min used today"
    assert sut.decide("minh", "tube.example", start + 240).action == "allow"  # not metered
    assert sut.decide("minh", "example.org", start + 240).action == "allow"
    assert sut.decide("lan", "games.example", start + 240).step == 6  # the band blocks it
    late = sut.decide("minh", "games.example", at("2026-10-23 23:59:30"))
    assert (late.action, late.ttl_cap) == ("block", 30)  # the block ends at midnight
    assert sut.decide("minh", "games.example", at("2026-10-24 00:00:00")).action == "allow"


def test_youtube_in_restricted_mode_still_spends_a_video_budget() -> None:
    sut = Policy(
        config(
            "server: {timezone: Europe/Berlin}\n"
            "profiles:\n"
            "  minh:\n"
            "    age_band: 13-15\n"
            "    bedtime: []\n"
            "    youtube: moderate\n"
            "    budgets: [{name: video, categories: [video], per_day: 2m}]\n"
        ),
        lambda: _index({"video": ["youtube.com"]}),
        lambda: (),
    )
    start = at("2026-10-23 15:00:00")
    rewritten = sut.decide("minh", "www.youtube.com", start)
    assert (rewritten.action, rewritten.target) == ("rewrite", "restrictmoderate.youtube.com")
    assert rewritten.ttl_cap == 60  # short, so the next lookup is counted too
    for minute in range(2):
        for name in ("www.youtube.com", "m.youtube.com"):
            sut.count(sut.decide("minh", name, start + 60 * minute), name, start + 60 * minute)
    spent = sut.decide("minh", "www.youtube.com", start + 150)
    assert (spent.action, spent.step, spent.category) == ("block", 5, "video")


def _index(lists: dict[str, list[str]]) -> DomainIndex:
    builder = IndexBuilder()
    for category, names in lists.items():
        builder.add_many(builder.add_list(ListInfo(category, f"/lists/{category}.txt")), names)
    return builder.finish()


def test_explain_shows_step_5b() -> None:
    sut = policy()
    play(sut, at("2026-10-23 15:00:00"), 3)
    decision = sut.decide("minh", "games.example", at("2026-10-23 16:00:00"), explain=True)
    assert any(line.startswith("5b. blocked: games.example") for line in decision.trace)


def test_the_day_resets_at_midnight_in_the_profiles_zone_across_a_dst_change() -> None:
    sut = policy()
    # Saturday 24th, the last summer-time day: the weekend budget of 2 minutes is spent.
    play(sut, at("2026-10-24 23:50:00"), 2)
    assert look(sut, ["tube.example"], at("2026-10-24 23:55:00")) == "block"
    decision = sut.decide("minh", "tube.example", at("2026-10-24 23:58:00"))
    assert decision.ttl_cap == 120  # midnight comes in 2 minutes (UTC+2)
    # Sunday 25th has 25 hours; its midnight is 23:00 UTC the next, not 22:00 UTC.
    assert look(sut, ["tube.example"], at("2026-10-25 00:00:00")) == "allow"
    play(sut, at("2026-10-25 23:30:00"), 2)
    assert look(sut, ["tube.example"], at("2026-10-25 23:59:00")) == "block"
    # 23:59:59 on Sunday is 22:59:59 UTC: an hour later than the day before, still Sunday.
    assert sut.decide("minh", "tube.example", at("2026-10-25 23:59:59")).action == "block"
    assert look(sut, ["tube.example"], at("2026-10-26 00:00:00")) == "allow"  # Monday: no budget


def test_a_top_up_grant_adds_minutes_until_midnight() -> None:
    grants: list[Grant] = []
    sut = policy()
    sut._grants = lambda: tuple(grants)  # the grants table as the server reads it
    play(sut, at("2026-10-23 15:00:00"), 3)
    assert look(sut, ["games.example"], at("2026-10-23 15:10:00")) == "block"
    midnight = at("2026-10-24 00:00:00")
    grants.append(Grant(1, "minh", midnight, category="games", kind=GrantKind.BUDGET, minutes=2))
    assert look(sut, ["games.example"], at("2026-10-23 15:11:00")) == "allow"
    assert sut.decide("minh", "tube.example", at("2026-10-23 15:11:00")).action == "allow"
    play(sut, at("2026-10-23 15:12:00"), 2)
    assert look(sut, ["games.example"], at("2026-10-23 15:20:00")) == "block"
    assert look(sut, ["games.example"], at("2026-10-24 00:00:00")) == "allow"  # a new day
    described = "top-up #1 (+2 min of budget games until 2026-10-23 22:00 UTC)"
    assert grants[0].describe() == described


def test_usage_read_back_after_a_restart_keeps_the_block() -> None:
    first = policy()
    play(first, at("2026-10-23 15:00:00"), 3)
    stored = first.meter.drain()
    assert stored == [("minh", "games", "2026-10-23", 3)]
    assert first.meter.drain() == []  # only what changed is written again
    restarted = policy()
    restarted.meter.load(stored)
    assert look(restarted, ["games.example"], at("2026-10-23 15:30:00")) == "block"


def test_a_meter_counts_each_budget_of_a_name() -> None:
    meter = BudgetMeter()
    sut = policy()
    budgets = sut.profiles["minh"].config.budgets
    for name in ("games.example", "tube.example"):
        meter.record("minh", budgets, name, at("2026-10-24 10:00:00"), BERLIN)
    assert meter.minutes("minh", "weekend", datetime(2026, 10, 24).date()) == 1
    assert meter.minutes("minh", "games", datetime(2026, 10, 24).date()) == 1


BAD = """\
profiles:
  minh:
    age_band: 13-15
    budgets:
"""


@pytest.mark.parametrize(
    ("entries", "path", "message", "line"),
    [
        pytest.param("{name: g, categories: [gamez], per_day: 1h}",
                     "profiles.minh.budgets[0].categories[0]", "is not a category", 5,
                     id="unknown-category"),
        pytest.param("{name: g, categories: [games], per_day: soon}",
                     "profiles.minh.budgets[0].per_day", "is not a duration", 5, id="bad-duration"),
        pytest.param("{name: g, categories: [games], per_day: 25h}",
                     "profiles.minh.budgets[0].per_day", "at most 24h", 5, id="over-a-day"),
        pytest.param("{name: g, categories: [games], per_day: 1h}\n      - "
                     "{name: g, categories: [video], per_day: 1h}",
                     "profiles.minh.budgets[1]", "a second budget of that name", 6,
                     id="duplicate"),
        pytest.param("{name: g, per_day: 1h}", "profiles.minh.budgets[0]",
                     "needs categories", 5, id="no-categories"),
        pytest.param("{name: g, categories: [games], per_day: 1h, days: [someday]}",
                     "profiles.minh.budgets[0].days[0]", "", 5, id="bad-day"),
    ],
)  # fmt: skip
def test_budget_problems_name_path_and_line(
    entries: str, path: str, message: str, line: int
) -> None:
    with pytest.raises(ConfigError) as caught:
        config(BAD + "      - " + entries + "\n")
    problems = caught.value.problems
    assert any(p.path == path and message in p.message and p.line == line for p in problems), (
        problems
    )
