"""The App's HTTP side: the web app's view of the running proxy (`web.backend.Backend`, read live
from the App) and its listeners, opened at start and again when a reload moves them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from filterdns.config import Config, ListenAddress
from filterdns.policy.clients import ClientDirectory
from filterdns.policy.decisions import Policy
from filterdns.querylog.dbfile import DamagedError

if TYPE_CHECKING:
    from filterdns.app.lifecycle import App
    from filterdns.web.server import WebServer

log = logging.getLogger("filterdns.web")


class AppBackend:
    """Each attribute reads the App at the time of the request (a reload swaps them)."""

    def __init__(self, app: App) -> None:
        self._app = app

    @property
    def config(self) -> Config:
        return self._app.config

    @property
    def policy(self) -> Policy:
        return self._app.policy

    @property
    def directory(self) -> ClientDirectory:
        return self._app.directory

    @property
    def wall_clock(self) -> Callable[[], float]:
        return self._app.wall_clock

    def metrics_text(self) -> str:
        """/metrics now: this process's counts, and the workers' added when they serve."""
        app = self._app
        metrics = app.metrics if app.workers is None else app.workers.metrics(app.metrics)
        return metrics.render(app._gauges)

    async def grants_changed(self) -> None:
        try:
            await asyncio.to_thread(self._app.grants.reload_if_changed)
        except DamagedError:
            await self._app.querylog.check()

    def notify(self, rule: str, profile: str, message: str) -> None:
        # Recorded in the alerts table and delivered by every alert rule of category `rule`.
        self._app.alerter.notify(rule, profile, message)


def web_listeners(config: Config) -> tuple[object, ...]:
    """What the HTTP listeners depend on."""
    web = config.web
    return (web.listen, web.block_page, web.tls_cert, web.tls_key, config.server.metrics)


class WebListeners:
    """The web app, the block page and /metrics of one App (web.server.WebServer).

    The HTTP stack (aiohttp, Jinja2: about 18 MB and 0.16 s on a start) is imported only when a
    listener is configured: a box that serves DNS alone never loads it.
    """

    def __init__(self, app: App) -> None:
        self._app = app
        self.server: WebServer | None = None
        self.addresses: dict[str, ListenAddress] = {}

    async def start(self) -> None:
        """The listeners the configuration asks for (bound before root is given up)."""
        config = self._app.config
        if (config.web.listen, config.web.block_page, config.server.metrics) == (None,) * 3:
            return
        if self.server is None:
            from filterdns.web.server import WebServer  # noqa: PLC0415  (see the class note)

            self.server = WebServer(AppBackend(self._app), self._app.config.log)
        self.addresses = await self.server.start()
        scheme = "https" if self._app.config.web.tls_cert is not None else "http"
        shown = {"metrics": "metrics on http://{}/metrics", "web": f"web app on {scheme}://{{}}/",
                 "block_page": "block page on http://{}/"}  # fmt: skip
        for kind, where in self.addresses.items():
            log.info(shown[kind].format(where))

    async def reopen(self, old: Config) -> None:
        """New listeners when a reload moved them (or turned them on or off); the pages read
        the configuration at each request and need nothing."""
        if web_listeners(old) == web_listeners(self._app.config):
            return
        await self.stop()
        try:
            await self.start()
        except OSError as exc:  # e.g. port 80 after root was given up
            log.error("reload: cannot open the web listeners: %s; restart filterdns", exc)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
        self.addresses = {}
