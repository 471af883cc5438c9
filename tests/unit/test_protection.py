"""The protection difference between two configurations: what a parent reads, and `weakens`."""

from __future__ import annotations

import functools
import textwrap
from dataclasses import field, make_dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filterdns.config import Config, default_config, load_config_text
from filterdns.errors import ConfigError
from filterdns.lists.index import DomainIndex
from filterdns.lists.indexbuild import IndexBuilder
from filterdns.lists.indexfile import ListInfo
from filterdns.policy.clients import ClientDirectory
from filterdns.policy.decisions import Policy
from filterdns.policy.effective import days_text
from filterdns.policy.protection import EVERY_OTHER_DEVICE, difference

DEFAULTS = default_config(is_root=False)
KIDS = """\
profiles:
  minh:
    age_band: 9-12
    allow: [khanacademy.org]
    block: [roblox.com]
    categories: [games]
  guests: {age_band: 13-15}
clients:
  - {name: minh-tablet, mac: "aa:bb:cc:dd:ee:ff", profile: minh}
  - {name: minh-laptop, ip: 192.168.1.23, profile: minh}
default_profile: guests
"""

BEDTIMES = (
    "sun-thu 21:00-06:30: block all / fri-sat 22:00-07:00: block all",  # band 9-12
    "sun-thu 22:30-06:00: block all",  # band 13-15
)
TO_GUESTS = (  # what a device of minh (9-12) gets as a guest (13-15)
    "age band 9-12 -> 13-15; loses categories social, chat, games; schedule bedtime changed "
    f"({BEDTIMES[0]} -> {BEDTIMES[1]}); YouTube restriction strict -> moderate; no longer always "
    "allows khanacademy.org; no longer blocks roblox.com"
)
TO_MINH = (
    "age band 13-15 -> 9-12; gains categories social, chat, games; schedule bedtime changed "
    f"({BEDTIMES[1]} -> {BEDTIMES[0]}); YouTube restriction moderate -> strict; now always "
    "allows khanacademy.org; now blocks roblox.com"
)


def load(text: str) -> Config:
    return load_config_text(textwrap.dedent(text), source="<test>", defaults=DEFAULTS)


def sut(old: str, new: str) -> tuple[list[str], bool]:
    """The sentences a user reads (weakening ones first) and whether the change weakens."""
    found = difference(load(old), load(new))
    return [change.text for change in found.ordered()], found.weakens


def kids(edit: str = "", *, replace_: tuple[str, str] = ("", "")) -> str:
    """KIDS with `replace_` applied, followed by `edit`."""
    text = KIDS.replace(*replace_) if replace_[0] else KIDS
    return text + textwrap.dedent(edit)


@pytest.mark.parametrize(
    ("old", "new", "expected", "weakens"),
    [
        pytest.param(KIDS, KIDS, [], False, id="nothing-changed"),
        pytest.param(KIDS, KIDS.replace("categories: [games]", "categories: []"),
                     ["profile minh: loses categories games"], True, id="category-dropped"),
        pytest.param(KIDS, KIDS.replace("categories: [games]", "categories: [games, video]"),
                     ["profile minh: gains categories video"], False, id="category-added"),
        pytest.param(KIDS, KIDS.replace("[khanacademy.org]", "[khanacademy.org, youtube.com]"),
                     ["profile minh: now always allows youtube.com"], True, id="allow-grows"),
        pytest.param(KIDS, KIDS.replace("[khanacademy.org]", "[]"),
                     ["profile minh: no longer always allows khanacademy.org"], False,
                     id="allow-shrinks"),
        pytest.param(KIDS, KIDS.replace("block: [roblox.com]", "block: []"),
                     ["profile minh: no longer blocks roblox.com"], True, id="block-shrinks"),
        pytest.param(KIDS, KIDS.replace("[roblox.com]", "[roblox.com, tiktok.com]"),
                     ["profile minh: now blocks tiktok.com"], False, id="block-grows"),
        pytest.param(KIDS, KIDS.replace("age_band: 9-12", "age_band: 9-12\n    safesearch: false"),
                     ["profile minh: loses SafeSearch"], True, id="safesearch-off"),
        pytest.param(KIDS, KIDS.replace("age_band: 9-12", "age_band: 9-12\n    youtube: moderate"),
                     ["profile minh: YouTube restriction strict -> moderate"], True,
                     id="youtube-less-strict"),
        pytest.param(KIDS.replace("{age_band: 13-15}", "{age_band: 13-15, youtube: off}"), KIDS,
                     ["profile guests: YouTube restriction off -> moderate"], False,
                     id="youtube-stricter"),
        pytest.param(KIDS, KIDS.replace("{age_band: 13-15}", "{age_band: 16-17}"),
                     ["profile guests: loses categories dating, violence, piracy",
                      "profile guests: loses schedule bedtime (sun-thu 22:30-06:00: block all)",
                      "profile guests: YouTube restriction moderate -> off",
                      "profile guests: age band 13-15 -> 16-17"], True, id="band-lowered"),
        pytest.param(KIDS, KIDS.replace("clients:", "  new: {age_band: adult}\nclients:"),
                     ["profile new: added (age band adult)"], False, id="profile-added"),
    ],
)  # fmt: skip
def test_profile_changes(old: str, new: str, expected: list[str], weakens: bool) -> None:
    assert sut(old, new) == (expected, weakens)


