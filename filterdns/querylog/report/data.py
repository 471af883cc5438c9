"""What a report holds: plain rows and counts, and the JSON shape `report --json` prints.

The JSON shape (version 1; keys are only ever added) is documented in docs/report-json.md.
Times are ISO 8601 in the report's time zone: `server.timezone`, else the system's.

    {"version": 1, "since": iso, "until": iso, "timezone": "Asia/Ho_Chi_Minh",
     "filters": {"profile": str | null, "client": str | null},
     "display_names": {profile: str},
     "blocked_total": int,
     "profiles": {profile: {"blocked": int, "categories": {category: int}}},
     "categories": {category: int},
     "top_names": [{"name": str, "category": str | null, "count": int}],  # at most 20
     "heatmap": {"mon": [24 ints], ..., "sun": [24 ints]},  # blocked lookups by weekday, hour
     "bypass_attempts": [{"name": str, "kind": str, "count": int, "profile": str | null}],
     "bedtime": {profile: {"lookups": int, "blocked": int}},
     "paused": {profile: int},  # blocked by a pause or a block-all override
     "drops": int,
     "alerts": [{"ts": iso, "rule": str, "profile": str | null, "categories": [str],
                 "count": int, "message": str, "delivered": bool}]}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from filterdns.policy.schedule import DAYS

JSON_VERSION = 1
NONE_KEY = "(none)"  # a lookup without a profile or a category is counted under this key
TIME_FORMAT = "%Y-%m-%d %H:%M"
BYPASS_KINDS = ("canary", "relay", "ddr", "doh", "vpn", "other")


@dataclass(frozen=True, slots=True)
class TopName:
    """One of the most blocked names, with the category it was blocked for most often."""

    name: str
    category: str | None
    count: int


@dataclass(frozen=True, slots=True)
class BypassAttempt:
    """Blocked lookups of one bypass name of one kind by one profile."""

    name: str
    kind: str  # one of BYPASS_KINDS
    count: int
    profile: str | None


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One alert fired in the period, as the store kept it."""

    ts: float
    rule: str
    profile: str | None
    categories: tuple[str, ...]
    count: int
    message: str
    delivered: bool


@dataclass(slots=True)
class Report:
    """What `report` shows; `to_json` gives the documented shape."""

    since: float
    until: float
    zone: ZoneInfo
    profile: str | None
    client: str | None
    blocked_total: int = 0
    profiles: dict[str, dict[str, int]] = field(default_factory=dict)
    categories: dict[str, int] = field(default_factory=dict)
    top_names: list[TopName] = field(default_factory=list)
    heatmap: list[list[int]] = field(default_factory=lambda: [[0] * 24 for _ in DAYS])
    bypass: list[BypassAttempt] = field(default_factory=list)
    bedtime: dict[str, tuple[int, int]] = field(default_factory=dict)
    paused: dict[str, int] = field(default_factory=dict)
    drops: int = 0
    alerts: list[AlertRow] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # profile -> its display_name

    def shown(self, profile: str) -> str:
        """A profile as people call it: "Bình (lớp 6A)", else its name."""
        return self.labels.get(profile, profile)

    def iso(self, ts: float) -> str:
        """A unix time as ISO 8601 in the report's time zone, to the second."""
        return datetime.fromtimestamp(ts, self.zone).isoformat(timespec="seconds")

    def local(self, ts: float) -> str:
        """A unix time as people read it: "2026-11-23 19:01", in the report's time zone."""
        return datetime.fromtimestamp(ts, self.zone).strftime(TIME_FORMAT)

    def to_json(self) -> dict[str, object]:
        """The report in the JSON shape of the module docstring."""
        return {
            "version": JSON_VERSION,
            "since": self.iso(self.since),
            "until": self.iso(self.until),
            "timezone": self.zone.key,
            "filters": {"profile": self.profile, "client": self.client},
            "display_names": dict(self.labels),
            "blocked_total": self.blocked_total,
            "profiles": {
                name: {"blocked": sum(counts.values()), "categories": dict(counts)}
                for name, counts in self.profiles.items()
            },
            "categories": dict(self.categories),
            "top_names": [
                {"name": t.name, "category": t.category, "count": t.count} for t in self.top_names
            ],
            "heatmap": {day: list(hours) for day, hours in zip(DAYS, self.heatmap, strict=True)},
            "bypass_attempts": [
                {"name": b.name, "kind": b.kind, "count": b.count, "profile": b.profile}
                for b in self.bypass
            ],
            "bedtime": {
                name: {"lookups": lookups, "blocked": blocked}
                for name, (lookups, blocked) in self.bedtime.items()
            },
            "paused": dict(self.paused),
            "drops": self.drops,
            "alerts": [self._alert_json(a) for a in self.alerts],
        }

    def _alert_json(self, alert: AlertRow) -> dict[str, object]:
        return {
            "ts": self.iso(alert.ts),
            "rule": alert.rule,
            "profile": alert.profile,
            "categories": list(alert.categories),
            "count": alert.count,
            "message": alert.message,
            "delivered": alert.delivered,
        }
