"""The web app on a PostgreSQL log two instances write: the home page, a child's page and the
API's report of every site or of one (`?instance=`), which sites the figures come from, and the
alerts saying their site; on SQLite none of it shows."""

from __future__ import annotations

import contextlib
import html
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from filterdns.querylog import pgschema
from filterdns.web.accounts import AccountStore
from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import running_proxy
from tests.integration.test_pg_log import blocked, proxy_config, written
from tests.integration.webapp import PASSWORD, running_web

WEB = 'web: {listen: "127.0.0.1:0", language: en}\n'


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream({("example.com", "A"): ["93.184.216.34"]}) as fake:
        yield fake


def alert(url: str, instance: str, message: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        # Now, not a minute ago: the pages show today's alerts, and in the first minute of a
        # day a minute ago is yesterday.
        conn.execute(pgschema.INSERT_ALERT, (instance, time.time(), "gambling", "minh",
                                             "gambling", 3, 600.0, message, 1, None))  # fmt: skip


def text_of(page: str) -> str:
    """The page's words: tags out, spaces folded."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


async def get(http: aiohttp.ClientSession, path: str, status: int = 200) -> str:
    async with http.get(path) as reply:
        body = await reply.text()
        assert reply.status == status, body
        return body


@contextlib.asynccontextmanager
async def two_sites(upstream: FakeUpstream, url: str) -> AsyncIterator[tuple[str, str]]:
    """Instances a (with the web app) and b on one database, minh's blocks and alerts logged by
    both: 1 at a, 2 at b; the web app's address and a parent's token."""
    async with (
        running_proxy(proxy_config(upstream, url, "a") + WEB) as a,
        running_proxy(proxy_config(upstream, url, "b")) as b,
    ):
        await blocked(a, "casino.example")
        await blocked(b, "casino.example")
        await blocked(b, "poker.example")
        await written(a.app.querylog, 1)
        await written(b.app.querylog, 2)
        alert(url, "a", "Minh tried gambling sites 3 times")
        alert(url, "b", "Minh tried poker 3 times")
        store = AccountStore(a.app.config.log)
        store.set_password("me", PASSWORD)
        where = a.app.web_address
        assert where is not None
        yield f"http://{where.host}:{where.port}", store.new_token("me", "test")


async def test_pages_show_every_site_or_the_one_asked_for(
    upstream: FakeUpstream, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the SQLite file of accounts and grants: here
    async with two_sites(upstream, url) as (base, _):
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(base, cookie_jar=jar) as http:
            reply = await http.post("/login", data={"name": "me", "password": PASSWORD},
                                    allow_redirects=False)  # fmt: skip
            assert reply.status == 303
            pages = {q: text_of(await get(http, f"/p/minh{q}"))
                     for q in ("", "?instance=b", "?instance=nowhere")}  # fmt: skip
            raw = await get(http, "/p/minh?span=week&instance=b")
            homes = {q: text_of(await get(http, f"/{q}")) for q in ("", "?instance=a")}
            bad = text_of(await get(http, "/p/minh?instance=no%20such", 400))
            assert "is not an instance name" in text_of(await get(http, "/?instance=-/-", 400))

    every = pages[""]
    assert "Figures from: all sites (2) · a · b" in every
    assert "Blocked lookups: 3" in every
    assert "at a Minh tried gambling sites 3 times" in every
    assert "at b Minh tried poker 3 times" in every
    assert 'href="/p/minh?span=today&amp;instance=b"' in raw  # the other span, same site
    assert 'href="/p/minh?span=week"' in raw  # every site, same span
    one = pages["?instance=b"]
    assert "Figures from: all sites (2) · a · b" in one
    assert "Blocked lookups: 2" in one
    assert "Minh tried poker 3 times" in one and "gambling sites" not in one
    assert "at b" not in one  # one site: the alerts need not say it
    nowhere = pages["?instance=nowhere"]
    assert "Blocked lookups: 0" in nowhere and "· nowhere" in nowhere
    assert '"no such" is not an instance name' in bad
    assert "Figures from: all sites (2) · a · b" in homes[""]
    assert "Blocked today: 3" in homes[""]
    assert "Blocked today: 1" in homes["?instance=a"]


async def test_the_api_report_of_every_site_or_one(
    upstream: FakeUpstream, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with two_sites(upstream, url) as (base, token):
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(base, headers=headers) as api:
            reports: dict[str, Any] = {}
            for q in ("", "&instance=b", "&instance=nowhere", "&instance=no%20such"):
                async with api.get(f"/api/v1/profiles/minh/report?period=today{q}") as reply:
                    reports[q] = (reply.status, await reply.json())

    status, data = reports[""]
    assert (status, data["instance"], data["instances"], data["blocked_total"]) == (
        200, None, ["a", "b"], 3
    )  # fmt: skip
    status, data = reports["&instance=b"]
    assert (status, data["instance"], data["blocked_total"], len(data["alerts"])) == (
        200,
        "b",
        2,
        1,
    )
    assert reports["&instance=nowhere"][1]["blocked_total"] == 0
    status, data = reports["&instance=no%20such"]
    assert status == 400 and data["error"].startswith('instance: "no such" is not an instance')


async def test_on_sqlite_the_pages_show_no_sites_and_the_api_says_why(tmp_path: Path) -> None:
    minh = "profiles:\n  minh: {age_band: adult}\ndefault_profile: minh\n"
    async with running_web(tmp_path, minh + WEB) as app:
        app.account("me")
        token = app.token("me")
        async with app.client("me") as me:
            page = text_of(await get(me.http, "/p/minh?instance=b"))
            home = text_of(await get(me.http, "/?instance=b"))
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(app.url, headers=headers) as api:
            async with api.get("/api/v1/profiles/minh/report?instance=b") as reply:
                status, data = reply.status, await reply.json()
            async with api.get("/api/v1/profiles/minh/report") as reply:
                plain = await reply.json()
    assert "Figures from" not in page and "Figures from" not in home
    assert "Blocked lookups: 0" in page
    assert status == 400
    assert data["error"].startswith("an instance filter needs the query log on PostgreSQL")
    assert "instances" not in plain
