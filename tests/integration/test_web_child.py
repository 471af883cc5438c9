"""The page of a child or class: real lookups through the proxy shown by category, hour and
name; the one-tap changes taking effect on the next DNS query; a teacher kept to their class;
names from the log shown escaped; and a parent on a 360 px phone in real Chromium."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dns.rcode

from filterdns.actions import active
from filterdns.policy.values import GrantKind
from filterdns.web.accounts import Role
from tests.integration.browser import chromium, no_horizontal_scroll, phone
from tests.integration.webapp import PASSWORD, Signed, WebApp, running_web

NXDOMAIN = dns.rcode.NXDOMAIN
ANSWERS = {
    (name, "A"): ["93.184.216.34"]
    for name in ("example.com", "pornhub.com", "tiktok.com", "khanacademy.org", "bet365.com")
}


def profiles(lesson: tuple[datetime, datetime] | None = None) -> str:
    """Minh's tablet is this machine (127.0.0.1); class 6A has a rule running now, in UTC,
    `lesson` (by default from 30 minutes ago to an hour from now: "this period")."""
    start, end = lesson or period()
    return f"""
    profiles:
      minh: {{age_band: 9-12, display_name: "Minh (lớp 5)", bedtime: []}}
      an:
        age_band: 9-12
        bedtime: []
        budgets: [{{name: video, categories: [video], per_day: 60m}}]
      lop6a:
        age_band: 13-15
        display_name: "Lớp 6A"
        timezone: UTC
        bedtime: []
        schedules:
          - {{name: tiet-3, days: daily, from: "{start:%H:%M}", to: "{end:%H:%M}",
              block: [games]}}
      parents: {{age_band: adult}}
    clients:
      - {{name: minh-tablet, ip: 127.0.0.1, profile: minh}}
    default_profile: parents
    """


def period() -> tuple[datetime, datetime]:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now - timedelta(minutes=30), now + timedelta(minutes=60)


async def page(me: Signed, path: str) -> str:
    reply = await me.http.get(path)
    assert reply.status == 200, await reply.text()
    return await reply.text()


async def lookups(app: WebApp, *names: str) -> list[int]:
    """The rcodes of one query each from Minh's tablet, once the blocked ones are logged."""
    before = app.proxy.app.querylog.stats.written
    codes = [(await app.proxy.query(name)).rcode() for name in names]
    await app.proxy.app.querylog.wait_written(before + codes.count(NXDOMAIN))
    return codes


async def test_the_child_page_shows_todays_blocks_by_category_hour_and_name(
    tmp_path: Path,
) -> None:
    async with running_web(tmp_path, profiles(), answers=ANSWERS) as app:
        app.account("mẹ")
        codes = await lookups(app, "pornhub.com", "pornhub.com", "bet365.com", "example.com",
                              "use-application-dns.net")  # fmt: skip
        assert codes == [NXDOMAIN, NXDOMAIN, NXDOMAIN, 0, NXDOMAIN]
        async with app.client("mẹ") as me:
            html = await page(me, "/p/minh")
            # Vietnamese by default (web.language), the report's numbers
            assert "<h1>Minh (lớp 5)</h1>" in html and "Những gì đã bị chặn" in html
            assert "Số lượt truy cập bị chặn: 4" in html
            assert "<title>Nội dung người lớn: 2</title>" in html
            assert "<title>Cờ bạc: 1</title>" in html
            hours = re.findall(r"<title>(\d\d):00-\d\d:00: (\d+)</title>", html)
            assert sum(int(count) for _hour, count in hours) == 4
            rows = re.findall(r'<td class="name">([^<]+)<br><a class="report" href="([^"]+)">'
                              r'Báo cáo</a></td><td class="cat">([^<]+)</td>'
                              r'<td class="num">(\d+)</td>', html)  # fmt: skip
            assert rows[0][1] == "/report-harm?profile=minh&amp;name=pornhub.com"
            rows = [(name, category, count) for name, _link, category, count in rows]
            assert rows == [("pornhub.com", "Nội dung người lớn", "2"),
                            ("bet365.com", "Cờ bạc", "1"),
                            ("use-application-dns.net", "Vượt bộ lọc", "1")]  # fmt: skip
            # the browser asking whether it may use its own DNS: a bypass attempt
            assert (
                '<span class="name">use-application-dns.net</span> '
                '<span class="muted">DNS riêng của trình duyệt · 1</span>'
            ) in html
            assert ">example.com<" not in html  # allowed lookups are not the report's
            week = await page(me, "/p/minh?span=week")
            assert "Số lượt truy cập bị chặn: 4" in week and "<strong>7 ngày qua</strong>" in week
            home = await page(me, "/")
            card = home[home.index("Minh (lớp 5)") :].split("</li>")[0]
            assert "Được phép" in card and "Bị chặn hôm nay: 4" in card
            english = await me.http.get("/lang/en?next=/p/minh")
            assert "<title>Adult: 2</title>" in await english.text()