SCHEDULED = """\
calendars:
  holidays: ["2026-12-24..2027-01-04"]
profiles:
  minh:
    age_band: 9-12
    schedules:
      - {name: school, days: [mon-fri], from: "07:30", to: "16:30", block: [games, video],
         except: holidays}
      - {name: homework, days: [tue, thu], from: "18:00", to: "19:00", block: all,
         allow: [olm.vn]}
"""
SCHOOL_LINES = """\
      - {name: school, days: [mon-fri], from: "07:30", to: "16:30", block: [games, video],
         except: holidays}
"""
WEEKEND_GAMES = (
    '      - {{name: weekend-games, days: [sat], from: "14:00", to: "{to}", '
    "allow_categories: [games]}}\n"
)


SCHOOL_RULE = "mon-fri 07:30-16:30 except holidays: block games, video"


@pytest.mark.parametrize(
    ("new", "expected", "weakens"),
    [
        pytest.param(SCHEDULED.replace('"16:30"', '"15:00"'),
                     [f"profile minh: schedule school changed ({SCHOOL_RULE} -> "
                      "mon-fri 07:30-15:00 except holidays: block games, video)"],
                     True, id="window-shortened"),
        pytest.param(SCHEDULED.replace('"07:30"', '"07:00"'),
                     [f"profile minh: schedule school changed ({SCHOOL_RULE} -> "
                      "mon-fri 07:00-16:30 except holidays: block games, video)"],
                     False, id="window-lengthened"),
        pytest.param(SCHEDULED.replace("block: [games, video]", "block: [games, video, social]"),
                     [f"profile minh: schedule school changed ({SCHOOL_RULE} -> "
                      "mon-fri 07:30-16:30 except holidays: block games, video, social)"],
                     False, id="a-category-more"),
        pytest.param(SCHEDULED.replace("block: [games, video]", "block: [games]"),
                     [f"profile minh: schedule school changed ({SCHOOL_RULE} -> "
                      "mon-fri 07:30-16:30 except holidays: block games)"],
                     True, id="a-category-less"),
        pytest.param(SCHEDULED.replace("[mon-fri]", "[mon-thu]"),
                     [f"profile minh: schedule school changed ({SCHOOL_RULE} -> "
                      "mon-thu 07:30-16:30 except holidays: block games, video)"],
                     True, id="a-day-less"),
        pytest.param(SCHEDULED.replace("block: [games, video]", "block: all"),
                     [f"profile minh: schedule school changed ({SCHOOL_RULE} -> "
                      "mon-fri 07:30-16:30 except holidays: block all)"],
                     False, id="categories-to-block-all"),
        pytest.param(SCHEDULED.replace("allow: [olm.vn]", "allow: [olm.vn, youtube.com]"),
                     ["profile minh: schedule homework changed (tue, thu 18:00-19:00: block all "
                      "but olm.vn -> tue, thu 18:00-19:00: block all but olm.vn, youtube.com)"],
                     True, id="block-all-keeps-another-domain-open"),
        pytest.param(SCHEDULED.replace(SCHOOL_LINES, "").replace(
                         "age_band: 9-12", "age_band: 9-12\n    categories: [games, video]"),
                     ["profile minh: gains categories games, video",
                      f"profile minh: loses schedule school ({SCHOOL_RULE})"],
                     False, id="rule-replaced-by-categories-at-all-times"),
        pytest.param(SCHEDULED.split("      - {name: homework", maxsplit=1)[0],
                     ["profile minh: loses schedule homework (tue, thu 18:00-19:00: block all "
                      "but olm.vn)"], True, id="rule-removed"),
        pytest.param(SCHEDULED + '      - {name: sunday, days: [sun], from: "08:00", to: "10:00",'
                     " block: [social]}\n",
                     ["profile minh: gains schedule sunday (sun 08:00-10:00: block social)"],
                     False, id="blocking-rule-added"),
        pytest.param(SCHEDULED + WEEKEND_GAMES.format(to="17:00"),
                     ["profile minh: gains schedule weekend-games (sat 14:00-17:00: allow games),"
                      " which allows categories"], True, id="allowing-rule-added"),
        pytest.param(SCHEDULED.replace('"2026-12-24..2027-01-04"',
                                       '"2026-12-24..2027-01-04", "2027-02-14"'),
                     [f"profile minh: schedule school changed ({SCHOOL_RULE} -> {SCHOOL_RULE})"],
                     True, id="more-holidays"),
        pytest.param(SCHEDULED + "age_bands:\n  9-12: {schedules: []}\n",
                     [f"profile minh: loses schedule bedtime ({BEDTIMES[0]})"], True,
                     id="band-bedtime-removed"),
        pytest.param(SCHEDULED + "server: {timezone: Europe/Berlin}\n",
                     ["profile minh: schedules read in Europe/Berlin (was the system zone)"], True,
                     id="time-zone"),
    ],
)  # fmt: skip
def test_schedule_changes(new: str, expected: list[str], weakens: bool) -> None:
    assert sut(SCHEDULED, new) == (expected, weakens)


