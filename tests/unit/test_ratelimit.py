"""Per-client token buckets: a burst, then the average rate; each address on its own."""

from __future__ import annotations

import logging

import pytest

from filterdns.dns.ratelimit import RateLimiter
from tests.integration.harness import FakeClock


def _allowed(limiter: RateLimiter, ip: str, count: int) -> int:
    return sum(limiter.allow(ip) for _ in range(count))


def test_a_burst_is_allowed_then_the_rest_of_it_is_not() -> None:
    limiter = RateLimiter(10, 20, clock=FakeClock())

    assert _allowed(limiter, "10.0.0.5", 50) == 20
    assert limiter.limited == 30


def test_tokens_come_back_at_the_average_rate_up_to_the_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, 20, clock=clock)
    _allowed(limiter, "10.0.0.5", 20)

    clock.now += 0.5
    assert _allowed(limiter, "10.0.0.5", 10) == 5
    clock.now += 3600
    assert _allowed(limiter, "10.0.0.5", 50) == 20


def test_one_flooding_address_does_not_touch_another() -> None:
    limiter = RateLimiter(1, 5, clock=FakeClock())

    _allowed(limiter, "10.0.0.66", 1000)

    assert _allowed(limiter, "10.0.0.5", 5) == 5


def test_the_table_stays_bounded_under_forged_sources_keeping_busy_buckets() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1, 3, clock=clock, max_clients=100)
    _allowed(limiter, "10.0.0.66", 3)  # empty bucket: worth keeping
    clock.now += 0.1

    for i in range(1000):
        limiter.allow(f"192.0.2.{i % 250}.{i}")

    assert len(limiter) <= 100
    assert not limiter.allow("10.0.0.66")  # not forgotten: still over its limit


def test_an_address_over_the_limit_is_named_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    limiter = RateLimiter(1, 1, clock=clock)
    with caplog.at_level(logging.WARNING, logger="filterdns.dns.ratelimit"):
        _allowed(limiter, "10.0.0.66", 100)
        clock.now += 30
        _allowed(limiter, "10.0.0.66", 100)
        clock.now += 31
        _allowed(limiter, "10.0.0.66", 100)

    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert "10.0.0.66" in warnings[0] and "server.rate_limit" in warnings[0]
