"""The JSON API end to end: a real proxy with its web app, tokens made as `filterdns web token`
makes them, real DNS queries that the API's changes apply to at once, and /metrics on the web
listener (with a token) and on server.metrics (without)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import dns.rcode

from filterdns.querylog.changes import recent
from filterdns.web.accounts import AccountStore, Role
from filterdns.web.asks import RequestStore
from filterdns.web.reportcache import REPORT_TTL, profile_report
from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import FakeClock, addresses, config_for, running_proxy
from tests.integration.webapp import WebApp, running_web

ANSWERS = {
    ("example.com", "A"): ["93.184.216.34"],
    ("youtube.com", "A"): ["142.250.1.1"],
    ("casino.example", "A"): ["203.0.113.7"],
}


# The names blocked are the profile's own (a category list of its own would cost each test a
# build of the index).
PROFILES = """
profiles:
  minh:
    age_band: 9-12
    display_name: "Minh (lớp 5)"
    block: [youtube.com, casino.example]
    budgets: [{name: games, categories: [games], per_day: 60m}]
  lan: {age_band: 13-15}
clients:
  - {name: minh-tablet, ip: 127.0.0.1, profile: minh}
"""


# A Tuesday at 10:00 on this machine's clock (the configuration names no zone): no bedtime.
TUESDAY = datetime(2026, 11, 24, 10, 0).timestamp()


@asynccontextmanager
async def webapp(tmp_path: Path, clock: FakeClock | None = None) -> AsyncIterator[WebApp]:
    """The proxy with two children, a parent "me", on the clock (TUESDAY by default)."""
    clock = clock or FakeClock(TUESDAY)
    async with running_web(tmp_path, PROFILES, answers=ANSWERS,
                           wall_clock=clock) as app:  # fmt: skip
        app.account("me")
        yield app


@dataclass
class Api:
    """An HTTP client sending one account's token."""

    http: aiohttp.ClientSession

    async def call(self, method: str, path: str, body: Any = None, raw: bytes | None = None
                   ) -> tuple[int, Any]:  # fmt: skip
        data = raw if raw is not None else None if body is None else _json(body)
        headers = {"Content-Type": "application/json"} if data is not None else {}
        async with self.http.request(method, path, data=data, headers=headers) as reply:
            return reply.status, await reply.json(content_type=None)

    async def get(self, path: str) -> Any:
        status, found = await self.call("GET", path)
        assert status == 200, found
        return found

    async def post(self, path: str, body: Any = None) -> Any:
        status, found = await self.call("POST", path, body)
        assert status == 200, found
        return found


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


@asynccontextmanager
async def api(app: WebApp, token: str) -> AsyncIterator[Api]:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(app.url, headers=headers) as http:
        yield Api(http)


async def blocked(app: WebApp, name: str) -> bool:
    reply = await app.proxy.query(name)
    return reply.rcode() == dns.rcode.NXDOMAIN or addresses(reply) == ["0.0.0.0"]