@pytest.mark.parametrize(
    ("old", "new", "weakens"),
    [
        pytest.param("16:00", "17:00", True, id="allowed-longer"),
        pytest.param("17:00", "16:00", False, id="allowed-shorter"),
    ],
)
def test_a_rule_that_allows_weakens_when_it_allows_more(old: str, new: str, weakens: bool) -> None:
    texts, weak = sut(
        SCHEDULED + WEEKEND_GAMES.format(to=old), SCHEDULED + WEEKEND_GAMES.format(to=new)
    )
    assert texts == [
        f"profile minh: schedule weekend-games changed (sat 14:00-{old}: allow games -> "
        f"sat 14:00-{new}: allow games)"
    ]
    assert weak is weakens


@pytest.mark.parametrize(
    ("band", "old", "new", "weakens"),
    [
        pytest.param("9-12", ("21:00", "06:30"), ("20:30", "06:30"), False, id="earlier"),
        pytest.param("9-12", ("21:00", "06:30"), ("21:30", "06:30"), True, id="later"),
        pytest.param("9-12", ("21:00", "06:30"), ("21:00", "07:00"), False, id="ends-later"),
        pytest.param("under-9", ("20:00", "07:00"), ("20:00", "20:00"), False, id="all-day"),
        pytest.param("under-9", ("20:00", "07:00"), ("00:00", "24:00"), False,
                     id="midnight-to-midnight"),
        pytest.param("under-9", ("20:00", "07:00"), ("21:00", "08:00"), True, id="shifted"),
    ],
)  # fmt: skip
def test_bedtime_moved(
    band: str, old: tuple[str, str], new: tuple[str, str], weakens: bool
) -> None:
    def bedtime(window: tuple[str, str]) -> str:
        days = "[sun-thu]" if band == "9-12" else "daily"
        return (
            f"profiles: {{kid: {{age_band: {band}}}}}\nage_bands:\n  {band}: {{schedules: "
            f'[{{name: bedtime, days: {days}, from: "{window[0]}", to: "{window[1]}", '
            "block: all}]}\n"
        )

    _texts, weak = sut(bedtime(old), bedtime(new))
    assert weak is weakens


LAPTOP = "  - {name: minh-laptop, ip: 192.168.1.23, profile: minh}\n"


