"""DNS latency while the web app is used: p50/p99 at a fixed rate with and without a parent's
phone polling the dashboard.

    python bench/web_bench.py [--secs 20] [--rounds 2] [--rows 100000] [--polls 4] [--keep]

Everything on loopback, free ports (never 53):

* a fake upstream answering A 192.0.2.1 to every name (run.py's asyncio responder);
* `filterdns serve` with the web app on (`web.listen`), two children's profiles and a log
  database filled with `--rows` blocked lookups spread over the last seven days (a busy week),
  then a parent account made with `filterdns web passwd` and a token with `filterdns web token`;
* the latency client of run.py: cached names at 200 queries a second (p50, p99, max);
* a poller in its own process, signed in with a session: each cycle asks the home page, the
  child page (`/p/minh`), the profiles' state and the child's week report
  through the API, `--polls` cycles a second.

Rounds alternate quiet / polled; the ratio of the p99s is taken within each round. The server
runs on core 0, the clients on core 1 (as run.py does). The result is printed, written to
bench/results/<UTC time>-web.md and put in bench/RESULTS.md as the section "DNS while the web app
is used" (run.py keeps that section when it rewrites the file).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # bench/run.py: ports, the fake upstream, the latency client

ROOT = run.ROOT
FILTERDNS = run.FILTERDNS
SECTION = "## DNS while the web app is used"
PASSWORD = "bench password 1234"
RATE = 200
CHILD_PAGE = "/p/minh"  # today's blocks as charts, grants, changes: the page a parent opens most


def config(work: Path, dns_port: int, web_port: int, up_port: int) -> Path:
    path = work / "web-bench.yaml"
    path.write_text(f"""server:
  listen: ["127.0.0.1:{dns_port}"]
  rate_limit: null  # every query comes from one address here
upstreams:
  servers: ["127.0.0.1:{up_port}"]
profiles:
  minh: {{age_band: 9-12, display_name: "Minh"}}
  lan: {{age_band: 13-15}}
  parents: {{age_band: adult}}
clients:
  - {{name: minh-tablet, ip: 10.9.9.9, profile: minh}}