async def test_a_parents_token_reads_and_changes_everything_through_the_actions(
    tmp_path: Path,
) -> None:
    async with webapp(tmp_path) as app, api(app, app.token("me")) as me:
        found = await me.get("/api/v1/profiles")
        assert found["account"] == {"name": "me", "role": "parent", "profiles": []}
        states = {p["profile"]: p["state"] for p in found["profiles"]}
        assert states == {"minh": "allowed", "lan": "allowed", "household": "allowed"}
        (minh,) = [p for p in found["profiles"] if p["profile"] == "minh"]
        assert minh["display_name"] == "Minh (lớp 5)"
        assert [b["budget"] for b in minh["budgets"]] == ["games"]

        # A pause blocks the very next lookup, and resume lets it through again.
        assert not await blocked(app, "example.com")
        paused = await me.post("/api/v1/profiles/minh/pause", {"for": "15m", "reason": "tea"})
        (grant,) = paused["grants"]
        assert (grant["kind"], grant["created_by"]) == ("pause", "me")
        assert grant["text"].startswith("paused until ")
        assert await blocked(app, "example.com")
        found = await me.get("/api/v1/profiles")
        assert [p["state"] for p in found["profiles"] if p["profile"] == "minh"] == ["paused"]
        ended = await me.post("/api/v1/profiles/minh/resume")
        assert [g["id"] for g in ended["ended"]] == [grant["id"]]
        assert not await blocked(app, "example.com")

        # Allowing a name on the profile's own block list; then revoking it.
        assert await blocked(app, "youtube.com")
        allowed = await me.post("/api/v1/profiles/minh/allow",
                                {"domains": ["YouTube.com."], "for": "1h"})  # fmt: skip
        (grant,) = allowed["grants"]
        assert grant["domain"] == "youtube.com"
        assert not await blocked(app, "youtube.com")
        listed = await me.get("/api/v1/grants")
        assert [g["id"] for g in listed["grants"]] == [grant["id"]]
        status, gone = await me.call("DELETE", f"/api/v1/grants/{grant['id']}")
        assert status == 200 and gone["revoked"][0]["id"] == grant["id"]
        assert await blocked(app, "youtube.com")
        status, again = await me.call("DELETE", f"/api/v1/grants/{grant['id']}")
        assert (status, again) == (404, {"error": f"no grant #{grant['id']} in force"})

        # Block-all until a time, and a budget top-up.
        walled = await me.post("/api/v1/profiles/lan/block-all", {"tomorrow": True})
        assert walled["grants"][0]["kind"] == "block-all"
        topped = await me.post("/api/v1/profiles/minh/budget",
                               {"budget": "games", "minutes": 30})  # fmt: skip
        assert topped["grants"][0]["minutes"] == 30
        found = await me.get("/api/v1/profiles")
        (games,) = next(p for p in found["profiles"] if p["profile"] == "minh")["budgets"]
        assert games["minutes"] == 90

        # Every change is in the changes table with the account and the door.
        logged = await me.get("/api/v1/changes?limit=10")
        actions = [(c["action"], c["profile"], c["who"], c["via"]) for c in logged["changes"]]
        assert actions == [
            ("top-up", "minh", "me", "api"), ("block-all", "lan", "me", "api"),
            ("revoke", "minh", "me", "api"), ("allow", "minh", "me", "api"),
            ("resume", "minh", "me", "api"), ("pause", "minh", "me", "api"),
        ]  # fmt: skip
    assert [c.via for c in recent(app.database)] == ["api"] * 6


async def test_the_report_counts_real_lookups_as_filterdns_report_does(tmp_path: Path) -> None:
    clock = FakeClock(TUESDAY)
    async with webapp(tmp_path, clock) as app:
        app.proxy.app.querylog.flush_interval = 0.01
        for name in ("casino.example", "casino.example", "youtube.com", "example.com"):
            await app.proxy.query(name)
        await app.proxy.app.querylog.wait_written(3)
        clock.now += 60  # the report's period ends now, after them
        async with api(app, app.token("me")) as me:
            today = await me.get("/api/v1/profiles/minh/report?period=today")
            week = await me.get("/api/v1/profiles/minh/report?period=week")
            other = await me.get("/api/v1/profiles/lan/report")
            status, bad = await me.call("GET", "/api/v1/profiles/minh/report?period=year")
    for report in (today, week):
        assert report["version"] == 1
        assert report["filters"] == {"profile": "minh", "client": None}
        assert report["blocked_total"] == 3
        top = report["top_names"][0]
        assert (top["name"], top["count"]) == ("casino.example", 2)
    assert today["since"] > week["since"]
    assert other["blocked_total"] == 0
    assert (status, bad) == (400, {"error": "period 'year' is not one of: today, week"})


async def test_no_token_a_wrong_one_or_a_revoked_one_is_401(tmp_path: Path) -> None:
    async with webapp(tmp_path) as app:
        token = app.token("me")
        async with aiohttp.ClientSession(app.url) as http:
            reply = await http.get("/api/v1/profiles")
            assert (reply.status, await reply.json()) == (401, {"error": "sign in first"})
            reply = await http.post("/api/v1/profiles/minh/pause", json={})
            assert reply.status == 401
        async with api(app, token + "x") as wrong:
            assert await wrong.call("GET", "/api/v1/grants") == (
                401, {"error": "invalid or revoked token"})  # fmt: skip
        store = AccountStore(app.database)
        (info,) = store.tokens("me")
        assert store.revoke_token(info.id)
        async with api(app, token) as revoked:
            status, _ = await revoked.call("POST", "/api/v1/profiles/minh/pause", {})
            assert status == 401
        assert not await blocked(app, "example.com")  # nothing was paused


