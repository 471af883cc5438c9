"""Throughput, latency, memory and startup of filterdns against dnsmasq and unbound.

    python bench/run.py [--quick] [--keep]

Everything runs on loopback on free ports (never port 53):

* a fake upstream answering A 192.0.2.1 for every name (dnsmasq `address=/#/`, or a small
  asyncio responder in this file when dnsmasq is missing);
* filterdns with one category holding the whole blocklist, active in the default profile;
* dnsmasq (`address=/name/` lines) and unbound (`local-zone: "name." always_nxdomain` lines)
  as filtering forwarders with the same list, each skipped with a message when not installed.

Servers are pinned to core 0 and dnsperf, the fake upstream and the latency client to core 1
(when `taskset` exists and there are two cores). Workloads are run in rounds A-B-A-B; the ratios
are taken between runs of the same round. Results go to bench/results/ and bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import platform
import random
import re
import shutil
import socket
import statistics
import string
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = (ROOT / ".." / "shared" / "data").resolve()
BLOCKLISTS = DATA / "blocklists"
TOPLIST = DATA / "toplists" / "umbrella-top-100k.txt"
MIX = DATA / "queries" / "household_school_mix_100k.txt"
RESULTS = ROOT / "bench" / "results"
FILTERDNS = ROOT / ".venv" / "bin" / "filterdns"
SOURCES = [
    "stevenblack-unified_via-hagezi/stevenblack.hosts.txt",
    "sinfonietta/pornography-hosts",
    "sinfonietta/gambling-hosts",
    "sinfonietta/social-hosts",
    "ut1/malware/domains",
    "ut1/phishing/domains",
    "ut1/redirector/domains",
    "ut1/shopping/domains",
    "ut1/games/domains",
    "ut1/gambling/domains",
    "ut1/dating/domains",
    "ut1/vpn/domains",
]
WORKLOADS = ["cached", "blocked_exact", "blocked_sub", "mix", "miss"]
WARM = {"cached", "mix"}
NOLIST = "dnsmasq-nolist"  # run in the miss workload only
VALID = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z0-9-]{2,63}$")
TASKSET = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
UPSTREAM_IP = "192.0.2.1"
PINNING = "servers on core 0, dnsperf/upstream/latency client on core 1"


WEB_SECTION = "## DNS while the web app is used"  # written by web_bench.py, kept here
WORKERS_SECTION = "## Worker processes (server.workers)"  # from workers_bench.py, kept here
PG_SECTION = "## Many instances, one PostgreSQL"  # from pg_bench.py (make bench-pg), kept here


def section_of(text: str, title: str) -> str:
    """The lines of the section `title` (a "## " heading) up to the next "## " heading."""
    lines = text.splitlines(keepends=True)
    if title + "\n" not in lines:
        return ""
    start = lines.index(title + "\n")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
               len(lines))  # fmt: skip
    return "".join(lines[start:end])


def drop_section(text: str, title: str) -> str:
    """`text` without the section `title`."""
    found = section_of(text, title)
    return text.replace(found, "") if found else text


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def pinned(core: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *argv] if TASKSET else argv


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                    t.bind(("127.0.0.1", port))
            except OSError:
                continue
        if port != 53:
            return port


def word(rng: random.Random, lo: int = 4, hi: int = 10) -> str:
    return "".join(rng.choices(string.ascii_lowercase, k=rng.randint(lo, hi)))


def suffixes(name: str) -> list[str]:
    out = [name]
    while "." in name:
        name = name.split(".", 1)[1]
        out.append(name)
    return out


# ---------------------------------------------------------------- preparing the files


def read_source(path: Path) -> list[str]:
    """Names from a hosts file or a plain domain list, minimally cleaned."""
    out = []
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if len(fields) > 1 and fields[0] in ("0.0.0.0", "127.0.0.1"):
                name = fields[1]
            else:
                name = fields[0]
            name = name.lower().rstrip(".")
            if VALID.match(name) and not name.rsplit(".", 1)[1].isdigit():
                out.append(name)
    return out


def prepare(work: Path, total: int, cached_n: int, probe_n: int) -> dict[str, Any]:
    rng = random.Random(7)
    names: dict[str, None] = {}
    for source in SOURCES:
        path = BLOCKLISTS / source
        if not path.exists():
            continue
        for name in read_source(path):
            if len(names) >= total:
                break
            names.setdefault(name)
    real = len(names)
    tlds = ["com", "net", "org", "info", "xyz", "top", "de", "fr", "io"]
    while len(names) < total:
        names.setdefault(
            f"{word(rng)}{rng.randint(0, 999)}.{word(rng)}-{word(rng)}.{rng.choice(tlds)}"
        )
    listed = list(names)
    listed_set = set(listed)
    (work / "list.txt").write_text("".join(n + "\n" for n in listed))
    (work / "dnsmasq-list.conf").write_text("".join(f"address=/{n}/\n" for n in listed))
    (work / "unbound-list.conf").write_text(
        "server:\n" + "".join(f'local-zone: "{n}." always_nxdomain\n' for n in listed)
    )

    def blocked(name: str) -> bool:
        return any(s in listed_set for s in suffixes(name))

    cached = []
    with TOPLIST.open() as f:
        for line in f:
            name = line.strip().lower()
            if VALID.match(name) and not blocked(name):
                cached.append(name)
                if len(cached) >= cached_n:
                    break
    sample = rng.sample(listed, probe_n)
    subs = [f"{rng.choice(['www', 'cdn', 'api', word(rng)])}.{n}" for n in sample]
    rng.shuffle(sample)
    mix = []
    with MIX.open() as f:
        for line in f:
            name = line.strip().lower().rstrip(".")
            if name and not name.startswith("#"):
                mix.append(name.split()[0])
    files = {"cached": cached, "blocked_exact": sample, "blocked_sub": subs, "mix": mix}
    for wl, qnames in files.items():
        (work / f"{wl}.q").write_text("".join(f"{n} A\n" for n in qnames))
    mix_blocked = sum(blocked(n) for n in mix)
    return {
        "names": len(listed),
        "real": real,
        "cached": cached,
        "mix": len(mix),
        "mix_blocked": mix_blocked,
    }


def miss_file(work: Path, tag: str, count: int) -> Path:
    """Unique names never asked before (a new file for every run)."""
    rng = random.Random(tag)
    path = work / f"miss-{tag}.q"
    stem = word(rng, 6, 6)
    path.write_text("".join(f"m{i}.{stem}.missbench.net A\n" for i in range(count)))
    return path


# ---------------------------------------------------------------- DNS on the wire


def query(qid: int, name: str, qtype: int = 1) -> bytes:
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", qtype, 1)


def answers(port: int, timeout: float = 0.2) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(query(4242, "startup.probe.test"), ("127.0.0.1", port))
            data, _ = s.recvfrom(4096)
            return data[:2] == b"\x10\x92"
        except OSError:
            return False


class FakeUpstream(asyncio.DatagramProtocol):
    """Answers A 192.0.2.1 (TTL 3600) to every question: the fallback fake upstream."""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        i = 12
        while i < len(data) and data[i]:
            i += data[i] + 1
        end = i + 5
        head = data[:2] + b"\x81\x80" + data[4:6] + b"\x00\x01\x00\x00\x00\x00"
        rr = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04" + socket.inet_aton(UPSTREAM_IP)
        self.transport.sendto(head + data[12:end] + rr, addr)


def python_upstream(port: int) -> None:
    os.sched_setaffinity(0, {1}) if TASKSET else None

    async def main() -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(FakeUpstream, local_addr=("127.0.0.1", port))
        await asyncio.Event().wait()

    asyncio.run(main())


async def _latency(port: int, names: list[str], rate: int, secs: float) -> list[float]:
    loop = asyncio.get_running_loop()
    sent: dict[int, float] = {}
    rtts: list[float] = []

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            t0 = sent.pop(struct.unpack("!H", data[:2])[0], None)
            if t0 is not None:
                rtts.append((time.perf_counter() - t0) * 1000)

    transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=("127.0.0.1", port))
    total = int(rate * secs)
    start = time.perf_counter()
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        qid = i % 65536
        sent[qid] = time.perf_counter()
        transport.sendto(query(qid, names[i % len(names)]))
    await asyncio.sleep(0.5)
    transport.close()
    return rtts


def latency(port: int, names: list[str], rate: int, secs: float) -> dict[str, float]:
    rtts = sorted(asyncio.run(_latency(port, names, rate, secs)))
    if not rtts:
        return {"p50": float("nan"), "p99": float("nan"), "n": 0}
    return {
        "p50": rtts[len(rtts) // 2],
        "p99": rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))],
        "n": len(rtts),
    }


# ---------------------------------------------------------------- servers


# filterdns answers at once and builds a changed list in the background: measure only once
# the configured index serves (it logs this line then).
LISTS_READY = re.compile(r"lists: (opened|built) index")


class Server:
    def __init__(
        self,
        name: str,
        argv: list[str],
        port: int,
        work: Path,
        core: int = 0,
        *,
        ready: re.Pattern[str] | None = None,
    ):
        self.name, self.argv, self.port, self.work, self.core = name, argv, port, work, core
        self.ready = ready  # a log line that must appear (after the first answer) before use
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup = float("nan")
        self.lists_ready = float("nan")
        self.listening_line = float("nan")
        self.rss_mb = 0.0
        self.rss_start = 0.0
        self.private_mb = 0.0  # RssAnon, most seen
        self.private_start = 0.0

    def start(self, timeout: float = 300) -> None:
        logf = (self.work / f"{self.name}.log").open("wb")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            pinned(self.core, self.argv), stdout=logf, stderr=subprocess.STDOUT
        )
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited: {(self.work / f'{self.name}.log').read_text()[-2000:]}"
                )
            if self.listening_line != self.listening_line and "listening on" in (
                self.work / f"{self.name}.log"
            ).read_text(errors="replace"):
                self.listening_line = time.monotonic() - t0
            if self.startup != self.startup and answers(self.port, 0.05):
                self.startup = time.monotonic() - t0
            if self.startup == self.startup and (
                self.ready is None
                or self.ready.search((self.work / f"{self.name}.log").read_text(errors="replace"))
            ):
                self.lists_ready = time.monotonic() - t0
                self.rss_start = self.sample_rss()
                self.private_start = self.private_mb
                return
            time.sleep(0.02)
        raise RuntimeError(f"{self.name} did not answer (or get ready) within {timeout}s")

    def sample_rss(self) -> float:
        """Take VmRSS and RssAnon (private: VmRSS less the pages of mapped files, the
        program's, its libraries' and a memory-mapped list's) now; keeps the most of each."""
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    self.rss_mb = max(self.rss_mb, int(line.split()[1]) / 1024)
                elif line.startswith("RssAnon:"):
                    self.private_mb = max(self.private_mb, int(line.split()[1]) / 1024)
        return self.rss_mb

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def dnsmasq_argv(port: int, extra: list[str]) -> list[str]:
    return [
        "dnsmasq",
        "--no-daemon",
        "--conf-file=/dev/null",
        f"--port={port}",
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--no-resolv",
        "--no-hosts",
        "--pid-file=",
        "--user=root",
        "--cache-size=10000",  # dnsmasq's long-standing maximum
        "--dns-forward-max=1000",
        *extra,
    ]


def fake_upstream(work: Path, port: int) -> Server:
    """dnsmasq answering A 192.0.2.1 (TTL 3600) for every name on `port`, pinned to core 1."""
    argv = dnsmasq_argv(port, [f"--address=/#/{UPSTREAM_IP}", "--local-ttl=3600"])
    return Server("upstream", argv, port, work, core=1)


def filterdns_server(work: Path, up: int, tag: str) -> Server:
    """filterdns with the full policy on: a profile with the bench list, SafeSearch, a schedule
    (active later today, so every answer's TTL is capped at its start), a client table, the
    shipped always-on categories, and the log of blocked lookups."""
    port = free_port()
    cfg = work / f"filterdns-{tag}.yaml"
    soon = datetime.now(UTC) + timedelta(hours=2)
    later = soon + timedelta(hours=1)
    cfg.write_text(
        f"""server:
  listen: ["127.0.0.1:{port}"]
  timezone: UTC
  rate_limit: null  # every query comes from one address here
upstreams:
  servers: ["127.0.0.1:{up}"]
categories:
  benchlist: [{work / "list.txt"}]
profiles:
  bench:
    age_band: adult
    categories: [benchlist]
    safesearch: true
    youtube: moderate
    schedules:
      - {{name: homework, days: daily, from: "{soon:%H:%M}", to: "{later:%H:%M}", block: [social]}}
  kid: {{age_band: 9-12}}
clients:
  - {{name: kid-laptop, ip: 10.9.9.9, profile: kid}}
default_profile: bench
lists: {{download_defaults: false, cache_dir: {work / "lists-cache"}, refresh: 0}}
log: {{database: {work / "b.db"}}}
"""
    )
    argv = [str(FILTERDNS), "serve", "-c", str(cfg)]
    return Server(f"filterdns-{tag}", argv, port, work, ready=LISTS_READY)


def filterdns_from(work: Path, up: int, tag: str, tree: Path | None) -> Server:
    """filterdns as `make bench` runs it, started by `python -m filterdns` with `tree` on
    PYTHONPATH (else the installed package); its work directory holds no `filterdns` package,
    so the tree measured is the one imported."""
    made = filterdns_server(work, up, tag)
    made.name = tag
    made.argv = [sys.executable, "-m", "filterdns", *made.argv[1:]]
    if tree is not None:
        os.environ["PYTHONPATH"] = str(tree)
    try:
        made.start()
    finally:
        os.environ.pop("PYTHONPATH", None)
    return made


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def unbound_server(work: Path, up: int) -> Server:
    port = free_port()
    cfg = work / "unbound.conf"
    cfg.write_text(
        f"""server:
  interface: 127.0.0.1
  port: {port}
  do-ip6: no
  do-tcp: yes
  username: ""
  chroot: ""
  directory: "{work}"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 0
  num-threads: 1
  so-reuseport: no
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  module-config: "iterator"
  qname-minimisation: no
  msg-cache-size: 64m
  rrset-cache-size: 128m
  outgoing-range: 4096
  num-queries-per-thread: 2048
include: "{work / "unbound-list.conf"}"
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@{up}
"""
    )
    return Server("unbound", ["unbound", "-d", "-c", str(cfg)], port, work)


# ---------------------------------------------------------------- dnsperf


def dnsperf(port: int, qfile: Path, secs: float, qps: int = 0) -> dict[str, float]:
    """Run dnsperf for `secs` seconds (0: one pass through `qfile`); qps and loss."""
    argv = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(qfile)]
    argv += ["-l", str(secs)] if secs else ["-n", "1"]
    argv += ["-c", "10", "-q", "200", "-t", "1"]
    if qps:
        argv += ["-Q", str(qps)]
    out = subprocess.run(pinned(1, argv), check=False, capture_output=True, text=True).stdout
    qps_m = re.search(r"Queries per second:\s+([\d.]+)", out)
    lost_m = re.search(r"Queries lost:\s+\d+ \(([\d.]+)%\)", out)
    return {
        "qps": float(qps_m.group(1)) if qps_m else 0.0,
        "lost": float(lost_m.group(1)) if lost_m else 100.0,
    }


