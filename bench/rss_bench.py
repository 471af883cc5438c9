"""Memory of `filterdns serve` under the bench's load, and the cached rate beside it.

    .venv/bin/python bench/rss_bench.py [--names 1000000] [--passes 3] [--miss 60000] [--rounds 2]
        [--qps N]
        [--version LABEL=DIR ...] [--work DIR] [--tracemalloc] [--trim-probe] [--extra YAML]
        [--no-name-model]

The same server, configuration and workloads as `bench/run.py` (the full policy, the list as a
category, a dnsmasq upstream answering every name, `dnsperf -c 10 -q 200 -t 1`, the server on
core 0 and the rest on core 1), one server at a time: start it, take its RSS (VmRSS) once the
list's index is in, then run the workloads in run.py's order (cached, blocked_exact, blocked_sub,
mix, miss), each a fixed number of whole passes through its file (`--passes`; `miss`: one pass
through `--miss` names never asked, enough to fill the default cache) while a thread reads its
RSS ten times a second. Counted passes rather than run.py's seconds: what the server holds
then depends on the queries, not on how fast a busy machine lets them through. Prints, per
version, VmRSS (as run.py) and RssAnon (VmRSS less the pages of mapped files such as the list's
index) after start-up, after each workload and the most seen, and each workload's qps, as
medians over the rounds; versions alternate (A-B-A-B). `--version base=DIR` runs a tree
exported with `git archive COMMIT | tar -x -C DIR` (`PYTHONPATH=DIR`); without any, the working
tree is measured.

`--no-name-model` serves with `blocking: {name_model: false}` (the name model's weights apart).
`--tracemalloc` runs the working tree once with tracemalloc on and prints, after each workload,
the lines holding the most memory (slow: read the sizes, not the rates). It runs the Python
modules (`FILTERDNS_COMPILED=0` unless set): compiled code has no Python frames, so what it
allocates would be put on the nearest interpreted caller (the event loop's `run_forever`, the
UDP batch) rather than on its own lines.
`--qps N` caps dnsperf's rate (`-Q N`) for every workload: what the server holds for a while
(the answer memo's answers and questions of the last seconds, queries in flight, the log's
queue) grows with the rate, so versions compared at whatever rate a busy machine allowed each
differ by that too; at one rate they differ by what they keep.
`--trim-probe` runs each server through a wrapper that, after each workload, calls glibc's
`malloc_trim(0)` once and reports VmRSS and RssAnon before and after it ("trim" figures): how
much of what the process holds is memory freed but kept by the allocator. The probe changes
what it measures (later workloads start from a trimmed heap), so compare versions that both
ran with it.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # bench/run.py: the same files, servers and dnsperf

ORDER = ["cached", "blocked_exact", "blocked_sub", "mix", "miss"]

# Run as `python -c TRACER serve -c CFG`: tracemalloc on, and a thread that writes the top
# allocation sites to FILE.out whenever FILE appears.
TRACER = """
import os, sys, threading, time, tracemalloc
os.environ.setdefault("FILTERDNS_COMPILED", "0")  # allocation sites on their own lines
tracemalloc.start(int(os.environ.get("RSS_FRAMES", "1")))
trigger = os.environ["RSS_TRIGGER"]
def watch():
    while True:
        time.sleep(0.2)
        if os.path.exists(trigger):
            snap = tracemalloc.take_snapshot()
            stats = snap.statistics("lineno")
            current, peak = tracemalloc.get_traced_memory()
            with open(trigger + ".out", "w") as f:
                f.write(f"traced {current / 2**20:.1f} MB, peak {peak / 2**20:.1f} MB\\n")
                for s in stats[:25]:
                    f.write(f"{s.size / 2**20:8.2f} MB {s.count:9,d}  {s.traceback}\\n")
            os.unlink(trigger)
