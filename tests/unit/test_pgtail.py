"""`tail`'s follower of a PostgreSQL log, on a fake connection and a fixed clock: rows that
instances commit out of order are shown once each, the window read again, and an outage said
once each way with back-off."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import psycopg
import pytest

from filterdns.querylog.pgtail import HOLD, OVERLAP, RETRY_FIRST, RETRY_MAX, Overlap, PgTailReader
from filterdns.querylog.tail import TailRow

T0 = 1_800_000_000.0


def row(id_: int, ts: float, instance: str = "a", profile: str = "minh") -> TailRow:
    return TailRow(id_, ts, "10.0.0.5", None, profile, f"n{id_}.example", "A", None, None,
                   "blocked", 1, instance)  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class FakeDb:
    """The committed rows of `queries` (as tuples), the floors asked for, and an outage switch."""

    def __init__(self) -> None:
        self.rows: list[TailRow] = []
        self.floors: list[float] = []
        self.down = False
        self.connects = 0

    def connect(self, url: str) -> FakeDb:
        self.connects += 1
        if self.down:
            raise psycopg.OperationalError("connection refused")
        return self

    def execute(self, query: str, params: Sequence[object]) -> FakeDb:
        if self.down:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        floor = float(params[0])  # type: ignore[arg-type]
        self.floors.append(floor)
        filters = set(params[1:])  # the instance and the profile asked for, in either order
        self._found = [r for r in self.rows if r.ts >= floor and filters <= {r.instance, r.profile}]
        return self

    def fetchall(self) -> list[tuple[object, ...]]:
        return [
            (r.id, r.ts, r.client, r.client_name, r.profile, r.name, r.qtype, r.category, r.rule,
             r.reason, r.hits, r.instance)
            for r in self._found
        ]  # fmt: skip

    def close(self) -> None:
        pass


def reader(db: FakeDb, clock: Clock, **options: object) -> tuple[PgTailReader, list[str]]:
    said: list[str] = []
    made = PgTailReader("postgresql://u@db.example/log?sslmode=require", notice=said.append,
                        clock=clock, connect=db.connect, **options)  # type: ignore[arg-type]  # fmt: skip
    return made, said


@pytest.mark.parametrize(
    ("batches", "shown"),
    [
        pytest.param([[row(1, T0 + 1)], [row(1, T0 + 1), row(2, T0 + 2)]], [[1], [2]],
                     id="a row read again in the window is not shown again"),
        pytest.param([[row(5, T0 + 5, "b")], [row(5, T0 + 5, "b"), row(3, T0 + 3, "a")]],
                     [[5], [3]], id="a lower id committed late by another instance is shown"),
        pytest.param([[row(2, T0 + 2), row(1, T0 + 1)]], [[1, 2]],
                     id="one read's rows come by time then id"),
        pytest.param([[row(7, T0 + 4), row(6, T0 + 4)]], [[6, 7]],
                     id="the same time: by id"),
    ],
)  # fmt: skip
def test_overlap_shows_each_row_once(batches: list[list[TailRow]], shown: list[list[int]]) -> None:
    window = Overlap(T0 - OVERLAP)
    got = [[r.id for r in window.take(batch, T0 + 10)] for batch in batches]
    assert got == shown


def test_overlap_moves_on_and_forgets_rows_behind_it() -> None:
    window = Overlap(T0 - OVERLAP)
    window.take([row(1, T0), row(2, T0 + 100)], T0 + 100)
    assert window.floor == T0 + 100 - OVERLAP
    assert set(window.seen) == {2}  # row 1 is behind the window: it is never read again
    window.take([], T0 + 50)  # the clock went back: the window does not
    assert window.floor == T0 + 100 - OVERLAP


def test_a_held_window_stays_before_the_outage_then_moves_on() -> None:
    window = Overlap(T0 - OVERLAP)
    window.hold(T0)
    window.take([row(1, T0 - 500)], T0 + HOLD - 1)
    assert window.floor == T0 - OVERLAP
    window.take([], T0 + HOLD)
    assert window.floor == T0 + HOLD - OVERLAP
    assert window.seen == {}


def test_rows_there_before_tail_started_are_not_shown() -> None:
    db, clock = FakeDb(), Clock()
    db.rows = [row(1, T0 - 5), row(2, T0 - 1)]
    tail, _ = reader(db, clock)
    clock.now += 1
    db.rows.append(row(3, T0 + 0.5, "b"))
    assert [(r.id, r.instance) for r in tail.poll()] == [(3, "b")]
    assert tail.poll() == []


def test_a_row_committed_late_is_shown_once_after_newer_ones() -> None:
    db, clock = FakeDb(), Clock()
    tail, _ = reader(db, clock)
    clock.now = T0 + 10
    db.rows.append(row(20, T0 + 9, "b"))
    assert [r.id for r in tail.poll()] == [20]
    clock.now = T0 + 11
    db.rows.append(row(12, T0 + 2, "a"))  # a's batch: older lookups, committed after b's
    assert [r.id for r in tail.poll()] == [12]
    clock.now = T0 + 12
    assert tail.poll() == []
    assert db.floors[-1] == T0 + 11 - OVERLAP


def test_the_filters_go_to_the_database() -> None:
    db, clock = FakeDb(), Clock()
    tail, _ = reader(db, clock, profile="minh", instance="b")
    db.rows += [row(1, T0, "a"), row(2, T0, "b"), row(3, T0, "b", profile="lan")]
    assert [r.id for r in tail.poll()] == [2]


def test_an_outage_is_said_once_each_way_with_back_off_and_nothing_lost() -> None:
    db, clock = FakeDb(), Clock()
    tail, said = reader(db, clock)
    stop = threading.Event()
    waits: list[float] = []
    stop.wait = lambda timeout=None: waits.append(float(timeout or 0)) or False  # type: ignore[method-assign]
    polls = tail.follow(stop, 0.5)
    clock.now = T0 + 1
    db.rows.append(row(1, T0 + 1))
    assert [r.id for r in next(polls)] == [1]
    db.down = True
    for _ in range(8):
        clock.now += 10
        assert next(polls) == []
    assert len(said) == 1
    assert said[0].startswith("lost the log database postgresql://u@db.example/log: ")
    assert "sslmode" not in said[0]
    db.down = False
    db.rows.append(row(2, T0 + 5, "b"))  # kept queued by b through the outage, sent now
    clock.now += 10
    assert [r.id for r in next(polls)] == [2]
    assert said[1:] == ["reading the log database postgresql://u@db.example/log again"]
    next(polls)
    assert waits == [0.5, RETRY_FIRST, 2.0, 4.0, 8.0, 16.0, RETRY_MAX, RETRY_MAX, RETRY_MAX, 0.5]
    assert db.connects > 1