async def test_a_teachers_token_reaches_only_their_class(tmp_path: Path) -> None:
    async with webapp(tmp_path) as app:
        app.account("co-lan", Role.TEACHER, ["lan"])
        async with api(app, app.token("me")) as parent:
            minhs = await parent.post("/api/v1/profiles/minh/pause", {})
        async with api(app, app.token("co-lan")) as teacher:
            found = await teacher.get("/api/v1/profiles")
            assert [p["profile"] for p in found["profiles"]] == ["lan"]
            assert (await teacher.get("/api/v1/grants"))["grants"] == []
            assert (await teacher.get("/api/v1/changes"))["changes"] == []
            for method, path in [
                ("GET", "/api/v1/profiles/minh/report"),
                ("POST", "/api/v1/profiles/minh/resume"),
                ("POST", "/api/v1/profiles/minh/pause"),
                ("DELETE", f"/api/v1/grants/{minhs['grants'][0]['id']}"),
                ("GET", "/metrics"),
            ]:
                status, said = await teacher.call(method, path)
                assert status == 403, (method, path, said)
                assert set(said) == {"error"}
            mine = await teacher.post("/api/v1/profiles/lan/pause", {"for": 600})
            assert mine["grants"][0]["profile"] == "lan"
            status, none = await teacher.call("POST", "/api/v1/profiles/nobody/pause")
            assert status == 404 and "error" in none
        assert await blocked(app, "example.com")  # minh stays paused


BAD_BODIES = [
    ("/api/v1/profiles/minh/pause", b"{not json", "the body is not JSON"),
    ("/api/v1/profiles/minh/pause", b"[1, 2]", "the body must be a JSON object"),
    ("/api/v1/profiles/minh/pause", b'{"minutes": 5}', "unknown key 'minutes'; keys here: for, "
     "reason, tomorrow, until"),
    ("/api/v1/profiles/minh/pause", b'{"for": "30"}', "--for needs a unit: 30m, 2h, 1d"),
    ("/api/v1/profiles/minh/pause", b'{"for": true}', "'for' must be a duration"),
    ("/api/v1/profiles/minh/pause", b'{"for": "1h", "until": "21:00"}', "give one end"),
    ("/api/v1/profiles/minh/pause", b'{"until": "9pm"}', "is not a time of day like 10:45"),
    ("/api/v1/profiles/minh/pause", b'{"tomorrow": "yes"}', "'tomorrow' must be true or false"),
    ("/api/v1/profiles/minh/block-all", b"{}", "say how long"),
    ("/api/v1/profiles/minh/allow", b'{"for": "1h"}', "'domains' must be a list of names"),
    ("/api/v1/profiles/minh/allow", b'{"domains": [], "for": "1h"}', "must name 1 to 100"),
    ("/api/v1/profiles/minh/allow", b'{"domains": ["not a name"], "for": "1h"}',
     "'not a name' is not a domain name"),
    ("/api/v1/profiles/minh/allow", b'{"domains": ["a.org"]}', "say how long"),
    ("/api/v1/profiles/minh/budget", b'{"budget": "video", "minutes": 5}', "no budget 'video'"),
    ("/api/v1/profiles/minh/budget", b'{"budget": "games", "minutes": "5"}', "whole number"),
    ("/api/v1/profiles/minh/budget", b'{"budget": "games", "minutes": 0}', "more than 0"),
    ("/api/v1/profiles/minh/resume", b'{"for": "1h"}', "unknown key 'for'; keys here: none"),
    ("/api/v1/requests/1", b"{}", "'approve' must be true or false"),
    ("/api/v1/requests/x", b'{"approve": true}', "'x' is not an id"),
]  # fmt: skip


async def test_bad_bodies_are_400_with_one_line_that_says_why(tmp_path: Path) -> None:
    async with webapp(tmp_path) as app:
        async with api(app, app.token("me")) as me:
            for path, raw, message in BAD_BODIES:
                status, said = await me.call("POST", path, raw=raw)
                assert status == 400, (path, raw, said)
                assert message in said["error"] and "\n" not in said["error"], (raw, said)
            status, said = await me.call("POST", "/api/v1/profiles/minh/pause",
                                         raw=b" " * 70_000)  # fmt: skip
            assert status == 413 and "error" in said
            nothing = {"error": "no endpoint GET /api/v1/nothing; docs/web.md lists them"}
            assert await me.call("GET", "/api/v1/nothing") == (404, nothing)
            assert (await me.call("GET", "/api/v1/changes?limit=0"))[0] == 400
            assert (await me.get("/api/v1/grants"))["grants"] == []  # nothing was made
        assert recent(app.database) == []