def fmt_range(xs: list[float], digits: int = 0, signed: bool = False) -> str:
    """`median [min-max]`; signed, with the sign and `[min to max]` (the bounds may be < 0)."""
    if not xs:
        return "-"
    f = f"{{:{'+' if signed else ''},.{digits}f}}"
    sep = " to " if signed else "-"
    return f"{f.format(statistics.median(xs))} [{f.format(min(xs))}{sep}{f.format(max(xs))}]"


def version(argv: list[str]) -> str:
    try:
        p = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=10)
    except OSError:
        return "not installed"
    text = (p.stdout + p.stderr).strip().splitlines()
    for line in text:
        if re.search(r"\d+\.\d+", line):
            return line.strip()
    return text[0] if text else "?"


def filterdns_modules() -> str:
    """Which modules the measured filterdns runs: compiled (`make compiled`) or Python."""
    code = "from filterdns import compiled; print(compiled.state())"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    return done.stdout.strip() or done.stderr.strip()[-200:]


def machine() -> list[str]:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with open("/proc/meminfo") as f:
        mem = f"{int(f.readline().split()[1]) / 1024 / 1024:.1f} GB"
    return [
        f"- CPU: {model}, {os.cpu_count()} cores; memory {mem}; kernel {platform.release()}",
        f"- Python {platform.python_version()} ({sys.executable})",
        f"- filterdns runs: {filterdns_modules()}",
        f"- dnsperf: {version(['dnsperf', '-h'])}",
        f"- dnsmasq: {version(['dnsmasq', '--version'])}",
        f"- unbound: {version(['unbound', '-V'])}",
        f"- pinning: {PINNING if TASKSET else 'none'}",
    ]


