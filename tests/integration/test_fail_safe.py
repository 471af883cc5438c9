"""Never fail open: a fresh install, a device nobody named, and the household default."""

from __future__ import annotations

import json
from pathlib import Path

import dns.rcode
import pytest

from filterdns.cli import main
from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import addresses, config_for, running_proxy

RECORDS = {
    ("example.com", "A"): ["93.184.216.34"],
    ("bet365.com", "A"): ["5.226.176.1"],
    ("khanacademy.org", "A"): ["104.16.1.1"],
    ("restrictmoderate.youtube.com", "A"): ["216.239.38.119"],
    ("forcesafesearch.google.com", "A"): ["216.239.38.120"],
}
# Names the shipped lists hold, one per category the household default blocks.
SHIPPED_BLOCKED = ["pornhub.com", "www.pornhub.com", "bet365.com", "cloudflare-dns.com"]


@pytest.fixture
async def upstream() -> FakeUpstream:
    async with FakeUpstream(RECORDS) as fake:
        yield fake


async def test_without_profiles_every_device_is_protected(upstream: FakeUpstream) -> None:
    async with running_proxy(config_for(upstream.address)) as proxy:
        for name in SHIPPED_BLOCKED:
            reply = await proxy.query(name)
            assert reply.rcode() == dns.rcode.NXDOMAIN, name
        canary = await proxy.query("use-application-dns.net")
        youtube = await proxy.query("www.youtube.com")
        google = await proxy.query("www.google.com", tcp=True)
        allowed = await proxy.query("example.com")
    assert canary.rcode() == dns.rcode.NXDOMAIN
    assert str(youtube.answer[0][0].target) == "restrictmoderate.youtube.com."
    assert str(google.answer[0][0].target) == "forcesafesearch.google.com."
    assert addresses(allowed) == ["93.184.216.34"]


async def test_a_named_parent_device_is_unfiltered_and_everyone_else_protected(
    upstream: FakeUpstream,
) -> None:
    extra = """\
        profiles:
          parents: {age_band: adult}
          minh: {age_band: 9-12}
        clients:
          - {name: mum-phone, ip: 127.0.0.3, profile: parents}
          - {name: minh-tablet, ip: 127.0.0.2, profile: minh}
    """
    async with running_proxy(config_for(upstream.address, extra=extra)) as proxy:
        parent = await proxy.query("bet365.com", source="127.0.0.3")
        child = await proxy.query("bet365.com", source="127.0.0.2")
        stranger = await proxy.query("bet365.com", source="127.0.0.4")
    assert addresses(parent) == ["5.226.176.1"]
    assert child.rcode() == dns.rcode.NXDOMAIN
    assert stranger.rcode() == dns.rcode.NXDOMAIN
    assert upstream.queries.count(("bet365.com", "A")) == 1  # only the parent's went out


def test_explain_without_a_file_blocks_adult_sites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./config.yaml: the embedded defaults
    assert main(["explain", "pornhub.com", "--client", "192.168.1.50", "--json"]) == 0
    trace = json.loads(capsys.readouterr().out)
    assert trace["action"] == "block"
    assert trace["profile"] == "household"
    assert trace["category"] == "adult"
