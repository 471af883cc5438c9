"""Never fail open: a fresh install, a device nobody named, and the household default."""

from __future__ import annotations

import json
from pathlib import Path

import dns.rcode
import pytest

from filterdns.cli.main import main
from filterdns.policy.neighbors import Neighbours
from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import Proxy, addresses, config_for, running_proxy

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


async def test_a_device_named_by_its_ipv4_address_keeps_its_profile_over_ipv6(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    # The neighbour table knows the device by both addresses (one MAC), as `ip neigh` would.
    table = "127.0.0.2 dev lo lladdr 02:00:00:00:00:02 REACHABLE\n"
    table += "::1 dev lo lladdr 02:00:00:00:00:02 REACHABLE\n"
    neighbours = Neighbours(tmp_path / "no-arp", ip_neigh=lambda: table)
    extra = """\
        profiles:
          parents: {age_band: adult}
          minh: {age_band: 9-12, block: [example.com]}
        clients:
          - {name: minh-laptop, ip: 127.0.0.2, profile: minh}
        default_profile: parents
    """
    text = config_for(upstream.address, extra=extra, listen="[::1]:0")
    text = text.replace('listen: ["[::1]:0"]', 'listen: ["127.0.0.1:0", "[::1]:0"]')
    async with running_proxy(text, neighbours=neighbours) as proxy:
        over_v4 = await proxy.query("example.com", source="127.0.0.2")
        v6 = Proxy(proxy.app, "::1", proxy.app.server.bound[1].port)
        over_v6 = await v6.query("example.com", tcp=True)
        stranger = await proxy.query("example.com", source="127.0.0.3")
    assert over_v4.rcode() == dns.rcode.NXDOMAIN
    assert over_v6.rcode() == dns.rcode.NXDOMAIN  # minh's block list, not the parents' default
    assert addresses(stranger) == ["93.184.216.34"]
