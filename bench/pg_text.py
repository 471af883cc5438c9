"""Where bench/pg_bench.py's CPU time went, and the text of its result: the tables, the
machine, and its section of bench/RESULTS.md ("Many instances, one PostgreSQL")."""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import run  # bench/run.py: machine(), sections

from tests.integration import postgres

SECTION = "## Many instances, one PostgreSQL"


# ---------------------------------------------------------------- CPU accounting


def cpu_of(pids: list[int]) -> float:
    """User + system seconds the processes used so far (those still running)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def pg_pids(main: int) -> list[int]:
    """The postmaster and its children (the connections' backends, the writers)."""
    found = [main]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == main:
                found.append(int(entry.name))
    return found


def busy_seconds() -> float:
    """CPU seconds the whole machine spent busy so far."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def flood_text(result: dict, secs: float) -> list[str]:
    perfs, scraped = result["perf"], result["metrics"]
    rows, drops = result["rows"], result["drops"]
    ours, pgs, busy, wall = result["cpu"]
    out = [
        "| instance | answers/s (dnsperf) | answered | lost | rows written/s during the flood "
        "| rows in PostgreSQL | drops (metrics / `drops` table) | RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, (perf, got) in enumerate(zip(perfs, scraped, strict=True), 1):
        site = f"site{i}"
        out.append(
            f"| {site} | {perf['qps']:,.0f} | {perf['answered']:,.0f} | {perf['lost']:,.0f} | "
            f"{got.get('filterdns_log_written_total', 0) / secs:,.0f} | "
            f"{int(str(rows.get(site, 0))):,} | "
            f"{got.get('filterdns_log_dropped_total', 0):,.0f} / {int(str(drops.get(site) or 0)):,}"
            f" | {result['rss'][i - 1]:.0f} |"
        )
    qps = sum(p["qps"] for p in perfs)
    answered = sum(p["answered"] for p in perfs)
    lost = sum(p["lost"] for p in perfs)
    written = sum(g.get("filterdns_log_written_total", 0) for g in scraped)
    in_pg = sum(int(str(n)) for n in rows.values())
    dropped = sum(g.get("filterdns_log_dropped_total", 0) for g in scraped)
    in_drops = sum(int(str(n or 0)) for n in drops.values())
    cores = os.cpu_count() or 1
    out += [
        f"| **all** | **{qps:,.0f}** | {answered:,.0f} | {lost:,.0f} | **{written / secs:,.0f}** "
        f"| {in_pg:,} | {dropped:,.0f} / {in_drops:,} | |",
        "",
        f"Per core ({cores} cores shared by the {len(perfs)} servers, PostgreSQL and dnsperf): "
        f"{qps / cores:,.0f} answers and {written / secs / cores:,.0f} rows a second. CPU over "
        f"the {wall:.1f} s flood: filterdns {ours:.1f} core-s ({ours / wall:.2f} cores), "
        f"PostgreSQL {pgs:.1f} core-s ({pgs / wall:.2f} cores), the rest (dnsperf, kernel, "
        f"others' work) {busy - ours - pgs:.1f} core-s; the machine was busy "
        f"{busy / wall / cores:.0%} of the time (load average {result['load']:.1f} as it "
        "began). Every query answered: "
        f"{'yes' if lost == 0 else f'no, {lost:,.0f} lost'}; "
        f"rows in PostgreSQL + drops = {in_pg + in_drops:,} for {answered:,.0f} answers "
        f"(a query still in flight when dnsperf stops is logged but not counted as answered).",
    ]
    return out


def report_text(result: dict) -> list[str]:
    out = [
        "| report (`filterdns report --json`) | blocked lookups counted | runs (s) | median (s) |",
        "|---|---|---|---|",
    ]
    for label, args in result["reports"].items():
        *times, total = result["times"][label]
        out.append(
            f"| {label} (`{' '.join(args)}`) | {total:,.0f} | "
            f"{', '.join(f'{t:.2f}' for t in times)} | **{statistics.median(times):.2f}** |"
        )
    written, size = result["written"], result["size"]
    out += [
        "",
        f"{written:,} rows over {result['days'] + 1} day partitions (school hours, weekends at "
        "15 %), 4 instances, 40 classes, COPYed with the four indexes then VACUUM ANALYZE in "
        f"{result['fill']:.0f} s ({written / result['fill']:,.0f} rows/s); database "
        f"{size / 2**30:.2f} GB "
        f"({size / written:.0f} bytes a row all told). Load average before the reports: "
        f"{result['load']:.1f} on {os.cpu_count()} cores (others' work shares this machine).",
    ]
    return out


def text_of(args: argparse.Namespace, flooded: dict, reported: dict, took: float) -> str:
    version = postgres_version()
    lines = [
        f"# Many instances, one PostgreSQL ({datetime.now(UTC):%Y-%m-%d %H:%M UTC})",
        "",
        SECTION,
        "",
        *[line for line in run.machine() if line.startswith(("- CPU", "- Python", "- dnsperf"))],
        f"- PostgreSQL {version}, a throw-away cluster on loopback, durable defaults (fsync, "
        "synchronous_commit on), shared_buffers 512MB, max_wal_size 4GB; no pinning",
        f"- `python bench/pg_bench.py --secs {args.secs:g} --rows {args.rows} --instances "
        f"{args.instances}` (`make bench-pg{' QUICK=1' if args.quick else ''}`)",
        "",
        f"### {args.instances} instances logging into one database, {args.secs:g} s flood",
        "",
        f"Each `filterdns serve` (`server.instance: site1..site{args.instances}`) is flooded by its"
        " own dnsperf (`-c 4 -q 100`) with names from its class profile's four category lists:"
        " every answer is a blocked one and one log row (batches of 500 rows or 1 s, one COPY "
        "each, queue bound 10,000).",
        "",
        *flood_text(flooded, args.secs),
        "",
        f"The same, each instance paced at {flooded['paced']['qps']:,} queries a second (dnsperf"
        " `-Q`, 80 % of the slowest instance's rows a second above), on a fresh database:",
        "",
        *flood_text(flooded["paced"], args.secs),
        "",
        f"### `filterdns report` over {reported['written']:,} rows",
        "",
        *report_text(reported),
        "",
        f"Run time {took:.0f} s.",
        "",
    ]
    return "\n".join(lines)


def postgres_version() -> str:
    done = subprocess.run([str(postgres.binaries() / "postgres"), "--version"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    found = re.search(r"\) (\d+\.\d+)", done.stdout)
    return found.group(1) if found else "?"


def put_section(results: Path, section: str, source: str) -> None:
    """Replace (or add) the SECTION of bench/RESULTS.md (its "###" parts with it)."""
    body = f"{section.rstrip()}\n\n(Written by `make bench-pg`: `bench/results/{source}`.)\n"
    text = results.read_text() if results.exists() else "# Latest benchmark results\n"
    text = run.drop_section(text, SECTION)
    results.write_text(text.rstrip() + "\n\n" + body)
