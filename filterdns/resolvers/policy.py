"""The policy link: what the asking profile may see, right now.

`PolicyResolver` asks the `Policy` about the profile the client link attached, and answers
blocked names itself (in the configured mode, with an Extended DNS Error naming the category
when the client sent EDNS), rewrites SafeSearch names to a CNAME plus the safe host's addresses
(resolved through the cache and upstreams below), and caps the TTL of every answer, blocked or
allowed, at the time until the profile's decision next changes.

The answer of an allowed name is judged on its way up, cached or not (the cache is shared by
every profile, so this is the place; `answers.AnswerJudge`): a CNAME/DNAME/alias target blocked
for the profile blocks the answer (CNAME cloaking), and a public name answered with private
addresses becomes NODATA (DNS rebinding). `wire` noted those names and addresses when the
answer arrived, so a hit with neither costs two attribute reads.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from filterdns.config import BlockingConfig
from filterdns.dns import model, names, rich, wire
from filterdns.dns.model import Kind, Request, Response
from filterdns.memo import Memo
from filterdns.policy.answers import AnswerJudge
from filterdns.policy.decisions import Policy
from filterdns.policy.values import Decision
from filterdns.resolvers.answermemo import Probe
from filterdns.resolvers.base import Link, Resolver

# Blocked answers kept ready (about 0.7 KB each; one not kept is built in about 4 µs more). A
# household asks again the few hundred trackers it is refused all day; the bench's blocked
# workloads (20,000 names in turn) find none kept at 4,096 either (a memo is emptied when full),
# and the household workload's blocked lookups, mostly of names asked once, 3.2 % at 4,096.
MAX_REMEMBERED = 1024
MAX_REWRITES = 1024  # SafeSearch answers kept ready (a few hosts, a few types, this second's)
_BLOCKED = Kind.BLOCKED  # a module global: `Kind.BLOCKED` is a class attribute lookup (0.1 µs)


class PolicyResolver(Link):
    """Block, rewrite or pass on, as the profile's policy decides right now."""

    def __init__(
        self,
        next_resolver: Resolver,
        policy: Policy,
        blocking: BlockingConfig,
        judge: AnswerJudge,
        clock: Callable[[], float] = time.time,
        *,
        probe: Probe | None = None,
    ) -> None:
        super().__init__(next_resolver)
        self.probe = probe or Probe()  # shared with the cache link and the answer memo
        self.policy = policy
        self.blocking = blocking
        self._ttl = model.clamped_ttl(blocking.ttl)  # of blocked answers
        self.judge = judge
        self.clock = clock
        # Blocked answers kept ready by question, with the decision they answer.
        self._blocked: Memo[bytes, tuple[Decision, Response]] = Memo(MAX_REMEMBERED)
        # SafeSearch answers built, by question, safe host, TTL and the safe host's answer.
        self._rewrites: Memo[tuple[bytes, str, int, bytes | None], wire.Answer] = Memo(MAX_REWRITES)
        # Extended DNS Error options by label (a category or a rule): a few dozen at most.
        self._ede: Memo[str, bytes] = Memo(MAX_REMEMBERED)

    async def resolve(self, request: Request) -> Response:
        """The decision's answer; allowed names go on down the chain with a capped TTL."""
        if request.profile is None:
            return await self.next.resolve(request)
        now = self.clock()
        decision, cap = self.policy.verdict(request.profile, request.query.qname, now)
        if decision.action == "allow":
            self.policy.count(decision, request.query.qname, now)  # a budget's minute
            response = await self.next.resolve(request)
            answer = response.answer
            if answer.targets or answer.private:
                response = self._inspect(request, decision, response)
            return response.capped(cap)
        if decision.action == "rewrite":
            response = await self._rewrite(request, decision, cap)
            self.policy.count(decision, request.query.qname, now)  # a budget's minute
            return response
        return self._block(request.query, decision).capped(cap)

    def resolve_now(self, request: Request) -> Response | None:
        """A blocked answer, or an allowed one the cache has ready (capped); None otherwise."""
        profile = request.profile
        if profile is None:
            return self.next.resolve_now(request)
        now = self.clock()
        decision, cap = self.policy.verdict(profile, request.query.qname, now)
        if decision.action == "allow":
            response = self.next.resolve_now(request)
            if response is None:
                return None  # resolve() follows, and counts it
            if decision.budgets:  # a budget's minute
                self.policy.count(decision, request.query.qname, now)
            answer = response.answer
            if answer.targets or answer.private:
                response = self._inspect(request, decision, response)
            if cap is not None:
                response = response.capped(cap)
        elif decision.action == "rewrite":  # answered now when the safe host is cached
            rewritten = self._rewrite_now(request, decision, cap)
            if rewritten is None:
                return None
            self.policy.count(decision, request.query.qname, now)
            response = rewritten
        else:
            response = self._block(request.query, decision)
            if cap is not None:
                response = response.capped(cap)
        note = self.probe.note
        if note is not None:  # the answer memo listens: what decided this answer
            note.decided(decision, self.policy.current_state(profile, now), response, now)
        return response

    def _inspect(self, request: Request, decision: Decision, response: Response) -> Response:
        """The answer of an allowed name, unless it leads to a name blocked for this profile
        or points a public name into the local network (then blocked like any name)."""
        query = request.query
        found = self.judge.judge(decision, query.qname, response.answer, self.clock())
        return response if found is None else self._block(query, found)

    def _block(self, query: wire.Query, decision: Decision) -> Response:
        """The blocked answer, with the blocking TTL (capped by the caller when a change is near).

        The same question blocked by the same (remembered) decision gets the same Response:
        finish() sets the id, flags and the client's spelling of the name.
        """
        found = self._blocked.get(query.key)
        if found is not None and found[0] is decision:
            return found[1]
        response = self._blocked_response(query, decision)
        self._blocked.remember(query.key, (decision, response))
        return response

    def _blocked_response(self, query: wire.Query, decision: Decision) -> Response:
        """A new blocked answer: the answer in its mode, the EDE option naming the category or
        rule, the reason the log records. Built for every blocked question not kept ready."""
        ttl = self._ttl
        action = decision.action
        mode: str = self.blocking.response  # what the log records: the mode, or the action
        if action == "block":
            answer = self._answer_in_mode(query, mode, ttl)
        else:  # nxdomain (bypass names) or nodata (DDR, rebinding), whatever the mode
            rcode = wire.NXDOMAIN if action == "nxdomain" else wire.NOERROR
            answer = model.negative(query, rcode, ttl)
            mode = action
        rule = decision.rule
        label = decision.category or rule or "blocked"
        ede = self._ede.get(label)
        if ede is None:
            ede = self._ede.remember(label, model.ede_option(model.EDE_BLOCKED, label))
        reason = f"{decision.reason}; profile {decision.profile}"
        if rule:
            reason = f"{reason}; rule {rule}"
        # Positional: this is built for every blocked question not kept ready.
        return Response(
            _BLOCKED, answer, reason, decision.category, ttl, 0, ede, None, rule,
            decision.source, mode,
        )  # fmt: skip

    def _answer_in_mode(self, query: wire.Query, mode: str, ttl: int) -> wire.Answer:
        """The answer `blocking.response` gives a blocked name."""
        if mode == "nxdomain":
            return model.negative(query, wire.NXDOMAIN, ttl)
        if mode == "null":
            return model.blocked_null(query, ttl)
        if mode == "refused":
            return model.refused_answer(query)
        if mode == "custom":
            return model.blocked_custom(query, self.blocking.custom_ips, ttl)
        return model.negative(query, wire.NXDOMAIN, ttl)

    async def _rewrite(self, request: Request, decision: Decision, cap: int | None) -> Response:
        resolved = await self.next.resolve(self._target(request, decision))
        return self._rewritten(request.query, decision, cap, resolved)

    def _rewrite_now(
        self, request: Request, decision: Decision, cap: int | None
    ) -> Response | None:
        """The rewrite's answer when the link below has the safe host's ready (the cache link
        notes the safe host's entry for the answer memo: the bytes copied from it)."""
        resolved = self.next.resolve_now(self._target(request, decision))
        return None if resolved is None else self._rewritten(request.query, decision, cap, resolved)

    @staticmethod
    def _target(request: Request, decision: Decision) -> Request:
        """The same question for the safe host (`decision.target`)."""
        assert decision.target is not None
        query = request.query
        target_wire = names.text_to_wire(decision.target)
        target = dataclasses.replace(
            query,
            qname=decision.target,
            qname_wire=target_wire,
            key=wire.question_key(
                target_wire,
                query.qtype,
                query.qclass,
                dnssec_ok=query.dnssec_ok,
                flags=query.flags,
            ),
        )
        return dataclasses.replace(request, query=target)

    def _rewritten(
        self, query: wire.Query, decision: Decision, cap: int | None, resolved: Response
    ) -> Response:
        """ "<name> CNAME <safe host>" and the safe host's records, as `resolved` has them."""
        assert decision.target is not None
        ok = resolved.kind is not Kind.FAILED and resolved.answer.rcode == wire.NOERROR
        ttl = cap if cap is not None else 300
        copied = resolved.answer if ok else None
        # The same question and safe-host answer (its TTLs change each second) make the same
        # bytes: kept, since building them goes through dnslib (finish() sets id and spelling).
        key = (query.key, decision.target, ttl, None if copied is None else copied.wire)
        answer = self._rewrites.get(key)
        if answer is None:
            answer = rich.cname_answer(query, decision.target, copied, ttl)
            self._rewrites.remember(key, answer)
        return Response(
            Kind.REWRITTEN,
            answer,
            reason=_reason(decision),
            ttl_cap=cap,
            upstream=resolved.upstream,
            rule="safesearch",
            mode="cname",
        )


def _reason(decision: Decision) -> str:
    parts = [decision.reason, f"profile {decision.profile}"]
    if decision.rule:
        parts.append(f"rule {decision.rule}")
    return "; ".join(parts)
