"""`local_records:`: the section reader (problems with path and line) and the answers built."""

from __future__ import annotations

import ipaddress

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from filterdns.config import default_config, load_config_text
from filterdns.config.localrecords import LocalRecord
from filterdns.dns import replies, wire
from filterdns.dns.model import Kind
from filterdns.errors import ConfigError, Problem
from filterdns.lists.index import DomainIndex
from filterdns.policy.answers import AnswerJudge
from filterdns.policy.decisions import Policy
from filterdns.policy.localzone import LocalZone
from filterdns.policy.values import Action
from filterdns.querylog.store import LogRecord
from filterdns.resolvers.localrecords import LocalRecordsResolver
from filterdns.resolvers.querylog import QueryLogResolver
from tests.unit.test_links import Below, _request

SCHOOL = """\
local_records:
  printer.school.lan: 10.6.0.5
  intranet.school.lan: {cname: web.school.lan}
  nas.home.arpa: [192.168.1.10, "fd00::10"]
  Web.School.LAN.: {a: 10.6.0.7, aaaa: "fd00::7", ttl: 5m}
  portal.school.lan: {cname: intranet.school.lan}
  wiki.school.lan: {cname: wiki.example.org, ttl: 60}
  nas2.home.arpa: {a: 192.168.1.10}
"""


def _load(text: str) -> tuple[LocalRecord, ...]:
    return load_config_text(text, defaults=default_config(is_root=False)).local_records


def _problems(text: str) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        _load(text)
    return caught.value.problems


def test_the_forms_are_read_with_names_normalised() -> None:
    records = {record.name: record for record in _load(SCHOOL)}
    ip = ipaddress.ip_address
    assert records["printer.school.lan"].addresses == (ip("10.6.0.5"),)
    assert records["intranet.school.lan"].cname == "web.school.lan"
    assert records["nas.home.arpa"].addresses == (ip("192.168.1.10"), ip("fd00::10"))
    assert records["web.school.lan"].addresses == (ip("10.6.0.7"), ip("fd00::7"))
    assert (records["web.school.lan"].ttl, records["printer.school.lan"].ttl) == (300, 300)
    assert records["wiki.school.lan"].ttl == 60


@pytest.mark.parametrize(
    ("entry", "path", "message", "line"),
    [
        pytest.param(
            "a.lan: 10.0.0.300", "local_records.a.lan",
            '"10.0.0.300" is not an IP address like 192.168.1.2 or fd00::2', 2, id="bad-address",
        ),
        pytest.param(
            "a.lan: {cname: A.lan.}", "local_records.a.lan.cname",
            '"A.lan." is the name itself; a CNAME must lead elsewhere', 2, id="cname-to-itself",
        ),
        pytest.param(
            "a.lan: {cname: b.lan, a: 10.0.0.1}", "local_records.a.lan",
            "has both cname and addresses; a CNAME name has no others", 2, id="cname-and-a",
        ),
        pytest.param(
            '"not a name!": 10.0.0.1', "local_records.not a name!",
            '"not a name!" is not a DNS name like printer.school.lan', 2, id="bad-name",
        ),
        pytest.param(
            'a.lan: {a: "fd00::1"}', "local_records.a.lan.a",
            '"fd00::1" is not an IPv4 address', 2, id="v6-under-a",
        ),
        pytest.param(
            "a.lan: {ttl: 5m}", "local_records.a.lan", "needs a, aaaa or cname", 2, id="no-data",
        ),
        pytest.param(
            "a.lan: {cname: b.lan}\n  b.lan: {cname: a.lan}", "local_records.a.lan",
            "the CNAME chain a.lan -> b.lan -> a.lan is a loop", 2, id="cname-loop",
        ),
        pytest.param(
            "a.lan: 10.0.0.1\n  A.LAN.: 10.0.0.2", "local_records.A.LAN.",
            '"A.LAN." is already given as local_records.a.lan', 3, id="same-name-twice",
        ),
    ],
)  # fmt: skip
def test_problems_name_the_path_and_line(entry: str, path: str, message: str, line: int) -> None:
    assert _problems(f"local_records:\n  {entry}\n")[0] == Problem(path, message, line)


ZONE = LocalZone(_load(SCHOOL))


def _ask(name: str, qtype: str) -> dns.message.Message | None:
    answer = ZONE.answer(name, dns.rdatatype.from_text(qtype))
    return None if answer is None else dns.message.from_wire(answer.wire)


def _records(message: dns.message.Message) -> list[str]:
    return sorted(
        f"{rrset.name} {rrset.ttl} {dns.rdatatype.to_text(rrset.rdtype)} {rdata}"
        for rrset in message.answer
        for rdata in rrset
    )


