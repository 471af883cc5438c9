"""The running proxy as the web app sees it (`web.backend.Backend`), read live from the App."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from filterdns.config import Config
from filterdns.policy.clients import ClientDirectory
from filterdns.policy.decisions import Policy
from filterdns.querylog.dbfile import DamagedError

if TYPE_CHECKING:
    from filterdns.app.lifecycle import App

log = logging.getLogger("filterdns.web")


class AppBackend:
    """Each attribute reads the App at the time of the request (a reload swaps them)."""

    def __init__(self, app: App) -> None:
        self._app = app
        self._tasks: set[asyncio.Task[None]] = set()

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
        return self._app.metrics.render(self._app._gauges)

    async def grants_changed(self) -> None:
        try:
            await asyncio.to_thread(self._app.grants.reload_if_changed)
        except DamagedError:
            await self._app.querylog.check()

    def notify(self, rule: str, profile: str, message: str) -> None:
        # Recorded in the alerts table and delivered by every alert rule of category `rule`.
        self._app.alerter.notify(rule, profile, message)
