"""The pure parts of `scripts/lists_eval.py`: the Vietnamese-subset rule, the Markdown table,
the hosts of a Markdown page's links and the v2fly list DSL. No I/O except `v2fly_names`,
which reads the files of one v2fly data directory.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

# Vietnamese words and brand shapes that mark a name as aimed at Vietnamese users, when it is
# not under .vn. Adult: phim sex (sex film), sex viet, vlxx (a well-known site family), phim
# heo, clip sex, gai goi (call girls), sex hay. Gambling: nha cai (bookmaker), tai xiu
# (sic bo), xo so (lottery), no hu (slot jackpots), game bai (card games), soi keo / ty le keo
# / keo nha cai / keo bong (betting odds), danh bai / danh de (card and number betting).
VN_TOKENS = (
    "phimsex", "sexviet", "sexvn", "vlxx", "phimheo", "clipsex", "gaigoi", "sexhay",
    "nhacai", "taixiu", "xoso", "nohu", "gamebai", "soikeo", "tylekeo", "keonha", "keobong",
    "danhbai", "danhde",
)  # fmt: skip
# Bookmaker brand shapes of the Vietnamese market, matched against the registrable label
# (the label before the public suffix): letters then 88 (fb88, hi88, new88, jun88, vn88),
# digits then bet (789bet, 188bet), a short letters-and-digit prefix then bet (f8bet, 8xbet),
# and ku/sh + bet (kubet, shbet), each optionally followed by a few letters or digits.
_BET_LABEL = re.compile(
    r"(?:[a-z]{1,5}88|\d{2,3}bet|[a-z]?\d[a-z]?bet|kubet|shbet)(?:[a-z]{0,3}|\d{0,3})"
)


def is_vietnamese(name: str, registrable: Callable[[str], str]) -> bool:
    """Whether a normalised name belongs to the Vietnamese subset of an evaluation group.

    The rule: the name is under `.vn`, or it holds one of VN_TOKENS anywhere (hyphens
    ignored), or its registrable label has a Vietnamese bookmaker's brand shape (_BET_LABEL).
    `registrable` is `datasplit.registrable`, passed in so this module stays pure.
    """
    if name == "vn" or name.endswith(".vn"):
        return True
    flat = name.replace("-", "")
    if any(token in flat for token in VN_TOKENS):
        return True
    label = registrable(name).split(".", 1)[0].replace("-", "")
    return _BET_LABEL.fullmatch(label) is not None


_LINK = re.compile(r"https://([A-Za-z0-9.-]+)(?::\d+)?(?=[/)\s?#>\]]|$)")


def link_hosts(markdown: str) -> list[str]:
    """The hosts of every https:// link in a Markdown text, lower-cased, in order, once each."""
    hosts = (match.group(1).lower().rstrip(".") for match in _LINK.finditer(markdown))
    return list(dict.fromkeys(host for host in hosts if "." in host))


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _numeric(text: str) -> bool:
    return bool(re.fullmatch(r"[-+]?[\d,.]+ ?(?:%|[kKMG]?B|s)?|—", text))


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub Markdown table; columns whose cells are all figures are right-aligned."""
    body = [[_cell(value) for value in row] for row in rows]
    for row in body:
        if len(row) != len(headers):
            raise ValueError(f"row {row!r} has {len(row)} cells for {len(headers)} headers")
    right = [bool(body) and all(_numeric(row[i]) for row in body) for i in range(len(headers))]
    lines = [
        "| " + " | ".join(_cell(h) for h in headers) + " |",
        "|" + "|".join("---:" if r else "---" for r in right) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def percent(part: int, whole: int) -> str:
    """`part` of `whole` as a percentage with one decimal ("—" when `whole` is 0)."""
    return f"{100 * part / whole:.1f}%" if whole else "—"


def v2fly_rules(text: str) -> tuple[list[str], list[str]]:
    """(names, included files) of one v2fly data file; pattern rules are left out.

    `full:x`, `domain:x` and a bare `x` give x (the v2fly `full:` matches x alone, but a
    DNS blocklist lists names, so it counts as x here); `regexp:` and `keyword:` rules are
    patterns, not names; ` @attr` tags and `#` comments are dropped.
    """
    names: list[str] = []
    includes: list[str] = []
    for raw in text.splitlines():
        rule = raw.split("#", 1)[0].strip().split(" @", 1)[0].split()
        if not rule:
            continue
        kind, colon, value = rule[0].partition(":")
        if not colon:
            kind, value = "", kind
        if kind == "include":
            includes.append(value)
        elif kind in ("", "full", "domain") and value:
            names.append(value.lower())
    return names, includes


def v2fly_names(data: Path, start: str) -> list[str]:
    """Every name of a v2fly data file and of the files it includes, once each."""
    seen: set[str] = set()
    names: dict[str, None] = {}
    pending = [start]
    while pending:
        file = pending.pop()
        if file in seen or not (data / file).is_file():
            continue
        seen.add(file)
        found, includes = v2fly_rules((data / file).read_text(encoding="utf-8"))
        names.update(dict.fromkeys(found))
        pending.extend(includes)
    return list(names)