default_profile: parents
lists: {{download_defaults: false, cache_dir: {work / "lists-cache"}, refresh: 0}}
log: {{database: {work / "web.db"}}}
web: {{listen: "127.0.0.1:{web_port}"}}
""")
    return path


def seed(database: Path, rows: int) -> None:
    """`rows` blocked lookups of minh and lan over the last seven days."""
    rng = random.Random(7)
    now = time.time()
    names = [f"{run.word(rng)}.{rng.choice(['com', 'net', 'io', 'vn'])}" for _ in range(3000)]
    categories = ["adult", "gambling", "social", "games", "bypass", "dating", None]
    batch = [
        (now - rng.random() * 7 * 86400, "10.9.9.9", "minh-tablet", rng.choice(["minh", "lan"]),
         rng.choice(names), "A", "blocked", rng.choice(categories), None, "", "list:1", "nxdomain")
        for _ in range(rows)
    ]  # fmt: skip
    with sqlite3.connect(database, timeout=30) as db:
        db.executemany(
            "INSERT INTO queries (ts, client, client_name, profile, name, qtype, kind, category,"
            " rule, reason, source, response) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            batch,
        )


def cli(cfg: Path, *args: str, stdin: str = "") -> str:
    done = subprocess.run([str(FILTERDNS), "-c", str(cfg), "web", *args], input=stdin,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout


# ---------------------------------------------------------------- the poller (its own process)


def poller(polled: dict[str, Any], stop: Any, out: Any) -> None:
    """Poll the pages (`url`, `token`, `pages`, `rate` of `polled`) until `stop` is set."""
    if run.TASKSET:
        os.sched_setaffinity(0, {1})
    out.put(asyncio.run(_poll(**polled, stop=stop)))


async def _poll(url: str, token: str, pages: list[str], rate: float, stop: Any) -> dict[str, Any]:
    times: list[float] = []
    statuses: dict[int, int] = {}
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(url, cookie_jar=jar) as http:
        login = await http.post("/login", data={"name": "me", "password": PASSWORD},
                                allow_redirects=False)  # fmt: skip
        assert login.status == 303, await login.text()
        start = time.perf_counter()
        cycle = 0
        while not stop.is_set():
            delay = start + cycle / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            cycle += 1
            for page in pages:
                headers = {"Authorization": f"Bearer {token}"} if page.startswith("/api/") else {}
                t0 = time.perf_counter()
                async with http.get(page, headers=headers, allow_redirects=False) as reply:
                    await reply.read()
                times.append((time.perf_counter() - t0) * 1000)
                statuses[reply.status] = statuses.get(reply.status, 0) + 1
    times.sort()
    return {
        "n": len(times),
        "p50": times[len(times) // 2] if times else float("nan"),
        "p99": times[min(len(times) - 1, int(len(times) * 0.99))] if times else float("nan"),
        "statuses": statuses,
    }


# ---------------------------------------------------------------- the measurement


def measure(port: int, names: list[str], secs: float, polled: dict[str, Any] | None) -> dict:
    """DNS latency for `secs`; with `polled` (the poller's arguments) while it runs."""
    if polled is None:
        return run.latency(port, names, RATE, secs)
    ctx = multiprocessing.get_context("spawn")
    stop, out = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=poller, args=(polled, stop, out))
    proc.start()
    time.sleep(1.0)  # signed in and polling before the first query
    result = run.latency(port, names, RATE, secs)
    stop.set()
    result["web"] = out.get(timeout=60)
    proc.join(10)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--secs",
        type=float,
        default=65,
        help="seconds per measurement (over a minute: a report is read again)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="quiet/polled pairs")
    parser.add_argument("--rows", type=int, default=100_000, help="blocked lookups logged")
    parser.add_argument("--polls", type=float, default=4, help="dashboard cycles a second")
    parser.add_argument("--label", default="", help="what version is measured, for the record")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on the way out
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="fdns-webbench-"))
    up_port, dns_port, web_port = run.free_port(), run.free_port(), run.free_port()
    upstream = multiprocessing.get_context("spawn").Process(
        target=run.python_upstream, args=(up_port,), daemon=True
    )
    upstream.start()
    cfg = config(work, dns_port, web_port, up_port)
    server = run.Server("filterdns-web", [str(FILTERDNS), "serve", "-c", str(cfg)], dns_port,
                        work, ready=run.LISTS_READY)  # fmt: skip
    try:
        server.start()
        run.log(f"filterdns with the web app: answering after {server.startup:.2f} s")
        seed(work / "web.db", args.rows)
        cli(cfg, "passwd", "me", "--password-stdin", stdin=PASSWORD + "\n")
        token = re.search(r"fdns_\S+", cli(cfg, "token", "me", "--label", "bench"))
        assert token is not None, "no token printed"
        url = f"http://127.0.0.1:{web_port}"
        pages = ["/", CHILD_PAGE, "/api/v1/profiles", "/api/v1/profiles/minh/report?period=week"]
        run.log(f"polling {', '.join(pages)} {args.polls:g} times a second")
        names = [f"w{i}.webbench.test" for i in range(RATE * 5)]
        run.latency(dns_port, names, 1000, len(names) / 1000)  # every name cached
        polled = {"url": url, "token": token.group(0), "pages": pages, "rate": args.polls}
        rounds: list[tuple[dict, dict]] = []
        for r in range(args.rounds):
            quiet = measure(dns_port, names, args.secs, None)
            busy = measure(dns_port, names, args.secs, polled)
            server.sample_rss()
            rounds.append((quiet, busy))
            run.log(f"round {r + 1}: p99 quiet {quiet['p99']:.3f} ms, polled {busy['p99']:.3f} ms"
                    f" ({busy['web']['n']} pages, {busy['web']['statuses']})")  # fmt: skip
        text = report(args, rounds=rounds, pages=pages, server=server,
                      took=time.monotonic() - started)  # fmt: skip
    finally:
        server.stop()
        upstream.terminate()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(text)
    run.RESULTS.mkdir(parents=True, exist_ok=True)
    path = run.RESULTS / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-web.md"
    path.write_text(text)
    put_section(ROOT / "bench" / "RESULTS.md", text.split("\n", 2)[2], path.name)
    run.log(f"written {path} and bench/RESULTS.md")
    return 0


