"""A profile's own bedtime and calendars both ways, through the real server and explain."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dns.rcode
import pytest

from filterdns.cli.main import main
from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import FakeClock, addresses, config_for, running_proxy

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
RECORDS = {("example.com", "A"): ["93.184.216.34"], ("tube.example", "A"): ["203.0.113.7"]}


def at(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=TZ).timestamp()


@pytest.fixture
async def upstream() -> FakeUpstream:
    async with FakeUpstream(RECORDS) as fake:
        yield fake


def schedule_config(upstream: FakeUpstream, tmp_path: Path) -> str:
    video = tmp_path / "video.txt"
    video.write_text("tube.example\n")
    extra = f"""\
        server:
          listen: ["127.0.0.1:0"]
          timezone: Asia/Ho_Chi_Minh
        log: {{database: {tmp_path / "filterdns.db"}}}
        categories: {{video: ["{video}"]}}
        calendars:
          exam-weeks: ["2026-12-07..2026-12-11"]
          school-holidays: ["2026-12-24..2027-01-04", "2027-02-14"]
        profiles:
          minh:
            age_band: 9-12
            bedtime: {{from: "21:30", to: "06:30", days: [sun-thu], except: school-holidays}}
            schedules:
              - {{name: revision, days: daily, from: "19:00", to: "21:00", block: [video],
                  only: exam-weeks}}
          parents: {{age_band: adult}}
        clients:
          - {{name: minh-tablet, ip: 127.0.0.2, profile: minh}}
        default_profile: parents
    """
    text = config_for(upstream.address, extra=extra)
    return text.replace('server:\n  listen: ["127.0.0.1:0"]\n', "", 1)  # the one above instead


# 2026-11-30 and 2026-12-07 are Mondays; 2026-12-24 a Thursday in the school holidays.
@pytest.mark.parametrize(
    ("name", "when", "tcp", "blocked", "ttl_at_most"),
    [
        pytest.param("example.com", "2026-11-30 21:15", False, False, 15 * 60,
                     id="band-bedtime-no-longer-applies"),
        pytest.param("example.com", "2026-11-30 21:40", False, True, None,
                     id="own-bedtime-blocks"),
        pytest.param("example.com", "2026-11-30 21:40", True, True, None,
                     id="own-bedtime-blocks-tcp"),
        pytest.param("example.com", "2026-12-24 21:40", False, False, None, id="except-holidays"),
        pytest.param("example.com", "2026-12-24 21:40", True, False, None,
                     id="except-holidays-tcp"),
        pytest.param("tube.example", "2026-11-30 19:30", False, False, None,
                     id="only-outside-exams"),
        pytest.param("tube.example", "2026-12-07 19:30", False, True, None,
                     id="only-in-exam-week"),
        pytest.param("tube.example", "2026-12-06 20:30", False, False, 60 * 60,
                     id="ttl-capped-at-sunday-bedtime"),
    ],
)  # fmt: skip
async def test_served_answers_follow_the_profile_bedtime_and_calendars(
    upstream: FakeUpstream,
    tmp_path: Path,
    name: str,
    when: str,
    tcp: bool,
    blocked: bool,
    ttl_at_most: int | None,
) -> None:
    text = schedule_config(upstream, tmp_path)
    async with running_proxy(text, wall_clock=FakeClock(at(when))) as proxy:
        reply = await proxy.query(name, source="127.0.0.2", tcp=tcp)
    assert (reply.rcode() == dns.rcode.NXDOMAIN) is blocked
    if not blocked:
        assert addresses(reply)
    if ttl_at_most is not None:
        assert 0 < reply.answer[0].ttl <= ttl_at_most


async def test_explain_at_names_the_rules_and_the_calendar_that_decided(
    upstream: FakeUpstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(schedule_config(upstream, tmp_path))
    args = ["--client", "minh", "-c", str(config)]
    assert main(["explain", "example.com", "--at", "2026-12-24 21:40", *args]) == 0
    holiday = capsys.readouterr().out
    assert "schedule bedtime (profiles.minh.bedtime, line" in holiday
    assert "): not today (except school-holidays)" in holiday
    assert "schedule revision (profiles.minh.schedules[0], line" in holiday
    assert "verdict: ALLOWED" in holiday
    assert main(["explain", "example.com", "--at", "2026-12-01 21:40", *args]) == 0
    school_night = capsys.readouterr().out
    assert "bedtime (profiles.minh.bedtime, line" in school_night
    assert "applies now" in school_night and "BLOCKED" in school_night
    assert "rule: schedule bedtime (profiles.minh.bedtime, line" in school_night
    assert "next change: 2026-12-02 06:30" in school_night
