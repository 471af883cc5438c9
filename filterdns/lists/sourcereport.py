"""What parsing one list source found: counts, skip reasons with their first examples.

`lists.parse` fills a `SourceReport` per source; `lists.validate` judges it; `lists stats` and
the index's saved reports show it.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from dataclasses import dataclass, field

SKIP_REASONS: dict[str, str] = {
    "ip_address": "an IP address where a name was expected (also a name whose last label is "
    "all digits, which resolvers read as an address)",
    "local_name": "a hosts-file local name: localhost, broadcasthost, local, ip6-*, 0.0.0.0",
    "single_label": "a name without a dot (would block a whole TLD or an intranet name)",
    "empty_label": "an empty name or an empty label (`a..b`)",
    "label_too_long": "a label longer than 63 characters",
    "name_too_long": "a name longer than 253 characters",
    "bad_character": "a character other than a-z 0-9 - _ (after IDNA), or undecodable bytes",
    "bad_idna": "a non-ASCII name the IDNA codec rejects",
    "cosmetic_rule": "an adblock element-hiding, scriptlet or HTML rule (##, #@#, #?#, #$#, $$)",
    "url_rule": "an adblock rule with a path (a regex holding `/` too), a `|` URL anchor or a `*` "
    "inside the name",
    "bad_regex": "an adblock regex rule `/…/` that is not a valid regex, is longer than 256 "
    "characters, or could backtrack without bound (nested repeats, back-references)",
    "regex_limit": "a regex rule past the 64 one list may hold (each costs every unseen name a "
    "search)",
    "unsupported_option": "an adblock `$badfilter` rule (it disables another rule, blocks nothing)",
    "pattern_rule": "a v2fly `regexp:` or `keyword:` rule (a pattern, not a name)",
    "v2fly_include": "a v2fly `include:` rule (another file of the same directory; the build "
    "script follows it, a list source alone cannot)",
    "unrecognised": "a line in no known format",
}
"""Every reason a line (or one name of a hosts / dnsmasq line) is skipped, with what it means."""

INVALID_NAME_REASONS = frozenset(
    {
        "ip_address",
        "single_label",
        "empty_label",
        "label_too_long",
        "name_too_long",
        "bad_character",
        "bad_idna",
    }
)
"""The reasons `normalize_domain` can give (a subset of SKIP_REASONS)."""

INVALID_LINE_REASONS = INVALID_NAME_REASONS - {"ip_address"} | {"unrecognised"}
"""The reasons that make a line invalid: not a name in any format. The others (addresses in a
domains list, hosts-file local names, adblock rules DNS cannot apply) are valid lines of a list,
merely of no use to a DNS filter."""

EXAMPLES_PER_REASON = 3
EXAMPLE_WIDTH = 80


@dataclass
class SourceReport:
    """What parsing one list source found: counts, skip reasons and their first examples."""

    source: str
    lines: int = 0
    entries: int = 0
    allow_entries: int = 0
    duplicates: int = 0
    hosts_from_urls: int = 0
    skipped: collections.Counter[str] = field(default_factory=collections.Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    content_lines: int = 0  # neither blank nor a comment
    invalid_lines: int = 0  # content lines that yielded nothing, for an INVALID_LINE_REASONS
    undecodable_lines: int = 0  # not UTF-8
    nul_lines: int = 0  # holding a NUL byte: not text
    regex_entries: int = 0  # regex rules kept (also counted in entries / allow_entries)
    # The regex rules kept, for the index builder: (pattern, is_allow, line). Not saved.
    regexes: list[tuple[str, bool, int]] = field(default_factory=list, repr=False, compare=False)

    def skip(self, reason: str, line: int, text: str) -> None:
        """Count one skip for `reason`; keep "source:line: text" among its first examples."""
        self.skipped[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < EXAMPLES_PER_REASON:
            text = text.strip()
            if len(text) > EXAMPLE_WIDTH:
                text = text[: EXAMPLE_WIDTH - 3] + "..."
            example = f"{self.source}:{line}: {text}"
            if not shown or shown[-1] != example:  # one example per line
                shown.append(example)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (reasons sorted by name)."""
        return {
            "source": self.source,
            "lines": self.lines,
            "entries": self.entries,
            "allow_entries": self.allow_entries,
            "duplicates": self.duplicates,
            "hosts_from_urls": self.hosts_from_urls,
            "skipped": {k: self.skipped[k] for k in sorted(self.skipped)},
            "examples": {k: list(self.examples[k]) for k in sorted(self.examples)},
            "content_lines": self.content_lines,
            "invalid_lines": self.invalid_lines,
            "undecodable_lines": self.undecodable_lines,
            "nul_lines": self.nul_lines,
            "regex_entries": self.regex_entries,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> SourceReport:
        """The inverse of to_json (other keys are ignored, ill-typed values read as empty)."""

        def count(key: str) -> int:
            value = data.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else 0

        report = cls(
            source=str(data.get("source", "")),
            lines=count("lines"),
            entries=count("entries"),
            allow_entries=count("allow_entries"),
            duplicates=count("duplicates"),
            hosts_from_urls=count("hosts_from_urls"),
            content_lines=count("content_lines"),
            invalid_lines=count("invalid_lines"),
            undecodable_lines=count("undecodable_lines"),
            nul_lines=count("nul_lines"),
            regex_entries=count("regex_entries"),
        )
        skipped = data.get("skipped")
        if isinstance(skipped, dict):
            for reason, n in skipped.items():
                if isinstance(reason, str) and isinstance(n, int) and not isinstance(n, bool):
                    report.skipped[reason] = n
        examples = data.get("examples")
        if isinstance(examples, dict):
            for reason, shown in examples.items():
                if isinstance(reason, str) and isinstance(shown, list):
                    report.examples[reason] = [str(x) for x in shown][:EXAMPLES_PER_REASON]
        return report