threading.Thread(target=watch, daemon=True).start()
from filterdns.cli.main import main
sys.argv[0] = "filterdns"
sys.exit(main())
"""


# Run as `python -c TRIMMER serve -c CFG`: whenever FILE appears, malloc_trim(0) once and write
# "VmRSS RssAnon" (kB) before and after it to FILE.out.
TRIMMER = """
import ctypes, os, sys, threading, time
trigger = os.environ["RSS_TRIGGER"]
def status():
    with open("/proc/self/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return [int(fields[k].split()[0]) for k in ("VmRSS", "RssAnon")]
def watch():
    trim = ctypes.CDLL("libc.so.6").malloc_trim
    while True:
        time.sleep(0.2)
        if os.path.exists(trigger):
            before = status()
            trim(0)
            after = status()
            with open(trigger + ".out", "w") as f:
                f.write(" ".join(map(str, before + after)))
            os.unlink(trigger)
threading.Thread(target=watch, daemon=True).start()
from filterdns.cli.main import main
sys.argv[0] = "filterdns"
sys.exit(main())
"""


class Sampler:
    """Reads a process's VmRSS ten times a second and keeps the most seen."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.peak_anon, self._stop = pid, 0.0, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def now(self, field: str = "VmRSS") -> float:
        """The process's `field` of /proc/PID/status in MB (VmRSS, RssAnon, RssFile)."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.peak = max(self.peak, self.now())
                self.peak_anon = max(self.peak_anon, self.now("RssAnon"))
            except OSError:
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Setup:
    """What every measured server shares: the work directory, the upstream's port, the
    seconds per workload and YAML appended to the configuration."""

    work: Path
    up: int
    passes: int
    miss: int
    extra: str
    trim: bool = False
    qps: int = 0


def server(setup: Setup, tag: str, tree: str, trigger: Path | None) -> run.Server:
    """run.py's filterdns server, run from `tree` (empty: this working tree)."""
    srv = run.filterdns_server(setup.work, setup.up, tag)
    cfg = srv.argv[-1]
    if setup.extra:
        with open(cfg, "a") as f:
            f.write(setup.extra + "\n")
    if trigger is not None:
        wrapper = TRIMMER if setup.trim else TRACER
        srv.argv = [sys.executable, "-c", wrapper, "serve", "-c", cfg]
    elif tree:
        srv.argv = [sys.executable, "-m", "filterdns", "serve", "-c", cfg]
    return srv


def dnsperf(port: int, qfile: Path, passes: int, qps: int = 0) -> float:
    """run.py's dnsperf command, `passes` times through `qfile` (at most `qps` queries a second
    when not 0); the queries per second."""
    argv = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(qfile), "-n", str(passes)]
    argv += ["-c", "10", "-q", "200", "-t", "1"] + (["-Q", str(qps)] if qps else [])
    done = subprocess.run(run.pinned(1, argv), check=False, capture_output=True, text=True)
    found = re.search(r"Queries per second:\s+([\d.]+)", done.stdout)
    return float(found.group(1)) if found else 0.0


def dump(trigger: Path, title: str) -> None:
    """Ask the traced server for its top allocation sites and print them."""
    trigger.touch()
    while trigger.exists():
        time.sleep(0.2)
    print(f"--- tracemalloc after {title}")
    print((trigger.parent / (trigger.name + ".out")).read_text())


def trim(trigger: Path, out: dict[str, Any], title: str) -> None:
    """Ask the server to malloc_trim(0) once; note VmRSS and RssAnon after it in MB."""
    trigger.touch()
    while trigger.exists():
        time.sleep(0.2)
    text = (trigger.parent / (trigger.name + ".out")).read_text()
    figures = [int(v) / 1024 for v in text.split()]
    out[f"{title} trimmed MB"], out[f"{title} trimmed anon"] = figures[2], figures[3]


