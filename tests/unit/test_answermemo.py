"""The answer memo's rules, on the real chain with fixed clocks: what is kept and when, what a
hit still does, what ends a kept answer, what never shares one, and its bounds."""

from __future__ import annotations

import math
import tracemalloc
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from filterdns.app import App
from filterdns.config import load_config_text
from filterdns.dns import wire
from filterdns.dns.model import Kind, Request, Response
from filterdns.dns.names import text_to_wire
from filterdns.dns.replies import analyse
from filterdns.lists.index import DomainIndex
from filterdns.querylog.store import LogRecord
from filterdns.resolvers import answermemo
from filterdns.resolvers.answermemo import AnswerMemo, same_cap_until
from filterdns.resolvers.policy import PolicyResolver
from filterdns.resolvers.querylog import QueryLogResolver
from tests.integration.harness import FakeClock
from tests.integration.test_policy import at

CONFIG = """\
server:
  {{listen: ["127.0.0.1:0"], rate_limit: null, timezone: Asia/Ho_Chi_Minh,
   allow_clients: [127.0.0.0/8]}}
upstreams: {{servers: ["127.0.0.1:9"]}}
lists: {{download_defaults: false, cache_dir: "{state}/lists"}}
log: {{database: "{state}/filterdns.db"}}
profiles:
  kid: {{age_band: 13-15, bedtime: [], block: [casino.example]}}
  grown: {{age_band: adult}}
clients: [{{name: kid-tablet, ip: 127.0.0.2, profile: kid}}]
default_profile: grown
"""
KID, GROWN, STRANGER = "127.0.0.2", "127.0.0.9", "203.0.113.5"
TTL = 300


def packet(name: str, msg_id: int = 1, *, edns: int | None = None, flags: int = wire.RD,
           do: bool = False) -> bytes:  # fmt: skip
    """A client query for `name`/A."""
    header = wire.HEADER.pack(msg_id, flags, 1, 0, 0, 0 if edns is None else 1)
    question = text_to_wire(name) + wire.TYPE_CLASS.pack(wire.TYPE_A, wire.CLASS_IN)
    if edns is None:
        return header + question
    return header + question + b"\x00" + wire.RR_FIXED.pack(41, edns, 0x8000 if do else 0, 0)


class Upstream:
    """Below the cache: one A record of TTL 300 for every name."""

    def resolve_now(self, request: Request) -> Response | None:
        return None

    async def resolve(self, request: Request) -> Response:
        query = request.query
        header = wire.HEADER.pack(1, 0x8180, 1, 1, 0, 0)
        question = query.qname_wire.lower() + wire.TYPE_CLASS.pack(query.qtype, query.qclass)
        record = b"\xc0\x0c" + wire.RR_FIXED.pack(1, 1, TTL, 4) + bytes((93, 184, 216, 34))
        return Response(Kind.RESOLVED, analyse(header + question + record), upstream="stub")


