"""The words of the pages a child's device opens and of a prepared report: why a site is
blocked, the rules now, a category, and the report's text (pure functions, no server)."""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from filterdns import actions
from filterdns.config import load_config_text
from filterdns.policy.values import Action, Decision
from filterdns.web import i18n
from filterdns.web.blockpage import reason, site_of
from filterdns.web.helppage import report_text, when
from filterdns.web.lookups import category_word, domain, plain_address
from filterdns.web.mine import describe

VI, EN = i18n.texts("vi"), i18n.texts("en")
HCM = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.mark.parametrize(
    ("host", "site"),
    [
        ("casino.example", "casino.example"),
        ("casino.example:8080", "casino.example"),
        ("[2001:db8::1]:80", "2001:db8::1"),
        ("a:b", "a:b"),  # not a port: kept, and shown escaped
    ],
)
def test_the_site_of_a_host_header_drops_the_port(host: str, site: str) -> None:
    assert site_of(host) == site


def blocked(step: int, rule: str, category: str | None = None) -> Decision:
    return Decision(Action.BLOCK, "minh", step, "why", category=category, rule=rule)


def test_why_a_site_is_blocked_in_plain_words() -> None:
    bedtime = blocked(5, "schedule bedtime (profiles.minh.schedules[0], line 3)", "gambling")
    assert reason(VI, bedtime) == "Lý do: quy tắc “bedtime” đang chặn mọi trang."
    paused = blocked(5, "paused by mẹ until 10:45")
    assert reason(VI, paused).startswith("Lý do: bố mẹ hoặc thầy cô đã tạm dừng")
    assert reason(EN, blocked(4, "age band 9-12", "gambling")) == (
        "Why: it is a site about gambling and betting."
    )
    assert reason(EN, blocked(6, "profile block")) == (
        "Why: it is on this device's list of blocked sites."
    )
    allowed = Decision(Action.ALLOW, "minh", 3, "granted")
    assert reason(EN, allowed) == "It is allowed now: try again in a moment."


def test_categories_are_words_a_child_reads() -> None:
    assert category_word(VI, "adult") == "nội dung người lớn"
    assert category_word(VI, "homework-helpers") == "homework-helpers"  # one of the config's own
    assert category_word(EN, None) == "not in a category"
    assert domain(" YouTube.com. ") == "youtube.com" and domain("<b>") is None


def test_a_device_is_known_by_the_address_its_dns_lookups_come_from() -> None:
    assert plain_address("::ffff:192.168.1.5") == "192.168.1.5"  # a dual-stack listener
    assert plain_address("2001:db8::5") == "2001:db8::5"
    assert plain_address("192.168.1.5") == "192.168.1.5"


def test_the_report_text_is_ready_to_copy() -> None:
    at = when(datetime(2026, 11, 30, 17, 5, tzinfo=HCM).timestamp(), HCM)
    assert at == "30/11/2026 17:05 (Asia/Ho_Chi_Minh)"
    text = report_text(VI, "casino.example", at, "cờ bạc, cá cược")
    assert text.splitlines()[2:6] == [
        "Trang web: casino.example",
        "Thời gian: 30/11/2026 17:05 (Asia/Ho_Chi_Minh)",
        "Danh mục: cờ bạc, cá cược",
        "Những gì đã thấy: ",
    ]


def test_at_bedtime_the_child_reads_until_when(tmp_path: Path) -> None:
    config = load_config_text(textwrap.dedent(f"""\
        log: {{database: {tmp_path / "filterdns.db"}}}
        profiles:
          minh: {{age_band: 9-12, timezone: Asia/Ho_Chi_Minh}}
        """), source="<test>")  # fmt: skip
    night = datetime(2026, 11, 30, 22, 0, tzinfo=HCM).timestamp()  # a Monday, 22:00
    policy = actions.policy_for(config, now=night)
    rules = describe(VI, policy.state_of("minh", night), None, HCM, night)
    assert rules.state == "bedtime"
    assert rules.rule == "Đã đến giờ đi ngủ: Internet tạm tắt."
    assert rules.until == "06:30 01/12"
    assert "trò chơi" not in rules.categories and "mạng xã hội" in rules.categories
    school = describe(EN, policy.state_of("minh", night - 9 * 3600), None, HCM, night)
    assert (school.state, school.until) == ("allowed", "21:00")