# ---------------------------------------------------------------- main


@dataclass
class Run:
    """One bench run: its settings, the servers started so far (stopped at the end) and what
    was measured."""

    quick: bool
    work: Path
    info: dict[str, Any] = field(default_factory=dict)
    servers: list[Server] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    upstream: Server | multiprocessing.Process | None = None
    up_port: int = 0
    up_kind: str = ""
    cold: tuple[float, float, float] = (math.nan, math.nan, math.nan)  # startup, log line, lists
    results: dict[str, dict[str, list[dict[str, float]]]] = field(default_factory=dict)
    lat: dict[str, list[dict[str, float]]] = field(default_factory=dict)  # path: per round
    started: float = field(default_factory=time.monotonic)

    @property
    def mode(self) -> str:
        return "quick" if self.quick else "full"

    @property
    def rounds(self) -> int:
        return 2 if self.quick else 4

    @property
    def secs(self) -> int:
        return 3 if self.quick else 15

    @property
    def lat_secs(self) -> int:
        """Seconds per latency round and path."""
        return 2 if self.quick else 4

    @property
    def lat_rounds(self) -> int:
        return 2 if self.quick else 5

    def stop(self) -> None:
        for s in self.servers:
            s.stop()
        if isinstance(self.upstream, Server):
            self.upstream.stop()
        elif self.upstream is not None:
            self.upstream.terminate()


