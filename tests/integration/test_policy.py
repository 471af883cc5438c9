"""The parental policy end to end: profiles by source address, schedules, answers, grants."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dns.edns
import dns.flags
import dns.rcode
import dns.rdatatype
import pytest

from filterdns.cli.main import main
from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import FakeClock, addresses, config_for, running_proxy

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
RECORDS = {
    ("example.com", "A"): ["93.184.216.34"],
    ("casino.example", "A"): ["203.0.113.66"],
    ("forcesafesearch.google.com", "A"): ["216.239.38.120"],
    ("www.google.com", "A"): ["142.250.1.1"],
    ("nhacai88-vip.net", "A"): ["203.0.113.88"],
}


def at(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=TZ).timestamp()


def recent_morning() -> FakeClock:
    """10:00 today or yesterday (the last one passed): no bedtime or homework for minh, and
    within the last day for `report --since 1d` and a grant made at the real time."""
    now = datetime.now(TZ)
    morning = now.replace(hour=10, minute=0, second=0, microsecond=0)
    if morning > now:
        morning -= timedelta(days=1)
    return FakeClock(morning.timestamp())


@pytest.fixture
async def upstream() -> FakeUpstream:
    async with FakeUpstream(RECORDS) as fake:
        yield fake


def policy_config(upstream: FakeUpstream, tmp_path: Path, blocking: str = "") -> str:
    gambling = tmp_path / "gambling.txt"
    gambling.write_text("casino.example\n")
    extra = f"""\
        server:
          listen: ["127.0.0.1:0"]
          timezone: Asia/Ho_Chi_Minh
        log: {{database: {tmp_path / "filterdns.db"}}}
        categories: {{gambling: ["{gambling}"]}}
        profiles:
          minh:
            age_band: 9-12
            schedules:
              - {{name: homework, days: [mon], from: "17:00", to: "18:00", block: all}}
          parents: {{age_band: adult}}
        clients:
          - {{name: minh-tablet, ip: 127.0.0.2, profile: minh}}
        default_profile: parents
        {blocking}
    """
    text = config_for(upstream.address, extra=extra)
    return text.replace('server:\n  listen: ["127.0.0.1:0"]\n', "", 1)


async def test_each_source_address_gets_its_profile(upstream: FakeUpstream, tmp_path: Path) -> None:
    clock = FakeClock(at("2026-11-23 10:00"))
    async with running_proxy(policy_config(upstream, tmp_path), wall_clock=clock) as proxy:
        child = await proxy.query("casino.example", source="127.0.0.2")
        parent = await proxy.query("casino.example", source="127.0.0.3")
    assert child.rcode() == dns.rcode.NXDOMAIN
    assert child.authority[0].rdtype == dns.rdatatype.SOA
    ede = [o for o in child.options if isinstance(o, dns.edns.EDEOption)]
    assert [(o.code, o.text) for o in ede] == [(dns.edns.EDECode.BLOCKED, "gambling")]
    assert addresses(parent) == ["203.0.113.66"]


@pytest.mark.parametrize(
    ("blocking", "child_blocked"),
    [
        pytest.param("", True, id="model-on"),
        pytest.param("blocking: {name_model: false}", False, id="model-off"),
    ],
)
async def test_an_unlisted_betting_name_is_blocked_as_gambling_suspect_for_a_child(
    upstream: FakeUpstream, tmp_path: Path, blocking: str, child_blocked: bool
) -> None:
    clock = FakeClock(at("2026-11-23 10:00"))
    text = policy_config(upstream, tmp_path, blocking)
    async with running_proxy(text, wall_clock=clock) as proxy:
        child = await proxy.query("nhacai88-vip.net", source="127.0.0.2")
        parent = await proxy.query("nhacai88-vip.net", source="127.0.0.3")
    assert addresses(parent) == ["203.0.113.88"]
    if not child_blocked:
        assert addresses(child) == ["203.0.113.88"]
        return
    assert child.rcode() == dns.rcode.NXDOMAIN
    ede = [o for o in child.options if isinstance(o, dns.edns.EDEOption)]
    assert [(o.code, o.text) for o in ede] == [(dns.edns.EDECode.BLOCKED, "gambling-suspect")]


async def test_a_schedule_blocks_on_the_minute_and_unblocks(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    clock = FakeClock(at("2026-11-23 16:59") + 30)
    async with running_proxy(policy_config(upstream, tmp_path), wall_clock=clock) as proxy:
        before = await proxy.query("example.com", source="127.0.0.2")
        clock.now = at("2026-11-23 17:00")
        during = await proxy.query("example.com", source="127.0.0.2")
        clock.now = at("2026-11-23 18:00")
        after = await proxy.query("example.com", source="127.0.0.2")
    assert addresses(before) == ["93.184.216.34"]
    assert before.answer[0].ttl == 30  # capped at the start of homework
    assert during.rcode() == dns.rcode.NXDOMAIN
    assert during.authority[0].ttl == 10  # blocking.ttl, under the hour to the end
    assert addresses(after) == ["93.184.216.34"]


@pytest.mark.parametrize(
    ("mode", "check"),
    [
        pytest.param("null", lambda r: addresses(r) == ["0.0.0.0"], id="null"),
        pytest.param("refused", lambda r: r.rcode() == dns.rcode.REFUSED, id="refused"),
        pytest.param(
            "custom\n  custom_ips: [192.168.1.2, 'fd00::2']",
            lambda r: addresses(r) == ["192.168.1.2"],
            id="custom",
        ),
    ],
)
async def test_block_modes(
    upstream: FakeUpstream, tmp_path: Path, mode: str, check: object
) -> None:
    blocking = f"blocking:\n  response: {mode}\n".replace("\n", "\n        ")
    clock = FakeClock(at("2026-11-23 10:00"))
    text = policy_config(upstream, tmp_path, blocking)
    async with running_proxy(text, wall_clock=clock) as proxy:
        reply = await proxy.query("casino.example", source="127.0.0.2")
    assert callable(check) and check(reply)
    assert upstream.calls == 0


async def test_safesearch_answers_a_cname_and_the_safe_address(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    clock = FakeClock(at("2026-11-23 10:00"))
    async with running_proxy(policy_config(upstream, tmp_path), wall_clock=clock) as proxy:
        child = await proxy.query("www.google.com", source="127.0.0.2")
        parent = await proxy.query("www.google.com", source="127.0.0.3")
    kinds = [(str(r.name), r.rdtype) for r in child.answer]
    assert kinds[0] == ("www.google.com.", dns.rdatatype.CNAME)
    assert str(child.answer[0][0].target) == "forcesafesearch.google.com."
    assert addresses(child) == ["216.239.38.120"]
    assert addresses(parent) == ["142.250.1.1"]


async def test_bypass_canaries(upstream: FakeUpstream, tmp_path: Path) -> None:
    clock = FakeClock(at("2026-11-23 10:00"))
    async with running_proxy(policy_config(upstream, tmp_path), wall_clock=clock) as proxy:
        canary = await proxy.query("use-application-dns.net", source="127.0.0.2")
        relay = await proxy.query("mask.icloud.com", source="127.0.0.2")
        ddr = await proxy.query("_dns.resolver.arpa", "SVCB", source="127.0.0.2")
    assert canary.rcode() == relay.rcode() == dns.rcode.NXDOMAIN
    assert ddr.rcode() == dns.rcode.NOERROR and not ddr.answer
    assert upstream.calls == 0


async def test_a_grant_from_the_command_line_unblocks_within_a_second(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    text = policy_config(upstream, tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(text)
    morning = recent_morning()
    async with running_proxy(text, wall_clock=morning) as proxy:
        blocked = await proxy.query("casino.example", source="127.0.0.2")
        code = main(["grant", "minh", "--category", "gambling", "--for", "45m", "-c", str(config)])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.0
        while True:  # the server notices the new row in its database by itself; no restart
            reply = await proxy.query("casino.example", source="127.0.0.2")
            if reply.rcode() == dns.rcode.NOERROR or loop.time() > deadline:
                break
            await asyncio.sleep(0.05)
    assert code == 0
    assert blocked.rcode() == dns.rcode.NXDOMAIN
    assert addresses(reply) == ["203.0.113.66"]


async def test_explain_agrees_with_what_serve_answers(
    upstream: FakeUpstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = policy_config(upstream, tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(text)
    when = "2026-11-23 10:00"
    clock = FakeClock(at(when))
    names = ["example.com", "casino.example", "www.google.com", "mask.icloud.com"]
    async with running_proxy(text, wall_clock=clock) as proxy:
        served = [await proxy.query(n, source="127.0.0.2") for n in names]
    verdicts = []
    for name in names:
        assert main(["explain", name, "--client", "127.0.0.2", "--at", when, "--json",
                     "-c", str(config)]) == 0  # fmt: skip
        verdicts.append(json.loads(capsys.readouterr().out))
    assert [v["action"] for v in verdicts] == ["allow", "block", "rewrite", "nxdomain"]
    for reply, verdict in zip(served, verdicts, strict=True):
        assert verdict["profile"] == "minh"
        blocked = reply.rcode() != dns.rcode.NOERROR
        assert blocked == (verdict["action"] in ("block", "nxdomain")), verdict
    when = "2026-11-23 17:30"
    assert main(["explain", "casino.example", "--client", "minh", "--at", when,
                 "-c", str(config)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "homework" in out and "BLOCKED" in out and "next change: 2026-11-23 18:00" in out


async def test_blocked_lookups_are_logged_and_reported(
    upstream: FakeUpstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = policy_config(upstream, tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(text)
    morning = recent_morning()
    async with running_proxy(text, wall_clock=morning) as proxy:
        for _ in range(3):
            await proxy.query("casino.example", source="127.0.0.2")
        await proxy.query("use-application-dns.net", source="127.0.0.2")
        await proxy.query("example.com", source="127.0.0.2")  # allowed: not logged
    # stopping the proxy flushed the log
    assert main(["report", "--since", "1d", "--json", "-c", str(config)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["blocked_total"] == 4
    assert report["profiles"]["minh"]["categories"] == {"gambling": 3, "bypass": 1}
    assert [a["kind"] for a in report["bypass_attempts"]] == ["canary"]


async def test_night_time_blocks_keep_their_category_in_reports_and_alerts(
    upstream: FakeUpstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alerts = "alerts: [{categories: [gambling], threshold: 2, within: 10m, command: 'true'}]\n"
    text = policy_config(upstream, tmp_path) + alerts
    config = tmp_path / "config.yaml"
    config.write_text(text)
    night = recent_morning()
    night.now -= 9 * 3600  # 01:00: minh's band bedtime
    async with running_proxy(text, wall_clock=night) as proxy:
        for _ in range(2):
            reply = await proxy.query("casino.example", source="127.0.0.2")
            assert reply.rcode() == dns.rcode.NXDOMAIN
        await proxy.query("example.com", source="127.0.0.2")  # blocked too, in no category
    assert main(["report", "--since", "2d", "--json", "-c", str(config)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["profiles"]["minh"]["categories"] == {"gambling": 2, "(none)": 1}
    assert report["bedtime"]["minh"]["blocked"] == 3
    assert [(a["profile"], a["categories"]) for a in report["alerts"]] == [("minh", ["gambling"])]


async def test_a_database_that_cannot_be_written_does_not_stop_answers(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the database directory should be")
    text = policy_config(upstream, tmp_path).replace(
        str(tmp_path / "filterdns.db"), str(blocker / "filterdns.db")
    )
    morning = recent_morning()
    async with running_proxy(text, wall_clock=morning) as proxy:
        blocked = await proxy.query("casino.example", source="127.0.0.2")
        allowed = await proxy.query("example.com", source="127.0.0.2")
    assert proxy.app.querylog.stats.dropped == 1  # counted, not lost silently
    assert blocked.rcode() == dns.rcode.NXDOMAIN
    assert addresses(allowed) == ["93.184.216.34"]
