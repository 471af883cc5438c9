"""A profile's own bedtime replacing its band's, and calendars both ways (`only` and `except`),
decided at fixed instants."""

from __future__ import annotations

import textwrap
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from filterdns.config import Config, default_config, load_config_text
from filterdns.errors import ConfigError, Problem
from filterdns.policy.decisions import Policy
from filterdns.policy.protection import difference
from filterdns.policy.schedule import Window, parse_calendar, parse_clock, parse_days
from tests.unit.test_policy import index

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
EXAMS = parse_calendar("exam-weeks", ["2026-12-07..2026-12-11", "2027-02-14"])  # Mon..Fri, Sun
HOLIDAYS = parse_calendar("school-holidays", ["2026-12-24..2027-01-04", "2027-02-14"])
# 2026-11-30 is a Monday; 2026-12-24 a Thursday; 2027-02-14 a Sunday.
CONFIG = """\
server: {timezone: Asia/Ho_Chi_Minh}
calendars:
  exam-weeks: ["2026-12-07..2026-12-11", "2027-02-14"]
  school-holidays: ["2026-12-24..2027-01-04", "2027-02-14"]
profiles:
  minh:
    age_band: 9-12
    bedtime: {from: "21:30", to: "06:30", days: [sun-thu], except: school-holidays}
    schedules:
      - {name: revision, days: daily, from: "19:00", to: "21:00", block: [video],
         only: exam-weeks, except: school-holidays}
      - {name: late-games, days: daily, from: "21:45", to: "22:15", block: [games]}
  lan:
    age_band: 9-12
    schedules:
      - {name: screens-off, days: daily, from: "20:30", to: "21:30", block: all}
  class-6a:
    age_band: 9-12
    bedtime: []
    schedules:
      - {name: lessons, days: [mon-fri], from: "07:30", to: "16:30", block: [games],
         except: school-holidays}
"""


def window(days: str, start: str, end: str, *, only: str = "", skip: str = "") -> Window:
    calendars = {"exams": EXAMS, "holidays": HOLIDAYS}
    return Window(
        parse_days(days.split(",")), parse_clock(start), parse_clock(end, end=True),
        calendars.get(skip), calendars.get(only),
    )  # fmt: skip


def local(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=TZ)


def load(text: str = CONFIG) -> Config:
    defaults = default_config(is_root=False)
    return load_config_text(textwrap.dedent(text), source="<test>", defaults=defaults)


def policy(text: str = CONFIG) -> Policy:
    built = index()
    return Policy(load(text), lambda: built)


EVENING_ONLY_EXAMS = window("daily", "21:00", "06:00", only="exams")
EVENING_BOTH = window("daily", "21:00", "06:00", only="exams", skip="holidays")
EVENING_EXCEPT = window("daily", "21:00", "06:00", skip="holidays")


@pytest.mark.parametrize(
    ("sut", "when", "active"),
    [
        pytest.param(EVENING_ONLY_EXAMS, "2026-12-07 22:00", True, id="only-in-range"),
        pytest.param(EVENING_ONLY_EXAMS, "2026-12-06 22:00", False, id="only-day-before-range"),
        pytest.param(EVENING_ONLY_EXAMS, "2026-12-07 03:00", False, id="only-morning-of-first"),
        pytest.param(
            EVENING_ONLY_EXAMS,
            "2026-12-12 03:00",
            True,
            id="only-last-evening-runs-into-next-morning",
        ),
        pytest.param(EVENING_ONLY_EXAMS, "2026-12-12 22:00", False, id="only-after-range"),
        pytest.param(EVENING_ONLY_EXAMS, "2027-02-14 22:00", True, id="only-single-date"),
        pytest.param(EVENING_ONLY_EXAMS, "2027-02-15 22:00", False, id="only-day-after-date"),
        pytest.param(EVENING_BOTH, "2026-12-08 22:00", True, id="both-only-not-except"),
        pytest.param(EVENING_BOTH, "2027-02-14 22:00", False, id="both-except-wins"),
        pytest.param(EVENING_EXCEPT, "2026-12-23 23:00", True, id="except-eve-of-range"),
        pytest.param(
            EVENING_EXCEPT,
            "2026-12-24 03:00",
            True,
            id="except-eve-runs-into-first-holiday-morning",
        ),
        pytest.param(EVENING_EXCEPT, "2027-01-04 22:00", False, id="except-last-date-of-range"),
        pytest.param(EVENING_EXCEPT, "2027-01-05 22:00", True, id="except-after-range"),
        pytest.param(EVENING_EXCEPT, "2027-02-14 22:00", False, id="except-single-date"),
    ],
)
def test_only_and_except_judge_the_start_date(sut: Window, when: str, active: bool) -> None:
    assert sut.active(local(when), TZ) is active


