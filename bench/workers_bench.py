"""`server.workers: 1` against `2`: dnsperf qps of the cached and blocked workloads, the CPU
each answer costs the server's processes, and the RSS of each process.

    .venv/bin/python bench/workers_bench.py [--names 100000] [--rounds 4] [--secs 10]

The list, the query files, the fake upstream (dnsmasq `address=/#/`) and the filterdns
configuration (the full policy, blocked lookups logged) are make bench's (bench/run.py). Nothing
is pinned: on a 2-core machine one worker leaves a core to dnsperf, two workers share both
cores with it, so the qps ratio is what this machine allows, not what more cores give. The CPU
time of every server process (main and workers, from /proc) divided by the queries answered
says what an answer costs in each mode; a machine whose clients are other devices (a Pi with
4 cores) serves about cores / (that cost) at most. Rounds alternate the order of the two
servers (A-B, B-A, ...); medians and the ratio within each round are printed.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # bench/run.py, beside this file

WORKLOADS = ("cached", "blocked_exact", "blocked_sub")
SECTION = run.WORKERS_SECTION


def unpinned(_core: int, argv: list[str]) -> list[str]:
    return argv


def processes(pid: int) -> list[int]:
    """`pid` and its worker processes."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [
        pid,
        *(int(c) for c in children if b"worker" in Path(f"/proc/{c}/cmdline").read_bytes()),
    ]


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of `pids`."""
    return sum(run.cpu_seconds(pid) for pid in pids)


def memory_mb(pid: int) -> tuple[float, float]:
    """RSS and PSS (shared pages, such as the mapped index, divided among their sharers)."""
    rss = pss = 0.0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Rss:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("Pss:"):
            pss = int(line.split()[1]) / 1024
    return rss, pss


def server(work: Path, up: int, workers: int) -> run.Server:
    """bench/run.py's filterdns, with `server.workers`."""
    s = run.filterdns_server(work, up, f"w{workers}")
    cfg = Path(s.argv[-1])
    cfg.write_text(
        cfg.read_text().replace("  timezone: UTC\n", f"  timezone: UTC\n  workers: {workers}\n")
    )
    s.name = f"workers-{workers}"
    return s


Key = tuple[str, str]  # (workload, server)


class Figures:
    """What the rounds measured."""

    def __init__(self) -> None:
        self.qps: dict[Key, list[float]] = {}
        self.cost: dict[Key, list[float]] = {}  # CPU µs per answer, every server process
        self.main_cost: dict[Key, list[float]] = {}  # of which the main process
        self.ratios: dict[str, list[float]] = {wl: [] for wl in WORKLOADS}
        self.memory: dict[str, dict[str, tuple[float, float]]] = {}

    def measure(self, s: run.Server, wl: str, qfile: Path, secs: float) -> float:
        """One dnsperf run against `s`; its qps."""
        pids = processes(s.proc.pid)  # type: ignore[union-attr]
        before = [cpu_seconds([p]) for p in pids]
        res = run.dnsperf(s.port, qfile, secs)
        used = [cpu_seconds([p]) - b for p, b in zip(pids, before, strict=True)]
        answered = max(1.0, res["qps"] * secs)
        self.qps.setdefault((wl, s.name), []).append(res["qps"])
        self.cost.setdefault((wl, s.name), []).append(1e6 * sum(used) / answered)
        self.main_cost.setdefault((wl, s.name), []).append(1e6 * used[0] / answered)
        sizes = self.memory.setdefault(s.name, {})
        for n, pid in enumerate(pids):
            key = "main" if n == 0 else f"worker {n}"
            rss, pss = memory_mb(pid)
            was = sizes.get(key, (0.0, 0.0))
            sizes[key] = (max(was[0], rss), max(was[1], pss))
        return res["qps"]

    def table(self) -> list[str]:
        lines = [
            "| workload | workers: 1 qps | workers: 2 qps | 2/1 (same round) | "
            "CPU µs/answer, 1 | CPU µs/answer, 2 (main process) |",
            "|---|---|---|---|---|---|",
        ]
        for wl in WORKLOADS:
            one, two = self.qps[wl, "workers-1"], self.qps[wl, "workers-2"]
            lines.append(
                f"| {wl} | {spread(one, '{:,.0f}')} | {spread(two, '{:,.0f}')} | "
                f"{spread(self.ratios[wl], '{:.2f}x')} | "
                f"{statistics.median(self.cost[wl, 'workers-1']):.1f} | "
                f"{statistics.median(self.cost[wl, 'workers-2']):.1f} "
                f"({statistics.median(self.main_cost[wl, 'workers-2']):.1f}) |"
            )
        lines += [
            "",
            "On paper, a machine whose clients are other devices (all its cores for the server):"
            " one process serves at most 1/(CPU per answer, 1); N workers at most N/(CPU per "
            "answer, 2) while the main process's share stays under one core, 1/(its CPU per "
            "answer). For 4 cores:",
            "",
            "| workload | 1 process, one core | 4 workers, 4 cores | ratio |",
            "|---|---|---|---|",
        ]
        for wl in WORKLOADS:
            one = 1e6 / statistics.median(self.cost[wl, "workers-1"])
            main = statistics.median(self.main_cost[wl, "workers-2"])
            four = min(4e6 / statistics.median(self.cost[wl, "workers-2"]), 1e6 / max(main, 0.01))
            lines.append(f"| {wl} | {one:,.0f} | {four:,.0f} | {four / one:.2f}x |")
        lines.append("")
        for name, sizes in self.memory.items():
            parts = [f"{k} {rss:.1f} MB ({pss:.1f})" for k, (rss, pss) in sizes.items()]
            lines.append(f"- most RSS (PSS) under load, {name}: " + ", ".join(parts))
        return lines


