"""The JSON API's input and errors: a request's JSON body read and checked key by key, and
every error answered as `{"error": "..."}` (web/api.py's handlers use these).

A body is one JSON object (an empty body counts as `{}`) of the keys the endpoint takes: an
unknown key, a value of the wrong type, or something that is no JSON object is a 400 whose
message names the key and what it should be.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from filterdns import actions
from filterdns.errors import FilterDnsError
from filterdns.web.asks import RequestError
from filterdns.web.keys import BACKEND

MAX_DOMAINS = 100  # names in one allow call
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 403: web.HTTPForbidden,
    404: web.HTTPNotFound, 429: web.HTTPTooManyRequests,
    500: web.HTTPInternalServerError,
}  # fmt: skip


def fail(status: int, message: str) -> web.HTTPException:
    """An HTTP error (one of ERRORS) whose body is `{"error": message}`."""
    return ERRORS[status](text=json.dumps({"error": message}), content_type="application/json")


def json_errors(handler: Handler) -> Handler:
    """Errors as `{"error": ...}`: bad input 400, aiohttp's own (403, 404, 405, 413) kept with
    their message, a database that cannot be read 500."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except (actions.ActionError, RequestError) as exc:
            raise fail(404 if str(exc).startswith("no request #") else 400, str(exc)) from None
        except FilterDnsError as exc:
            raise fail(500, str(exc)) from None
        except web.HTTPException as exc:
            if exc.status >= 400 and exc.content_type != "application/json":
                said = exc.text or ""
                message = said if said and not said[:3].isdigit() else exc.reason
                exc.text = json.dumps({"error": message})
                exc.content_type = "application/json"
            raise

    return wrapped


async def body(request: web.Request, allowed: frozenset[str]) -> dict[str, Any]:
    """The JSON object sent ({} when nothing was); 400 for anything else or an unknown key."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        exc.text = json.dumps({"error": "the body is too large (64 KiB at most)"})
        exc.content_type = "application/json"
        raise
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise fail(400, 'the body is not JSON: send an object like {"for": "30m"}') from None
    if not isinstance(data, dict):
        raise fail(400, "the body must be a JSON object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        keys = ", ".join(sorted(allowed)) or "none"
        raise fail(400, f"unknown key {unknown[0]!r}; keys here: {keys}")
    return data


def text(data: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise fail(400, f"{key!r} is required")
        return None
    if not isinstance(value, str):
        raise fail(400, f"{key!r} must be a string")
    return value


def flag(data: Mapping[str, Any], key: str, *, required: bool = False) -> bool:
    value = data.get(key)
    if value is None and not required:
        return False
    if not isinstance(value, bool):
        raise fail(400, f"{key!r} must be true or false")
    return value


def count(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise fail(400, f"{key!r} must be a whole number")
    return value


def names(data: Mapping[str, Any], key: str) -> list[str]:
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail(400, f'{key!r} must be a list of names, like ["youtube.com"]')
    if not value or len(value) > MAX_DOMAINS:
        raise fail(400, f"{key!r} must name 1 to {MAX_DOMAINS} domains")
    return value


def duration(data: Mapping[str, Any]) -> str | float | None:
    value = data.get("for")
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise fail(400, "'for' must be a duration like \"45m\" or a number of seconds")
        return float(value)
    raise fail(400, "'for' must be a duration like \"45m\" or a number of seconds")


def ends(
    request: web.Request, profile: str, data: Mapping[str, Any], *, required: bool
) -> dict[str, float]:
    """When the change ends: `for`, `until` (HH:MM) or `tomorrow` of the body."""
    backend = request.app[BACKEND]
    return actions.ends_for(
        backend.config, [profile], duration=duration(data), until=text(data, "until"),
        tomorrow=flag(data, "tomorrow"), required=required, now=backend.wall_clock(),
    )  # fmt: skip
