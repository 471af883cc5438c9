"""Many instances, one PostgreSQL (issue 18): log rows a second from four `filterdns serve`
processes into one database, with the drops, then `filterdns report` over ten million rows.

    python bench/pg_bench.py [--secs 30] [--rows 10000000] [--instances 4] [--quick] [--keep]

Everything on loopback, free ports (never 53), with its own throw-away PostgreSQL cluster
(tests/integration/postgres.py's binaries and user, so it runs as root too) started with the
server's durable defaults (fsync and synchronous_commit on; the tests' cluster turns them off):

1. Flood. `--instances` real `filterdns serve` processes, `server.instance: site1..siteN`,
   `log.database` the cluster's URL, no upstream needed: every name asked is in one of four
   category lists of the class profile, so every answer is a blocked one and a log row. One
   dnsperf per instance floods it for `--secs` seconds. Measured: answers a second (dnsperf),
   rows written (the servers' /metrics at the end of the flood, then the rows per instance in
   PostgreSQL after a clean stop), the drops the servers counted (metrics and the `drops`
   table), and the CPU time of the servers, of PostgreSQL and of the rest. Then the same on a
   fresh database with each instance paced at 80 % of the slowest one's rows a second (dnsperf
   `-Q`): what they sustain with no drop.
2. Report. A second database filled by COPY with `--rows` school-shaped blocked lookups (names
   from the shared query workload, 40 classes, 4 instances, school hours, weekends quiet) over
   30 days, VACUUM ANALYZE, then `filterdns report --json` as a user runs it, three times
   each: the week, one profile's week, one instance's week, the last 24 hours. Its size.

`--quick`: 1,000,000 rows and a 10 s flood. The result (bench/pg_text.py) is printed, written to
bench/results/<UTC time>-pg.md and put in bench/RESULTS.md as "Many instances, one PostgreSQL".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # bench/run.py: ports, the Server wrapper, machine(), sections

ROOT = run.ROOT
sys.path.insert(0, str(ROOT))
from pg_text import busy_seconds, cpu_of, pg_pids, put_section, text_of  # noqa: E402

from filterdns.querylog import pgconn, pgschema  # noqa: E402
from tests.integration import postgres  # noqa: E402

FLOOD_LISTS = ("adult", "gambling", "games", "social")
PROFILES = [f"class-{i}" for i in range(1, 41)]
DAYS = 30
CHUNK = 100_000  # rows generated and sent at once
METRIC = re.compile(r"^(filterdns_log_(?:written|dropped)_total|filterdns_log_queue_depth) (\S+)",
                    re.M)  # fmt: skip


class BenchPg(postgres.PgServer):
    """The tests' throw-away cluster, started with durable settings and room for a bulk load."""

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
            " -c shared_buffers=512MB -c max_wal_size=4GB -c checkpoint_timeout=15min"
        )
        log = str(self.directory / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")

    def postmaster(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])


def pg_cluster() -> tuple[BenchPg, Path]:
    """A started cluster in a fresh directory owned by the user it runs as."""
    user = postgres._owner()
    directory = Path(tempfile.mkdtemp(prefix="fdns-pgbench-"))
    if user is not None:
        entry = postgres.pwd.getpwnam(user)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    server = BenchPg(postgres.binaries(), directory, user)
    server.init()
    server.start()
    return server, directory


# ---------------------------------------------------------------- 1. the flood


def flood_files(work: Path, rng: random.Random) -> list[str]:
    """The four category lists (2,000 names each) and the query file; their names."""
    names = []
    for category in FLOOD_LISTS:
        listed = [f"{run.word(rng)}{i}.{run.word(rng)}.{rng.choice(['com', 'net', 'vn'])}"
                  for i in range(2000)]  # fmt: skip
        (work / f"{category}.txt").write_text("".join(n + "\n" for n in listed))
        names += listed
    queries = [
        f"{rng.choice(['www', 'm', 'cdn', 'img'])}.{rng.choice(names)} A" for _ in range(50000)
    ]
    (work / "flood.q").write_text("\n".join(queries) + "\n")
    return names