async def test_a_childs_request_approved_through_the_api_unblocks_the_name(
    tmp_path: Path,
) -> None:
    async with webapp(tmp_path) as app:
        asks = RequestStore(app.database)
        wanted = asks.add("127.0.0.1", "minh", "casino.example", "homework on probability")
        other = asks.add("127.0.0.1", "minh", "youtube.com", "")
        assert await blocked(app, "casino.example")
        async with api(app, app.token("me")) as me:
            found = await me.get("/api/v1/requests")
            assert [r["id"] for r in found["requests"]] == [wanted.id, other.id]
            done = await me.post(f"/api/v1/requests/{wanted.id}", {"approve": True, "for": "1h"})
            decided = done["request"]
            assert (decided["state"], decided["decided_at"]) == ("approved", TUESDAY)
            assert done["request"]["grant_id"] == done["grants"][0]["id"]
            assert done["grants"][0]["reason"] == f"request #{wanted.id}: homework on probability"
            assert not await blocked(app, "casino.example")
            no = await me.post(f"/api/v1/requests/{other.id}", {"approve": False})
            assert (no["request"]["state"], no["request"]["decided_by"]) == ("declined", "me")
            assert (await me.get("/api/v1/requests"))["requests"] == []
            every = await me.get("/api/v1/requests?state=all")
            assert len(every["requests"]) == 2
            status, said = await me.call("POST", f"/api/v1/requests/{other.id}",
                                         {"approve": True, "for": "1h"})  # fmt: skip
            assert status == 400 and "already declined by me" in said["error"]
            status, said = await me.call("POST", "/api/v1/requests/99", {"approve": False})
            assert (status, said) == (404, {"error": "no request #99"})
        assert await blocked(app, "youtube.com")
        assert [(c.action, c.via) for c in recent(app.database)] == [
            ("decline", "api"),  # newest first: a decline is a change too
            ("allow", "api"),
        ]


async def test_a_session_uses_the_api_with_its_csrf_token(tmp_path: Path) -> None:
    async with webapp(tmp_path) as app:
        async with app.client("me") as me:
            found = await (await me.http.get("/api/v1/profiles")).json()
            assert len(found["profiles"]) == 3  # minh, lan and the default household
            forged = await me.http.post("/api/v1/profiles/minh/pause", json={"for": "5m"})
            assert forged.status == 403
            made = await me.http.post("/api/v1/profiles/minh/pause", json={"for": "5m"},
                                      headers={"X-CSRF-Token": me.csrf})  # fmt: skip
            assert made.status == 200, await made.text()
            metrics = await me.http.get("/metrics")
            assert metrics.status == 401  # a token, not a session
        assert [(c.who, c.via) for c in recent(app.database)] == [("me", "web")]


async def test_metrics_need_a_token_on_the_web_listener_and_none_on_their_own(
    tmp_path: Path,
) -> None:
    database = tmp_path / "filterdns.db"
    async with FakeUpstream(ANSWERS) as upstream:
        extra = f'log: {{database: {database}}}\nweb: {{listen: "127.0.0.1:0"}}\n'
        text = config_for(upstream.address, server='metrics: "127.0.0.1:0"', extra=extra)
        async with running_proxy(text) as proxy:
            await proxy.query("example.com")
            web, metrics = proxy.app.web_address, proxy.app.metrics_address
            assert web is not None and metrics is not None
            AccountStore(database).set_password("me", "correct horse battery")
            token = AccountStore(database).new_token("me")
            async with aiohttp.ClientSession() as http:
                url = f"http://{web.host}:{web.port}/metrics"
                none = await http.get(url, allow_redirects=False)
                assert none.status == 401 and none.headers["WWW-Authenticate"] == "Bearer"
                bad = await http.get(url, headers={"Authorization": "Bearer fdns_nope"})
                assert bad.status == 401
                good = await http.get(url, headers={"Authorization": f"Bearer {token}"})
                assert good.status == 200
                assert good.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                assert "filterdns_queries_total{" in await good.text()
                free = await http.get(f"http://{metrics.host}:{metrics.port}/metrics")
                assert free.status == 200
                assert "filterdns_queries_total{" in await free.text()


async def test_a_report_is_read_once_a_minute_and_shared_meanwhile(tmp_path: Path) -> None:
    clock = FakeClock(TUESDAY)
    async with webapp(tmp_path, clock) as app:
        proxy = app.proxy.app
        proxy.querylog.flush_interval = 0.01
        await app.proxy.query("casino.example")
        await proxy.querylog.wait_written(1)
        clock.now += 60
        minute = FakeClock(0.0)
        first = await asyncio.gather(*(
            profile_report(proxy.config, "minh", "today", clock, minute) for _ in range(3)
        ))  # fmt: skip
        assert [data["blocked_total"] for data, _ in first] == [1, 1, 1]
        assert first[0][0] is first[1][0]  # one read, shared by the three
        assert json.loads(first[0][1]) == first[0][0]
        await app.proxy.query("casino.example")
        await proxy.querylog.wait_written(2)
        clock.now += 60
        minute.now = REPORT_TTL - 1
        same, _ = await profile_report(proxy.config, "minh", "today", clock, minute)
        assert same["blocked_total"] == 1  # still the report of a minute ago
        minute.now = REPORT_TTL
        fresh, _ = await profile_report(proxy.config, "minh", "today", clock, minute)
        assert fresh["blocked_total"] == 2
