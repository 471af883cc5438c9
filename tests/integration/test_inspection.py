"""What an answer leads to is judged too: CNAME cloaking and DNS rebinding, end to end."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import dns.rcode
import pytest

from filterdns.cli.main import main
from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import Proxy, addresses, config_for, running_proxy

# Blocked names come from the shipped lists: pornhub.com (adult), bet365.com (gambling),
# cloudflare-dns.com (bypass: a DNS over HTTPS resolver).
RECORDS = {
    ("example.com", "A"): ["93.184.216.34"],
    # one to three CNAMEs deep
    ("photos.example", "CNAME"): ["pornhub.com."],
    ("pornhub.com", "A"): ["66.254.114.41"],
    ("news.example", "CNAME"): ["hop1.example."],
    ("hop1.example", "CNAME"): ["hop2.example."],
    ("hop2.example", "CNAME"): ["www.bet365.com."],
    ("www.bet365.com", "A"): ["5.226.176.1"],
    ("dns.example", "CNAME"): ["edge.example."],
    ("edge.example", "CNAME"): ["cloudflare-dns.com."],
    ("cloudflare-dns.com", "A"): ["104.16.248.249"],
    ("cdn.example", "CNAME"): ["edge.cdn.example."],
    ("edge.cdn.example", "A"): ["198.51.100.7"],
    # DNAME: everything under mirror.example is a name under pornhub.com
    ("mirror.example", "DNAME"): ["pornhub.com."],
    ("www.pornhub.com", "A"): ["66.254.114.41"],
    # an HTTPS alias record (RFC 9460 AliasMode), a service record with a target name, hints
    ("alias.example", "HTTPS"): ["0 pornhub.com."],
    ("svc.example", "HTTPS"): ['1 bet365.com. alpn="h2"'],
    ("self.example", "HTTPS"): ['1 . alpn="h2"'],
    ("hint.example", "HTTPS"): ['1 . alpn="h2" ipv4hint="10.0.0.1"'],
    # rebinding
    ("loopback.example", "A"): ["127.0.0.1"],
    ("lan.example", "A"): ["10.1.2.3"],
    ("home.example", "A"): ["192.168.1.1"],
    ("metadata.example", "A"): ["169.254.169.254"],
    ("cgnat.example", "A"): ["100.64.0.1"],
    ("mixed.example", "A"): ["93.184.216.34", "172.16.0.9"],
    ("loopback.example", "AAAA"): ["::1"],
    ("ula.example", "AAAA"): ["fd00::1"],
    ("linklocal.example", "AAAA"): ["fe80::1"],
    ("mapped.example", "AAAA"): ["::ffff:10.0.0.1"],
    ("public6.example", "AAAA"): ["2606:2800:220:1::"],
    ("nas.home.arpa", "A"): ["192.168.1.10"],
    ("printer", "A"): ["192.168.1.11"],
    ("router.asus.com", "A"): ["192.168.50.1"],
    ("nas.office.test", "A"): ["10.9.0.5"],
    ("private-cname.example", "CNAME"): ["inside.example."],
    ("inside.example", "A"): ["10.0.0.80"],
}
KID, PARENT = "127.0.0.2", "127.0.0.3"


def inspection_config(upstream: FakeUpstream, tmp_path: Path, blocking: str = "") -> str:
    extra = f"""\
        log: {{database: "{tmp_path / "filterdns.db"}"}}
        profiles:
          kid: {{age_band: 9-12, allow: [trusted.example], band_schedules: false}}
          parents: {{age_band: adult}}
        clients:
          - {{name: kid-tablet, ip: {KID}, profile: kid}}
          - {{name: dad-laptop, ip: {PARENT}, profile: parents}}
        blocking: {{rebinding_allow: [router.asus.com]{blocking}}}
    """
    return config_for(upstream.address, extra=extra)


@pytest.fixture
async def upstream() -> FakeUpstream:
    records = dict(RECORDS)
    records[("trusted.example", "CNAME")] = ["pornhub.com."]
    async with FakeUpstream(records) as fake:
        yield fake


def logged(tmp_path: Path) -> list[tuple[str, str, str | None, str]]:
    """(name, kind, category, reason) of every logged lookup, in order (a row once per hit)."""
    with sqlite3.connect(tmp_path / "filterdns.db") as db:
        rows = db.execute("SELECT name, kind, category, reason, hits FROM queries ORDER BY id")
        return [(n, k, c, r) for n, k, c, r, hits in rows for _ in range(hits)]


@pytest.mark.parametrize(
    ("name", "qtype", "category", "chain"),
    [
        pytest.param("photos.example", "A", "adult", "photos.example -> pornhub.com", id="one"),
        pytest.param(
            "news.example", "A", "gambling",
            "news.example -> hop1.example -> hop2.example -> www.bet365.com", id="three",
        ),
        pytest.param("dns.example", "AAAA", "bypass",
                     "dns.example -> edge.example -> cloudflare-dns.com", id="doh-resolver"),
        pytest.param("www.mirror.example", "A", "adult",
                     "www.mirror.example -> pornhub.com", id="dname"),
        pytest.param("alias.example", "HTTPS", "adult", "alias.example -> pornhub.com",
                     id="https-alias"),
        pytest.param("svc.example", "HTTPS", "gambling", "svc.example -> bet365.com",
                     id="https-service-target"),
    ],
)  # fmt: skip
async def test_a_name_leading_to_a_blocked_one_is_blocked_and_logged_with_the_chain(
    upstream: FakeUpstream, tmp_path: Path, name: str, qtype: str, category: str, chain: str
) -> None:
    async with running_proxy(inspection_config(upstream, tmp_path)) as proxy:
        first = await proxy.query(name, qtype, source=KID)
        cached = await proxy.query(name, qtype, source=KID, tcp=True)
        grown_up = await proxy.query(name, qtype, source=PARENT)
    assert upstream.queries.count((name, qtype)) == 1  # the second and third were cache hits
    for reply in (first, cached):
        assert reply.rcode() == dns.rcode.NXDOMAIN
        assert not reply.answer
    assert grown_up.rcode() == dns.rcode.NOERROR and grown_up.answer  # the cache served both
    rows = logged(tmp_path)
    assert [(n, kind, c) for n, kind, c, _reason in rows] == [(name, "blocked", category)] * 2
    assert chain in rows[0][3]


async def test_a_chain_to_allowed_names_and_a_parent_allowed_name_pass(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with running_proxy(inspection_config(upstream, tmp_path)) as proxy:
        cdn = await proxy.query("cdn.example", source=KID)
        trusted = await proxy.query("trusted.example", source=KID)  # on kid's allow list
        itself = await proxy.query("self.example", "HTTPS", source=KID)
    assert addresses(cdn) == ["198.51.100.7"]
    assert addresses(trusted) == ["66.254.114.41"]
    assert itself.rcode() == dns.rcode.NOERROR and itself.answer
    assert logged(tmp_path) == []


async def test_cname_inspection_can_be_turned_off(upstream: FakeUpstream, tmp_path: Path) -> None:
    config = inspection_config(upstream, tmp_path, ", cname_inspection: false")
    async with running_proxy(config) as proxy:
        reply = await proxy.query("photos.example", source=KID)
    assert addresses(reply) == ["66.254.114.41"]


async def ask_all(proxy: Proxy, names: list[tuple[str, str]]) -> list[object]:
    return [await proxy.query(name, qtype, source=PARENT) for name, qtype in names]


REBINDING = [
    ("loopback.example", "A"),
    ("lan.example", "A"),
    ("home.example", "A"),
    ("metadata.example", "A"),
    ("cgnat.example", "A"),
    ("mixed.example", "A"),
    ("loopback.example", "AAAA"),
    ("ula.example", "AAAA"),
    ("linklocal.example", "AAAA"),
    ("mapped.example", "AAAA"),
    ("private-cname.example", "A"),
    ("hint.example", "HTTPS"),
]


async def test_public_names_never_point_into_the_network(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with running_proxy(inspection_config(upstream, tmp_path)) as proxy:
        stripped = [await proxy.query(n, t, source=PARENT) for n, t in REBINDING]
        again = await proxy.query("lan.example", source=KID, tcp=True)  # cached, another profile
        public = await proxy.query("public6.example", "AAAA", source=PARENT)
    for (name, _qtype), reply in zip(REBINDING, stripped, strict=True):
        assert reply.rcode() == dns.rcode.NOERROR, name
        assert not reply.answer, name  # NODATA
    assert addresses(again) == []
    assert addresses(public) == ["2606:2800:220:1::"]
    rows = logged(tmp_path)
    assert {(kind, category) for _n, kind, category, _r in rows} == {("blocked", "rebinding")}
    assert len(rows) == len(REBINDING) + 1


async def test_local_names_keep_their_private_addresses(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with FakeUpstream(RECORDS) as office:
        config = inspection_config(upstream, tmp_path).replace(
            "timeout: 1s\n", f"timeout: 1s\n  conditional: {{office.test: {office.address}}}\n"
        )
        async with running_proxy(config) as proxy:
            nas = await proxy.query("nas.home.arpa", source=KID)
            single = await proxy.query("printer", source=KID)
            allowed = await proxy.query("router.asus.com", source=KID)
            conditional = await proxy.query("nas.office.test", source=KID)
    assert addresses(nas) == ["192.168.1.10"]
    assert addresses(single) == ["192.168.1.11"]
    assert addresses(allowed) == ["192.168.50.1"]
    assert addresses(conditional) == ["10.9.0.5"]


async def test_rebinding_protection_can_be_turned_off(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    config = inspection_config(upstream, tmp_path, ", rebinding_protection: false")
    async with running_proxy(config) as proxy:
        reply = await proxy.query("lan.example", source=KID)
    assert addresses(reply) == ["10.1.2.3"]


@pytest.mark.parametrize(
    ("name", "action", "category", "seen"),
    [
        pytest.param("photos.example", "block", "adult",
                     "8. blocked: the answer leads to pornhub.com", id="cname-cloaking"),
        pytest.param("lan.example", "nodata", "rebinding",
                     "8. blocked: lan.example is a public name answered with a private address",
                     id="rebinding"),
        pytest.param("cdn.example", "allow", None,
                     "8. the answer leads to edge.cdn.example: none blocked for kid",
                     id="allowed-chain"),
    ],
)  # fmt: skip
async def test_explain_resolve_judges_the_answer_as_serve_does(
    upstream: FakeUpstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    action: str,
    category: str | None,
    seen: str,
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(inspection_config(upstream, tmp_path))
    argv = ["explain", name, "--client", KID, "--resolve", "-c", str(config)]
    assert await asyncio.to_thread(main, [*argv, "--json"]) == 0
    trace = json.loads(capsys.readouterr().out)
    assert (trace["action"], trace["category"]) == (action, category)
    assert any(line.startswith(seen) for line in trace["trace"])
    assert await asyncio.to_thread(main, argv) == 0
    assert seen in capsys.readouterr().out
    async with running_proxy(inspection_config(upstream, tmp_path)) as proxy:
        served = await proxy.query(name, source=KID)
    assert (addresses(served) == []) == (action != "allow")


async def test_explain_without_resolve_says_the_answer_is_judged_too(
    upstream: FakeUpstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(inspection_config(upstream, tmp_path))
    argv = ["explain", "photos.example", "--client", KID, "-c", str(config)]
    assert await asyncio.to_thread(main, argv) == 0
    out = capsys.readouterr().out
    assert "verdict: ALLOWED" in out
    assert "--resolve" in out
    assert upstream.calls == 0  # nothing was asked