@pytest.mark.parametrize(
    ("new", "expected", "weakens"),
    [
        pytest.param(KIDS.replace(LAPTOP, ""),
                     ["client minh-laptop (no longer in the file): profile minh -> guests "
                      f"(default): {TO_GUESTS}"], True, id="client-removed-falls-to-the-default"),
        pytest.param(KIDS.replace("ip: 192.168.1.23", "ip: 192.168.1.2"),
                     ["client minh-laptop (its ip 192.168.1.23 now matches no entry): "
                      f"profile minh -> guests (default): {TO_GUESTS}"], True,
                     id="client-address-cut-short"),
        pytest.param(KIDS.replace("192.168.1.23, profile: minh", "192.168.1.23, profile: guests"),
                     [f"client minh-laptop: profile minh -> guests: {TO_GUESTS}"], True,
                     id="client-to-a-weaker-profile"),
        pytest.param(KIDS.replace(LAPTOP, LAPTOP.replace("minh}", "guests}")).replace(
                         "default_profile: guests", "default_profile: minh"),
                     [f"default profile (devices no client rule names): guests -> minh: {TO_MINH}",
                      "client minh-laptop: profile minh -> guests: " + TO_GUESTS], True,
                     id="laptop-and-default-swap"),
        pytest.param(KIDS.replace(LAPTOP, LAPTOP + LAPTOP.replace("minh-laptop", "dad").replace(
                         "192.168.1.23", "192.168.1.50")),
                     [f"client dad (new): profile guests (default) -> minh: {TO_MINH}"], True,
                     id="new-client-gets-an-allow-list"),
        pytest.param(KIDS.replace("name: minh-laptop", "name: laptop"),
                     ["client laptop (new; was client minh-laptop): profile minh (unchanged): the "
                      "same protection",
                      "client minh-laptop (no longer in the file): profile minh (unchanged): the "
                      "same protection"], False, id="client-renamed"),
    ],
)  # fmt: skip
def test_client_changes(new: str, expected: list[str], weakens: bool) -> None:
    texts, weak = sut(KIDS, new)
    assert sorted(texts) == sorted(expected)
    assert weak is weakens


def test_who_names_the_clients_that_lose_and_the_other_devices() -> None:
    new = KIDS.replace("categories: [games]", "categories: []").replace(
        "{age_band: 13-15}", "{age_band: adult}"
    )
    found = difference(load(KIDS), load(new))
    assert found.who() == ("minh-tablet", "minh-laptop", "every other device")
    assert found.to_json()["who"] == ["minh-tablet", "minh-laptop", "every other device"]


QUAD9 = "9.9.9.9:53, 149.112.112.112:53"  # the embedded upstreams
GONE = "(upstreams.servers is gone: the embedded defaults would be asked)"


