"""`server.workers` > 1: the main process binds, starts and watches the worker processes.

The main process binds one UDP and one TCP socket per worker on each listen address, all with
SO_REUSEPORT (the first pair picks the port when the configuration says 0), so the kernel
spreads queries and connections over the workers. Binding here rather than in each worker:
the port is known once, binding happens before root is given up, and a worker started again
inherits the very sockets of the one that died, with the queries that waited in them.

The main process keeps what must be one: the query log writer (rows come over each worker's
channel), the alerts (fed from those rows), the budget meter (fed by the lookups the workers
send, its totals sent back), the web app, the configuration watch and reloads (the new
configuration is sent to every worker) and the list refreshes (it builds the index file; each
worker maps it when told its fingerprint). A worker that exits is started again.

/metrics adds up what the workers count: each sends its counts and serving gauges once a
second (`metrics`); the last ones of a worker that exited stay added, so counters never go back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import signal
import socket
import sys
from typing import TYPE_CHECKING, Any

from filterdns.app.channel import Channel, record_of
from filterdns.config import Config, ListenAddress
from filterdns.dns.listeners import bind_pair, steer_by_client
from filterdns.errors import ServerError
from filterdns.lists.cachedir import is_writable
from filterdns.ops.gauges import merge_gauges
from filterdns.ops.metrics import Gauge, Metrics, State
from filterdns.policy.budgets import BudgetMeter
from filterdns.querylog.store import QUEUE_FULL

if TYPE_CHECKING:
    from filterdns.app.lifecycle import App

log = logging.getLogger("filterdns.app")

FOLLOW_INTERVAL = 0.25  # seconds between two looks at the index and the budget totals
START_TIMEOUT = 150.0  # a worker that is not serving after this long is given up on
RESTART_DELAY = 0.5  # seconds before a worker that exited is started again (doubling, to 30)
STOP_EXTRA = 5.0  # beyond server.shutdown_grace, before a worker that does not stop is killed
Pair = tuple[socket.socket, socket.socket]


def worker_count(app: App) -> int:
    """The workers to start: `server.workers`, unless the index cannot be shared (said once)."""
    count = app.config.server.worker_count()
    if count > 1 and not is_writable(app.lists.cache_dir):
        log.warning(
            "server.workers: %s cannot hold an index the workers share; serving in one process",
            app.lists.cache_dir,
        )
        return 1
    return count


def bind_groups(
    listen: tuple[ListenAddress, ...], count: int, *, skip_unavailable: bool
) -> tuple[list[ListenAddress], list[list[Pair]]]:
    """`count` pairs of sockets on each address, sharing its port; the addresses bound."""
    bound: list[ListenAddress] = []
    groups: list[list[Pair]] = [[] for _ in range(count)]
    try:
        for address in listen:
            try:
                first = bind_pair(address, reuse_port=True)
            except ServerError as exc:
                if not (skip_unavailable and exc.unavailable):
                    raise
                log.warning("%s; skipped", exc)
                continue
            host, port = first[0].getsockname()[:2]
            groups[0].append(first)
            for group in groups[1:]:
                group.append(bind_pair(ListenAddress(address.host, port), reuse_port=True))
            bound.append(ListenAddress(host, port))
        if not bound:
            raise ServerError("no listen address could be bound")
    except BaseException:
        close_groups(groups)
        raise
    return bound, groups


def close_groups(groups: list[list[Pair]]) -> None:
    """Close every socket of the groups."""
    for group in groups:
        for udp, tcp in group:
            udp.close()
            tcp.close()


def usage_totals(meter: BudgetMeter) -> list[tuple[str, str, str, int]]:
    """Every budget's minutes as the workers' meters take them (`share`)."""
    keys = sorted(set(meter.used) | set(meter.others))
    return [(*key, meter.used.get(key, 0) + meter.others.get(key, 0)) for key in keys]


class _Process:
    """One worker slot: its sockets, and the process serving them now."""

    def __init__(self, number: int, pairs: list[Pair]) -> None:
        self.number = number
        self.pairs = pairs
        self.process: asyncio.subprocess.Process | None = None
        self.channel: Channel | None = None
        self.ready = asyncio.Event()
        self.restarts = 0


class Workers:
    """The worker processes of one App."""

    def __init__(self, app: App, count: int) -> None:
        self.app = app
        self.count = count
        self.slots: list[_Process] = []
        self._groups: list[list[Pair]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._fingerprint = ""
        self._totals: list[tuple[str, str, str, int]] = []
        self._counts: dict[int, tuple[State, list[Gauge]]] = {}  # the last of each worker
        self._retired = Metrics()  # the counts of workers that exited
        self._retired_gauges: list[Gauge] = []  # and their counters (names ending in _total)
        self._steered = False  # each client address to one worker (server.rate_limit)

    async def start(self, *, skip_unavailable: bool) -> list[ListenAddress]:
        """Bind, start every worker and wait until each serves; the addresses bound."""
        listen = self.app.config.server.listen
        bound, self._groups = bind_groups(listen, self.count, skip_unavailable=skip_unavailable)
        self.slots = [_Process(n, pairs) for n, pairs in enumerate(self._groups)]
        self._steer(self.app.config)
        self._fingerprint = self.app.lists.index.fingerprint
        self._totals = usage_totals(self.app.budgets)
        for slot in self.slots:
            await self._spawn(slot)
        try:
            async with asyncio.timeout(START_TIMEOUT):
                for slot in self.slots:
                    await slot.ready.wait()
        except TimeoutError:
            raise ServerError(
                f"the worker processes did not all serve within {START_TIMEOUT:.0f} s; their "
                "messages above say why"
            ) from None
        self._tasks.append(asyncio.create_task(self._follow(), name="workers-follow"))
        log.info("%d worker processes serve: %s", self.count, self.pids())
        return bound

    def pids(self) -> list[int]:
        """The process ids of the workers running now."""
        return [s.process.pid for s in self.slots if s.process is not None]

    async def _spawn(self, slot: _Process) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        fds = [sock.fileno() for pair in slot.pairs for sock in pair]
        argv = [
            sys.executable, "-m", "filterdns.cli.worker", "--number", str(slot.number),
            "--channel", str(theirs.fileno()), "--sockets", ",".join(map(str, fds)),
            "--log-level", logging.getLevelName(logging.getLogger().getEffectiveLevel()),
        ]  # fmt: skip
        try:
            slot.process = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, pass_fds=[theirs.fileno(), *fds],
                **self._identity(),
            )  # fmt: skip
        finally:
            theirs.close()
        slot.ready.clear()
        slot.channel = channel = await Channel.over(ours)
        config: Config = self.app.config
        channel.send("start", (config, self._fingerprint, self._totals))
        self._tasks.append(asyncio.create_task(self._watch(slot), name=f"worker-{slot.number}"))

    def _identity(self) -> dict[str, Any]:
        """Root with `server.user`: the workers run as that user from their start."""
        user = self.app.config.server.user
        if user is None or os.geteuid() != 0:
            return {}
        entry = pwd.getpwnam(user)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    async def _watch(self, slot: _Process) -> None:
        """Take the worker's messages until it exits; start another unless stopping."""
        channel, process = slot.channel, slot.process
        assert channel is not None and process is not None
        while (message := await channel.receive()) is not None:
            self._handle(slot, *message)
        code = await process.wait()
        channel.close()
        self._retire(slot.number)
        # A pause first: SIGTERM to the whole service (systemctl stop) reaches the workers
        # before this process has begun to stop them.
        delay = min(30.0, RESTART_DELAY * 2**slot.restarts)
        await asyncio.sleep(delay)
        if self._stopping:
            return
        slot.restarts += 1
        log.warning(
            "worker %d (pid %d) exited with code %s; starting another",
            slot.number, process.pid, code,
        )  # fmt: skip
        await self._spawn(slot)

    def _handle(self, slot: _Process, kind: str, payload: Any) -> None:
        app = self.app
        if kind == "rows":
            rows, lookups, lost = payload
            querylog, alerter = app.querylog, app.alerter
            for row in rows:
                record = record_of(row)
                querylog.put(record)
                if record.kind == "blocked":
                    alerter.observe(record)
            for profile, budgets, name, now, tz in lookups:
                app.budgets.record(profile, budgets, name, now, tz)
            if lost:  # rows the worker could not hand over: counted as the log's own drops
                querylog.stats.dropped += lost
                querylog._count_drop(QUEUE_FULL, lost)
        elif kind == "metrics":
            self._counts[slot.number] = payload
        elif kind == "ready":
            slot.ready.set()
            if slot.restarts:
                log.info("worker %d serves again (pid %d)", slot.number, payload)
                slot.restarts = 0

    def _retire(self, number: int) -> None:
        """Keep the counts of a worker that exited (its successor counts from zero)."""
        last = self._counts.pop(number, None)
        if last is not None:
            self._retired.add(last[0])
            counters = [g for g in last[1] if g[0].endswith("_total")]
            self._retired_gauges = merge_gauges([self._retired_gauges, counters])

    def metrics(self, own: Metrics) -> Metrics:
        """`own` (the main process's counts) with every worker's added."""
        combined = own.copy()
        combined.add(self._retired.state())
        for state, _ in self._counts.values():
            combined.add(state)
        return combined

    def gauges(self) -> list[Gauge]:
        """The workers' serving gauges, added up."""
        return merge_gauges([self._retired_gauges, *(g for _, g in self._counts.values())])

    def broadcast(self, kind: str, payload: Any) -> None:
        """Send one message to every worker running."""
        for slot in self.slots:
            running = slot.process is not None and slot.process.returncode is None
            if running and slot.channel is not None and not slot.channel.send(kind, payload):
                # Stuck: its successor starts with the configuration, index and totals of now.
                log.warning("worker %d does not read its channel; starting it again", slot.number)
                with contextlib.suppress(ProcessLookupError):
                    slot.process.kill()  # type: ignore[union-attr]

    def configure(self, config: Config) -> None:
        """A reload was applied: the workers take the same configuration."""
        self._steer(config)
        self.broadcast("config", config)

    def _steer(self, config: Config) -> None:
        """With `server.rate_limit`, every query of one client address reaches one worker, so
        its limit holds as configured (spread by source port, a client would get one limit per
        worker); without, the kernel spreads queries by source port, one client over all."""
        on = config.server.rate_limit is not None
        if on == self._steered:
            return
        try:
            for pairs in zip(*self._groups, strict=True):  # each address: every worker's pair
                udp, tcp = pairs[0]  # bound first: the group's
                steer_by_client(udp, self.count, on)
                steer_by_client(tcp, self.count, on)
        except OSError as exc:
            log.warning(
                "server.rate_limit: cannot send each client to one worker (%s); each worker "
                "applies the limit to what it receives", exc.strerror or exc,
            )  # fmt: skip
            return
        self._steered = on

    async def _follow(self) -> None:
        """Tell the workers about a new index and new budget totals."""
        while True:
            await asyncio.sleep(FOLLOW_INTERVAL)
            fingerprint = self.app.lists.index.fingerprint
            if fingerprint != self._fingerprint:
                self._fingerprint = fingerprint
                self.broadcast("index", fingerprint)
            totals = usage_totals(self.app.budgets)
            if totals != self._totals:
                self._totals = totals
                self.broadcast("usage", totals)

    async def stop(self, grace: float) -> None:
        """SIGTERM to every worker; their last rows are taken; those that linger are killed."""
        self._stopping = True
        for slot in self.slots:
            if slot.process is not None and slot.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    slot.process.send_signal(signal.SIGTERM)
        watches = [t for t in self._tasks if t.get_name().startswith("worker-")]
        if watches:  # each ends with its worker's last rows (or after its restart pause)
            await asyncio.wait(watches, timeout=grace + STOP_EXTRA)
        for slot in self.slots:
            if slot.process is not None and slot.process.returncode is None:
                log.warning("worker %d did not stop; killing it", slot.number)
                with contextlib.suppress(ProcessLookupError):
                    slot.process.kill()
                await slot.process.wait()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        close_groups(self._groups)
