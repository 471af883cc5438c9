# ruff: noqa: E501  (the report tables are long lines of text)
"""The flood phases of `make stress` (bench/stress.py): a long upstream outage and a TCP hold.

3. Outage: filterdns with its own dnsmasq upstream and the default caps and rate limit; 1,000
   names cached and expired (cache.max_ttl 5s), then `--outage` seconds of queries from 48
   addresses (each within the default rate limit), half for the cached names and half for new
   ones: for two thirds of the time the upstream is stopped (SIGSTOP: silent, every exchange
   times out), for the last third it is gone (its port refuses). Every cached name must be
   answered from stale data and every new one with SERVFAIL, none lost; the upstream must
   reach 1,000 failures in a row and more; open files and RSS stay bounded; no error or
   traceback in the log; once the upstream is back, a new name is answered again.
4. Hold: filterdns with the default TCP caps; one address opens `--hold` TCP connections and
   keeps every one it is given alive, then 40 addresses hold 20 each; meanwhile another
   address asks 200 queries over TCP, a new connection each, which must all be answered.
"""

from __future__ import annotations

import contextlib
import math
import random
import re
import resource
import select
import signal
import socket
import struct
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import dns.message
import run as bench

NAMES = 1000  # cached names in the outage phase
SOURCES = [f"127.0.1.{i}" for i in range(1, 49)]  # 48 addresses within the default rate limit
MAX_TTL = 5  # seconds: cached answers expire early, so the outage serves stale data
VICTIM = "127.0.0.9"
STALE_TTL = 30  # RFC 8767, what filterdns gives stale answers
CHECK_EVERY = 1.0  # seconds between two looks at the proxy's open files and memory
_FRAME = struct.Struct("!H")

Pick = Callable[[int], tuple[str, str]]  # serial -> (kind of query, name)
Load = tuple[dict[str, Counter[str]], dict[str, list[float]]]  # outcomes and reply times by kind