def spread(values: list[float], form: str) -> str:
    """median [min-max]."""
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{form.format(mid)} [{form.format(low)}-{form.format(high)}]"


def put_section(section: str) -> None:
    """This run in bench/results/, and as the SECTION of bench/RESULTS.md (replaced)."""
    run.RESULTS.mkdir(parents=True, exist_ok=True)
    path = run.RESULTS / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-workers.md"
    path.write_text(section)
    results = run.ROOT / "bench" / "RESULTS.md"
    note = f"(Written by `bench/workers_bench.py`: `bench/results/{path.name}`.)"
    body = f"{section.rstrip()}\n\n{note}\n"
    text = run.drop_section(results.read_text(), SECTION) if results.exists() else ""
    results.write_text(text.rstrip() + "\n\n" + body)
    run.log(f"written {path} and bench/RESULTS.md")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--names", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--secs", type=float, default=10)
    args = ap.parse_args()
    run.pinned = unpinned
    load_before = f"{os.getloadavg()[0]:.1f}"
    work = Path(tempfile.mkdtemp(prefix="filterdns-workers-bench-"))
    run.log(f"preparing {args.names:,} names in {work}")
    run.prepare(work, args.names, 2_000, min(20_000, args.names))
    up_port = run.free_port()
    up_argv = run.dnsmasq_argv(up_port, [f"--address=/#/{run.UPSTREAM_IP}", "--local-ttl=3600"])
    upstream = run.Server("upstream", up_argv, up_port, work)
    upstream.start(30)
    servers = [server(work, up_port, 1), server(work, up_port, 2)]
    figures = Figures()
    try:
        for s in servers:
            s.start()
            pids = processes(s.proc.pid)  # type: ignore[union-attr]
            sizes = [f"{rss:.1f} ({pss:.1f})" for rss, pss in map(memory_mb, pids)]
            run.log(f"{s.name}: pids {pids}, RSS (PSS) after start {', '.join(sizes)} MB")
        for wl in WORKLOADS:
            for s in servers:
                run.dnsperf(s.port, work / f"{wl}.q", 0)  # one pass: every name cached
            for r in range(args.rounds):
                order = servers if r % 2 == 0 else servers[::-1]
                got = {s.name: figures.measure(s, wl, work / f"{wl}.q", args.secs) for s in order}
                figures.ratios[wl].append(got["workers-2"] / got["workers-1"])
                text = ", ".join(f"{k} {v:,.0f}" for k, v in got.items())
                run.log(f"{wl} round {r + 1}: {text} qps")
        lines = [
            SECTION, "",
            f"`{shlex.join(['.venv/bin/python', 'bench/workers_bench.py', *sys.argv[1:]])}`, "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {args.names:,} names; dnsperf -c 10 -q 200 "
            f"-t 1, {args.rounds} rounds x {args.secs:g} s, alternating order; nothing pinned; "
            f"load average before {load_before}, after {os.getloadavg()[0]:.1f}.",
            *run.machine()[:3], "", *figures.table(), "",
        ]  # fmt: skip
        text = "\n".join(lines)
        print(text)
        put_section(text)
    finally:
        for s in [*servers, upstream]:
            s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
