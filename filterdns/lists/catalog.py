"""Every category's list sources as one index: resolved, fetched, parsed, judged, persisted.

`ListSet(config.lists, config.categories)` knows which sources make up each category (the
shipped ones unless the configuration names others). `build()` (blocking) parses every source
into a new `DomainIndex`, written to `lists.cache_dir/index.bin` and mapped from there; when no
source changed since the last build, the file on disk is opened instead, so a restart costs
milliseconds and no parsing.

Building never delays answering. `start()` serves at once: the index on disk when it is current,
else the previous `index.bin` (stale, still protective), else an index of the shipped lists alone
(`index-shipped.bin`, built in a fraction of a second the first time); the index of the
configured sources is then built in the background and swapped in with one assignment, and
`ready` is set. Builds of more than `SMALL_BUILD` bytes of lists, and every build with
downloads, run in a child process (`lists.builder`), so the parse of a big list does not compete
with answers for the GIL; small ones run in a thread. Queries keep using the old index meanwhile.

Nothing is lost on bad input: a source that is not text, yields no entry, is mostly invalid lines
or shrank by more than `lists.max_shrink` is rejected and its last good copy serves instead (see
`lists.sources` and `lists.validate`); the reason is on its status. Local files are watched:
an edit is picked up within about two seconds, and by `reload_local()` (SIGHUP).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from filterdns import __version__
from filterdns.config import SHIPPED_PREFIX, ListsConfig
from filterdns.lists.builder import BuilderFailed, ChildBuilder, give_back, identity_for
from filterdns.lists.cachedir import (
    INDEX_FILE,
    fingerprint_of,
    is_writable,
    mark_building,
    read_reports,
    save_reports,
    shipped_index,
)
from filterdns.lists.freshness import keep_fresh
from filterdns.lists.index import DomainIndex
from filterdns.lists.indexbuild import IndexBuilder
from filterdns.lists.remote import FetchResult, RemoteCache
from filterdns.lists.shipped import shipped_path
from filterdns.lists.sourcereport import SourceReport
from filterdns.lists.sources import (
    BuildResult,
    SourceAdder,
    SourceStatus,
    download_check,
    is_local,
    is_remote,
    rejection,
    resolve_sources,
)
from filterdns.lists.validate import Stamp, write_record

log = logging.getLogger(__name__)

ENTRY_BYTES = 8  # one 64-bit word per (name, list) in the index
# Up to this many bytes of lists are parsed in a thread (the shipped lists, 2.6 MB: 0.27 s,
# against 0.45 s in a child process); more, or any download, in a child process.
SMALL_BUILD = 4 * 2**20

__all__ = ["BuildResult", "ListSet", "SourceStatus", "is_remote", "resolve_sources"]


@dataclass
class _Quick:
    """What `start` can serve at once."""

    index: DomainIndex
    sources: list[SourceStatus]
    interim: str | None  # what serves until the configured index is built; None: it is
    seconds: float


class ListSet:
    """The category lists of one configuration and the index built from them."""

    def __init__(
        self, config: ListsConfig, categories: Sequence[tuple[str, Sequence[str]]] = ()
    ) -> None:
        self.config = config
        self.categories = tuple((c, tuple(s)) for c, s in categories)
        self.pairs = resolve_sources(categories, download_defaults=config.download_defaults)
        self.cache_dir = Path(config.cache_dir)
        self.remote = RemoteCache(
            self.cache_dir / "downloads",
            timeout=config.timeout,
            max_bytes=config.max_megabytes * 2**20,
            user_agent=f"filterdns/{__version__}",
        )
        self.index = DomainIndex.empty()
        self.sources: list[SourceStatus] = []
        self.ready = asyncio.Event()  # set once the configured sources' index serves
        self.interim: str | None = None  # what serves meanwhile: "the previous index", ...
        self.builds = 0  # indexes swapped in so far
        self._built = asyncio.Condition()
        self._lock = asyncio.Lock()
        self._stamps: dict[str, Stamp | None] = {}  # local files as the serving index read them
        self._first: asyncio.Task[None] | None = None
        self.builder = ChildBuilder()  # runs the big builds in a child process
        self._closed = False

    # Building (blocking: call from a thread)

    def build(self, *, download: bool = False) -> BuildResult:
        """Fetch (when `download`), then reuse the index file if current, else parse and index."""
        started = time.perf_counter()
        plan, changed = self._plan(download)
        fingerprint = fingerprint_of(plan, self.config.max_shrink)
        index_path = self.cache_dir / INDEX_FILE
        writable = is_writable(self.cache_dir)
        if writable:
            reused = DomainIndex.open(index_path, fingerprint)
            if reused is not None:
                statuses = self._saved_statuses(plan, downloaded=download)
                if statuses is not None:
                    if download:  # how each download went is news (e.g. a rejected one)
                        save_reports(self.cache_dir, statuses)
                    seconds = time.perf_counter() - started
                    return BuildResult(reused, statuses, True, seconds, changed, written=True)
                reused.close()
        index = self._index(plan, index_path if writable else None, fingerprint)
        seconds = time.perf_counter() - started
        return BuildResult(index, plan, False, seconds, changed, written=writable)

    def _plan(self, download: bool) -> tuple[list[SourceStatus], list[str]]:
        """Every source's status before parsing (downloads done); the URLs that changed."""
        fetched: dict[str, FetchResult] = {}
        verdicts: dict[str, str | int] = {}
        changed: list[str] = []
        for url in dict.fromkeys(source for _c, source in self.pairs if is_remote(source)):
            if download:
                check = download_check(
                    url, self.remote.path_for(url), self.config.max_shrink, verdicts
                )
                result = self.remote.fetch(url, validate=check)
                entries = verdicts.get(url)
                if result.changed and result.path is not None and isinstance(entries, int):
                    write_record(result.path, entries)
            else:
                result = self.remote.cached(url)
            fetched[url] = result
            if result.changed:
                changed.append(url)
        plan = [self._locate(c, s, fetched, verdicts) for c, s in self.pairs]
        if not download:
            self._carry_download_errors(plan)
        return plan, changed

    def _locate(
        self,
        category: str,
        source: str,
        fetched: dict[str, FetchResult],
        verdicts: dict[str, str | int],
    ) -> SourceStatus:
        """Which file to parse for `source`."""
        report = SourceReport(source=source)
        if source.startswith(SHIPPED_PREFIX):
            return SourceStatus(category, source, "shipped", report, shipped_path(source))
        if not is_remote(source):
            return SourceStatus(category, source, "file", report, Path(source))
        result = fetched[source]
        status = SourceStatus(
            category, source, "remote", report, result.path, result.error, result.fetched_at
        )
        reason = verdicts.get(source)
        if isinstance(reason, str):  # the download was rejected; the one before it stays
            status.rejected, status.using_copy = reason, result.path is not None
            status.error = rejection(source, reason, status.using_copy)
        return status

    def _carry_download_errors(self, plan: list[SourceStatus]) -> None:
        """Without downloading, a remote source keeps the error of its last download attempt."""
        saved = {(d.category, d.source): d for d in read_reports(self.cache_dir) or []}
        for status in plan:
            before = saved.get((status.category, status.source))
            if status.kind != "remote" or status.error is not None or before is None:
                continue
            if before.error is not None and before.fetched_at == status.fetched_at:
                status.error, status.rejected = before.error, before.rejected
                status.using_copy = before.using_copy

    def _index(self, plan: list[SourceStatus], path: Path | None, fingerprint: str) -> DomainIndex:
        # Spilling to the index's directory keeps a rebuild next to the serving index well
        # under twice its size (measured 1.4x for 1M names; 2.4x in memory).
        builder = IndexBuilder(spill_dir=path.parent if path is not None else None)
        adder = SourceAdder(builder, self.cache_dir if path else None, self.config.max_shrink)
        ids = [adder.add(status) for status in plan]
        index = builder.finish(path, fingerprint)
        for status, (block, allow) in zip(plan, ids, strict=True):
            status.report.duplicates = builder.duplicates.get(block, 0) + builder.duplicates.get(
                allow, 0
            )
        if path is not None:
            save_reports(self.cache_dir, plan)
        return index

    def _quick(self) -> _Quick:
        """The best index that opens at once: current, else previous, else the shipped lists."""
        started = time.perf_counter()
        plan, _changed = self._plan(download=False)
        fingerprint = fingerprint_of(plan, self.config.max_shrink)
        if is_writable(self.cache_dir):
            found = DomainIndex.open(self.cache_dir / INDEX_FILE)
            if found is not None:
                if found.fingerprint == fingerprint:
                    statuses = self._saved_statuses(plan)
                    if statuses is not None:
                        return _Quick(found, statuses, None, time.perf_counter() - started)
                return _Quick(found, [], "the previous index", time.perf_counter() - started)
        index = shipped_index(self.cache_dir)
        return _Quick(index, [], "the shipped lists", time.perf_counter() - started)

    def _saved_statuses(
        self, plan: list[SourceStatus], *, downloaded: bool = False
    ) -> list[SourceStatus] | None:
        """The reports of the build the index file came from (None when they do not fit).

        What went wrong then still holds, except for remote sources just `downloaded` again.
        """
        saved = read_reports(self.cache_dir)
        if saved is None or len(saved) != len(plan):
            return None
        for status, before in zip(plan, saved, strict=True):
            if (before.category, before.source) != (status.category, status.source):
                return None
            status.report = before.report
            if not (downloaded and status.kind == "remote"):
                status.error = status.error or before.error
                status.rejected = status.rejected or before.rejected
                status.using_copy = status.using_copy or before.using_copy
        return plan

    # Running (on the event loop)

    async def start(self) -> None:
        """Serve at once with the best index available; build the configured one if need be."""
        stamps = self.local_stamps()
        quick = await asyncio.to_thread(self._quick)
        self.index, self.sources, self.interim = quick.index, quick.sources, quick.interim
        if quick.interim is None:
            self._stamps = stamps
            self.ready.set()
            log.info(
                "lists: opened index of %d names from %d sources in %.2f s",
                len(quick.index), len(quick.sources), quick.seconds,
            )  # fmt: skip
            return
        log.info(
            "lists: serving %s (%d names) while the index of the configured sources is built",
            quick.interim, len(quick.index),
        )  # fmt: skip
        self._first = asyncio.create_task(self._first_build(), name="lists-build")

    async def _first_build(self) -> None:
        try:
            await self.load()
        except Exception:  # the interim index keeps serving; the watch and refresh retry
            if not self._closed:
                log.exception("lists: building the index failed; %s keeps serving", self.interim)

    async def _first_done(self) -> None:
        if self._first is not None and not self._first.done():
            await asyncio.wait([self._first])

    async def load(self, *, download: bool = False) -> BuildResult:
        """Build off the event loop, then swap the new index in (one assignment)."""
        async with self._lock:
            return await self._rebuild(download)

    async def wait_for_builds(self, count: int) -> None:
        """Until `count` indexes were swapped in since this list set was made."""
        async with self._built:
            await self._built.wait_for(lambda: self.builds >= count)

    async def _rebuild(self, download: bool) -> BuildResult:
        stamps = self.local_stamps()
        mark_building(self.cache_dir, self.interim or "the previous index")
        try:
            result = await self._build_off_loop(download)
        finally:
            self._stamps = stamps  # a failed build is retried on the next change, not in a loop
            mark_building(self.cache_dir, None)
        old, self.index, self.sources = self.index, result.index, result.sources
        if old is not result.index:
            old.close()
        replaced, self.interim = self.interim, None
        self.builds += 1
        self.ready.set()
        async with self._built:
            self._built.notify_all()
        log.info(
            "lists: %s index of %d names from %d sources in %.2f s%s",
            "opened" if result.reused else "built", len(result.index), len(result.sources),
            result.seconds, f"; it replaces {replaced}" if replaced else "",
        )  # fmt: skip
        return result

    async def _build_off_loop(self, download: bool) -> BuildResult:
        """Build in a child process, or in a thread when the lists are small (a child costs
        0.2 s to start), when it cannot run or when nothing may be written. Root building for
        a cache another user owns (server.user) always uses the child, which runs as that user:
        a thread would write the cache as root until the server gives root up."""
        as_owner = identity_for(self.cache_dir) is not None
        wanted = download or self._source_bytes() > SMALL_BUILD or as_owner
        if is_writable(self.cache_dir) and wanted:
            try:
                child = await self.builder.build(self.config, self.categories, download=download)
            except BuilderFailed as exc:
                if self._closed:
                    raise
                log.warning("lists: %s; building in this process instead", exc)
            else:
                path = self.cache_dir / INDEX_FILE
                index = await asyncio.to_thread(DomainIndex.open, path, child.fingerprint)
                if index is not None:
                    statuses = [SourceStatus.from_json(data) for data in child.sources]
                    return BuildResult(
                        index, statuses, child.reused, child.seconds, child.changed, written=True
                    )
                log.warning("lists: %s changed before it was opened; building again", path)
        result = await asyncio.to_thread(self.build, download=download)
        if as_owner:  # built here as root (no child could run): the cache stays its owner's
            await asyncio.to_thread(give_back, self.cache_dir)
        return result

    def _source_bytes(self) -> int:
        """The size of what a build without downloads would parse."""
        paths = {
            shipped_path(s) if s.startswith(SHIPPED_PREFIX)
            else self.remote.path_for(s) if is_remote(s)
            else Path(s)
            for _c, s in self.pairs
        }  # fmt: skip
        return sum(stamp.size for stamp in map(Stamp.of, paths) if stamp is not None)

    def local_stamps(self) -> dict[str, Stamp | None]:
        """The (size, time) of every local list file now."""
        local = dict.fromkeys(source for _c, source in self.pairs if is_local(source))
        return {source: Stamp.of(Path(source)) for source in local}

    def changed_files(self) -> list[str]:
        """The local list files that changed since the serving index read them."""
        now = self.local_stamps()
        return [s for s, stamp in now.items() if s not in self._stamps or self._stamps[s] != stamp]

    async def reload_local(self) -> bool:
        """Rebuild if a local list file changed on disk (SIGHUP); the old index serves meanwhile.

        While another build runs this returns at once, so a reload never waits for a long
        build: the file watch takes the change up as soon as that build is done.
        """
        if self._lock.locked() or (self._first is not None and not self._first.done()):
            return False
        async with self._lock:
            changed = self.changed_files()
            if not changed:
                return False
            log.info("lists: %s changed on disk; rebuilding", ", ".join(changed))
            try:
                await self._rebuild(download=False)
            except Exception:  # a rebuild must never stop the proxy (or fail a reload)
                log.exception("lists: rebuild failed; the current index stays")
                return False
            return True

    async def run(self) -> None:
        """Keep the lists current: remote sources downloaded when due, local files watched."""
        await self._first_done()
        await keep_fresh(self)

    def close(self) -> None:
        """Stop a build in progress and release the mapped index file."""
        self._closed = True
        if self._first is not None:
            self._first.cancel()
        self.builder.terminate()
        self.index.close()
        self.index = DomainIndex.empty()

    async def aclose(self) -> None:
        """`close`, then wait until a build in progress has stopped."""
        first = self._first
        self.close()
        if first is not None:
            await asyncio.wait([first])