def log(msg: str) -> None:
    print(f"[stress {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def proc_figures(pid: int) -> tuple[int, float]:
    """Open files and RSS (MB) of process `pid`."""
    with open(f"/proc/{pid}/status") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return len(list(Path(f"/proc/{pid}/fd").iterdir())), rss / 1024


class Peaks:
    """The most open files and RSS a process reached, sampled about once a second."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.files_before, self.rss_before = proc_figures(pid)
        self.files, self.rss = self.files_before, self.rss_before
        self._next = time.monotonic()

    def sample(self) -> None:
        if time.monotonic() < self._next:
            return
        self._next = time.monotonic() + CHECK_EVERY
        files, rss = proc_figures(self.pid)
        self.files, self.rss = max(self.files, files), max(self.rss, rss)


def outcome(data: bytes) -> str:
    """What a reply says: stale (TTL 30), answered, servfail or another rcode."""
    rcode = data[3] & 0x0F
    if rcode == 2:
        return "servfail"
    if rcode != 0:
        return f"rcode {rcode}"
    message = dns.message.from_wire(data)
    if not message.answer:
        return "no data"
    return "stale" if message.answer[0].ttl == STALE_TTL else "answered"


def udp_load(
    port: int, secs: float, rate: int, pick: Pick, *, peaks: Peaks, wait: float = 4.0
) -> Load:
    """`rate` queries a second for `secs` seconds, one socket per address of SOURCES in turn;
    the outcomes and reply times by kind (a query without a reply `wait` s later is lost)."""
    socks = []
    for source in SOURCES:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        socks.append(sock)
    index = {sock.fileno(): i for i, sock in enumerate(socks)}
    pending: dict[tuple[int, int], tuple[str, float]] = {}
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    times: dict[str, list[float]] = defaultdict(list)
    start = time.monotonic()
    serial = 0
    try:
        while True:
            now = time.monotonic()
            if now < start + secs:
                while serial < int((now - start) * rate):
                    which, qid = serial % len(socks), (serial // len(socks)) % 65536
                    kind, name = pick(serial)
                    try:
                        socks[which].send(bench.query(qid, name))
                        pending[(which, qid)] = (kind, now)
                    except OSError:  # a full send buffer: this client's own limit
                        outcomes[kind]["unsent"] += 1
                    serial += 1
            elif not pending or now > start + secs + wait:
                break
            peaks.sample()
            for sock in select.select(socks, [], [], 0.002)[0]:
                with contextlib.suppress(BlockingIOError):
                    while data := sock.recv(65535):
                        entry = pending.pop((index[sock.fileno()], int.from_bytes(data[:2])), None)
                        if entry is not None:
                            outcomes[entry[0]][outcome(data)] += 1
                            times[entry[0]].append(time.monotonic() - entry[1])
    finally:
        for sock in socks:
            sock.close()
    for kind, _sent in pending.values():
        outcomes[kind]["lost"] += 1
    return outcomes, times


def metric(port: int, name: str) -> float:
    """The sum of the samples of metric `name` on the proxy's /metrics."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        body = b""
        while chunk := sock.recv(65536):
            body += chunk
    found = re.findall(rf"^{name}(?:{{[^}}]*}})? ([\d.e+]+)$", body.decode(), re.M)
    return sum(float(value) for value in found) if found else float("nan")


def proxy_config(
    work: Path, tag: str, port: int, *, up: int, metrics: int, extra: str = ""
) -> Path:
    cfg = work / f"{tag}.yaml"
    cfg.write_text(
        f"""server:
  listen: ["127.0.0.1:{port}"]
  metrics: "127.0.0.1:{metrics}"
upstreams:
  servers: ["127.0.0.1:{up}"]
profiles:
  everyone: {{age_band: adult}}
default_profile: everyone
lists: {{download_defaults: false, cache_dir: {work / (tag + "-lists")}, refresh: 0}}
log: {{database: {work / (tag + ".db")}}}
{extra}"""
    )
    return cfg


def dnsmasq(work: Path, tag: str, port: int) -> bench.Server:
    argv = bench.dnsmasq_argv(port, [f"--address=/#/{bench.UPSTREAM_IP}", "--local-ttl=3600"])
    return bench.Server(tag, argv, port, work, core=1)


def filterdns(work: Path, tag: str, cfg: Path, port: int) -> bench.Server:
    argv = [str(bench.FILTERDNS), "serve", "-c", str(cfg)]
    server = bench.Server(tag, argv, port, work, ready=bench.LISTS_READY)
    server.start()
    return server


def log_faults(work: Path, tag: str) -> tuple[int, int]:
    text = (work / f"{tag}.log").read_text(errors="replace")
    return text.count("Traceback"), len(re.findall(r" ERROR ", text))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


# -- 3. a long outage ----------------------------------------------------------------------


def outage_phase(work: Path, secs: float, rate: int) -> tuple[list[str], list[str]]:
    """The long outage; its report lines and the checks that failed."""
    up_port, port, metrics = bench.free_port(), bench.free_port(), bench.free_port()
    upstream = dnsmasq(work, "outage-upstream", up_port)
    extra = f"cache: {{max_ttl: {MAX_TTL}s}}\n"
    cfg = proxy_config(work, "outage", port, up=up_port, metrics=metrics, extra=extra)
    fdns: bench.Server | None = None
    cached = [f"c{i}.outage.test" for i in range(NAMES)]
    try:
        upstream.start(30)
        fdns = filterdns(work, "outage", cfg, port)
        assert fdns.proc is not None and upstream.proc is not None
        peaks = Peaks(fdns.proc.pid)
        warm, _ = udp_load(  # a little longer than one pass: the last names are sent too
            port, (NAMES + 50) / rate, rate, lambda i: ("warm", cached[i % NAMES]), peaks=peaks
        )
        upstream.proc.send_signal(signal.SIGSTOP)
        log(f"outage: {dict(warm['warm'])} warming {NAMES:,} names; the upstream is stopped")
        time.sleep(MAX_TTL + 1)  # every cached answer expires: only stale data is left
        rng = random.Random(13)

        def pick(serial: int) -> tuple[str, str]:
            if serial % 2:
                return "new", f"u{serial}.outage.test"
            return "cached", rng.choice(cached)

        peaks = Peaks(fdns.proc.pid)
        silent = udp_load(port, secs * 2 / 3, rate, pick, peaks=peaks)
        failures_silent = metric(metrics, "filterdns_upstream_consecutive_failures")
        upstream.proc.kill()  # SIGKILL works on a stopped process: now its port refuses
        upstream.proc.wait()
        log(f"outage: {failures_silent:.0f} failures in a row while silent; the upstream is gone")
        gone = udp_load(port, secs / 3, rate, pick, peaks=peaks)
        figures = {
            name: metric(metrics, f"filterdns_{name}")
            for name in ("upstream_consecutive_failures", "upstream_overflow_total",
                         "cache_stale_served_total", "upstream_outstanding")
        }  # fmt: skip
        upstream = dnsmasq(work, "outage-upstream-again", up_port)
        upstream.start(30)
        recovered = _recovers(port)
    finally:
        if fdns is not None:
            fdns.stop()
        upstream.stop()
    tracebacks, errors = log_faults(work, "outage")
    return _outage_report(
        (secs, rate), (silent, gone), peaks=peaks, figures=figures, recovered=recovered,
        faults=(tracebacks, errors),
    )  # fmt: skip


def _recovers(port: int, within: float = 10.0) -> float:
    """Seconds until a new name is answered by the upstream again (NaN: not within `within`)."""
    start = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2.5)
        sock.connect(("127.0.0.1", port))
        serial = 0
        while time.monotonic() - start < within:
            serial += 1
            sock.send(bench.query(serial, f"back{serial}.outage.test"))
            with contextlib.suppress(TimeoutError):
                while (data := sock.recv(4096))[:2] != serial.to_bytes(2, "big"):
                    pass
                if outcome(data) == "answered":
                    return time.monotonic() - start
    return float("nan")