def start_upstream(run: Run) -> None:
    """The fake upstream every server forwards to: dnsmasq answering every name, else Python."""
    run.up_port = free_port()
    if shutil.which("dnsmasq"):
        upstream = fake_upstream(run.work, run.up_port)
        upstream.start(30)
        run.upstream, run.up_kind = upstream, "dnsmasq address=/#/"
    else:
        process = multiprocessing.Process(target=python_upstream, args=(run.up_port,))
        process.start()
        run.upstream = process
        while not answers(run.up_port):
            time.sleep(0.05)
        run.up_kind = "Python asyncio responder (dnsmasq missing)"
    log(f"fake upstream on 127.0.0.1:{run.up_port}: {run.up_kind}")


def start_filterdns(run: Run) -> Server:
    """filterdns cold (the index built), stopped, then started again on the stored index."""
    cold = filterdns_server(run.work, run.up_port, "cold")
    cold.start()
    run.cold = (cold.startup, cold.listening_line, cold.lists_ready)
    cold.stop()
    fdns = filterdns_server(run.work, run.up_port, "warm")
    fdns.name = "filterdns"
    fdns.start()
    log(
        f"filterdns: cold start {run.cold[0]:.2f} s (list index in at {run.cold[2]:.2f} s), "
        f"restart {fdns.startup:.2f} s"
    )
    run.servers.append(fdns)
    return fdns


