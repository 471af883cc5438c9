# ruff: noqa: E501  (the report tables are long lines of text)
"""The long attacks of `make stress` against the real process: fuzz, soak, outage and TCP hold.

    python bench/stress.py [--packets 1000000] [--soak 600] [--names 1000000] [--outage 60]
                           [--hold 1000]

1. Fuzz: `--packets` hostile packets (tests/fakes/hostile.py: mutated and well-formed queries
   and random bytes) sent to `filterdns serve` over UDP, and one in ten as TCP frames, with a
   good query after every 100 that must be answered; then the config loader and the list
   parser each read `--packets / 10` hostile inputs in this process. Reported: inputs, answers
   to the good queries, FORMERR/dropped counts, errors and tracebacks in the server's log.
2. Soak: filterdns with a `--names` blocklist (the bench's list), warmed by one pass of the
   household/school workload, then `--soak` seconds of dnsperf at a steady rate over that
   workload. Reported: dnsperf's loss, RSS and open files before and after (growth must stay
   under 5 % and 0), and the query log's rows against the NXDOMAIN (blocked) answers dnsperf got.
3. Outage and 4. hold (bench/floods.py): `--outage` seconds of queries while the upstream is
   silent, then gone (stale answers for every cached name, bounded open files and memory, no
   traceback, thousands of failures in a row); one address holding `--hold` TCP connections,
   then 40 addresses holding 20 each, while another address's TCP queries are all answered.

Exit status 1 when a check fails. Only loopback is used; every port is picked free.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import select
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import floods  # noqa: E402  (bench/floods.py: the outage and hold phases)
import run as bench  # noqa: E402  (bench/run.py: servers, lists, dnsperf)

from filterdns.config import load_config_text  # noqa: E402
from filterdns.errors import FilterDnsError  # noqa: E402
from filterdns.lists.parse import parse_bytes  # noqa: E402
from tests.fakes.hostile import hostile_packets  # noqa: E402

BURST = 100  # hostile packets between two good queries
RESULTS = HERE / "results"


def log(msg: str) -> None:
    print(f"[stress {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def good_query(port: int) -> bool:
    """An A query for a name the fake upstream answers: True when answered NOERROR."""
    query = bench.query(random.randrange(65536), "alive.example.net")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2.0)
        sock.sendto(query, ("127.0.0.1", port))
        try:
            data = sock.recv(4096)
        except TimeoutError:
            return False
    return data[:2] == query[:2] and data[3] & 0x0F == 0


def fuzz_server(port: int, packets: int) -> dict[str, int]:
    """Send `packets` hostile packets in bursts of BURST, each burst followed by a good query
    that must be answered: the server reads its socket in order, so when that answer comes
    every packet of the burst has been read (none lost to a full socket buffer)."""
    rng = random.Random(20261123)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setblocking(False)
    udp.connect(("127.0.0.1", port))
    tcp = socket.create_connection(("127.0.0.1", port), timeout=5)
    sent = alive = probes = tcp_frames = 0
    for packet in hostile_packets(rng, packets):
        sent += 1
        if sent % 10 == 0:
            try:  # blocking, so no frame is lost to a full buffer
                tcp.sendall(struct.pack("!H", len(packet)) + packet)
                tcp_frames += 1
            except OSError:  # the server closed it: a new one
                tcp.close()
                tcp = socket.create_connection(("127.0.0.1", port), timeout=5)
        else:
            with contextlib.suppress(OSError):
                udp.send(packet)
        if sent % BURST == 0:
            for sock in (udp, tcp):  # throw the answers away so buffers never fill
                with contextlib.suppress(OSError):
                    while select.select([sock], [], [], 0)[0] and sock.recv(65535):
                        pass
            probes += 1
            alive += good_query(port)
            if sent % 100_000 == 0:
                log(f"fuzz: {sent:,} packets sent, good queries answered {alive}/{probes}")
    udp.close()
    tcp.close()
    return {"sent": sent, "tcp_frames": tcp_frames, "good": probes, "alive": alive}


def fuzz_parsers(inputs: int) -> dict[str, int]:
    """The config loader and the list parser on hostile text: a result or a located problem."""
    rng = random.Random(7)
    pieces = ["server:", "  listen: [", "127.0.0.1:0", "]", "profiles:", "  kid: {", "age_band:",
              " 9-12", "}", "schedules:", "- {days: [mon-fri], from: \"21:00\", to: ", "\"06:30\"",
              "block: all", "\t", "&a", "*a", "<<: *a", "!!python/object", "{", "[", "'", "\"",
              "\x00", "\u202e", "- ", ": ", "#", "\n", "  ", "rate_limit: {burst: ", "-1", "1e9"]  # fmt: skip
    crashes = config_ok = config_problems = 0
    for _ in range(inputs):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 30)))
        try:
            load_config_text(text)
            config_ok += 1
        except FilterDnsError:
            config_problems += 1
        except Exception as exc:
            crashes += 1
            log(f"config loader crashed on {text!r}: {exc!r}")
    list_lines = 0
    prefixes = [b"0.0.0.0 ", b"||", b"address=/", b'local-zone: "', b"*.", b"", b"@@||", b"# "]
    for _ in range(inputs):
        raw = bytes(rng.randrange(256) for _ in range(rng.choice((0, 5, 40, 300))))
        try:
            parse_bytes(rng.choice(prefixes) + raw, "fuzz.txt")
            list_lines += 1
        except Exception as exc:
            crashes += 1
            log(f"list parser crashed on {raw!r}: {exc!r}")
    return {
        "config_inputs": inputs,
        "config_loaded": config_ok,
        "config_problems": config_problems,
        "list_lines": list_lines,
        "crashes": crashes,
    }


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def dnsperf_soak(port: int, qfile: Path, secs: float, qps: int) -> dict[str, float]:
    argv = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(qfile), "-l", str(secs)]
    argv += ["-c", "10", "-q", "500", "-t", "2", "-Q", str(qps)]
    done = subprocess.run(bench.pinned(1, argv), check=False, capture_output=True, text=True)
    out = done.stdout
    figures = {}
    for key, pattern in (
        ("sent", r"Queries sent:\s+(\d+)"),
        ("completed", r"Queries completed:\s+(\d+)"),
        ("lost", r"Queries lost:\s+(\d+)"),
        ("nxdomain", r"NXDOMAIN (\d+)"),
        ("qps", r"Queries per second:\s+([\d.]+)"),
    ):
        match = re.search(pattern, out)
        figures[key] = float(match.group(1)) if match else 0.0
    return figures


def config_for_soak(work: Path, port: int, up: int, metrics: int) -> Path:
    cfg = work / "stress.yaml"
    cfg.write_text(
        f"""server:
  listen: ["127.0.0.1:{port}"]
  rate_limit: null  # all the load comes from one address
  metrics: "127.0.0.1:{metrics}"
