"""Every route of the web app, found in its router: none answers without a session or a token
but the few a child's device, a sign-in or the help page need, and none changes anything without
the session's CSRF token."""

from __future__ import annotations

import re
from pathlib import Path

from filterdns.web.server import application
from tests.integration.webapp import running_web

# (method, route) open without a login, and why.
PUBLIC = {
    ("GET", "/login"), ("POST", "/login"),  # signing in
    ("GET", "/lang/{lang}"),  # the language switch (a cookie)
    ("GET", "/static/{name}"),  # the stylesheet
    ("GET", "/help"),  # the hotline and where to report harm
    ("GET", "/me"),  # a child's own rules, by the device's address
    ("GET", "/ask"), ("POST", "/ask"),  # a child's requests, by the device's address
}  # fmt: skip


def _routes(database: Path) -> set[tuple[str, str]]:
    class Nothing:
        pass

    app = application(Nothing(), database)  # type: ignore[arg-type]
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter") or ""
        methods = ("GET", "POST", "DELETE") if route.method == "*" else (route.method,)
        found.update((method, str(path)) for method in methods if method != "HEAD")
    return found


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "household", path)


async def test_no_route_answers_without_a_session_or_token_but_the_public_ones(
    tmp_path: Path,
) -> None:
    routes = _routes(tmp_path / "db")
    assert routes >= PUBLIC
    async with running_web(tmp_path) as app, app.client() as anonymous:
        for method, path in sorted(routes - PUBLIC):
            url = _concrete(path)
            reply = await anonymous.http.request(method, url, allow_redirects=False)
            if method == "GET" and not path.startswith("/api/") and path != "/metrics":
                assert reply.status == 303, (method, path, reply.status)
                assert reply.headers["Location"].startswith("/login?next=")
            else:
                assert reply.status == 401, (method, path, reply.status)


async def test_no_change_is_made_without_the_csrf_token(tmp_path: Path) -> None:
    routes = _routes(tmp_path / "db")
    async with running_web(tmp_path) as app:
        app.account("me")
        async with app.client("me") as me:
            for method, path in sorted(routes - PUBLIC):
                if method == "GET":
                    continue
                url = _concrete(path)
                reply = await me.http.request(method, url, data={"x": "1"}, allow_redirects=False)
                assert reply.status == 403, (method, path, reply.status)