def start_peers(run: Run) -> None:
    """dnsmasq with the list, dnsmasq without one (the miss workload's reference), unbound."""
    work, up_port = run.work, run.up_port
    if shutil.which("dnsmasq"):
        p = free_port()
        conf = f"--conf-file={work / 'dnsmasq-list.conf'}"
        dm = Server("dnsmasq", dnsmasq_argv(p, [f"--server=127.0.0.1#{up_port}", conf]), p, work)
        dm.argv = [a for a in dm.argv if a != "--conf-file=/dev/null"]
        dm.start()
        run.servers.append(dm)
        log(f"dnsmasq: start {dm.startup:.2f} s")
        p = free_port()
        bare = Server(NOLIST, dnsmasq_argv(p, [f"--server=127.0.0.1#{up_port}"]), p, work)
        bare.start()
        run.servers.append(bare)
    else:
        run.skipped.append("dnsmasq (not installed)")
    if shutil.which("unbound"):
        ub = unbound_server(work, up_port)
        try:
            ub.start()
            run.servers.append(ub)
            log(f"unbound: start {ub.startup:.2f} s")
        except RuntimeError as e:
            log(f"unbound skipped: {e}")
            run.skipped.append("unbound (failed to start)")
    else:
        run.skipped.append("unbound (not installed)")
    for s in run.skipped:
        log(f"peer skipped: {s}")


