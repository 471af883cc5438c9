"""The web app's door: nothing without a session or a token, CSRF on every change, throttled
sign-ins, sessions that end; and a real Chromium signing in on a 360 px phone."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.integration.browser import chromium, no_horizontal_scroll, phone
from tests.integration.webapp import PASSWORD, running_web

PROFILES = """
profiles:
  minh: {age_band: 9-12, display_name: "Minh (lớp 5)"}
  lan: {age_band: 13-15}
"""


async def test_pages_need_a_session_and_changes_need_its_csrf_token(tmp_path: Path) -> None:
    async with running_web(tmp_path, PROFILES) as app:
        app.account("me")
        async with app.client() as anonymous:
            home = await anonymous.http.get("/", allow_redirects=False)
            assert (home.status, home.headers["Location"]) == (303, "/login?next=/")
            posted = await anonymous.http.post("/logout", allow_redirects=False)
            assert posted.status == 401
        async with app.client("me") as me:
            page = await (await me.http.get("/")).text()
            assert "Minh (lớp 5)" in page and "lan" in page
            forged = await me.http.post("/logout", data={"csrf": "x" * 43}, allow_redirects=False)
            assert forged.status == 403
            other_site = await me.http.post("/logout", data={"csrf": me.csrf},
                                            headers={"Origin": "http://evil.example"},
                                            allow_redirects=False)  # fmt: skip
            assert other_site.status == 403
            out = await me.post("/logout")
            assert out.status == 303
            again = await me.http.get("/", allow_redirects=False)
            assert again.status == 303  # the session ended with the sign-out


async def test_wrong_passwords_are_throttled_and_no_password_is_kept_in_clear(
    tmp_path: Path,
) -> None:
    async with running_web(tmp_path) as app:
        app.account("me")
        async with app.client() as anonymous:
            for _ in range(5):
                wrong = await anonymous.http.post("/login", data={"name": "me", "password": "x"})
                assert wrong.status == 401
            right = await anonymous.http.post("/login", data={"name": "me", "password": PASSWORD})
            assert right.status == 429  # throttled whatever the password
            assert "15" in await right.text()
    with sqlite3.connect(app.database) as db:
        (stored,) = db.execute("SELECT password FROM web_accounts").fetchone()
    assert stored.startswith("scrypt$") and PASSWORD not in stored
    assert PASSWORD.encode() not in app.database.read_bytes()


async def test_security_headers_on_every_page(tmp_path: Path) -> None:
    async with running_web(tmp_path) as app, app.client() as anonymous:
        reply = await anonymous.http.get("/login")
        assert reply.status == 200
        assert "script-src 'self'" in reply.headers["Content-Security-Policy"]
        assert reply.headers["X-Frame-Options"] == "DENY"
        assert reply.headers["Cache-Control"] == "no-store"


async def test_a_parent_signs_in_on_a_phone_in_vietnamese(tmp_path: Path) -> None:
    async with running_web(tmp_path, PROFILES) as app, chromium() as browser:
        app.account("mẹ")
        async with phone(browser) as page:
            await page.goto(app.url + "/")
            assert await page.inner_text("h1") == "Đăng nhập"
            await page.fill("input[name=name]", "mẹ")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_selector("text=Minh (lớp 5)")
            assert await page.inner_text("h1") == "Các con và các lớp"
            assert await no_horizontal_scroll(page)
            cookie = next(c for c in await page.context.cookies() if c["name"] == "fdns_session")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
            await page.click("a[href^='/lang/en']")
            await page.wait_for_selector("text=Children and classes")


async def test_guessed_api_tokens_are_throttled_like_passwords(tmp_path: Path) -> None:
    async with running_web(tmp_path) as app, app.client() as anonymous:
        app.account("me")
        token = app.token("me")
        for _ in range(5):
            guess = await anonymous.http.get(
                "/api/v1/profiles", headers={"Authorization": "Bearer fdns_guess"}
            )
            assert guess.status == 401
        right = await anonymous.http.get(
            "/api/v1/profiles", headers={"Authorization": f"Bearer {token}"}
        )
        assert right.status == 429  # from this address, even the right one waits
