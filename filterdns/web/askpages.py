"""Children's requests to unblock a name: the child's side (/ask) and the adults' (/requests).

* `/ask` is open without a login: the device is known by its address (web/lookups.py). It lists
  the names blocked for this device in the last 24 hours (its own lookups only), and a child
  picks one and writes a short reason. The request is stored (web/asks.py: bounded per device)
  and the adults are alerted at once (`Backend.notify`: the alerts table and every alert rule of
  category `request`). A name must have been blocked for this device (in the log, or by its
  profile's policy now, for a log that is off or not yet written): anything else is refused
  (400). The page also shows where the device's requests stand (waiting, allowed until HH:MM,
  declined).
* `/requests` (signed in) lists the open requests of the profiles the account may see, each with
  Approve (30 min, 1 hour, until midnight) and Decline. Approving allows the name through the
  actions layer (a domain grant, recorded with who approved it) and tells the running proxy at
  once, so the child's next lookup of the name is answered.
"""

from __future__ import annotations

import asyncio
import functools
import math
from datetime import datetime
from typing import Any

from aiohttp import web

from filterdns import actions
from filterdns.actions.common import zone
from filterdns.errors import FilterDnsError
from filterdns.policy.budgets import next_midnight
from filterdns.web.asks import AccessRequest, RequestError, RequestLimited, State
from filterdns.web.auth import account_of, form, profile_of, public, visible_profiles
from filterdns.web.keys import ASKS, BACKEND, VIA
from filterdns.web.lookups import (
    DAY,
    Device,
    blocked_for,
    blocked_now,
    category_word,
    device_of,
    domain,
    was_blocked,
)
from filterdns.web.render import render, texts

routes = web.RouteTableDef()

DURATIONS = {"30m": 1800.0, "1h": 3600.0}  # the Approve buttons; "today": until midnight
SHOWN_REQUESTS = 10  # a device's latest requests on its page
DECIDED_SHOWN = 20  # requests answered lately, under the open ones


@routes.get("/ask")
@public
async def ask_page(request: web.Request) -> web.StreamResponse:
    device = await device_of(request)
    chosen = domain(request.query.get("name", "")) or ""
    sent = request.query.get("sent") == "1"
    return await _ask(request, device, chosen=chosen, sent=sent)


@routes.post("/ask")
@public
async def ask_post(request: web.Request) -> web.StreamResponse:
    backend = request.app[BACKEND]
    t = texts(request)
    device = await device_of(request)
    fields = await form(request)
    name = domain(fields.get("name", ""))
    reason = fields.get("reason", "")
    if name is None:
        return await _ask(request, device, error=t["asks_pick_name"], status=400)
    now = backend.wall_clock()
    if not await _blocked_here(request, device, name, now):
        message = t["asks_not_blocked"].format(name=name)
        return await _ask(request, device, chosen=name, error=message, status=400)
    try:
        made = await asyncio.to_thread(request.app[ASKS].add, device.key, device.profile, name,
                                       reason, now=now)  # fmt: skip
    except RequestLimited as exc:
        message = await _limited(request, device, exc, name, now)
        return await _ask(request, device, chosen=name, error=message, status=429)
    except RequestError as exc:
        return await _ask(request, device, chosen=name, error=str(exc), status=400)
    who = backend.config.display_name(device.profile)
    said = f": {made.reason}" if made.reason else ""
    message = f"request #{made.id}: {device.shown} ({who}) asks to open {name}{said}"
    backend.notify("request", device.profile, message)
    raise web.HTTPSeeOther("/ask?sent=1")


async def _blocked_here(request: web.Request, device: Device, name: str, now: float) -> bool:
    config = request.app[BACKEND].config
    if await asyncio.to_thread(was_blocked, config, device.key, name, now - DAY):
        return True
    return blocked_now(request, device.profile, name, now) is not None


async def _limited(
    request: web.Request, device: Device, exc: RequestLimited, name: str, now: float
) -> str:
    """Why the device cannot ask now, and when it can, in words a child reads."""
    t = texts(request)
    if exc.retry_at is not None:
        minutes = max(1, math.ceil((exc.retry_at - now) / 60))
        at = _clock(exc.retry_at, request, device.profile)
        return str(t["asks_wait"].format(time=at, minutes=minutes))
    waiting = await asyncio.to_thread(request.app[ASKS].open, [device.profile])
    if any(r.client == device.key and r.name == name for r in waiting):
        return str(t["asks_already"].format(name=name))
    return str(t["asks_busy"])


def _clock(ts: float, request: web.Request, profile: str) -> str:
    """HH:MM of `ts` in the profile's time zone."""
    return f"{datetime.fromtimestamp(ts, zone(request.app[BACKEND].config, profile)):%H:%M}"


