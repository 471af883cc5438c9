"""The block page (`blocking.response: custom`): a blocked site's plain-HTTP visit lands on the
box, which says why in plain words and links to the request page; the Host header is shown
escaped whatever it holds."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import aiohttp

from tests.integration.harness import addresses
from tests.integration.test_web_asks import ANSWERS, settings
from tests.integration.webapp import running_web

BLOCK_PAGE = """
blocking: {response: custom, custom_ips: [127.0.0.1]}
web: {listen: "127.0.0.1:0", block_page: "127.0.0.1:0"}
"""


async def test_a_blocked_site_shows_why_and_how_to_ask(tmp_path: Path) -> None:
    async with running_web(tmp_path, dedent(settings(tmp_path)) + BLOCK_PAGE, ANSWERS) as app:
        reply = await app.proxy.query("casino1.example")
        assert addresses(reply) == ["127.0.0.1"]  # the box itself
        where = app.proxy.app.block_page_address
        assert where is not None
        url = f"http://{where.host}:{where.port}/some/page?x=1"
        web_app = app.proxy.app.web_address  # the port the web app really has (0 picked one)
        async with aiohttp.ClientSession() as browser:
            seen = await browser.get(url, headers={"Host": "casino1.example"})
            page = await seen.text()
            hostile = await browser.get(url, headers={"Host": 'x"><script>alert(1)</script>'})
            hostile_page = await hostile.text()
    assert seen.status == 403
    assert "Trang này bị chặn" in page and "casino1.example" in page
    assert "Lý do: đây là trang về cờ bạc, cá cược." in page
    assert web_app is not None and web_app.port != 0
    assert f'href="http://127.0.0.1:{web_app.port}/ask?name=casino1.example"' in page  # arrived on
    assert "default-src 'none'" in seen.headers["Content-Security-Policy"]
    assert hostile.status == 403
    assert "<script>" not in hostile_page
    assert "&lt;script&gt;" in hostile_page
    assert "/ask?name=" not in hostile_page  # no domain: nothing to ask for
