"""The running proxy: start, signals, reloads, graceful stop.

The chain of links a query goes down is assembled by `resolvers.chain.build_chain`; what a
reload decides before the swap is in `app.reload`, the watch of the file in `app.watch`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path

from filterdns.app.gauges import app_gauges
from filterdns.app.reload import READY_STATUS, judge, lists_for, restart_notes
from filterdns.app.watch import watch_config
from filterdns.app.webside import WebListeners
from filterdns.app.workers import Workers, worker_count
from filterdns.config import Config, ListenAddress, load_config
from filterdns.dns.listeners import addresses_text
from filterdns.dns.server import DnsServer
from filterdns.dns.transport import Transport
from filterdns.errors import ConfigError, FilterDnsError
from filterdns.lists import namemodel
from filterdns.lists.catalog import ListSet
from filterdns.ops import collector, privileges, runstate, sdnotify
from filterdns.ops.fdlimit import fit_open_files
from filterdns.ops.metrics import Gauge, Metrics
from filterdns.policy.budgets import BudgetMeter
from filterdns.policy.clients import ClientDirectory
from filterdns.policy.decisions import Policy
from filterdns.policy.grants import grant_store
from filterdns.policy.neighbors import Neighbours
from filterdns.policy.protection import difference
from filterdns.querylog.alerts import Alerter, AlertRule
from filterdns.querylog.dbfile import DamagedError
from filterdns.querylog.store import QueryLog
from filterdns.resolvers.cache import CacheResolver
from filterdns.resolvers.chain import build_chain
from filterdns.resolvers.upstream import Outstanding

# Log lines name the app, as they always have ("INFO filterdns.app: reloaded ...").
log = logging.getLogger("filterdns.app")


class App:
    """One running proxy: transport, chain and server, started and stopped together.

    `reload()` (SIGHUP, or an edit of the configuration file) reads the file again off the event
    loop, builds the lists, client directory, policy, alerts and chain anew and swaps the chain
    into the server with one assignment: queries in flight finish on the old chain, new ones take
    the new one, and the cache carries over. A file with problems leaves everything as it was.

    Every reload logs what it changes in protection (`protection.difference`). One the file watch
    started that weakens protection is held back: a file cut short by a full disk or a crashed
    editor reads as "every child to the default profile", so only an explicit reload (SIGHUP,
    `filterdns reload`, `systemctl reload`) applies that. The text applied is saved in the state
    directory (`runstate`), which `filterdns check --against running` compares with.
    """

    def __init__(
        self,
        config: Config,
        *,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        neighbours: Neighbours | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.wall_clock = wall_clock
        self.transport = transport or Transport()
        self.lists = ListSet(config.lists, config.categories)
        self.grants = grant_store(config.log)  # the SQLite file's, or PostgreSQL's (shared)
        self.neighbours = neighbours  # made when a client rule needs it, unless given (tests)
        self.querylog = QueryLog(
            config.log, clock=wall_clock, instance=config.server.instance_name()
        )
        self.querylog.usage = self.budgets = BudgetMeter()  # kept by every policy reloads build
        self.metrics = Metrics()
        # The web app, the block page and /metrics: one HTTP server on this loop (web.server).
        self.web = WebListeners(self)
        up = config.upstreams
        self.outstanding = Outstanding(up.max_outstanding, up.max_outstanding_per_server)
        self._assemble(config, self.lists)
        self.server = DnsServer(self.chain.head, config.server)
        self.workers: Workers | None = None  # server.workers > 1: they serve DNS, not `server`
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._reload_lock = asyncio.Lock()
        self.reloads = 0
        self.rejected_reloads = 0
        self.held_reloads = 0  # by the file watch, because they weaken protection
        self._held_text: str | None = None
        # Log settings apply after a restart, so the state directory is the one of the start.
        self.state_dir = runstate.state_dir(config)
        self._reload_done = asyncio.Condition()

    def _assemble(self, config: Config, lists: ListSet, cache: CacheResolver | None = None) -> None:
        """Build everything a configuration decides (not the listeners, the log or the cache)."""
        # The neighbour table finds a device by MAC, and its other addresses (one device, one
        # profile on IPv4 and IPv6): needed as soon as one client rule exists.
        if config.clients and self.neighbours is None:
            self.neighbours = Neighbours()
        self.directory = ClientDirectory(config.clients, config.default_profile, self.neighbours)
        up = config.upstreams
        self.outstanding.resize(up.max_outstanding, up.max_outstanding_per_server)
        model = namemodel.for_config(config.blocking.name_model)
        self.policy = Policy(config, lambda: lists.index, self.grants.current, model, self.budgets)
        self.alerter = Alerter(
            [AlertRule.of(rule) for rule in config.alerts],
            record=self.querylog.put_alert,
            clock=self.wall_clock,
            display_names={p.name: p.display_name for p in config.profiles if p.display_name},
        )
        self.chain = build_chain(
            config,
            self.transport,
            directory=self.directory,
            policy=self.policy,
            querylog=self.querylog,
            alerter=self.alerter,
            # Counted only when scraped: without server.metrics no link times each query.
            metrics=self.metrics if config.server.metrics is not None else None,
            outstanding=self.outstanding,
            cache=cache,
            clock=self.clock,
            wall_clock=self.wall_clock,
        )

    async def start(self) -> list[ListenAddress]:
        """Open a category index, then bind the listeners; returns the addresses bound.

        An index is in place before the first query is answered so that nothing is ever served
        unfiltered, and it opens at once: the current one from disk, else the previous one or
        the shipped lists while the current one is built in the background (`lists.ready`).
        Remote sources are then kept fresh and local list files watched in the background.
        """
        try:
            await self.lists.start()
            await self.querylog.start()
            await asyncio.to_thread(self._save_running, self.config, start=True)
            await self._read_grants()
            usage = await asyncio.to_thread(self.querylog.read_usage, self.wall_clock())
            self.budgets.load(usage)  # before the first answer: a restart spends no budget twice
            await asyncio.to_thread(runstate.make_state_private, self.config)
            if self.neighbours is not None:
                await self.neighbours.refresh()
            fit_open_files(self.config)  # before the first socket a flood could need
            bound = await self._listen()
            await self.web.start()
        except BaseException:
            await self.stop()  # a port in use: close the log, lists and sockets opened so far
            raise
        self._refresh_task = asyncio.create_task(self.lists.run(), name="lists-refresh")
        self._tasks = [
            asyncio.create_task(self.grants.watch(self.querylog.check), name="grants-watch"),
            asyncio.create_task(self._watch_config(), name="config-watch"),
        ]
        if self.neighbours is not None:
            self._tasks.append(asyncio.create_task(self.neighbours.run(), name="neighbours"))
        if self.config.log.url is not None:  # the budget minutes of the other instances
            from filterdns.querylog.pgshared import follow_usage  # noqa: PLC0415 (psycopg)

            instance = self.config.server.instance_name()
            follow = follow_usage(self.config.log.url, instance, self.budgets)
            self._tasks.append(asyncio.create_task(follow, name="budgets-follow"))
        return bound

    async def _listen(self) -> list[ListenAddress]:
        """Serve DNS here, or start the workers that do (`server.workers`)."""
        skip = self.config.source is None
        count = worker_count(self)
        if count == 1:
            return await self.server.start(skip_unavailable=skip)
        self.workers = Workers(self, count)
        return await self.workers.start(skip_unavailable=skip)

    async def _read_grants(self) -> None:
        """Grants in force before the first answer (an old grants.json imported first)."""
        await asyncio.to_thread(self.grants.import_if_changed)
        try:
            await asyncio.to_thread(self.grants.reload_if_changed)
        except DamagedError:
            await self.querylog.check()  # replaced by a fresh database: no grants to read

    @property
    def metrics_address(self) -> ListenAddress | None:
        return self.web.addresses.get("metrics")

    @property
    def web_address(self) -> ListenAddress | None:
        return self.web.addresses.get("web")

    @property
    def block_page_address(self) -> ListenAddress | None:
        return self.web.addresses.get("block_page")

    def _gauges(self) -> list[Gauge]:
        """Read at each scrape, so a reload's new objects are the ones reported."""
        return app_gauges(self)

    # Reloading

    async def reload(self, explicit: bool = True) -> bool:
        """Read the configuration file again and swap in what it builds; False if rejected or
        held back.

        `explicit` (SIGHUP, `filterdns reload`) applies a file that weakens protection, with a
        warning; the file watch passes False, and such a file is then held back.
        """
        sdnotify.reloading()
        result = "rejected"
        try:
            result = await self._reload(explicit)
            self.metrics.reload(result)
            return result == "applied"
        finally:
            # systemd waits for READY=1 after RELOADING=1, whether the file was applied or not.
            sdnotify.ready(READY_STATUS[result])
            async with self._reload_done:
                self._reload_done.notify_all()

    async def wait_for_reloads(self, count: int) -> None:
        """Until `count` reloads were tried (applied, rejected or held back) since the start."""

        def tried() -> bool:
            return self.reloads + self.rejected_reloads + self.held_reloads >= count

        async with self._reload_done:
            await self._reload_done.wait_for(tried)

    async def _reload(self, explicit: bool) -> str:
        async with self._reload_lock:
            source = self.config.source
            if source is None:
                log.warning("reload: running on the embedded defaults; no file to read")
                return "rejected"
            try:
                config = await asyncio.to_thread(load_config, source)
            except ConfigError as exc:
                self.rejected_reloads += 1
                log.error("reload rejected, the running configuration stays: %s", exc)
                return "rejected"
            if not judge(difference(self.config, config), source, explicit=explicit):
                self.held_reloads += 1
                self._held_text = config.text
                return "held"
            self._held_text = None
            await self._apply(config)
            self.reloads += 1
            log.info("reloaded %s", source)
            return "applied"

    async def _apply(self, config: Config) -> None:
        """Build what `config` decides and swap it in: queries in flight finish on the old
        chain, new ones take the new one; the cache and the caps on exchanges carry over."""
        for note in restart_notes(self.config, config):
            log.warning("reload: %s", note)
        old_lists, old_config = self.lists, self.config
        lists = await lists_for(self.config, config, old_lists)
        old_alerter, had_neighbours = self.alerter, self.neighbours is not None
        self._assemble(config, lists, cache=self.chain.cache)
        self.server.chain = self.chain.head  # the swap: new queries take the new chain
        if self.workers is not None:
            self.workers.configure(config)  # and the workers' next queries
        fit_open_files(config)  # upstreams.max_outstanding applies at once
        if config.server.rate_limit != self.config.server.rate_limit:
            self.server.limit_rate(config.server.rate_limit)
        self.config = config
        if lists is not old_lists:
            self.lists = lists
            self._refresh_task.cancel()
            self._refresh_task = asyncio.create_task(lists.run(), name="lists-refresh")
            old_lists.close()
        if self.neighbours is not None and not had_neighbours:
            await self.neighbours.refresh()
            self._tasks.append(asyncio.create_task(self.neighbours.run(), name="neighbours"))
        await old_alerter.close()
        await self.web.reopen(old_config)
        await asyncio.to_thread(self._save_running, config)

    def _save_running(self, config: Config, *, start: bool = False) -> None:
        """Keep the text in force where `check --against running` finds it; never fatal.

        At start, first say what the file weakens since the last run: a file cut short while
        the server was down (a power cut) is applied by the start, but not silently.
        """
        since = runstate.since_last_run(self.state_dir, config) if start else None
        if since is not None and since.weakens:
            texts = "; ".join(change.text for change in since.ordered() if change.weakens)
            log.warning("the configuration weakens protection since the last run: %s", texts)
        try:
            runstate.save_running(self.state_dir, config, self.wall_clock())
        except OSError as exc:
            log.warning("cannot save the running configuration in %s: %s", self.state_dir, exc)

    async def _watch_config(self) -> None:
        """Reload when the configuration file changes (checked every second, debounced).

        Not explicit: a change that weakens protection waits for a reload asked for.
        """
        source = self.config.source
        if source is not None:
            await watch_config(Path(source), self._seen, lambda: self.reload(explicit=False))

    def _seen(self) -> tuple[str | None, ...]:
        """The texts the watch does not try again: the running one, the one held back."""
        return self.config.text, self._held_text

    async def stop(self) -> None:
        """Finish in-flight queries (bounded wait), then close every socket and task."""
        refresh = getattr(self, "_refresh_task", None)
        if refresh is not None:
            self._tasks.append(refresh)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.web.stop()
        if self.workers is not None:  # before the log closes: their last rows come in
            await self.workers.stop(self.config.server.shutdown_grace)
        await self.server.stop()
        await self.alerter.close()
        await self.querylog.close()  # every queued row is written before exit
        self.grants.close()
        await self.chain.cache.close()
        await self.transport.close()
        await self.lists.aclose()  # a build in progress stops too

    async def _give_root_up(self, user: str) -> None:
        """The ports are bound: the state becomes `user`'s again, then the process does."""
        try:
            runstate.hand_state_to(self.config, user)
            privileges.drop_privileges(user)
        except FilterDnsError:
            await self.stop()
            raise
        runstate.check_reachable(self.state_dir)

    def request_stop(self) -> None:
        """Ask `run` to stop (signal handlers call this)."""
        self._stop.set()

    async def run(self, ready: Callable[[list[ListenAddress]], None] | None = None) -> None:
        """Start, report readiness, serve until SIGTERM/SIGINT or `request_stop`, then stop."""
        user = self.config.server.user
        # Root without systemd: the state is the user's before anything is written to it (a
        # list build in a child process then runs as that user), and again once the start
        # wrote it as root; then, the ports bound, root is given up.
        if user is not None:
            runstate.hand_state_to(self.config, user)
        runstate.check_owner(self.config)
        bound = await self.start()
        if user is not None:
            await self._give_root_up(user)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        reloads: set[asyncio.Task[bool]] = set()

        def on_hangup() -> None:
            task = asyncio.create_task(self.reload(), name="reload")
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, on_hangup)
        # Where `filterdns reload` finds the process to signal; only now that SIGHUP reloads.
        try:
            runstate.write_pid(self.state_dir)
        except OSError as exc:
            log.warning("cannot write %s in %s: %s", runstate.PID_FILE, self.state_dir, exc)
        collector.serving()
        try:
            if ready is not None:
                ready(bound)
            sdnotify.ready(f"serving on {addresses_text(bound)}")
            await self._stop.wait()
            log.info("stopping: finishing in-flight queries")
        finally:
            sdnotify.stopping()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
            for task in reloads:
                task.cancel()
            runstate.remove_pid(self.state_dir)
            await self.stop()
        log.info("stopped")