def report(
    args: argparse.Namespace,
    *,
    rounds: list[tuple[dict, dict]],
    pages: list[str],
    server: run.Server,
    took: float,
) -> str:
    def med(key: str, which: int) -> float:
        return statistics.median(r[which][key] for r in rounds)

    web_n = sum(busy["web"]["n"] for _, busy in rounds)
    statuses: dict[int, int] = {}
    for _, busy in rounds:
        for code, n in busy["web"]["statuses"].items():
            statuses[code] = statuses.get(code, 0) + n
    out = [
        f"# DNS while the web app is used ({datetime.now(UTC):%Y-%m-%d %H:%M UTC})",
        "",
        SECTION,
        "",
        *([f"- version: {args.label}"] if args.label else []),
        *[line for line in run.machine() if line.startswith(("- CPU", "- Python", "- pinning"))],
        f"- `python bench/web_bench.py --secs {args.secs:g} --rounds {args.rounds} --rows "
        f"{args.rows} --polls {args.polls:g}` (`make bench-web`): `filterdns serve` with the web "
        f"app, a log of {args.rows:,} blocked lookups over seven days",
        f"- DNS: cached names at {RATE} queries a second for {args.secs:g} s per measurement, "
        f"{args.rounds} round(s) of quiet then polled, p99 ratio taken within each round",
        f"- polled: a signed-in parent asking {', '.join(f'`{p}`' for p in pages)} "
        f"{args.polls:g} times a second each",
        "",
        "| round | quiet p50 | quiet p99 | polled p50 | polled p99 | p99 polled / quiet "
        "| pages served (p50 / p99 ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, (quiet, busy) in enumerate(rounds, 1):
        page = busy["web"]
        out.append(
            f"| {i} | {quiet['p50']:.3f} | {quiet['p99']:.3f} | {busy['p50']:.3f} | "
            f"{busy['p99']:.3f} | {busy['p99'] / quiet['p99']:.2f}x | {page['n']:,} "
            f"({page['p50']:.1f} / {page['p99']:.1f}) |"
        )
    ratios = [busy["p99"] / quiet["p99"] for quiet, busy in rounds]
    codes = ", ".join(f"{n:,} x {c}" for c, n in sorted(statuses.items()))
    out += [
        f"| **median** | {med('p50', 0):.3f} | {med('p99', 0):.3f} | {med('p50', 1):.3f} | "
        f"{med('p99', 1):.3f} | **{statistics.median(ratios):.2f}x** | |",
        "",
        f"DNS latency in ms, {RATE} cached queries a second, {sum(q['n'] for q, _ in rounds):,} "
        f"answers quiet and {sum(b['n'] for _, b in rounds):,} polled. Pages: {web_n:,} "
        f"({codes}). RSS of filterdns: {server.rss_start:.1f} MB after start-up, "
        f"{server.rss_mb:.1f} MB at most. Run time {took:.0f} s.",
        "",
    ]
    return "\n".join(out)


def put_section(results: Path, section: str, source: str) -> None:
    """Replace (or add) the SECTION of bench/RESULTS.md, up to the next "## " of another kind."""
    body = f"{section.rstrip()}\n\n(Written by `make bench-web`: `bench/results/{source}`.)\n"
    text = results.read_text() if results.exists() else "# Latest benchmark results\n"
    text = run.drop_section(text, SECTION)
    results.write_text(text.rstrip() + "\n\n" + body)


if __name__ == "__main__":
    sys.exit(main())
