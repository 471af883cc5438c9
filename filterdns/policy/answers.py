"""Step 8 of the decision order: what the answer of an allowed name leads to.

An allowed name can still take a child somewhere its profile blocks: its answer may be a CNAME
(or DNAME, or SVCB/HTTPS alias) to a blocked name ("CNAME cloaking": a harmless-looking name
pointing at an adult site, a casino or a DNS over HTTPS resolver), or a public name may point
into the local network (DNS rebinding: a web page talking to the router or to 127.0.0.1).
`AnswerJudge.judge` decides both for one profile, from what `replies.analyse` noted when the answer
arrived (`Answer.targets`, `Answer.private`); the policy link asks it for every answer it lets
through, cached or not, and `filterdns explain --resolve` asks the same.

Each target is decided with `Policy.verdict` for the asking profile (steps 3-6: allow lists,
bypass names, `block: all`, categories, the profile's block list). A name the parent allowed
explicitly (step 3: allow list, grant, a schedule's allow list) is answered whatever it leads
to.
"""

from __future__ import annotations

from filterdns.config import Config
from filterdns.dns.wire import Answer
from filterdns.memo import Memo
from filterdns.policy.decisions import Policy
from filterdns.policy.values import Action, Decision

# Names that live on the local network whatever the upstreams say: their answers may hold
# private addresses. RFC 6761/6762/8375 and the suffixes home routers hand out; single-label
# names are local too.
LOCAL_SUFFIXES = (
    "localhost", "local", "lan", "home", "internal", "intranet", "corp", "private",
    "localdomain", "home.arpa", "in-addr.arpa", "ip6.arpa",
)  # fmt: skip
REBINDING = "rebinding"  # the category answers withheld by rebinding protection are logged with
MAX_REMEMBERED = 4096  # decisions made from answers, kept so blocked answers can be reused


class AnswerJudge:
    """Decides, for one profile, whether the answer of an allowed name may go out."""

    def __init__(self, config: Config, policy: Policy) -> None:
        self.policy = policy
        self.cname_inspection = config.blocking.cname_inspection
        self.rebinding_protection = config.blocking.rebinding_protection
        self.local_suffixes = frozenset(
            (*LOCAL_SUFFIXES, *config.blocking.rebinding_allow,
             *(suffix for suffix, _servers in config.upstreams.conditional))
        )  # fmt: skip
        # The names of `local_records:`: their private addresses are the point of them, and so
        # are those of an answer whose CNAME chain ends in one.
        self.local_names = policy.local.names
        # (profile, name, target) -> (the target's decision, the one made from it); the same
        # object comes back while the target's decision stands, so its blocked answer is reused.
        self._made: Memo[tuple[str, str, str], tuple[Decision | None, Decision]] = Memo(
            MAX_REMEMBERED
        )

    def judge(
        self,
        decision: Decision,
        name: str,
        answer: Answer,
        now: float,
        *,
        trace: list[str] | None = None,
    ) -> Decision | None:
        """The decision blocking `answer` to `name` (allowed by `decision`), or None when it may
        go out. `trace` (for `explain`) receives one line per check."""
        notes: list[str] = [] if trace is None else trace
        profile = decision.profile
        targets, private = answer.targets, answer.private
        if targets and self.cname_inspection and decision.step != 3:
            hit = self.policy.first_blocked(profile, targets, now)
            if hit is not None:
                position, found = hit
                notes.append(f"8. blocked: the answer leads to {targets[position]}; {found.reason}")
                return self._through(name, targets[: position + 1], found)
            notes.append(f"8. the answer leads to {', '.join(targets)}: none blocked for {profile}")
        elif targets:
            why = "it is allowed explicitly" if decision.step == 3 else "cname_inspection is off"
            notes.append(f"8. the answer leads to {', '.join(targets)} (not judged: {why})")
        if private and self.rebinding_protection:
            if not self.is_local(name) and not (targets and targets[-1] in self.local_names):
                notes.append(f"8. blocked: {name} is a public name answered with a private address")
                return self._rebinding(profile, name)
            notes.append(f"8. {name} is a local name: its private addresses are kept")
        return None

    def is_local(self, name: str) -> bool:
        """Whether `name` may resolve to private addresses: a single label, a local record, or
        under a local suffix, a conditional-forwarding suffix or `blocking.rebinding_allow`."""
        suffixes = self.local_suffixes
        if "." not in name or name in self.local_names:
            return True
        while True:
            if name in suffixes:
                return True
            dot = name.find(".")
            if dot < 0:
                return False
            name = name[dot + 1 :]

    def _through(self, name: str, chain: tuple[str, ...], found: Decision) -> Decision:
        """`name` blocked because its answer leads (through `chain`) to a name `found` blocks."""
        key = (found.profile, name, chain[-1])
        known = self._made.get(key)
        if known is not None and known[0] is found:
            return known[1]
        path = " -> ".join((name, *chain))
        decision = Decision(
            Action.BLOCK,
            found.profile,
            8,
            f"{found.reason}; reached through {path}",
            category=found.category,
            rule=found.rule,
            source=found.source,
            listed=found.listed,
        )
        self._remember(key, found, decision)
        return decision

    def _rebinding(self, profile: str, name: str) -> Decision:
        key = (profile, name, "")
        known = self._made.get(key)
        if known is not None:
            return known[1]
        decision = Decision(
            Action.NODATA,
            profile,
            8,
            f"rebinding protection: {name} was answered with a private address",
            category=REBINDING,
            rule="rebinding protection",
        )
        self._remember(key, None, decision)
        return decision

    def _remember(
        self, key: tuple[str, str, str], found: Decision | None, decision: Decision
    ) -> None:
        self._made.remember(key, (found, decision))