class Rig:
    """An App's chain and its server's memo, asked the way the server asks them."""

    def __init__(self, app: App, clock: FakeClock, wall: FakeClock) -> None:
        self.app, self.clock, self.wall = app, clock, wall
        self.rows: list[LogRecord] = []
        app.chain.link(QueryLogResolver).sink = self._row
        app.chain.cache.next = Upstream()

    def _row(self, record: LogRecord) -> bool:
        self.rows.append(record)
        return True

    @property
    def memo(self) -> AnswerMemo:
        memo = self.app.server.memo
        assert memo is not None
        return memo

    async def cache(self, name: str) -> None:
        """Have the cache hold `name`, as after a first lookup."""
        request = Request(wire.parse_query(packet(name)), KID, 5300, "udp", 0.0)
        await self.app.chain.cache.resolve(request)

    def ask(self, data: bytes, ip: str = KID, protocol: str = "udp") -> tuple[bytes, bool]:
        """(the bytes sent, whether the memo answered) for `data` from `ip`."""
        memo = self.memo
        kept = memo.find(data, ip, protocol)
        if kept is not None:
            return memo.serve(kept, data, (ip, 5300), protocol, 0.0), True
        request = Request(wire.parse_query(data), ip, 5300, protocol, 0.0)
        listening = memo.listen()
        response = self.app.chain.head.resolve_now(request)
        if listening:
            memo.deaf()
        if response is None or response.silent:  # a task would answer it / nobody
            return b"", False
        limit = request.limit
        out = wire.finish(response.answer, request.query, limit=limit, ttl_cap=response.ttl_cap,
                          options=response.edns_options)  # fmt: skip
        memo.admit(request, response, out)
        return out, False

    def served(self, data: bytes, times: int, ip: str = KID) -> list[bool]:
        return [self.ask(data, ip)[1] for _ in range(times)]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    clock, wall = FakeClock(1000.0), FakeClock(at("2026-11-23 10:00"))
    config = load_config_text(CONFIG.format(state=tmp_path), source="<test>")
    app = App(config, clock=clock, wall_clock=wall)
    yield Rig(app, clock, wall)
    app.lists.close()
    await app.querylog.close()


def ttl_of(out: bytes) -> int:
    return wire.U32.unpack_from(out, len(out) - 10)[0]


async def test_a_question_is_kept_from_its_second_asking_and_answered_with_each_id(
    rig: Rig,
) -> None:
    await rig.cache("example.com")

    sent = [rig.ask(packet("example.com", msg_id)) for msg_id in (7, 8, 9, 10)]

    assert [hit for _out, hit in sent] == [False, False, True, True]
    assert [wire.U16.unpack_from(out)[0] for out, _hit in sent] == [7, 8, 9, 10]
    assert len({out[2:] for out, _hit in sent}) == 1
    assert rig.app.chain.cache.stats.hits == 4  # the memo's hits are the cache's too


async def test_a_blocked_name_answered_by_the_memo_is_logged_every_time(rig: Rig) -> None:
    served = rig.served(packet("casino.example"), 4)

    assert served == [False, False, True, True]
    assert [(r.name, r.kind, r.client, r.client_name) for r in rig.rows] == [
        ("casino.example", "blocked", KID, "kid-tablet")
    ] * 4


def a_second_older(rig: Rig) -> None:
    rig.clock.now += 1


def expired(rig: Rig) -> None:
    rig.clock.now += TTL


def policy_state(rig: Rig) -> None:
    """A grant, a pause or a budget spent: the profile's state is computed again."""
    rig.app.budgets.version += 1


def lists_refreshed(rig: Rig) -> None:
    rig.app.lists.index = DomainIndex.empty()


def chain_swapped(rig: Rig) -> None:
    """A reload swaps a new chain in."""
    rig.app.server.chain = rig.app.chain.head


@pytest.mark.parametrize(
    "change",
    [a_second_older, expired, policy_state, lists_refreshed, chain_swapped],
    ids=lambda change: change.__name__.replace("_", "-"),
)
async def test_what_ends_a_kept_answer(rig: Rig, change: Callable[[Rig], None]) -> None:
    await rig.cache("example.com")
    query = packet("example.com")
    before = rig.served(query, 3)
    change(rig)
    await rig.cache("example.com")  # an expired entry is fetched again

    out, hit = rig.ask(query)

    assert before == [False, False, True]
    assert not hit
    assert ttl_of(out) == TTL - (rig.clock.now - 1000.0) % TTL


@pytest.mark.parametrize(
    ("other", "ip"),
    [
        (packet("example.com", edns=4096), KID),
        (packet("example.com", edns=1232, do=True), KID),
        (packet("EXAMPLE.com"), KID),
        (packet("example.com", flags=0), KID),
        (packet("example.com"), GROWN),
    ],
    ids=["edns-size", "dnssec-ok", "spelling", "no-recursion", "another-profile"],
)
async def test_what_never_shares_a_kept_answer(rig: Rig, other: bytes, ip: str) -> None:
    await rig.cache("example.com")
    rig.served(packet("example.com", edns=1232), 3)

    assert rig.served(other, 2, ip) == [False, False]


