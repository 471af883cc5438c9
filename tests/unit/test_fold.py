"""Repeated lookups folded into one row with a count, as the log's writer takes them."""

from __future__ import annotations

from collections import deque

import pytest

from filterdns.querylog.fold import take
from filterdns.querylog.rows import LogRecord

T0 = 1_700_000_000.0  # a whole second, and a whole minute


def lookup(ts: float, **changes: object) -> LogRecord:
    record = LogRecord(
        ts=ts, client="192.0.2.10", client_name="minh-tablet", profile="minh",
        name="casino.example", qtype="A", kind="blocked", category="gambling",
        rule="age band 9-12", reason="gambling for profile minh", source="shipped:gambling.txt",
        response="nxdomain",
    )  # fmt: skip
    return record._replace(**changes)


def folded(records: list[LogRecord], window: float = 1.0, limit: int = 500) -> list[tuple]:  # type: ignore[type-arg]
    """(ts, name, qtype, client, hits) of each row the writer stores."""
    rows, lookups = take(deque(records), limit, window)
    assert lookups == len(records)  # every lookup is in a row
    return [(r[0], r[4], r[5], r[1], r[-1]) for r in rows]


NAME = "casino.example"


@pytest.mark.parametrize(
    ("records", "window", "expected"),
    [
        pytest.param(
            [lookup(T0 + 0.1), lookup(T0 + 0.5), lookup(T0 + 0.99)], 1.0,
            [(T0 + 0.1, NAME, "A", "192.0.2.10", 3)], id="three-in-a-second-one-row",
        ),
        pytest.param(
            [lookup(T0 + 0.9), lookup(T0 + 1.1)], 1.0,
            [(T0 + 0.9, NAME, "A", "192.0.2.10", 1), (T0 + 1.1, NAME, "A", "192.0.2.10", 1)],
            id="across-the-second-two-rows",
        ),
        pytest.param(
            [lookup(T0), lookup(T0 + 0.1, qtype="AAAA"), lookup(T0 + 0.2, qtype="HTTPS"),
             lookup(T0 + 0.3)], 1.0,
            [(T0, NAME, "A", "192.0.2.10", 2), (T0 + 0.1, NAME, "AAAA", "192.0.2.10", 1),
             (T0 + 0.2, NAME, "HTTPS", "192.0.2.10", 1)],
            id="each-type-its-row",
        ),
        pytest.param(
            [lookup(T0), lookup(T0 + 0.1, client="192.0.2.11"), lookup(T0 + 0.2)], 1.0,
            [(T0, NAME, "A", "192.0.2.10", 2), (T0 + 0.1, NAME, "A", "192.0.2.11", 1)],
            id="each-client-its-row",
        ),
        pytest.param(
            [lookup(T0), lookup(T0 + 0.1, name="bet.example"), lookup(T0 + 0.2)], 1.0,
            [(T0, NAME, "A", "192.0.2.10", 2), (T0 + 0.1, "bet.example", "A", "192.0.2.10", 1)],
            id="each-name-its-row",
        ),
        pytest.param(
            [lookup(T0), lookup(T0 + 0.1)], 0.0,
            [(T0, NAME, "A", "192.0.2.10", 1), (T0 + 0.1, NAME, "A", "192.0.2.10", 1)],
            id="window-0-a-row-each",
        ),
        pytest.param(
            [lookup(T0 + 55), lookup(T0 + 59.9), lookup(T0 + 60)], 5.0,
            [(T0 + 55, NAME, "A", "192.0.2.10", 2), (T0 + 60, NAME, "A", "192.0.2.10", 1)],
            id="window-5s-ends-at-the-minute",
        ),
    ],
)  # fmt: skip
def test_repeats_within_the_window_are_one_row_with_their_count(
    records: list[LogRecord],
    window: float,
    expected: list[tuple],  # type: ignore[type-arg]
) -> None:
    assert folded(records, window) == expected


@pytest.mark.parametrize(
    ("field", "value"),
    [("profile", "lan"), ("kind", "resolved"), ("category", "adult"), ("rule", "profile block"),
     ("reason", "another sentence"), ("source", "custom.txt"), ("response", "null"),
     ("client_name", None)],
)  # fmt: skip
def test_a_lookup_that_differs_in_any_column_is_not_folded(field: str, value: object) -> None:
    rows, _ = take(deque([lookup(T0), lookup(T0 + 0.1, **{field: value})]), 500, 1.0)
    assert [r[-1] for r in rows] == [1, 1]


def test_a_batch_takes_at_most_its_lookups_and_leaves_the_rest_queued() -> None:
    queue = deque([lookup(T0, name=f"n{i % 3}.example") for i in range(9)] + [lookup(T0)])
    rows, lookups = take(queue, 4, 1.0)
    assert [(r[4], r[-1]) for r in rows] == [
        ("n0.example", 2), ("n1.example", 1), ("n2.example", 1),
    ]  # fmt: skip
    assert lookups == 4
    assert len(queue) == 6
    rows, lookups = take(queue, 500, 1.0)
    assert [(r[4], r[-1]) for r in rows] == [
        ("n1.example", 2), ("n2.example", 2), ("n0.example", 1), (NAME, 1),
    ]  # fmt: skip
    assert lookups == 6
    assert not queue


def test_lookups_out_of_time_order_are_still_each_counted_once() -> None:
    # Rows from worker processes interleave: a lookup of an earlier window after a later one.
    records = [lookup(T0 + 0.1), lookup(T0 + 1.2), lookup(T0 + 0.3), lookup(T0 + 1.4)]
    rows, lookups = take(deque(records), 500, 1.0)
    assert lookups == 4
    assert sum(r[-1] for r in rows) == 4
    assert all(int(r[0]) in (T0, T0 + 1) for r in rows)
