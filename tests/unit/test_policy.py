"""The policy, decided at fixed instants over a small index: the decision order of the README."""

from __future__ import annotations

import textwrap
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from filterdns.config import Config, default_config, load_config_text
from filterdns.lists.index import DomainIndex
from filterdns.lists.indexbuild import IndexBuilder
from filterdns.lists.indexfile import ListInfo
from filterdns.policy.decisions import Policy
from filterdns.policy.values import Grant

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
CONFIG = """\
server: {timezone: Asia/Ho_Chi_Minh}
calendars:
  holidays: ["2026-12-24..2027-01-04"]
profiles:
  minh:
    age_band: 9-12
    allow: [khanacademy.org]
    block: [roblox.com]
    schedules:
      - {name: school, days: [mon-fri], from: "07:30", to: "16:30", block: [games, video],
         except: holidays}
      - {name: weekend-games, days: [sat], from: "14:00", to: "17:00",
         allow_categories: [games]}
      - {name: homework, days: [tue], from: "18:00", to: "19:00", block: all,
         allow: [olm.vn]}
  teen: {age_band: 16-17}
  grownup: {age_band: adult}
default_profile: teen
"""
LISTS = {
    ("gambling", "/lists/gambling.txt"): ["casino.example"],
    ("games", "/lists/games.txt"): ["games.example", "roblox.com"],
    ("video", "/lists/video.txt"): ["tube.example"],
    ("bypass", "/lists/bypass.txt"): ["vpn.example"],
    ("malware", "/lists/malware.txt"): ["evil.example"],
    ("adult", "/lists/adult.txt"): ["adult.example"],
}
ALLOW = {("games", "/lists/games.txt"): ["edu.games.example"]}


def config(text: str = CONFIG) -> Config:
    defaults = default_config(is_root=False)
    return load_config_text(textwrap.dedent(text), source="<test>", defaults=defaults)


def index() -> DomainIndex:
    builder = IndexBuilder()
    for (category, source), names in LISTS.items():
        builder.add_many(builder.add_list(ListInfo(category, source)), names)
    for (category, source), names in ALLOW.items():
        builder.add_many(builder.add_list(ListInfo(category, source, allow=True)), names)
    return builder.finish()


def at(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=TZ).timestamp()


def sut(grants: tuple[Grant, ...] = ()) -> Policy:
    built = index()
    return Policy(config(), lambda: built, lambda: grants)


# 2026-11-23 is a Monday.
@pytest.mark.parametrize(
    ("profile", "name", "when", "action", "step", "category"),
    [
        pytest.param("minh", "example.com", "2026-11-23 17:00", "allow", 8, None, id="plain"),
        pytest.param("minh", "www.casino.example", "2026-11-23 17:00", "block", 6, "gambling",
                     id="band-category-subdomain"),
        pytest.param("minh", "evil.example", "2026-11-23 17:00", "block", 6, "malware",
                     id="always-blocked"),
        pytest.param("minh", "games.example", "2026-11-23 17:00", "allow", 8, None,
                     id="games-not-blocked-after-school"),
        pytest.param("minh", "games.example", "2026-11-23 10:00", "block", 6, "games",
                     id="school-blocks-games"),
        pytest.param("minh", "edu.games.example", "2026-11-23 10:00", "allow", 8, None,
                     id="allow-entry-excepts-its-category"),
        pytest.param("minh", "games.example", "2026-12-28 10:00", "allow", 8, None,
                     id="school-holiday"),
        pytest.param("minh", "roblox.com", "2026-11-28 15:00", "block", 6, None,
                     id="profile-block-beats-category-allowance"),
        pytest.param("minh", "example.com", "2026-11-23 22:00", "block", 5, None,
                     id="band-bedtime"),
        pytest.param("minh", "example.com", "2026-11-24 03:00", "block", 5, None,
                     id="bedtime-crosses-midnight"),
        pytest.param("minh", "example.com", "2026-11-28 06:45", "block", 5, None,
                     id="friday-bedtime-lasts-to-7"),
        pytest.param("minh", "www.khanacademy.org", "2026-11-23 22:00", "allow", 3, None,
                     id="profile-allow-beats-bedtime"),
        pytest.param("minh", "olm.vn", "2026-11-24 18:30", "allow", 3, None,
                     id="homework-allow-list"),
        pytest.param("minh", "example.com", "2026-11-24 18:30", "block", 5, None,
                     id="homework-blocks-the-rest"),
        pytest.param("minh", "www.adult.example", "2026-11-24 01:00", "block", 5, "adult",
                     id="bedtime-keeps-the-category"),
        pytest.param("minh", "casino.example", "2026-11-24 18:30", "block", 5, "gambling",
                     id="homework-keeps-the-category"),
        pytest.param("minh", "games.example", "2026-11-23 22:00", "block", 5, "games",
                     id="bedtime-keeps-a-category-not-blocked-by-day"),
        pytest.param("minh", "edu.games.example", "2026-11-23 22:00", "block", 5, "games",
                     id="bedtime-blocks-a-category-exception-too"),
        pytest.param("minh", "vpn.example", "2026-11-23 17:00", "block", 4, "bypass",
                     id="bypass-category"),
        pytest.param("minh", "use-application-dns.net", "2026-11-23 17:00", "nxdomain", 4,
                     "bypass", id="firefox-canary"),
        pytest.param("minh", "mask-h2.icloud.com", "2026-11-23 17:00", "nxdomain", 4, "bypass",
                     id="private-relay"),
        pytest.param("minh", "_dns.resolver.arpa", "2026-11-23 17:00", "nodata", 4, "bypass",
                     id="ddr"),
        pytest.param("minh", "www.google.com.vn", "2026-11-23 17:00", "rewrite", 7, None,
                     id="safesearch-google-cctld"),
        pytest.param("teen", "www.youtube.com", "2026-11-23 17:00", "allow", 8, None,
                     id="teen-youtube-unrestricted"),
        pytest.param("teen", "games.example", "2026-11-23 23:30", "allow", 8, None,
                     id="teen-no-bedtime"),
        pytest.param("grownup", "vpn.example", "2026-11-23 17:00", "allow", 8, None,
                     id="adult-band-no-bypass-protection"),
        pytest.param("grownup", "evil.example", "2026-11-23 17:00", "block", 6, "malware",
                     id="adult-band-still-blocks-malware"),
    ],
)  # fmt: skip
def test_decision_order(
    profile: str, name: str, when: str, action: str, step: int, category: str | None
) -> None:
    decision = sut().decide(profile, name, at(when))
    assert (decision.action, decision.step, decision.category) == (action, step, category)


