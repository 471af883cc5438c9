"""The answer memo: whole answers kept by the bytes of the question, for the rest of a second.

A question asked again within a second (a household's devices ask the same names over and
over) would otherwise cost the parse (2-3 µs), the links (about 4 µs) and `finish` (about
1 µs); from the memo it costs the client's profile, a dict lookup, a few identity checks and the
send. It must answer exactly what the chain would, and do what the chain would:

- The key is the packet after its id (the flags, the question in the client's spelling, the OPT
  record with its size, DO bit and options), the profile of the asking client (the client
  directory is asked on every hit, so a neighbour-table change applies at once) and the
  transport (the size limit differs). A query with a cookie or any option that changes per query
  simply never hits; the ACL is asked on every hit too.
- Only answers the policy link vouched for are kept: a blocked name, an allowed answer the
  cache had ready (judged for CNAME cloaking and rebinding as usual), or a SafeSearch rewrite
  built from the safe host's answer the cache had ready (that entry is the one checked). Their
  pass had no effect other than counters and what a hit replays: the query-log row (and the
  alerts), the metrics count, a budget's minute, the cache hit (counted, kept recent).
- An entry stops serving when what decided it may change: the chain is swapped (a reload: the
  server starts a new memo); the profile's policy state is replaced (a grant, pause or override,
  a budget spent, a schedule change, the hourly recompute) or the list index it read is (a
  refresh); the cache entry is replaced, evicted, reaches its next whole second of age (TTLs
  count down), its prefetch point or its end; or the seconds to the profile's next change (the
  TTL cap) change where they bite.
- Bounds: a question is kept from the second time it is asked within a second (the questions
  seen are forgotten every second: a name that comes back later finds its answer stale anyway,
  and keeping it would cost a pass for nothing); what is kept is dropped every ten seconds, so
  memory holds what ten seconds asked twice (about 0.45 KB a cached answer, 0.6 KB a blocked
  one with its log row to replay); both dicts are `Memo`s, cleared whole when full.

The links talk to the memo through a `Probe` their chain shares: while the server listens (a
pass it may keep), the policy and cache links write what they decided into `probe.note`.
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from filterdns.dns.addresses import Peer
from filterdns.dns.model import Kind, Request, Response
from filterdns.dns.wire import Query
from filterdns.memo import Memo
from filterdns.policy.clients import ClientDirectory
from filterdns.policy.decisions import Policy
from filterdns.policy.state import State
from filterdns.policy.values import Decision
from filterdns.resolvers.access import AccessResolver
from filterdns.resolvers.querylog import ALLOWED_KINDS

# Answers kept per transport: room for a bench's 10,000 names cycling (a memo cleared whole when
# full keeps nothing of a cycle longer than itself); a household's second holds far fewer.
MAX_KEPT = 16384
MAX_SEEN = 16384  # questions asked once, remembered to keep them the second time
# Seconds between drops of everything kept: memory holds what this long asked twice, and a
# popular answer is kept again once per drop (each is valid for a second at most anyway).
DROP_EVERY = 10.0

# The packet after its id, a zero byte and the profile's name: bytes, which the cyclic garbage
# collector never visits (a tuple per question made its collections longer for every query).
Key = bytes


class HitSource(Protocol):
    """The cache, as the memo sees it: whether an entry still serves, and a hit on it."""

    def holds(self, key: bytes, entry: object) -> bool:
        """Whether `key` still holds `entry`, fresh."""
        ...

    def touch(self, key: bytes, entry: object) -> None:
        """Count a hit on `entry` answered by the memo and keep it recent."""
        ...


class Note:
    """What the links of one pass told the memo; filled only while it listens."""

    __slots__ = ("cache", "cache_entry", "cache_key", "cache_until", "decision", "response",
                 "state", "wall_until")  # fmt: skip

    def __init__(self) -> None:
        self.response: Response | None = None  # the policy link's answer, when it vouched
        self.decision: Decision | None = None
        self.state: State | None = None
        self.wall_until = math.inf
        self.cache: HitSource | None = None
        self.cache_key = b""
        self.cache_entry: object = None
        self.cache_until = math.inf

    def cached(self, cache: HitSource, key: bytes, entry: object, until: float) -> None:
        """The cache answered from `entry`, the same way until `until` (its clock)."""
        self.cache, self.cache_key, self.cache_entry, self.cache_until = cache, key, entry, until

    def decided(self, decision: Decision, state: State, response: Response, now: float) -> None:
        """The policy link answered `response` by `decision` in `state` at `now` (wall clock)."""
        self.response, self.decision, self.state = response, decision, state
        self.wall_until = same_cap_until(state.change_at, response, now)


def same_cap_until(change_at: float, response: Response, now: float) -> float:
    """Until when the TTL cap of the profile's next change leaves the answer's bytes as at `now`.

    The cap is the whole seconds to `change_at` (at least 1): the bytes stay the same while it
    keeps its value, or while it stays at or above every TTL of the answer (then it bites
    nowhere).
    """
    if change_at == math.inf:
        return math.inf
    cap = max(1, math.ceil(change_at - now))
    highest = max(response.answer.ttls, default=0)
    return change_at - min(cap, max(highest, 1)) + 1


class Probe:
    """Shared by one chain's policy and cache links: the note of the pass being listened to."""

    __slots__ = ("note",)

    def __init__(self) -> None:
        self.note: Note | None = None