async def test_hostile_names_from_the_log_are_shown_escaped(tmp_path: Path) -> None:
    raw = ["<script>alert(1)</script>.example", '"><img src=x onerror=alert(2)>.example',
           "it's-tiếng-việt.example"]  # fmt: skip
    async with running_web(tmp_path, profiles(), answers=ANSWERS) as app:
        app.account("mẹ")
        # through the proxy: the log keeps the name as DNS text (escaped there already)...
        await lookups(app, "<script>alert(1)</script>.pornhub.com")
        # ...but the page must not trust the log: rows written as another program could
        with contextlib.closing(sqlite3.connect(app.database)) as db, db:
            for name in raw:
                db.execute(
                    "INSERT INTO queries (ts, client, profile, name, qtype, kind, category, "
                    "rule, reason, response) VALUES (?, '127.0.0.1', 'minh', ?, 'A', 'blocked', "
                    "'adult', 'list adult', 'blocked', 'nxdomain')",
                    (time.time(), name),
                )
            db.execute(
                "INSERT INTO alerts (ts, rule, profile, categories, count, window, message, "
                "delivered) VALUES (?, 'adult', 'minh', 'adult', 3, 600, ?, 1)",
                (time.time(), "3 lookups of <script>alert(3)</script>"),
            )
        async with app.client("mẹ") as me:
            html = await page(me, "/p/minh")
            bad = await me.post(
                "/p/minh/allow", domain="<script>alert(4)</script>", **{"for": "1h"}
            )
            problem = await bad.text()
    assert bad.status == 400
    for text in (html, problem):
        assert "<script>" not in text and "<img" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.example" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;.example" in html
    assert "it&#39;s-tiếng-việt.example" in html
    assert "3 lookups of &lt;script&gt;alert(3)&lt;/script&gt;" in html
    assert "&lt;script&gt;alert(4)&lt;/script&gt;" in problem


async def test_changes_through_the_forms_apply_to_the_next_lookup(tmp_path: Path) -> None:
    async with running_web(tmp_path, profiles(), answers=ANSWERS) as app:
        app.account("mẹ")
        config = app.proxy.app.config
        async with app.client("mẹ") as me:
            assert await lookups(app, "tiktok.com", "pornhub.com") == [NXDOMAIN, NXDOMAIN]
            # bad input: a clear message on the page, status 400, nothing changed
            for fields, message in [
                ({"domain": "not a site!", "for": "1h"}, "không phải tên trang web"),
                ({"domain": "", "for": "1h"}, "Hãy nhập tên một trang web"),
                ({"domain": "khanacademy.org", "for": "forever"}, "Hãy chọn một trong"),
            ]:
                reply = await me.post("/p/minh/allow", **fields)
                assert reply.status == 400 and message in await reply.text()
            # one tap never allows harmful content: not offered, refused when posted
            for what, message in [
                ("category:no-such", "&#34;no-such&#34; không nằm trong các danh mục"),
                ("category:adult", "&#34;adult&#34; không nằm trong các danh mục"),
                ("", "Hãy chọn một quỹ thời gian hoặc một danh mục."),
            ]:
                reply = await me.post("/p/minh/more", what=what)
                assert reply.status == 400 and message in await reply.text()
            offered = re.findall(r'<option value="category:([^"]+)">', await page(me, "/p/minh"))
            assert "social" in offered and "adult" not in offered and "malware" not in offered
            assert active(config, profile="minh") == []

            # +30 min of a category (Minh has no budgets), a site for an hour
            reply = await me.post("/p/minh/more", what="category:social")
            assert (reply.status, reply.headers["Location"]) == (303, "/p/minh?done=more")
            reply = await me.post("/p/minh/allow", domain="https://PornHub.com/x", **{"for": "1h"})
            assert reply.status == 303
            assert await lookups(app, "tiktok.com", "pornhub.com") == [0, 0]
            html = await page(me, "/p/minh?done=allowed")
            assert "Xong: trang web đã được cho phép." in html
            assert "Cho phép danh mục Mạng xã hội" in html and "Cho phép pornhub.com" in html
            # the recent changes: who, through which door, what
            assert re.search(r"<strong>mẹ</strong> <span class=\"badge\">web</span> "
                             r"cho phép trang web: pornhub.com allowed until", html)  # fmt: skip

            # revoke the site: blocked again at once; another profile's grant is not theirs
            (site,) = [g for g in active(config, profile="minh") if g.domain == "pornhub.com"]
            reply = await me.post("/p/an/revoke", grant=str(site.id))
            assert reply.status == 400 and "không còn hiệu lực" in await reply.text()
            reply = await me.post("/p/minh/revoke", grant=str(site.id))
            assert reply.headers["Location"] == "/p/minh?done=revoked"
            assert await lookups(app, "pornhub.com") == [NXDOMAIN]

            # no rule now for Minh: "this period" is the next 45 minutes
            now = time.time()
            reply = await me.post("/p/minh/period", what="allow", domain="khanacademy.org")
            assert reply.headers["Location"] == "/p/minh?done=period_allow"
            (lesson,) = [g for g in active(config, profile="minh") if g.domain]
            assert now + 45 * 60 - 5 < lesson.expires_at < now + 45 * 60 + 5

            # An has a time budget: +30 min is a top-up of it
            assert "thời gian video" in await page(me, "/p/an")
            reply = await me.post("/p/an/more", what="budget:video")
            assert reply.status == 303
            assert "video: Còn 90 phút hôm nay" in await page(me, "/p/an")
            reply = await me.post("/p/an/more", what="budget:games")
            assert (
                reply.status == 400
                and "quỹ thời gian nào tên &#34;games&#34;" in await reply.text()
            )


