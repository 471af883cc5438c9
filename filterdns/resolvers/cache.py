"""The answer cache: LRU by question, decaying TTLs, serve-stale (RFC 8767) and prefetch.

Only upstream answers (Kind.RESOLVED) with a cache lifetime are stored; `replies.analyse` already
refuses one to truncated, SERVFAIL and REFUSED replies. A stored answer keeps its clamped TTLs
and the moment it was stored; a hit patches `ttl - elapsed` into a copy, so a TTL a client sees
never goes up and never below zero.

When every upstream fails, an answer that expired no longer than `serve_stale` seconds ago is
served with TTL 30 (RFC 8767 section 4) and an Extended DNS Error "Stale Answer" (RFC 8914).
A popular entry near its end is refreshed in the background so clients keep hitting.

A reload keeps the cache (every answer stays cached) and hands it the new settings with
`reconfigure`, which applies them to what is already stored, not only to what comes next.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from filterdns.config import CacheConfig
from filterdns.dns import wire
from filterdns.dns.model import Kind, Request, Response
from filterdns.dns.wire import Answer
from filterdns.memo import Linked, Lru, Memo
from filterdns.resolvers.answermemo import Note, Probe
from filterdns.resolvers.base import Link, Resolver

log = logging.getLogger(__name__)

STALE_TTL = 30  # RFC 8767 section 4: the TTL of stale data served to clients
_EDE_STALE = wire.edns_option(15, wire.U16.pack(3))  # RFC 8914 Extended DNS Error 3
PREFETCH_FRACTION = 0.1  # refresh when less than this part of the lifetime is left
PREFETCH_MIN_LIFETIME = 10.0  # entries living shorter than this are not worth refreshing
PREFETCH_MIN_HITS = 2


@dataclass(slots=True)
class CacheStats:
    """Counters for `status` and tests; `entries` is kept equal to the number stored."""

    hits: int = 0
    misses: int = 0
    stale_served: int = 0
    prefetches: int = 0
    evictions: int = 0
    entries: int = 0


# What a stored answer needs besides its bytes, as one tuple: (ttl_offsets, ttls, rcode,
# cache_ttl, targets, private, lifetime). Answers of the same shape (one upstream, one TTL) share
# one such tuple, so an entry costs its bytes, one small object and one float.
_Layout = tuple[tuple[int, ...], tuple[int, ...], int, int | None, tuple[str, ...], bool, int]
LAYOUT_MEMO = 4096  # layouts shared between entries (a memo: cleared whole when full)
_LAYOUTS: Memo[_Layout, _Layout] = Memo(LAYOUT_MEMO)


def _layout(answer: Answer, lifetime: int) -> _Layout:
    """The shared layout tuple of `answer` stored for `lifetime` seconds."""
    layout: _Layout = (
        answer.ttl_offsets, answer.ttls, answer.rcode, answer.cache_ttl, answer.targets,
        answer.private, lifetime,
    )  # fmt: skip
    return _LAYOUTS.get(layout) or _LAYOUTS.remember(layout, layout)


def _patched(data: bytes, offsets: tuple[int, ...], ttls: tuple[int, ...]) -> bytes:
    """`data` with `ttls[i]` written at byte offset `offsets[i]`."""
    buf = bytearray(data)
    pack_into = wire.U32.pack_into
    for offset, ttl in zip(offsets, ttls, strict=True):
        pack_into(buf, offset, ttl)
    return bytes(buf)


class _Entry(Linked):
    """One stored answer: its key and its neighbours in the order of use (`Linked`), its bytes
    with TTLs already clamped, its shared layout, when it was stored; hits counted up to what
    prefetch needs; the Response of the current second once the answer is asked twice within it.

    A cache holds tens of thousands of these, so an entry is one slotted object, the answer's
    bytes and one float: no Answer object, no expiry floats (they are sums of `stored_at` and
    the layout's lifetime), no counter growing past the small integers Python shares.
    """

    __slots__ = ("_aged", "_aged_for", "hits", "layout", "stored_at", "wire")

    def __init__(self, key: bytes, answer: Answer, stored_at: float, lifetime: int):
        self.key = key
        self.wire = answer.wire
        self.layout = _layout(answer, lifetime)
        self.stored_at = stored_at
        self.hits = 0
        self._aged: Response | None = None  # the hit Response for `_aged_for` elapsed seconds
        self._aged_for = -1

    @property
    def answer(self) -> Answer:
        """The answer as stored (TTLs clamped, not decayed)."""
        offsets, ttls, rcode, cache_ttl, targets, private, _lifetime = self.layout
        return Answer(self.wire, offsets, ttls, rcode, cache_ttl, targets, private)

    def limit(self, ceiling: int) -> None:
        """Live at most `ceiling` seconds from storing, TTLs lowered to match: new settings for
        an entry already stored (the serve-stale window follows the cache's setting)."""
        offsets, ttls, rcode, cache_ttl, targets, private, lifetime = self.layout
        if lifetime > ceiling:
            lowered = tuple(t if t <= ceiling else ceiling for t in ttls)
            self.wire = _patched(self.wire, offsets, lowered)
            answer = Answer(self.wire, offsets, lowered, rcode, cache_ttl, targets, private)
            self.layout = _layout(answer, ceiling)
            self._aged, self._aged_for = None, -1

    def decayed(self, elapsed: int) -> Answer:
        """The answer with every TTL lowered by `elapsed` whole seconds (never below zero)."""
        offsets, ttls, rcode, cache_ttl, targets, private, _lifetime = self.layout
        data = self.wire
        if elapsed > 0:
            ttls = tuple(t - elapsed if t > elapsed else 0 for t in ttls)
            data = _patched(data, offsets, ttls)
        return Answer(data, offsets, ttls, rcode, cache_ttl, targets, private)

    def hit(self, elapsed: int) -> Response:
        """The Response for a hit `elapsed` whole seconds after storing. TTLs change once a
        second, so from the second hit within one second on, a popular name's Response is kept
        for the rest of that second (a name asked once a second keeps nothing: memory stays
        with the popular ones)."""
        aged = self._aged
        if aged is not None and elapsed == self._aged_for:
            return aged
        response = Response(Kind.CACHED, self.decayed(elapsed), reason="cached")
        if elapsed == self._aged_for:  # asked before within this second: popular, keep it
            self._aged = response
        else:
            self._aged, self._aged_for = None, elapsed
        return response


class CacheResolver(Link):
    """Answers repeated questions from memory; asks `next` on a miss or an expired entry."""

    def __init__(
        self,
        next_resolver: Resolver,
        config: CacheConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(next_resolver)
        self.config = config
        self.stats = CacheStats()
        self._clock = clock
        self._max_entries = config.max_entries
        self._serve_stale = max(0.0, config.serve_stale)
        self._entries: Lru[bytes, _Entry] = Lru()
        self._prefetching: dict[bytes, asyncio.Task[None]] = {}
        self._closed = False
        self.probe = Probe()  # its chain's, shared with the policy link and the answer memo

    def __len__(self) -> int:
        return len(self._entries)

    def reconfigure(self, next_resolver: Resolver, config: CacheConfig) -> CacheResolver:
        """Keep every answer for a new chain (a reload): `next_resolver` below, `config` in force.

        Every setting applies to what is stored, not only to what comes next: a smaller
        `max_entries` evicts the least recently used entries down to it (0 empties the cache and
        turns it off); a new `serve_stale` moves the stale window of every entry; a lower
        `max_ttl` or `negative_max_ttl` shortens the entries that would outlive it. `min_ttl` and
        `prefetch` apply to the next answer stored and the next hit, as they always do.
        """
        old = self.config
        self.next, self.config = next_resolver, config
        self._max_entries = config.max_entries
        self._serve_stale = max(0.0, config.serve_stale)
        self._evict(max(0, config.max_entries))
        ceilings = (config.serve_stale, config.max_ttl, config.negative_max_ttl)
        if ceilings != (old.serve_stale, old.max_ttl, old.negative_max_ttl):
            for entry in self._entries.values():
                entry.limit(self._ceiling(entry.layout[2], entry.wire))
        return self

    def _ceiling(self, rcode: int, data: bytes) -> int:
        """The longest an answer of this kind may be cached (see `_store`)."""
        config = self.config
        if _negative(rcode, data):
            return config.negative_max_ttl
        return max(config.min_ttl, config.max_ttl)

    def _evict(self, room: int) -> None:
        """Drop the least recently used entries until at most `room` are left."""
        entries = self._entries
        while len(entries) > room:
            entries.pop_oldest()
            self.stats.evictions += 1
        self.stats.entries = len(entries)

    def _fresh(self, request: Request, note: Note | None = None) -> Response | None:
        """The stored answer for the question while it is fresh, else None.

        An entry past its serve-stale window is dropped; a popular one near its end starts a
        background refresh.
        """
        key = request.query.key
        entries = self._entries
        entry = entries.get(key)
        if entry is None:
            return None
        now = self._clock()
        age = now - entry.stored_at
        lifetime = entry.layout[6]
        if age < lifetime:
            entries.use(entry)
            self.stats.hits += 1
            hits = entry.hits
            if hits < PREFETCH_MIN_HITS:  # counted only as far as prefetch asks
                entry.hits = hits = hits + 1
            if (
                hits >= PREFETCH_MIN_HITS
                and self.config.prefetch
                and lifetime >= PREFETCH_MIN_LIFETIME
                and lifetime - age < lifetime * PREFETCH_FRACTION
            ):
                self._prefetch(key, request)
            if note is not None:  # the answer memo listens: until when this hit stays the same
                note.cached(self, key, entry, self._same_until(entry, now))
            return entry.hit(int(age))
        if age >= lifetime + self._serve_stale:
            entries.drop(entry)
            self.stats.entries = len(entries)
        return None

    def resolve_now(self, request: Request) -> Response | None:
        """A fresh cached answer, or None (the miss is counted by `resolve`)."""
        if self._max_entries <= 0:
            return None
        return self._fresh(request, self.probe.note)

    def _same_until(self, entry: _Entry, now: float) -> float:
        """Until when a hit on `entry` answers and does what one at `now` does: the next whole
        second of its age (TTLs count down), its prefetch point, its end."""
        lifetime = entry.layout[6]
        expires_at = entry.stored_at + lifetime
        until = entry.stored_at + int(now - entry.stored_at) + 1
        if self.config.prefetch and lifetime >= PREFETCH_MIN_LIFETIME:
            until = min(until, expires_at - lifetime * PREFETCH_FRACTION)
        return min(until, expires_at)

    def holds(self, key: bytes, entry: object) -> bool:
        """Whether `key` still holds `entry` (not replaced, not evicted): for the answer memo."""
        return self._entries.get(key) is entry

    def touch(self, key: bytes, entry: object) -> None:
        """A hit on `entry` the answer memo answered: counted and kept recent, as `_fresh` does."""
        if isinstance(entry, _Entry) and self._entries.get(key) is entry:
            self._entries.use(entry)
            if entry.hits < PREFETCH_MIN_HITS:
                entry.hits += 1  # counted only as far as prefetch asks
        self.stats.hits += 1

    async def resolve(self, request: Request) -> Response:
        """A cached answer when fresh; otherwise ask `next`, store, or fall back to stale data."""
        if self._max_entries <= 0:
            return await self.next.resolve(request)
        fresh = self._fresh(request)
        if fresh is not None:
            return fresh
        key = request.query.key
        self.stats.misses += 1
        response = await self.next.resolve(request)
        kind = response.kind
        if kind is Kind.RESOLVED:
            stored = self._store(key, response.answer)
            if stored is not None and stored is not response.answer:
                # The client sees the clamped TTLs at once, so they never rise on a later hit.
                return replace(response, answer=stored)
        elif kind is Kind.FAILED and self._serve_stale > 0:
            return self._stale(key, response) or response
        return response

    def _stale(self, key: bytes, failure: Response) -> Response | None:
        """The stored answer for `key` when still within the serve-stale window, else None.

        Looked up again after the await: another query may have refreshed or evicted the entry.
        """
        entry = self._entries.get(key)
        if entry is None:
            return None
        age = self._clock() - entry.stored_at
        lifetime = entry.layout[6]
        if age < lifetime:
            self.stats.hits += 1
            return entry.hit(int(age))
        if age >= lifetime + self._serve_stale:
            return None
        self.stats.stale_served += 1
        answer = entry.answer
        return Response(
            Kind.STALE,
            answer.with_ttls((STALE_TTL,) * len(answer.ttls)),
            reason=f"stale: {failure.reason}",
            edns_options=_EDE_STALE,
        )

    def _store(self, key: bytes, answer: Answer) -> Answer | None:
        """Keep `answer` under `key` with clamped lifetime and TTLs; returns what was stored.

        None when the answer may not be cached (truncated, SERVFAIL, TTL 0).
        """
        cache_ttl = answer.cache_ttl
        if cache_ttl is None:
            return None
        config = self.config
        ttls = answer.ttls
        if _negative(answer.rcode, answer.wire):
            lifetime = min(cache_ttl, config.negative_max_ttl)
            clamped = tuple(t if t <= lifetime else lifetime for t in ttls)
        else:
            low, high = config.min_ttl, config.max_ttl
            lifetime = max(low, min(cache_ttl, high))
            clamped = tuple(max(low, min(t, high)) for t in ttls)
        if lifetime <= 0:
            return None  # TTL 0: the owner asked not to be cached
        if clamped != ttls:
            answer = answer.with_ttls(clamped)
        entries = self._entries
        if key not in entries:
            self._evict(self._max_entries - 1)
        entries.put(_Entry(key, answer, self._clock(), lifetime))
        self.stats.entries = len(entries)
        return answer

    def _prefetch(self, key: bytes, request: Request) -> None:
        """Refresh `key` in the background, at most one task per key at a time."""
        if self._closed or key in self._prefetching:
            return
        task = asyncio.get_running_loop().create_task(self._refresh(key, request))
        self._prefetching[key] = task
        self.stats.prefetches += 1
        task.add_done_callback(lambda done: self._prefetch_done(key, done))

    def _prefetch_done(self, key: bytes, task: asyncio.Task[None]) -> None:
        if self._prefetching.get(key) is task:
            del self._prefetching[key]

    async def _refresh(self, key: bytes, request: Request) -> None:
        try:
            response = await self.next.resolve(request)
        except Exception as exc:
            log.debug("prefetch of %s failed: %r", request.query.qname, exc)
            return
        if response.kind is Kind.RESOLVED and self._max_entries > 0:
            self._store(key, response.answer)

    async def close(self) -> None:
        """Cancel background refreshes and wait for them to finish."""
        self._closed = True
        tasks = list(self._prefetching.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._prefetching.clear()


def _negative(rcode: int, data: bytes) -> bool:
    """NXDOMAIN, or NODATA (no answer records): cached for the SOA minimum (RFC 2308)."""
    return rcode == wire.NXDOMAIN or data[6:8] == b"\x00\x00"