def run_workloads(run: Run) -> None:
    """Every workload, servers alternating (A-B-A-B), dnsperf for `secs` per round."""
    run.results = {wl: {s.name: [] for s in run.servers} for wl in WORKLOADS}
    for wl in WORKLOADS:
        runners = [s for s in run.servers if s.name != NOLIST or wl == "miss"]
        if wl in WARM:  # one whole pass through the file: every name cached
            for s in runners:
                dnsperf(s.port, run.work / f"{wl}.q", 0)
        for r in range(run.rounds):
            for s in runners if r % 2 == 0 else runners[::-1]:
                if wl == "miss":
                    qfile = miss_file(run.work, f"{s.name}-{r}", 120_000 * run.secs)
                else:
                    qfile = run.work / f"{wl}.q"
                run.results[wl][s.name].append(dnsperf(s.port, qfile, run.secs))
                s.sample_rss()
                if wl == "miss":
                    qfile.unlink()
            line = ", ".join(f"{s.name} {run.results[wl][s.name][-1]['qps']:,.0f}" for s in runners)
            log(f"{wl} round {r + 1}: {line} qps")


def run_latency(run: Run, fdns: Server) -> None:
    """p50/p99 at 200 qps: cached and miss, through filterdns, the upstream directly and the
    peers, in rounds that take every path in turn (the order reversed every other round), so a
    few seconds' disturbance of a shared machine lands in one round, not on one path."""
    log(f"latency at 200 qps: {run.lat_rounds} rounds of {run.lat_secs} s per path")
    # The miss workload's unique names have pushed the cached names out of every bounded
    # cache (filterdns' 32,768 answers, dnsmasq's 10,000): one pass first, so "cached"
    # measures cached answers, as the throughput rounds do.
    for s in run.servers:
        if s.name != NOLIST:
            dnsperf(s.port, run.work / "cached.q", 0)
    rate, secs = 200, run.lat_secs
    per_round = rate * secs
    cached_names: list[str] = run.info["cached"]
    rng = random.Random(11)
    paths = [
        ("cached via upstream directly", run.up_port, "cached"),
        ("cached via filterdns", fdns.port, "cached"),
        *[
            (f"cached via {peer.name} (core 0)", peer.port, "cached")
            for peer in run.servers
            if peer.name in ("dnsmasq", "unbound")
        ],
        ("miss via upstream directly", run.up_port, "miss"),
        ("miss via filterdns", fdns.port, "miss"),
    ]
    for r in range(run.lat_rounds):
        # Each round its own slice of the cached names (asked once in the pass above, not
        # again within the answer memo's second) and new names for the misses.
        start = r * per_round % len(cached_names)
        cached = (cached_names[start:] + cached_names[:start])[:per_round]
        for label, port, kind in paths if r % 2 == 0 else paths[::-1]:
            if kind == "cached":
                names = cached
            else:
                names = [f"l{r}-{i}.{word(rng)}.latbench.net" for i in range(per_round)]
            run.lat.setdefault(label, []).append(latency(port, names, rate, secs))
    # The fake upstream shares core 1 with the client; the servers sit on core 0, and waking
    # an idle core costs time too. The peers, on core 0 like filterdns, show that part.
    for s in run.servers:
        s.sample_rss()