upstreams:
  servers: ["127.0.0.1:{up}"]
categories:
  benchlist: [{work / "list.txt"}]
profiles:
  school: {{age_band: adult, categories: [benchlist], safesearch: true}}
default_profile: school
lists: {{download_defaults: false, cache_dir: {work / "lists-cache"}, refresh: 0}}
log: {{database: {work / "stress.db"}}}
"""
    )
    return cfg


def soak_run(
    args: argparse.Namespace, fdns: bench.Server, port: int, work: Path, failures: list[str]
) -> list[str]:
    """The soak; its report lines. Stops filterdns (so the log writes every queued row)."""
    assert fdns.proc is not None
    pid = fdns.proc.pid
    log("soak: warming the cache with one pass of the workload")
    bench.dnsperf(port, work / "mix.q", 0)
    db = work / "stress.db"
    rows_before = _settled_rows(db)
    rss_before, fds_before = rss_mb(pid), open_files(pid)
    log(f"soak: {args.soak:.0f} s at {args.rate:,} qps (RSS {rss_before:.1f} MB, {fds_before} fds)")
    soak = dnsperf_soak(port, work / "mix.q", args.soak, args.rate)
    rss_after, fds_after = rss_mb(pid), open_files(pid)
    fdns.stop()  # SIGTERM: the log writes every queued row
    rows = _blocked_rows(db) - rows_before
    growth = (rss_after - rss_before) / rss_before * 100
    loss = soak["lost"] / soak["sent"] * 100 if soak["sent"] else 100.0
    log(
        f"soak: {soak}; rows {rows:,}; RSS {rss_before:.1f} -> {rss_after:.1f} MB; fds {fds_before} -> {fds_after}"
    )
    if growth >= 5:
        failures.append(f"RSS grew {growth:.1f} % during the soak")
    if fds_after > fds_before:
        failures.append(f"open files grew from {fds_before} to {fds_after}")
    if rows != soak["nxdomain"]:
        failures.append(f"{rows:,} log rows for {soak['nxdomain']:,.0f} blocked answers")
    if loss > 0.1:
        failures.append(f"{loss:.2f} % of the soak's queries were lost")
    return [
        "## Soak",
        "",
        "| figure | value |",
        "|---|---|",
        f"| duration, rate | {args.soak:.0f} s at {args.rate:,} qps (achieved {soak['qps']:,.0f}) |",
        f"| queries sent / completed / lost | {soak['sent']:,.0f} / {soak['completed']:,.0f} / {soak['lost']:,.0f} ({loss:.3f} %) |",
        f"| RSS before, after, growth | {rss_before:.1f} MB, {rss_after:.1f} MB, {growth:+.1f} % |",
        f"| open files before, after | {fds_before}, {fds_after} |",
        f"| blocked answers (NXDOMAIN) / log rows | {soak['nxdomain']:,.0f} / {rows:,} |",
        "",
    ]  # fmt: skip


def fuzz_phase(port: int, metrics: int, packets: int, work: Path, failures: list[str]) -> list[str]:
    """Hostile packets at the server and its parsers, a good query after every burst; the
    report's rows (failures appended to `failures`)."""
    t0 = time.monotonic()
    fuzz = fuzz_server(port, packets)
    fuzz_secs = time.monotonic() - t0
    server_log = (work / "filterdns.log").read_text(errors="replace")
    tracebacks = server_log.count("Traceback")
    errors = len(re.findall(r" ERROR ", server_log))
    malformed = _metric(metrics, "filterdns_malformed_total")
    read = _metric(metrics, "filterdns_packets_total")
    log(f"fuzz: {fuzz} in {fuzz_secs:.0f} s; read {read:,.0f}; malformed {malformed:,.0f}")
    parsers = fuzz_parsers(max(1000, packets // 10))
    log(f"parsers: {parsers}")
    if fuzz["alive"] != fuzz["good"]:
        failures.append(f"{fuzz['good'] - fuzz['alive']} good queries went unanswered")
    if tracebacks or errors:
        failures.append(f"{tracebacks} tracebacks and {errors} errors in the server's log")
    if parsers["crashes"]:
        failures.append(f"{parsers['crashes']} parser crashes")
    if not good_query(port):
        failures.append("the server does not answer after the fuzz campaign")
    return [
        "## Fuzz campaign",
        "",
        "| figure | value |",
        "|---|---|",
        f"| hostile packets sent (UDP, one in ten as TCP frames) | {fuzz['sent']:,} ({fuzz['tcp_frames']:,} TCP) |",
        f"| time | {fuzz_secs:.0f} s |",
        f"| good queries answered, one after every {BURST} | {fuzz['alive']:,}/{fuzz['good']:,} |",
        f"| packets and frames the server read (good queries included) | {read:,.0f} |",
        f"| packets counted malformed (FORMERR or dropped) | {malformed:,.0f} |",
        f"| errors / tracebacks in the server's log | {errors} / {tracebacks} |",
        f"| config loader inputs (loaded / located problems / crashes) | {parsers['config_inputs']:,} ({parsers['config_loaded']:,} / {parsers['config_problems']:,} / {parsers['crashes']}) |",
        f"| list parser lines | {parsers['list_lines']:,} |",
        "",
    ]  # fmt: skip


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--soak", type=float, default=600.0, help="seconds of steady load (0: none)")
    ap.add_argument("--rate", type=int, default=3000, help="queries a second during the soak")
    ap.add_argument("--names", type=int, default=1_000_000)
    ap.add_argument(
        "--outage", type=float, default=60.0, help="seconds of upstream outage (0: none)"
    )
    ap.add_argument("--outage-rate", type=int, default=2000, help="queries a second during it")
    ap.add_argument(
        "--hold",
        type=int,
        default=1000,
        help="TCP connections one address opens (0: no hold phase)",
    )
    ap.add_argument(
        "--hold-secs", type=float, default=20.0, help="seconds each hold lasts at least"
    )
    return ap.parse_args()


def main() -> int:
    args = parse_args()
    if not shutil.which("dnsperf") or not shutil.which("dnsmasq"):
        log("dnsperf and dnsmasq are needed: run bench/setup.sh")
        return 1
    if bench.TASKSET:
        os.sched_setaffinity(0, {1})
    work = Path(tempfile.mkdtemp(prefix="filterdns-stress-"))
    failures: list[str] = []
    out: list[str] = []
    up_port = bench.free_port()
    upstream = bench.Server(
        "upstream",
        bench.dnsmasq_argv(up_port, [f"--address=/#/{bench.UPSTREAM_IP}", "--local-ttl=3600"]),
        up_port,
        work,
        core=1,
    )
    fdns: bench.Server | None = None
    started = time.monotonic()
    try:
        log(f"preparing {args.names:,} names in {work}")
        info = bench.prepare(work, args.names, 2_000, min(20_000, args.names))
        upstream.start(30)
        port, metrics = bench.free_port(), bench.free_port()
        cfg = config_for_soak(work, port, up_port, metrics)
        fdns = bench.Server(
            "filterdns",
            [str(bench.FILTERDNS), "serve", "-c", str(cfg)],
            port,
            work,
            ready=bench.LISTS_READY,
        )
        fdns.start()
        log(f"filterdns up in {fdns.startup:.2f} s")

        # -- 1. fuzz -----------------------------------------------------------------------
        fuzzed = fuzz_phase(port, metrics, args.packets, work, failures)

        # -- 2. soak -----------------------------------------------------------------------
        soaked = soak_run(args, fdns, port, work, failures) if args.soak > 0 else []
        fdns.stop()

        # -- 3. a long outage, 4. a TCP connection hold (their own servers) ---------------
        outage: list[str] = []
        if args.outage > 0:
            outage, failed = floods.outage_phase(work, args.outage, args.outage_rate)
            failures += failed
        held: list[str] = []
        if args.hold > 0:
            held, failed = floods.hold_phase(work, args.hold, args.hold_secs)
            failures += failed

        out = [
            f"# filterdns stress ({datetime.now(UTC):%Y-%m-%d %H:%M UTC})",
            "",
            *bench.machine(),
            f"- blocklist: {info['names']:,} names; workload: {bench.MIX.name} "
            f"({info['mix']:,} queries, {info['mix_blocked']:,} blocked)",
            "",
            *fuzzed,
            *soaked,
            *outage,
            *held,
            "Result: " + ("all checks passed" if not failures else "FAILED: " + "; ".join(failures)),
            "",
            f"Total run time: {time.monotonic() - started:.0f} s.",
            "",
        ]  # fmt: skip
        text = "\n".join(out)
        print(text)
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-stress.md").write_text(text)
        return 1 if failures else 0
    finally:
        if fdns is not None:
            fdns.stop()
        upstream.stop()
        shutil.rmtree(work, ignore_errors=True)


def _metric(port: int, name: str) -> float:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        body = b""
        while chunk := sock.recv(65536):
            body += chunk
    match = re.search(rf"^{name} ([\d.e+]+)$", body.decode(), re.M)
    return float(match.group(1)) if match else float("nan")


def _settled_rows(db: Path) -> int:
    """The blocked rows once the log has written what was queued (two equal counts 1.5 s apart)."""
    count = -1
    while True:
        time.sleep(1.5)
        now = _blocked_rows(db)
        if now == count:
            return count
        count = now


def _blocked_rows(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return int(
            conn.execute(  # lookups: a row holds the repeats within log.fold_window
                "SELECT COALESCE(sum(hits), 0) FROM queries WHERE kind = 'blocked'"
            ).fetchone()[0]
        )


if __name__ == "__main__":
    sys.exit(main())
