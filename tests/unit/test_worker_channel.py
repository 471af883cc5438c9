"""What a worker hands the main process: log rows and metered lookups in batches over its
channel, never waiting; what cannot be handed over is counted, and the count arrives later."""

from __future__ import annotations

import asyncio
import socket
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from filterdns.app import channel as channel_module
from filterdns.app.channel import Channel, record_of, row_of
from filterdns.app.worker import BATCH_SIZE, ForwardLog, SharedMeter
from filterdns.app.workers import usage_totals
from filterdns.config import LogConfig
from filterdns.config.budgets import BudgetConfig
from filterdns.policy.budgets import BudgetMeter, day_of
from filterdns.querylog.store import LogRecord

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
GAMES = BudgetConfig(name="games", categories=("games",), per_day=3600)


def record(name: str, kind: str = "blocked") -> LogRecord:
    return LogRecord(
        ts=1_700_000_000.5, client="192.168.1.20", client_name="tablet", profile="minh",
        name=name, qtype="AAAA", kind=kind, category="gambling", rule="age band 9-12",
        reason="gambling is blocked", source="shipped:gambling.txt:12", response="nxdomain",
    )  # fmt: skip


class FakeChannel:
    """A channel whose other end reads (or not, while `full`)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.full = False

    def send(self, kind: str, payload: Any) -> bool:
        if self.full:
            return False
        self.sent.append((kind, payload))
        return True

    async def drain(self) -> None:
        return None


@pytest.fixture
def forward(tmp_path: Any) -> tuple[ForwardLog, FakeChannel]:
    fake = FakeChannel()
    log = ForwardLog(LogConfig(database=tmp_path / "unused.db"), fake)  # type: ignore[arg-type]
    return log, fake


async def test_rows_cross_a_real_channel_unchanged() -> None:
    ours, theirs = socket.socketpair()
    sender, receiver = await Channel.over(ours), await Channel.over(theirs)
    rows = [record("casino.example"), record("news.example", kind="cached")]
    assert sender.send("rows", ([row_of(r) for r in rows], [], 0))
    kind, (got, lookups, lost) = await receiver.receive()  # type: ignore[misc]
    assert (kind, [record_of(row) for row in got], lookups, lost) == ("rows", rows, [], 0)
    sender.close()
    assert await receiver.receive() is None  # the other end closed: the worker stops
    receiver.close()


async def test_a_channel_nobody_reads_refuses_instead_of_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(channel_module, "MAX_BUFFERED", 64 * 1024)
    ours, theirs = socket.socketpair()
    sender = await Channel.over(ours)
    payload = b"x" * 16 * 1024
    sent = 0
    while sender.send("rows", payload):  # the kernel's buffer, then the transport's, fill up
        sent += 1
        assert sent < 10_000, "send never refused"
    assert sent > 4
    sender.close()
    theirs.close()


@pytest.mark.parametrize(
    ("rows", "batches"),
    [
        pytest.param(1, 0, id="one-row-waits-for-the-interval"),
        pytest.param(BATCH_SIZE - 1, 0, id="below-a-batch-waits"),
        pytest.param(BATCH_SIZE, 1, id="a-full-batch-leaves-at-once"),
    ],
)
async def test_rows_leave_in_batches(
    forward: tuple[ForwardLog, FakeChannel], rows: int, batches: int
) -> None:
    log, fake = forward
    for n in range(rows):
        assert log.put(record(f"n{n}.example"))
    assert len(fake.sent) == batches
    await asyncio.sleep(0.15)  # the flush interval (0.1 s): the rest leaves too
    assert sum(len(payload[0]) for _kind, payload in fake.sent) == rows


async def test_rows_the_main_process_cannot_take_are_counted_and_reported_with_the_next(
    forward: tuple[ForwardLog, FakeChannel],
) -> None:
    log, fake = forward
    fake.full = True
    for n in range(3):
        assert log.put(record(f"n{n}.example"))  # never refused, never waits
    log.flush()
    assert log.stats.dropped == 3 and fake.sent == []
    fake.full = False
    log.put(record("after.example"))
    log.flush()
    [(kind, (rows, _lookups, lost))] = fake.sent
    assert (kind, len(rows), lost) == ("rows", 1, 3)
    assert log.stats.written == 1


async def test_a_metered_lookup_goes_to_the_main_meter_and_its_totals_come_back(
    forward: tuple[ForwardLog, FakeChannel],
) -> None:
    log, fake = forward
    meter = SharedMeter(log)
    main = BudgetMeter()
    now = 1_700_000_000.0
    for name in ("play.example", "cdn.play.example"):  # two names in a minute: one minute
        meter.record("minh", [GAMES], name, now, TZ)
    assert meter.used == {}  # the worker counts nothing itself
    log.flush()
    [(_kind, (_rows, lookups, _lost))] = fake.sent
    for profile, budgets, name, at, tz in lookups:
        main.record(profile, budgets, name, at, tz)
    version = meter.version
    meter.share(usage_totals(main))
    day = day_of(now, TZ)
    assert main.used == {("minh", "games", day.isoformat()): 1}
    assert meter.minutes("minh", "games", day) == 1
    assert meter.version > version  # the worker's policy looks at the budgets again