@dataclass(frozen=True, slots=True)
class MemoHooks:
    """What one chain lends its server's memo: the links and clocks a hit checks and replays."""

    probe: Probe
    access: AccessResolver
    directory: ClientDirectory
    policy: Policy
    record: Callable[[Request, Response], None]  # the query-log link: a row, the alerts
    log_allowed: bool
    observe: Callable[[Request, Response, float], None] | None  # the metrics link's, when on
    clock: Callable[[], float]  # the cache's (monotonic)
    wall_clock: Callable[[], float]  # the policy's


_HOOKS: weakref.WeakKeyDictionary[object, MemoHooks] = weakref.WeakKeyDictionary()


def register(head: object, hooks: MemoHooks) -> None:
    """Lend `hooks` to whoever serves the chain whose first link is `head`."""
    _HOOKS[head] = hooks


def hooks_of(head: object) -> MemoHooks | None:
    """The hooks of the chain starting at `head`; None for a chain built otherwise (tests)."""
    return _HOOKS.get(head)


class Kept:
    """One kept answer: the bytes sent after the id, and what it was decided by.

    The query and the Response (0.4 KB of a cached answer's 0.8 once its cache entry moved on
    to the next second) are kept only when a hit replays what reads them: a log row, the
    metrics, a budget's minute.
    """

    __slots__ = ("cache", "cache_entry", "cache_key", "cache_until", "decision", "index",
                 "logged", "profile", "query", "response", "state", "tail",
                 "wall_until")  # fmt: skip

    def __init__(self, out: bytes, query: Query, profile: str, note: Note, hooks: MemoHooks):
        response, decision = note.response, note.decision
        assert response is not None and note.state is not None
        self.tail = out[2:]  # the id is the asking query's
        self.profile = profile
        self.decision = decision
        self.state = note.state
        self.index = note.state.index
        self.wall_until = note.wall_until
        self.cache = note.cache
        self.cache_key = note.cache_key
        self.cache_entry = note.cache_entry
        self.cache_until = note.cache_until
        kind = response.kind
        self.logged = kind is Kind.BLOCKED or (hooks.log_allowed and kind in ALLOWED_KINDS)
        counted = decision is not None and bool(decision.budgets)
        replayed = self.logged or hooks.observe is not None or counted
        self.query: Query | None = query if replayed else None
        self.response: Response | None = response if replayed else None