def report(run: Run) -> str:
    """The run as markdown: settings, throughput, latency, memory and start-up."""
    info, names = run.info, [s.name for s in run.servers]
    out = [
        f"# filterdns benchmark ({run.mode}, {datetime.now(UTC):%Y-%m-%d %H:%M UTC})",
        "",
        *machine(),
        f"- blocklist: {info['names']:,} names ({info['real']:,} from ../shared/data "
        f"blocklists, {info['names'] - info['real']:,} synthetic); fake upstream: {run.up_kind}",
        f"- dnsperf -c 10 -q 200 -t 1; {run.rounds} rounds x {run.secs} s per server and "
        "workload, alternating order (A-B-A-B); cached and mix warmed by one whole pass first",
        f"- cached: {len(info['cached']):,} Umbrella names not listed; mix: {info['mix']:,} "
        f"queries ({info['mix_blocked']:,} blocked); miss: unique names, new file per run",
        f"- {NOLIST}: dnsmasq forwarding with no list (same cache), measured on"
        " miss only (the reference of the miss target)",
    ]
    if run.skipped:
        out.append(f"- skipped peers: {', '.join(run.skipped)}")
    out += throughput_table(run, names)
    out += latency_table(run)
    out += memory_table(run)
    out += ["", f"Total run time: {time.monotonic() - run.started:.0f} s.", ""]
    return "\n".join(out)


def throughput_table(run: Run, names: list[str]) -> list[str]:
    peers = [n for n in names if n != "filterdns"]
    head = "| workload | " + " | ".join(f"{n} qps" for n in names)
    head += "".join(f" | filterdns/{p}" for p in peers) + " | loss % (max) |"
    out = ["", "## Throughput (qps median [min-max])", "", head]
    out.append("|" + "---|" * (2 + len(names) + len(peers)))
    for wl in WORKLOADS:
        results = run.results[wl]
        row = [wl] + [fmt_range([x["qps"] for x in results[n]]) or "-" for n in names]
        for p in peers:
            ratios = [
                a["qps"] / b["qps"]
                for a, b in zip(results["filterdns"], results[p], strict=False)
                if b["qps"]
            ]
            row.append(fmt_range(ratios, 2) + "x" if ratios else "-")
        loss = max(x["lost"] for n in names for x in results[n] or [{"lost": 0.0}])
        row.append(f"{loss:.2f}")
        out.append("| " + " | ".join(row) + " |")
    return out


