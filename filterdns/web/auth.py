"""Who is asking: a session (the web pages) or a token (the JSON API); what they may do.

* Every route needs a signed-in account unless its handler is marked `@public` (the login page,
  the stylesheet, help, and the pages a child's device opens without a login, which know the
  device by its address). Without one: a page asked for by a browser is sent to the login page
  (303), anything else gets 401.
* A session is a random id in an HttpOnly, SameSite=Lax cookie (Secure over HTTPS); the
  database keeps only its SHA-256 (`accounts.AccountStore`). Each session has its own CSRF
  token, which every form posts back (`csrf` field) or a script sends as `X-CSRF-Token`; any
  other method than GET/HEAD without it is refused (403), and so is a request whose Origin is
  another site.
* The API takes `Authorization: Bearer <token>` instead (no cookie, so no CSRF).
* Logins are throttled per address and per account name (`Throttle`): past the allowance, 429
  with the minutes to wait, whatever the password. Bad API tokens count the same way.
* A teacher sees only the profiles their account names: any other gets 403 (`profile_of`).
"""

from __future__ import annotations

import asyncio
import hmac
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import quote, urlsplit

from aiohttp import web

from filterdns.config import ProfileConfig
from filterdns.web.accounts import Account, AccountStore
from filterdns.web.keys import ACCOUNT, ACCOUNTS, BACKEND, CSRF, VIA
from filterdns.web.render import render, texts

SESSION_COOKIE = "fdns_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FAILURES_PER_ADDRESS = 5  # failed logins from one address...
FAILURES_PER_NAME = 10  # ...or for one account name...
THROTTLE_WINDOW = 15 * 60.0  # ...within this many seconds: wait until the oldest is this old
TOKEN_NAME = "\x00token"  # bad API tokens count under this name (no account can be called it)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)


def public(handler: H) -> H:
    """Mark a route as open without a login."""
    handler.public = True  # type: ignore[attr-defined]
    return handler


class Throttle:
    """Failed logins per address and per name within a window; in memory, so a restart forgets."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def wait(self, address: str, name: str) -> float:
        """Seconds before another try is heard (0: now)."""
        now = self.clock()
        waits = [
            self._wait(("addr", address), FAILURES_PER_ADDRESS, now),
            self._wait(("name", name.casefold()), FAILURES_PER_NAME, now),
        ]
        return max(waits)

    def failed(self, address: str, name: str) -> None:
        now = self.clock()
        for key in (("addr", address), ("name", name.casefold())):
            self._failures.setdefault(key, deque()).append(now)
        if len(self._failures) > 10_000:  # a flood of names: forget the oldest windows
            for key in list(self._failures)[:5000]:
                del self._failures[key]

    def succeeded(self, address: str) -> None:
        self._failures.pop(("addr", address), None)

    def _wait(self, key: tuple[str, str], allowed: int, now: float) -> float:
        times = self._failures.get(key)
        if not times:
            return 0.0
        while times and now - times[0] >= THROTTLE_WINDOW:
            times.popleft()
        if len(times) < allowed:
            return 0.0
        return THROTTLE_WINDOW - (now - times[0])


THROTTLE = web.AppKey("throttle", Throttle)


def accounts(request: web.Request) -> AccountStore:
    return request.app[ACCOUNTS]


def client_address(request: web.Request) -> str:
    """The address of the device asking (no proxy in front of the box)."""
    return request.remote or ""


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Attach the account (and the session's CSRF token) to the request, or refuse it."""
    token = _bearer(request)
    if token is not None:
        throttle, address = request.app[THROTTLE], client_address(request)
        as_name = TOKEN_NAME + address  # per address: bad tokens from one never lock out others
        wait = throttle.wait(address, as_name)
        if wait > 0:  # guessing tokens: as slow as guessing passwords
            return _refuse(request, 429, f"too many bad tokens; try again in {math.ceil(wait)} s")
        account = await asyncio.to_thread(accounts(request).check_token, token)
        if account is None:
            throttle.failed(address, as_name)
            return _refuse(request, 401, "invalid or revoked token")
        request[ACCOUNT], request[VIA] = account, "api"
        return await handler(request)
    session = request.cookies.get(SESSION_COOKIE)
    found = None
    if session:
        found = await asyncio.to_thread(accounts(request).session, session)
    if found is not None:
        request[ACCOUNT], request[CSRF] = found
        request[VIA] = "web"
        if request.method not in SAFE_METHODS and not await _csrf_ok(request, found[1]):
            return _refuse(request, 403, "the form is out of date: reload the page and try again")
    elif not getattr(handler, "public", False):
        if request.method in SAFE_METHODS and _wants_html(request):
            raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='')}")
        return _refuse(request, 401, "sign in first")
    elif request.method not in SAFE_METHODS and not _same_origin(request):
        return _refuse(request, 403, "this form was sent from another site")
    return await handler(request)


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()


async def _csrf_ok(request: web.Request, expected: str) -> bool:
    if not _same_origin(request):
        return False
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        form = await request.post()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    return sent is not None and hmac.compare_digest(sent.encode(), expected.encode())


def _same_origin(request: web.Request) -> bool:
    """No Origin (an old browser, a script) or one naming this host."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.host


def _wants_html(request: web.Request) -> bool:
    return not request.path.startswith("/api/")


def _refuse(request: web.Request, status: int, message: str) -> web.Response:
    if request.path.startswith("/api/") or not _wants_html(request):
        return web.json_response({"error": message}, status=status)
    return render(request, "error.html", status=status, message=message)


def account_of(request: web.Request) -> Account:
    """The account signed in (routes that are not public always have one)."""
    return request[ACCOUNT]


def profile_of(request: web.Request, name: str) -> ProfileConfig:
    """The profile `name` if the account may see it: 404 when none, 403 when not theirs."""
    config = request.app[BACKEND].config
    for profile in config.profiles:
        if profile.name == name:
            if not account_of(request).may_see(name):
                raise web.HTTPForbidden(text=texts(request)["forbidden"])
            return profile
    raise web.HTTPNotFound(text=texts(request)["no_such_profile"])


def visible_profiles(request: web.Request) -> list[ProfileConfig]:
    """The profiles the account may see, in configuration order."""
    account = account_of(request)
    return [p for p in request.app[BACKEND].config.profiles if account.may_see(p.name)]


async def form(request: web.Request) -> dict[str, str]:
    """The posted form's text fields."""
    data = await request.post()
    return {key: value for key, value in data.items() if isinstance(value, str)}


def set_session_cookie(request: web.Request, response: web.StreamResponse, session: str) -> None:
    lifetime = request.app[BACKEND].config.web.session_lifetime
    response.set_cookie(
        SESSION_COOKIE, session, max_age=math.ceil(lifetime), httponly=True, samesite="Lax",
        secure=request.secure, path="/",
    )  # fmt: skip


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