@pytest.mark.parametrize(
    ("old", "new", "expected", "weakens"),
    [
        pytest.param(KIDS, KIDS.replace("default_profile: guests", "default_profile: minh"),
                     [f"default profile (devices no client rule names): guests -> minh: {TO_MINH}"],
                     True, id="default-with-an-allow-list"),
        pytest.param("blocking: {bypass_protection: true}\n",
                     "blocking: {bypass_protection: false}\n",
                     ["blocking.bypass_protection turned off"], True, id="switch-off"),
        pytest.param("blocking: {bypass_protection: false}\n",
                     "blocking: {bypass_protection: true}\n",
                     ["blocking.bypass_protection turned on"], False, id="switch-on"),
        pytest.param("blocking: {response: nxdomain}\n", "blocking: {response: refused}\n",
                     ["blocking.response: nxdomain -> refused"], False, id="response"),
        pytest.param("lists: {download_defaults: true}\n", "lists: {download_defaults: false}\n",
                     ["lists.download_defaults turned off: the big downloaded default lists are "
                      "dropped"], True, id="download-defaults-off"),
        pytest.param(KIDS + "categories: {adult: [shipped, /l/adult.txt]}\n",
                     KIDS + "categories: {adult: [/l/adult.txt]}\n",
                     ["category adult: sources removed: shipped"], True,
                     id="blocked-category-loses-a-source"),
        pytest.param(KIDS + "categories: {adult: [shipped]}\n",
                     KIDS + "categories: {adult: [/l/adult.txt]}\n",
                     ["category adult: sources removed: shipped",
                      "category adult: sources added: /l/adult.txt"], True,
                     id="blocked-category-source-replaced"),
        pytest.param("categories: {games: [shipped, /l/games.txt]}\n", "cache: {}\n",
                     ["category games: sources removed: /l/games.txt"], False,
                     id="nobody-blocks-games"),
        pytest.param("upstreams: {servers: [185.228.168.168]}\n",
                     "upstreams: {servers: [9.9.9.9]}\n",
                     ["upstreams: 185.228.168.168:53 -> 9.9.9.9:53"], False, id="upstream-edited"),
        pytest.param("upstreams: {servers: [185.228.168.168]}\n", "cache: {}\n",
                     [f"upstreams: 185.228.168.168:53 -> {QUAD9} {GONE}"], True,
                     id="upstreams-section-gone"),
        pytest.param("upstreams:\n  strategy: fastest\n  servers: [185.228.168.168]\n",
                     "upstreams:\n  strategy: fastest\n",
                     [f"upstreams: 185.228.168.168:53 -> {QUAD9} {GONE}"], True,
                     id="upstreams-cut-after-another-key"),
        pytest.param("upstreams: {strategy: fastest}\n", "upstreams: {servers: [9.9.9.9]}\n",
                     [f"upstreams: {QUAD9} -> 9.9.9.9:53"], False, id="defaults-to-one-named"),
        pytest.param("server: {allow_clients: [127.0.0.1]}\n",
                     "server: {allow_clients: [127.0.0.1, 10.0.0.0/8]}\n",
                     ["server.allow_clients now: 127.0.0.1/32, 10.0.0.0/8"], False,
                     id="allow-clients"),
        pytest.param("alerts: [{name: tell, categories: [adult], command: /bin/true}]\n",
                     "cache: {}\n",
                     ["alert tell: removed; nobody is told of blocked adult lookups any more"],
                     True, id="alert-removed"),
    ],
)  # fmt: skip
def test_server_wide_changes(old: str, new: str, expected: list[str], weakens: bool) -> None:
    assert sut(old, new) == (expected, weakens)


@pytest.mark.parametrize(
    ("old", "new", "expected", "weakens", "who"),
    [
        pytest.param(kids("local_records: {printer.lan: 10.0.0.5}\n"),
                     kids("local_records: {printer.lan: 10.0.0.5, nas.lan: [10.0.0.6]}\n"),
                     ["local record nas.lan: added (10.0.0.6)"], False, (), id="added"),
        pytest.param(kids("local_records: {printer.lan: 10.0.0.5}\n"),
                     kids("local_records: {printer.lan: {a: 10.0.0.5, ttl: 1m}}\n"),
                     ["local record printer.lan: changed (10.0.0.5)"], False, (), id="ttl-changed"),
        pytest.param(kids("local_records: {printer.lan: 10.0.0.5}\n"), KIDS,
                     ["local record printer.lan: removed"], False, (), id="removed"),
        pytest.param(KIDS, kids("local_records: {www.roblox.com: {cname: school.lan}}\n"),
                     ["local record www.roblox.com: added (CNAME school.lan); answered before the "
                      "block list of minh"], True, ("minh-tablet", "minh-laptop"),
                     id="a-name-minh-blocks"),
        pytest.param(kids("local_records: {printer.lan: 10.0.0.5}\n"),
                     kids("local_records: {printer.lan: 10.0.0.5}\n"), [], False, (),
                     id="unchanged"),
    ],
)  # fmt: skip
def test_local_record_changes(
    old: str, new: str, expected: list[str], weakens: bool, who: tuple[str, ...]
) -> None:
    found = difference(load(old), load(new))
    assert ([change.text for change in found.changes], found.weakens) == (expected, weakens)
    assert found.who() == who


def test_blocking_keys_are_compared_without_being_named() -> None:
    """A switch or allow list added to `blocking:` later is covered by the same rules."""
    fields_ = [
        ("cname_inspection", bool, field(default=True)),
        ("rebinding_protection", bool, field(default=True)),
        ("rebinding_allow", tuple[str, ...], field(default=())),
    ]
    blocking = make_dataclass("Blocking", fields_, frozen=True)
    old = replace(load(KIDS), blocking=blocking())
    new = replace(old, blocking=blocking(False, True, ("home.arpa",)))
    found = difference(old, new)
    assert [c.text for c in found.ordered()] == [
        "blocking.cname_inspection turned off",
        "blocking.rebinding_allow adds home.arpa",
    ]
    assert found.weakens and found.who() == ("all devices",)