class AnswerMemo:
    """The answers of one chain kept by question; see the module docstring."""

    def __init__(self, hooks: MemoHooks) -> None:
        self.hooks = hooks
        self._kept: dict[str, Memo[Key, Kept]] = {"udp": Memo(MAX_KEPT), "tcp": Memo(MAX_KEPT)}
        self._seen: Memo[Key, bool] = Memo(MAX_SEEN)
        self._want: tuple[Memo[Key, Kept], Key] | None = None  # where the pass may be kept
        self._note: Note | None = None
        self._clear_at = -math.inf  # when the kept answers are dropped next (the cache's clock)
        self._forget_at = -math.inf  # when the questions seen are forgotten next
        self._name: str | None = None  # the asking client's name, from the last `find`
        self._profile = ""  # and its profile
        self._suffixes: dict[str, bytes] = {}  # profile -> the end of its keys
        self.hits = 0
        self.kept = 0

    def __len__(self) -> int:
        return sum(len(kept) for kept in self._kept.values())

    def find(self, data: bytes, ip: str, protocol: str) -> Kept | None:
        """The kept answer to `data` from `ip` when it still holds, else None (no side effect
        but remembering the question, so its answer is kept the next time)."""
        self._want = self._note = None
        hooks = self.hooks
        now = hooks.clock()
        if now >= self._forget_at:  # kept: what was asked twice within a second
            self._seen.clear()
            self._forget_at = now + 1.0
            if now >= self._clear_at:  # stale answers go: memory holds what DROP_EVERY asked
                for kept_answers in self._kept.values():
                    kept_answers.clear()
                self._clear_at = now + DROP_EVERY
        if not hooks.access.allows(ip):
            return None
        match = hooks.directory.match(ip)
        profile = self._profile = match.profile
        suffix = self._suffixes.get(profile)
        if suffix is None:
            suffix = self._suffixes[profile] = b"\0" + profile.encode()
        key = data[2:] + suffix
        kept = self._kept[protocol]
        found = kept.get(key)
        if found is None:
            seen = self._seen
            if key in seen:
                self._want = (kept, key)
            else:
                seen.remember(key, True)
            return None
        self._name = match.name
        if now < found.cache_until and self._holds(found):
            return found
        self._want = (kept, key)
        return None

    def _holds(self, kept: Kept) -> bool:
        hooks = self.hooks
        now = hooks.wall_clock()
        if now >= kept.wall_until:
            return False
        state = hooks.policy.current_state(kept.profile, now)
        if state is not kept.state or state.index is not kept.index:
            return False
        cache = kept.cache
        return cache is None or cache.holds(kept.cache_key, kept.cache_entry)

    def serve(
        self, kept: Kept, data: bytes, addr: Peer, protocol: str, received_at: float
    ) -> bytes:
        """The bytes to send for a hit `find` returned, doing what the chain would have done."""
        self.hits += 1
        hooks = self.hooks
        cache = kept.cache
        if cache is not None:
            cache.touch(kept.cache_key, kept.cache_entry)
        query, response = kept.query, kept.response
        if query is None or response is None:  # nothing but the cache hit to replay
            return data[:2] + kept.tail
        decision = kept.decision
        if decision is not None and decision.budgets:
            hooks.policy.count(decision, query.qname, hooks.wall_clock())
        observe = hooks.observe
        if kept.logged or observe is not None:
            start = time.perf_counter()
            request = Request(
                query, addr[0], addr[1], protocol, received_at, kept.profile, self._name
            )
            if kept.logged:
                hooks.record(request, response)
            if observe is not None:
                observe(request, response, time.perf_counter() - start)
        return data[:2] + kept.tail

    def listen(self) -> bool:
        """Before a pass through the chain: have the links note what they decide when the
        question is worth keeping (asked before). True when listening."""
        if self._want is None:
            return False
        self._note = self.hooks.probe.note = Note()
        return True

    def deaf(self) -> None:
        """After the pass: the links stop noting."""
        self.hooks.probe.note = None

    def admit(self, request: Request, response: Response, out: bytes) -> None:
        """Keep `out`, the answer of the pass listened to, when the policy link vouched for it."""
        note, want = self._note, self._want
        self._note = self._want = None
        if note is None or want is None or note.response is not response:
            return
        kept, key = want
        if response.silent or note.state is None:
            return
        kept.remember(key, Kept(out, request.query, self._profile, note, self.hooks))
        self.kept += 1
