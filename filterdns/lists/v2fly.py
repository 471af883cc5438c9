"""The v2fly `domain-list-community` DSL: `data/<name>` files, one rule per line.

    # comment                  a comment (also after a rule)
    example.com                the name and its subdomains (as `domain:example.com`)
    domain:example.com         the same
    full:www.example.com       this exact name only
    include:other-file         every rule of `data/other-file` (optionally filtered by attributes)
    regexp:^ad[0-9]+\\.x\\.com$  a regular expression over names
    keyword:porn               any name containing the word
    example.com @ads @cn       a rule tagged with attributes

A DNS filter's index blocks a listed name and all its subdomains, so `full:` names are taken as
names too (a `full:` rule blocks a little more than v2fly means). `regexp:` and `keyword:` rules
have no place in a name index: the generic parser skips them as `pattern_rule`. `include:` lines
name another file of the same directory; only a reader that knows the directory (the build script)
can follow them, so the generic parser counts them as `v2fly_include`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

KINDS = ("domain", "full", "include", "regexp", "keyword")
"""The rule prefixes of the DSL; a line without one is a `domain` rule."""

PATTERN_KINDS = frozenset({"regexp", "keyword"})


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of a v2fly data file: its kind, its value and its `@attributes` (without @)."""

    kind: str
    value: str
    attrs: tuple[str, ...] = ()


def parse_rule(line: str) -> Rule | None:
    """The rule of one line, or None for a blank or comment line."""
    text = line.split("#", 1)[0].strip()
    if not text:
        return None
    fields = text.split()
    head = fields[0]
    attrs = tuple(f[1:] for f in fields[1:] if f.startswith("@") and len(f) > 1)
    kind, colon, value = head.partition(":")
    if colon and kind in KINDS:
        return Rule(kind, value.strip(), attrs)
    return Rule("domain", head, attrs)


def split_attrs(fields: list[str]) -> list[str] | None:
    """A split line without its trailing `@attr` fields, or None when it has none to strip."""
    rest = list(fields)
    while len(rest) > 1 and rest[-1].startswith("@") and len(rest[-1]) > 1:
        rest.pop()
    return rest if len(rest) < len(fields) else None


def iter_rules(path: Path) -> Iterator[Rule]:
    """The rules of one v2fly data file, in order."""
    with path.open(encoding="utf-8", errors="replace") as stream:
        for line in stream:
            rule = parse_rule(line)
            if rule is not None:
                yield rule


def wanted(rule: Rule, exclude: frozenset[str]) -> bool:
    """Whether a rule carries none of the `exclude` attributes."""
    return not exclude.intersection(rule.attrs)


def include_filter(rule: Rule) -> tuple[frozenset[str], frozenset[str]]:
    """(required, refused) attributes of an `include:name @a @-b` rule."""
    need = frozenset(a for a in rule.attrs if not a.startswith("-"))
    refuse = frozenset(a[1:] for a in rule.attrs if a.startswith("-"))
    return need, refuse


def resolve(
    directory: Path,
    name: str,
    exclude: frozenset[str] = frozenset(),
    _seen: frozenset[str] = frozenset(),
) -> Iterator[Rule]:
    """Every rule of `directory/name` with its includes followed (cycles cut), minus rules that
    carry an `exclude` attribute; `include:` rules themselves are not yielded."""
    if name in _seen:
        return
    seen = _seen | {name}
    for rule in iter_rules(directory / name):
        if rule.kind != "include":
            if wanted(rule, exclude):
                yield rule
            continue
        need, refuse = include_filter(rule)
        for inner in resolve(directory, rule.value, exclude, seen):
            if need and not need.issubset(inner.attrs):
                continue
            if refuse.intersection(inner.attrs):
                continue
            yield inner
