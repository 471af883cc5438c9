"""The held-aside split of the list data, by registrable domain, shared by training and evaluation.

Every name of ../shared/data is put on one side by its registrable domain (`registrable`), so
`www.example.com` and `cdn.example.com` never land on different sides: a model or a list built
from the training side is measured on sites it has never seen, not on other names of the same
site. The side is a stable hash of the registrable domain (blake2b, not Python's `hash`, which
changes between runs): about one domain in five is held aside.

    registrable("a.b.example.com.vn") == "example.com.vn"
    held_aside("example.com")  -> True or False, the same on every machine and every run
"""

from __future__ import annotations

import hashlib

HELD_ASIDE_PERCENT = 20

# Second-level labels under which country-code registries sell names (example.com.vn,
# example.co.uk, school.edu.vn, agency.gov.au, ...). A heuristic rather than the Public Suffix
# List: the project ships no copy of that list, and the split needs only to keep a site's names
# together.
_SECOND_LEVEL = frozenset(
    {
        "ac", "co", "com", "edu", "gov", "gob", "govt", "int", "ltd", "mil", "net", "nic", "nom",
        "or", "org", "plc", "sch", "info", "biz", "name", "pro", "health", "ne", "go", "in",
        "web", "firm", "gen", "id", "me", "tv", "blog",
    }
)  # fmt: skip


def registrable(name: str) -> str:
    """The registrable domain of a normalised name (lower case, no trailing dot)."""
    labels = name.split(".")
    if len(labels) <= 2:
        return name
    if len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def bucket(domain: str) -> int:
    """A stable number in [0, 100) for a registrable domain."""
    digest = hashlib.blake2b(domain.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 100


def held_aside(name: str) -> bool:
    """Whether the name's registrable domain is on the held-aside (evaluation) side."""
    return bucket(registrable(name)) < HELD_ASIDE_PERCENT