async def test_a_name_blocked_for_one_profile_is_not_blocked_for_another(rig: Rig) -> None:
    await rig.cache("casino.example")
    query = packet("casino.example")
    rig.served(query, 3)

    out, _hit = rig.ask(query, GROWN)

    assert out[3] & 0xF == wire.NOERROR


async def test_a_client_outside_the_acl_is_never_answered_by_the_memo(rig: Rig) -> None:
    await rig.cache("example.com")
    query = packet("example.com")
    kept = rig.served(query, 3, GROWN)  # kept for the default profile, which strangers get too

    assert kept == [False, False, True]
    assert rig.served(query, 3, STRANGER) == [False] * 3
    assert rig.ask(query, STRANGER)[0] == b""  # over UDP, nothing at all


async def test_the_memo_keeps_a_bounded_number_of_answers_and_questions(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(answermemo, "MAX_KEPT", 4)
    monkeypatch.setattr(answermemo, "MAX_SEEN", 8)
    rig.app.server.chain = rig.app.chain.head  # a new memo with those bounds
    for n in range(50):
        rig.served(packet(f"n{n}.casino.example"), 2)

    full = len(rig.memo)
    rig.clock.now += answermemo.DROP_EVERY
    rig.ask(packet("casino.example"))

    assert rig.memo.kept == 50
    assert 0 < full <= 4
    assert len(rig.memo) == 0  # stale answers are dropped


NOW = 1_000_000.0


@pytest.mark.parametrize(
    ("change_at", "ttls", "until"),
    [
        (math.inf, (300,), math.inf),
        (NOW + 10.5, (300,), NOW + 0.5),  # the cap (11 s) bites: until it becomes 10
        (NOW + 1000.25, (60,), NOW + 941.25),  # the cap bites nothing until it is below 60
        (NOW + 1000.25, (), NOW + 1000.25),  # no TTL to cap: until the change itself
    ],
    ids=["no-change-coming", "cap-bites", "cap-above-every-ttl", "no-ttls"],
)
def test_an_answer_capped_by_the_next_change_stays_the_same_until(
    change_at: float, ttls: tuple[int, ...], until: float
) -> None:
    response = Response(Kind.CACHED, wire.Answer(b"", tuple(range(len(ttls))), ttls))

    assert same_cap_until(change_at, response, NOW) == until


@pytest.mark.parametrize(
    ("name", "cached", "most"),
    [
        # 816 bytes when it kept the query and the Response it never replays
        pytest.param("n{}.example", True, 450, id="cached-nothing-to-replay"),
        pytest.param("n{}.casino.example", False, 650, id="blocked-logged"),
    ],
)
async def test_what_a_kept_answer_costs_in_memory(
    rig: Rig, name: str, cached: bool, most: int
) -> None:
    names = [name.format(n) for n in range(500)]
    for each in names:  # asked once: seen
        if cached:
            await rig.cache(each)
        rig.ask(packet(each))
    tracemalloc.start()
    for each in names:  # asked again within the second: kept
        rig.ask(packet(each))
    rig.clock.now += 1.0
    for each in names if cached else ():  # the cache's entries move on to the next second
        await rig.cache(each)
    rig.rows.clear()  # the log rows the passes wrote are the log's, not the memo's
    kept_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()

    assert rig.memo.kept == len(names)
    assert kept_bytes / len(names) <= most


async def test_blocked_answers_kept_ready_stay_within_their_bound(rig: Rig) -> None:
    policy = rig.app.chain.link(PolicyResolver)
    answers = [rig.ask(packet(f"n{n}.casino.example"))[0] for n in range(3000)]

    assert all(wire.HEADER.unpack_from(out)[1] & 0xF == wire.NXDOMAIN for out in answers)
    assert 0 < len(policy._blocked) <= 1024  # about 0.7 MB; 4,096 held 2.8 MB
