"""Help and reporting: where a child or an adult in Vietnam turns (/help), and a report of harmful
content prepared from a blocked lookup (/report-harm).

* `/help` is open to everyone, a child's device included: the national child protection hotline
  111 (free, day and night) and the official channel for reporting harmful content or abuse
  online (VNCERT's form and mailbox), as links a phone can follow (`tel:`, the form, `mailto:`).
* `/report-harm?profile=..&name=..&ts=..` (signed in; a teacher only for their profiles) fills a
  text in with the site, the time of the lookup in the profile's time zone and its category,
  with room for what was seen, ready to copy into that channel. Nothing is sent from here: the
  adult decides what to report and does it themselves.
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from filterdns.actions.common import zone
from filterdns.web.auth import profile_of, public
from filterdns.web.keys import BACKEND
from filterdns.web.lookups import blocked_now, category_word, domain, logged_block
from filterdns.web.render import render, texts

routes = web.RouteTableDef()

HOTLINE = "111"  # Tổng đài quốc gia bảo vệ trẻ em: free, 24/7
REPORT_URL = "https://vn-cop.vn/bao-cao-xam-pham"  # VNCERT's report form for online harm
REPORT_MAIL = "bvte@vncert.vn"  # its mailbox


@routes.get("/help")
@public
async def help_page(request: web.Request) -> web.StreamResponse:
    return render(request, "help.html", hotline=HOTLINE, report_url=REPORT_URL,
                  report_mail=REPORT_MAIL)  # fmt: skip


@routes.get("/report-harm")
async def report_harm(request: web.Request) -> web.StreamResponse:
    backend = request.app[BACKEND]
    config, now = backend.config, backend.wall_clock()
    t = texts(request)
    profile = profile_of(request, request.query.get("profile", "")).name
    name = domain(request.query.get("name", ""))
    if name is None:
        raise web.HTTPBadRequest(text=t["help_bad_name"])
    ts = _time(request.query.get("ts"), now)
    if ts is None:
        raise web.HTTPBadRequest(text=t["help_bad_time"])
    at, category = await asyncio.to_thread(logged_block, config, profile, name, ts)
    if category is None:
        category = blocked_now(request, profile, name, now)
    tz = zone(config, profile)
    text = report_text(t, name, when(at, tz), category_word(t, category))
    return render(request, "report_harm.html", site=name, text=text, report_url=REPORT_URL,
                  report_mail=REPORT_MAIL, hotline=HOTLINE)  # fmt: skip


def _time(text: str | None, now: float) -> float | None:
    """The `ts` parameter: a unix time (now when left out); None when it is not one."""
    if not text:
        return now
    try:
        ts = float(text)
    except ValueError:
        return None
    return ts if math.isfinite(ts) and 0 <= ts <= now + 86400 else None


def when(ts: float, tz: ZoneInfo) -> str:
    """ "30/11/2026 17:05 (Asia/Ho_Chi_Minh)": the day first, as Vietnam writes dates."""
    return f"{datetime.fromtimestamp(ts, tz):%d/%m/%Y %H:%M} ({tz.key})"


def report_text(t: Any, site: str, at: str, category: str) -> str:
    """The report ready to copy: the site, when, its category, and room for what was seen."""
    lines = [
        t["help_report_intro"],
        "",
        f"{t['help_report_site']}: {site}",
        f"{t['help_report_time']}: {at}",
        f"{t['help_report_category']}: {category}",
        f"{t['help_report_seen']}: ",
        "",
    ]
    return "\n".join(lines)
