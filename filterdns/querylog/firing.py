"""What an alert is: a rule (`AlertRule`), the lookups it counts (`Event`), and what it sends
when it fires (`Firing`: the message sentence and the JSON its command and webhook receive).
The counting and the delivery are `alerts.Alerter`'s."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

MAX_NAMES = 10  # distinct names (and clients) carried in an event
MESSAGE_NAMES = 3  # names spelled out in the message sentence


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One alert rule: `threshold` matching blocked lookups within `within` seconds fire it."""

    name: str  # "alert 1" when the config gives none
    categories: tuple[str, ...]  # e.g. ("adult", "bypass"); "bypass" counts bypass attempts
    threshold: int
    within: float  # seconds, a sliding window
    per_profile: bool = True  # count per profile (False: all profiles together)
    command: str | None = None  # run with the event as JSON on stdin (no shell)
    webhook: str | None = None  # HTTP(S) POST of the event as JSON
    timeout: float = 10.0  # seconds, for the command and for each webhook attempt
    retries: int = 3  # webhook retries after the first attempt

    def __post_init__(self) -> None:
        if self.threshold < 1:
            raise ValueError(f"alert {self.name!r}: threshold must be at least 1")
        if self.within <= 0 or self.timeout <= 0:
            raise ValueError(f"alert {self.name!r}: within and timeout must be positive")
        if self.retries < 0:
            raise ValueError(f"alert {self.name!r}: retries must not be negative")

    @classmethod
    def of(cls, settings: RuleSettings) -> AlertRule:
        """The rule for one configured `alerts:` entry (any object with the same fields)."""
        return cls(
            name=settings.name,
            categories=tuple(settings.categories),
            threshold=settings.threshold,
            within=settings.within,
            per_profile=settings.per_profile,
            command=settings.command,
            webhook=settings.webhook,
            timeout=settings.timeout,
            retries=settings.retries,
        )


class RuleSettings(Protocol):
    """What `AlertRule.of` reads from a configured rule."""

    @property
    def name(self) -> str: ...
    @property
    def categories(self) -> Iterable[str]: ...
    @property
    def threshold(self) -> int: ...
    @property
    def within(self) -> float: ...
    @property
    def per_profile(self) -> bool: ...
    @property
    def command(self) -> str | None: ...
    @property
    def webhook(self) -> str | None: ...
    @property
    def timeout(self) -> float: ...
    @property
    def retries(self) -> int: ...


class Event(Protocol):
    """What the alerts read from one logged lookup (the log's record has these fields)."""

    @property
    def ts(self) -> float: ...
    @property
    def profile(self) -> str | None: ...
    @property
    def client(self) -> str: ...
    @property
    def client_name(self) -> str | None: ...
    @property
    def name(self) -> str: ...
    @property
    def category(self) -> str | None: ...
    @property
    def kind(self) -> str: ...


Record = Callable[..., Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Firing:
    """One fired alert: what the actions are sent and what the store keeps."""

    rule: AlertRule
    profile: str | None
    ts: float  # when it fired (unix time)
    events: tuple[Event, ...]
    display_name: str | None = None  # what people call the profile ("Bình (lớp 6A)")

    def names(self) -> list[str]:
        return _distinct(e.name for e in self.events)

    def clients(self) -> list[str]:
        return _distinct(e.client_name or e.client for e in self.events)

    def message(self) -> str:
        rule = self.rule
        what = " or ".join(rule.categories)
        if not rule.per_profile:
            who = "across all profiles"
        elif self.profile is None:
            who = "from devices without a profile"
        else:
            who = f"for {self.display_name or self.profile}"
        names = self.names()
        shown = ", ".join(names[:MESSAGE_NAMES])
        if len(names) > MESSAGE_NAMES:
            shown += ", ..."
        count = len(self.events)
        lookups = "lookup" if count == 1 else "lookups"
        return f"{count} blocked {what} {lookups} {who} within {_span(rule.within)} ({shown})"

    def payload(self) -> dict[str, Any]:
        """The event as the command and the webhook receive it (JSON)."""
        return {
            "rule": self.rule.name,
            "profile": self.profile,
            "profile_display_name": self.display_name or self.profile,
            "categories": list(self.rule.categories),
            "count": len(self.events),
            "window_seconds": self.rule.within,
            "first_ts": self.events[0].ts,
            "last_ts": self.events[-1].ts,
            "fired_ts": self.ts,
            "names": self.names(),
            "clients": self.clients(),
            "message": self.message(),
        }


def _distinct(items: Iterable[str]) -> list[str]:
    """The first MAX_NAMES distinct items, in order."""
    out: dict[str, None] = {}
    for item in items:
        out[item] = None
        if len(out) >= MAX_NAMES:
            break
    return list(out)


def _span(seconds: float) -> str:
    """ "10 minutes", "1 hour", "90 seconds"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} second{'s' if seconds != 1 else ''}"
