"""The web app's HTTP server, on the proxy's own event loop (aiohttp).

Up to three listeners, each its own aiohttp application:

* `web.listen`: the app for parents and teachers, the pages a child's device opens, the JSON API
  (`/api/v1/...`) and `/metrics` (with a token);
* `web.block_page`: the plain HTTP page a blocked site lands on with `blocking.response: custom`
  (every path answers it);
* `server.metrics`: `/metrics` alone, without a token, for a Prometheus on the box or the LAN.

Handlers that read or write the database do so in a worker thread (`asyncio.to_thread`), so no
page ever holds up the DNS path, which runs on the same loop.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path

from aiohttp import web

from filterdns.config import ListenAddress
from filterdns.config.log import LogConfig
from filterdns.querylog.shareddb import state_db
from filterdns.web import api, askpages, blockpage, child, helppage, home, login, mine
from filterdns.web.accounts import AccountStore
from filterdns.web.asks import RequestStore
from filterdns.web.auth import THROTTLE, Throttle, authenticate, public
from filterdns.web.backend import Backend
from filterdns.web.keys import ACCOUNTS, ASKS, BACKEND

log = logging.getLogger("filterdns.web")

MAX_BODY = 64 * 1024  # a form or an API call is small
PAGE_ROUTES = (login.routes, home.routes, child.routes, askpages.routes, mine.routes,
               helppage.routes, api.routes)  # fmt: skip
# Scripts and styles from this site only, no frames, forms posted here only.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


@web.middleware
async def headers(request: web.Request, handler: Callable[..., object]) -> web.StreamResponse:
    """Security headers on every answer; no page is cached by a shared cache."""
    try:
        response: web.StreamResponse = await handler(request)  # type: ignore[misc]
    except web.HTTPException as exc:
        response = exc
        _secure(response)
        raise
    _secure(response)
    return response


def _secure(response: web.StreamResponse) -> None:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cache-Control", "no-store")


@public
async def stylesheet(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in _static_names():
        raise web.HTTPNotFound()
    body = resources.files("filterdns.web").joinpath("static", name).read_bytes()
    kind = "text/css" if name.endswith(".css") else "application/javascript"
    response = web.Response(body=body, content_type=kind)
    response.headers["Cache-Control"] = "max-age=3600"
    return response


def _static_names() -> frozenset[str]:
    folder = resources.files("filterdns.web").joinpath("static")
    return frozenset(e.name for e in folder.iterdir() if e.name.endswith((".css", ".js")))


def application(backend: Backend, database: LogConfig | Path) -> web.Application:
    """The app of `web.listen` (accounts and requests in the `log:` section's database)."""
    app = web.Application(middlewares=[headers, authenticate], client_max_size=MAX_BODY)
    app[BACKEND] = backend
    db = state_db(database)
    app[ACCOUNTS] = AccountStore(db)
    # On a database many instances share, a device is its address at this instance.
    here = backend.config.server.instance_name() if db.shared else ""
    app[ASKS] = RequestStore(db, here)
    app[THROTTLE] = Throttle()
    app.router.add_get("/static/{name}", stylesheet)
    for table in PAGE_ROUTES:
        app.add_routes(table)
    return app


def metrics_application(backend: Backend) -> web.Application:
    """The app of `server.metrics`: `/metrics` and nothing else, no token."""

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(text=backend.metrics_text(), content_type="text/plain",
                            charset="utf-8", headers={"Cache-Control": "no-store"})  # fmt: skip

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_get("/metrics", metrics)
    return app


class WebServer:
    """The listeners of the web app, the block page and the metrics, started and stopped
    together."""

    def __init__(self, backend: Backend, database: LogConfig | Path) -> None:
        self.backend = backend
        self.database = database
        self._runners: list[web.AppRunner] = []
        self.addresses: dict[str, ListenAddress] = {}  # "web", "block_page", "metrics"

    async def start(self) -> dict[str, ListenAddress]:
        """Bind what the configuration asks for; the addresses bound (port 0 picks one)."""
        config = self.backend.config
        backend, database = self.backend, self.database
        wanted: list[tuple[str, ListenAddress | None, Callable[[], web.Application], bool]] = [
            ("web", config.web.listen, lambda: application(backend, database), True),
            ("block_page", config.web.block_page,
             lambda: blockpage.application(backend, database, self._port("web")), False),
            ("metrics", config.server.metrics, lambda: metrics_application(backend), False),
        ]  # fmt: skip
        try:
            for kind, where, make, tls in wanted:
                if where is not None:
                    self.addresses[kind] = await self._listen(make(), where, tls)
        except BaseException:
            await self.stop()
            raise
        return dict(self.addresses)

    def _port(self, kind: str) -> int | None:
        """The port a listener opened before really has (the web app starts first)."""
        where = self.addresses.get(kind)
        return None if where is None else where.port

    async def _listen(self, app: web.Application, where: ListenAddress, tls: bool) -> ListenAddress:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        self._runners.append(runner)
        context = self._tls() if tls else None
        site = web.TCPSite(runner, where.host, where.port, ssl_context=context,
                           reuse_address=True)  # fmt: skip
        await site.start()
        host, port = _bound(runner.addresses)
        return ListenAddress(host, port)

    def _tls(self) -> ssl.SSLContext | None:
        web_config = self.backend.config.web
        if web_config.tls_cert is None or web_config.tls_key is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(web_config.tls_cert, web_config.tls_key)
        return context

    async def stop(self) -> None:
        runners, self._runners = self._runners, []
        self.addresses = {}
        for runner in runners:
            await runner.cleanup()


def _bound(addresses: Iterable[object]) -> tuple[str, int]:
    for address in addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return str(address[0]), int(address[1])
    raise OSError("the web listener bound no address")
