"""Help and reporting: the hotline and the official reporting channel for everyone, and a report
of a blocked site prepared for a signed-in parent, never sent by itself."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

from tests.integration.test_web_asks import CHILD, blocked_lookups, child_and_parent


async def test_help_gives_the_hotline_and_the_reporting_channel_to_anyone(tmp_path: Path) -> None:
    async with child_and_parent(tmp_path) as app, app.client() as child:
        reply = await child.http.get("/help")
        page = await reply.text()
    assert reply.status == 200
    assert "Tổng đài quốc gia bảo vệ trẻ em" in page
    assert 'href="tel:111"' in page
    assert 'href="https://vn-cop.vn/bao-cao-xam-pham"' in page
    assert 'href="mailto:bvte@vncert.vn"' in page


async def test_a_parent_prepares_a_report_of_a_blocked_site(tmp_path: Path) -> None:
    async with child_and_parent(tmp_path) as app:
        await blocked_lookups(app, ("casino1.example", CHILD))
        path = f"/report-harm?profile=minh&name=casino1.example&ts={int(time.time())}"
        async with app.client() as anonymous:
            refused = await anonymous.http.get(path, allow_redirects=False)
            assert refused.status == 303 and refused.headers["Location"].startswith("/login")
        async with app.client("mẹ") as mum:
            page = await (await mum.http.get(path)).text()
            bad = await mum.http.get("/report-harm?profile=minh&name=not%20a%20name")
            bad_time = await mum.http.get("/report-harm?profile=minh&name=a.example&ts=soon")
            assert (bad.status, bad_time.status) == (400, 400)
            assert "không phải là một tên miền" in await bad.text()
    found = re.search(r"<textarea[^>]*>(.*?)</textarea>", page, re.S)
    assert found is not None
    text = html.unescape(found.group(1))
    assert "Trang web: casino1.example" in text
    assert "Danh mục: cờ bạc, cá cược" in text
    assert re.search(r"Thời gian: \d\d/\d\d/\d{4} \d\d:\d\d \(Asia/Ho_Chi_Minh\)", text)
    assert "Những gì đã thấy:" in text
    assert 'href="https://vn-cop.vn/bao-cao-xam-pham"' in page
    assert "Không có gì được gửi đi từ đây" in page
