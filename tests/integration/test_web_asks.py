"""A child's request to open a blocked site, end to end: the lookup blocked over real DNS, the
child's device asking without a login, the adults alerted (recorded and delivered by a command),
a parent approving on a 360 px phone in a real Chromium, and the child's next lookup answered.
Declines, the limits on asking, the child's own page and the teachers' boundary too."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shlex
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import dns.rcode

from filterdns import actions
from filterdns.web.accounts import Role
from tests.integration.browser import chromium, no_horizontal_scroll, phone
from tests.integration.harness import addresses
from tests.integration.webapp import PASSWORD, WebApp, running_web

CASINOS = [f"casino{i}.example" for i in range(1, 7)]
CHILD = "127.0.0.1"  # the test's address: minh's phone
ANSWERS = {(name, "A"): ["203.0.113.66"] for name in CASINOS}


def settings(tmp_path: Path, alerts: str = "") -> str:
    gambling = tmp_path / "gambling.txt"
    gambling.write_text("\n".join(CASINOS) + "\n")
    video = tmp_path / "video.txt"
    video.write_text("videos.example\n")
    return f"""\
        categories: {{gambling: ["{gambling}"], video: ["{video}"]}}
        profiles:
          minh:
            age_band: 16-17
            display_name: "Minh (lớp 5)"
            timezone: Asia/Ho_Chi_Minh
            budgets: [{{name: video, categories: [video], per_day: 45m}}]
          lan: {{age_band: 16-17}}
        clients:
          - {{name: minh-phone, ip: 127.0.0.1, profile: minh}}
          - {{name: lan-tablet, ip: 127.0.0.2, profile: lan}}
        {alerts}
    """


@asynccontextmanager
async def child_and_parent(tmp_path: Path, alerts: str = "") -> AsyncIterator[WebApp]:
    async with running_web(tmp_path, settings(tmp_path, alerts), ANSWERS) as app:
        app.account("mẹ")
        yield app


async def blocked_lookups(app: WebApp, *asked: tuple[str, str]) -> None:
    """Lookups (name, source address) the policy blocks, written to the query log before going
    on."""
    before = app.proxy.app.querylog.stats.written
    for name, source in asked:
        reply = await app.proxy.query(name, source=source)
        assert reply.rcode() == dns.rcode.NXDOMAIN
    await asyncio.wait_for(app.proxy.app.querylog.wait_written(before + len(asked)), 10)


def alerts_of(database: Path) -> list[tuple[str, str, str, int]]:
    with contextlib.closing(sqlite3.connect(database)) as db:
        rows = db.execute("SELECT rule, categories, message, delivered FROM alerts").fetchall()
    return [(str(a), str(b), str(c), int(d)) for a, b, c, d in rows]


async def test_a_child_asks_a_parent_approves_on_a_phone_and_the_site_opens(
    tmp_path: Path,
) -> None:
    out = tmp_path / "notice.json"
    code = f"import sys; open({str(out)!r}, 'w').write(sys.stdin.read())"
    command = shlex.join([sys.executable, "-c", code])
    rule = f"alerts: [{{name: tell-mum, categories: [request], command: {json.dumps(command)}}}]"
    async with child_and_parent(tmp_path, rule) as app, chromium() as browser:
        await blocked_lookups(app, ("casino1.example", CHILD), ("casino2.example", "127.0.0.2"))
        async with app.client() as child:
            page = await (await child.http.get("/ask")).text()
            assert "casino1.example" in page and "cờ bạc, cá cược" in page
            assert "casino2.example" not in page  # never another device's names
            sent = await child.http.post("/ask", data={"name": "casino1.example",
                                                       "reason": "bài tập <b>lịch sử</b>"},
                                         allow_redirects=False)  # fmt: skip
            assert (sent.status, sent.headers["Location"]) == (303, "/ask?sent=1")
            querylog = app.proxy.app.querylog
            await asyncio.wait_for(querylog.wait_until(lambda _: bool(alerts_of(app.database))), 10)
            [(rule_name, kind, message, delivered)] = alerts_of(app.database)
            assert (rule_name, kind, delivered) == ("tell-mum", "request", 1)
            assert "minh-phone (Minh (lớp 5)) asks to open casino1.example" in message
            notice = json.loads(out.read_text())
            assert notice["kind"] == "request" and notice["profile"] == "minh"
            waiting = await (await child.http.get("/ask")).text()
            assert "đang chờ trả lời" in waiting

            async with phone(browser) as mum:
                await mum.goto(app.url + "/requests")
                await mum.fill("input[name=name]", "mẹ")
                await mum.fill("input[name=password]", PASSWORD)
                await mum.click("button[type=submit]")
                await mum.wait_for_selector("text=casino1.example")
                assert await mum.inner_text("h1") == "Yêu cầu của các con"
                assert "bài tập <b>lịch sử</b>" in await mum.inner_text(".request .said")
                assert await no_horizontal_scroll(mum)
                await mum.click("#request-1 button[value='1h']")
                await mum.wait_for_selector("text=Không có yêu cầu nào đang chờ.")
                assert "đã cho phép" in await mum.inner_text("main")

            reply = await app.proxy.query("casino1.example")
            assert addresses(reply) == ["203.0.113.66"]  # the very next lookup
            answered = await (await child.http.get("/ask")).text()
            assert re.search(r"casino1\.example</span> <span[^>]*>được mở đến \d\d:\d\d", answered)
            assert 'value="casino1.example"' not in answered  # open now: nothing to ask for
    [grant] = actions.active(app.proxy.app.config)
    assert (grant.domain, grant.created_by) == ("casino1.example", "mẹ")


async def test_declined_limited_and_refused_requests(tmp_path: Path) -> None:
    async with child_and_parent(tmp_path) as app:
        await blocked_lookups(app, *[(name, CHILD) for name in CASINOS])
        async with app.client() as child, app.client("mẹ") as mum:

            async def ask(name: str) -> tuple[int, str]:
                reply = await child.http.post("/ask", data={"name": name, "reason": ""},
                                              allow_redirects=False)  # fmt: skip
                return reply.status, await reply.text()

            status, text = await ask("example.com")
            assert status == 400 and "không bị chặn trên thiết bị này" in text
            assert (await ask("casino1.example"))[0] == 303
            status, text = await ask("casino1.example")
            assert status == 429 and "Bạn đã xin mở casino1.example rồi" in text
            assert (await mum.post("/requests/1", decision="decline")).status == 303
            assert "không được mở" in await (await child.http.get("/ask")).text()
            for name in CASINOS[1:5]:
                assert (await ask(name))[0] == 303
            status, text = await ask("casino6.example")  # the sixth within the hour
            assert status == 429
            assert re.search(r"gửi lại lúc \d\d:\d\d \(sau 60 phút nữa\)", text), text
        reply = await app.proxy.query("casino1.example")
        assert reply.rcode() == dns.rcode.NXDOMAIN  # declined: still blocked
        assert [a[1] for a in alerts_of(app.database)] == ["request"] * 5  # kept, no rule


async def test_a_teacher_sees_and_decides_only_their_own_classes(tmp_path: Path) -> None:
    async with child_and_parent(tmp_path) as app:
        app.account("cô-hà", Role.TEACHER, ["lan"])
        await blocked_lookups(app, ("casino1.example", CHILD))
        async with app.client() as child, app.client("cô-hà") as teacher:
            sent = await child.http.post("/ask", data={"name": "casino1.example"},
                                         allow_redirects=False)  # fmt: skip
            assert sent.status == 303
            assert "casino1.example" not in await (await teacher.http.get("/requests")).text()
            assert (await teacher.post("/requests/1", decision="1h")).status == 403
            report = await teacher.http.get("/report-harm?profile=minh&name=casino1.example")
            assert report.status == 403
        assert actions.active(app.proxy.app.config) == []


async def test_the_childs_own_page_says_the_rules_in_vietnamese(tmp_path: Path) -> None:
    async with child_and_parent(tmp_path) as app:
        config = app.proxy.app.config
        ends = actions.ends_for(config, ["minh"], duration="1h", required=True)
        actions.allow_domains(config, ["minh"], ["youtube.com"], ends, by="mẹ", via="cli")
        async with app.client() as child:
            page = await (await child.http.get("/me")).text()
        assert "Quy tắc của tôi" in page and "Quy tắc cho Minh (lớp 5)" in page
        assert "Được phép" in page  # the state, and the rule in words
        assert "Hiện không có quy tắc đặc biệt nào" in page
        assert "video: còn 45 phút" in page  # the budget left today
        assert "cờ bạc, cá cược" in page and "nội dung người lớn" in page
        assert re.search(r"youtube\.com được mở đến \d\d:\d\d", page)
        assert 'href="/ask"' in page and 'href="/help"' in page


async def test_a_device_no_rule_names_asks_under_the_default_profile(tmp_path: Path) -> None:
    async with child_and_parent(tmp_path) as app:
        await blocked_lookups(app, ("casino1.example", "127.0.0.3"), ("casino2.example", CHILD))
        connector = aiohttp.TCPConnector(local_addr=("127.0.0.3", 0))
        async with aiohttp.ClientSession(app.url, connector=connector) as guest:
            page = await (await guest.get("/ask")).text()
            assert "casino1.example" in page and "casino2.example" not in page
            sent = await guest.post("/ask", data={"name": "casino1.example"},
                                    allow_redirects=False)  # fmt: skip
            assert sent.status == 303
        async with app.client("mẹ") as mum:
            waiting = await (await mum.http.get("/requests")).text()
        assert "casino1.example" in waiting and "household" in waiting
        querylog = app.proxy.app.querylog
        await asyncio.wait_for(querylog.wait_until(lambda _: bool(alerts_of(app.database))), 10)
        assert alerts_of(app.database)[0][2].startswith("request #1: 127.0.0.3 (household) asks")
