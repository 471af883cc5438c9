"""Every answer the chain gives, byte for byte, against the bytes recorded in
`answer_bytes.json`: blocked (each answer mode, EDE, a TTL capped by a schedule), rewritten
(SafeSearch), allowed (cached, or withheld by rebinding protection), with and without EDNS,
with the DO and CD bits, the client's 0x20 spelling and odd types and classes.

The recorded bytes are what the server sent before the blocked answer and `finish` were written
for speed; a change that alters any byte a client receives fails here. Regenerate them only for
a change meant to alter answers: `.venv/bin/python -m tests.unit.test_answer_bytes`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from filterdns.app import App
from filterdns.config import load_config_text
from filterdns.dns import wire
from filterdns.dns.model import Kind, Request, Response
from filterdns.dns.names import text_to_wire
from filterdns.dns.replies import analyse
from filterdns.querylog.store import LogRecord
from filterdns.resolvers.querylog import QueryLogResolver
from tests.integration.harness import FakeClock
from tests.integration.test_policy import at

RECORDED = Path(__file__).with_name("answer_bytes.json")
CONFIG = """\
server:
  {{listen: ["127.0.0.1:0"], rate_limit: null, timezone: Asia/Ho_Chi_Minh}}
upstreams: {{servers: ["127.0.0.1:9"]}}
lists: {{download_defaults: false, cache_dir: "{state}/lists"}}
log: {{database: "{state}/filterdns.db"}}
blocking: {{response: {mode}, custom_ips: [192.0.2.7, "2001:db8::7"]}}
profiles:
  kid: {{age_band: 13-15, bedtime: [], block: [casino.example], safesearch: true}}
  near:
    age_band: 13-15
    block: [casino.example]
    schedules: [{{name: lunch, days: daily, from: "10:00", to: "11:00", block: [social]}}]
clients:
  - {{name: kid-tablet, ip: 127.0.0.2, profile: kid}}
  - {{name: near-laptop, ip: 127.0.0.3, profile: near}}