@pytest.mark.parametrize(
    ("sut", "when", "expected"),
    [
        pytest.param(
            EVENING_ONLY_EXAMS,
            "2026-12-01 12:00",
            "2026-12-07 21:00",
            id="only-first-start-is-the-range-start",
        ),
        pytest.param(
            EVENING_ONLY_EXAMS,
            "2026-12-11 23:00",
            "2026-12-12 06:00",
            id="only-last-occurrence-ends",
        ),
        pytest.param(
            EVENING_ONLY_EXAMS,
            "2026-12-12 06:00",
            "2027-02-14 21:00",
            id="only-next-is-the-single-date",
        ),
        pytest.param(
            EVENING_EXCEPT,
            "2026-12-24 06:00",
            "2027-01-05 21:00",
            id="except-skips-the-whole-range",
        ),
        pytest.param(
            EVENING_EXCEPT,
            "2027-02-13 23:00",
            "2027-02-14 06:00",
            id="except-eve-of-single-date-ends",
        ),
        pytest.param(
            EVENING_EXCEPT, "2027-02-14 06:00", "2027-02-15 21:00", id="except-single-date-skipped"
        ),
        pytest.param(EVENING_BOTH, "2027-01-01 12:00", None, id="both-nothing-in-horizon"),
    ],
)
def test_next_change_counts_calendar_days(sut: Window, when: str, expected: str | None) -> None:
    change = sut.next_change(local(when), TZ)
    assert (change.astimezone(TZ).strftime("%Y-%m-%d %H:%M") if change else None) == expected


@pytest.mark.parametrize(
    ("sut", "when", "expected"),
    [
        pytest.param(EVENING_EXCEPT, "2026-12-01 22:00", "applies now", id="active"),
        pytest.param(EVENING_EXCEPT, "2026-12-01 12:00", "not now", id="outside-hours"),
        pytest.param(
            window("mon", "21:00", "06:00"), "2026-12-01 22:00", "not now", id="other-weekday"
        ),
        pytest.param(
            EVENING_EXCEPT,
            "2026-12-25 12:00",
            "not today (except school-holidays)",
            id="except-outside-hours",
        ),
        pytest.param(
            EVENING_EXCEPT, "2026-12-25 22:00", "not today (except school-holidays)", id="except"
        ),
        pytest.param(
            EVENING_ONLY_EXAMS, "2026-12-01 22:00", "not today (only exam-weeks)", id="only"
        ),
        pytest.param(
            EVENING_ONLY_EXAMS,
            "2026-12-02 03:00",
            "not on 2026-12-01 (its start date) (only exam-weeks)",
            id="after-midnight-names-the-start-date",
        ),
    ],
)
def test_why_names_the_calendar_that_decided(sut: Window, when: str, expected: str) -> None:
    assert sut.why(local(when), TZ) == expected


def rules(config: Config, name: str) -> list[tuple[str, str, int | None]]:
    return [(r.name, r.path, r.line) for r in config.schedules_of(config.profile(name))]


def test_a_profile_bedtime_replaces_the_bands_and_keeps_its_path_and_line() -> None:
    config = load()
    assert rules(config, "minh") == [
        ("bedtime", "profiles.minh.bedtime", 8),
        ("revision", "profiles.minh.schedules[0]", 10),
        ("late-games", "profiles.minh.schedules[1]", 12),
    ]
    bedtime = config.schedules_of(config.profile("minh"))[0]
    assert bedtime.block_all and bedtime.window.except_calendar == config.calendars[1]
    assert [r[1] for r in rules(config, "lan")] == [
        "age_bands.9-12.schedules[0]", "age_bands.9-12.schedules[1]", "profiles.lan.schedules[0]",
    ]  # fmt: skip
    assert rules(config, "class-6a") == [("lessons", "profiles.class-6a.schedules[0]", 21)]


def test_bedtime_days_default_to_daily_and_a_list_gives_several() -> None:
    config = load("""\
        profiles:
          minh:
            age_band: 9-12
            bedtime:
              - {days: [sun-thu], from: "21:30", to: "06:30"}
              - {days: [fri-sat], from: "22:30", to: "07:30"}
          an: {age_band: under-9, bedtime: {from: "19:30", to: "07:00"}}
    """)
    minh = config.schedules_of(config.profile("minh"))
    assert [(r.path, r.window.start, r.window.end) for r in minh] == [
        ("profiles.minh.bedtime[0]", 21 * 60 + 30, 6 * 60 + 30),
        ("profiles.minh.bedtime[1]", 22 * 60 + 30, 7 * 60 + 30),
    ]
    an = config.schedules_of(config.profile("an"))
    assert [(r.name, r.window.days) for r in an] == [("bedtime", frozenset(range(7)))]


