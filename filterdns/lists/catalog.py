"""Every category's list sources as one index: resolved, fetched, parsed, indexed, persisted.

`ListSet(config.lists, config.categories)` knows which sources make up each category (the
shipped ones unless the configuration names others). `build()` (blocking; run it in a thread)
parses every source into a new `DomainIndex`, written to `lists.cache_dir/index.bin` and mapped
from there; when no source changed since the last build, the file on disk is opened instead, so a
restart costs milliseconds and no parsing. `ListSet.load()` and `refresh()` do that off the event
loop and swap the new index in with one assignment; queries keep using the old one meanwhile.

Nothing is lost on bad input: a source that yields no entry at all (a missing file, an HTML error
page, binary junk) keeps its last good copy (remote sources: the download cache; local files: a
copy kept in `lists.cache_dir/copies`), and the problem is reported on that source.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from filterdns import __version__
from filterdns.config import DEFAULT_CATEGORIES, SHIPPED_SOURCE, ListsConfig
from filterdns.lists.index import DomainIndex, IndexBuilder, ListInfo
from filterdns.lists.parse import SourceReport, iter_file
from filterdns.lists.remote import FetchResult, RemoteCache
from filterdns.lists.shipped import SHIPPED, shipped_path

log = logging.getLogger(__name__)

INDEX_FILE = "index.bin"
ENTRY_BYTES = 8  # one 64-bit word per (name, list) in the index
RETRY_AFTER_FAILURE = 900.0  # a failed download is tried again after 15 minutes
MIN_WAIT = 60.0
REPORTS_FILE = "index-reports.json"


def is_remote(source: str) -> bool:
    """Whether `source` is downloaded (http:// or https://) rather than read from disk."""
    return source.startswith(("http://", "https://"))


def resolve_sources(
    categories: Sequence[tuple[str, Sequence[str]]], *, download_defaults: bool = True
) -> list[tuple[str, str]]:
    """(category, source) for every list: shipped categories first, then the configured ones.

    A category the configuration names uses exactly its listed sources, `shipped` standing for
    the shipped ones; every other shipped category keeps its shipped sources. Without
    `download_defaults`, the default sources that are downloaded rather than shipped are left out.
    """

    def defaults(category: str) -> list[tuple[str, str]]:
        return [
            (category, source)
            for source in SHIPPED.get(category, ())
            if download_defaults or not is_remote(source)
        ]

    configured = dict(categories)
    pairs: list[tuple[str, str]] = []
    for category in DEFAULT_CATEGORIES:
        if category not in configured:
            pairs.extend(defaults(category))
    for category, sources in categories:
        for source in sources:
            if source == SHIPPED_SOURCE:
                pairs.extend(defaults(category))
            else:
                pairs.append((category, source))
    return list(dict.fromkeys(pairs))  # a source named twice for one category counts once


@dataclass
class SourceStatus:
    """One source as of the last build: where it was read from and what it yielded."""

    category: str
    source: str
    kind: str  # "shipped", "file" or "remote"
    report: SourceReport
    path: Path | None = None  # the file that was parsed
    error: str | None = None  # why the source (or its download) failed; a last good copy may serve
    fetched_at: float | None = None
    using_copy: bool = False  # the last good copy was used instead of the source itself

    def to_json(self) -> dict[str, object]:
        """A JSON-ready summary (used by `lists stats --json` and the reports file)."""
        return {
            "category": self.category,
            "source": self.source,
            "kind": self.kind,
            "path": str(self.path) if self.path else None,
            "error": self.error,
            "fetched_at": self.fetched_at,
            "using_copy": self.using_copy,
            **self.report.to_json(),
        }


@dataclass
class BuildResult:
    """A finished build: the index and every source's status."""

    index: DomainIndex
    sources: list[SourceStatus]
    reused: bool  # the index file on disk was still current: nothing was parsed
    seconds: float
    changed: list[str] = field(default_factory=list)  # remote sources with a new download


class ListSet:
    """The category lists of one configuration and the index built from them."""

    def __init__(
        self, config: ListsConfig, categories: Sequence[tuple[str, Sequence[str]]] = ()
    ) -> None:
        self.config = config
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
        self._lock = asyncio.Lock()

    # Building (blocking: call from a thread)

    def build(self, *, download: bool = False) -> BuildResult:
        """Fetch (when `download`), then reuse the index file if current, else parse and index."""
        started = time.perf_counter()
        fetched: dict[str, FetchResult] = {}
        changed: list[str] = []
        for url in dict.fromkeys(source for _c, source in self.pairs if is_remote(source)):
            result = (
                self.remote.fetch(url, validate=_has_entries)
                if download
                else self.remote.cached(url)
            )
            fetched[url] = result
            if result.changed:
                changed.append(url)
        plan = [self._locate(category, source, fetched) for category, source in self.pairs]
        fingerprint = _fingerprint(plan)
        index_path = self.cache_dir / INDEX_FILE
        reused = DomainIndex.open(index_path, fingerprint) if self._writable() else None
        if reused is not None:
            statuses = self._saved_statuses(plan)
            if statuses is not None:
                return BuildResult(reused, statuses, True, time.perf_counter() - started, changed)
            reused.close()
        index, statuses = self._index(plan, index_path if self._writable() else None, fingerprint)
        return BuildResult(index, statuses, False, time.perf_counter() - started, changed)

    def _locate(self, category: str, source: str, fetched: dict[str, FetchResult]) -> SourceStatus:
        """Which file to parse for `source` (its last good copy when it has none of its own)."""
        report = SourceReport(source=source)
        if source.startswith(f"{SHIPPED_SOURCE}:"):
            return SourceStatus(category, source, "shipped", report, shipped_path(source))
        if is_remote(source):
            result = fetched[source]
            return SourceStatus(
                category, source, "remote", report, result.path, result.error, result.fetched_at
            )
        path = Path(source)
        copy = self._copy_path(source)
        if path.is_file():
            return SourceStatus(category, source, "file", report, path)
        error = f"{source}: no such file"
        if copy.is_file():
            return SourceStatus(category, source, "file", report, copy, error, using_copy=True)
        return SourceStatus(category, source, "file", report, None, error)

    def _index(
        self, plan: list[SourceStatus], path: Path | None, fingerprint: str
    ) -> tuple[DomainIndex, list[SourceStatus]]:
        # Spilling to the index's directory keeps a rebuild next to the serving index well
        # under twice its size (measured 1.4x for 1M names; 2.4x in memory).
        builder = IndexBuilder(spill_dir=path.parent if path is not None else None)
        ids: list[tuple[int, int]] = []
        for status in plan:
            block = builder.add_list(ListInfo(status.category, status.source))
            allow = builder.add_list(ListInfo(status.category, status.source, allow=True))
            ids.append((block, allow))
            self._parse_into(builder, status, block, allow)
        index = builder.finish(path, fingerprint)
        for status, (block, allow) in zip(plan, ids, strict=True):
            status.report.duplicates = builder.duplicates.get(block, 0) + builder.duplicates.get(
                allow, 0
            )
        if path is not None:
            self._save_statuses(plan)
        return index, plan

    def _parse_into(
        self, builder: IndexBuilder, status: SourceStatus, block: int, allow: int
    ) -> None:
        if status.path is None:
            return
        try:
            _add_entries(builder, iter_file(status.path, status.report), block, allow)
        except OSError as exc:
            status.error = f"{status.source}: {exc.strerror or exc}"
            return
        entries = status.report.entries + status.report.allow_entries
        if status.kind != "file" or status.using_copy:
            return
        copy = self._copy_path(status.source)
        if entries:
            with contextlib.suppress(OSError):
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(status.path, copy)
        elif copy.is_file():
            # The file yields nothing now (emptied, garbage): its last good copy serves instead.
            status.error = f"{status.source}: no usable entry; using the last good copy"
            status.report = SourceReport(source=status.source)
            status.path, status.using_copy = copy, True
            _add_entries(builder, iter_file(copy, status.report), block, allow)
        else:
            status.error = f"{status.source}: no usable entry"

    def _copy_path(self, source: str) -> Path:
        digest = hashlib.sha256(source.encode()).hexdigest()[:16]
        return self.cache_dir / "copies" / f"{Path(source).name[:40]}-{digest}.txt"

    def _writable(self) -> bool:
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
        return os.access(self.cache_dir, os.W_OK)

    def _save_statuses(self, plan: list[SourceStatus]) -> None:
        data = [status.to_json() | {"skipped": dict(status.report.skipped)} for status in plan]
        target = self.cache_dir / REPORTS_FILE
        temp = target.with_suffix(".tmp")
        try:
            temp.write_text(json.dumps(data))
            os.replace(temp, target)
        except OSError as exc:
            log.warning("cannot save list reports in %s: %s", self.cache_dir, exc)

    def _saved_statuses(self, plan: list[SourceStatus]) -> list[SourceStatus] | None:
        """The reports of the build the index file came from (None when they do not fit)."""
        try:
            saved = json.loads((self.cache_dir / REPORTS_FILE).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(saved, list) or len(saved) != len(plan):
            return None
        for status, data in zip(plan, saved, strict=True):
            if not isinstance(data, dict) or data.get("source") != status.source:
                return None
            status.report = SourceReport.from_json(data)
            status.error = status.error or data.get("error")
        return plan

    # Running (on the event loop)

    async def load(self, *, download: bool = False) -> BuildResult:
        """Build off the event loop, then swap the new index in (one assignment)."""
        async with self._lock:
            result = await asyncio.to_thread(self.build, download=download)
            old, self.index, self.sources = self.index, result.index, result.sources
            if old is not result.index:
                old.close()
        how = "opened" if result.reused else "built"
        log.info(
            "lists: %s index of %d names from %d sources in %.2f s",
            how,
            len(result.index),
            len(result.sources),
            result.seconds,
        )
        return result

    def stale_remotes(self, now: float | None = None) -> bool:
        """Whether a remote source was never downloaded or is due for a refresh."""
        now = time.time() if now is None else now
        return any(
            s.kind == "remote"
            and (s.fetched_at is None or now - s.fetched_at >= self.config.refresh)
            for s in self.sources
        )

    async def run(self) -> None:
        """Keep remote sources fresh: download when due, rebuild only when one changed."""
        has_remote = any(is_remote(source) for _c, source in self.pairs)
        if not has_remote or self.config.refresh <= 0:
            return  # refresh 0: an offline installation; `filterdns lists update` still works
        while True:
            if self.stale_remotes():
                try:
                    await self.load(download=True)
                except Exception:  # a refresh must never stop the proxy
                    log.exception("lists: refresh failed; the current index stays")
            await asyncio.sleep(_next_due(self.sources, self.config.refresh))

    def close(self) -> None:
        """Release the mapped index file."""
        self.index.close()
        self.index = DomainIndex.empty()


def _add_entries(
    builder: IndexBuilder, entries: Iterator[tuple[str, bool]], block: int, allow: int
) -> None:
    """Stream a source's entries into the builder: block names in bulk, allow names one by one."""
    allowed: list[str] = []

    def blocked() -> Iterator[str]:
        for name, is_allow in entries:
            if is_allow:
                allowed.append(name)  # adblock exceptions: few, kept aside
            else:
                yield name

    builder.add_many(block, blocked())
    builder.add_many(allow, allowed)


def _next_due(sources: Sequence[SourceStatus], refresh: float) -> float:
    """Seconds until a remote source is due: its refresh period, or a retry after a failure."""
    now = time.time()
    due = [
        RETRY_AFTER_FAILURE
        if s.error is not None or s.fetched_at is None
        else s.fetched_at + refresh - now
        for s in sources
        if s.kind == "remote"
    ]
    return max(MIN_WAIT, min(due, default=refresh), 0.0)


def _fingerprint(plan: Sequence[SourceStatus]) -> str:
    """Changes whenever a source, its file or its content would change the index."""
    digest = hashlib.sha256(f"filterdns {__version__}".encode())
    for status in plan:
        digest.update(f"\0{status.category}\0{status.source}\0{status.path}".encode())
        if status.path is not None:
            try:
                stat = status.path.stat()
            except OSError:
                continue
            digest.update(f"\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def _has_entries(path: Path) -> str | None:
    """Validation of a download: None when it yields at least one name, else why not."""
    report = SourceReport(source=str(path))
    for _entry in iter_file(path, report):
        return None
    skipped = ", ".join(f"{reason} {count}" for reason, count in report.skipped.most_common(3))
    return f"no usable entry in {report.lines} lines" + (f" ({skipped})" if skipped else "")
