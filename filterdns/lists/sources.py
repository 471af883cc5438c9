"""One list source into the index builder: shipped, local or downloaded, judged, with its copy.

`resolve_sources` says which sources make up each category. `add_source` parses one of them into
an `IndexBuilder` and records what it yielded on its `SourceStatus`. A local file or a download
that fails the checks of `lists.validate` is rejected: the names it added are discarded, its last
good copy is parsed in its place, and the status says why, in the words `lists stats` shows.

A local file's last good copy lives in `lists.cache_dir/copies`. The file is first copied there
under a temporary name and that snapshot is what gets parsed and judged, so the copy kept is
byte for byte what was accepted, even when the file changes meanwhile; a file unchanged since
its copy was taken (same size and time) is read from the copy without a snapshot.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from filterdns.config import (
    DEFAULT_CATEGORIES,
    NEVER_BLOCK_CATEGORY,
    SHIPPED_PREFIX,
    SHIPPED_SOURCE,
)
from filterdns.lists.index import DomainIndex
from filterdns.lists.indexbuild import IndexBuilder
from filterdns.lists.indexfile import ListInfo
from filterdns.lists.parse import iter_file
from filterdns.lists.shipped import NEVER_BLOCK_SOURCE, SHIPPED
from filterdns.lists.sourcereport import SourceReport
from filterdns.lists.validate import (
    Stamp,
    content_problem,
    good_entries,
    judge,
    read_record,
    write_record,
)

log = logging.getLogger(__name__)

COPIES_DIR = "copies"


def is_remote(source: str) -> bool:
    """Whether `source` is downloaded (http:// or https://) rather than read from disk."""
    return source.startswith(("http://", "https://"))


def is_local(source: str) -> bool:
    """Whether `source` is a file of the administrator's (not shipped, not downloaded)."""
    return not is_remote(source) and not source.startswith(SHIPPED_PREFIX)


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
    # The never-block list first: its entries except names from every category.
    pairs: list[tuple[str, str]] = [(NEVER_BLOCK_CATEGORY, NEVER_BLOCK_SOURCE)]
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
    rejected: str | None = None  # why the source's content was refused (see lists.validate)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready summary (used by `lists stats --json` and the reports file)."""
        return {
            "category": self.category,
            "source": self.source,
            "kind": self.kind,
            "path": str(self.path) if self.path else None,
            "error": self.error,
            "rejected": self.rejected,
            "fetched_at": self.fetched_at,
            "using_copy": self.using_copy,
            **self.report.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> SourceStatus:
        """The inverse of to_json (ill-typed values read as empty)."""

        def text(key: str) -> str | None:
            value = data.get(key)
            return value if isinstance(value, str) else None

        fetched_at = data.get("fetched_at")
        path = text("path")
        return cls(
            category=text("category") or "",
            source=text("source") or "",
            kind=text("kind") or "file",
            report=SourceReport.from_json(data),
            path=Path(path) if path else None,
            error=text("error"),
            fetched_at=float(fetched_at) if isinstance(fetched_at, int | float) else None,
            using_copy=data.get("using_copy") is True,
            rejected=text("rejected"),
        )


@dataclass
class BuildResult:
    """A finished build: the index and every source's status."""

    index: DomainIndex
    sources: list[SourceStatus]
    reused: bool  # the index file on disk was still current: nothing was parsed
    seconds: float
    changed: list[str] = field(default_factory=list)  # remote sources with a new download
    written: bool = False  # the index is the file `index.bin` (else it lives in memory)


def rejection(source: str, reason: str, has_copy: bool) -> str:
    """The error text of a rejected source, as `lists stats` shows it."""
    outcome = "the last good copy serves" if has_copy else "no good copy, so it adds nothing"
    return f"{source}: rejected: {reason}; {outcome}"


def copy_path(cache_dir: Path, source: str) -> Path:
    """Where the last good copy of a local file is kept."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    suffix = ".txt.gz" if source.endswith(".gz") else ".txt"  # a gzip list stays one
    return cache_dir / COPIES_DIR / f"{Path(source).name[:40]}-{digest}{suffix}"


def download_check(
    url: str, previous: Path, max_shrink: float, verdicts: dict[str, str | int]
) -> Callable[[Path], str | None]:
    """The `validate` callback of a download: judge it against the copy at `previous`.

    Records the verdict in `verdicts[url]`: the entry count when accepted, the reason when not.
    """

    def check(download: Path) -> str | None:
        report = SourceReport(url)
        try:
            for _entry in iter_file(download, report):
                pass
        except OSError as exc:
            failure = f"cannot read the download: {exc.strerror or exc}"
            verdicts[url] = failure
            return failure
        reason = judge(report, good_entries(previous), max_shrink)
        verdicts[url] = reason if reason is not None else report.entries + report.allow_entries
        return reason

    return check


@dataclass
class SourceAdder:
    """Parses sources into one builder; `cache_dir` None means nothing may be written."""

    builder: IndexBuilder
    cache_dir: Path | None
    max_shrink: float

    def add(self, status: SourceStatus) -> tuple[int, int]:
        """Parse `status`'s source into two new lists (block, allow) and return their ids."""
        if status.kind == "file":
            return self._add_local(status)
        block, allow = self._lists(status)
        if status.path is None:
            return block, allow
        report = SourceReport(status.source)
        try:
            _add_entries(self.builder, report, iter_file(status.path, report), block, allow)
        except OSError as exc:
            self._discard(block, allow)
            status.error = f"{status.source}: cannot read {status.path}: {exc.strerror or exc}"
            return block, allow
        problem = content_problem(report) if status.kind == "remote" else None
        if problem is not None:  # a copy kept by an older version may be junk
            self._discard(block, allow)
            report = SourceReport(status.source)
            status.rejected, status.using_copy = f"the kept download: {problem}", False
            status.error = rejection(status.source, status.rejected, False)
            log.warning("%s (category %s)", status.error, status.category)
        status.report = report
        return block, allow

    def _lists(self, status: SourceStatus) -> tuple[int, int]:
        if status.category == NEVER_BLOCK_CATEGORY:  # every entry is an allow entry
            only = self.builder.add_list(ListInfo(status.category, status.source, allow=True))
            return only, only
        block = self.builder.add_list(ListInfo(status.category, status.source))
        allow = self.builder.add_list(ListInfo(status.category, status.source, allow=True))
        return block, allow

    def _discard(self, *ids: int) -> None:
        for list_id in ids:
            self.builder.discard(list_id)

    def _add_local(self, status: SourceStatus) -> tuple[int, int]:
        source = Path(status.source)
        copy = copy_path(self.cache_dir, status.source) if self.cache_dir is not None else None
        stamp = Stamp.of(source)
        if stamp is None or not source.is_file():
            reason = "the file is missing" if not source.exists() else "it is not a readable file"
        else:
            record = read_record(copy) if copy is not None else None
            if copy is not None and record is not None and record.source == stamp:
                # Unchanged since it was judged and copied: the copy holds the same bytes.
                ids = self._lists(status)
                if self._parse_copy(status, copy, ids):
                    return ids
            ids_or_reason = self._judge_local(status, source, stamp, copy)
            if not isinstance(ids_or_reason, str):
                return ids_or_reason
            reason = ids_or_reason
        # Rejected: the last good copy serves in its place, if there is one.
        status.rejected = reason
        ids = self._lists(status)
        has_copy = copy is not None and copy.is_file() and self._parse_copy(status, copy, ids)
        status.using_copy = has_copy
        status.error = rejection(status.source, reason, has_copy)
        log.warning("%s (category %s)", status.error, status.category)
        return ids

    def _parse_copy(self, status: SourceStatus, copy: Path, ids: tuple[int, int]) -> bool:
        report = SourceReport(status.source)
        try:
            _add_entries(self.builder, report, iter_file(copy, report), *ids)
        except OSError:
            self._discard(*ids)
            return False
        status.report = report
        if status.rejected is not None:
            status.path = copy
        return True

    def _judge_local(
        self, status: SourceStatus, source: Path, stamp: Stamp, copy: Path | None
    ) -> tuple[int, int] | str:
        """Parse a snapshot of the file; its ids when accepted (and kept), else the reason."""
        try:
            with source.open("rb"):
                pass
        except OSError as exc:
            return f"it cannot be read: {exc.strerror or exc}"
        snapshot: Path | None = None
        if copy is not None:
            try:
                snapshot = _snapshot(source, copy.parent)
            except OSError as exc:  # a full disk: judge the file in place, keep the old copy
                log.warning("list %s: cannot copy it to %s: %s", source, copy.parent, exc)
        try:
            return self._judge_file(status, snapshot or source, stamp, copy, snapshot is not None)
        finally:  # also when the build is stopped half way (SIGTERM)
            if snapshot is not None:
                snapshot.unlink(missing_ok=True)

    def _judge_file(
        self, status: SourceStatus, path: Path, stamp: Stamp, copy: Path | None, keep: bool
    ) -> tuple[int, int] | str:
        block, allow = self._lists(status)
        report = SourceReport(status.source)
        try:
            _add_entries(self.builder, report, iter_file(path, report), block, allow)
            previous = good_entries(copy) if copy is not None else None
        except OSError as exc:
            self._discard(block, allow)
            return f"it cannot be read: {exc.strerror or exc}"
        reason = judge(report, previous, self.max_shrink)
        if reason is not None:
            self._discard(block, allow)
            return reason
        status.report = report
        if keep and copy is not None:
            try:
                os.replace(path, copy)
            except OSError as exc:
                log.warning("list %s: cannot keep a copy in %s: %s", status.source, copy, exc)
            else:
                write_record(copy, report.entries + report.allow_entries, stamp)
        return block, allow


def _snapshot(source: Path, directory: Path) -> Path:
    """A copy of `source` under a temporary name in `directory` (removed by the caller)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    suffix = ".part.gz" if source.suffix == ".gz" else ".part"  # read as gzip too
    fd, name = tempfile.mkstemp(dir=directory, prefix=".", suffix=suffix)
    os.close(fd)
    try:
        shutil.copyfile(source, name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    return Path(name)


def _add_entries(
    builder: IndexBuilder,
    report: SourceReport,
    entries: Iterator[tuple[str, bool]],
    block: int,
    allow: int,
) -> None:
    """Stream a source's entries into the builder: block names in bulk, allow names one by one,
    then the regex rules the parser kept on the report."""
    allowed: list[str] = []

    def blocked() -> Iterator[str]:
        for name, is_allow in entries:
            if is_allow:
                allowed.append(name)  # adblock exceptions: few, kept aside
            else:
                yield name

    builder.add_many(block, blocked())
    builder.add_many(allow, allowed)
    for pattern, is_allow, line in report.regexes:
        builder.add_regex(allow if is_allow else block, pattern, line)