def test_other_band_rules_stay_when_the_bedtime_is_replaced() -> None:
    config = load("""\
        age_bands:
          9-12:
            schedules:
              - {name: bedtime, days: daily, from: "21:00", to: "06:30", block: all}
              - {name: homework, days: [mon-fri], from: "17:00", to: "18:00", block: [games]}
        profiles:
          minh: {age_band: 9-12, bedtime: {from: "22:00", to: "06:30"}}
    """)
    assert [r[:2] for r in rules(config, "minh")] == [
        ("homework", "age_bands.9-12.schedules[1]"), ("bedtime", "profiles.minh.bedtime"),
    ]  # fmt: skip


def test_the_band_bedtime_no_longer_applies_and_blocks_name_the_profile_rule() -> None:
    sut = policy()
    monday = local("2026-11-30 21:15").timestamp()  # the band's 9-12 bedtime starts at 21:00
    assert sut.decide("lan", "example.com", monday).action == "block"
    assert sut.decide("minh", "example.com", monday).action == "allow"
    later = local("2026-11-30 21:40").timestamp()
    decision = sut.decide("minh", "example.com", later)
    assert (decision.action, decision.step) == ("block", 5)
    assert decision.rule == "schedule bedtime (profiles.minh.bedtime, line 8)"
    # Holidays: no bedtime, and the answer's life ends when the late-games rule starts.
    holiday = sut.decide("minh", "example.com", local("2026-12-24 21:40").timestamp())
    assert (holiday.action, holiday.ttl_cap) == ("allow", 5 * 60)


def test_a_block_during_band_and_profile_rules_is_credited_to_the_profile_rule() -> None:
    sut = policy()
    when = local("2026-11-30 21:15").timestamp()  # lan: band bedtime and screens-off both active
    decision = sut.decide("lan", "casino.example", when)
    assert (decision.step, decision.category) == (5, "gambling")
    assert decision.rule == "schedule screens-off (profiles.lan.schedules[0], line 16)"
    after = sut.decide("lan", "casino.example", local("2026-11-30 21:45").timestamp())
    assert after.rule == "schedule bedtime (age_bands.9-12.schedules[0])"


def test_class_profile_without_bedtime_is_open_in_the_evening() -> None:
    sut = policy()
    evening = local("2026-11-30 22:00").timestamp()
    assert sut.decide("class-6a", "example.com", evening).action == "allow"
    lesson = sut.decide("class-6a", "games.example", local("2026-11-30 09:00").timestamp())
    assert lesson.rule == "schedule lessons (profiles.class-6a.schedules[0], line 21)"


def test_ttl_cap_reaches_to_the_first_day_of_an_only_calendar() -> None:
    sut = policy()
    # Friday before the exams: no revision rule tonight; the next change is the bedtime Sunday.
    friday = local("2026-12-04 19:30").timestamp()
    decision = sut.decide("minh", "tube.example", friday)
    assert decision.action == "allow"
    exams = sut.decide("minh", "tube.example", local("2026-12-07 19:30").timestamp())
    assert (exams.action, exams.rule) == (
        "block", "schedule revision (profiles.minh.schedules[0], line 10)",
    )  # fmt: skip
    assert exams.ttl_cap == 90 * 60  # until 21:00, when the revision rule ends


def test_explain_lists_each_rule_and_the_calendar_that_decided() -> None:
    sut = policy()
    decision = sut.decide(
        "minh", "example.com", local("2026-12-24 21:40").timestamp(), explain=True
    )
    assert decision.trace[:3] == (
        "2. schedule bedtime (profiles.minh.bedtime, line 8): not today (except school-holidays)",
        "2. schedule revision (profiles.minh.schedules[0], line 10): not today (only exam-weeks)",
        "2. schedule late-games (profiles.minh.schedules[1], line 12): not now",
    )


def problems(text: str) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load(text)
    return caught.value.problems