def latency_table(run: Run) -> list[str]:
    rounds = len(next(iter(run.lat.values()), []))
    out = ["", "## Latency at 200 qps (Python UDP client, ms)", ""]
    out += [
        f"Medians of {rounds} rounds [min-max]; a round asks every path in turn for "
        f"{run.lat_secs} s (the order reversed every other round); the added latency is taken "
        "within each round against the upstream asked directly.",
        "",
        "| path | p50 | p99 | answers |",
        "|---|---|---|---|",
    ]
    for k, got in run.lat.items():
        out.append(
            f"| {k} | {fmt_range([g['p50'] for g in got], 3)} | "
            f"{fmt_range([g['p99'] for g in got], 3)} "
            f"| {sum(g['n'] for g in got):,.0f} |"
        )
    for kind in ("cached", "miss"):
        ours, direct = run.lat[f"{kind} via filterdns"], run.lat[f"{kind} via upstream directly"]
        p50 = [a["p50"] - b["p50"] for a, b in zip(ours, direct, strict=True)]
        p99 = [a["p99"] - b["p99"] for a, b in zip(ours, direct, strict=True)]
        out.append(
            f"| **{kind}: added by filterdns** | {fmt_range(p50, 3, signed=True)} | "
            f"{fmt_range(p99, 3, signed=True)} | |"
        )
    return out


def memory_table(run: Run) -> list[str]:
    out = ["", "## Memory and startup", ""]
    out += [
        "| server | RSS after start-up (MB; private) | RSS max seen under load (MB; private) "
        "| startup to first answer (s) |",
        "|---|---|---|---|",
    ]
    cold_startup, cold_line, cold_ready = run.cold
    out.append(
        f"| filterdns, first start (index built) | - | - | {cold_startup:.2f} "
        f"(log line 'listening on' at {cold_line:.2f}; the list's index in at "
        f"{cold_ready:.2f}) |"
    )
    for s in run.servers:
        label = "filterdns, restart (index cached)" if s.name == "filterdns" else s.name
        extra = f" (log line at {s.listening_line:.2f})" if s.name == "filterdns" else ""
        out.append(
            f"| {label} | {s.rss_start:.1f}; {s.private_start:.1f} | {s.rss_mb:.1f}; "
            f"{s.private_mb:.1f} | {s.startup:.2f}{extra} |"
        )
    out += [
        "",
        "RSS after start-up: the list loaded, nothing asked yet. Under load the answer cache,"
        " the per-profile decisions and the log queue fill up to their bounds. Private:"
        " RssAnon, the RSS less the pages of mapped files (the program and its libraries,"
        " shared with other processes; filterdns' memory-mapped list index, about 12 MB for"
        " 1M names, clean pages the kernel can drop and read again).",
    ]
    return out


def write_results(text: str, mode: str) -> None:
    """bench/results/<time>-<mode>.md, and bench/RESULTS.md keeping the other benches' parts."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{mode}.md"
    path.write_text(text)
    latest = ROOT / "bench" / "RESULTS.md"
    before = latest.read_text() if latest.exists() else ""
    sections = (WEB_SECTION, PG_SECTION, WORKERS_SECTION)
    kept = "".join(section_of(before, title) for title in sections)
    latest.write_text(
        "# Latest benchmark results\n\nWritten by `make bench` (`bench/run.py`); "
        f"a copy of `bench/results/{path.name}`.\n\n" + text + (f"\n{kept}" if kept else "")
    )
    log(f"written {path} and bench/RESULTS.md")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100k names, 2 rounds of 4 s")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    if TASKSET:
        os.sched_setaffinity(0, {1})
    if not shutil.which("dnsperf"):
        log("dnsperf is not installed: run bench/setup.sh")
        return 1
    run = Run(args.quick, Path(tempfile.mkdtemp(prefix="filterdns-bench-")))
    total = 100_000 if run.quick else 1_000_000
    try:
        log(f"mode {run.mode}: preparing {total:,} names in {run.work}")
        run.info = prepare(run.work, total, 2_000 if run.quick else 10_000, min(20_000, total))
        log(
            f"{run.info['names']:,} names ({run.info['real']:,} real); mix "
            f"{run.info['mix']:,} queries, {run.info['mix_blocked']:,} of them blocked"
        )
        start_upstream(run)
        fdns = start_filterdns(run)
        start_peers(run)
        run_workloads(run)
        run_latency(run, fdns)
        text = report(run)
        print(text)
        write_results(text, run.mode)
        return 0
    finally:
        run.stop()
        if not args.keep:
            shutil.rmtree(run.work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
