"""The message ids of upstream UDP queries: random, from the system's source, drawn in batches."""

from __future__ import annotations

import collections
import itertools

from filterdns.dns.udpsockets import IDS_PER_DRAW, RandomIds


def test_ids_cover_the_whole_range_without_a_pattern() -> None:
    ids = RandomIds()
    drawn = [ids.next() for _ in range(40 * IDS_PER_DRAW)]
    assert all(0 <= one <= 65535 for one in drawn)
    assert len(set(drawn)) > 0.9 * len(drawn)  # 10,240 of 65,536: few repeats by chance
    assert max(drawn) > 60000 and min(drawn) < 5000
    high_bytes = collections.Counter(one >> 8 for one in drawn)
    assert len(high_bytes) == 256  # every high byte turns up: not a counter, not clustered
    steps = {b - a for a, b in itertools.pairwise(drawn)}
    assert len(steps) > 0.9 * len(drawn)  # no fixed stride between one id and the next


def test_two_sources_do_not_repeat_each_other() -> None:
    first, second = RandomIds(), RandomIds()
    assert [first.next() for _ in range(64)] != [second.next() for _ in range(64)]
