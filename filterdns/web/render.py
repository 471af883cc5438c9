"""Pages from Jinja2 templates, every value escaped unless a template says otherwise.

`render(request, "home.html", children=...)` gives every template the texts of the request's
language (`t`), the language itself, the account signed in (or None), the session's CSRF token
(every form posts it back) and the path. Templates live in `web/templates/`, the stylesheet in
`web/static/`.
"""

from __future__ import annotations

import functools
import math
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from filterdns.querylog.translations import languages
from filterdns.web import i18n
from filterdns.web.keys import ACCOUNT, BACKEND, CSRF, LANG

HTML = "text/html"


@functools.cache
def environment() -> jinja2.Environment:
    """The one template environment: autoescape on for every template, undefined is an error."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("filterdns.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["hhmm"] = _hhmm
    env.filters["minutes"] = _minutes
    return env


def language(request: web.Request) -> str:
    """The language this request is shown in (cookie, else `web.language`)."""
    cached = request.get(LANG)
    if cached is not None:
        return str(cached)
    backend = request.app[BACKEND]
    lang = i18n.choose(request.cookies.get(i18n.COOKIE), backend.config.web.language)
    request[LANG] = lang
    return lang


def texts(request: web.Request) -> Any:
    """The texts of the request's language."""
    return i18n.texts(language(request))


def render(
    request: web.Request, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    """The page `template` filled with `context` and what every page needs."""
    page = (
        environment()
        .get_template(template)
        .render(
            t=texts(request),
            lang=language(request),
            languages=languages(),
            account=request.get(ACCOUNT),
            csrf=request.get(CSRF, ""),
            path=request.path_qs,
            **context,
        )
    )
    return web.Response(text=page, status=status, content_type=HTML, charset="utf-8")


def _hhmm(ts: float | None, zone: ZoneInfo | None = None) -> str:
    """A time of day, "17:30" (with the date when not today), or "" for none/infinity."""
    if ts is None or not math.isfinite(ts):
        return ""
    at = datetime.fromtimestamp(ts, zone)
    today = datetime.fromtimestamp(time.time(), zone).date()
    return f"{at:%H:%M}" if at.date() == today else f"{at:%d/%m %H:%M}"


def _minutes(seconds: float) -> int:
    return max(0, math.ceil(seconds / 60))