default_profile: kid
"""
MODES = ("nxdomain", "null", "custom", "refused")
CLIENTS = {"kid": "127.0.0.2", "near": "127.0.0.3"}  # near: a schedule starts in 5 seconds
BLOCKED = ("casino.example", "CaSiNo.Example", "www.casino.example")
NAMES = (*BLOCKED, "example.org", "Example.ORG", "rebind.example", "www.google.com")
QTYPES = {"A": 1, "AAAA": 28, "HTTPS": 65, "TYPE65280": 65280}
SHAPES = {  # (flags, OPT record or None)
    "plain": (wire.RD, None),
    "edns": (wire.RD, (1232, 0)),
    "edns-do": (wire.RD, (4096, 0x8000)),
    "edns-512-cd": (wire.RD | wire.CD, (512, 0)),
    "cd-ad-no-rd": (wire.CD | wire.AD, None),
}


def packet(name: str, qtype: int, qclass: int, shape: str, msg_id: int) -> bytes:
    """A client query as the shape says."""
    flags, opt = SHAPES[shape]
    header = wire.HEADER.pack(msg_id, flags, 1, 0, 0, 0 if opt is None else 1)
    question = text_to_wire(name) + wire.TYPE_CLASS.pack(qtype, qclass)
    if opt is None:
        return header + question
    return header + question + b"\x00" + wire.RR_FIXED.pack(41, opt[0], opt[1], 0)


class Upstream:
    """Below the cache: two A records of TTL 300 (10.0.0.1 for rebind.example), a CNAME for
    the safe host first."""

    def resolve_now(self, request: Request) -> Response | None:
        return None

    async def resolve(self, request: Request) -> Response:
        query = request.query
        first = 10 if query.qname == "rebind.example" else 93
        records = [
            b"\xc0\x0c" + wire.RR_FIXED.pack(1, 1, 300 - n, 4) + bytes((first, 0, 2, n))
            for n in (1, 2)
        ]
        header = wire.HEADER.pack(1, 0x8180, 1, len(records), 0, 0)
        question = query.qname_wire.lower() + wire.TYPE_CLASS.pack(query.qtype, query.qclass)
        return Response(Kind.RESOLVED, analyse(header + question + b"".join(records)), upstream="u")


def cases(mode: str) -> Iterator[tuple[str, str, str, int, int, str]]:
    """(id, profile, name, qtype, qclass, shape) of every question asked: every name in the
    default mode, the blocked ones in the others."""
    names = NAMES if mode == "nxdomain" else BLOCKED
    for profile in CLIENTS:
        for name in names:
            for type_name, qtype in QTYPES.items():
                for shape in SHAPES:
                    yield f"{profile}-{name}-{type_name}-{shape}", profile, name, qtype, 1, shape
        for shape in ("plain", "edns-do"):
            yield f"{profile}-casino.example-A-CH-{shape}", profile, "casino.example", 1, 3, shape


async def answers(mode: str, state: Path) -> dict[str, str]:
    """The bytes sent for every case, in hex, with blocked names answered in `mode`."""
    clock, wall = FakeClock(1000.0), FakeClock(at("2026-11-23 09:59") + 55)
    config = load_config_text(CONFIG.format(state=state, mode=mode), source="<test>")
    app = App(config, clock=clock, wall_clock=wall)
    rows: list[LogRecord] = []
    app.chain.link(QueryLogResolver).sink = lambda row: rows.append(row) is None
    app.chain.cache.next = Upstream()
    head = app.server.chain
    out: dict[str, str] = {}
    try:
        for msg_id, (case, profile, name, qtype, qclass, shape) in enumerate(cases(mode), 1):
            data = packet(name, qtype, qclass, shape, msg_id)
            request = Request(wire.parse_query(data), CLIENTS[profile], 5300, "udp", 1000.0)
            response = head.resolve_now(request) or await head.resolve(request)
            out[case] = wire.finish(
                response.answer, request.query, limit=request.limit, ttl_cap=response.ttl_cap,
                ext_rcode=response.ext_rcode, options=response.edns_options,
            ).hex()  # fmt: skip
            clock.now += 0.001
    finally:
        app.lists.close()
        await app.querylog.close()
    return out


@pytest.fixture(scope="module")
def recorded() -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = json.loads(RECORDED.read_text())
    return found


@pytest.mark.parametrize("mode", MODES)
async def test_every_answer_is_byte_for_byte_what_it_was(
    mode: str, recorded: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    sent = await answers(mode, tmp_path)

    expected = recorded[mode]
    assert sent.keys() == expected.keys()
    differ = [case for case in sent if sent[case] != expected[case]]
    assert differ == [], f"{len(differ)} answers changed, the first {differ[0]}: " + (
        f"sent {sent[differ[0]]}, recorded {expected[differ[0]]}" if differ else ""
    )


def test_the_table_holds_each_kind_of_answer(recorded: dict[str, dict[str, str]]) -> None:
    """The recorded table covers what it claims: blocked, rewritten and allowed answers, EDE
    options, a TTL of 5 (capped by the schedule), NXDOMAIN and REFUSED."""
    sent = [bytes.fromhex(text) for mode in MODES for text in recorded[mode].values()]
    rcodes = {data[3] & 0xF for data in sent}
    ede = b"\x00\x0f"  # option code 15 in an OPT record
    assert {wire.NOERROR, wire.NXDOMAIN, wire.REFUSED} <= rcodes
    assert any(ede in data[-60:] for data in sent)
    assert any(b"\x00\x00\x00\x05" in data for data in sent)
    assert any(b"\x0fforcesafesearch" in data for data in sent)


def main() -> None:
    """Record the bytes the current tree sends (see the module docstring)."""
    import tempfile

    with tempfile.TemporaryDirectory() as state:
        table = {mode: asyncio.run(answers(mode, Path(state) / mode)) for mode in MODES}
    RECORDED.write_text(json.dumps(table, indent=0, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