@pytest.mark.parametrize(
    ("days", "text"),
    [
        ({0, 1, 2, 3, 4}, "mon-fri"),
        ({6, 0, 1, 2, 3}, "sun-thu"),
        ({4, 5}, "fri-sat"),
        ({1, 3}, "tue, thu"),
        ({5, 6, 0, 2}, "wed, sat-mon"),
        (set(range(7)), "daily"),
    ],
)
def test_days_read_as_ranges(days: set[int], text: str) -> None:
    assert days_text(frozenset(days)) == text


# A realistic file cut short at every top-level key, and at every line


FAMILY = """\
server:
  listen: ["127.0.0.1:5353"]
  timezone: Asia/Ho_Chi_Minh
upstreams:
  servers: ["185.228.168.168", "185.228.169.168"]
cache: {max_entries: 10000}
lists: {refresh: 24h}
categories:
  gambling: [shipped, /srv/lists/gambling.txt]
calendars:
  school-holidays: ["2026-12-24..2027-01-04"]
age_bands:
  13-15: {youtube: strict}
profiles:
  lan:
    age_band: 13-15
    categories: [games]
  grownups: {age_band: adult}
  minh:
    age_band: 9-12
    schedules:
      - {name: homework, days: [mon-fri], from: "18:00", to: "19:30", block: all,
         allow: [olm.vn]}
      - name: school
        days: [mon-fri]
        from: "07:30"
        to: "16:30"
        block: [games, social, video]
        except: school-holidays
    allow: [khanacademy.org, olm.vn]
    block:
      - roblox.com
      - tiktok.com
clients:
  - {name: minh-tablet, mac: "aa:bb:cc:dd:ee:ff", profile: minh}
  - {name: minh-laptop, ip: 192.168.1.23, profile: minh}
  - {name: lan-phone, ip: 192.168.1.24, profile: lan}
  - {name: dad-laptop, ip: 192.168.1.10, profile: grownups}
  - {name: kids-wifi, cidr: 192.168.50.0/24, profile: lan}
default_profile: lan
blocking:
  response: nxdomain
  bypass_protection: true
alerts:
  - {name: tell-mum, categories: [adult, bypass], threshold: 3, within: 10m,
     command: /usr/local/bin/notify}
report: {lang: vi}
"""


def _sections(text: str) -> dict[str, str]:
    """The top-level sections of `text` by key, each with its lines."""
    found: dict[str, str] = {}
    key = ""
    for line in text.splitlines(keepends=True):
        if line[:1].isalnum():
            key = line.split(":")[0]
        found[key] = found.get(key, "") + line
    return found


# The same settings in another order: the people first, the plumbing last (so a cut inside
# minh's lists or schedules leaves a valid file that loses only those).
SCHOOL = "".join(
    _sections(FAMILY)[key]
    for key in ("server", "clients", "default_profile", "calendars", "age_bands", "profiles",
                "alerts", "blocking", "categories", "upstreams", "cache", "lists", "report")
)  # fmt: skip
PROTECTIVE = {"categories", "calendars", "age_bands", "profiles", "clients", "default_profile",
              "blocking", "alerts", "upstreams"}  # fmt: skip


def _top_level_cuts(text: str) -> list[tuple[str, str]]:
    """(id, prefix) for each prefix of `text` that ends before a top-level key (the first
    one is 0 bytes)."""
    lines = text.splitlines(keepends=True)
    return [
        (f"before-{line.split(':')[0]}", "".join(lines[:i]))
        for i, line in enumerate(lines)
        if line[:1].isalnum()
    ]


CUTS = [
    pytest.param(whole, cut, id=f"{name}-{cut_id}")
    for name, whole in (("family", FAMILY), ("school", SCHOOL))
    for cut_id, cut in _top_level_cuts(whole)
]


def test_the_realistic_files_are_valid_and_differ_in_order_only() -> None:
    assert difference(load(FAMILY), load(SCHOOL)).changes == ()
    assert len(CUTS) == 2 * 13


