"""The block page: what a blocked site shows with `blocking.response: custom` (`web.block_page`).

Every path of every method answers it (403): a plain page saying the site (the Host header,
escaped like every value) is blocked on this network, why in plain words (the policy's decision
for the device's profile: the category, or the schedule or pause in force), and, when the web app
listens, a button to ask for it: `http(s)://<the address this connection arrived on>:<web port>/
ask?name=<site>`, so it works from whichever address of the box the device reached. Only plain
http:// sites can show it; why HTTPS sites cannot is in docs/web.md, "The block page".

The page stands alone (not the web app's layout: its links would land on the block page
again); its stylesheet is the web app's, when there is one.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from filterdns.config.log import LogConfig
from filterdns.policy.values import BLOCKING_ACTIONS, PAUSE_RULES, Decision
from filterdns.web.auth import client_address
from filterdns.web.backend import Backend
from filterdns.web.keys import BACKEND
from filterdns.web.lookups import category_word, domain
from filterdns.web.render import render, texts

STEP_ALL = 5  # the decision step of pauses and `block: all` rules (policy/steps.py)
HOST_SHOWN = 253  # characters of the Host header shown at most
CSP = "default-src 'none'; style-src {style}; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"  # noqa: E501


WEB_PORT = web.AppKey("web_port", int)  # the port the web app really listens on (0 picks one)


def application(
    backend: Backend, database: LogConfig | Path, web_port: int | None = None
) -> web.Application:
    """The app of `web.block_page`: every path answers the block page."""
    app = web.Application()
    app[BACKEND] = backend
    if web_port is not None:
        app[WEB_PORT] = web_port
    app.router.add_route("*", "/{tail:.*}", blocked)
    return app


async def blocked(request: web.Request) -> web.StreamResponse:
    backend = request.app[BACKEND]
    host = site_of(request.host)
    name = domain(host)
    web_url = web_app_url(request)
    why, ask = "", ""
    if name is not None:
        profile = backend.directory.match(client_address(request)).profile
        decision = backend.policy.decide(profile, name, backend.wall_clock())
        why = reason(texts(request), decision)
        if web_url:
            ask = f"{web_url}/ask?name={quote(name, safe='')}"
    response = render(
        request, "blocked.html", status=403, site=host[:HOST_SHOWN], why=why, ask=ask,
        web_url=web_url,
    )  # fmt: skip
    response.headers["Content-Security-Policy"] = CSP.format(style=web_url or "'none'")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def site_of(host: str) -> str:
    """The site of a Host header: without its port ("[::1]:80" -> "::1")."""
    host = host.strip()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    name, colon, port = host.rpartition(":")
    return name if colon and port.isdigit() else host


def web_app_url(request: web.Request) -> str:
    """The web app at the address this connection arrived on ("" when it does not listen)."""
    config = request.app[BACKEND].config.web
    if config.listen is None:
        return ""
    arrived = ""
    if request.transport is not None:
        sockname = request.transport.get_extra_info("sockname")
        if isinstance(sockname, tuple) and sockname:
            arrived = str(sockname[0])
    if not arrived:
        arrived = config.listen.host
    try:
        if ipaddress.ip_address(arrived).version == 6:
            arrived = f"[{arrived}]"
    except ValueError:
        pass
    scheme = "https" if config.tls_cert is not None else "http"
    return f"{scheme}://{arrived}:{request.app.get(WEB_PORT, config.listen.port)}"


def reason(t: Any, decision: Decision) -> str:
    """Why the site is blocked, in plain words: the pause or the schedule blocking everything
    now, else its category, else the device's own list."""
    rule = decision.rule or ""
    if decision.action not in BLOCKING_ACTIONS:
        return str(t["asks_block_allowed_now"])
    if decision.step == STEP_ALL and rule.startswith(PAUSE_RULES):
        return str(t["asks_block_paused"])
    if decision.step == STEP_ALL and rule.startswith("schedule "):
        label = rule.removeprefix("schedule ").split(" (", 1)[0]
        return str(t["asks_block_schedule"].format(rule=label))
    if decision.category:
        return str(t["asks_block_category"].format(category=category_word(t, decision.category)))
    return str(t["asks_block_list"])
