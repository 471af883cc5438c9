"""What the web app needs from the running proxy, and nothing more.

The server's `App` provides it (`app.webside.AppBackend`); tests can give their own. Everything
is read at each request, so a reload's new configuration and policy are what the next page shows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from filterdns.config import Config
from filterdns.policy.clients import ClientDirectory
from filterdns.policy.decisions import Policy


class Backend(Protocol):
    """The running proxy as the web app sees it."""

    @property
    def config(self) -> Config:
        """The configuration in force."""

    @property
    def policy(self) -> Policy:
        """The policy in force (the same object the DNS path asks)."""

    @property
    def directory(self) -> ClientDirectory:
        """Which profile a device's address belongs to."""

    @property
    def wall_clock(self) -> Callable[[], float]:
        """Unix time now."""

    def metrics_text(self) -> str:
        """The Prometheus exposition of the proxy's counters now."""

    async def grants_changed(self) -> None:
        """Read the grants, pauses and overrides again now: a change made on the web applies to
        the next DNS query, not within a second."""

    def notify(self, rule: str, profile: str, message: str) -> None:
        """Record an alert (a child's request) and deliver it where the alert rules deliver."""