@pytest.mark.parametrize(
    ("name", "target"),
    [
        pytest.param("www.google.com", "forcesafesearch.google.com", id="google"),
        pytest.param("google.co.uk", "forcesafesearch.google.com", id="google-co-uk"),
        pytest.param("www.bing.com", "strict.bing.com", id="bing"),
        pytest.param("duckduckgo.com", "safe.duckduckgo.com", id="duckduckgo"),
        pytest.param("www.youtube.com", "restrict.youtube.com", id="youtube-strict"),
        pytest.param("m.youtube.com", "restrict.youtube.com", id="youtube-mobile"),
    ],
)
def test_safesearch_targets(name: str, target: str) -> None:
    decision = sut().decide("minh", name, at("2026-11-23 17:00"))
    assert (decision.action, decision.target) == ("rewrite", target)


def test_blocked_and_allowed_answers_live_no_longer_than_the_next_change() -> None:
    policy = sut()
    before_bedtime = policy.decide("minh", "example.com", at("2026-11-23 20:59"))
    in_bedtime = policy.decide("minh", "example.com", at("2026-11-24 06:29"))
    assert before_bedtime.action == "allow" and before_bedtime.ttl_cap == 60
    assert in_bedtime.action == "block" and in_bedtime.ttl_cap == 60
    after = policy.decide("minh", "example.com", at("2026-11-24 06:30"))
    assert after.action == "allow"  # the state is recomputed at the change


def test_a_grant_allows_until_it_expires() -> None:
    now = at("2026-11-23 10:00")
    grant = Grant(1, "minh", now + 45 * 60, category="games")
    policy = sut((grant,))
    during = policy.decide("minh", "games.example", now)
    assert (during.action, during.ttl_cap) == ("allow", 45 * 60)
    assert policy.decide("minh", "games.example", now + 45 * 60).action == "block"
    assert sut((grant,)).decide("teen", "casino.example", now).action == "block"  # only minh


def test_a_domain_grant_beats_bedtime() -> None:
    now = at("2026-11-23 22:00")
    grant = Grant(2, "minh", now + 600, domain="school.edu.vn")
    decision = sut((grant,)).decide("minh", "www.school.edu.vn", now)
    assert (decision.action, decision.step) == ("allow", 3)
    assert "grant #2" in (decision.rule or "")


def test_explain_traces_every_step_and_names_the_list() -> None:
    decision = sut().decide("minh", "www.casino.example", at("2026-11-23 17:00"), explain=True)
    steps = [line[0] for line in decision.trace]
    # The profile's schedule rules first (step 2: the profile as it stands now), then the steps.
    assert steps[steps.index("3") :] == ["3", "4", "5", "6"]
    assert set(steps[: steps.index("3")]) == {"2"}
    assert decision.source == "/lists/gambling.txt"
    assert decision.listed == "casino.example"
    assert "age band 9-12" in (decision.rule or "")


def test_dst_day_bedtime_starts_on_local_time() -> None:
    text = CONFIG.replace("Asia/Ho_Chi_Minh", "Europe/Berlin")
    built = index()
    policy = Policy(config(text), lambda: built)
    berlin = ZoneInfo("Europe/Berlin")
    # 2026-03-29: clocks go from 02:00 to 03:00; the Sunday bedtime still starts at 21:00 local.
    start = datetime(2026, 3, 29, 21, 0, tzinfo=berlin).timestamp()
    assert policy.decide("minh", "example.com", start - 60).action == "allow"
    assert policy.decide("minh", "example.com", start).action == "block"


def test_a_list_reload_takes_effect_on_the_next_query() -> None:
    holder = [DomainIndex.empty()]
    policy = Policy(config(), lambda: holder[0])
    now = at("2026-11-23 10:00")
    assert policy.decide("minh", "casino.example", now).action == "allow"
    holder[0] = index()  # the lists were rebuilt and swapped in
    assert policy.decide("minh", "casino.example", now).action == "block"


def test_under_nine_blocks_games_unless_a_schedule_opens_them() -> None:
    built = index()
    policy = Policy(
        config(
            """\
            server: {timezone: Asia/Ho_Chi_Minh}
            profiles:
              an: {age_band: under-9}
              binh:
                age_band: under-9
                schedules:
                  - {days: daily, from: "09:00", to: "12:00", allow_categories: [games]}
            """
        ),
        lambda: built,
    )
    assert policy.decide("an", "roblox.com", at("2026-11-23 10:00")).category == "games"
    assert policy.decide("binh", "roblox.com", at("2026-11-23 10:00")).action == "allow"
    assert policy.decide("binh", "roblox.com", at("2026-11-23 13:00")).action == "block"
