"""`local_records:` end to end: answered by the proxy over UDP and TCP, for every profile,
before any blocking, and never asked of the upstreams."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from filterdns.app import App
from filterdns.cli.main import main
from filterdns.config import load_config
from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import addresses, config_for, running_proxy

RECORDS = {("example.com", "A"): ["93.184.216.34"]}
LOCAL = """\
local_records:
  printer.school.lan: 10.6.0.5
  intranet.school.lan: {cname: web.school.lan}
  nas.home.arpa: [192.168.1.10, "fd00::10"]
  web.school.lan: {a: 10.6.0.7, aaaa: "fd00::7", ttl: 5m}
  games.example: 10.6.0.9
profiles:
  kid: {age_band: 9-12, band_schedules: false, block: [school.lan, games.example]}
  parents: {age_band: adult}
clients:
  - {name: kid-tablet, ip: 127.0.0.2, profile: kid}
default_profile: parents
"""


def _records(reply: dns.message.Message) -> list[str]:
    return [
        f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)} {rdata}"
        for rrset in reply.answer
        for rdata in rrset
    ]


CASES = [
    pytest.param("printer.school.lan", "A", ["printer.school.lan. A 10.6.0.5"], id="a"),
    pytest.param("nas.home.arpa", "A", ["nas.home.arpa. A 192.168.1.10"], id="a-of-two-families"),
    pytest.param("nas.home.arpa", "AAAA", ["nas.home.arpa. AAAA fd00::10"], id="aaaa"),
    pytest.param(
        "intranet.school.lan",
        "A",
        ["intranet.school.lan. CNAME web.school.lan.", "web.school.lan. A 10.6.0.7"],
        id="cname-chain",
    ),
    pytest.param(
        "5.0.6.10.in-addr.arpa", "PTR", ["5.0.6.10.in-addr.arpa. PTR printer.school.lan."], id="ptr"
    ),
    pytest.param(
        ipaddress.ip_address("fd00::7").reverse_pointer,
        "PTR",
        [f"{ipaddress.ip_address('fd00::7').reverse_pointer}. PTR web.school.lan."],
        id="ptr-v6",
    ),
    pytest.param("printer.school.lan", "MX", [], id="nodata-mx"),
    pytest.param("PRINTER.School.Lan.", "A", ["PRINTER.School.Lan. A 10.6.0.5"], id="any-case"),
    pytest.param("games.example", "A", ["games.example. A 10.6.0.9"], id="blocked-name-local"),
]


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize("source", ["127.0.0.2", "127.0.0.3"], ids=["child", "parent"])
@pytest.mark.parametrize(("name", "qtype", "expected"), CASES)
async def test_local_names_are_answered_without_asking_upstream(
    name: str, qtype: str, expected: list[str], tcp: bool, source: str
) -> None:
    async with FakeUpstream(RECORDS) as upstream:
        async with running_proxy(config_for(upstream.address, extra=LOCAL)) as proxy:
            reply = await proxy.query(name, qtype, tcp=tcp, source=source)
            other = await proxy.query("example.com", source=source)
        assert reply.rcode() == dns.rcode.NOERROR
        assert _records(reply) == expected
        assert reply.answer or reply.authority[0].rdtype == dns.rdatatype.SOA
        assert addresses(other) == ["93.184.216.34"]
        assert upstream.queries == [("example.com", "A")]  # only the name that is not local


async def test_the_child_is_still_blocked_beside_the_local_names() -> None:
    async with FakeUpstream(RECORDS) as upstream:
        async with running_proxy(config_for(upstream.address, extra=LOCAL)) as proxy:
            reply = await proxy.query("other.school.lan", source="127.0.0.2")
        assert reply.rcode() == dns.rcode.NXDOMAIN
        assert upstream.calls == 0


async def test_a_reload_applies_new_records(tmp_path: Path) -> None:
    async with FakeUpstream(RECORDS) as upstream:
        path = tmp_path / "config.yaml"
        extra = f"log: {{database: {tmp_path / 'filterdns.db'}}}\n" + LOCAL
        text = config_for(upstream.address, extra=extra)
        path.write_text(text)
        app = App(load_config(path))
        bound = (await app.start())[0]
        try:
            first = await _ask(bound.host, bound.port, "printer.school.lan")
            path.write_text(text.replace("printer.school.lan: 10.6.0.5", "scanner.lan: 10.6.0.6"))
            assert await app.reload()
            gone = await _ask(bound.host, bound.port, "printer.school.lan")
            new = await _ask(bound.host, bound.port, "scanner.lan")
        finally:
            await app.stop()
    assert addresses(first) == ["10.6.0.5"]
    assert addresses(new) == ["10.6.0.6"]
    assert addresses(gone) == [] and upstream.queries == [("printer.school.lan", "A")]


async def _ask(host: str, port: int, name: str) -> dns.message.Message:
    return await dns.asyncquery.udp(dns.message.make_query(name, "A"), host, port=port, timeout=3)


@pytest.mark.parametrize(
    ("name", "seen"),
    [
        pytest.param("Games.Example.", "3. local record: games.example is answered A 10.6.0.9 "
                     "(local_records.games.example, line ", id="blocked-name"),
        pytest.param("intranet.school.lan", "3. answered locally, upstreams not asked: "
                     "intranet.school.lan.", id="cname"),
    ],
)  # fmt: skip
async def test_explain_shows_step_3_local_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, seen: str
) -> None:
    async with FakeUpstream(RECORDS) as upstream:
        config = tmp_path / "config.yaml"
        extra = f"log: {{database: {tmp_path / 'filterdns.db'}}}\n" + LOCAL
        config.write_text(config_for(upstream.address, extra=extra))
        argv = ["explain", name, "--client", "127.0.0.2", "--resolve", "-c", str(config)]
        assert await asyncio.to_thread(main, [*argv, "--json"]) == 0
        trace = json.loads(capsys.readouterr().out)
        assert (trace["action"], trace["step"], trace["rule"]) == ("allow", 3, "local record")
        assert any(line.startswith(seen) for line in trace["trace"])
        assert upstream.calls == 0