@pytest.mark.parametrize(("whole", "cut"), CUTS)
def test_a_file_cut_before_a_top_level_key_is_never_applied_quietly(whole: str, cut: str) -> None:
    old = load(whole)
    try:
        new = load(cut)
    except ConfigError:
        return  # refused outright: the running rules stay
    found = difference(old, new)
    dropped = {key for key in old.given if key not in new.given and "." not in key}
    if dropped & PROTECTIVE:
        assert found.weakens, dropped
        gone = {c.name for c in old.clients} - {c.name for c in new.clients}
        named = {c.subject.removeprefix("client ") for c in found.changes}
        assert gone <= named, named
    else:
        assert dropped <= {"report", "cache", "lists", "server"}
        assert not found.weakens, [c.text for c in found.changes]


# Independent of the sentences: every line cut of the file that unblocks anything for anyone
# (a name, a profile, an instant) must be flagged, judged by the policy's own decisions.

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
LISTS = {
    "adult": ["adult.example"], "gambling": ["casino.example"], "games": ["games.example"],
    "social": ["social.example"], "video": ["tube.example"], "bypass": ["vpn.example"],
    "malware": ["evil.example"], "dating": ["dating.example"],
}  # fmt: skip
NAMES = [*(names[0] for names in LISTS.values()), "roblox.com", "tiktok.com", "www.google.com",
         "www.youtube.com", "example.com", "olm.vn", "khanacademy.org"]  # fmt: skip
INSTANTS = [  # 2026-11-23 is a Monday
    datetime(2026, 11, 23, h, m, tzinfo=TZ).timestamp()
    for h, m in ((10, 0), (17, 0), (18, 30), (21, 30), (23, 0))
] + [datetime(2026, 12, 28, 10, 0, tzinfo=TZ).timestamp()]
DEVICES = [("ip", "192.168.1.23"), ("ip", "192.168.1.24"), ("ip", "192.168.1.10"),
           ("ip", "192.168.50.7"), ("ip", "192.168.1.99"),
           ("mac", "aa:bb:cc:dd:ee:ff")]  # fmt: skip
STRENGTH = {"allow": 0, "rewrite": 1, "block": 2, "nxdomain": 2, "nodata": 2}


@functools.cache
def _baseline(whole: str) -> tuple[Config, dict[tuple[str, str, float], int], dict[str, str]]:
    """The whole file's configuration, its answers and who each device is."""
    old = load(whole)
    return old, _answers(old, _index()), _who(old)


@functools.cache
def _index() -> DomainIndex:
    builder = IndexBuilder()
    for category, names in LISTS.items():
        builder.add_many(builder.add_list(ListInfo(category, f"/lists/{category}.txt")), names)
    return builder.finish()


def _who(config: Config) -> dict[str, str]:
    """The client each device is, by address: its entry's name, or every other device."""
    directory = ClientDirectory(config.clients, config.default_profile)
    found = {}
    for kind, address in DEVICES:
        match = directory.match_mac(address) if kind == "mac" else directory.match(address)
        found[address] = match.name if match is not None and match.name else EVERY_OTHER_DEVICE
    return found


def _answers(config: Config, index: DomainIndex) -> dict[tuple[str, str, float], int]:
    """How strongly each device is answered for each name at each instant."""
    policy = Policy(config, lambda: index)
    directory = ClientDirectory(config.clients, config.default_profile)
    answers = {}
    for kind, address in DEVICES:
        match = directory.match_mac(address) if kind == "mac" else directory.match(address)
        profile = match.profile if match is not None else config.default_profile
        for name in NAMES:
            for now in INSTANTS:
                action = policy.decide(profile, name, now).action
                answers[(address, name, now)] = STRENGTH[action]
    return answers


@pytest.mark.parametrize("whole", [FAMILY, SCHOOL], ids=["family", "school"])
def test_every_line_cut_that_unblocks_something_is_flagged(whole: str) -> None:
    lines = whole.splitlines(keepends=True)
    cuts = ["".join(lines[:end]) for end in range(len(lines))]
    assert sum(_flagged_if_weaker(whole, cut) for cut in cuts) > 5


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([FAMILY, SCHOOL]), st.data())
def test_a_cut_at_any_byte_that_unblocks_something_is_flagged(
    whole: str, data: st.DataObject
) -> None:
    """Mid-line too: `ip: 192.168.1.2` from `.23`, `roblox.c` from `roblox.com`, a list cut
    after any entry."""
    _flagged_if_weaker(whole, whole[: data.draw(st.integers(0, len(whole)))])


