"""Alerts: tell a parent when blocked lookups of some categories pile up.

Each rule counts matching blocked lookups in a sliding window, per profile or for all profiles
together. When `threshold` lookups fall within `within` seconds the rule fires once, then stays
silent for that profile (or for everyone) until `within` seconds have passed: a parent gets one
alert per rule per window, not hundreds.

Counting is on the hot path: `Alerter.observe` is O(1) amortised, never blocks and never raises.
Firing schedules a task that runs the rule's actions (delivery: a command fed the event as JSON
on stdin, a webhook POSTed the JSON with retries and back-off) and then hands the outcome to
`record` (the store's `put_alert`). Failures are logged and recorded, never raised.

A child's request to unblock a name is an alert of its own kind: `Alerter.notify` records it and
delivers it at once through every rule whose categories include the pseudo-category REQUEST
(no threshold, no window: the requests are bounded where they are made, web/asks.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from filterdns.querylog import delivery
from filterdns.querylog.firing import AlertRule, Event, Firing, Record, RuleSettings
from filterdns.querylog.notices import Notice

__all__ = ["AlertRule", "Alerter", "Event", "Firing", "RuleSettings"]

log = logging.getLogger(__name__)

BLOCKED = "blocked"  # the only kind of lookup the alerts count
CLOSE_GRACE = 5.0  # seconds close() waits for running deliveries before cancelling them


@dataclass(slots=True)
class _Window:
    """The recent matching lookups of one (rule, profile) and when it may fire again."""

    seen: deque[tuple[float, Event]] = field(default_factory=deque)  # (clock time, event)
    silent_until: float = float("-inf")


class Alerter:
    """Count blocked lookups per rule and fire the rules' actions, rate-limited per window."""

    def __init__(
        self,
        rules: Sequence[AlertRule],
        *,
        record: Record | None = None,
        clock: Callable[[], float] = time.time,
        backoff: float = 0.5,
        display_names: Mapping[str, str] | None = None,
    ) -> None:
        self.rules = tuple(rules)
        self.display_names = dict(display_names or {})  # profile -> what people call it
        self.record = record
        self.clock = clock
        self.backoff = backoff
        self.fired = 0  # alerts fired
        self.failed = 0  # fired alerts whose actions did not all succeed
        self._by_category: dict[str, list[tuple[int, AlertRule]]] = {}
        for index, rule in enumerate(self.rules):
            for category in dict.fromkeys(rule.categories):
                self._by_category.setdefault(category, []).append((index, rule))
        self._windows: dict[tuple[int, str | None], _Window] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def observe(self, event: Event) -> None:
        """Count one logged lookup; fire the rules it completes. Never blocks, never raises."""
        try:
            if event.kind != BLOCKED or event.category is None:
                return
            rules = self._by_category.get(event.category)
            if not rules or self._closed:
                return
            now = self.clock()
            for index, rule in rules:
                self._count(index, rule, event, now)
        except Exception:
            log.exception("alerts: could not count a blocked lookup")

    def _count(self, index: int, rule: AlertRule, event: Event, now: float) -> None:
        key = (index, event.profile if rule.per_profile else None)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window()
        if now < window.silent_until:
            return  # fired within the last window: one alert per rule per window
        seen = window.seen
        seen.append((now, event))
        horizon = now - rule.within
        while seen[0][0] < horizon:
            seen.popleft()
        if len(seen) >= rule.threshold:
            events = tuple(e for _, e in seen)
            seen.clear()
            window.silent_until = now + rule.within
            profile = key[1]
            shown = self.display_names.get(profile) if profile is not None else None
            self._fire(Firing(rule, profile, now, events, shown))

    def _fire(self, firing: Firing) -> None:
        self.fired += 1
        self._start(self._deliver(firing), f"alert {firing.rule.name}")

    async def _deliver(self, firing: Firing) -> None:
        rule = firing.rule
        try:
            body = json.dumps(firing.payload()).encode()
            message = firing.message()
            log.info("alert %s: %s", rule.name, message)
            errors = await self._act(rule, body)
        except Exception as exc:  # a bug must not take the server with it
            log.exception("alert %s: delivery failed", rule.name)
            message = f"alert {rule.name} fired"
            errors = [f"delivery failed: {exc!r}"]
        error_text = "; ".join(errors) or None
        if error_text is not None:
            self.failed += 1
            log.warning("alert %s not delivered: %s", rule.name, error_text)
        if self.record is None:
            return
        try:
            await self.record(
                ts=firing.ts,
                rule=rule.name,
                profile=firing.profile,
                categories=",".join(rule.categories),
                count=len(firing.events),
                window=rule.within,
                message=message,
                delivered=error_text is None,
                error=error_text,
            )
        except Exception:
            log.exception("alert %s: could not store the fired alert", rule.name)

    async def _act(self, rule: AlertRule, body: bytes) -> list[str]:
        """Run the rule's command, then POST its webhook; why each that failed did."""
        errors: list[str] = []
        if rule.command is not None:
            error = await delivery.run_command(rule.command, body, rule.timeout)
            if error is not None:
                errors.append(error)
        if rule.webhook is not None:
            error = await delivery.post_webhook(
                rule.webhook,
                body,
                timeout=rule.timeout,
                retries=rule.retries,
                backoff=self.backoff,
                name=rule.name,
            )
            if error is not None:
                errors.append(error)
        return errors

    def notify(
        self,
        kind: str,
        profile: str | None,
        message: str,
        *,
        names: Sequence[str] = (),
        clients: Sequence[str] = (),
    ) -> None:
        """Record a notice of `kind` (REQUEST: a child's request) and deliver it through every
        rule whose categories include `kind`, now. Never blocks, never raises."""
        if self._closed:
            log.warning("alerts closed; %s not delivered: %s", kind, message)
            return
        try:
            notice = Notice(
                kind,
                profile,
                self.clock(),
                message,
                tuple(names),
                tuple(clients),
                self.display_names.get(profile) if profile is not None else None,
            )
            self._start(self._announce(notice), f"notice {kind}")
        except Exception:
            log.exception("alerts: could not send a %s notice", kind)

    async def _announce(self, notice: Notice) -> None:
        rules = [rule for _, rule in self._by_category.get(notice.kind, [])]
        log.info("%s: %s", notice.kind, notice.message)
        if not rules:  # nobody to deliver it to: kept for the report all the same
            await self._store(notice, notice.kind, 0.0, "no alert rule has category " + notice.kind)
            return
        for rule in rules:
            try:
                errors = await self._act(rule, json.dumps(notice.payload(rule.name)).encode())
            except Exception as exc:  # a bug must not take the server with it
                log.exception("alert %s: delivery failed", rule.name)
                errors = [f"delivery failed: {exc!r}"]
            error_text = "; ".join(errors) or None
            if error_text is not None:
                self.failed += 1
                log.warning("alert %s not delivered: %s", rule.name, error_text)
            await self._store(notice, rule.name, rule.within, error_text)

    async def _store(self, notice: Notice, rule: str, window: float, error: str | None) -> None:
        if self.record is None:
            return
        try:
            await self.record(ts=notice.ts, rule=rule, profile=notice.profile,
                              categories=notice.kind, count=1, window=window,
                              message=notice.message, delivered=error is None,
                              error=error)  # fmt: skip
        except Exception:
            log.exception("alert %s: could not store the %s notice", rule, notice.kind)

    def _start(self, work: Coroutine[Any, Any, None], name: str) -> None:
        try:
            task = asyncio.get_running_loop().create_task(work, name=name)
        except RuntimeError:  # no running loop: nothing can deliver it
            work.close()
            self.failed += 1
            log.warning("%s fired outside the event loop: not delivered", name)
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, grace: float = CLOSE_GRACE) -> None:
        """Stop firing; wait up to `grace` seconds for running deliveries, then cancel them."""
        self._closed = True
        tasks = set(self._tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            log.warning("alert delivery %s cancelled at shutdown", task.get_name())
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    @property
    def running(self) -> int:
        """Deliveries in progress."""
        return len(self._tasks)