async def _ask(
    request: web.Request,
    device: Device,
    *,
    chosen: str = "",
    sent: bool = False,
    error: str = "",
    status: int = 200,
) -> web.Response:
    backend = request.app[BACKEND]
    config, now = backend.config, backend.wall_clock()
    t = texts(request)
    blocked = await asyncio.to_thread(blocked_for, config, device.key, now - DAY)
    mine = await asyncio.to_thread(request.app[ASKS].recent, device.key, None, SHOWN_REQUESTS)
    ends = await _grant_ends(request, {r.profile for r in mine if r.grant_id is not None}, now)
    # What is allowed now (approved, a schedule ended) needs no asking.
    profile = device.profile
    names = [b.name for b in blocked if blocked_now(request, profile, b.name, now) is not None]
    if chosen and chosen not in names:
        names.insert(0, chosen)  # from the block page: the lookup may not be written yet
    words = {b.name: category_word(t, b.category) for b in blocked}
    return render(
        request, "ask.html", status=status, names=names, words=words, chosen=chosen, sent=sent,
        error=error, requests=[_shown(t, r, ends, request) for r in mine],
        who=config.display_name(device.profile),
    )  # fmt: skip


async def _grant_ends(request: web.Request, profiles: set[str], now: float) -> dict[int, float]:
    """The end of each grant in force of these profiles, by id."""
    if not profiles:
        return {}
    config = request.app[BACKEND].config
    try:
        grants = await asyncio.to_thread(actions.active, config, now=now)
    except FilterDnsError:
        return {}
    return {g.id: g.expires_at for g in grants if g.profile in profiles}


def _shown(
    t: Any, asked: AccessRequest, ends: dict[int, float], request: web.Request
) -> dict[str, str]:
    """A request as its device's page shows it: the name and where it stands, in words."""
    if asked.state is State.OPEN:
        state, text = "open", t["asks_state_open"]
    elif asked.state is State.DECLINED:
        state, text = "declined", t["asks_state_declined"]
    elif asked.grant_id in ends:
        until = _clock(ends[asked.grant_id], request, asked.profile)
        state, text = "approved", t["asks_state_approved"].format(time=until)
    else:
        state, text = "ended", t["asks_state_ended"]
    return {"name": asked.name, "state": state, "text": text}


# -- the adults' side ----------------------------------------------------------------------------


@routes.get("/requests")
async def requests_page(request: web.Request) -> web.StreamResponse:
    return await _requests(request)


async def _requests(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    backend = request.app[BACKEND]
    config = backend.config
    profiles = [p.name for p in visible_profiles(request)]
    store = request.app[ASKS]
    waiting = await asyncio.to_thread(store.open, profiles)
    recent = await asyncio.to_thread(store.recent, None, profiles, DECIDED_SHOWN + len(waiting))
    decided = [r for r in recent if r.state is not State.OPEN][:DECIDED_SHOWN]
    zones = {r.profile: zone(config, r.profile) for r in [*waiting, *decided]}
    return render(
        request, "requests.html", status=status, waiting=waiting, decided=decided, zones=zones,
        shown={p: config.display_name(p) for p in profiles}, error=error,
    )  # fmt: skip


@routes.post("/requests/{id:[0-9]+}")
async def decide(request: web.Request) -> web.StreamResponse:
    backend = request.app[BACKEND]
    store = request.app[ASKS]
    t = texts(request)
    asked = await asyncio.to_thread(store.get, int(request.match_info["id"]))
    if asked is None:
        raise web.HTTPNotFound(text=t["asks_no_request"])
    profile_of(request, asked.profile)  # 404 or 403 when not the account's
    choice = (await form(request)).get("decision", "")
    if choice not in (*DURATIONS, "today", "decline"):
        return await _requests(request, error=t["asks_bad_decision"], status=400)
    by, via, now = account_of(request).name, request[VIA], backend.wall_clock()
    if asked.state is not State.OPEN:
        return await _requests(request, error=t["asks_already_decided"].format(name=asked.name),
                               status=400)  # fmt: skip
    ends = None if choice == "decline" else {asked.profile: _end(request, asked, choice, now)}
    try:
        _done, made = await asyncio.to_thread(
            functools.partial(actions.decide_request, backend.config, store, asked.id,
                              approve=ends is not None, ends=ends, by=by, via=via, now=now)
        )  # fmt: skip
    except FilterDnsError as exc:  # ActionError: one line for the adult
        return await _requests(request, error=str(exc), status=400)
    if made:
        await backend.grants_changed()
    raise web.HTTPSeeOther("/requests")


def _end(request: web.Request, asked: AccessRequest, choice: str, now: float) -> float:
    """When approving `asked` with `choice` ends: midnight in its profile's zone for "today"."""
    config = request.app[BACKEND].config
    if choice == "today":
        return next_midnight(now, zone(config, asked.profile))
    return now + DURATIONS[choice]