KID = "calendars: {exams: ['2026-12-07']}\nprofiles:\n  kid:\n    age_band: 9-12\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            KID + "    schedules:\n      - {days: daily, from: '19:00', to: '21:00',\n"
            "         block: [video], only: exam-weeks}\n",
            Problem(
                "profiles.kid.schedules[0].only",
                '"exam-weeks" is not a calendar; calendars: exams',
                7,
            ),
            id="only-unknown-calendar",
        ),
        pytest.param(
            KID + "    bedtime: {from: '21:00', to: '06:00', except: holidays}\n",
            Problem(
                "profiles.kid.bedtime.except", '"holidays" is not a calendar; calendars: exams', 5
            ),
            id="bedtime-unknown-calendar",
        ),
        pytest.param(
            KID + "    bedtime: {to: '06:00'}\n",
            Problem("profiles.kid.bedtime", 'needs from, e.g. from: "21:00"', 5),
            id="bedtime-needs-from",
        ),
        pytest.param(
            KID + "    bedtime:\n      - {from: '21:00', to: '06:00', block: all}\n",
            Problem(
                "profiles.kid.bedtime[0].block",
                "unknown key 'block'; valid keys: days, from, to, allow, only, except",
                6,
            ),
            id="bedtime-is-always-block-all",
        ),
        pytest.param(
            KID + "    bedtime: {from: '21:00', to: '6:00 pm'}\n",
            Problem(
                "profiles.kid.bedtime.to",
                '"6:00 pm" is not a time HH:MM (00:00 to 23:59, or 24:00 as an end)',
                5,
            ),
            id="bedtime-bad-time",
        ),
        pytest.param(
            "calendars:\n  exams: ['2026-12-07', '2026-02-30']\n",
            Problem(
                "calendars.exams[1]",
                '"2026-02-30" is not a date YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD',
                2,
            ),
            id="calendar-bad-date",
        ),
        pytest.param(
            "calendars:\n  exams:\n    - 2026-12-11..2026-12-07\n",
            Problem("calendars.exams[0]", '"2026-12-11..2026-12-07" ends before it starts', 3),
            id="calendar-range-backwards",
        ),
    ],
)
def test_problems_name_path_and_line(text: str, expected: Problem) -> None:
    assert problems(text) == [expected]


def test_calendar_holds_ranges_and_single_dates() -> None:
    config = load("calendars: {holidays: ['2026-12-24..2027-01-04', 2027-02-14]}\n")
    holidays = config.calendars[0]
    assert holidays.ranges == (
        (date(2026, 12, 24), date(2027, 1, 4)), (date(2027, 2, 14), date(2027, 2, 14)),
    )  # fmt: skip
    assert [holidays.contains(date(2027, 1, d)) for d in (4, 5)] == [True, False]


BAND_BEDTIME = "sun-thu 21:00-06:30: block all / fri-sat 22:00-07:00: block all"
MINH = "calendars: {exams: ['2026-12-07..2026-12-11']}\nprofiles:\n  minh:\n    age_band: 9-12\n"


@pytest.mark.parametrize(
    ("old", "new", "expected", "weakens"),
    [
        pytest.param(
            MINH,
            MINH + "    bedtime: {from: '21:30', to: '06:30', days: [sun-thu]}\n",
            f"schedule bedtime changed ({BAND_BEDTIME} -> sun-thu 21:30-06:30: block all)",
            True,
            id="later-bedtime-weakens",
        ),
        pytest.param(
            MINH,
            MINH + "    bedtime: {from: '20:30', to: '07:00'}\n",
            f"schedule bedtime changed ({BAND_BEDTIME} -> daily 20:30-07:00: block all)",
            False,
            id="longer-bedtime-does-not",
        ),
        pytest.param(
            MINH,
            MINH + "    bedtime: []\n",
            f"loses schedule bedtime ({BAND_BEDTIME})",
            True,
            id="no-bedtime-weakens",
        ),
        pytest.param(
            MINH + "    bedtime: {from: '20:30', to: '07:00'}\n",
            MINH + "    bedtime: {from: '20:30', to: '07:00', only: exams}\n",
            "schedule bedtime changed (daily 20:30-07:00: block all -> daily 20:30-07:00 only "
            "exams: block all)",
            True,
            id="only-weakens",
        ),
        pytest.param(
            MINH + "    bedtime: {from: '20:30', to: '07:00', except: exams}\n",
            MINH + "    bedtime: {from: '20:30', to: '07:00'}\n",
            "schedule bedtime changed (daily 20:30-07:00 except exams: block all -> daily "
            "20:30-07:00: block all)",
            False,
            id="dropping-except-does-not",
        ),
    ],
)
def test_reload_judges_a_replaced_bedtime(old: str, new: str, expected: str, weakens: bool) -> None:
    found = difference(load(old), load(new))
    assert [(c.text, c.weakens) for c in found.changes] == [(f"profile minh: {expected}", weakens)]