async def test_a_teacher_sees_and_changes_only_their_class(tmp_path: Path) -> None:
    lesson = period()
    end = lesson[1]
    async with running_web(tmp_path, profiles(lesson), answers=ANSWERS) as app:
        app.account("cô-lan", Role.TEACHER, ["lop6a"])
        config = app.proxy.app.config
        async with app.client("cô-lan") as teacher:
            home = await page(teacher, "/")
            assert "Lớp 6A" in home and "Minh" not in home and "/p/an" not in home
            assert (await teacher.http.get("/p/minh")).status == 403
            assert (await teacher.http.get("/p/nobody")).status == 404
            for change, fields in [("pause", {"for": "15m"}), ("period", {"what": "block"}),
                                   ("allow", {"domain": "tiktok.com", "for": "1h"})]:  # fmt: skip
                assert (await teacher.post(f"/p/minh/{change}", **fields)).status == 403
            assert active(config) == []

            html = await page(teacher, "/p/lop6a")
            assert "Bị hạn chế" in html  # the lesson's rule blocks games now
            assert html.index('id="period"') < html.index('id="actions"')  # a teacher's first
            # The period ends today ("đến 00:53"), or, begun late in the evening, tomorrow,
            # which the page says with the date ("đến 01/12 00:53").
            ends = (
                f"{end:%H:%M}" if end.date() == datetime.now(UTC).date() else f"{end:%d/%m %H:%M}"
            )
            assert f"Quy tắc đang áp dụng: tiet-3 · đến {ends}" in html
            reply = await teacher.post("/p/lop6a/period", what="allow", domain="khanacademy.org")
            assert reply.headers["Location"] == "/p/lop6a?done=period_allow"
            reply = await teacher.post("/p/lop6a/period", what="block")
            assert reply.headers["Location"] == "/p/lop6a?done=period_block"
            grants = active(config, profile="lop6a")
            assert {(g.kind, g.expires_at) for g in grants} == {
                (GrantKind.ALLOW_DOMAIN, end.timestamp()),
                (GrantKind.BLOCK_ALL, end.timestamp()),
            }
            assert all(g.created_by == "cô-lan" for g in grants)
            html = await page(teacher, "/p/lop6a")
            assert "Chặn tất cả" in html and "cô-lan" in html
            (block,) = [g for g in grants if g.kind is GrantKind.BLOCK_ALL]
            assert (await teacher.post("/p/lop6a/revoke", grant=str(block.id))).status == 303
            assert [g.kind for g in active(config, profile="lop6a")] == [GrantKind.ALLOW_DOMAIN]


async def test_a_parent_pauses_a_child_from_a_phone(tmp_path: Path) -> None:
    async with running_web(tmp_path, profiles(), answers=ANSWERS) as app, chromium() as browser:
        app.account("mẹ")
        assert await lookups(app, "example.com", "pornhub.com", "tiktok.com") == [
            0,
            NXDOMAIN,
            NXDOMAIN,
        ]
        async with phone(browser) as page_:
            await page_.goto(app.url + "/p/minh")
            await page_.fill("input[name=name]", "mẹ")
            await page_.fill("input[name=password]", PASSWORD)
            await page_.click("button[type=submit]")
            await page_.wait_for_selector("h1:text('Minh (lớp 5)')")
            assert await no_horizontal_scroll(page_)
            await page_.screenshot(path=tmp_path / "child.png", full_page=True)

            async with page_.expect_response(lambda r: r.url.endswith("/p/minh/pause")):
                await page_.click("button[name=for][value='15m']")
            tapped = time.monotonic()
            reply = await app.proxy.query("example.com")
            assert reply.rcode() == NXDOMAIN
            assert time.monotonic() - tapped < 1.0
            await page_.wait_for_selector("text=Đã tạm dừng")
            assert await page_.inner_text(".child-head .badge") == "Đang tạm dừng"

            # +30 min of social media, then one site for 30 minutes
            await page_.select_option("select[name=what]", "category:social")
            await page_.click("form[action$='/more'] button")
            await page_.wait_for_selector("text=Xong: đã thêm 30 phút.")
            await page_.fill("form[action$='/allow'] input[name=domain]", "khanacademy.org")
            await page_.click("form[action$='/allow'] button")
            await page_.wait_for_selector("text=Cho phép khanacademy.org")
            # the resume button ends the pause: social media answers again (its 30 minutes)
            await page_.click("form[action$='/resume'] button")
            await page_.wait_for_selector("text=Đã cho dùng lại")
            assert (await app.proxy.query("tiktok.com")).rcode() == 0
            assert await no_horizontal_scroll(page_)
