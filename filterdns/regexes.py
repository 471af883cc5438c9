"""Regex rules over names (`/…/` in adblock lists and in a profile's block / allow entries).

A rule is compiled once with Python `re`, case-insensitive, and searched (not anchored: write
`^` and `$`) in the normalised query name without its trailing dot, as adblock filters search
a URL. What a rule may cost is bounded when it is loaded, never by a timeout while answering:

* a pattern is at most `MAX_PATTERN` characters;
* a list keeps at most `MAX_PER_LIST` regex rules (the parser skips and counts the rest), so an
  unseen name costs at most that many searches per list holding regex rules;
* a pattern with an unbounded repeat inside another repeat (`(a+)+`, `(?:x*y)*`, `(.*a){3}`)
  or an alternation inside a repeat (`(a|ab)*`), the shapes that backtrack catastrophically,
  is refused, and so are back-references;
* the policy evaluates regex rules only for a name whose decision it does not remember (see
  `policy.state`): a repeated name costs a dict lookup, whatever the rules.

`bench/regex_cost.py` measures the cost per unseen name (about 0.3 µs per rule).
"""

from __future__ import annotations

import re
from re import _parser as sre  # type: ignore[attr-defined]
from typing import Any

MAX_PATTERN = 256
MAX_PER_LIST = 64
FLAGS = re.IGNORECASE

_UNBOUNDED: Any = sre.MAXREPEAT
_REPEATS: Any = (sre.MAX_REPEAT, sre.MIN_REPEAT)
_GROUPREFS: Any = (sre.GROUPREF, sre.GROUPREF_EXISTS)


def is_regex(text: str) -> bool:
    """Whether an entry is written as a regex: `/pattern/`."""
    return len(text) > 2 and text[0] == "/" and text[-1] == "/"


def compile_rule(pattern: str) -> re.Pattern[str]:
    """The compiled pattern (without its slashes); ValueError saying why it is refused."""
    if not pattern:
        raise ValueError("an empty regex matches every name")
    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"a regex of {len(pattern)} characters: at most {MAX_PATTERN}")
    try:
        compiled = re.compile(pattern, FLAGS)
        tree = sre.parse(pattern, FLAGS)
    except (re.error, RecursionError, OverflowError) as exc:
        raise ValueError(f"/{pattern}/ is not a valid regex: {exc}") from None
    problem = _risk(tree, nested=False)
    if problem is not None:
        raise ValueError(f"/{pattern}/ is refused: {problem}")
    return compiled


def _risk(tree: Any, *, nested: bool) -> str | None:
    """Why a parsed pattern could backtrack without bound, or None."""
    for op, value in tree:
        if op in _GROUPREFS:
            return "back-references have no cost bound"
        if op is sre.BRANCH and nested:
            return "an alternation inside a repeat (like (a|ab)*) can take exponential time"
        if op in _REPEATS:
            _low, high, body = value
            unbounded = high == _UNBOUNDED
            if unbounded and nested:
                return (
                    "a repeat inside a repeat (like (a+)+) can take exponential time; "
                    "write it without the nesting"
                )
            if (problem := _risk(body, nested=nested or high > 1)) is not None:
                return problem
            continue
        for part in value if isinstance(value, tuple | list) else ():
            for sub in part if isinstance(part, list) else (part,):
                if isinstance(sub, sre.SubPattern) and (found := _risk(sub, nested=nested)):
                    return found
    return None