def instance_config(work: Path, pg_url: str, site: str, port: int, metrics: int) -> Path:
    path = work / f"{site}.yaml"
    lists = "\n".join(f"  bench-{c}: [{work / f'{c}.txt'}]" for c in FLOOD_LISTS)
    path.write_text(f"""server:
  listen: ["127.0.0.1:{port}"]
  instance: {site}
  timezone: UTC
  rate_limit: null  # every query comes from one address here
  metrics: "127.0.0.1:{metrics}"
upstreams:
  servers: ["127.0.0.1:9"]  # never asked: every name is blocked
categories:
{lists}
profiles:
  class-7a:
    age_band: 13-15
    categories: [{", ".join(f"bench-{c}" for c in FLOOD_LISTS)}]
default_profile: class-7a
lists: {{download_defaults: false, cache_dir: {work / f"lists-{site}"}, refresh: 0}}
log: {{database: "{pg_url}"}}
""")
    return path


def dnsperf(port: int, qfile: Path, secs: float, qps: int) -> subprocess.Popen[str]:
    """dnsperf for `secs` seconds, as fast as answers come (`qps` 0) or at `qps` a second."""
    argv = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(qfile), "-l", str(secs),
            "-c", "4", "-q", "100", "-t", "2", *(["-Q", str(qps)] if qps else [])]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def perf_result(out: str) -> dict[str, float]:
    def num(pattern: str) -> float:
        found = re.search(pattern, out)
        return float(found.group(1)) if found else float("nan")

    return {
        "sent": num(r"Queries sent:\s+(\d+)"),
        "answered": num(r"Queries completed:\s+(\d+)"),
        "lost": num(r"Queries lost:\s+(\d+)"),
        "qps": num(r"Queries per second:\s+([\d.]+)"),
    }


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {name: float(value) for name, value in METRIC.findall(text)}


def flood(pg: BenchPg, work: Path, count: int, secs: float, qps: int = 0) -> dict[str, object]:
    """Start `count` instances on a fresh database, flood them all at once (each at `qps` a
    second, 0: as fast as they answer), count what arrived."""
    url = pg.new_database()
    flood_files(work, random.Random(18))
    servers, metrics = [], []
    for i in range(1, count + 1):
        port, mport = run.free_port(), run.free_port()
        cfg = instance_config(work, url, f"site{i}", port, mport)
        argv = [str(run.FILTERDNS), "serve", "-c", str(cfg)]
        servers.append(run.Server(f"site{i}", argv, port, work, ready=run.LISTS_READY))
        metrics.append(mport)
    try:
        for server in servers:
            server.start()
        run.log(f"{count} instances answering; flooding each for {secs:g} s")
        ours = [s.proc.pid for s in servers if s.proc]
        pgs = pg_pids(pg.postmaster())
        load = os.getloadavg()[0]
        before = (cpu_of(ours), cpu_of(pgs), busy_seconds(), time.monotonic())
        perfs = [dnsperf(s.port, work / "flood.q", secs, qps) for s in servers]
        outs = [p.communicate()[0] for p in perfs]
        after = (cpu_of(ours), cpu_of(pgs), busy_seconds(), time.monotonic())
        scraped = [scrape(m) for m in metrics]
        for server in servers:
            server.sample_rss()
    finally:
        for server in servers:
            server.stop()  # SIGTERM: a clean close writes every queued row
    rows = dict(postgres_rows(url, "SELECT instance, sum(hits) FROM queries GROUP BY 1"))
    drops = dict(postgres_rows(url, "SELECT instance, sum(count) FROM drops GROUP BY 1"))
    return {
        "perf": [perf_result(o) for o in outs], "metrics": scraped, "rows": rows,
        "drops": drops, "rss": [s.rss_mb for s in servers],
        "secs": secs, "load": load, "cpu": [after[k] - before[k] for k in range(4)], "qps": qps,
    }  # fmt: skip


def postgres_rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


# ---------------------------------------------------------------- 2. the report


HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 4, 10, 20, 20, 20, 20, 16, 20, 20, 16, 10, 8, 8, 6, 4, 2, 1, 1]
# The share of each category among the workload's names; bypass attempts go to BYPASS_NAMES.
CATEGORY_WEIGHTS = {"adult": 10, "gambling": 8, "games": 25, "social": 30, "malware": 7,
                    "video": 20}  # fmt: skip
