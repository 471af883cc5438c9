"""`cache:` how many answers are kept, TTL clamps, serve-stale (RFC 8767) and prefetch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from filterdns.config.readers import (
    ConfigReader,
    Section,
    boolean_key,
    duration_key,
    ttl_key,
    whole_key,
)
from filterdns.config.walker import Node, join

MAX_CACHE_ENTRIES = 100_000_000
# 32,768 answers, about 12 MB of the server: every allowed name of the household workload of the
# bench (100,000 queries, 30,768 distinct allowed names) stays until its TTL ends, so the cache
# answers all the 62.0 % of the allowed queries that repeat a name (50,000, before: the same for
# 21 MB). Smaller caches lose hits: 20,000 answer 60.0 % the first time through the workload
# and 66.5 % of a second pass (so the bench's mix cost 1.55x the CPU per query), 10,000
# (Pi-hole's default) 52.8 % (bench/PROFILE.md, "Memory").
DEFAULT_MAX_ENTRIES = 32_768


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """`cache:` size, TTL clamps, serve-stale (RFC 8767) and prefetch."""

    max_entries: int = DEFAULT_MAX_ENTRIES
    serve_stale: float = 86400.0  # seconds expired data may still be served; 0 disables
    prefetch: bool = True
    min_ttl: int = 0
    max_ttl: int = 86400
    negative_max_ttl: int = 3600  # RFC 2308 suggests at most 1-3 hours for negative answers


def _check(r: ConfigReader, found: Mapping[str, Node], cache: CacheConfig) -> CacheConfig:
    """min_ttl may not exceed max_ttl."""
    if cache.min_ttl > cache.max_ttl:
        key = "min_ttl" if "min_ttl" in found else "max_ttl"
        message = f"min_ttl ({cache.min_ttl}s) is more than max_ttl ({cache.max_ttl}s)"
        r.problem(found[key], join("cache", key), message)
    return cache


SECTION = Section(
    "cache",
    CacheConfig,
    "Size, TTL clamps, serve-stale and prefetch",
    (
        whole_key("max_entries", 0, MAX_CACHE_ENTRIES,
                  "Answers kept in memory (about 380 bytes each); 0 turns the cache off"),
        duration_key("serve_stale", "How long after expiry an answer may still be served while "
                     "every upstream fails (RFC 8767); 0 turns it off"),
        boolean_key("prefetch", "Refresh popular names shortly before they expire"),
        ttl_key("min_ttl", "Shortest TTL of cached answers"),
        ttl_key("max_ttl", "Longest TTL of cached answers"),
        ttl_key("negative_max_ttl", "Longest time a negative answer is cached (RFC 2308)"),
    ),
    _check,
)  # fmt: skip