def _flagged_if_weaker(whole: str, cut: str) -> bool:
    """Assert that `cut`, when valid and weaker for some device, is flagged naming that
    device's client; True when it was weaker."""
    try:
        new = load(cut)
    except ConfigError:
        return False
    old, before, who = _baseline(whole)
    after = _answers(new, _index())
    weaker = [key for key, strength in after.items() if strength < before[key]]
    if not weaker:
        return False
    found = difference(old, new)
    losers = {who[address] for address, _name, _now in weaker}
    assert found.weakens and losers <= set(found.who()), (cut[-60:], losers, found.who())
    return True


# Schedules against the policy itself: a change is flagged exactly when, at some instant of the
# week, the old rules blocked a name the new ones let through.

HALF_HOURS = [f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 30)]
RULE = st.tuples(
    st.sets(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), min_size=1),
    st.sampled_from(HALF_HOURS),
    st.sampled_from([*HALF_HOURS, "24:00"]),
    st.sampled_from(["all", "[games]", "[games, video]"]),
)
MONDAY = datetime(2026, 11, 23, tzinfo=ZoneInfo("UTC")).timestamp()


def _scheduled(rules: list[tuple[set[str], str, str, str]]) -> str:
    lines = [
        f'      - {{name: r{i}, days: [{", ".join(sorted(days))}], from: "{start}", '
        f'to: "{end}", block: {block}}}\n'
        for i, (days, start, end, block) in enumerate(rules)
    ]
    return "server: {timezone: UTC}\nprofiles:\n  kid:\n    age_band: adult\n    schedules:" + (
        "\n" + "".join(lines) if lines else " []\n"
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(RULE, min_size=1, max_size=2), st.lists(RULE, max_size=2))
def test_a_schedule_change_is_flagged_exactly_when_it_unblocks_something(
    old_rules: list[tuple[set[str], str, str, str]], new_rules: list[tuple[set[str], str, str, str]]
) -> None:
    old, new = load(_scheduled(old_rules)), load(_scheduled(new_rules))
    index = _index()
    before, after = Policy(old, lambda: index), Policy(new, lambda: index)
    unblocked = any(
        before.decide("kid", name, now).action == "block"
        and after.decide("kid", name, now).action != "block"
        for now in (MONDAY + 900 + 1800 * step for step in range(7 * 48))
        for name in ("games.example", "tube.example", "example.com")
    )
    assert difference(old, new).weakens is unblocked


def test_a_closer_entry_that_takes_a_network_over_is_named() -> None:
    old = """\
profiles: {kids: {age_band: 13-15}, grown: {age_band: adult}}
clients:
  - {name: room, cidr: 10.6.1.0/24, profile: kids}
default_profile: kids
"""
    new = old.replace("default_profile", "  - {name: half, cidr: 10.6.1.0/25, profile: grown}\n"
                      "default_profile")  # fmt: skip
    texts, weakens = sut(old, new)
    assert [text.split(": age band")[0] for text in texts] == [
        "client room (its cidr 10.6.1.0/24 now matches client half): profile kids -> grown",
        "client half (new; was client room): profile kids -> grown",
    ]
    assert weakens


GAMES = "{name: games, categories: [games], per_day: 60m}"
VIDEO = "{name: video, categories: [video], per_day: 30m}"
BUDGETED = KIDS.replace("{age_band: 13-15}", "{age_band: 13-15, budgets: [" + GAMES + "]}")


@pytest.mark.parametrize(
    ("new", "expected", "weakens"),
    [
        pytest.param(BUDGETED.replace("60m", "90m"),
                     ["profile guests: budget games 60 min a day of games -> 90 min a day of "
                      "games"], True, id="larger"),
        pytest.param(BUDGETED.replace("60m", "30m"),
                     ["profile guests: budget games 60 min a day of games -> 30 min a day of "
                      "games"], False, id="smaller"),
        pytest.param(BUDGETED.replace(f"budgets: [{GAMES}]", "budgets: []"),
                     ["profile guests: loses budget games (60 min a day of games)"], True,
                     id="removed"),
        pytest.param(BUDGETED.replace(f"[{GAMES}]", f"[{GAMES}, {VIDEO}]"),
                     ["profile guests: gains budget video (30 min a day of video)"], False,
                     id="added"),
    ],
)  # fmt: skip
def test_budget_changes(new: str, expected: list[str], weakens: bool) -> None:
    assert sut(BUDGETED, new) == (expected, weakens)