BYPASS_SHARE = 0.02


class Lookups:
    """Blocked names as a school's log holds them: each name in one category, with the line of
    its list (as the policy records the source), bypass attempts on a few hundred names."""

    def __init__(self, rng: random.Random) -> None:
        cats = rng.choices(list(CATEGORY_WEIGHTS), list(CATEGORY_WEIGHTS.values()), k=100_000)
        names = run.MIX.read_text().split()
        self.names = [(n, c, i) for i, (n, c) in enumerate(zip(names, cats, strict=False))]
        self.bypass = [(f"{run.word(rng)}{i}-{rng.choice(['vpn', 'proxy', 'dns'])}.com",
                        "bypass", i) for i in range(300)]  # fmt: skip
        self.rng = rng

    def day(self, day: int, count: int, now: float) -> str:
        """`count` blocked lookups on the UTC day starting at `day` (mostly school hours), all
        before `now`, in time order, as COPY text."""
        rng, hours = self.rng, range(min(24, int((now - day) // 3600) + 1))
        picked = rng.choices(hours, weights=HOUR_WEIGHTS[: len(hours)], k=count)
        stamps = sorted(day + h * 3600 + rng.random() * min(3600, now - day - h * 3600)
                        for h in picked)  # fmt: skip
        lines = []
        for ts in stamps:
            site, profile, device = rng.randrange(1, 5), rng.randrange(1, 41), rng.randrange(600)
            pool = self.bypass if rng.random() < BYPASS_SHARE else self.names
            name, category, line = pool[rng.randrange(len(pool))]
            lines.append(
                f"site{site}\t{ts:.6f}\t10.{site}.{device // 250}.{device % 250}\tlab-{device}\t"
                f"class-{profile}\t{name}\tA\tblocked\t{category}\t"
                f"age band 13-15 blocks {category}\tblocked: {name} is in the {category} list\t"
                f"shipped:{category}.txt.gz:{line}\tnxdomain\t1\n"
            )
        return "".join(lines)


def day_weight(day: int, now: float) -> float:
    """How busy a UTC day is: weekends at 15 %, today only up to `now`."""
    weight = 0.15 if time.gmtime(day).tm_wday >= 5 else 1.0
    hours = (now - day) / 3600
    if hours < 24:
        whole = int(hours)
        done = sum(HOUR_WEIGHTS[:whole]) + HOUR_WEIGHTS[whole] * (hours - whole)
        weight *= done / sum(HOUR_WEIGHTS)
    return weight


async def fill(url: str, total: int, now: float) -> tuple[int, float]:
    """The schema, the day partitions and `total` rows over the last DAYS days and today; the
    rows written and the seconds the COPY and ANALYZE took."""
    lookups = Lookups(random.Random(20261130))
    days = [pgschema.day_of(now) - d * pgschema.DAY for d in range(DAYS, -1, -1)]
    weights = [day_weight(d, now) for d in days]
    counts = [int(total * w / sum(weights)) for w in weights]
    counts[-2] += total - sum(counts)  # yesterday takes the rounding
    # Not pgconn.connect: its statement timeout (30 s) would cancel a long COPY.
    await asyncio.to_thread(pgconn.migrate, url)
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    started = time.monotonic()
    try:
        for day in [*days, days[-1] + pgschema.DAY]:
            await conn.execute(pgschema.create_partition(day))
        async with conn.cursor() as cursor, cursor.copy(pgschema.COPY_QUERIES) as copy:
            for day, count in zip(days, counts, strict=True):
                for first in range(0, count, CHUNK):  # chunks of a day, each in time order
                    await copy.write(lookups.day(day, min(CHUNK, count - first), now))
        # What autovacuum has done to every partition but today's on a running server.
        await conn.execute("VACUUM (ANALYZE) queries")
        found = await conn.execute("SELECT count(*) FROM queries")
        (written,) = await found.fetchone() or (0,)
    finally:
        await conn.close()
    return int(str(written)), time.monotonic() - started


def report_config(work: Path, url: str) -> Path:
    path = work / "report.yaml"
    profiles = "\n".join(
        f"  {p}: {{age_band: {'9-12' if i < 20 else '13-15'}}}" for i, p in enumerate(PROFILES)
    )
    path.write_text(f"""server: {{timezone: UTC}}
profiles:
{profiles}
default_profile: class-1
lists: {{download_defaults: false, cache_dir: {work / "lists-report"}, refresh: 0}}
log: {{database: "{url}"}}
""")
    return path


REPORTS = {
    "the whole week": ["--since", "7d"],
    "one profile's week": ["--since", "7d", "--profile", "class-12"],
    "one instance's week": ["--since", "7d", "--instance", "site2"],
    "the last 24 hours": ["--since", "24h"],
}


def time_reports(cfg: Path, runs: int = 3) -> dict[str, list[float]]:
    """Seconds each report of REPORTS takes through the CLI, `runs` times."""
    took: dict[str, list[float]] = {}
    for label, args in REPORTS.items():
        for _ in range(runs):
            t0 = time.monotonic()
            done = subprocess.run([str(run.FILTERDNS), "-c", str(cfg), "report", "--json", *args],
                                  capture_output=True, text=True, check=False)  # fmt: skip
            took.setdefault(label, []).append(time.monotonic() - t0)
            if done.returncode != 0 or '"blocked_total"' not in done.stdout:
                raise RuntimeError(f"report {label} failed: {done.stdout[-500:]}{done.stderr}")
        total = re.search(r'"blocked_total": (\d+)', done.stdout)
        took[label].append(float(total.group(1)) if total else float("nan"))  # last: the count
        run.log(f"report {label}: {', '.join(f'{t:.2f}' for t in took[label][:-1])} s")
    return took


def reports(pg: BenchPg, work: Path, rows: int) -> dict[str, object]:
    url = pg.new_database()
    now = time.time()
    written, took = asyncio.run(fill(url, rows, now))
    run.log(f"{written:,} rows in {took:.0f} s ({written / took:,.0f} rows/s), analyzed")
    (size,) = postgres_rows(url, "SELECT pg_database_size(current_database())")[0]
    load = os.getloadavg()[0]
    return {"written": written, "fill": took, "size": int(str(size)), "load": load,
            "days": DAYS, "reports": REPORTS,
            "times": time_reports(report_config(work, url))}  # fmt: skip


def paced_rate(flooded: dict) -> int:
    """Queries a second per instance for the paced flood: 80 % of the rows an instance wrote
    a second in the flood, in hundreds."""
    written = [g.get("filterdns_log_written_total", 0) for g in flooded["metrics"]]
    return max(100, int(0.8 * min(written) / flooded["secs"] / 100) * 100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--secs", type=float, default=None, help="flood seconds (default 30)")
    parser.add_argument("--rows", type=int, default=None, help="rows the report reads (10M)")
    parser.add_argument("--instances", type=int, default=4, help="filterdns serve processes")
    parser.add_argument("--quick", action="store_true", help="1M rows and a 10 s flood")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    args.secs = args.secs or (10.0 if args.quick else 30.0)
    args.rows = args.rows or (1_000_000 if args.quick else 10_000_000)
    if not shutil.which("dnsperf"):
        run.log("dnsperf is not installed: run bench/setup.sh")
        return 1
    run.TASKSET = False  # four servers, PostgreSQL and the senders share both cores
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the finally clauses stop all
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="fdns-pgbench-work-"))
    pg, directory = pg_cluster()
    try:
        run.log(f"PostgreSQL on 127.0.0.1:{pg.port} ({directory})")
        flooded = flood(pg, work, args.instances, args.secs)
        flooded["paced"] = flood(pg, work, args.instances, args.secs, paced_rate(flooded))
        reported = reports(pg, work, args.rows)
    finally:
        with contextlib.suppress(RuntimeError):
            pg.stop("fast")
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
    text = text_of(args, flooded, reported, time.monotonic() - started)
    print(text)
    run.RESULTS.mkdir(parents=True, exist_ok=True)
    path = run.RESULTS / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-pg.md"
    path.write_text(text)
    put_section(ROOT / "bench" / "RESULTS.md", text.split("\n", 2)[2], path.name)
    run.log(f"written {path} and bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