def _outage_report(
    load: tuple[float, int],
    parts: tuple[Load, Load],
    *,
    peaks: Peaks,
    figures: dict[str, float],
    recovered: float,
    faults: tuple[int, int],
) -> tuple[list[str], list[str]]:
    (secs, rate), (silent, gone) = load, parts
    failures: list[str] = []
    rows = []
    for label, (outcomes, times) in (("silent (SIGSTOP)", silent), ("gone (refused)", gone)):
        cached, new = outcomes["cached"], outcomes["new"]
        asked = sum(cached.values())
        if cached["stale"] != asked:
            failures.append(
                f"outage, upstream {label}: cached names {dict(cached)} (all must be stale)"
            )
        if new["servfail"] != sum(new.values()):
            failures.append(
                f"outage, upstream {label}: new names {dict(new)} (all must be SERVFAIL)"
            )
        rows.append(
            f"| upstream {label} | {asked:,} / {cached['stale']:,} / {cached['lost']:,} | "
            f"{percentile(times['cached'], 0.5) * 1000:.1f} / {percentile(times['cached'], 0.99) * 1000:.0f} ms | "
            f"{sum(new.values()):,} / {new['servfail']:,} / {new['lost']:,} |"
        )
    files, rss = peaks.files - peaks.files_before, peaks.rss - peaks.rss_before
    if figures["upstream_consecutive_failures"] < 1000:
        failures.append(f"only {figures['upstream_consecutive_failures']:.0f} failures in a row")
    if files > 256 + 64:
        failures.append(f"open files grew by {files} during the outage")
    if rss > 64:
        failures.append(f"RSS grew by {rss:.1f} MB during the outage")
    if faults != (0, 0):
        failures.append(f"{faults[0]} tracebacks and {faults[1]} errors in the log (outage)")
    if math.isnan(recovered):
        failures.append("the upstream, back, was not used again within 10 s")
    return [
        "## Long upstream outage",
        "",
        f"{len(SOURCES)} client addresses within the default rate limit, {rate:,} queries a second for {secs:.0f} s "
        f"(two thirds with the upstream silent, one third with it gone), half for {NAMES:,} cached names "
        f"(expired: stale only), half for new names.",
        "",
        "| upstream | cached names asked / stale answers / lost | stale answer p50 / p99 | new names asked / SERVFAIL / lost |",
        "|---|---|---|---|",
        *rows,
        "",
        "| figure | value |",
        "|---|---|",
        f"| upstream failures in a row at the end | {figures['upstream_consecutive_failures']:,.0f} |",
        f"| queries answered at once past the caps (filterdns_upstream_overflow_total) | {figures['upstream_overflow_total']:,.0f} |",
        f"| stale answers served (filterdns_cache_stale_served_total) | {figures['cache_stale_served_total']:,.0f} |",
        f"| open files before, most during | {peaks.files_before}, {peaks.files} |",
        f"| RSS before, most during | {peaks.rss_before:.1f} MB, {peaks.rss:.1f} MB |",
        f"| errors / tracebacks in the log | {faults[1]} / {faults[0]} |",
        f"| upstream back: a new name answered after | {recovered:.2f} s |",
        "",
    ], failures  # fmt: skip


# -- 4. a TCP connection hold ----------------------------------------------------------------


