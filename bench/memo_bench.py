"""This tree's filterdns against another tree's, on the wire, in alternating rounds (A-B-A-B).

    .venv/bin/python bench/memo_bench.py --base DIR [--names 100000] [--rounds 3] [--secs 4]

`DIR` holds another version's `filterdns` package (e.g. a `git worktree add --detach` of an
older commit); it runs with `PYTHONPATH=DIR` and this virtualenv's Python. Both serve the bench
configuration of `bench/run.py` (full policy, the list as a category, blocked lookups logged) in
turn, pinned as `make bench` pins them, against the same fake upstream (dnsmasq), and dnsperf
sends the cached, blocked_exact, blocked_sub and mix workloads. What is compared is the server
process's CPU time (user + system, from /proc) per query answered: unlike qps it holds when
other work shares the machine's cores. Prints each workload's median µs per query for each
version and the median of the per-round ratios, and the RSS seen after start and under load.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # bench/run.py: the workloads, the fake upstream, pinning

WORKLOADS = ("cached", "blocked_exact", "blocked_sub", "mix")
TREE = Path(__file__).resolve().parent.parent  # this checkout


def cost(one: run.Server, qfile: Path, secs: float) -> float:
    """µs of the server's CPU per query dnsperf got an answer to, over `secs` seconds."""
    assert one.proc is not None
    argv = ["dnsperf", "-s", "127.0.0.1", "-p", str(one.port), "-d", str(qfile), "-l", str(secs)]
    argv += ["-c", "10", "-q", "200", "-t", "1"]
    before = run.cpu_seconds(one.proc.pid)
    out = subprocess.run(run.pinned(1, argv), check=False, capture_output=True, text=True).stdout
    spent = run.cpu_seconds(one.proc.pid) - before
    done = re.search(r"Queries completed:\s+(\d+)", out)
    answered = int(done.group(1)) if done else 0
    return spent * 1e6 / answered if answered else float("inf")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, required=True, help="the other tree (PYTHONPATH)")
    ap.add_argument("--names", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=float, default=4)
    args = ap.parse_args()
    if run.TASKSET:
        os.sched_setaffinity(0, {1})
    work = Path(tempfile.mkdtemp(prefix="filterdns-memo-bench-"))
    base_tree = args.base.resolve()
    # `python -m` imports the working directory's package before PYTHONPATH's: run from this
    # tree, "base" would be this tree again.
    os.chdir(work)
    up_port = run.free_port()
    upstream = run.fake_upstream(work, up_port)
    servers: list[run.Server] = []
    try:
        run.prepare(work, args.names, 2_000, min(20_000, args.names))
        upstream.start(30)
        run.filterdns_from(work, up_port, "cold", TREE).stop()  # builds the index once
        servers = [
            run.filterdns_from(work, up_port, "this", TREE),
            run.filterdns_from(work, up_port, "base", base_tree),
        ]
        costs: dict[tuple[str, str], list[float]] = {}
        for workload in WORKLOADS:
            qfile = work / f"{workload}.q"
            for one in servers:  # caches warm
                run.dnsperf(one.port, qfile, 0)
            for turn in range(args.rounds):
                for one in servers if turn % 2 == 0 else servers[::-1]:
                    got = cost(one, qfile, args.secs)
                    one.sample_rss()
                    costs.setdefault((workload, one.name), []).append(got)
        for workload in WORKLOADS:
            this, base = costs[workload, "this"], costs[workload, "base"]
            ratios = [a / b for a, b in zip(this, base, strict=True) if b]
            print(
                f"{workload:14} this {statistics.median(this):6.1f} µs/query"
                f"  base {statistics.median(base):6.1f} µs/query"
                f"  this/base {statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}]"
            )
        for one in servers:
            print(f"{one.name}: RSS {one.rss_start:.1f} MB after start, {one.rss_mb:.1f} MB most")
    finally:
        for one in servers:
            one.stop()
        upstream.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