def measure(setup: Setup, tag: str, tree: str, trigger: Path | None = None) -> dict[str, Any]:
    """One server from start to stop through every workload."""
    work = setup.work
    env_before = os.environ.get("PYTHONPATH")
    if tree:
        os.environ["PYTHONPATH"] = tree
    if trigger is not None:
        os.environ["RSS_TRIGGER"] = str(trigger)
    srv = server(setup, tag, tree, trigger)
    try:
        srv.start()
    finally:
        if env_before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = env_before
    assert srv.proc is not None
    sampler = Sampler(srv.proc.pid)
    out: dict[str, Any] = {"start": sampler.now(), "start anon": sampler.now("RssAnon")}
    if trigger is not None and not setup.trim:
        dump(trigger, "start-up")
    try:
        for wl in ORDER:
            if wl == "miss":
                qfile, passes = run.miss_file(work, f"{tag}-{wl}", setup.miss), 1
            else:
                qfile, passes = work / f"{wl}.q", setup.passes
            out[f"{wl} qps"] = dnsperf(srv.port, qfile, passes, setup.qps)
            out[f"{wl} MB"] = sampler.now()
            out[f"{wl} anon"] = sampler.now("RssAnon")
            if setup.trim and trigger is not None:
                trim(trigger, out, wl)
            elif trigger is not None:
                dump(trigger, wl)
    finally:
        sampler.stop()
        srv.stop()
    measured = [k for k in out if "trimmed" not in k]
    out["max"] = max(sampler.peak, *(out[k] for k in measured if k.endswith("MB")))
    out["max anon"] = max(sampler.peak_anon, *(out[k] for k in measured if k.endswith("anon")))
    return out


def upstream(work: Path) -> run.Server:
    port = run.free_port()
    args = [f"--address=/#/{run.UPSTREAM_IP}", "--local-ttl=3600"]
    srv = run.Server("upstream", run.dnsmasq_argv(port, args), port, work, core=1)
    srv.start(30)
    return srv


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--names", type=int, default=1_000_000, help="names in the list")
    ap.add_argument("--passes", type=int, default=3, help="passes through each file")
    ap.add_argument("--miss", type=int, default=60_000, help="names of the miss workload")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--version", action="append", default=[], help="LABEL=DIR (PYTHONPATH)")
    ap.add_argument("--work", help="work directory, kept (its list is reused)")
    ap.add_argument("--tracemalloc", action="store_true")
    ap.add_argument("--trim-probe", action="store_true", help="malloc_trim(0) after each workload")
    ap.add_argument("--qps", type=int, default=0, help="dnsperf -Q, for every version")
    ap.add_argument("--extra", default="", help="YAML appended to the configuration")
    ap.add_argument("--no-name-model", action="store_true", help="blocking: {name_model: false}")
    args = ap.parse_args()
    if args.no_name_model:
        args.extra = "\n".join(filter(None, [args.extra, "blocking: {name_model: false}"]))
    if run.TASKSET:
        os.sched_setaffinity(0, {1})
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="filterdns-rss-"))
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "mix.q").exists() or not (work / "list.txt").exists():
        run.prepare(work, args.names, 10_000, min(20_000, args.names))
    versions = [tuple(v.split("=", 1)) for v in args.version] or [("tree", "")]
    os.chdir(work)  # `python -m filterdns` puts the current directory first on the path
    for label, tree in versions:
        env = dict(os.environ, PYTHONPATH=tree) if tree else None
        probe = [sys.executable, "-c", "import filterdns; print(filterdns.__file__)"]
        where = subprocess.run(probe, env=env, check=True, capture_output=True, text=True)
        print(f"{label}: {where.stdout.strip()}", flush=True)
    up = upstream(work)
    setup = Setup(work, up.port, args.passes, args.miss, args.extra, args.trim_probe, args.qps)
    results: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in versions}
    try:
        if args.tracemalloc:
            measure(setup, "traced", "", work / "snapshot")
            return 0
        for r in range(args.rounds):
            order = versions if r % 2 == 0 else versions[::-1]
            for label, tree in order:
                probe = work / f"trim-{label}" if args.trim_probe else None
                res = measure(setup, f"{label}-{r}", tree, probe)
                results[label].append(res)
                figures = ", ".join(f"{k} {v:,.1f}" for k, v in res.items())
                print(f"round {r + 1} {label}: {figures}", flush=True)
    finally:
        up.stop()
    keys = list(results[versions[0][0]][0])
    print("| figure | " + " | ".join(label for label, _ in versions) + " |")
    print("|---" * (len(versions) + 1) + "|")
    for key in keys:
        cells = [run.fmt_range([r[key] for r in results[label]], 1) for label, _ in versions]
        print(f"| {key} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
