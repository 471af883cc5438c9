"""Adblock regex rules in a list (`/pattern/`, `/pattern/$options`, `@@/pattern/`).

The parser (`lists.parse`) hands the body of a rule starting with `/` to `regex_rule`, and each
regex it finds to `keep_regex`, which checks it (`filterdns.regexes`: length, shape, at most
`MAX_PER_LIST` per list) and keeps it on the source's report for the index builder. A refused
rule is counted as `bad_regex` or `regex_limit` with its line; nothing here is ever fatal.
"""

from __future__ import annotations

from filterdns.lists.sourcereport import SourceReport
from filterdns.regexes import MAX_PER_LIST, compile_rule


def regex_rule(body: str) -> tuple[str, bool] | None:
    """(pattern, True) for a regex rule, (skip reason, False) for one DNS cannot use, None
    when `body` (starting with `/`) is no regex rule at all."""
    end = body.rfind("/")
    options = body[end + 1 :]
    if end < 2 or (options and options[0] != "$"):
        return None
    if "badfilter" in (o.strip().lower() for o in options[1:].split(",")):
        return "unsupported_option", False
    pattern = body[1:end]
    if "/" in pattern:  # a URL path: never part of a name
        return "url_rule", False
    return pattern, True


def keep_regex(report: SourceReport, pattern: str, allow: bool, number: int, line: str) -> bool:
    """Keep a regex rule on the report; False (counted as skipped) when refused or one too many."""
    if len(report.regexes) >= MAX_PER_LIST:
        report.skip("regex_limit", number, line)
        return False
    try:
        compile_rule(pattern)
    except ValueError:
        report.skip("bad_regex", number, line)
        return False
    report.regexes.append((pattern, allow, number))
    report.regex_entries += 1
    return True
