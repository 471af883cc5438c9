"""The miss path: unique names through filterdns to the fake upstream, against a list-less dnsmasq.

    .venv/bin/python bench/miss_bench.py [--base DIR] [--names 100000] [--rounds 3] [--secs 4]
                                         [--latency-secs 5]

Everything as `make bench` runs its `miss` workload (`bench/run.py`): the fake upstream is
dnsmasq `address=/#/` answering A 192.0.2.1; filterdns serves the bench configuration (full
policy, the list as a category, blocked lookups logged); dnsperf `-c 10 -q 200` sends names never
asked before (a new file per run); servers on core 0, dnsperf and the upstream on core 1. In one
run and in alternating rounds: this tree's filterdns, another tree's (`--base DIR`, run with
`PYTHONPATH=DIR` and this virtualenv's Python, from a neutral working directory) and dnsmasq
forwarding with no list. Printed per server: qps, and for filterdns the process's CPU time
(user + system, every thread, from /proc) per answered query, which holds when others share
the cores; then the median ratios per round. Last, the latency probe of `bench/run.py` at 200
qps (cached and miss names, each server and the upstream asked directly) and what each
filterdns adds to the upstream's own p50 and p99.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # bench/run.py: the fake upstream, the configuration, pinning, the latency probe


def measure(one: run.Server, qfile: Path, secs: float) -> tuple[float, float]:
    """(qps, µs of the server's CPU per answered query) over `secs` seconds of dnsperf."""
    assert one.proc is not None
    argv = ["dnsperf", "-s", "127.0.0.1", "-p", str(one.port), "-d", str(qfile), "-l", str(secs)]
    argv += ["-c", "10", "-q", "200", "-t", "1"]
    before = run.cpu_seconds(one.proc.pid)
    out = subprocess.run(run.pinned(1, argv), check=False, capture_output=True, text=True).stdout
    spent = run.cpu_seconds(one.proc.pid) - before
    done = re.search(r"Queries completed:\s+(\d+)", out)
    qps = re.search(r"Queries per second:\s+([\d.]+)", out)
    answered = int(done.group(1)) if done else 0
    return (float(qps.group(1)) if qps else 0.0), (
        spent * 1e6 / answered if answered else float("inf")
    )


def start_servers(work: Path, up: int, base: Path | None) -> list[run.Server]:
    """This tree's filterdns, the base's (if any) and a list-less forwarding dnsmasq."""
    run.filterdns_from(work, up, "cold", None).stop()  # builds the index once
    servers = [run.filterdns_from(work, up, "this", None)]
    if base is not None:
        servers.append(run.filterdns_from(work, up, "base", base))
    if shutil.which("dnsmasq"):
        port = run.free_port()
        bare = run.Server(
            run.NOLIST, run.dnsmasq_argv(port, [f"--server=127.0.0.1#{up}"]), port, work
        )
        bare.start()
        servers.append(bare)
    return servers


def throughput(work: Path, servers: list[run.Server], rounds: int, secs: float) -> None:
    """The miss workload in alternating rounds; medians and per-round ratios printed."""
    qps: dict[str, list[float]] = {s.name: [] for s in servers}
    cpu: dict[str, list[float]] = {s.name: [] for s in servers}
    for turn in range(rounds):
        for one in servers if turn % 2 == 0 else servers[::-1]:
            qfile = run.miss_file(work, f"{one.name}-{turn}", int(120_000 * secs))
            got_qps, got_cpu = measure(one, qfile, secs)
            qfile.unlink()
            qps[one.name].append(got_qps)
            cpu[one.name].append(got_cpu)
        print(f"round {turn + 1}: " + ", ".join(f"{n} {v[-1]:,.0f}" for n, v in qps.items()))
    for name, rates in qps.items():
        line = f"{name:16} {statistics.median(rates):8,.0f} qps"
        if name != run.NOLIST:
            line += f"  {statistics.median(cpu[name]):6.1f} µs CPU/answer"
        print(line)
    for a, b, what in (("this", run.NOLIST, qps), ("this", "base", qps), ("this", "base", cpu)):
        if a in what and b in what:
            ratios = [x / y for x, y in zip(what[a], what[b], strict=True) if y]
            label = "qps" if what is qps else "CPU/answer"
            print(
                f"{a}/{b} {label}: {statistics.median(ratios):.2f}"
                f" [{min(ratios):.2f}-{max(ratios):.2f}]"
            )


def latency(up: int, servers: list[run.Server], secs: float) -> None:
    """p50/p99 at 200 qps through each server and the upstream directly; what each adds."""
    rng = random.Random(11)
    count = int(200 * secs)
    cached = [f"c{i}.{run.word(rng)}.latbench.net" for i in range(count)]
    run.latency(up, cached, 200, 1)  # the upstream knows nothing of them anyway
    rows: dict[tuple[str, str], dict[str, float]] = {}
    targets = [("upstream", up)] + [(s.name, s.port) for s in servers if s.name != "cold"]
    for one in servers:  # cached: every name asked once before
        run.latency(one.port, cached, 400, secs / 2)
    for name, port in targets:
        rows[name, "cached"] = run.latency(port, cached, 200, secs)
        misses = [f"l{i}.{run.word(rng)}.{name}.latbench.net" for i in range(count)]
        rows[name, "miss"] = run.latency(port, misses, 200, secs)
    print("\n| path | p50 ms | p99 ms | added p50 | added p99 |\n|---|---|---|---|---|")
    for (name, kind), got in rows.items():
        direct = rows["upstream", kind]
        print(
            f"| {kind} via {name} | {got['p50']:.3f} | {got['p99']:.3f} | "
            f"{got['p50'] - direct['p50']:+.3f} | {got['p99'] - direct['p99']:+.3f} |"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, help="another tree to compare with (PYTHONPATH)")
    ap.add_argument("--names", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=float, default=4)
    ap.add_argument("--latency-secs", type=float, default=5, help="0: no latency probe")
    args = ap.parse_args()
    if run.TASKSET:
        os.sched_setaffinity(0, {1})
    work = Path(tempfile.mkdtemp(prefix="filterdns-miss-bench-"))
    # `python -m` puts the working directory first on sys.path: run from this tree, it would
    # import this tree's package whatever PYTHONPATH says, and "base" would be this tree again.
    os.chdir(work)
    up_port = run.free_port()
    upstream = run.fake_upstream(work, up_port)
    servers: list[run.Server] = []
    try:
        run.prepare(work, args.names, 2_000, min(20_000, args.names))
        upstream.start(30)
        servers = start_servers(work, up_port, args.base)
        throughput(work, servers, args.rounds, args.secs)
        if args.latency_secs:
            latency(up_port, servers, args.latency_secs)
    finally:
        for one in servers:
            one.stop()
        upstream.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
