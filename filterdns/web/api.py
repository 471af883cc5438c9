"""The JSON API under /api/v1/, and /metrics with a token: thin handlers over the actions.

Every endpoint calls the code the pages and the command line call (`actions.*`, the report's
`read_report`, the `RequestStore`, the `changes` table) in a worker thread, and holds no logic of
its own beyond reading the JSON body. A token (`Authorization: Bearer fdns_...`, from `filterdns
web token NAME`) or a session (with its CSRF token in `X-CSRF-Token`) is required; a teacher
reaches only the profiles their account names (403). Bodies are JSON objects whose keys are
checked: an unknown key or a value of the wrong type is a 400 with a one-line message. Every
answer is JSON; an error is `{"error": "..."}`. Each change is recorded with the account and the
door ("api" for a token) and applied to the next DNS query at once (`grants_changed`).

docs/web.md lists the endpoints with examples.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from aiohttp import web

from filterdns import actions
from filterdns.config.server import parse_instance
from filterdns.ops.metrics import CONTENT_TYPE
from filterdns.policy.values import Grant
from filterdns.querylog import changes
from filterdns.querylog.report.collect import NOT_SHARED
from filterdns.web.accounts import Role
from filterdns.web.apibody import body, count, ends, fail, flag, json_errors, names, text
from filterdns.web.asks import State
from filterdns.web.auth import account_of, profile_of, public, visible_profiles
from filterdns.web.keys import ASKS, BACKEND, VIA
from filterdns.web.reportcache import PERIODS, profile_report

routes = web.RouteTableDef()

V1 = "/api/v1"
WHEN_KEYS = frozenset({"for", "until", "tomorrow", "reason"})  # how long a change lasts
MAX_CHANGES = 500  # rows of one /changes answer


# --- helpers shared by the handlers -----------------------------------------------------------


def who(request: web.Request) -> tuple[str, str]:
    """`by` and `via` of a change made by this request: the account, and "api" for a token."""
    return account_of(request).name, request[VIA]


def visible_names(request: web.Request) -> list[str] | None:
    """The profiles the account may see (None: a parent, every profile)."""
    if account_of(request).role is Role.PARENT:
        return None
    return [p.name for p in visible_profiles(request)]


def grants_json(request: web.Request, grants: list[Grant], now: float) -> list[dict[str, object]]:
    config = request.app[BACKEND].config
    return [{**g.to_json(), "text": actions.grants.describe(config, g, now)} for g in grants]


async def changed(request: web.Request, made: dict[str, object]) -> web.Response:
    """Apply the change to the next DNS query now, and answer with what was made."""
    await request.app[BACKEND].grants_changed()
    return web.json_response(made)


# --- reports ----------------------------------------------------------------------------------


@routes.get(f"{V1}/profiles")
@json_errors
async def profiles(request: web.Request) -> web.StreamResponse:
    backend = request.app[BACKEND]
    found = await asyncio.to_thread(actions.status, backend.config, backend.policy,
                                    now=backend.wall_clock())  # fmt: skip
    account = account_of(request)
    shown = [s.to_json() for s in found if account.may_see(s.profile)]
    return web.json_response({"account": account.to_json(), "profiles": shown})


@routes.get(f"{V1}/profiles/{{name}}/report")
@json_errors
async def report(request: web.Request) -> web.StreamResponse:
    """The report of `filterdns report --json` for today or the week, at most a minute old; on
    a PostgreSQL log of every instance or of `?instance=`, with the `instances` seen."""
    name = profile_of(request, request.match_info["name"]).name
    period = request.query.get("period", "today")
    if period not in PERIODS:
        raise fail(400, f"period {period!r} is not one of: {', '.join(PERIODS)}")
    backend = request.app[BACKEND]
    instance = request.query.get("instance")
    if instance is not None:
        if backend.config.log.url is None:
            raise fail(400, NOT_SHARED)
        try:
            instance = parse_instance(instance)
        except ValueError as exc:
            raise fail(400, f"instance: {exc}") from None
    _, text = await profile_report(backend.config, name, period, backend.wall_clock,
                                   instance=instance)  # fmt: skip
    return web.Response(text=text, content_type="application/json")


@routes.get(f"{V1}/grants")
@json_errors
async def grants(request: web.Request) -> web.StreamResponse:
    backend = request.app[BACKEND]
    now = backend.wall_clock()
    found = await asyncio.to_thread(actions.active, backend.config, now=now)
    account = account_of(request)
    mine = [g for g in found if account.may_see(g.profile)]
    return web.json_response({"grants": grants_json(request, mine, now)})


@routes.get(f"{V1}/changes")
@json_errors
async def recent_changes(request: web.Request) -> web.StreamResponse:
    try:
        limit = int(request.query.get("limit", "50"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_CHANGES:
        raise fail(400, f"limit must be a whole number from 1 to {MAX_CHANGES}")
    database = request.app[BACKEND].config.log
    found = await asyncio.to_thread(changes.recent, database, limit=limit,
                                    profiles=visible_names(request))  # fmt: skip
    return web.json_response({"changes": [c.to_json() for c in found]})


@routes.get(f"{V1}/requests")
@json_errors
async def requests(request: web.Request) -> web.StreamResponse:
    state = request.query.get("state", "open")
    if state not in ("open", "all"):
        raise fail(400, f"state {state!r} is not one of: open, all")
    store, mine = request.app[ASKS], visible_names(request)
    if state == "open":
        found = await asyncio.to_thread(store.open, mine)
    else:
        found = await asyncio.to_thread(store.recent, None, mine, MAX_CHANGES)
    return web.json_response({"requests": [r.to_json() for r in found]})


# --- changes ----------------------------------------------------------------------------------


@routes.post(f"{V1}/profiles/{{name}}/pause")
@json_errors
async def pause(request: web.Request) -> web.StreamResponse:
    return await _blocking(request, actions.pause, required=False)


@routes.post(f"{V1}/profiles/{{name}}/block-all")
@json_errors
async def block_all(request: web.Request) -> web.StreamResponse:
    return await _blocking(request, actions.block_all, required=True)


async def _blocking(request: web.Request, action: Any, *, required: bool) -> web.StreamResponse:
    name = profile_of(request, request.match_info["name"]).name
    data = await body(request, WHEN_KEYS)
    backend = request.app[BACKEND]
    until = ends(request, name, data, required=required)
    by, via = who(request)
    now = backend.wall_clock()
    made = await asyncio.to_thread(action, backend.config, [name], until,
                                   reason=text(data, "reason") or "", now=now,
                                   by=by, via=via)  # fmt: skip
    return await changed(request, {"grants": grants_json(request, made, now)})


@routes.post(f"{V1}/profiles/{{name}}/resume")
@json_errors
async def resume(request: web.Request) -> web.StreamResponse:
    name = profile_of(request, request.match_info["name"]).name
    await body(request, frozenset())
    backend = request.app[BACKEND]
    by, via = who(request)
    now = backend.wall_clock()
    ended = await asyncio.to_thread(actions.resume, backend.config, [name], now=now,
                                    by=by, via=via)  # fmt: skip
    return await changed(request, {"ended": grants_json(request, ended, now)})


@routes.post(f"{V1}/profiles/{{name}}/allow")
@json_errors
async def allow(request: web.Request) -> web.StreamResponse:
    name = profile_of(request, request.match_info["name"]).name
    data = await body(request, WHEN_KEYS | {"domains"})
    domains = names(data, "domains")
    backend = request.app[BACKEND]
    until = ends(request, name, data, required=True)
    by, via = who(request)
    now = backend.wall_clock()
    made = await asyncio.to_thread(actions.allow_domains, backend.config, [name], domains, until,
                                   reason=text(data, "reason") or "", now=now,
                                   by=by, via=via)  # fmt: skip
    return await changed(request, {"grants": grants_json(request, made, now)})


@routes.post(f"{V1}/profiles/{{name}}/budget")
@json_errors
async def budget(request: web.Request) -> web.StreamResponse:
    name = profile_of(request, request.match_info["name"]).name
    data = await body(request, frozenset({"budget", "minutes", "reason"}))
    which, minutes = text(data, "budget", required=True) or "", count(data, "minutes")
    backend = request.app[BACKEND]
    by, via = who(request)
    now = backend.wall_clock()
    made = await asyncio.to_thread(actions.top_up, backend.config, name, which, minutes,
                                   reason=text(data, "reason") or "", now=now,
                                   by=by, via=via)  # fmt: skip
    return await changed(request, {"grants": grants_json(request, [made], now)})


@routes.delete(f"{V1}/grants/{{id}}")
@json_errors
async def revoke(request: web.Request) -> web.StreamResponse:
    grant_id = _id(request)
    backend = request.app[BACKEND]
    by, via = who(request)
    now = backend.wall_clock()
    found = await asyncio.to_thread(actions.active, backend.config, now=now)
    target = next((g for g in found if g.id == grant_id), None)
    if target is None:
        raise fail(404, f"no grant #{grant_id} in force")
    profile_of(request, target.profile)  # 403 for a teacher's grant of another class
    gone = await asyncio.to_thread(actions.revoke, backend.config, grant_id, now=now,
                                   by=by, via=via)  # fmt: skip
    if gone is None:  # ended meanwhile
        raise fail(404, f"no grant #{grant_id} in force")
    return await changed(request, {"revoked": grants_json(request, [gone], now)})


@routes.post(f"{V1}/requests/{{id}}")
@json_errors
async def decide(request: web.Request) -> web.StreamResponse:
    """Approve a child's request (a grant of its name for the profile) or decline it."""
    request_id = _id(request)
    data = await body(request, WHEN_KEYS | {"approve"})
    approve = flag(data, "approve", required=True)
    store, backend = request.app[ASKS], request.app[BACKEND]
    asked = await asyncio.to_thread(store.get, request_id)
    if asked is None:
        raise fail(404, f"no request #{request_id}")
    profile_of(request, asked.profile)
    if asked.state is not State.OPEN:
        raise fail(400, f"request #{request_id} was already {asked.state} by {asked.decided_by}")
    if not approve and set(data) - {"approve"}:
        raise fail(400, "a declined request takes no 'for', 'until', 'tomorrow' or 'reason'")
    until = ends(request, asked.profile, data, required=True) if approve else None
    by, via = who(request)
    now = backend.wall_clock()
    done, made = await asyncio.to_thread(
        functools.partial(actions.decide_request, backend.config, store, request_id,
                          approve=approve, ends=until, reason=text(data, "reason") or "", by=by,
                          via=via, now=now)
    )  # fmt: skip
    if not made:
        return web.json_response({"request": done.to_json()})
    return await changed(request, {"request": done.to_json(),
                                   "grants": grants_json(request, made, now)})  # fmt: skip


def _id(request: web.Request) -> int:
    value = request.match_info["id"]
    if not value.isdigit() or len(value) > 18:
        raise fail(400, f"{value!r} is not an id (a whole number)")
    return int(value)


@routes.route("*", f"{V1}/{{tail:.*}}")
@json_errors
async def unknown(request: web.Request) -> web.StreamResponse:
    raise fail(404, f"no endpoint {request.method} {request.path}; docs/web.md lists them")


# --- /metrics ---------------------------------------------------------------------------------


@routes.get("/metrics")
@public  # the middleware checks a token when one is sent; a session or nothing is refused here
async def metrics(request: web.Request) -> web.StreamResponse:
    """The Prometheus metrics, for a parent's token (they name every profile)."""
    if request.get(VIA) != "api":
        return web.json_response({"error": "send a token: Authorization: Bearer fdns_..."},
                                 status=401, headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    if account_of(request).role is not Role.PARENT:
        return web.json_response({"error": "the metrics are for parents' tokens"}, status=403)
    response = web.Response(body=request.app[BACKEND].metrics_text().encode())
    response.headers["Content-Type"] = CONTENT_TYPE
    return response
