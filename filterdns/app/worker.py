"""One worker process (`server.workers` > 1): answers DNS on sockets the main process bound.

A worker has its own chain (cache, policy, upstream transport) and follows what the main
process tells it over its channel (app.channel): the configuration a reload applied, the
fingerprint of the category index to map (the main process builds the index file; every worker
maps the same file), and the budget minutes counted so far. It reads the grants from the
database itself, as every server does, so a grant applies within the grants' poll interval.

What must be counted once goes to the main process in batches: the log rows (the main process
writes them and feeds the alerts from them) and each lookup a budget meters (the main process
keeps the one meter and sends back its totals). A worker never waits for the main process: a
batch it cannot hand over is dropped and counted, as the log's own drops are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from filterdns.app.channel import Channel, row_of
from filterdns.app.gauges import serving_gauges
from filterdns.config import Config, LogConfig
from filterdns.config.budgets import BudgetConfig
from filterdns.dns.server import DnsServer
from filterdns.dns.transport import Transport
from filterdns.lists import namemodel
from filterdns.lists.cachedir import INDEX_FILE, SHIPPED_INDEX_FILE
from filterdns.lists.index import DomainIndex
from filterdns.ops import collector
from filterdns.ops.metrics import Metrics
from filterdns.policy.budgets import BudgetMeter
from filterdns.policy.clients import ClientDirectory
from filterdns.policy.decisions import Policy
from filterdns.policy.grants import grant_store
from filterdns.policy.neighbors import Neighbours
from filterdns.querylog.alerts import Alerter
from filterdns.querylog.dbfile import DamagedError
from filterdns.querylog.store import LogRecord, QueryLog
from filterdns.resolvers.cache import CacheResolver
from filterdns.resolvers.chain import build_chain
from filterdns.resolvers.upstream import Outstanding

log = logging.getLogger("filterdns.worker")

FLUSH_INTERVAL = 0.1  # seconds a row waits for others before its batch leaves
BATCH_SIZE = 500  # rows that leave at once without waiting
INDEX_RETRY = 0.25  # seconds between two tries to map the index the main process announced
INDEX_WAIT = 120.0  # at start, how long to wait for that index before giving up
COUNTS_INTERVAL = 1.0  # seconds between two reports of the counts /metrics shows
Lookup = tuple[str, tuple[BudgetConfig, ...], str, float, ZoneInfo]


class ForwardLog(QueryLog):
    """The worker's query log: rows and metered lookups go to the main process in batches."""

    def __init__(self, config: LogConfig, channel: Channel) -> None:
        super().__init__(config)
        self.channel = channel
        self._batch: list[LogRecord] = []
        self._lookups: list[Lookup] = []
        self._lost = 0  # rows dropped since the last batch handed over
        self._timer: asyncio.TimerHandle | None = None

    def put(self, record: LogRecord) -> bool:
        """Queue one row for the main process without waiting."""
        if self._closing:
            self.stats.dropped += 1
            return False
        batch = self._batch
        batch.append(record)
        if len(batch) >= BATCH_SIZE:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_INTERVAL, self.flush)
        return True

    def lookup(self, entry: Lookup) -> None:
        """Queue one lookup a budget meters."""
        self._lookups.append(entry)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_INTERVAL, self.flush)

    def flush(self) -> None:
        """Hand the batch over now; dropped and counted when the channel is full or closed."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        rows, lookups = self._batch, self._lookups
        if not rows and not lookups and not self._lost:
            return
        self._batch, self._lookups = [], []
        if self.channel.send("rows", ([row_of(r) for r in rows], lookups, self._lost)):
            self._lost = 0
            self.stats.written += len(rows)
        else:
            self._lost += len(rows)
            self.stats.dropped += len(rows)

    async def start(self) -> None:
        """Nothing to open: the main process writes."""

    async def close(self) -> None:
        """Hand over what is left and stop accepting rows."""
        self.flush()
        self._closing = True
        await self.channel.drain()


class SharedMeter(BudgetMeter):
    """The worker's budget meter: lookups are counted by the main process's meter, whose
    totals come back through `share` (a budget spent there is spent here)."""

    def __init__(self, forward: ForwardLog) -> None:
        super().__init__()
        self.forward = forward

    def record(self, profile: str, budgets: Iterable[BudgetConfig], name: str, now: float,
               tz: ZoneInfo) -> None:  # fmt: skip
        """Send one metered lookup to the main process."""
        self.forward.lookup((profile, tuple(budgets), name, now, tz))


class Worker:
    """One worker's chain and server, kept in step with the main process."""

    def __init__(self, config: Config, channel: Channel, number: int) -> None:
        self.config = config
        self.channel = channel
        self.number = number
        self.transport = Transport()
        self.grants = grant_store(config.log)
        self.querylog = ForwardLog(config.log, channel)
        self.budgets = SharedMeter(self.querylog)
        self.index = DomainIndex.empty()
        self.wanted = ""  # the fingerprint of the index the main process serves
        self._index_changed = asyncio.Event()
        self._mapped = asyncio.Event()  # the index announced is mapped
        self.neighbours: Neighbours | None = None
        up = config.upstreams
        self.outstanding = Outstanding(up.max_outstanding, up.max_outstanding_per_server)
        self.metrics = Metrics()  # counted with server.metrics, added up by the main process
        self._assemble(config)
        self.server = DnsServer(self.chain.head, config.server)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def _assemble(self, config: Config, cache: CacheResolver | None = None) -> None:
        """The chain `config` decides, as App._assemble builds it (no alerts: the main process
        counts alerts from the rows it receives)."""
        if config.clients and self.neighbours is None:
            self.neighbours = Neighbours()
        self.directory = ClientDirectory(config.clients, config.default_profile, self.neighbours)
        up = config.upstreams
        self.outstanding.resize(up.max_outstanding, up.max_outstanding_per_server)
        model = namemodel.for_config(config.blocking.name_model)
        self.policy = Policy(config, self._index, self.grants.current, model, self.budgets)
        self.chain = build_chain(
            config,
            self.transport,
            directory=self.directory,
            policy=self.policy,
            querylog=self.querylog,
            alerter=Alerter([], record=self.querylog.put_alert),
            metrics=self.metrics if config.server.metrics is not None else None,
            outstanding=self.outstanding,
            cache=cache,
            clock=time.monotonic,
            wall_clock=time.time,
        )

    def _index(self) -> DomainIndex:
        return self.index

    # The index

    def _open_index(self) -> bool:
        """Map the index file whose fingerprint the main process announced; False if absent."""
        cache_dir = Path(self.config.lists.cache_dir)
        for name in (INDEX_FILE, SHIPPED_INDEX_FILE):
            found = DomainIndex.open(cache_dir / name, self.wanted)
            if found is not None:
                old, self.index = self.index, found
                old.close()
                return True
        return False

    async def _follow_index(self) -> None:
        """Map each index the main process announces (retried until its file is in place)."""
        while True:
            if self.index.fingerprint != self.wanted and not await asyncio.to_thread(
                self._open_index
            ):
                await asyncio.sleep(INDEX_RETRY)
                continue
            self._mapped.set()
            self._index_changed.clear()
            await self._index_changed.wait()

    # Messages from the main process

    def _apply(self, config: Config) -> None:
        """A reload the main process applied: the new chain takes the next queries."""
        had_neighbours = self.neighbours is not None
        self._assemble(config, cache=self.chain.cache)
        self.server.chain = self.chain.head
        if config.server.rate_limit != self.config.server.rate_limit:
            self.server.limit_rate(config.server.rate_limit)
        self.config = config
        if self.neighbours is not None and not had_neighbours:
            self._tasks.append(asyncio.create_task(self.neighbours.run(), name="neighbours"))

    def _report_counts(self) -> None:
        """Send what /metrics shows of this worker: its counts and serving gauges."""
        if self.config.server.metrics is None and self.config.web.listen is None:
            return  # nobody scrapes
        gauges = serving_gauges(self.chain, self.server, self.outstanding)
        self.channel.send("metrics", (self.metrics.state(), gauges))

    async def _count(self) -> None:
        while True:
            await asyncio.sleep(COUNTS_INTERVAL)
            self._report_counts()

    def _handle(self, kind: str, payload: Any) -> None:
        if kind == "config":
            self._apply(payload)
        elif kind == "index":
            self.wanted = payload
            self._index_changed.set()
        elif kind == "usage":
            self.budgets.share(payload)

    async def _listen(self) -> None:
        """Follow the main process until it closes the channel (it stopped, or died)."""
        while (message := await self.channel.receive()) is not None:
            self._handle(*message)
        self._stop.set()

    # Life cycle

    async def run(self, pairs: list[tuple[socket.socket, socket.socket]], first: Any) -> None:
        """Map the index, read the grants, serve; until SIGTERM or the main process goes."""
        fingerprint, usage = first
        self.wanted = fingerprint
        self.budgets.share(usage)
        follow = asyncio.create_task(self._follow_index(), name="index")
        self._tasks.append(follow)
        # Never serve without the index the main process serves.
        await asyncio.wait_for(self._mapped.wait(), INDEX_WAIT)
        with contextlib.suppress(DamagedError):  # the main process replaces a damaged file
            await asyncio.to_thread(self.grants.reload_if_changed)
        if self.neighbours is not None:
            await self.neighbours.refresh()
            self._tasks.append(asyncio.create_task(self.neighbours.run(), name="neighbours"))
        await self.server.adopt(pairs)
        self._tasks += [
            asyncio.create_task(self.grants.watch(), name="grants-watch"),
            asyncio.create_task(self._listen(), name="channel"),
            asyncio.create_task(self._count(), name="counts"),
        ]
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        collector.serving()
        self.channel.send("ready", os.getpid())
        try:
            await self._stop.wait()
        finally:
            await self.stop()

    async def stop(self) -> None:
        """Finish the queries in flight, hand the last rows over, close everything."""
        await self.server.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._report_counts()  # the last counts, kept by the main process
        await self.querylog.close()
        self.grants.close()
        await self.chain.cache.close()
        await self.transport.close()
        self.index.close()
        self.channel.close()


async def serve(channel_fd: int, socket_fds: list[int], number: int) -> None:
    """A worker's whole life: the channel's first message, then `Worker.run`."""
    # SIGINT (Ctrl-C) and SIGHUP reach the whole process group: the main process acts on them
    # and tells the workers (stop, reload).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    channel = await Channel.over(socket.socket(fileno=channel_fd))
    first = await channel.receive()
    if first is None or first[0] != "start":
        raise SystemExit("worker: the main process went away before the start")
    config, *rest = first[1]
    sockets = [socket.socket(fileno=fd) for fd in socket_fds]
    pairs = list(zip(sockets[::2], sockets[1::2], strict=True))
    await Worker(config, channel, number).run(pairs, rest)
