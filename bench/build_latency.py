"""What building a big list costs the answers: first answer at start, latency during a build.

    python bench/build_latency.py [--names 5000000] [--seconds 8] [--rate 1000]

A synthetic hosts file of `--names` names (5M: about 200 MB) is written to a temporary
directory. Then, on loopback only:

* start: `filterdns serve` with that file as a category source and an empty cache directory
  (a first start); the time from launch to the first answer of a name blocked by the shipped
  lists, and to the first answer blocking a name of the big file (its index is in).
* latency: an in-process proxy (the shipped lists, already built) answers a blocked name to a
  client process sending `--rate` queries a second for `--seconds`, while nothing else runs,
  while the big file is built in a thread of the proxy's process, and while it is built in a
  child process (`filterdns.lists.builder`, at nice 10). Percentiles of the round trip.

The client is a separate process with a blocking socket, so it never shares the proxy's GIL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from filterdns.app import App  # noqa: E402
from filterdns.config import ListsConfig, load_config_text  # noqa: E402
from filterdns.lists.catalog import ListSet  # noqa: E402

BLOCKED = "bet365.com"  # in the shipped gambling list

CLIENT = """
import socket, sys, time
import dns.message, dns.rcode
host, port, secs, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
query = dns.message.make_query(sys.argv[5], "A").to_wire()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
lat, lost = [], 0
end = time.monotonic() + secs
due = time.monotonic()
while time.monotonic() < end:
    due += 1 / rate
    t = time.perf_counter()
    s.sendto(query, (host, port))
    try:
        s.recvfrom(4096)
        lat.append(time.perf_counter() - t)
    except socket.timeout:
        lost += 1
    if due > time.monotonic():
        time.sleep(due - time.monotonic())
lat.sort()
pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
print(f"{len(lat)} answers, {lost} lost; p50 {pct(.5):.2f} ms, p90 {pct(.9):.2f} ms, "
      f"p99 {pct(.99):.2f} ms, max {lat[-1] * 1000:.1f} ms")
"""


def write_names(path: Path, names: int) -> None:
    with path.open("w") as out:
        for block in range(0, names, 100_000):
            count = min(100_000, names - block)
            out.write("".join(f"0.0.0.0 n{block + i}.bench-list.example\n" for i in range(count)))


def config(lists: Path | None, cache: Path, listen: str = "127.0.0.1:0") -> str:
    categories = f'categories: {{adult: ["{lists}"]}}\n' if lists is not None else ""
    return (
        textwrap.dedent(f"""\
        server: {{listen: ["{listen}"], rate_limit: null}}
        upstreams: {{servers: ["127.0.0.1:9"], timeout: 1s}}
        lists: {{cache_dir: {cache}, download_defaults: false}}
        profiles: {{kid: {{age_band: adult, categories: [adult, gambling]}}}}
        default_profile: kid
    """)
        + categories
    )


def answered(port: int, name: str) -> int | None:
    """The rcode of one query, or None without an answer within 0.2 s."""
    import dns.message  # noqa: PLC0415

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        s.sendto(dns.message.make_query(name, "A").to_wire(), ("127.0.0.1", port))
        try:
            return dns.message.from_wire(s.recvfrom(4096)[0]).rcode()
        except (TimeoutError, OSError):
            return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def first_answers(big: Path, work: Path) -> None:
    port = free_port()
    cfg = work / "serve.yaml"
    cfg.write_text(config(big, work / "serve-cache", f"127.0.0.1:{port}"))
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "filterdns", "serve", "-c", str(cfg), "--log-level", "warning"],
        cwd=ROOT,
    )
    try:
        first = full = None
        while full is None and time.monotonic() - started < 300:
            if first is None and answered(port, BLOCKED) == 3:
                first = time.monotonic() - started
            if first is not None and answered(port, "n1.bench-list.example") == 3:
                full = time.monotonic() - started
            time.sleep(0.01)
        print(f"start: first answer (a shipped-list name blocked) after {first:.2f} s; "
              f"the big list blocks after {full:.2f} s")  # fmt: skip
    finally:
        process.terminate()
        process.wait()


async def latency(big: Path, work: Path, seconds: float, rate: float) -> None:
    cache = work / "latency-cache"
    app = App(load_config_text(config(None, cache), source="<bench>"))
    bound = await app.start()
    await app.lists.ready.wait()
    port = bound[0].port
    lists = ListsConfig(cache_dir=work / "build-cache", download_defaults=False)
    categories = (("adult", (str(big),)),)
    try:
        for mode in ("idle", "thread", "child"):
            client = await asyncio.create_subprocess_exec(
                sys.executable, "-c", CLIENT, "127.0.0.1", str(port), str(seconds), str(rate),
                BLOCKED, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            began = time.perf_counter()
            if mode == "thread":
                result = await asyncio.to_thread(ListSet(lists, categories).build)
                result.index.close()
            elif mode == "child":
                await ListSet(lists, categories).builder.build(lists, categories, download=False)
            took = time.perf_counter() - began
            out, _ = await client.communicate()
            what = "nothing else" if mode == "idle" else f"a build in a {mode} ({took:.1f} s)"
            print(f"latency with {what}: {out.decode().strip()}")
            for leftover in (work / "build-cache").glob("index*"):
                leftover.unlink()  # the next build starts from scratch too
            for leftover in (work / "build-cache" / "copies").glob("*"):
                leftover.unlink()
    finally:
        await app.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=5_000_000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="filterdns-bench-") as tmp:
        work = Path(tmp)
        big = work / "big.txt"
        write_names(big, args.names)
        print(f"{args.names:,} names, {big.stat().st_size / 1e6:.0f} MB; {os.cpu_count()} cores")
        first_answers(big, work)
        asyncio.run(latency(big, work, args.seconds, args.rate))


if __name__ == "__main__":
    main()