class Holder:
    """TCP connections from some addresses, each kept alive with a query every few seconds."""

    def __init__(self, port: int, sources: list[str], each: int) -> None:
        self.port = port
        self.socks: list[socket.socket] = []
        for source in sources:
            for _ in range(each):
                sock = socket.create_connection(
                    ("127.0.0.1", port), timeout=5, source_address=(source, 0)
                )
                sock.setblocking(False)
                self.socks.append(sock)
        self.opened = len(self.socks)
        self._serial = 0

    def keep_alive(self) -> int:
        """Drop the connections the proxy closed, ask one query on each other; how many remain."""
        alive = []
        for sock in self.socks:
            try:
                while sock.recv(65535):
                    pass
                sock.close()  # b"": closed by the proxy
                continue
            except BlockingIOError:
                pass
            except OSError:
                sock.close()
                continue
            self._serial += 1
            frame = bench.query(self._serial % 65536, "held.hold.test")
            with contextlib.suppress(OSError):
                sock.send(_FRAME.pack(len(frame)) + frame)
            alive.append(sock)
        self.socks = alive
        return len(alive)

    def close(self) -> None:
        for sock in self.socks:
            sock.close()


def tcp_query(port: int, name: str, source: str) -> float | None:
    """Seconds for one query over a new TCP connection from `source`; None when unanswered."""
    start = time.monotonic()
    frame = bench.query(7, name)
    try:
        with socket.create_connection(
            ("127.0.0.1", port), timeout=3, source_address=(source, 0)
        ) as sock:
            sock.sendall(_FRAME.pack(len(frame)) + frame)
            data = b""
            while len(data) < 2 or len(data) < 2 + _FRAME.unpack_from(data)[0]:
                chunk = sock.recv(65535)
                if not chunk:
                    return None
                data += chunk
    except OSError:
        return None
    return time.monotonic() - start if outcome(data[2:]) == "answered" else None


def hold_phase(work: Path, holders: int, secs: float) -> tuple[list[str], list[str]]:
    """One address, then 40, hold TCP connections while another asks over TCP."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, holders + 2000)), hard))
    up_port, port, metrics = bench.free_port(), bench.free_port(), bench.free_port()
    upstream = dnsmasq(work, "hold-upstream", up_port)
    cfg = proxy_config(work, "hold", port, up=up_port, metrics=metrics)
    fdns: bench.Server | None = None
    rows, failures = [], []
    try:
        upstream.start(30)
        fdns = filterdns(work, "hold", cfg, port)
        assert fdns.proc is not None
        stages = [("one address", ["127.0.0.2"], holders),
                  ("40 addresses", [f"127.0.2.{i}" for i in range(1, 41)], 20)]  # fmt: skip
        for label, sources, each in stages:
            peaks = Peaks(fdns.proc.pid)
            holder = Holder(port, sources, each)
            times: list[float | None] = []
            start = time.monotonic()
            next_alive = start
            while time.monotonic() - start < secs or len(times) < 200:
                if time.monotonic() >= next_alive:
                    kept = holder.keep_alive()
                    next_alive = time.monotonic() + 4.0  # within the 10 s idle timeout
                times.append(tcp_query(port, f"v{len(times)}.hold.test", VICTIM))
                peaks.sample()
                time.sleep(max(0.0, secs / 200 - 0.001))
            open_now = metric(metrics, "filterdns_tcp_connections")
            holder.close()
            answered = [t for t in times if t is not None]
            rows.append(
                f"| {label}, {holder.opened:,} connections | {kept:,} | {open_now:.0f} | "
                f"{len(answered)}/{len(times)} | {percentile(answered, 0.5) * 1000:.1f} / {percentile(answered, 0.99) * 1000:.1f} ms | "
                f"{peaks.files_before} -> {peaks.files} |"
            )
            if len(answered) != len(times):
                failures.append(
                    f"hold ({label}): {len(times) - len(answered)} of {len(times)} TCP queries unanswered"
                )
            log(f"hold, {label}: {kept} kept, victim {len(answered)}/{len(times)} answered")
        refused = metric(metrics, "filterdns_tcp_refused_total")
        evicted = metric(metrics, "filterdns_tcp_evicted_total")
    finally:
        if fdns is not None:
            fdns.stop()
        upstream.stop()
    tracebacks, errors = log_faults(work, "hold")
    if tracebacks or errors:
        failures.append(f"{tracebacks} tracebacks and {errors} errors in the log (hold)")
    return [
        "## TCP connection hold",
        "",
        f"Default caps (256 TCP connections, 16 per address). The holders keep every connection they are given alive "
        f"(a query every 4 s, inside the 10 s idle timeout) for {secs:.0f} s or more, while {VICTIM} asks 200 queries "
        "over TCP, a new connection each.",
        "",
        "| holders | connections they kept | open at the proxy | victim answered | victim p50 / p99 | proxy open files |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"Connections refused (over a cap): {refused:,.0f}; closed to make room for a client holding fewer: {evicted:,.0f}. "
        f"Errors / tracebacks in the log: {errors} / {tracebacks}.",
        "",
    ], failures  # fmt: skip
