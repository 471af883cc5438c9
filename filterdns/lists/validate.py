"""Whether a parsed list source may replace its last good copy, and what that copy held.

A list source is parsed leniently (bad lines are skipped and counted), so junk "parses" too: a
binary file or an HTML page yields a few accidental names, and an emptied or truncated file
yields few or none. Serving that would silently empty a category, so a source is rejected, and
its last good copy serves instead, when

* it is not text: a NUL byte anywhere, or more than half of its lines not UTF-8;
* it yields no entry at all;
* most of its content lines (neither blank nor comments) are invalid: no name in any format;
* it holds fewer than `(100 - max_shrink) %` of the entries of the last good copy
  (`lists.max_shrink`, default 90: from 10,000 entries to 900 is rejected, to 1,100 accepted).

The same rules judge local files, downloads and the kept copies of both (a copy is never judged
against itself for shrinking). The entry count of each good copy is remembered in a small file
beside it (`<copy>.good.json`, with the copy's size and time so a stale record is noticed and
the copy counted again), so the shrink check costs no second parse.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from filterdns.lists.parse import iter_file
from filterdns.lists.sourcereport import INVALID_LINE_REASONS, SourceReport

GOOD_SUFFIX = ".good.json"
DEFAULT_MAX_SHRINK = 90.0


def content_problem(report: SourceReport) -> str | None:
    """Why a parsed source is not a usable list (not text, no entry, mostly invalid), or None."""
    if report.nul_lines:
        return f"not text: NUL bytes on {report.nul_lines:,} of {report.lines:,} lines"
    if report.undecodable_lines * 2 > report.lines:
        return f"not text: {report.undecodable_lines:,} of {report.lines:,} lines are not UTF-8"
    if not report.entries + report.allow_entries:
        reasons = ", ".join(f"{r} {n:,}" for r, n in report.skipped.most_common(3))
        return f"no usable entry in {report.lines:,} lines" + (f" ({reasons})" if reasons else "")
    if report.invalid_lines * 2 > report.content_lines:
        example = next(
            (shown[0] for reason, shown in report.examples.items()
             if reason in INVALID_LINE_REASONS and shown),
            None,
        )  # fmt: skip
        return (
            f"mostly invalid: {report.invalid_lines:,} of {report.content_lines:,} lines are not"
            " list entries" + (f", e.g. {example}" if example else "")
        )
    return None


def shrink_problem(entries: int, previous: int | None, max_shrink: float) -> str | None:
    """Why `entries` is too few against the last good copy's `previous`, or None.

    `max_shrink` is the largest drop accepted, in percent; 100 accepts any.
    """
    if previous is None or previous <= 0 or entries * 100 >= (100 - max_shrink) * previous:
        return None
    drop = round(100 * (previous - entries) / previous)
    return f"{drop} % smaller than the last good copy ({previous:,} -> {entries:,} entries)"


def judge(report: SourceReport, previous: int | None, max_shrink: float) -> str | None:
    """Why a parsed source must not replace its last good copy (`previous` entries), or None."""
    return content_problem(report) or shrink_problem(
        report.entries + report.allow_entries, previous, max_shrink
    )


@dataclass(frozen=True, slots=True)
class Stamp:
    """A file's size and modification time: a change of either means new content."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> Stamp | None:
        """The stamp of `path`, or None when it cannot be read."""
        try:
            stat = path.stat()
        except OSError:
            return None
        return cls(stat.st_size, stat.st_mtime_ns)


@dataclass(frozen=True, slots=True)
class GoodRecord:
    """What is remembered of a good copy: its entries, and the source stamp it was taken from."""

    entries: int
    source: Stamp | None = None  # a local file's stamp when the copy was taken


def _record_path(copy: Path) -> Path:
    return copy.with_name(copy.name + GOOD_SUFFIX)


def read_record(copy: Path) -> GoodRecord | None:
    """The record of `copy`, if it exists and still describes the file on disk."""
    stamp = Stamp.of(copy)
    if stamp is None:
        return None
    try:
        data = json.loads(_record_path(copy).read_text(encoding="utf-8"))
        if [data["size"], data["mtime_ns"]] != [stamp.size, stamp.mtime_ns]:
            return None
        source = data.get("source")
        return GoodRecord(
            int(data["entries"]), Stamp(int(source[0]), int(source[1])) if source else None
        )
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def write_record(copy: Path, entries: int, source: Stamp | None = None) -> None:
    """Remember that `copy` is good and holds `entries` (best effort: a lost one is recounted)."""
    stamp = Stamp.of(copy)
    if stamp is None:
        return
    data: dict[str, object] = {"size": stamp.size, "mtime_ns": stamp.mtime_ns, "entries": entries}
    if source is not None:
        data["source"] = [source.size, source.mtime_ns]
    target = _record_path(copy)
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        temp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(temp, target)
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink()


def good_entries(copy: Path) -> int | None:
    """Entries of the last good copy: from its record, else counted (None without a good one)."""
    record = read_record(copy)
    if record is not None:
        return record.entries
    if not copy.is_file():
        return None
    report = SourceReport(str(copy))
    try:
        for _entry in iter_file(copy, report):
            pass
    except OSError:
        return None
    if content_problem(report) is not None:
        return None  # a copy kept by an older version may be junk: nothing to compare with
    entries = report.entries + report.allow_entries
    write_record(copy, entries)
    return entries
