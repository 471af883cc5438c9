"""The `lists stats` and `lists update` commands: per source and category, what the index holds.

`stats` builds the index as the server would (reusing the one on disk when it is current);
`update` downloads the remote sources first and shows what changed. Both print rich tables, or
`--json`, and say when a running server is building its own index meanwhile.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from filterdns.config import Config
from filterdns.lists.cachedir import running_build
from filterdns.lists.catalog import ENTRY_BYTES, BuildResult, ListSet


def run(config: Config, args: argparse.Namespace) -> int:
    """Build (`update`: download first) and show the category lists; the exit code."""
    listset = ListSet(config.lists, config.categories)
    before = _entries_by_source(listset) if args.lists_command == "update" else {}
    result = listset.build(download=args.lists_command == "update")
    try:
        if args.json:
            data = _lists_json(result, before)
            building = running_build(listset.cache_dir)
            data["building"] = None if building is None else dataclasses.asdict(building)
            print(json.dumps(data, default=str))
        else:
            console = Console(soft_wrap=True)
            if not console.is_terminal:
                console.width = 160  # a pipe or a file: no terminal width to fit
            _print_lists(console, result, before, args.lists_command)
            _print_building(console, listset.cache_dir)
    finally:
        result.index.close()
    return 0


def _entries_by_source(listset: ListSet) -> dict[str, int]:
    """Entries per source of the index on disk, before an update."""
    previous = listset.build(download=False)
    previous.index.close()
    return {s.source: s.report.entries for s in previous.sources}


def _lists_json(result: BuildResult, before: dict[str, int]) -> dict[str, object]:
    total = len(result.index)
    sources = []
    for status in result.sources:
        entry = status.to_json()
        entry["bytes"] = (status.report.entries + status.report.allow_entries) * ENTRY_BYTES
        if before:
            entry["entries_before"] = before.get(status.source)
        sources.append(entry)
    return {
        "names": total,
        "index_bytes": result.index.nbytes,
        "bytes_per_name": round(result.index.nbytes / total, 2) if total else 0,
        "reused": result.reused,
        "seconds": round(result.seconds, 3),
        "changed": result.changed,
        "categories": _per_category(result),
        "sources": sources,
    }


def _per_category(result: BuildResult) -> dict[str, dict[str, int]]:
    categories: dict[str, dict[str, int]] = {}
    for status in result.sources:
        counts = categories.setdefault(
            status.category, {"sources": 0, "entries": 0, "skipped": 0, "bytes": 0}
        )
        report = status.report
        counts["sources"] += 1
        counts["entries"] += report.entries
        counts["skipped"] += sum(report.skipped.values())
        counts["bytes"] += (report.entries + report.allow_entries - report.duplicates) * ENTRY_BYTES
    return categories


def _short(source: str) -> str:
    """A source as a table cell: a URL keeps its host and the end of its path."""
    if "://" not in source:
        return source
    host, _, path = source.split("://", 1)[1].partition("/")
    parts = path.split("/")
    tail = "/".join(parts[-2:])
    return f"{host}/{tail}" if len(parts) <= 2 else f"{host}/…/{tail}"


def _print_lists(
    console: Console, result: BuildResult, before: dict[str, int], command: str
) -> None:
    console.print(_sources_table(result, before, command))
    console.print(_categories_table(result))
    names = len(result.index)
    per_name = result.index.nbytes / names if names else 0
    how = "reused from disk" if result.reused else f"built in {result.seconds:.2f} s"
    console.print(
        f"{names:,} names in {len(result.sources)} sources; index {result.index.nbytes / 2**20:.1f}"
        f" MiB ({per_name:.1f} bytes per name), {how}"
    )
    if command == "update":
        changed = ", ".join(result.changed) or "none"
        console.print(f"downloaded with changes: {changed}")


def _sources_table(result: BuildResult, before: dict[str, int], command: str) -> Table:
    """One row per source: entries (and the change an update made), skipped lines, status."""
    table = Table(title="filterdns lists", show_lines=False)
    for column in ("category", "source", "entries", "dupes", "skipped", "status"):
        justify = "right" if column in ("entries", "dupes", "skipped") else "left"
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for status in result.sources:
        report = status.report
        entries = f"{report.entries:,}"
        if report.allow_entries:
            entries += f" (+{report.allow_entries:,} allow)"
        if report.regex_entries:
            entries += f" ({report.regex_entries:,} regex)"
        if command == "update" and status.source in before:
            delta = report.entries - before[status.source]
            entries += f" ({delta:+,})" if delta else ""
        reasons = ", ".join(f"{r} {n:,}" for r, n in report.skipped.most_common(2))
        skipped = f"{sum(report.skipped.values()):,}" + (f" ({reasons})" if reasons else "")
        error = status.error
        if error is not None and error.startswith(f"{status.source}: "):
            error = error[len(status.source) + 2 :]
        state = status.kind if error is None else f"[red]{escape(error)}[/red]"
        if status.using_copy and status.rejected is None:  # a rejection says so itself
            state += " (last good copy)"
        table.add_row(
            status.category,
            _short(status.source),
            entries,
            f"{report.duplicates:,}",
            skipped,
            state,
        )
    return table


def _categories_table(result: BuildResult) -> Table:
    summary = Table(title="per category")
    for column in ("category", "sources", "entries", "skipped", "memory"):
        summary.add_column(column, justify="left" if column == "category" else "right")
    for category, counts in _per_category(result).items():
        summary.add_row(
            category,
            str(counts["sources"]),
            f"{counts['entries']:,}",
            f"{counts['skipped']:,}",
            f"{counts['bytes'] / 2**10:,.0f} KiB",
        )
    return summary


def _print_building(console: Console, cache_dir: Path) -> None:
    """Say so when a running server is building its index (it answers from another meanwhile)."""
    building = running_build(cache_dir)
    if building is not None:
        since = datetime.fromtimestamp(building.since).strftime("%H:%M:%S")
        console.print(
            f"building: the running server (pid {building.pid}) has been building its index "
            f"since {since}; {building.serving} serves until it is done"
        )
