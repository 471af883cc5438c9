"""Signing in and out, and the language switch."""

from __future__ import annotations

import asyncio
import math

from aiohttp import web

from filterdns.querylog.translations import languages
from filterdns.web.auth import (
    SESSION_COOKIE,
    THROTTLE,
    accounts,
    client_address,
    form,
    public,
    safe_next,
    set_session_cookie,
)
from filterdns.web.i18n import COOKIE
from filterdns.web.keys import ACCOUNT, BACKEND
from filterdns.web.render import render, texts

routes = web.RouteTableDef()
YEAR = 365 * 86400


@routes.get("/login")
@public
async def login_page(request: web.Request) -> web.StreamResponse:
    if request.get(ACCOUNT) is not None:
        raise web.HTTPSeeOther(safe_next(request.query.get("next")))
    return render(request, "login.html", next=safe_next(request.query.get("next")), problem="")


@routes.post("/login")
@public
async def login(request: web.Request) -> web.StreamResponse:
    data = await form(request)
    name, password = data.get("name", "").strip(), data.get("password", "")
    target = safe_next(data.get("next"))
    throttle = request.app[THROTTLE]
    address = client_address(request)
    wait = throttle.wait(address, name)
    if wait > 0:
        minutes = math.ceil(wait / 60)
        problem = texts(request)["login_wait"].format(minutes=minutes)
        return render(request, "login.html", status=429, next=target, problem=problem)
    account = await asyncio.to_thread(accounts(request).check_password, name, password)
    if account is None:
        throttle.failed(address, name)
        problem = texts(request)["login_wrong"]
        return render(request, "login.html", status=401, next=target, problem=problem)
    throttle.succeeded(address)
    lifetime = request.app[BACKEND].config.web.session_lifetime
    session, _csrf = await asyncio.to_thread(
        accounts(request).new_session, account.name, lifetime=lifetime
    )
    response = web.HTTPSeeOther(target)
    set_session_cookie(request, response, session)
    raise response


@routes.post("/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        await asyncio.to_thread(accounts(request).end_session, session)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


@routes.get("/lang/{lang}")
@public
async def switch_language(request: web.Request) -> web.StreamResponse:
    """Show the app in another language from now on (a cookie; nothing else changes)."""
    response = web.HTTPSeeOther(safe_next(request.query.get("next")))
    lang = request.match_info["lang"]
    if lang in languages():
        response.set_cookie(COOKIE, lang, max_age=YEAR, samesite="Lax", path="/")
    raise response