@pytest.mark.parametrize(
    ("name", "qtype", "expected"),
    [
        ("printer.school.lan", "A", ["printer.school.lan. 300 A 10.6.0.5"]),
        ("nas.home.arpa", "AAAA", ["nas.home.arpa. 300 AAAA fd00::10"]),
        ("web.school.lan", "A", ["web.school.lan. 300 A 10.6.0.7"]),
        ("intranet.school.lan", "A", [
            "intranet.school.lan. 300 CNAME web.school.lan.", "web.school.lan. 300 A 10.6.0.7",
        ]),
        ("portal.school.lan", "AAAA", [
            "intranet.school.lan. 300 CNAME web.school.lan.",
            "portal.school.lan. 300 CNAME intranet.school.lan.",
            "web.school.lan. 300 AAAA fd00::7",
        ]),
        ("intranet.school.lan", "CNAME", ["intranet.school.lan. 300 CNAME web.school.lan."]),
        ("wiki.school.lan", "A", ["wiki.school.lan. 60 CNAME wiki.example.org."]),
        ("5.0.6.10.in-addr.arpa", "PTR", ["5.0.6.10.in-addr.arpa. 300 PTR printer.school.lan."]),
        ("10.1.168.192.in-addr.arpa", "PTR", [
            "10.1.168.192.in-addr.arpa. 300 PTR nas.home.arpa.",
            "10.1.168.192.in-addr.arpa. 300 PTR nas2.home.arpa.",
        ]),
        (ipaddress.ip_address("fd00::7").reverse_pointer, "PTR", [
            f"{ipaddress.ip_address('fd00::7').reverse_pointer}. 300 PTR web.school.lan.",
        ]),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)  # fmt: skip
def test_local_names_answer_their_records(name: str, qtype: str, expected: list[str]) -> None:
    message = _ask(name, qtype)
    assert message is not None
    assert message.rcode() == dns.rcode.NOERROR
    assert _records(message) == sorted(expected)


@pytest.mark.parametrize(
    ("name", "qtype"),
    [
        ("printer.school.lan", "MX"),
        ("printer.school.lan", "AAAA"),  # no IPv6 address
        ("nas2.home.arpa", "TXT"),
        ("5.0.6.10.in-addr.arpa", "A"),
    ],
)
def test_other_types_of_a_local_name_get_nodata_never_nxdomain(name: str, qtype: str) -> None:
    message = _ask(name, qtype)
    assert message is not None
    assert (message.rcode(), message.answer) == (dns.rcode.NOERROR, [])
    assert message.authority[0].rdtype == dns.rdatatype.SOA


@pytest.mark.parametrize("name", ["school.lan", "other.school.lan", "6.0.6.10.in-addr.arpa"])
def test_other_names_are_not_local(name: str) -> None:
    assert _ask(name, "A") is None and _ask(name, "PTR") is None


def test_answers_are_built_once_and_question_echoes_the_name() -> None:
    first = ZONE.answer("printer.school.lan", wire.TYPE_A)
    assert first is ZONE.answer("printer.school.lan", wire.TYPE_A)
    assert ZONE.answer("printer.school.lan", 15) is ZONE.answer("printer.school.lan", 15)
    assert first is not None
    question = dns.message.from_wire(first.wire).question[0]
    assert (str(question.name), question.rdtype) == ("printer.school.lan.", dns.rdatatype.A)


KIDS = (
    SCHOOL
    + """\
profiles:
  kid: {age_band: under-9, block: [school.lan]}
default_profile: kid
"""
)
NOW = 1_790_000_000.0


def _policy() -> tuple[Policy, AnswerJudge]:
    config = load_config_text(KIDS, defaults=default_config(is_root=False))
    policy = Policy(config, DomainIndex.empty)
    return policy, AnswerJudge(config, policy)


def test_explain_shows_step_3_and_a_local_record_wins_over_the_block_list() -> None:
    policy, _judge = _policy()
    decision = policy.decide("kid", "printer.school.lan", NOW, explain=True)
    assert (decision.action, decision.step) == (Action.ALLOW, 3)
    step3 = [line for line in decision.trace if line.startswith("3.")]
    assert step3[0] == (
        "3. local record: printer.school.lan is answered A 10.6.0.5 "
        "(local_records.printer.school.lan, line 2)"
    )
    assert policy.decide("kid", "other.school.lan", NOW).action == Action.BLOCK


def _upstream(*lines: str) -> wire.Answer:
    message = dns.message.make_response(dns.message.make_query("cdn.example.com", "A"))
    for line in lines:
        name, ttl, rdtype, rdata = line.split()
        message.answer.append(dns.rrset.from_text(name, int(ttl), "IN", rdtype, rdata))
    return replies.analyse(message.to_wire())


@pytest.mark.parametrize(
    ("lines", "kept"),
    [
        pytest.param(
            ("cdn.example.com. 60 CNAME printer.school.lan.", "printer.school.lan. 60 A 10.6.0.5"),
            True,
            id="chain-ends-in-a-local-record",
        ),
        pytest.param(("cdn.example.com. 60 A 10.6.0.5",), False, id="public-name-private-address"),
    ],
)
def test_rebinding_keeps_private_addresses_reached_through_local_records(
    lines: tuple[str, ...], kept: bool
) -> None:
    policy, judge = _policy()
    allowed = policy.decide("kid", "cdn.example.com", NOW)
    verdict = judge.judge(allowed, "cdn.example.com", _upstream(*lines), NOW)
    assert (verdict is None) is kept


@pytest.mark.parametrize("log_allowed", [True, False], ids=["log-allowed", "blocked-only"])
async def test_a_local_answer_is_logged_as_an_allowed_lookup(log_allowed: bool) -> None:
    policy, _judge = _policy()
    rows: list[LogRecord] = []
    sut = QueryLogResolver(
        LocalRecordsResolver(Below(False), policy.local),
        lambda row: rows.append(row) is None,
        observe=lambda row: None,
        log_allowed=log_allowed,
        clock=lambda: NOW,
    )
    response = sut.resolve_now(_request("printer.school.lan", profile="kid"))
    assert response is not None and response.kind is Kind.LOCAL
    logged = [(row.name, row.profile, row.kind, row.reason) for row in rows]
    expected = ("printer.school.lan", "kid", "local", "local record printer.school.lan: A 10.6.0.5")
    assert logged == ([expected] if log_allowed else [])
