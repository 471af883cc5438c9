"""Notices: what the adults are told at once, outside the alerts' counting windows.

A child's request to unblock a name (the web app's request page) is one: `Alerter.notify`
(querylog/alerts.py) records it in the alerts table and delivers it through every alert rule
whose categories include its kind, REQUEST, with the same JSON a fired alert has plus `kind`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from filterdns.config.alerts import REQUEST

__all__ = ["REQUEST", "Notice"]


@dataclass(frozen=True, slots=True)
class Notice:
    """Something to tell the adults at once (a child's request), not counted in a window."""

    kind: str  # REQUEST
    profile: str | None
    ts: float
    message: str
    names: tuple[str, ...] = ()
    clients: tuple[str, ...] = ()
    display_name: str | None = None

    def payload(self, rule: str) -> dict[str, Any]:
        """The notice as `rule`'s command and webhook receive it: a fired alert's keys, and
        `kind`."""
        return {
            "kind": self.kind, "rule": rule, "profile": self.profile,
            "profile_display_name": self.display_name or self.profile,
            "categories": [self.kind], "count": 1, "window_seconds": 0.0,
            "first_ts": self.ts, "last_ts": self.ts, "fired_ts": self.ts,
            "names": list(self.names), "clients": list(self.clients), "message": self.message,
        }  # fmt: skip
