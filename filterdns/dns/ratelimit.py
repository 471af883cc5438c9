"""Per-client rate limiting (`server.rate_limit`): a token bucket for every source address.

Each address may ask `per_client_qps` queries a second on average and `burst` at once; a query
over the limit is dropped (UDP, where the source may be forged: no reply means no reflection)
or answered REFUSED (TCP, whose source is proven by the handshake). Other addresses keep their
own buckets, so one flooding device never slows the rest of the house or school.

The table of buckets is bounded: when it holds `max_clients` addresses (a flood from forged
sources), the buckets that have spent at most one token are forgotten, so a device flooding
from its own address stays limited.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

MAX_CLIENTS = 65536
WARN_EVERY = 60.0  # seconds between two warnings about the same address


class RateLimiter:
    """Token buckets by source address; `allow(ip)` spends one token or says no."""

    def __init__(
        self,
        per_client_qps: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self.rate = float(per_client_qps)
        self.burst = float(max(1, burst))
        self._clock = clock
        self._max_clients = max_clients
        # address -> [tokens, time of the last refill]
        self._buckets: dict[str, list[float]] = {}
        self._warned: dict[str, float] = {}
        self.limited = 0  # queries refused or dropped since start

    def allow(self, ip: str) -> bool:
        """Whether a query from `ip` is within its limit now (spends a token when it is)."""
        now = self._clock()
        bucket = self._buckets.get(ip)
        if bucket is None:
            if len(self._buckets) >= self._max_clients:
                self._forget(now)
            self._buckets[ip] = [self.burst - 1.0, now]
            return True
        tokens = bucket[0] + (now - bucket[1]) * self.rate
        tokens = min(tokens, self.burst)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return True
        bucket[0] = tokens
        self.limited += 1
        self._warn(ip, now)
        return False

    def __len__(self) -> int:
        return len(self._buckets)

    def _forget(self, now: float) -> None:
        """Drop the buckets short of at most one token (what a forged source's one query
        leaves): forgetting one gives that address at most one query more. When that frees
        too little, drop them all: a fresh bucket is a full one."""
        rate, least = self.rate, self.burst - 1.0
        idle = [
            ip for ip, (tokens, at) in self._buckets.items() if tokens + (now - at) * rate >= least
        ]
        if len(idle) < len(self._buckets) // 4:
            self._buckets.clear()
        else:
            for ip in idle:
                del self._buckets[ip]
        self._warned.clear()

    def _warn(self, ip: str, now: float) -> None:
        last = self._warned.get(ip)
        if last is not None and now - last < WARN_EVERY:
            return
        self._warned[ip] = now
        log.warning(
            "client %s asks more than %g queries a second (burst %d): queries over the limit are"
            " dropped (UDP) or refused (TCP); see server.rate_limit",
            ip,
            self.rate,
            int(self.burst),
        )
