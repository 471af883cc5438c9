"""What every request can reach through its application (`request.app[BACKEND]`), typed."""

from __future__ import annotations

from aiohttp import web

from filterdns.web.accounts import Account, AccountStore
from filterdns.web.asks import RequestStore
from filterdns.web.backend import Backend

BACKEND = web.AppKey("backend", Backend)
ACCOUNTS = web.AppKey("accounts", AccountStore)
ASKS = web.AppKey("asks", RequestStore)
# Set on each request by the authentication middleware (auth.authenticate) and the renderer.
ACCOUNT = web.RequestKey("account", Account)
CSRF = web.RequestKey("csrf", str)
VIA = web.RequestKey("via", str)  # "web" (a session) or "api" (a token): the changes log's door
LANG = web.RequestKey("lang", str)
